import './support.js';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  assertConditionalWrites,
  LeaseHeldError,
  S3SnapshotStore,
} from '../../../functions/adapters/aws/s3-store.js';
import {
  ConcurrentWriteError,
  RecordFormatError,
  StorageError,
  TimeBudgetError,
} from '../../../functions/commons/errors.js';
import type { FailureState, RunState, SideFailure } from '../../../functions/core/ports.js';
import { serialize } from '../../../functions/core/records.js';
import { legacySnapshotOf, recordOf, snapshotOf } from '../../core/support/fakes.js';
import { changeRecord, objectBody, s3Error } from './support.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const s3 = mockClient(S3Client);
const store = new S3SnapshotStore(new S3Client({ region: 'eu-central-1' }), 'audit-bucket');
const snapshot = snapshotOf('svc a&b', ['a', 'b'], { pattern: 'a*' });

beforeEach(() => {
  s3.reset();
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('S3SnapshotStore locations', () => {
  it('names snapshots and change records with the layout keys', () => {
    expect(store.snapshotLocation('svc a&b')).toBe('s3://audit-bucket/snapshots/svc%20a%26b.json');
    expect(store.changeRecordLocation('../x', 'chg-1')).toBe(
      's3://audit-bucket/history/%2E%2E%2Fx/chg-1.json',
    );
  });
});

describe('S3SnapshotStore.read', () => {
  it('reads the snapshot with its ETag as the version', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshot)), ETag: '"etag-1"' });
    await expect(store.read('svc a&b')).resolves.toStrictEqual({ snapshot, version: '"etag-1"' });
    expect(s3).toReceiveCommandExactlyOnceWith(GetObjectCommand, {
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
    });
  });

  it('returns undefined when there is no snapshot yet (NoSuchKey)', async () => {
    s3.on(GetObjectCommand).rejects(
      new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
    );
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it('returns undefined for any 404', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NotFound', 404));
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it.each([
    ['AccessDenied', 403],
    ['InternalError', 500],
    ['SlowDown', 503],
  ])('fails with StorageError on %s (%i), naming the location', async (name, status) => {
    const cause = s3Error(name, status, `${name} happened`);
    s3.on(GetObjectCommand).rejects(cause);
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`could not read s3://audit-bucket/snapshots/root.json: ${name} happened`);
    expect(error.cause).toBe(cause);
  });

  it('fails with StorageError on a network error', async () => {
    s3.on(GetObjectCommand).rejects(new Error('socket hang up'));
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe('could not read s3://audit-bucket/snapshots/root.json: socket hang up');
  });

  it('fails with StorageError, never undefined, for a corrupt snapshot', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":1,'), ETag: '"e"' });
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe('snapshot s3://audit-bucket/snapshots/root.json is not valid JSON');
  });

  it('fails with StorageError for a snapshot of another shape or principal, or an empty body', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"keys":[]}'), ETag: '"e"' });
    expect(await failure(store.read('root'))).toBeInstanceOf(StorageError);
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshotOf('other', []))), ETag: '"e"' });
    expect((await failure(store.read('root'))).message).toBe(
      'snapshot s3://audit-bucket/snapshots/root.json belongs to another principal',
    );
    s3.on(GetObjectCommand).resolves({ ETag: '"e"' });
    const empty = await failure(store.read('root'));
    expect(empty).toBeInstanceOf(StorageError);
    expect(empty.message).toBe('snapshot s3://audit-bucket/snapshots/root.json is not valid JSON');
  });

  it('fails with StorageError when S3 returns no ETag (a conditional write needs one)', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshotOf('root', []))) });
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      'S3 returned s3://audit-bucket/snapshots/root.json without an ETag: a conditional write needs one',
    );
  });
});

