import { describe, expect, it } from 'vitest';
import { ForbiddenError } from '../../functions/bigstate/errors.js';
import { AuditRunFailedError, StorageError } from '../../functions/commons/errors.js';
import { type AuditRequest, assertAuditSucceeded, runAudit } from '../../functions/core/audit.js';
import { changeId } from '../../functions/core/diff.js';
import type { ChangeRecord, Notice } from '../../functions/core/ports.js';
import {
  FakeLister,
  MemoryStore,
  RecordingLogger,
  RecordingPublisher,
  snapshotOf,
  steppingClock,
  storageFailure,
  type WalkScript,
} from './support/fakes.js';

const T0 = '2025-06-01T12:00:00.000Z';
const EARLIER = '2025-01-01T00:00:00.000Z';

function setup(
  inventory: Record<string, string[]> = {},
  listerOptions: ConstructorParameters<typeof FakeLister>[1] = {},
) {
  const events: string[] = [];
  const store = new MemoryStore(events);
  const publisher = new RecordingPublisher(events);
  const bigstate = new FakeLister(inventory, listerOptions);
  const logger = new RecordingLogger();
  const clock = steppingClock(T0);
  const run = (request: Partial<AuditRequest> & { principals: readonly string[] }) =>
    runAudit({ bigstate, store, publisher, clock, logger }, { runId: 'run-1', ...request });
  return { events, store, publisher, bigstate, logger, run };
}

function recordOf(notice: Notice | undefined): ChangeRecord {
  if (notice === undefined || notice.kind === 'failed')
    throw new Error(`expected a change notice, got ${notice?.kind}`);
  return notice.record;
}

describe('runAudit: baseline', () => {
  it('records the first run of a principal as one baseline notice with the count, never as added keys', async () => {
    const { run, store, publisher, bigstate } = setup({ root: ['b', 'a', 'c'] });
    const summary = await run({ principals: ['root'] });

    const id = changeId({
      principal: 'root',
      previousVersion: null,
      kind: 'baseline',
      pattern: null,
      added: ['a', 'b', 'c'],
      removed: [],
    });
    expect(summary.principals).toStrictEqual([
      {
        principal: 'root',
        status: 'ok',
        baseline: true,
        keyCount: 3,
        added: [],
        removed: [],
        changeId: id,
        changeRecordLocation: `mem://history/root/${id}`,
      },
    ]);
    const record: ChangeRecord = {
      schemaVersion: 1,
      changeId: id,
      runId: 'run-1',
      principal: 'root',
      kind: 'baseline',
      pattern: null,
      detectedAt: T0,
      previousSnapshotVersion: null,
      added: [],
      removed: [],
      counts: { added: 0, removed: 0, total: 3 },
      snapshotLocation: 'mem://snapshots/root',
      changeRecordLocation: `mem://history/root/${id}`,
    };
    expect(publisher.notices).toStrictEqual([{ kind: 'baseline', record }]);
    expect(store.records.get(id)).toStrictEqual(record);
    expect(store.writes).toHaveLength(1);
    expect(store.writes[0]?.expectedVersion).toBeUndefined();
    expect(store.snapshots.get('root')?.snapshot).toStrictEqual({
      schemaVersion: 1,
      principal: 'root',
      pattern: null,
      auditedAt: T0,
      runId: 'run-1',
      keyCount: 3,
      keys: ['a', 'b', 'c'].map((name) => ({ name, firstSeen: T0, lastSeen: T0 })),
    });
    // A baseline has nothing to confirm: one walk.
    expect(bigstate.walksOf('root')).toBe(1);
  });

  it('records a principal without keys as a baseline of 0 keys', async () => {
    const { run, publisher } = setup({ empty: [] });
    const summary = await run({ principals: ['empty'] });
    expect(summary.principals[0]).toMatchObject({ baseline: true, keyCount: 0 });
    expect(recordOf(publisher.notices[0]).counts).toEqual({ added: 0, removed: 0, total: 0 });
  });

  it('starts a new baseline after the pattern changed: one notice, no removals, no second walk', async () => {
    const { run, store, publisher, bigstate } = setup({ root: ['a2', 'a1'] });
    const version = store.seed(snapshotOf('root', ['a1', 'b', 'old'], { at: EARLIER, pattern: null }));
    const summary = await run({ principals: ['root'], pattern: 'a*' });

    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      baseline: true,
      keyCount: 2,
      added: [],
      removed: [],
    });
    expect(publisher.notices).toHaveLength(1);
    const record = recordOf(publisher.notices[0]);
    expect(record).toMatchObject({
      kind: 'baseline',
      pattern: 'a*',
      previousSnapshotVersion: version,
      added: [],
      removed: [],
      counts: { added: 0, removed: 0, total: 2 },
    });
    expect(record.changeId).toBe(
      changeId({
        principal: 'root',
        previousVersion: version,
        kind: 'baseline',
        pattern: 'a*',
        added: ['a1', 'a2'],
        removed: [],
      }),
    );
    expect(bigstate.walksOf('root')).toBe(1);
    expect(bigstate.calls[0]?.options?.pattern).toBe('a*');
    expect(store.writes[0]?.expectedVersion).toBe(version);
    const snapshot = store.snapshots.get('root')?.snapshot;
    expect(snapshot?.pattern).toBe('a*');
    // firstSeen starts afresh: the old snapshot answered another question.
    expect(snapshot?.keys.map((key) => key.firstSeen)).toEqual([T0, T0]);
  });

  it('starts a new baseline when a pattern is dropped (all keys again)', async () => {
    const { run, store, publisher } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a'], { pattern: 'a*' }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.baseline).toBe(true);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['baseline']);
    expect(recordOf(publisher.notices[0]).pattern).toBeNull();
  });
});

