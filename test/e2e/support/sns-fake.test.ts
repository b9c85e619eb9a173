import { CreateTopicCommand, PublishCommand, SNSClient, SNSServiceException } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { isValidSubject, SNS_MAX_PUBLISH_BYTES, type SnsFake, startSnsFake } from './sns-fake.js';

const topicArn = 'arn:aws:sns:us-east-1:000000000000:bigstate-key-audit';
let fake: SnsFake;
let client: SNSClient;

function snsClient(endpoint: string): SNSClient {
  return new SNSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

async function serviceError(promise: Promise<unknown>): Promise<SNSServiceException> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SNSServiceException);
  return error as SNSServiceException;
}

beforeAll(async () => {
  fake = await startSnsFake();
  client = snsClient(fake.endpoint);
});

afterAll(async () => {
  client.destroy();
  await fake.close();
});

beforeEach(() => {
  fake.recover();
});

describe('SNS fake through the real SNSClient', () => {
  it('records topic, subject, message and decoded message attributes, and answers the MessageId', async () => {
    const published = await client.send(
      new PublishCommand({
        TopicArn: topicArn,
        Subject: 'BigState keys changed: 2 added',
        Message: 'Principal "Tom & Jerry #1":\n  + key-a\n  + clé-b',
        MessageAttributes: {
          principal: { DataType: 'String', StringValue: 'Tom & Jerry #1' },
          changeType: { DataType: 'String.Array', StringValue: '["added","removed"]' },
        },
      }),
    );
    const [message] = fake.messages(topicArn).slice(-1);
    expect(published.MessageId).toBe(message?.messageId);
    expect(message).toMatchObject({
      topicArn,
      subject: 'BigState keys changed: 2 added',
      message: 'Principal "Tom & Jerry #1":\n  + key-a\n  + clé-b',
      attributes: {
        principal: { dataType: 'String', stringValue: 'Tom & Jerry #1' },
        changeType: { dataType: 'String.Array', stringValue: '["added","removed"]' },
      },
    });
    const call = fake.calls('Publish').at(-1);
    expect(call?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(call?.input['MessageAttributes.entry.1.Name']).toBe('principal');
  });

  it.each([
    ['100 characters', 'x'.repeat(100)],
    ['a line break', 'two\nlines'],
    ['a control character', 'bell\u0007'],
    ['non-ASCII (strict default)', 'Schlüssel geändert'],
    ['a leading blank', ' leading'],
    ['nothing', ''],
  ])('rejects a Subject with %s as InvalidParameter', async (_name, subject) => {
    const before = fake.messages().length;
    const error = await serviceError(
      client.send(new PublishCommand({ TopicArn: topicArn, Subject: subject, Message: 'm' })),
    );
    expect(error.name).toBe('InvalidParameterException');
    expect(error.message).toBe('Invalid parameter: Subject');
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(fake.messages()).toHaveLength(before);
  });

  it('accepts a 99-character ASCII Subject, and non-ASCII when told SNS takes UTF-8', async () => {
    await client.send(
      new PublishCommand({ TopicArn: topicArn, Subject: `${'y'.repeat(98)}!`, Message: 'm' }),
    );
    expect(fake.messages().at(-1)?.subject).toHaveLength(99);
    expect(isValidSubject('Schlüssel geändert', 'utf8')).toBe(true);
    expect(isValidSubject('two\r\nlines', 'utf8')).toBe(false);
  });

  it('enforces 256 KiB over message plus attributes', async () => {
    await client.send(
      new PublishCommand({ TopicArn: topicArn, Message: 'é'.repeat(SNS_MAX_PUBLISH_BYTES / 2) }),
    );
    expect(fake.messages().at(-1)?.size).toBe(SNS_MAX_PUBLISH_BYTES);

    const tooLong = await serviceError(
      client.send(new PublishCommand({ TopicArn: topicArn, Message: 'x'.repeat(SNS_MAX_PUBLISH_BYTES + 1) })),
    );
    expect(tooLong.message).toBe('Invalid parameter: Message too long');

    const withAttribute = await serviceError(
      client.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: 'x'.repeat(SNS_MAX_PUBLISH_BYTES - 10),
          MessageAttributes: { principal: { DataType: 'String', StringValue: 'p' } },
        }),
      ),
    );
    expect(withAttribute.message).toBe('Invalid parameter: Message too long');
  });

  it('rejects a String.Array attribute that is not a JSON array', async () => {
    const error = await serviceError(
      client.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: 'm',
          MessageAttributes: { changeType: { DataType: 'String.Array', StringValue: 'added,removed' } },
        }),
      ),
    );
    expect(error.name).toBe('InvalidParameterValueException');
  });

  it('records and rejects an action it does not serve', async () => {
    const error = await serviceError(client.send(new CreateTopicCommand({ Name: 'new-topic' })));
    expect(error.name).toBe('InvalidAction');
    expect(fake.unknownCalls.at(-1)?.reason).toBe(
      'The action CreateTopic is not valid for this web service.',
    );
  });

  it('fails the calls a predicate picks', async () => {
    fake.fail((call) => call.input.Subject === 'fail me', {
      status: 500,
      code: 'KMSDisabled',
      message: 'boom',
    });
    const error = await serviceError(
      client.send(new PublishCommand({ TopicArn: topicArn, Subject: 'fail me', Message: 'm' })),
    );
    expect(error.name).toBe('KMSDisabledException');
    await client.send(new PublishCommand({ TopicArn: topicArn, Subject: 'pass me', Message: 'm' }));
    expect(fake.messages().at(-1)?.subject).toBe('pass me');
  });

  it('answers NotFound for a topic it was not told about', async () => {
    const strict = await startSnsFake({ topics: [topicArn] });
    const strictClient = snsClient(strict.endpoint);
    try {
      const error = await serviceError(
        strictClient.send(new PublishCommand({ TopicArn: `${topicArn}-other`, Message: 'm' })),
      );
      expect(error.name).toBe('NotFoundException');
      expect(strict.messages()).toEqual([]);
    } finally {
      strictClient.destroy();
      await strict.close();
    }
  });
});