describe('S3SnapshotStore.write', () => {
  it("writes a first snapshot only if there is none (If-None-Match: '*'), returning the new ETag", async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"new"' });
    await expect(store.write('svc a&b', snapshot, undefined)).resolves.toBe('"new"');
    expect(s3).toReceiveCommandTimes(PutObjectCommand, 1);
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
      Body: serialize(snapshot),
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
  });

  it('replaces a snapshot only if it still has the ETag that was read (If-Match), returning the new ETag', async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"etag-2"' });
    await expect(store.write('svc a&b', snapshot, '"etag-1"')).resolves.toBe('"etag-2"');
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
      Body: serialize(snapshot),
      ContentType: 'application/json',
      IfMatch: '"etag-1"',
    });
  });

  it.each([
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
  ])('turns %s (%i) into ConcurrentWriteError', async (name, status) => {
    const cause = s3Error(name, status);
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.write('root', snapshotOf('root', []), '"etag-1"'));
    expect(error).toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(
      's3://audit-bucket/snapshots/root.json changed since this run read it (conditional write refused); the next run audits again',
    );
    expect(error.cause).toBe(cause);
  });

  it('turns any other failure into StorageError', async () => {
    const cause = s3Error('AccessDenied', 403, 'Access Denied');
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.write('root', snapshotOf('root', []), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe('could not write s3://audit-bucket/snapshots/root.json: Access Denied');
    expect(error.cause).toBe(cause);
  });

  it('turns a network error into StorageError', async () => {
    s3.on(PutObjectCommand).rejects(new Error('ECONNRESET'));
    expect(await failure(store.write('root', snapshotOf('root', []), undefined))).toBeInstanceOf(
      StorageError,
    );
  });

  it('fails with StorageError when S3 stored the snapshot without returning an ETag', async () => {
    s3.on(PutObjectCommand).resolves({});
    const error = await failure(store.write('root', snapshotOf('root', []), '"etag-1"'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(
      'S3 stored s3://audit-bucket/snapshots/root.json without returning an ETag: a conditional write needs one',
    );
  });

  it('writes the state with its outbox and write id, as serialize spells it', async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"e"' });
    const state = snapshotOf('root', ['a'], {
      writeId: 'run-9/abc',
      pending: [{ record: recordOf('root', 'chg-1'), deliveredTo: ['sns'] }],
    });
    await store.write('root', state, '"etag-1"');
    const body = String(s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body);
    expect(JSON.parse(body)).toStrictEqual(JSON.parse(serialize(state)));
    expect(JSON.parse(body)).toMatchObject({ schemaVersion: 2, writeId: 'run-9/abc' });
  });
});

describe('S3SnapshotStore: the run deadline', () => {
  /** A signal that ended as the run's work deadline ends it. */
  function endedSignal(): AbortSignal {
    const controller = new AbortController();
    controller.abort(new TimeBudgetError("the run's work deadline ended"));
    return controller.signal;
  }

  /** The SDK rejects an aborted call with its own AbortError, which says nothing of the deadline. */
  const sdkAbort = () => Object.assign(new Error('Request aborted'), { name: 'AbortError' });

  it('hands the signal to every call', async () => {
    const signal = new AbortController().signal;
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshotOf('root', []))), ETag: '"e"' });
    s3.on(PutObjectCommand).resolves({ ETag: '"e2"' });
    await store.read('root', { signal });
    await store.write('root', snapshotOf('root', []), '"e"', { signal });
    await store.writeChangeRecord(changeRecord(), { signal });
    expect((s3.commandCalls(GetObjectCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(2);
    for (const call of s3.commandCalls(PutObjectCommand))
      expect((call.args as unknown[])[1]).toEqual({ abortSignal: signal });
  });

  it.each([
    ['read', () => store.read('root', { signal: endedSignal() }), GetObjectCommand],
    [
      'write',
      () => store.write('root', snapshotOf('root', []), '"e"', { signal: endedSignal() }),
      PutObjectCommand,
    ],
    [
      'writeChangeRecord',
      () => store.writeChangeRecord(changeRecord(), { signal: endedSignal() }),
      PutObjectCommand,
    ],
  ] as const)(
    'says the deadline ended a %s it aborted, not "Request aborted"',
    async (_operation, call, command) => {
      s3.on(command).rejects(sdkAbort());
      const error = await failure(call());
      expect(error).toBeInstanceOf(StorageError);
      expect(error).not.toBeInstanceOf(ConcurrentWriteError);
      expect(error.message).toMatch(/deadline|time budget/);
      expect(error.message).not.toContain('Request aborted');
      expect(error.cause).toBeInstanceOf(TimeBudgetError);
    },
  );

  it('keeps the SDK error when the signal did not end', async () => {
    s3.on(PutObjectCommand).rejects(sdkAbort());
    const error = await failure(
      store.write('root', snapshotOf('root', []), '"e"', { signal: new AbortController().signal }),
    );
    expect(error.message).toBe('could not write s3://audit-bucket/snapshots/root.json: Request aborted');
  });
});