describe('runAudit: changes', () => {
  it('rewrites the snapshot and publishes nothing when nothing changed', async () => {
    const { run, store, publisher, bigstate, events } = setup({ root: ['b', 'a'] });
    const version = store.seed(snapshotOf('root', ['a', 'b'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });

    expect(summary.principals).toStrictEqual([
      { principal: 'root', status: 'ok', baseline: false, keyCount: 2, added: [], removed: [] },
    ]);
    expect(publisher.attempts).toEqual([]);
    expect(store.recordWrites).toEqual([]);
    expect(events).toEqual(['read:root', 'write:root']);
    expect(store.writes[0]?.expectedVersion).toBe(version);
    expect(store.snapshots.get('root')?.snapshot.keys).toStrictEqual([
      { name: 'a', firstSeen: EARLIER, lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0 },
    ]);
    expect(bigstate.walksOf('root')).toBe(1);
  });

  it('publishes added and removed keys (sorted) once a second walk confirmed the removals', async () => {
    const { run, store, publisher, bigstate } = setup({ root: ['a', 'new2', 'b', 'new1'] });
    const version = store.seed(snapshotOf('root', ['a', 'b', 'gone1', 'gone2'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });

    const id = changeId({
      principal: 'root',
      previousVersion: version,
      kind: 'changed',
      pattern: null,
      added: ['new1', 'new2'],
      removed: ['gone1', 'gone2'],
    });
    expect(bigstate.walksOf('root')).toBe(2);
    expect(summary.principals).toStrictEqual([
      {
        principal: 'root',
        status: 'ok',
        baseline: false,
        keyCount: 4,
        added: ['new1', 'new2'],
        removed: ['gone1', 'gone2'],
        changeId: id,
        changeRecordLocation: `mem://history/root/${id}`,
      },
    ]);
    const record: ChangeRecord = {
      schemaVersion: 1,
      changeId: id,
      runId: 'run-1',
      principal: 'root',
      kind: 'changed',
      pattern: null,
      detectedAt: T0,
      previousSnapshotVersion: version,
      added: ['new1', 'new2'],
      removed: ['gone1', 'gone2'],
      counts: { added: 2, removed: 2, total: 4 },
      snapshotLocation: 'mem://snapshots/root',
      changeRecordLocation: `mem://history/root/${id}`,
    };
    expect(publisher.notices).toStrictEqual([{ kind: 'changed', record }]);
    expect(store.records.get(id)).toStrictEqual(record);
    expect(store.snapshots.get('root')?.snapshot.keys.map((key) => key.name)).toEqual([
      'a',
      'b',
      'new1',
      'new2',
    ]);
  });

  it('publishes added keys after one walk: nothing to confirm', async () => {
    const { run, store, publisher, bigstate } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a']));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.walksOf('root')).toBe(1);
    expect(summary.principals[0]?.added).toEqual(['b']);
    expect(recordOf(publisher.notices[0]).counts).toEqual({ added: 1, removed: 0, total: 2 });
  });

  it('does not report a removal when the second walk sees the key again', async () => {
    const walks = (_principal: string, index: number): WalkScript => (index === 0 ? ['a'] : ['a', 'b']);
    const { run, store, publisher, bigstate } = setup({}, { walks });
    store.seed(snapshotOf('root', ['a', 'b'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });

    expect(bigstate.walksOf('root')).toBe(2);
    expect(summary.principals[0]).toMatchObject({ keyCount: 2, added: [], removed: [] });
    expect(publisher.attempts).toEqual([]);
    expect(store.snapshots.get('root')?.snapshot.keys).toStrictEqual([
      { name: 'a', firstSeen: EARLIER, lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0 },
    ]);
  });

  it('reports no removal for a name a hand-edited snapshot lists twice, and stores it once', async () => {
    const { run, store, publisher } = setup({ root: ['a', 'b'] });
    store.seed(
      snapshotOf('root', [], {
        keys: [
          { name: 'a', firstSeen: '2024-01-01T00:00:00.000Z', lastSeen: EARLIER },
          { name: 'a', firstSeen: '2024-06-01T00:00:00.000Z', lastSeen: EARLIER },
          { name: 'b', firstSeen: EARLIER, lastSeen: EARLIER },
        ],
      }),
    );
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ status: 'ok', keyCount: 2, added: [], removed: [] });
    expect(publisher.attempts).toEqual([]);
    expect(store.snapshots.get('root')?.snapshot.keys).toStrictEqual([
      { name: 'a', firstSeen: '2024-01-01T00:00:00.000Z', lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0 },
    ]);
  });

  it('keeps a key seen only in the second walk and reports it as added', async () => {
    const walks = (_principal: string, index: number): WalkScript => (index === 0 ? ['a'] : ['a', 'late']);
    const { run, store, publisher } = setup({}, { walks });
    store.seed(snapshotOf('root', ['a', 'gone']));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ keyCount: 2, added: ['late'], removed: ['gone'] });
    expect(recordOf(publisher.notices[0]).counts).toEqual({ added: 1, removed: 1, total: 2 });
    expect(store.snapshots.get('root')?.snapshot.keys.map((key) => key.name)).toEqual(['a', 'late']);
  });

  it('counts a name listed twice in one walk once, keeping its first entry', async () => {
    const walks = (): WalkScript => [{ name: 'a', v: 1 }, { name: 'a', v: 2 }, 'b'];
    const { run, store } = setup({}, { walks });
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.keyCount).toBe(2);
    expect(store.snapshots.get('root')?.snapshot.keys[0]?.attributes).toEqual({ v: 1 });
  });

  it('passes the pattern, the signal and the deadline to every walk', async () => {
    const controller = new AbortController();
    const deadline = Date.now() + 60_000;
    const { run, store, bigstate } = setup({ root: ['x1'] });
    store.seed(snapshotOf('root', ['x1', 'x2'], { pattern: 'x*' }));
    await run({ principals: ['root'], pattern: 'x*', signal: controller.signal, deadline });
    expect(bigstate.calls).toHaveLength(2);
    for (const call of bigstate.calls) {
      expect(call.options?.pattern).toBe('x*');
      expect(call.options?.signal).toBe(controller.signal);
      expect(call.options?.deadline).toBe(deadline);
    }
  });

  it('walks without a pattern and records a null pattern when none is given', async () => {
    const { run, store, bigstate } = setup({ root: ['x'] });
    await run({ principals: ['root'] });
    expect(bigstate.calls[0]?.options?.pattern).toBeUndefined();
    expect(store.snapshots.get('root')?.snapshot.pattern).toBeNull();
  });

  it('writes the change record, then publishes, and only then advances the snapshot', async () => {
    const { run, store, events } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a', 'gone']));
    await run({ principals: ['root'] });
    expect(events).toEqual(['read:root', 'record:root', 'publish:changed:root', 'write:root']);
  });

  it('orders a baseline the same way: record, notice, snapshot', async () => {
    const { run, events } = setup({ root: ['a'] });
    await run({ principals: ['root'] });
    expect(events).toEqual(['read:root', 'record:root', 'publish:baseline:root', 'write:root']);
  });
});

