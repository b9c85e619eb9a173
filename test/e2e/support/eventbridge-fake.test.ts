import {
  EventBridgeClient,
  EventBridgeServiceException,
  PutEventsCommand,
  PutRuleCommand,
} from '@aws-sdk/client-eventbridge';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  EVENTBRIDGE_CONTRACT_LIMIT,
  EVENTBRIDGE_LIMIT_SINCE_2026,
  type EventBridgeFake,
  entrySize,
  startEventBridgeFake,
} from './eventbridge-fake.js';

let fake: EventBridgeFake;
let client: EventBridgeClient;

function eventBridgeClient(endpoint: string): EventBridgeClient {
  return new EventBridgeClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
}

async function serviceError(promise: Promise<unknown>): Promise<EventBridgeServiceException> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(EventBridgeServiceException);
  return error as EventBridgeServiceException;
}

const entry = (detail: Record<string, unknown>) => ({
  Source: 'bigstate.key-audit',
  DetailType: 'BigState API Keys Changed',
  Detail: JSON.stringify(detail),
});

/** An entry whose EventBridge size is exactly `size` bytes. */
const entryOfSize = (size: number) => {
  const base = entry({ pad: '' });
  return entry({ pad: 'x'.repeat(size - entrySize(base)) });
};

beforeAll(async () => {
  fake = await startEventBridgeFake();
  client = eventBridgeClient(fake.endpoint);
});

afterAll(async () => {
  client.destroy();
  await fake.close();
});

beforeEach(() => {
  fake.recover();
});

describe('EventBridge fake through the real EventBridgeClient', () => {
  it('records accepted entries with their parsed detail and bus', async () => {
    const answer = await client.send(
      new PutEventsCommand({
        Entries: [{ ...entry({ changeId: 'c1', added: ['k'] }), EventBusName: 'audit-bus' }],
      }),
    );
    expect(answer.FailedEntryCount).toBe(0);
    const [event] = fake.events().slice(-1);
    expect(answer.Entries?.[0]?.EventId).toBe(event?.eventId);
    expect(event).toMatchObject({
      source: 'bigstate.key-audit',
      detailType: 'BigState API Keys Changed',
      detailJson: { changeId: 'c1', added: ['k'] },
      eventBusName: 'audit-bus',
    });
    expect(fake.calls('PutEvents').at(-1)?.headers['x-amz-target']).toBe('AWSEvents.PutEvents');
  });

  it('fails single entries on demand while the call succeeds (FailedEntryCount > 0)', async () => {
    fake.failEntries(1, { errorCode: 'ThrottlingException', errorMessage: 'Rate exceeded' });
    const before = fake.events().length;
    const answer = await client.send(
      new PutEventsCommand({ Entries: [entry({ changeId: 'first' }), entry({ changeId: 'second' })] }),
    );
    expect(answer.FailedEntryCount).toBe(1);
    expect(answer.Entries?.[0]).toMatchObject({
      ErrorCode: 'ThrottlingException',
      ErrorMessage: 'Rate exceeded',
    });
    expect(answer.Entries?.[1]?.EventId).toBeDefined();
    expect(
      fake
        .events()
        .slice(before)
        .map((event) => event.detailJson.changeId),
    ).toEqual(['second']);
    expect(fake.failedEntries().at(-1)?.errorCode).toBe('ThrottlingException');
  });

  it('fails entries with a malformed or missing Detail as EventBridge does', async () => {
    const answer = await client.send(
      new PutEventsCommand({
        Entries: [
          { Source: 's', DetailType: 'd', Detail: '["not","an","object"]' },
          { Source: 's', DetailType: 'd' },
        ],
      }),
    );
    expect(answer.FailedEntryCount).toBe(2);
    expect(answer.Entries?.map((result) => result.ErrorCode)).toEqual(['MalformedDetail', 'InvalidArgument']);
  });

  it('enforces the size limit on the request entries with ValidationException', async () => {
    await client.send(new PutEventsCommand({ Entries: [entryOfSize(EVENTBRIDGE_CONTRACT_LIMIT)] }));
    expect(fake.events().at(-1)?.size).toBe(EVENTBRIDGE_CONTRACT_LIMIT);

    const before = fake.events().length;
    const error = await serviceError(
      client.send(new PutEventsCommand({ Entries: [entryOfSize(EVENTBRIDGE_CONTRACT_LIMIT + 1)] })),
    );
    expect(error.name).toBe('ValidationException');
    expect(error.message).toBe('Total size of the entries in the request is over the limit.');
    const split = await serviceError(
      client.send(new PutEventsCommand({ Entries: [entryOfSize(200_000), entryOfSize(100_000)] })),
    );
    expect(split.name).toBe('ValidationException');
    expect(fake.events()).toHaveLength(before);

    const current = await startEventBridgeFake({ maxEntriesBytes: EVENTBRIDGE_LIMIT_SINCE_2026 });
    const currentClient = eventBridgeClient(current.endpoint);
    try {
      await currentClient.send(new PutEventsCommand({ Entries: [entryOfSize(500_000)] }));
      expect(current.events()).toHaveLength(1);
    } finally {
      currentClient.destroy();
      await current.close();
    }
  });

  it('rejects more than 10 entries', async () => {
    const entries = Array.from({ length: 11 }, (_, index) => entry({ index }));
    expect((await serviceError(client.send(new PutEventsCommand({ Entries: entries })))).name).toBe(
      'ValidationException',
    );
  });

  it('fails whole calls on demand: 500 InternalException by default, or ThrottlingException', async () => {
    fake.fail(1);
    const internal = await serviceError(client.send(new PutEventsCommand({ Entries: [entry({})] })));
    expect(internal.name).toBe('InternalException');
    expect(internal.$metadata.httpStatusCode).toBe(500);

    fake.fail('always', { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' });
    const throttled = await serviceError(client.send(new PutEventsCommand({ Entries: [entry({})] })));
    expect(throttled.name).toBe('ThrottlingException');
    fake.recover();
    expect((await client.send(new PutEventsCommand({ Entries: [entry({})] }))).FailedEntryCount).toBe(0);
  });

  it('records and rejects an operation it does not serve', async () => {
    const error = await serviceError(
      client.send(new PutRuleCommand({ Name: 'rule', ScheduleExpression: 'rate(1 hour)' })),
    );
    expect(error.name).toBe('UnknownOperationException');
    expect(fake.unknownCalls.at(-1)?.reason).toBe('unknown X-Amz-Target AWSEvents.PutRule');
  });
});
