import './support.js';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher } from '../../../functions/adapters/aws/eventbridge-publisher.js';
import { PublishError, TimeBudgetError } from '../../../functions/commons/errors.js';
import type { Notice } from '../../../functions/core/ports.js';
import { baselineNotice, changedNotice, failedNotice } from './support.js';

const BUS = 'audit-bus';
const events = mockClient(EventBridgeClient);
const publisher = new EventBridgePublisher(new EventBridgeClient({ region: 'eu-central-1' }), BUS);

beforeEach(() => {
  events.reset();
});

async function failure(notice: Notice): Promise<PublishError> {
  try {
    await publisher.publish(notice);
  } catch (error) {
    expect(error).toBeInstanceOf(PublishError);
    return error as PublishError;
  }
  throw new Error('expected a rejection');
}

/** The one entry the publisher sent. */
function sentEntry() {
  const calls = events.commandCalls(PutEventsCommand);
  expect(calls).toHaveLength(1);
  const entries = calls[0]?.args[0].input.Entries ?? [];
  expect(entries).toHaveLength(1);
  return entries[0];
}

describe('EventBridgePublisher', () => {
  it('puts one "BigState API Keys Changed" event from bigstate.key-audit on the bus', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    await publisher.publish(changedNotice());
    const entry = sentEntry();
    expect(entry).toStrictEqual({
      EventBusName: BUS,
      Source: 'bigstate.key-audit',
      DetailType: 'BigState API Keys Changed',
      Detail: expect.any(String),
    });
    expect(JSON.parse(entry?.Detail ?? '')).toStrictEqual({
      changeId: 'chg-0123456789abcdef0123456789abcdef',
      runId: 'run-1',
      principal: 'root',
      pattern: null,
      detectedAt: '2025-06-01T12:00:00.000Z',
      counts: { added: 1, removed: 1, total: 7 },
      snapshotLocation: 's3://audit-bucket/snapshots/root.json',
      changeRecordLocation: 's3://audit-bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
      added: ['new-key'],
      removed: ['old-key'],
      truncated: false,
    });
  });

  it('puts a baseline and a failure under their own detail-types', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    await publisher.publish(baselineNotice());
    await publisher.publish(failedNotice());
    expect(events).toReceiveNthCommandWith(PutEventsCommand, 1, {
      Entries: [
        expect.objectContaining({ DetailType: 'BigState Key Audit Baseline', Source: 'bigstate.key-audit' }),
      ],
    });
    expect(events).toReceiveNthCommandWith(PutEventsCommand, 2, {
      Entries: [expect.objectContaining({ DetailType: 'BigState Key Audit Failed', EventBusName: BUS })],
    });
    const failedDetail = JSON.parse(
      events.commandCalls(PutEventsCommand)[1]?.args[0].input.Entries?.[0]?.Detail ?? '',
    );
    expect(failedDetail.principal).toBe('zürich-ops');
    expect(failedDetail.errorName).toBe('ForbiddenError');
  });

  it('puts a failure of the whole run and a recovery with principal null', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    await publisher.publish(failedNotice({ principal: null, errorName: 'SecretError' }));
    await publisher.publish({
      kind: 'recovered',
      runId: 'run-2',
      principal: null,
      detectedAt: '2025-06-02T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
    });
    const entries = events.commandCalls(PutEventsCommand).map((call) => call.args[0].input.Entries?.[0]);
    expect(entries.map((entry) => entry?.DetailType)).toEqual([
      'BigState Key Audit Failed',
      'BigState Key Audit Recovered',
    ]);
    expect(entries.map((entry) => JSON.parse(entry?.Detail ?? '{}').principal)).toEqual([null, null]);
    expect(JSON.parse(entries[1]?.Detail ?? '{}')).toStrictEqual({
      runId: 'run-2',
      principal: null,
      detectedAt: '2025-06-02T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
    });
  });

  it('accepts a response without FailedEntryCount', async () => {
    events.on(PutEventsCommand).resolves({});
    await expect(publisher.publish(changedNotice())).resolves.toBeUndefined();
  });

  it('fails with PublishError naming the error code when EventBridge refuses the entry', async () => {
    events.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'Rate exceeded' }],
    });
    const error = await failure(changedNotice());
    expect(error.message).toBe(
      'EventBridge refused the BigState API Keys Changed event on audit-bus: ThrottlingException Rate exceeded',
    );
  });

  it('says "unknown" when a refused entry carries no error code', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 1 });
    expect((await failure(failedNotice())).message).toBe(
      'EventBridge refused the BigState Key Audit Failed event on audit-bus: unknown',
    );
  });

  it('fails with PublishError naming the bus when the call fails', async () => {
    const cause = new Error('AccessDeniedException: not authorized');
    events.on(PutEventsCommand).rejects(cause);
    const error = await failure(baselineNotice());
    expect(error.message).toBe(
      'EventBridge PutEvents to audit-bus failed: AccessDeniedException: not authorized',
    );
    expect(error.cause).toBe(cause);
  });

  it("is the channel named 'events', and delivers rather than defers", async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    expect(publisher.name).toBe('events');
    await expect(publisher.publish(changedNotice())).resolves.toBeUndefined();
  });

  it('hands the signal to the call', async () => {
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    const signal = new AbortController().signal;
    await publisher.publish(changedNotice(), { signal });
    expect((events.commandCalls(PutEventsCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });
  });

  it('says the deadline ended a publish it aborted', async () => {
    const controller = new AbortController();
    const reason = new TimeBudgetError("the run's work deadline ended");
    controller.abort(reason);
    events.on(PutEventsCommand).rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    await expect(publisher.publish(changedNotice(), { signal: controller.signal })).rejects.toMatchObject({
      name: 'PublishError',
      message: "EventBridge PutEvents to audit-bus failed: the run's work deadline ended",
      cause: reason,
    });
  });
});