describe('runAudit: failures', () => {
  const forbidden = () =>
    new ForbiddenError({ method: 'GET', path: '/v1/apikey/match?principal=b&next=0', attempts: 1 });

  it('keeps the snapshot of a failed principal, publishes its failure and still audits the others', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'b' ? { error: forbidden() } : undefined;
    const { run, store, publisher } = setup({ a: ['a1'], c: ['c1'] }, { walks });
    const bVersion = store.seed(snapshotOf('b', ['b1', 'b2']));
    const bSnapshot = store.snapshots.get('b');
    const summary = await run({ principals: ['a', 'b', 'c'] });

    const reason =
      'walking the keys: BigState GET /v1/apikey/match?principal=b&next=0 -> HTTP 403: access denied (403 Forbidden): the API key may not perform this operation (after 1 attempt)';
    expect(summary.ok).toBe(false);
    expect(summary.principals.map((result) => [result.principal, result.status])).toEqual([
      ['a', 'ok'],
      ['b', 'failed'],
      ['c', 'ok'],
    ]);
    expect(summary.principals[1]).toStrictEqual({
      principal: 'b',
      status: 'failed',
      reason,
      errorName: 'ForbiddenError',
      baseline: false,
      keyCount: null,
      added: [],
      removed: [],
    });
    expect(store.snapshots.get('b')).toBe(bSnapshot);
    expect(store.snapshots.get('b')?.version).toBe(bVersion);
    expect(store.writes.map((write) => write.principal).sort()).toEqual(['a', 'c']);
    expect(publisher.ofKind('failed')).toStrictEqual([
      { kind: 'failed', runId: 'run-1', principal: 'b', reason, errorName: 'ForbiddenError', detectedAt: T0 },
    ]);
    expect(
      publisher
        .ofKind('baseline')
        .map((notice) => notice.record.principal)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(publisher.ofKind('changed')).toEqual([]);

    expect(() => assertAuditSucceeded(summary)).toThrow(AuditRunFailedError);
    try {
      assertAuditSucceeded(summary);
    } catch (error) {
      expect(error).toBeInstanceOf(AuditRunFailedError);
      const failed = error as AuditRunFailedError;
      expect(failed.name).toBe('AuditRunFailedError');
      expect(failed.message).toBe(`run run-1: 1 of 3 principal(s) failed: "b": ${reason}`);
      expect(failed.failures).toEqual([{ principal: 'b', reason }]);
    }
  });

  it('never treats a walk that broke off after some pages as complete', async () => {
    const walks = (): WalkScript => ({ keys: ['a'], error: new Error('connection reset') });
    const { run, store, publisher } = setup({}, { walks });
    const version = store.seed(snapshotOf('root', ['a', 'b', 'c']));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'walking the keys: connection reset',
      errorName: 'Error',
      keyCount: null,
      removed: [],
    });
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('fails the principal, without a removal, when the confirming walk fails', async () => {
    const walks = (_principal: string, index: number): WalkScript =>
      index === 0 ? ['a'] : { error: new Error('HTTP 503 after 5 attempts') };
    const { run, store, publisher } = setup({}, { walks });
    store.seed(snapshotOf('root', ['a', 'b']));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.reason).toBe(
      'confirming removals with a second walk: HTTP 503 after 5 attempts',
    );
    expect(store.writes).toEqual([]);
    expect(store.recordWrites).toEqual([]);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('fails the principal when its snapshot cannot be read, and walks nothing for it', async () => {
    const { run, store, bigstate } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON'));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'reading the snapshot: snapshot is not valid JSON',
      errorName: 'StorageError',
    });
    expect(bigstate.calls).toEqual([]);
    expect(store.writes).toEqual([]);
  });

  it('names a thrown non-Error value without serialising it', async () => {
    const walks = (principal: string): WalkScript =>
      ({ error: principal === 'a' ? 'plain text' : { apiKey: 'sk-leak' } }) as unknown as WalkScript;
    const { run } = setup({}, { walks });
    const summary = await run({ principals: ['a', 'b'] });
    expect(summary.principals.map((result) => [result.reason, result.errorName])).toEqual([
      ['walking the keys: plain text', 'Error'],
      ['walking the keys: unknown error', 'Error'],
    ]);
  });

  it('still resolves when the failure notice itself cannot be published, and logs that', async () => {
    const walks = (): WalkScript => ({ error: new Error('boom') });
    const { run, publisher, logger } = setup({}, { walks });
    publisher.fail = () => true;
    const summary = await run({ principals: ['root'] });
    expect(summary.ok).toBe(false);
    expect(publisher.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'could not publish the failure notice',
      extra: { principal: 'root', reason: 'channel refused the failed notice' },
    });
  });

  it('does not advance the snapshot when publishing fails; the next run publishes the same change id', async () => {
    const { run, store, publisher } = setup({ root: ['a', 'new'] });
    const version = store.seed(snapshotOf('root', ['a', 'gone']));
    publisher.fail = (notice) => notice.kind === 'changed';
    const first = await run({ principals: ['root'] });

    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'publishing the change: channel refused the changed notice',
      errorName: 'PublishError',
    });
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['failed']);
    const attempted = recordOf(publisher.attempts.find((notice) => notice.kind === 'changed'));

    publisher.fail = undefined;
    const second = await run({ principals: ['root'], runId: 'run-2' });
    expect(second.ok).toBe(true);
    const published = recordOf(publisher.ofKind('changed')[0] as Notice);
    expect(published.changeId).toBe(attempted.changeId);
    expect(published.runId).toBe('run-2');
    expect(published.added).toEqual(['new']);
    expect(published.removed).toEqual(['gone']);
    expect(store.snapshots.get('root')?.snapshot.runId).toBe('run-2');
  });

  it('publishes nothing but the failure when the change record cannot be stored; the next run repeats the id', async () => {
    const { run, store, publisher } = setup({ root: ['a', 'new'] });
    const version = store.seed(snapshotOf('root', ['a']));
    store.failOn('writeChangeRecord', 'root', storageFailure('bucket unavailable'));
    const first = await run({ principals: ['root'] });

    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'storing the change record: bucket unavailable',
      errorName: 'StorageError',
    });
    expect(publisher.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    const id = store.recordWrites[0]?.changeId;

    const second = await run({ principals: ['root'], runId: 'run-2' });
    expect(second.principals[0]?.changeId).toBe(id);
    expect(recordOf(publisher.ofKind('changed')[0]).changeId).toBe(id);
  });

  it('fails the run when the snapshot cannot be stored after publishing; the next run publishes the same id again', async () => {
    const { run, store, publisher } = setup({ root: ['a', 'new'] });
    const version = store.seed(snapshotOf('root', ['a']));
    store.failOn('write', 'root', storageFailure('throttled'));
    const first = await run({ principals: ['root'] });

    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'storing the snapshot: throttled',
      errorName: 'StorageError',
    });
    expect(store.snapshots.get('root')?.version).toBe(version);
    const firstId = recordOf(publisher.ofKind('changed')[0]).changeId;

    await run({ principals: ['root'], runId: 'run-2' });
    const changes = publisher.ofKind('changed');
    expect(changes).toHaveLength(2);
    expect(changes[1]?.record.changeId).toBe(firstId);
    expect(store.snapshots.get('root')?.snapshot.runId).toBe('run-2');
  });

  it('refuses to overwrite a snapshot a concurrent writer stored, failing the principal', async () => {
    const { run, store } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    const theirs = snapshotOf('root', ['a', 'theirs'], { runId: 'other-run' });
    store.beforeWrite = () => {
      store.beforeWrite = undefined;
      store.seed(theirs);
    };
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'ConcurrentWriteError' });
    expect(summary.principals[0]?.reason).toMatch(/^storing the snapshot: mem:\/\/snapshots\/root changed/);
    expect(store.snapshots.get('root')?.snapshot).toBe(theirs);
  });

  it('refuses to overwrite a first snapshot another writer created meanwhile', async () => {
    const { run, store } = setup({ root: ['a'] });
    const theirs = snapshotOf('root', ['x'], { runId: 'other-run' });
    store.beforeWrite = () => {
      store.beforeWrite = undefined;
      store.seed(theirs);
    };
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.errorName).toBe('ConcurrentWriteError');
    expect(store.writes[0]?.expectedVersion).toBeUndefined();
    expect(store.snapshots.get('root')?.snapshot).toBe(theirs);
  });
});