describe('S3SnapshotStore.writeChangeRecord', () => {
  const record = changeRecord({ principal: 'zürich-ops' });

  it('stores the record once under history/<principal>/<changeId>.json', async () => {
    s3.on(PutObjectCommand).resolves({});
    await store.writeChangeRecord(record);
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'history/z%C3%BCrich-ops/chg-0123456789abcdef0123456789abcdef.json',
      Body: serialize(record),
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
  });

  it('treats PreconditionFailed (412) as "stored already" (the same id is the same change)', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    await expect(store.writeChangeRecord(record)).resolves.toBeUndefined();
  });

  it('fails on ConditionalRequestConflict (409): another write was under way, nothing says it finished', async () => {
    const cause = s3Error(
      'ConditionalRequestConflict',
      409,
      'A conflicting conditional operation is in progress',
    );
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.writeChangeRecord(record));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${record.changeRecordLocation}: A conflicting conditional operation is in progress`,
    );
    expect(error.cause).toBe(cause);
  });

  it('fails with StorageError naming the record location otherwise', async () => {
    const cause = s3Error('ServiceUnavailable', 503, 'Please reduce your request rate.');
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.writeChangeRecord(record));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${record.changeRecordLocation}: Please reduce your request rate.`,
    );
    expect(error.cause).toBe(cause);
  });
});

describe('S3SnapshotStore.read of earlier schemas', () => {
  it('reads a schema-1 snapshot as a state with no host and no pending change', async () => {
    s3.on(GetObjectCommand).resolves({
      Body: objectBody(JSON.stringify(legacySnapshotOf('root', ['a']))),
      ETag: '"old"',
    });
    const read = await store.read('root');
    expect(read?.version).toBe('"old"');
    expect(read?.snapshot).toMatchObject({ schemaVersion: 2, host: null, pending: [], writeId: '' });
  });
});

describe('assertConditionalWrites', () => {
  it('passes with the S3 client installed, sending nothing', async () => {
    await expect(assertConditionalWrites()).resolves.toBeUndefined();
    expect(s3).not.toReceiveAnyCommand();
  });

  /** Makes every PutObject drop a header before it is sent, as an SDK that does not know the field would. */
  function dropHeader(header: string): void {
    const prototype = Object.getPrototypeOf(PutObjectCommand.prototype) as {
      resolveMiddleware: (...args: unknown[]) => unknown;
    };
    const original = prototype.resolveMiddleware;
    vi.spyOn(prototype, 'resolveMiddleware').mockImplementation(function (
      this: PutObjectCommand,
      ...args: unknown[]
    ) {
      this.middlewareStack.add(
        (next) => async (handlerArgs) => {
          const request = handlerArgs.request as { headers?: Record<string, string> };
          for (const name of Object.keys(request.headers ?? {})) {
            if (name.toLowerCase() === header) delete request.headers?.[name];
          }
          return next(handlerArgs);
        },
        { step: 'build', priority: 'high', name: `drop-${header}` },
      );
      return original.apply(this, args);
    });
  }

  it.each(['if-match', 'if-none-match'])(
    'fails, naming the risk, when the client drops %s',
    async (header) => {
      dropHeader(header);
      const error = await failure(assertConditionalWrites());
      expect(error).toBeInstanceOf(StorageError);
      expect(error.message).toBe(
        'the S3 client in use does not send If-Match / If-None-Match on PutObject: conditional writes would be ' +
          'silently unconditional; bundle a newer @aws-sdk/client-s3',
      );
    },
  );

  it('fails when the client drops the field before it becomes a header', async () => {
    const prototype = Object.getPrototypeOf(PutObjectCommand.prototype) as {
      resolveMiddleware: (...args: unknown[]) => unknown;
    };
    const original = prototype.resolveMiddleware;
    vi.spyOn(prototype, 'resolveMiddleware').mockImplementation(function (
      this: PutObjectCommand,
      ...args: unknown[]
    ) {
      this.middlewareStack.add(
        (next) => async (handlerArgs) => {
          const input = handlerArgs.input as { IfMatch?: string };
          delete input.IfMatch;
          return next(handlerArgs);
        },
        { step: 'initialize', name: 'forget-if-match' },
      );
      return original.apply(this, args);
    });
    await expect(assertConditionalWrites()).rejects.toMatchObject({
      name: 'StorageError',
      message: expect.stringMatching(/^the S3 client in use does not send If-Match/),
    });
  });
});

