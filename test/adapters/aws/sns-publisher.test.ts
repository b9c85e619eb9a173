import './support.js';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SnsPublisher } from '../../../functions/adapters/aws/sns-publisher.js';
import { PublishError, TimeBudgetError } from '../../../functions/commons/errors.js';
import { snsBody } from '../../../functions/core/messages.js';
import { baselineNotice, changedNotice, failedNotice } from './support.js';

const TOPIC = 'arn:aws:sns:eu-central-1:123456789012:bigstate-key-audit';
const sns = mockClient(SNSClient);
const publisher = new SnsPublisher(new SNSClient({ region: 'eu-central-1' }), TOPIC);

beforeEach(() => {
  sns.reset();
});

describe('SnsPublisher', () => {
  it('publishes a change with its subject, body and filter attributes', async () => {
    sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
    const notice = changedNotice();
    await publisher.publish(notice);
    expect(sns).toReceiveCommandTimes(PublishCommand, 1);
    expect(sns.commandCalls(PublishCommand)[0]?.args[0].input).toStrictEqual({
      TopicArn: TOPIC,
      Subject: 'BigState API keys changed for root (+1 -1)',
      Message: snsBody(notice),
      MessageAttributes: {
        principal: { DataType: 'String', StringValue: 'root' },
        changeType: { DataType: 'String.Array', StringValue: '["added","removed"]' },
      },
    });
    expect(snsBody(notice)).toContain('  - old-key\n');
    expect(snsBody(notice)).toContain('  + new-key\n');
  });

  it('publishes a baseline', async () => {
    sns.on(PublishCommand).resolves({});
    await publisher.publish(baselineNotice());
    expect(sns).toReceiveCommandWith(PublishCommand, {
      TopicArn: TOPIC,
      Subject: 'BigState key audit baseline for root (7 keys)',
      MessageAttributes: {
        principal: { DataType: 'String', StringValue: 'root' },
        changeType: { DataType: 'String.Array', StringValue: '["baseline"]' },
      },
    });
  });

  it('publishes a failure with an ASCII subject and the exact principal as attribute', async () => {
    sns.on(PublishCommand).resolves({});
    const notice = failedNotice();
    await publisher.publish(notice);
    expect(sns).toReceiveCommandWith(PublishCommand, {
      Subject: 'BigState key audit FAILED for zurich-ops',
      Message: snsBody(notice),
      MessageAttributes: {
        principal: { DataType: 'String', StringValue: 'zürich-ops' },
        changeType: { DataType: 'String.Array', StringValue: '["failed"]' },
      },
    });
  });

  it('publishes a failure of the whole run, and its end, without a principal attribute', async () => {
    sns.on(PublishCommand).resolves({});
    const notice = failedNotice({ principal: null, errorName: 'SecretError' });
    await publisher.publish(notice);
    await publisher.publish({
      kind: 'recovered',
      runId: 'run-2',
      principal: null,
      detectedAt: '2025-06-02T12:00:00.000Z',
      failingSince: notice.failingSince,
    });
    const inputs = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    expect(inputs.map((input) => [input.Subject, input.MessageAttributes])).toStrictEqual([
      [
        'BigState key audit FAILED for the whole run',
        { changeType: { DataType: 'String.Array', StringValue: '["failed"]' } },
      ],
      [
        'BigState key audit recovered for the whole run',
        { changeType: { DataType: 'String.Array', StringValue: '["recovered"]' } },
      ],
    ]);
    expect(inputs[0]?.Message).toBe(snsBody(notice));
  });

  it('fails with PublishError naming the topic when SNS refuses', async () => {
    const cause = new Error('Rate exceeded');
    sns.on(PublishCommand).rejects(cause);
    const error = await publisher.publish(changedNotice()).then(
      () => undefined,
      (rejection: unknown) => rejection as Error,
    );
    expect(error).toBeInstanceOf(PublishError);
    expect(error?.message).toBe(`SNS publish to ${TOPIC} failed: Rate exceeded`);
    expect(error?.cause).toBe(cause);
  });

  it("is the channel named 'sns', and delivers rather than defers", async () => {
    sns.on(PublishCommand).resolves({});
    expect(publisher.name).toBe('sns');
    await expect(publisher.publish(changedNotice())).resolves.toBeUndefined();
  });

  it('hands the signal to the call', async () => {
    sns.on(PublishCommand).resolves({});
    const signal = new AbortController().signal;
    await publisher.publish(changedNotice(), { signal });
    expect((sns.commandCalls(PublishCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });
  });

  it('says the deadline ended a publish it aborted', async () => {
    const controller = new AbortController();
    const reason = new TimeBudgetError("the run's hard stop ended");
    controller.abort(reason);
    sns.on(PublishCommand).rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    await expect(publisher.publish(failedNotice(), { signal: controller.signal })).rejects.toMatchObject({
      name: 'PublishError',
      message: `SNS publish to ${TOPIC} failed: the run's hard stop ended`,
      cause: reason,
    });
  });
});