describe('assertAuditSucceeded', () => {
  it('passes a run in which every principal was audited', async () => {
    const { run } = setup({ a: ['1'] });
    const summary = await run({ principals: ['a'] });
    expect(summary.ok).toBe(true);
    expect(() => assertAuditSucceeded(summary)).not.toThrow();
  });

  it('names every failed principal and the total', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'ok' ? undefined : { error: new Error(`no ${principal}`) };
    const { run } = setup({ ok: ['1'] }, { walks });
    const summary = await run({ principals: ['x', 'ok', 'y z'] });
    expect(() => assertAuditSucceeded(summary)).toThrow(
      'run run-1: 2 of 3 principal(s) failed: "x": walking the keys: no x; "y z": walking the keys: no y z',
    );
  });

  it('says "unknown" for a failure without a reason', () => {
    const summary = {
      runId: 'r',
      dryRun: false,
      startedAt: T0,
      finishedAt: T0,
      durationMs: 0,
      ok: false,
      principals: [
        {
          principal: 'p',
          status: 'failed' as const,
          baseline: false,
          keyCount: null,
          added: [],
          removed: [],
        },
      ],
    };
    expect(() => assertAuditSucceeded(summary)).toThrow('run r: 1 of 1 principal(s) failed: "p": unknown');
  });
});