describe('S3SnapshotStore: the run-level record', () => {
  const secretFailure: FailureState = {
    stage: 'reading the API key',
    errorName: 'SecretError',
    status: null,
    reason: 'reading the API key: secret bigstate holds an empty API key',
    since: '2025-06-01T12:00:00.000Z',
    lastNotifiedAt: null,
    runId: 'run-1',
  };
  const failing: RunState = { schemaVersion: 1, writeId: 'run-1/a', failure: secretFailure };
  const LOCATION = 's3://audit-bucket/snapshots/.run.json';

  it('reads snapshots/.run.json with its ETag as the version', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(failing)), ETag: '"run-1"' });
    await expect(store.readRunState()).resolves.toStrictEqual({ state: failing, version: '"run-1"' });
    expect(s3).toReceiveCommandExactlyOnceWith(GetObjectCommand, {
      Bucket: 'audit-bucket',
      Key: 'snapshots/.run.json',
    });
  });

  it('returns undefined when there is none (404)', async () => {
    s3.on(GetObjectCommand).rejects(
      new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
    );
    await expect(store.readRunState()).resolves.toBeUndefined();
  });

  it('fails with StorageError naming the record, never "no record", for a corrupt record or another shape', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":1,'), ETag: '"e"' });
    const corrupt = await failure(store.readRunState());
    expect(corrupt).toBeInstanceOf(StorageError);
    expect(corrupt.message).toBe(`run record ${LOCATION} is not valid JSON`);
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":2,"writeId":"x"}'), ETag: '"e"' });
    const shape = await failure(store.readRunState());
    expect(shape).toBeInstanceOf(StorageError);
    expect(shape.message.startsWith(`run record ${LOCATION} is not a run record: `)).toBe(true);
  });

  it('says a record it cannot read is there, and at which version (so it can be replaced); S3 failing is not that', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":3}'), ETag: '"newer"' });
    const newer = await failure(store.readRunState());
    expect(newer).toBeInstanceOf(RecordFormatError);
    expect((newer as RecordFormatError).version).toBe('"newer"');
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403, 'Access Denied'));
    expect(await failure(store.readRunState())).not.toBeInstanceOf(RecordFormatError);
  });

  it('fails with StorageError naming the location when S3 fails or returns no ETag', async () => {
    const cause = s3Error('AccessDenied', 403, 'Access Denied');
    s3.on(GetObjectCommand).rejects(cause);
    const denied = await failure(store.readRunState());
    expect(denied).toBeInstanceOf(StorageError);
    expect(denied.message).toBe(`could not read ${LOCATION}: Access Denied`);
    expect(denied.cause).toBe(cause);
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(failing)) });
    expect((await failure(store.readRunState())).message).toBe(
      `S3 returned ${LOCATION} without an ETag: a conditional write needs one`,
    );
  });

  it("writes a first record only if there is none (If-None-Match: '*'), then only at the ETag read (If-Match)", async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"run-2"' });
    await expect(store.writeRunState(failing, undefined)).resolves.toBe('"run-2"');
    await expect(store.writeRunState(failing, '"run-1"')).resolves.toBe('"run-2"');
    expect(s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input)).toStrictEqual([
      {
        Bucket: 'audit-bucket',
        Key: 'snapshots/.run.json',
        Body: serialize(failing),
        ContentType: 'application/json',
        IfNoneMatch: '*',
      },
      {
        Bucket: 'audit-bucket',
        Key: 'snapshots/.run.json',
        Body: serialize(failing),
        ContentType: 'application/json',
        IfMatch: '"run-1"',
      },
    ]);
  });

  it.each([
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
  ])('turns %s (%i) on the record into ConcurrentWriteError naming it', async (name, status) => {
    s3.on(PutObjectCommand).rejects(s3Error(name, status));
    const error = await failure(store.writeRunState(failing, '"run-1"'));
    expect(error).toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(
      `${LOCATION} changed since this run read it (conditional write refused); the next run audits again`,
    );
  });

  it('turns any other failure of the write into StorageError naming the record', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('SlowDown', 503, 'Please reduce your request rate.'));
    const error = await failure(store.writeRunState(failing, undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(`could not write ${LOCATION}: Please reduce your request rate.`);
  });

  it('hands the signal to both calls, and says the deadline ended a call it aborted', async () => {
    const signal = new AbortController().signal;
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(failing)), ETag: '"e"' });
    s3.on(PutObjectCommand).resolves({ ETag: '"e2"' });
    await store.readRunState({ signal });
    await store.writeRunState(failing, '"e"', { signal });
    expect((s3.commandCalls(GetObjectCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });
    expect((s3.commandCalls(PutObjectCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });

    const controller = new AbortController();
    controller.abort(new TimeBudgetError("the run's hard stop ended"));
    s3.on(GetObjectCommand).rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    const error = await failure(store.readRunState({ signal: controller.signal }));
    expect(error.message).toBe(`could not read ${LOCATION}: the run's hard stop ended`);
    expect(error.cause).toBeInstanceOf(TimeBudgetError);
  });

  it('is no principal state: a principal named ".run" has a key of its own', () => {
    expect(store.snapshotLocation('.run')).toBe('s3://audit-bucket/snapshots/%2Erun.json');
    expect(store.snapshotLocation('.run')).not.toBe(LOCATION);
  });
});