describe('runAudit: dry run', () => {
  it('walks and diffs but writes and publishes nothing, and returns the diff', async () => {
    const { run, store, publisher, events } = setup({ root: ['a', 'new'], fresh: ['x'] });
    store.seed(snapshotOf('root', ['a', 'gone']));
    const summary = await run({ principals: ['root', 'fresh'], dryRun: true });

    expect(summary.dryRun).toBe(true);
    expect(summary.ok).toBe(true);
    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      baseline: false,
      keyCount: 2,
      added: ['new'],
      removed: ['gone'],
    });
    expect(summary.principals[1]).toMatchObject({ status: 'ok', baseline: true, keyCount: 1 });
    expect(events).toEqual(['read:root', 'read:fresh']);
    expect(store.recordWrites).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(publisher.attempts).toEqual([]);
  });

  it('names the change id of a dry run but no record location, since nothing was written', async () => {
    const { run, store } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    const [dry] = (await run({ principals: ['root'], dryRun: true })).principals;
    expect(dry?.changeId).toMatch(/^chg-[0-9a-f]{32}$/);
    expect(dry).not.toHaveProperty('changeRecordLocation');
    const [real] = (await run({ principals: ['root'] })).principals;
    // The same change, so the same id; now it was stored, so it has a location.
    expect(real?.changeId).toBe(dry?.changeId);
    expect(real?.changeRecordLocation).toContain(dry?.changeId ?? 'missing');
  });

  it('publishes no failure notice for a failed principal in a dry run', async () => {
    const walks = (): WalkScript => ({ error: new Error('boom') });
    const { run, publisher } = setup({}, { walks });
    const summary = await run({ principals: ['root'], dryRun: true });
    expect(summary.ok).toBe(false);
    expect(summary.principals[0]?.reason).toBe('walking the keys: boom');
    expect(publisher.attempts).toEqual([]);
  });

  it('is not a dry run unless asked', async () => {
    const { run } = setup({ root: [] });
    expect((await run({ principals: ['root'] })).dryRun).toBe(false);
    expect((await run({ principals: ['root'], dryRun: false })).dryRun).toBe(false);
  });
});

describe('runAudit: time budget', () => {
  it('fails every principal with TimeBudgetError when the budget was spent before the run', async () => {
    const { run, store, bigstate, publisher } = setup({ a: ['1'], b: ['2'] });
    const controller = new AbortController();
    controller.abort();
    const summary = await run({ principals: ['a', 'b'], signal: controller.signal });

    const reason = 'reading the snapshot: the time budget was spent before this principal was audited';
    expect(summary.principals).toStrictEqual(
      ['a', 'b'].map((principal) => ({
        principal,
        status: 'failed',
        reason,
        errorName: 'TimeBudgetError',
        baseline: false,
        keyCount: null,
        added: [],
        removed: [],
      })),
    );
    expect(store.reads).toEqual([]);
    expect(bigstate.calls).toEqual([]);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['failed', 'failed']);
  });

  it('fails the principals not yet started once the budget runs out mid-run', async () => {
    const controller = new AbortController();
    const { run, store } = setup(
      { a: ['1'], b: ['2'] },
      { onWalk: (principal) => principal === 'a' && controller.abort() },
    );
    const summary = await run({ principals: ['a', 'b'], signal: controller.signal, concurrency: 1 });
    expect(summary.principals.map((result) => [result.principal, result.status, result.errorName])).toEqual([
      ['a', 'ok', undefined],
      ['b', 'failed', 'TimeBudgetError'],
    ]);
    expect(store.reads).toEqual(['a']);
  });
});