describe('S3SnapshotStore.acquireLease', () => {
  const NOW = new Date('2026-11-28T10:00:00.000Z');
  const mine = { runId: 'exec-1', expiresAt: '2026-11-28T11:00:00.000Z' };
  const held = (runId: string, expiresAt = '2026-11-28T10:30:00.000Z') => ({
    Body: objectBody(JSON.stringify({ runId, expiresAt })),
    ETag: '"lease-etag"',
  });

  it('takes a lease held by this very run (an earlier attempt whose answer was lost) as its own', async () => {
    s3.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(s3Error('PreconditionFailed', 412));
    s3.on(GetObjectCommand).resolves(held('exec-1'));
    s3.on(PutObjectCommand, { IfMatch: '"lease-etag"' }).resolves({ ETag: '"new"' });
    expect(await store.acquireLease(mine, NOW)).toEqual({ acquired: true });
  });

  it("refuses another run's live lease, and takes over an expired one only if it is still that one", async () => {
    s3.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(s3Error('PreconditionFailed', 412));
    s3.on(GetObjectCommand).resolves(held('exec-0'));
    expect(await store.acquireLease(mine, NOW)).toEqual({
      acquired: false,
      holder: { runId: 'exec-0', expiresAt: '2026-11-28T10:30:00.000Z' },
    });
    s3.on(GetObjectCommand).resolves(held('crashed', '2026-11-28T09:00:00.000Z'));
    s3.on(PutObjectCommand, { IfMatch: '"lease-etag"' }).resolves({ ETag: '"new"' });
    expect(await store.acquireLease(mine, NOW)).toEqual({ acquired: true });
  });

  it('once a lease is known to exist, a failure to read it is a LeaseHeldError, never "no lease"', async () => {
    s3.on(PutObjectCommand, { IfNoneMatch: '*' }).rejects(s3Error('PreconditionFailed', 412));
    s3.on(GetObjectCommand).rejects(s3Error('SlowDown', 503));
    const error = await failure(store.acquireLease(mine, NOW));
    expect(error).toBeInstanceOf(LeaseHeldError);
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toMatch(/no audit without it/);
  });

  it('a lease that cannot be created at all (S3 failing) is a plain StorageError', async () => {
    s3.on(PutObjectCommand).rejects(s3Error('InternalError', 500));
    const error = await failure(store.acquireLease(mine, NOW));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(LeaseHeldError);
  });
});