describe('runAudit: scheduling', () => {
  const many = Array.from({ length: 10 }, (_, i) => `p${i}`);

  it.each([
    [1, 1],
    [3, 3],
    [undefined, 4],
  ])('walks at most %s principal(s) at once (observed %s)', async (concurrency, expected) => {
    const { run, bigstate } = setup({}, { delayMs: 5 });
    const summary = await run({ principals: many, concurrency });
    expect(summary.ok).toBe(true);
    expect(bigstate.maxActive).toBe(expected);
  });

  it('audits a principal listed twice once', async () => {
    const { run, bigstate, store, publisher } = setup({ a: ['1'], b: ['2'] });
    const summary = await run({ principals: ['a', 'b', 'a'] });
    expect(summary.principals.map((result) => result.principal)).toEqual(['a', 'b']);
    expect(bigstate.walksOf('a')).toBe(1);
    expect(store.reads).toEqual(['a', 'b']);
    expect(publisher.notices).toHaveLength(2);
  });

  it('returns the principals in the order requested, whatever finishes first', async () => {
    const { run } = setup(
      { slow: ['1'], fast: ['2'] },
      { delayMs: (principal) => (principal === 'slow' ? 30 : 0) },
    );
    const summary = await run({ principals: ['slow', 'fast'] });
    expect(summary.principals.map((result) => result.principal)).toEqual(['slow', 'fast']);
  });
});

describe('runAudit: summary and logs', () => {
  it('times the run with the clock it was given', async () => {
    const events: string[] = [];
    const store = new MemoryStore(events);
    const publisher = new RecordingPublisher(events);
    const clock = steppingClock(T0, 1_000);
    const summary = await runAudit(
      { bigstate: new FakeLister({ root: ['a'] }), store, publisher, clock },
      { runId: 'run-9', principals: ['root'] },
    );
    // Clock reads: start, the principal's "now", the end.
    expect(summary).toMatchObject({
      runId: 'run-9',
      dryRun: false,
      ok: true,
      startedAt: '2025-06-01T12:00:00.000Z',
      finishedAt: '2025-06-01T12:00:02.000Z',
      durationMs: 2_000,
    });
    expect(recordOf(publisher.notices[0]).detectedAt).toBe('2025-06-01T12:00:01.000Z');
  });

  it('uses the system clock and a silent logger by default', async () => {
    const before = Date.now();
    const summary = await runAudit(
      {
        bigstate: new FakeLister({ root: ['a'] }),
        store: new MemoryStore(),
        publisher: new RecordingPublisher(),
      },
      { runId: 'r', principals: ['root'] },
    );
    const after = Date.now();
    expect(Date.parse(summary.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(summary.finishedAt)).toBeLessThanOrEqual(after);
    expect(summary.durationMs).toBe(Date.parse(summary.finishedAt) - Date.parse(summary.startedAt));
  });

  it('logs the start, each principal, the confirmation walk, a failure and the end', async () => {
    const walks = (principal: string, index: number): WalkScript | undefined => {
      if (principal === 'bad') return { error: new StorageError('nope') };
      return index === 0 ? ['a', 'n'] : ['a', 'n'];
    };
    const { run, store, logger } = setup({}, { walks });
    const version = store.seed(snapshotOf('good', ['a', 'g1', 'g2']));
    const summary = await run({ principals: ['good', 'bad'], concurrency: 1 });
    const id = summary.principals[0]?.changeId;
    expect(id).toBe(
      changeId({
        principal: 'good',
        previousVersion: version,
        kind: 'changed',
        pattern: null,
        added: ['n'],
        removed: ['g1', 'g2'],
      }),
    );
    expect(logger.lines).toStrictEqual([
      { level: 'info', message: 'audit started', extra: { principals: 2, dryRun: false } },
      { level: 'debug', message: 'confirming removals', extra: { principal: 'good', candidates: 2 } },
      {
        level: 'info',
        message: 'principal audited',
        extra: { principal: 'good', baseline: false, keyCount: 2, added: 1, removed: 2, changeId: id },
      },
      {
        level: 'error',
        message: 'principal failed',
        extra: { principal: 'bad', reason: 'walking the keys: nope', errorName: 'StorageError' },
      },
      { level: 'info', message: 'audit finished', extra: { ok: false, failed: 1, durationMs: 0 } },
    ]);
  });

  it('logs how many principals failed', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'bad' ? { error: new Error('nope') } : undefined;
    const { run, logger } = setup({ a: ['1'], b: ['2'] }, { walks });
    await run({ principals: ['a', 'bad', 'b'] });
    expect(logger.lines.at(-1)).toEqual({
      level: 'info',
      message: 'audit finished',
      extra: { ok: false, failed: 1, durationMs: 0 },
    });
  });

  it('logs a principal without a change without a change id, and a dry run as such', async () => {
    const { run, store, logger } = setup({ root: ['a'] });
    store.seed(snapshotOf('root', ['a']));
    await run({ principals: ['root'], dryRun: true });
    expect(logger.lines[0]).toEqual({
      level: 'info',
      message: 'audit started',
      extra: { principals: 1, dryRun: true },
    });
    expect(logger.lines[1]).toEqual({
      level: 'info',
      message: 'principal audited',
      extra: { principal: 'root', baseline: false, keyCount: 1, added: 0, removed: 0 },
    });
  });
});