describe('S3SnapshotStore: failures kept aside (an unreadable state)', () => {
  const failure403: FailureState = {
    stage: 'reading the snapshot',
    errorName: 'StorageError',
    status: 403,
    reason:
      'reading the snapshot: could not read s3://audit-bucket/snapshots/svc%20a%26b.json: Access Denied',
    since: '2025-06-01T12:00:00.000Z',
    lastNotifiedAt: '2025-06-01T12:00:00.000Z',
    runId: 'run-1',
  };
  const record: SideFailure = {
    schemaVersion: 1,
    principal: 'svc a&b',
    writeId: 'run-1/x',
    failure: failure403,
  };
  const KEY = 'failures/svc%20a%26b.json';
  const LOCATION = `s3://audit-bucket/${KEY}`;

  it('reads failures/<segment>.json with its ETag; none is undefined (404)', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(record)), ETag: '"f1"' });
    await expect(store.readSideFailure('svc a&b')).resolves.toStrictEqual({ record, version: '"f1"' });
    expect(s3).toReceiveCommandExactlyOnceWith(GetObjectCommand, { Bucket: 'audit-bucket', Key: KEY });
    s3.on(GetObjectCommand).rejects(
      new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
    );
    await expect(store.readSideFailure('svc a&b')).resolves.toBeUndefined();
  });

  it('returns a record that is corrupt, of another shape or of another principal without it, naming why, at its version', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":1,'), ETag: '"e"' });
    await expect(store.readSideFailure('svc a&b')).resolves.toStrictEqual({
      record: undefined,
      version: '"e"',
      unreadable: `failure record ${LOCATION} is not valid JSON`,
    });
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":2}'), ETag: '"e2"' });
    const shape = await store.readSideFailure('svc a&b');
    expect(shape?.record).toBeUndefined();
    expect(shape?.version).toBe('"e2"');
    expect(shape?.unreadable?.startsWith(`failure record ${LOCATION} is not a failure record: `)).toBe(true);
    s3.on(GetObjectCommand).resolves({
      Body: objectBody(serialize({ ...record, principal: 'root' })),
      ETag: '"e3"',
    });
    await expect(store.readSideFailure('svc a&b')).resolves.toStrictEqual({
      record: undefined,
      version: '"e3"',
      unreadable: `failure record ${LOCATION} belongs to another principal`,
    });
    // S3 failing is not that: it throws.
    s3.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403, 'Access Denied'));
    expect(await failure(store.readSideFailure('svc a&b'))).toBeInstanceOf(StorageError);
  });

  it('writes it conditionally, as a state', async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"f2"' });
    await expect(store.writeSideFailure('svc a&b', record, undefined)).resolves.toBe('"f2"');
    await expect(store.writeSideFailure('svc a&b', record, '"f1"')).resolves.toBe('"f2"');
    expect(s3.commandCalls(PutObjectCommand).map((call) => call.args[0].input)).toStrictEqual([
      {
        Bucket: 'audit-bucket',
        Key: KEY,
        Body: serialize(record),
        ContentType: 'application/json',
        IfNoneMatch: '*',
      },
      {
        Bucket: 'audit-bucket',
        Key: KEY,
        Body: serialize(record),
        ContentType: 'application/json',
        IfMatch: '"f1"',
      },
    ]);
    s3.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    expect(await failure(store.writeSideFailure('svc a&b', record, '"f1"'))).toBeInstanceOf(
      ConcurrentWriteError,
    );
  });

  it('deletes it only at the version read; one already gone is done, one changed is a concurrent write', async () => {
    s3.on(DeleteObjectCommand).resolves({});
    await store.deleteSideFailure('svc a&b', '"f1"');
    expect(s3).toReceiveCommandExactlyOnceWith(DeleteObjectCommand, {
      Bucket: 'audit-bucket',
      Key: KEY,
      IfMatch: '"f1"',
    });
    s3.on(DeleteObjectCommand).rejects(s3Error('NoSuchKey', 404));
    await expect(store.deleteSideFailure('svc a&b', '"f1"')).resolves.toBeUndefined();
    s3.on(DeleteObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const changed = await failure(store.deleteSideFailure('svc a&b', '"f1"'));
    expect(changed).toBeInstanceOf(ConcurrentWriteError);
    expect(changed.message).toBe(`${LOCATION} changed since this run read it (conditional delete refused)`);
    const denied = s3Error('AccessDenied', 403, 'Access Denied');
    s3.on(DeleteObjectCommand).rejects(denied);
    const error = await failure(store.deleteSideFailure('svc a&b', '"f1"'));
    expect(error).not.toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(`could not delete ${LOCATION}: Access Denied`);
    expect(error.cause).toBe(denied);
  });

  it('lists the segments under failures/ page by page, leaving out what is not a record', async () => {
    const signal = new AbortController().signal;
    s3.on(ListObjectsV2Command, { Prefix: 'failures/', ContinuationToken: undefined }).resolves({
      Contents: [{ Key: KEY }, { Key: 'failures/nested/x.json' }, { Key: 'failures/.tmp' }],
      IsTruncated: true,
      NextContinuationToken: 't2',
    });
    s3.on(ListObjectsV2Command, { Prefix: 'failures/', ContinuationToken: 't2' }).resolves({
      Contents: [{ Key: `failures/abc~${'0'.repeat(32)}.json` }],
      IsTruncated: false,
    });
    const segments = await store.sideFailureSegments({ signal });
    expect([...segments].sort()).toEqual([`abc~${'0'.repeat(32)}`, 'svc%20a%26b']);
    expect(s3.commandCalls(ListObjectsV2Command).map((call) => (call.args as unknown[])[1])).toEqual([
      { abortSignal: signal },
      { abortSignal: signal },
    ]);
    s3.on(ListObjectsV2Command).rejects(s3Error('AccessDenied', 403, 'Access Denied'));
    expect((await failure(store.sideFailureSegments())).message).toBe(
      'could not list s3://audit-bucket/failures/: Access Denied',
    );
  });
});
