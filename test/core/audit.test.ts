import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSnapshotStore } from '../../functions/adapters/local/fs-store.js';
import { ForbiddenError } from '../../functions/bigstate/errors.js';
import type { PrincipalEntry, PrincipalLister } from '../../functions/bigstate/types.js';
import { Deadline } from '../../functions/commons/deadline.js';
import { AuditRunFailedError, StorageError, TimeBudgetError } from '../../functions/commons/errors.js';
import {
  type AuditDeps,
  type AuditRequest,
  acknowledgeDelivery,
  assertAuditSucceeded,
  runAudit,
} from '../../functions/core/audit.js';
import { changeId } from '../../functions/core/diff.js';
import type {
  ChangeRecord,
  FailureState,
  Notice,
  PendingChange,
  Snapshot,
} from '../../functions/core/ports.js';
import {
  FakeLister,
  HOST,
  keptOf,
  legacySnapshotOf,
  MemoryStore,
  plain,
  principalOf,
  RecordingChannel,
  RecordingLogger,
  recordOf as recordFixture,
  snapshotOf,
  steppingClock,
  storageFailure,
  type WalkScript,
} from './support/fakes.js';

const T0 = '2025-06-01T12:00:00.000Z';
const EARLIER = '2025-01-01T00:00:00.000Z';

type RunRequest = Partial<AuditRequest> & { principals: readonly string[] };

function setup(
  inventory: Record<string, string[]> = {},
  listerOptions: ConstructorParameters<typeof FakeLister>[1] = {},
) {
  const events: string[] = [];
  const store = new MemoryStore(events);
  const sns = new RecordingChannel('sns', events);
  const bus = new RecordingChannel('events', events);
  const bigstate = new FakeLister(inventory, listerOptions);
  const logger = new RecordingLogger();
  const clock = steppingClock(T0);
  const deps: AuditDeps = { bigstate, store, channels: [sns, bus], clock, logger };
  const run = (request: RunRequest) => runAudit(deps, { runId: 'run-1', host: HOST, ...request });
  return { events, store, sns, bus, bigstate, logger, deps, run };
}

function recordOf(notice: Notice | undefined): ChangeRecord {
  if (notice === undefined || !('record' in notice))
    throw new Error(`expected a change notice, got ${notice?.kind}`);
  return notice.record;
}

/** A deadline the test ends when it likes, as the run's timer would: with a TimeBudgetError. */
function controlledDeadline() {
  const controller = new AbortController();
  const deadline = Deadline.none({ signal: controller.signal });
  return {
    deadline,
    end: () => controller.abort(new TimeBudgetError("the run's work deadline ended")),
  };
}

/** A deadline that has already passed. */
const spent = () => Deadline.at(Date.now() - 1);

/** The change id of a change of `root` (no pattern) from `previousVersion`. */
const changeOf = (previousVersion: string | null, added: string[], removed: string[]) =>
  changeId({ principal: 'root', previousVersion, kind: 'changed', pattern: null, added, removed });

/**
 * What a failed principal keeps: the run's only write of it records its failure over `before` (expecting the
 * version it was read at), and its inventory, outbox and host stay byte for byte as they were. Returns the
 * failure recorded.
 */
function expectOnlyFailureRecorded(
  store: MemoryStore,
  principal: string,
  before: Snapshot,
  expectedVersion: string | undefined,
): FailureState {
  const writes = store.writes.filter((write) => write.principal === principal);
  expect(writes.map((write) => write.expectedVersion)).toEqual([expectedVersion]);
  const after = store.state(principal);
  expect(keptOf(after)).toBe(keptOf(before));
  expect(after.failure).toBeDefined();
  return after.failure as FailureState;
}

describe('runAudit: baseline', () => {
  it('records the first run of a principal as one baseline notice with the count, never as added keys', async () => {
    const { run, store, sns, bus, bigstate, events } = setup({ root: ['b', 'a', 'c'] });
    const summary = await run({ principals: ['root'] });

    // A first baseline follows no state: its id names the run (a baseline after a reset never repeats it).
    const id = changeId({
      principal: 'root',
      previousVersion: 'none:run-1',
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
        redelivered: [],
        pending: [],
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
    expect(sns.notices).toStrictEqual([{ kind: 'baseline', record }]);
    expect(bus.notices).toStrictEqual([{ kind: 'baseline', record }]);
    expect(store.records.get(id)).toStrictEqual(record);
    // Where to start (the run-level record), then committed with its change (a first state: only if there is
    // none), then marked delivered.
    expect(events).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'write:root',
      `record:root#${id}`,
      `sns:baseline:root#${id}`,
      `events:baseline:root#${id}`,
      'write:root',
      // Then the run-level record: whether a failure of the run itself has ended.
      'read-run',
    ]);
    expect(store.writes.map((write) => write.expectedVersion)).toEqual([undefined, store.writes[0]?.version]);
    expect(store.writes[0]?.snapshot.pending).toStrictEqual([{ record, deliveredTo: [] }]);
    const state = store.state('root');
    expect(state).toStrictEqual({
      schemaVersion: 2,
      principal: 'root',
      host: HOST,
      pattern: null,
      auditedAt: T0,
      runId: 'run-1',
      writeId: expect.stringMatching(/^run-1\/.+/),
      keyCount: 3,
      keys: ['a', 'b', 'c'].map((name) => ({ name, firstSeen: T0, lastSeen: T0 })),
      pending: [],
      // For the report: the key count over time (one point per write), and no removal yet.
      series: [{ at: T0, count: 3 }],
      recentRemovals: [],
    });
    // A baseline has nothing to confirm: one walk, no exact check.
    expect(bigstate.walksOf('root')).toBe(1);
    expect(bigstate.exactCalls).toEqual([]);
  });

  it('records a principal without keys as a baseline of 0 keys', async () => {
    const { run, sns } = setup({ empty: [] });
    const summary = await run({ principals: ['empty'] });
    expect(summary.principals[0]).toMatchObject({ baseline: true, keyCount: 0 });
    expect(recordOf(sns.notices[0]).counts).toEqual({ added: 0, removed: 0, total: 0 });
  });

  it('starts a new baseline after the pattern changed: one notice, no removals, no check', async () => {
    const { run, store, sns, bigstate } = setup({ root: ['a2', 'a1'] }, { pattern: 'a*' });
    const version = store.seed(snapshotOf('root', ['a1', 'b', 'old'], { at: EARLIER, pattern: null }));
    const summary = await run({ principals: ['root'], pattern: 'a*' });

    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      baseline: true,
      keyCount: 2,
      added: [],
      removed: [],
    });
    expect(sns.notices).toHaveLength(1);
    const record = recordOf(sns.notices[0]);
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
    expect(bigstate.exactCalls).toEqual([]);
    expect(bigstate.calls[0]?.options?.pattern).toBe('a*');
    expect(store.writes[0]?.expectedVersion).toBe(version);
    const snapshot = store.state('root');
    expect(snapshot.pattern).toBe('a*');
    // firstSeen starts afresh: the old snapshot answered another question.
    expect(snapshot.keys.map((key) => key.firstSeen)).toEqual([T0, T0]);
  });

  it('starts a new baseline when a pattern is dropped (all keys again)', async () => {
    const { run, store, sns } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a'], { pattern: 'a*' }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.baseline).toBe(true);
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline']);
    expect(recordOf(sns.notices[0]).pattern).toBeNull();
  });
});

describe('runAudit: host', () => {
  it('starts a new baseline for a state taken from another host, never reporting its keys removed', async () => {
    const { run, store, sns, bigstate } = setup({ root: ['x'] });
    store.seed(snapshotOf('root', ['a', 'b'], { host: 'https://staging.bigstate.dev' }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ status: 'ok', baseline: true, added: [], removed: [] });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline']);
    expect(bigstate.exactCalls).toEqual([]);
    expect(store.state('root')).toMatchObject({ host: HOST, keys: [{ name: 'x', firstSeen: T0 }] });
  });

  it('diffs a state written before hosts were recorded (host null) instead of starting a baseline', async () => {
    const { run, store, sns } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a', 'gone'], { host: null, at: EARLIER }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ baseline: false, added: ['new'], removed: ['gone'] });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['changed']);
    const state = store.state('root');
    expect(state.host).toBe(HOST);
    expect(state.keys[0]).toEqual({ name: 'a', firstSeen: EARLIER, lastSeen: T0 });
  });

  it('diffs a schema-1 snapshot file written by an earlier release, then stores schema 2', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'audit-legacy-'));
    try {
      const store = new FileSnapshotStore(folder);
      await mkdir(join(folder, 'snapshots'), { recursive: true });
      await writeFile(
        store.snapshotLocation('root'),
        JSON.stringify(legacySnapshotOf('root', ['a', 'gone'], { at: EARLIER })),
      );
      const sns = new RecordingChannel('sns');
      const summary = await runAudit(
        {
          bigstate: new FakeLister({ root: ['a', 'new'] }),
          store,
          channels: [sns],
          clock: steppingClock(T0),
        },
        { runId: 'run-1', principals: ['root'], host: HOST },
      );
      expect(summary.principals[0]).toMatchObject({
        status: 'ok',
        baseline: false,
        added: ['new'],
        removed: ['gone'],
      });
      expect(sns.notices.map((notice) => notice.kind)).toEqual(['changed']);
      const state = (await store.read('root'))?.snapshot;
      expect(state).toMatchObject({ schemaVersion: 2, host: HOST, pending: [] });
      expect(state?.keys[0]).toEqual({ name: 'a', firstSeen: EARLIER, lastSeen: T0 });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('takes two spellings of the same host for the same host', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    store.seed(snapshotOf('root', ['a'], { host: 'https://x.example' }));
    const summary = await run({ principals: ['root'], host: 'HTTPS://X.example:443/' });
    expect(summary.principals[0]).toMatchObject({ status: 'ok', baseline: false });
    expect(sns.attempts).toEqual([]);
    expect(store.state('root').host).toBe('https://x.example');
  });

  it('keeps two hosts that differ only in their port or path apart', async () => {
    for (const other of ['https://x.example:8443', 'https://x.example/v2']) {
      const { run, store } = setup({ root: ['a'] });
      store.seed(snapshotOf('root', ['a'], { host: other }));
      const summary = await run({ principals: ['root'], host: 'https://x.example' });
      expect(summary.principals[0]?.baseline).toBe(true);
    }
  });
});

describe('runAudit: changes', () => {
  it('rewrites the state and publishes nothing when nothing changed', async () => {
    const { run, store, sns, bus, bigstate } = setup({ root: ['a', 'b'] });
    const version = store.seed(snapshotOf('root', ['a', 'b'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals).toStrictEqual([
      {
        principal: 'root',
        status: 'ok',
        baseline: false,
        keyCount: 2,
        added: [],
        removed: [],
        redelivered: [],
        pending: [],
      },
    ]);
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
    expect(store.recordWrites).toEqual([]);
    expect(store.writes).toHaveLength(1);
    expect(store.writes[0]?.expectedVersion).toBe(version);
    expect(bigstate.walksOf('root')).toBe(1);
    expect(bigstate.exactCalls).toEqual([]);
    expect(store.state('root').keys).toStrictEqual([
      { name: 'a', firstSeen: EARLIER, lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0 },
    ]);
  });

  it('publishes added and removed keys (sorted), each removal confirmed by an exact query of that key', async () => {
    const { run, store, sns, bus, bigstate } = setup({ root: ['a', 'new2', 'b', 'new1'] });
    const version = store.seed(snapshotOf('root', ['a', 'b', 'gone1', 'gone2'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });

    const id = changeOf(version, ['new1', 'new2'], ['gone1', 'gone2']);
    expect(bigstate.walksOf('root')).toBe(1);
    expect(bigstate.exactPatternsOf('root')).toEqual(['gone1', 'gone2']);
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
        redelivered: [],
        pending: [],
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
    expect(sns.notices).toStrictEqual([{ kind: 'changed', record }]);
    expect(bus.notices).toStrictEqual([{ kind: 'changed', record }]);
    expect(store.records.get(id)).toStrictEqual(record);
    // The new inventory and its change are committed in one write.
    expect(store.writes[0]?.snapshot.keys.map((key) => key.name)).toEqual(['a', 'b', 'new1', 'new2']);
    expect(store.writes[0]?.snapshot.pending).toStrictEqual([{ record, deliveredTo: [] }]);
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['a', 'b', 'new1', 'new2']);
    expect(store.state('root').pending).toEqual([]);
  });

  it('publishes added keys after one walk: nothing to confirm', async () => {
    const { run, store, sns, bigstate } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a']));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.walksOf('root')).toBe(1);
    expect(bigstate.exactCalls).toEqual([]);
    expect(summary.principals[0]?.added).toEqual(['b']);
    expect(recordOf(sns.notices[0]).counts).toEqual({ added: 1, removed: 0, total: 2 });
  });

  it('reports no removal for a name a hand-edited snapshot lists twice, and stores it once', async () => {
    const { run, store, sns, bigstate } = setup({ root: ['a', 'b'] });
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
    expect(sns.attempts).toEqual([]);
    expect(bigstate.exactCalls).toEqual([]);
    expect(store.state('root').keys).toStrictEqual([
      { name: 'a', firstSeen: '2024-01-01T00:00:00.000Z', lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0 },
    ]);
  });

  it('counts a name listed twice in one walk once, keeping its first entry', async () => {
    const walks = (): WalkScript => [{ name: 'a', v: 1 }, { name: 'a', v: 2 }, 'b'];
    const { run, store } = setup({}, { walks });
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.keyCount).toBe(2);
    expect(store.state('root').keys[0]?.attributes).toEqual({ v: 1 });
  });

  it('passes the pattern and the run deadline to every walk, and a deadline no later to every check', async () => {
    const deadline = Deadline.after(60_000);
    const { run, store, bigstate } = setup({ root: ['x1'] }, { pattern: 'x*' });
    store.seed(snapshotOf('root', ['x1', 'x2'], { pattern: 'x*' }));
    await run({ principals: ['root'], pattern: 'x*', deadline });
    expect(bigstate.calls).toHaveLength(1);
    expect(bigstate.calls[0]?.options?.pattern).toBe('x*');
    expect(bigstate.calls[0]?.options?.deadline).toBe(deadline);
    expect(bigstate.exactCalls).toHaveLength(1);
    const check = bigstate.exactCalls[0]?.options;
    expect(check?.pattern).toBe('x2');
    // A check must know its time budget (to fail fast on a long Retry-After), not only its signal.
    expect(check?.deadline?.at).toBe(deadline.at);
    expect(check?.deadline?.remainingMs()).toBeLessThanOrEqual(60_000);
    deadline.dispose();
  });

  it('ends the checks with the run deadline', async () => {
    const { deadline, end } = controlledDeadline();
    const { run, store, bigstate } = setup({ root: ['a'] }, { onExact: () => end() });
    store.seed(snapshotOf('root', ['a', 'b']));
    await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    expect(bigstate.exactCalls[0]?.options?.deadline?.expired).toBe(true);
  });

  it('walks without a pattern and records a null pattern when none is given', async () => {
    const { run, store, bigstate } = setup({ root: ['x'] });
    await run({ principals: ['root'] });
    expect(bigstate.calls[0]?.options?.pattern).toBeUndefined();
    expect(store.state('root').pattern).toBeNull();
  });

  it('commits the change, then writes the change record, then publishes, then marks it delivered', async () => {
    const { run, store, events } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a', 'gone']));
    await run({ principals: ['root'] });
    expect(plain(events)).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'write:root',
      'record:root',
      'sns:changed:root',
      'events:changed:root',
      'write:root',
      'read-run',
    ]);
  });
});

describe('runAudit: exact checks of removals', () => {
  it('keeps a key the walk missed (churn) but its exact query finds, and reports nothing', async () => {
    const truth = ['a', { name: 'b', created: '2025-03-03' }];
    const { run, store, sns, bus, bigstate } = setup(
      {},
      { walks: (_p, index) => (index === 0 ? ['a'] : undefined), exact: () => truth },
    );
    store.seed(snapshotOf('root', ['a', 'b'], { at: EARLIER }));
    const summary = await run({ principals: ['root'] });

    expect(bigstate.exactPatternsOf('root')).toEqual(['b']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', keyCount: 2, added: [], removed: [] });
    expect(summary.principals[0]).not.toHaveProperty('changeId');
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
    // Kept with its first-seen time, and with the fields its exact query returned.
    expect(store.state('root').keys).toStrictEqual([
      { name: 'a', firstSeen: EARLIER, lastSeen: T0 },
      { name: 'b', firstSeen: EARLIER, lastSeen: T0, attributes: { created: '2025-03-03' } },
    ]);
  });

  it('does not report a key the checks kept as added on the next run', async () => {
    const { run, store, sns } = setup(
      {},
      { walks: (_p, index) => (index === 0 ? ['a'] : ['a', 'b']), exact: () => ['a', 'b'] },
    );
    store.seed(snapshotOf('root', ['a', 'b']));
    await run({ principals: ['root'] });
    const next = await run({ principals: ['root'], runId: 'run-2' });
    expect(next.principals[0]).toMatchObject({ status: 'ok', added: [], removed: [] });
    expect(sns.attempts).toEqual([]);
  });

  it('checks a name holding "*" with *longestFragment* and finds the exact name among several matches', async () => {
    const name = 'ci*deploy*x';
    const { run, store, bigstate } = setup(
      { root: ['a'] },
      { exact: () => ['deploy', 'ci-deploy-x', 'x*deploy*ci', name, 'redeployed'] },
    );
    store.seed(snapshotOf('root', ['a', name]));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.exactPatternsOf('root')).toEqual(['*deploy*']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', added: [], removed: [] });
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['a', name]);
  });

  it('reports a name holding "*" removed when only other names match its pattern', async () => {
    const name = 'ci*deploy*x';
    const { run, store, bigstate } = setup(
      { root: ['a'] },
      { exact: () => ['deploy', 'ci-deploy-x', 'ci*deploy*x2', 'xci*deploy*x'] },
    );
    store.seed(snapshotOf('root', ['a', name]));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.exactPatternsOf('root')).toEqual(['*deploy*']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', added: [], removed: [name] });
  });

  it('checks a name of only "*" characters with the pattern "*"', async () => {
    const { run, store, bigstate } = setup({ root: ['a'] }, { exact: () => ['a', 'x', '**'] });
    store.seed(snapshotOf('root', ['*', '**', 'a']));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.exactPatternsOf('root')).toEqual(['*', '*']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', added: [], removed: ['*'] });
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['**', 'a']);
  });

  it('fails the principal, with no partial report, when an exact check fails', async () => {
    const { run, store, sns, bus } = setup(
      { root: ['a'] },
      {
        exact: (_p, pattern) =>
          pattern === 'c' ? { error: new Error('HTTP 503 after 5 attempts') } : ['a', 'b'],
      },
    );
    const seeded = snapshotOf('root', ['a', 'b', 'c', 'd']);
    const version = store.seed(seeded);
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toStrictEqual({
      principal: 'root',
      status: 'failed',
      reason: 'confirming 3 removal(s) with an exact query of each key: HTTP 503 after 5 attempts',
      errorName: 'Error',
      baseline: false,
      keyCount: null,
      added: [],
      removed: [],
      redelivered: [],
      pending: [],
    });
    // No partial report: only the failure is recorded, over the inventory as it was.
    expect(expectOnlyFailureRecorded(store, 'root', seeded, version)).toMatchObject({
      stage: 'confirming N removal(s) with an exact query of each key',
      errorName: 'Error',
      status: null,
    });
    expect(store.recordWrites).toEqual([]);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(bus.attempts.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('fails the principal when the deadline ends during the checks, and writes nothing but its failure', async () => {
    const { deadline, end } = controlledDeadline();
    const { run, store, sns } = setup({ root: ['a'] }, { onExact: () => end() });
    const seeded = snapshotOf('root', ['a', 'b']);
    const version = store.seed(seeded);
    const summary = await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      errorName: 'TimeBudgetError',
      reason: "confirming 1 removal(s) with an exact query of each key: the run's work deadline ended",
      removed: [],
    });
    // The failure is recorded after the work deadline (before the hard stop), and nothing else is written.
    expect(expectOnlyFailureRecorded(store, 'root', seeded, version)).toMatchObject({
      errorName: 'TimeBudgetError',
    });
    expect(store.recordWrites).toEqual([]);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('returns only once every check has stopped, after one of them failed', async () => {
    const { run, store, bigstate } = setup(
      { root: ['a'] },
      {
        exactDelayMs: 50,
        exactStopMs: 30,
        onExact: (_p, pattern) => {
          if (pattern === 'b') throw new Error('refused');
        },
      },
    );
    store.seed(snapshotOf('root', ['a', 'b', 'c', 'd']));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.status).toBe('failed');
    expect(bigstate.exactActive).toBe(0);
  });

  it('runs the checks concurrently, at most checkConcurrency at once (8 by default)', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    for (const [checkConcurrency, expected] of [
      [3, 3],
      [undefined, 8],
    ] as const) {
      const { run, store, bigstate } = setup({ root: ['a'] }, { exactDelayMs: 5 });
      store.seed(snapshotOf('root', ['a', ...names]));
      const summary = await run({ principals: ['root'], checkConcurrency });
      expect(summary.principals[0]?.removed).toEqual(names);
      expect(bigstate.exactCalls).toHaveLength(12);
      expect(bigstate.exactMaxActive).toBe(expected);
    }
  });

  it('walks a second time first when more than 16 keys are missing, and checks only what it still misses', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const { run, store, sns, bigstate } = setup(
      {},
      {
        walks: (_p, index) => (index === 0 ? ['a', 'late'] : ['a', ...names.slice(0, 17)]),
      },
    );
    store.seed(snapshotOf('root', ['a', ...names]));
    const summary = await run({ principals: ['root'] });
    expect(bigstate.walksOf('root')).toBe(2);
    expect(bigstate.exactPatternsOf('root')).toEqual(['k17', 'k18', 'k19']);
    // A key seen only by the first walk stays (a walk is evidence a key exists), and is new.
    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      keyCount: 19,
      added: ['late'],
      removed: ['k17', 'k18', 'k19'],
    });
    expect(recordOf(sns.notices[0]).counts).toEqual({ added: 1, removed: 3, total: 19 });
  });

  it('keeps a key seen only in the second walk and reports it as added', async () => {
    const names = Array.from({ length: 17 }, (_, i) => `k${String(i).padStart(2, '0')}`);
    const { run, store } = setup({}, { walks: (_p, index) => (index === 0 ? [] : [...names, 'late']) });
    store.seed(snapshotOf('root', names));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ keyCount: 18, added: ['late'], removed: [] });
  });

  it('needs 17 candidates for a second walk: 16 are checked one by one', async () => {
    for (const [missing, walks] of [
      [16, 1],
      [17, 2],
    ] as const) {
      const names = Array.from({ length: missing }, (_, i) => `k${String(i).padStart(2, '0')}`);
      const { run, store, bigstate } = setup({ root: ['a'] });
      store.seed(snapshotOf('root', ['a', ...names]));
      const summary = await run({ principals: ['root'] });
      expect(bigstate.walksOf('root')).toBe(walks);
      expect(bigstate.exactCalls).toHaveLength(missing);
      expect(summary.principals[0]?.removed).toHaveLength(missing);
    }
  });

  it('fails the principal, without a removal, when the second walk fails', async () => {
    const names = Array.from({ length: 17 }, (_, i) => `k${i}`);
    const walks = (_principal: string, index: number): WalkScript =>
      index === 0 ? ['a'] : { error: new Error('HTTP 503 after 5 attempts') };
    const { run, store, sns, bigstate } = setup({}, { walks });
    const seeded = snapshotOf('root', ['a', ...names]);
    const version = store.seed(seeded);
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.reason).toBe('walking the keys again: HTTP 503 after 5 attempts');
    expect(bigstate.exactCalls).toEqual([]);
    expect(expectOnlyFailureRecorded(store, 'root', seeded, version).stage).toBe('walking the keys again');
    expect(store.recordWrites).toEqual([]);
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['failed']);
  });
});

describe('runAudit: the outbox', () => {
  it('re-delivers a change whose delivery was never marked, then reports its reversal (scenario A)', async () => {
    const { run, store, sns, bus, events, bigstate } = setup({ root: ['base', 'k1'] });
    const v0 = store.seed(snapshotOf('root', ['base', 'k2']));
    // The first write (the commit) succeeds, the second (marking it delivered) fails.
    store.failOn('write', 'root', storageFailure('throttled', { call: 1 }));
    const first = await run({ principals: ['root'] });

    const forward = changeOf(v0, ['k1'], ['k2']);
    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'marking the change delivered: throttled',
      errorName: 'StorageError',
    });
    expect(sns.changeIds()).toEqual([forward]);
    expect(bus.changeIds()).toEqual([forward]);
    const committed = store.state('root');
    expect(committed.keys.map((key) => key.name)).toEqual(['base', 'k1']);
    expect(committed.pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      [forward, []],
    ]);
    expect(first.principals[0]?.pending).toStrictEqual(committed.pending);
    // The failure is recorded over the commit (a third write), which it leaves as it was.
    expect(store.writes.map((write) => write.expectedVersion)).toEqual([
      v0,
      store.writes[0]?.version,
      store.writes[0]?.version,
    ]);
    expect(keptOf(committed)).toBe(keptOf(store.writes[0]?.snapshot as Snapshot));
    expect(committed.failure).toMatchObject({
      stage: 'marking the change delivered',
      errorName: 'StorageError',
    });

    // BigState goes back to the old keys.
    bigstate.inventory.root = ['base', 'k2'];
    events.length = 0;
    const committedVersion = store.snapshots.get('root')?.version ?? '';
    const second = await run({ principals: ['root'], runId: 'run-2' });

    expect(second.principals[0]).toMatchObject({ status: 'ok', added: ['k2'], removed: ['k1'] });
    const reverse = second.principals[0]?.changeId ?? '';
    expect(reverse).not.toBe(forward);
    expect(second.principals[0]?.redelivered.map((record) => record.changeId)).toEqual([forward]);
    // The same change id first, then the reverse change, on every channel.
    expect(sns.changeIds()).toEqual([forward, forward, reverse]);
    expect(bus.changeIds()).toEqual([forward, forward, reverse]);
    expect(recordOf(sns.ofKind('changed').at(-1))).toMatchObject({ added: ['k2'], removed: ['k1'] });
    expect(plain(events)).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'record:root',
      'sns:changed:root',
      'events:changed:root',
      'write:root',
      'write:root',
      'record:root',
      'sns:changed:root',
      'events:changed:root',
      'write:root',
      // The failure of the first run was told: its end is told too, once the run is done with the principal.
      'sns:recovered:root',
      'events:recovered:root',
      'read-run',
    ]);
    expect(events[3]).toBe(`record:root#${forward}`);
    expect(events[8]).toBe(`record:root#${reverse}`);
    // The marking write expected the committed state; the reverse change follows the marked one.
    expect(store.writes.at(-3)?.expectedVersion).toBe(committedVersion);
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['base', 'k2']);
    expect(store.state('root').pending).toEqual([]);
    expect(store.state('root').failure).toBeUndefined();
  });

  it('publishes nothing but the failure when the commit fails; the next run finds the same change', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    const seeded = snapshotOf('root', ['a', 'gone']);
    const version = store.seed(seeded);
    store.failOn('write', 'root', storageFailure('throttled'));
    const first = await run({ principals: ['root'] });

    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'storing the snapshot: throttled',
      errorName: 'StorageError',
      pending: [],
    });
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(bus.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(store.recordWrites).toEqual([]);
    // The refused commit, then the failure recorded over the state as it was read.
    expect(store.writes.map((write) => write.expectedVersion)).toEqual([version, version]);
    expect(keptOf(store.state('root'))).toBe(keptOf(seeded));
    expect(store.state('root').failure?.stage).toBe('storing the snapshot');
    const failedVersion = store.snapshots.get('root')?.version ?? null;

    const second = await run({ principals: ['root'], runId: 'run-2' });
    // The same change, from the state the failure was recorded in.
    const id = changeOf(failedVersion, ['new'], ['gone']);
    expect(second.principals[0]).toMatchObject({
      status: 'ok',
      changeId: id,
      added: ['new'],
      removed: ['gone'],
    });
    expect(sns.changeIds()).toEqual([id]);
    expect(bus.changeIds()).toEqual([id]);
    expect(store.state('root').runId).toBe('run-2');
    expect(store.state('root').failure).toBeUndefined();
    expect(sns.ofKind('recovered')).toHaveLength(1);
  });

  it('refuses to commit over a state a concurrent writer stored, publishing no change', async () => {
    const { run, store, sns } = setup({ root: ['a', 'new'] });
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
    expect(store.recordWrites).toEqual([]);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('refuses to overwrite a first state another writer created meanwhile', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    const theirs = snapshotOf('root', ['x'], { runId: 'other-run' });
    store.beforeWrite = () => {
      store.beforeWrite = undefined;
      store.seed(theirs);
    };
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]?.errorName).toBe('ConcurrentWriteError');
    expect(store.writes[0]?.expectedVersion).toBeUndefined();
    expect(store.snapshots.get('root')?.snapshot).toBe(theirs);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('leaves a change SNS refused pending; the next run sends SNS the same id and EventBridge nothing twice', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    const version = store.seed(snapshotOf('root', ['a']));
    sns.fail = (notice) => notice.kind === 'changed';
    const first = await run({ principals: ['root'] });

    const id = changeOf(version, ['new'], []);
    expect(first.ok).toBe(false);
    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'publishing the change: sns refused the changed notice',
      errorName: 'PublishError',
    });
    expect(bus.changeIds()).toEqual([id]);
    expect(store.state('root').pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      [id, ['events']],
    ]);
    expect(first.principals[0]?.pending).toStrictEqual(store.state('root').pending);

    sns.fail = undefined;
    const second = await run({ principals: ['root'], runId: 'run-2' });
    expect(second.ok).toBe(true);
    expect(second.principals[0]).toMatchObject({ status: 'ok', added: [], removed: [], pending: [] });
    expect(second.principals[0]?.redelivered.map((record) => record.changeId)).toEqual([id]);
    const published = recordOf(sns.ofKind('changed')[0]);
    expect(published.changeId).toBe(id);
    expect(published.runId).toBe('run-1');
    expect(published).toMatchObject({ added: ['new'], removed: [] });
    expect(bus.changeIds()).toEqual([id]);
    expect(store.state('root').pending).toEqual([]);
  });

  it('names the channel failure, not the failed marking after it, and the next run still owes SNS only', async () => {
    const { run, store, sns, bus, logger } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    sns.fail = (notice) => notice.kind === 'changed';
    store.failOn('write', 'root', storageFailure('throttled', { call: 1 }));
    const first = await run({ principals: ['root'] });
    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'publishing the change: sns refused the changed notice',
      errorName: 'PublishError',
    });
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not mark the deliveries; the next run delivers them again',
      extra: { principal: 'root', reason: 'marking the change delivered: throttled' },
    });
    // Not marked: EventBridge's delivery is not recorded, so it gets the change again (at least once).
    const id = store.state('root').pending[0]?.record.changeId;
    expect(store.state('root').pending.map((entry) => entry.deliveredTo)).toEqual([[]]);

    sns.fail = undefined;
    await run({ principals: ['root'], runId: 'run-2' });
    expect(sns.changeIds()).toEqual([id]);
    expect(bus.changeIds()).toEqual([id, id]);
    expect(store.state('root').pending).toEqual([]);
  });

  it('re-delivers to EventBridge only when EventBridge failed and SNS succeeded', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    bus.fail = (notice) => notice.kind === 'changed';
    const first = await run({ principals: ['root'] });
    const id = first.principals[0]?.pending[0]?.record.changeId;
    expect(id).toMatch(/^chg-/);
    expect(first.principals[0]?.reason).toBe('publishing the change: events refused the changed notice');
    expect(store.state('root').pending.map((entry) => entry.deliveredTo)).toEqual([['sns']]);

    bus.fail = undefined;
    await run({ principals: ['root'], runId: 'run-2' });
    expect(sns.changeIds()).toEqual([id]);
    expect(bus.changeIds()).toEqual([id]);
    expect(bus.attempts.filter((notice) => notice.kind === 'changed')).toHaveLength(2);
    expect(store.state('root').pending).toEqual([]);
  });

  it('never sends a channel a newer change in a run in which it failed on an older one', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'b', 'new'] });
    const old = recordFixture('root', 'chg-old', { added: ['b'] });
    store.seed(snapshotOf('root', ['a', 'b'], { pending: [{ record: old, deliveredTo: ['events'] }] }));
    // SNS refuses once: the older change is then owed to SNS, and so is everything newer.
    let refusals = 1;
    sns.fail = (notice) => notice.kind === 'changed' && refusals-- > 0;
    const summary = await run({ principals: ['root'] });

    const newer = store.state('root').pending.at(-1)?.record.changeId;
    expect(newer).toMatch(/^chg-/);
    expect(newer).not.toBe('chg-old');
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'PublishError' });
    expect(
      sns.attempts.flatMap((notice) => ('record' in notice ? [notice.record.changeId] : [])),
    ).not.toContain(newer);
    expect(bus.changeIds()).toEqual([newer]);
    expect(store.state('root').pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      ['chg-old', ['events']],
      [newer, ['events']],
    ]);

    // The next run delivers both to SNS, oldest first.
    const next = await run({ principals: ['root'], runId: 'run-2' });
    expect(next.ok).toBe(true);
    expect(sns.changeIds()).toEqual(['chg-old', newer]);
    expect(bus.changeIds()).toEqual([newer]);
    expect(store.state('root').pending).toEqual([]);
  });

  it('keeps every change owed to a channel that keeps failing, oldest first, and sends it none of them', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'b', 'new'] });
    const old = recordFixture('root', 'chg-old', { added: ['b'] });
    store.seed(snapshotOf('root', ['a', 'b'], { pending: [{ record: old, deliveredTo: ['events'] }] }));
    sns.fail = (notice) => notice.kind !== 'failed';
    const summary = await run({ principals: ['root'] });
    const newer = store.state('root').pending.at(-1)?.record.changeId;
    expect(newer).toMatch(/^chg-/);
    expect(newer).not.toBe('chg-old');
    expect(sns.ofKind('changed')).toEqual([]);
    expect(
      sns.attempts.filter((notice) => notice.kind === 'changed').map((n) => recordOf(n).changeId),
    ).toEqual(expect.not.arrayContaining([newer]));
    expect(summary.principals[0]?.pending.map((entry) => entry.record.changeId)).toEqual(['chg-old', newer]);
    expect(bus.changeIds()).toEqual([newer]);
  });

  it('keeps what a channel still owes when the run finds no new change', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'b'] });
    const old = recordFixture('root', 'chg-old', { added: ['b'] });
    store.seed(snapshotOf('root', ['a', 'b'], { pending: [{ record: old, deliveredTo: ['events'] }] }));
    sns.fail = (notice) => notice.kind === 'changed';
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'delivering changes of earlier runs: sns refused the changed notice',
    });
    expect(bus.attempts.filter((notice) => notice.kind === 'changed')).toEqual([]);
    // The inventory was still read and committed, with the outbox as it was; then the failure was recorded
    // over that commit.
    expect(store.writes).toHaveLength(2);
    expect(keptOf(store.state('root'))).toBe(keptOf(store.writes[0]?.snapshot as Snapshot));
    expect(store.state('root').failure).toMatchObject({
      stage: 'delivering changes of earlier runs',
      errorName: 'PublishError',
    });
    expect(store.state('root').runId).toBe('run-1');
    expect(store.state('root').pending).toStrictEqual([{ record: old, deliveredTo: ['events'] }]);
    expect(summary.principals[0]?.pending).toStrictEqual([{ record: old, deliveredTo: ['events'] }]);
  });

  it('writes each change record before the notices that point at it, oldest change first', async () => {
    const { run, store, events } = setup({ root: ['a', 'b', 'new'] });
    const old = recordFixture('root', 'chg-old', { added: ['b'] });
    store.seed(snapshotOf('root', ['a', 'b'], { pending: [{ record: old, deliveredTo: [] }] }));
    const summary = await run({ principals: ['root'] });
    const newer = summary.principals[0]?.changeId;
    expect(events).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'record:root#chg-old',
      'sns:changed:root#chg-old',
      'events:changed:root#chg-old',
      'write:root',
      'write:root',
      `record:root#${newer}`,
      `sns:changed:root#${newer}`,
      `events:changed:root#${newer}`,
      'write:root',
      'read-run',
    ]);
    expect(store.records.get('chg-old')).toStrictEqual(old);
  });

  it('sends no channel a notice whose change record could not be stored, and keeps it pending', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    const version = store.seed(snapshotOf('root', ['a']));
    store.failOn('writeChangeRecord', 'root', storageFailure('bucket unavailable'));
    const first = await run({ principals: ['root'] });

    const id = changeOf(version, ['new'], []);
    expect(first.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'publishing the change: bucket unavailable',
      errorName: 'StorageError',
    });
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(bus.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(store.state('root').pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      [id, []],
    ]);

    const second = await run({ principals: ['root'], runId: 'run-2' });
    expect(second.principals[0]?.redelivered.map((record) => record.changeId)).toEqual([id]);
    expect(sns.changeIds()).toEqual([id]);
    expect(store.records.has(id)).toBe(true);
  });

  it('delivers pending changes even when the walk then fails, and keeps the last good inventory', async () => {
    const old = recordFixture('root', 'chg-old');
    const { run, store, sns } = setup({}, { walks: () => ({ error: new Error('connection reset') }) });
    store.seed(snapshotOf('root', ['a'], { pending: [{ record: old, deliveredTo: [] }] }));
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'walking the keys: connection reset',
      pending: [],
    });
    expect(summary.principals[0]?.redelivered).toStrictEqual([old]);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['changed', 'failed']);
    expect(store.state('root')).toMatchObject({ keys: [{ name: 'a' }], pending: [] });
  });

  it('gives every write a fresh write id: content going A -> B -> A never repeats bytes or versions', async () => {
    const { run, store, bigstate: lister } = setup({ root: ['a'] });
    await run({ principals: ['root'], runId: 'run-A' });
    lister.inventory.root = ['b'];
    await run({ principals: ['root'], runId: 'run-B' });
    lister.inventory.root = ['a'];
    await run({ principals: ['root'], runId: 'run-A2' });
    // Back to A, the clock standing still: the same content, yet never the same bytes or version.
    lister.inventory.root = ['b'];
    await run({ principals: ['root'], runId: 'run-A2' });

    const writes = store.writes;
    expect(writes.length).toBeGreaterThanOrEqual(8);
    expect(new Set(writes.map((write) => write.text)).size).toBe(writes.length);
    expect(new Set(writes.map((write) => write.version)).size).toBe(writes.length);
    expect(new Set(writes.map((write) => write.snapshot.writeId)).size).toBe(writes.length);
    for (const write of writes)
      expect(write.snapshot.writeId).toMatch(new RegExp(`^${write.snapshot.runId}/.+`));
    // Each write expected the version the previous one made: a stale version can never match again.
    for (let i = 1; i < writes.length; i += 1) {
      expect(writes[i]?.expectedVersion).toBe(writes[i - 1]?.version);
    }
  });
});

describe('runAudit: a principal with nothing new writes nothing', () => {
  function withClock(at: { now: Date }) {
    const store = new MemoryStore();
    const bigstate = new FakeLister({ root: ['a', 'b'] });
    const sns = new RecordingChannel('sns');
    const deps: AuditDeps = { bigstate, store, channels: [sns], clock: { now: () => at.now } };
    let runs = 0;
    const run = () => runAudit(deps, { runId: `run-${++runs}`, host: HOST, principals: ['root'] });
    return { store, bigstate, sns, run };
  }

  it('writes nothing when no key was added or removed and the state is less than a day old', async () => {
    const at = { now: new Date(T0) };
    const { store, run, sns } = withClock(at);
    await run();
    const written = store.writes.length;
    at.now = new Date(Date.parse(T0) + 23 * 3_600_000);
    const summary = await run();
    expect(summary.principals[0]).toMatchObject({ status: 'ok', keyCount: 2, added: [], removed: [] });
    expect(store.writes.length).toBe(written);
    expect(sns.notices).toHaveLength(1);
  });

  it('rewrites it once a day, refreshing the last-seen times', async () => {
    const at = { now: new Date(T0) };
    const { store, run } = withClock(at);
    await run();
    const written = store.writes.length;
    at.now = new Date(Date.parse(T0) + 24 * 3_600_000);
    await run();
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').keys.map((key) => key.lastSeen)).toEqual([
      at.now.toISOString(),
      at.now.toISOString(),
    ]);
  });

  it('rewrites it when BigState changed a field of a key, though no name changed', async () => {
    const at = { now: new Date(T0) };
    const { store, bigstate, run } = withClock(at);
    await run();
    const written = store.writes.length;
    bigstate.inventory.root = [{ name: 'a', scope: 'admin' }, 'b'];
    await run();
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').keys[0]).toMatchObject({ name: 'a', attributes: { scope: 'admin' } });
  });

  it('rewrites it to clear a failure, and a state from before hosts were recorded to record its host', async () => {
    const at = { now: new Date(T0) };
    const { store, bigstate, run } = withClock(at);
    await run();
    bigstate.options.walks = (_principal, index) => (index === 1 ? { error: new Error('boom') } : undefined);
    await run();
    expect(store.state('root').failure).toBeDefined();
    const written = store.writes.length;
    await run();
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').failure).toBeUndefined();

    store.seed({ ...store.state('root'), host: null });
    const before = store.writes.length;
    await run();
    expect(store.writes.length).toBe(before + 1);
    expect(store.state('root').host).toBe(HOST.replace(/\/$/, ''));
  });
});

describe('runAudit: a principal with nothing new, on a state written within the day', () => {
  it('rewrites a hand-edited state that lists a name twice, once, and reports nothing', async () => {
    const store = new MemoryStore();
    const sns = new RecordingChannel('sns');
    const deps: AuditDeps = {
      bigstate: new FakeLister({ root: ['a', 'b'] }),
      store,
      channels: [sns],
      clock: { now: () => new Date(T0) },
    };
    const run = (runId: string) => runAudit(deps, { runId, host: HOST, principals: ['root'] });
    await run('run-1');
    const state = store.state('root');
    const [a, b] = state.keys;
    if (a === undefined || b === undefined) throw new Error('expected two keys');
    store.seed({ ...state, keys: [a, a, b], keyCount: 3 });
    const written = store.writes.length;
    const summary = await run('run-2');
    expect(summary.principals[0]).toMatchObject({ status: 'ok', added: [], removed: [], keyCount: 2 });
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['a', 'b']);
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline']);
  });

  it("rewrites it when the listing's description of the principal changed, and only then", async () => {
    const store = new MemoryStore();
    const sns = new RecordingChannel('sns');
    let listed: PrincipalEntry = { principal: 'root', type: 1, name: 'Billing' };
    const directory: PrincipalLister = {
      async *listPrincipals() {
        yield listed;
      },
      getPrincipal: async () => listed,
    };
    const deps: AuditDeps = {
      bigstate: new FakeLister({ root: ['a'] }),
      directory,
      store,
      channels: [sns],
      clock: { now: () => new Date(T0) },
    };
    let runs = 0;
    const run = () =>
      runAudit(deps, { runId: `run-${++runs}`, host: HOST, principals: [], principalPattern: '*' });
    await run();
    const written = store.writes.length;
    await run();
    expect(store.writes.length).toBe(written);
    listed = { principal: 'root', type: 1, name: 'Billing & invoicing' };
    await run();
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').info).toStrictEqual({ type: 1, displayName: 'Billing & invoicing' });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline']);
  });
});

describe('runAudit: deferred delivery and acknowledgeDelivery', () => {
  it('keeps a change a channel deferred pending, and does not fail the run for it', async () => {
    const { run, store, sns, bus } = setup({ root: ['a'] });
    bus.defer = () => true;
    const summary = await run({ principals: ['root'] });
    const id = summary.principals[0]?.changeId;
    expect(summary.ok).toBe(true);
    expect(summary.principals[0]?.status).toBe('ok');
    expect(bus.deferred.map((notice) => recordOf(notice).changeId)).toEqual([id]);
    expect(sns.changeIds()).toEqual([id]);
    const pending = store.state('root').pending;
    expect(pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([[id, ['sns']]]);
    expect(summary.principals[0]?.pending).toStrictEqual(pending);
  });

  it('marks a deferred change delivered once acknowledged, and removes it when every channel has it', async () => {
    const { run, store, bus } = setup({ root: ['a'] });
    bus.defer = () => true;
    const summary = await run({ principals: ['root'] });
    const id = summary.principals[0]?.changeId ?? '';
    const before = store.snapshots.get('root');
    const writes = store.writes.length;

    await acknowledgeDelivery(store, {
      principal: 'root',
      channel: 'events',
      channels: ['sns', 'events'],
      changeIds: [id],
      runId: 'ack-1',
    });
    expect(store.writes).toHaveLength(writes + 1);
    expect(store.writes.at(-1)?.expectedVersion).toBe(before?.version);
    const after = store.state('root');
    expect(after.pending).toEqual([]);
    expect(after.writeId).toMatch(/^ack-1\/.+/);
    expect(after.keys).toStrictEqual(before?.snapshot.keys);
  });

  it('keeps an acknowledged change pending while another channel still owes it', async () => {
    const store = new MemoryStore();
    const record = recordFixture('root', 'chg-1');
    store.seed(snapshotOf('root', ['k1'], { pending: [{ record, deliveredTo: [] }] }));
    await acknowledgeDelivery(store, {
      principal: 'root',
      channel: 'cli',
      channels: ['sns', 'cli'],
      changeIds: ['chg-1'],
      runId: 'ack',
    });
    expect(store.state('root').pending).toStrictEqual([{ record, deliveredTo: ['cli'] }]);
  });

  it('changes nothing for an unknown change id, a channel that has it already or a principal without state', async () => {
    const store = new MemoryStore();
    const record = recordFixture('root', 'chg-1');
    const pending: PendingChange[] = [{ record, deliveredTo: ['cli'] }];
    const version = store.seed(snapshotOf('root', ['k1'], { pending }));
    const ack = { principal: 'root', channel: 'cli', channels: ['sns', 'cli'], runId: 'ack' };
    await acknowledgeDelivery(store, { ...ack, changeIds: ['chg-unknown'] });
    await acknowledgeDelivery(store, { ...ack, changeIds: ['chg-1'] });
    await acknowledgeDelivery(store, { ...ack, principal: 'nobody', changeIds: ['chg-1'] });
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
  });

  it('acknowledges only the ids named, leaving the others pending', async () => {
    const store = new MemoryStore();
    const one = recordFixture('root', 'chg-1');
    const two = recordFixture('root', 'chg-2');
    store.seed(
      snapshotOf('root', ['k1'], {
        pending: [
          { record: one, deliveredTo: ['sns'] },
          { record: two, deliveredTo: ['sns'] },
        ],
      }),
    );
    await acknowledgeDelivery(store, {
      principal: 'root',
      channel: 'cli',
      channels: ['sns', 'cli'],
      changeIds: ['chg-2'],
      runId: 'ack',
    });
    expect(store.state('root').pending).toStrictEqual([{ record: one, deliveredTo: ['sns'] }]);
  });

  it('refuses to acknowledge over a state that changed since it was read', async () => {
    const store = new MemoryStore();
    const record = recordFixture('root', 'chg-1');
    store.seed(snapshotOf('root', ['k1'], { pending: [{ record, deliveredTo: [] }] }));
    const theirs = snapshotOf('root', ['k1', 'k2'], { runId: 'other' });
    store.beforeWrite = () => {
      store.seed(theirs);
    };
    await expect(
      acknowledgeDelivery(store, {
        principal: 'root',
        channel: 'cli',
        channels: ['cli'],
        changeIds: ['chg-1'],
        runId: 'ack',
      }),
    ).rejects.toMatchObject({ name: 'ConcurrentWriteError' });
    expect(store.snapshots.get('root')?.snapshot).toBe(theirs);
  });

  it('offers a channel each change at most once per run, a deferred older change included', async () => {
    const { run, store, sns, bus } = setup({ root: ['a', 'b', 'new'] });
    const old = recordFixture('root', 'chg-old', { added: ['b'] });
    store.seed(snapshotOf('root', ['a', 'b'], { pending: [{ record: old, deliveredTo: ['sns'] }] }));
    bus.defer = () => true;
    const summary = await run({ principals: ['root'] });
    const newer = store.state('root').pending.at(-1)?.record.changeId;
    expect(newer).not.toBe('chg-old');
    expect(summary.principals[0]?.status).toBe('ok');
    expect(bus.attempts.map((notice) => recordOf(notice).changeId)).toEqual(['chg-old', newer]);
    expect(sns.changeIds()).toEqual([newer]);
    expect(store.recordWrites.map((record) => record.changeId)).toEqual(['chg-old', newer]);
    expect(store.state('root').pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      ['chg-old', ['sns']],
      [newer, ['sns']],
    ]);
  });

  it('offers a deferred change again on the next run, and nothing twice to a channel that delivered it', async () => {
    const { run, sns, bus } = setup({ root: ['a'] });
    bus.defer = () => true;
    const first = await run({ principals: ['root'] });
    const id = first.principals[0]?.changeId;
    const second = await run({ principals: ['root'], runId: 'run-2' });
    expect(bus.deferred.map((notice) => recordOf(notice).changeId)).toEqual([id, id]);
    expect(sns.changeIds()).toEqual([id]);
    expect(second.principals[0]?.pending.map((entry) => entry.record.changeId)).toEqual([id]);
  });
});

describe('runAudit: failures', () => {
  const forbidden = () =>
    new ForbiddenError({ method: 'GET', path: '/v1/apikey/match?principal=b&next=0', attempts: 1 });

  it('keeps the state of a failed principal, publishes its failure and still audits the others', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'b' ? { error: forbidden() } : undefined;
    const { run, store, sns, bus } = setup({ a: ['a1'], c: ['c1'] }, { walks });
    const bSeeded = snapshotOf('b', ['b1', 'b2']);
    const bVersion = store.seed(bSeeded);
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
      reason: summary.principals[1]?.reason,
      errorName: 'ForbiddenError',
      baseline: false,
      keyCount: null,
      added: [],
      removed: [],
      redelivered: [],
      pending: [],
    });
    expect(summary.principals[1]?.reason?.startsWith('walking the keys: BigState GET /v1/apikey/match')).toBe(
      true,
    );
    // b keeps its last good state: one write records its failure, and nothing else of it changes.
    expect(expectOnlyFailureRecorded(store, 'b', bSeeded, bVersion)).toStrictEqual({
      stage: 'walking the keys',
      errorName: 'ForbiddenError',
      status: 403,
      reason: summary.principals[1]?.reason,
      since: T0,
      lastNotifiedAt: T0,
      runId: 'run-1',
    });
    expect([...new Set(store.writes.map((write) => write.principal))].sort()).toEqual(['a', 'b', 'c']);
    const failureNotice = {
      kind: 'failed',
      runId: 'run-1',
      principal: 'b',
      reason: summary.principals[1]?.reason,
      errorName: 'ForbiddenError',
      detectedAt: T0,
      failingSince: T0,
    };
    expect(sns.ofKind('failed')).toStrictEqual([failureNotice]);
    expect(bus.ofKind('failed')).toStrictEqual([failureNotice]);
    expect(
      sns
        .ofKind('baseline')
        .map((notice) => notice.record.principal)
        .sort(),
    ).toEqual(['a', 'c']);
    expect(sns.ofKind('changed')).toEqual([]);

    const failedReason = summary.principals[1]?.reason ?? '';
    expect(reason.length).toBeGreaterThan(0);
    expect(() => assertAuditSucceeded(summary)).toThrow(AuditRunFailedError);
    await expect(Promise.resolve().then(() => assertAuditSucceeded(summary))).rejects.toMatchObject({
      name: 'AuditRunFailedError',
      message: `run run-1: 1 of 3 principal(s) failed: "b": ${failedReason}`,
      failures: [{ principal: 'b', reason: failedReason }],
    });
  });

  it('never treats a walk that broke off after some pages as complete', async () => {
    const walks = (): WalkScript => ({ keys: ['a'], error: new Error('connection reset') });
    const { run, store, sns, bigstate } = setup({}, { walks });
    const seeded = snapshotOf('root', ['a', 'b', 'c']);
    const version = store.seed(seeded);
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'walking the keys: connection reset',
      errorName: 'Error',
      keyCount: null,
      removed: [],
    });
    expect(bigstate.exactCalls).toEqual([]);
    expect(expectOnlyFailureRecorded(store, 'root', seeded, version).stage).toBe('walking the keys');
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('fails the principal when its state cannot be read, and walks nothing for it', async () => {
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

  it('still resolves when the failure notice itself cannot be published, and logs that per channel', async () => {
    const walks = (): WalkScript => ({ error: new Error('boom') });
    const { run, sns, bus, logger, store } = setup({}, { walks });
    sns.fail = () => true;
    const summary = await run({ principals: ['root'] });
    expect(summary.ok).toBe(false);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    // One broken channel does not keep the failure from the others.
    expect(bus.notices.map((notice) => notice.kind)).toEqual(['failed']);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'could not publish the failed notice',
      extra: { principal: 'root', reason: 'sns refused the failed notice' },
    });
    // Told on a channel: recorded as told (a channel that stays down must not make it a notice every run).
    expect(store.state('root').failure?.lastNotifiedAt).toBe(T0);
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
          redelivered: [],
          pending: [],
        },
      ],
    };
    expect(() => assertAuditSucceeded(summary)).toThrow('run r: 1 of 1 principal(s) failed: "p": unknown');
  });
});

describe('runAudit: dry run', () => {
  it('walks, checks and diffs but writes and publishes nothing, and returns the diff', async () => {
    const { run, store, sns, bus, events, bigstate } = setup({ root: ['a', 'new'], fresh: ['x'] });
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
    expect(bigstate.exactPatternsOf('root')).toEqual(['gone']);
    expect(summary.principals[1]).toMatchObject({ status: 'ok', baseline: true, keyCount: 1 });
    // The run-level record is read (where to start), never written.
    expect(events).toEqual(['read-run', 'read:root', 'read:fresh']);
    expect(store.recordWrites).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
  });

  it('does not deliver pending changes, and reports them still pending', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    const old = recordFixture('root', 'chg-old');
    const pending = [{ record: old, deliveredTo: ['events'] }];
    store.seed(snapshotOf('root', ['a'], { pending }));
    const summary = await run({ principals: ['root'], dryRun: true });
    expect(summary.principals[0]).toMatchObject({ status: 'ok', redelivered: [], pending });
    expect(sns.attempts).toEqual([]);
    expect(store.recordWrites).toEqual([]);
    expect(store.writes).toEqual([]);
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

  it('publishes no failure notice for a failed principal, and returns its summary with ok false', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'root' ? { error: new Error('boom') } : undefined;
    const { run, sns, bus, store } = setup({ other: ['x'] }, { walks });
    const summary = await run({ principals: ['root', 'other'], dryRun: true });
    expect(summary.ok).toBe(false);
    expect(summary.principals[0]?.reason).toBe('walking the keys: boom');
    expect(summary.principals[1]).toMatchObject({ status: 'ok', baseline: true, keyCount: 1 });
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
    expect(store.writes).toEqual([]);
  });

  it('is not a dry run unless asked', async () => {
    const { run } = setup({ root: [] });
    expect((await run({ principals: ['root'] })).dryRun).toBe(false);
    expect((await run({ principals: ['root'], dryRun: false })).dryRun).toBe(false);
  });
});

describe('runAudit: deadlines', () => {
  it('fails every principal with a time-budget reason and no call when the deadline passed before it started, told once for the run', async () => {
    const { run, store, bigstate, sns, bus } = setup({ a: ['1'], b: ['2'] });
    const summary = await run({ principals: ['a', 'b'], deadline: spent(), hardStop: Deadline.none() });

    const reason = 'waiting to start: the time budget was spent before this principal was audited';
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
        redelivered: [],
        pending: [],
      })),
    );
    expect(store.reads).toEqual([]);
    expect(bigstate.calls).toEqual([]);
    // The failure notice still goes out until the hard stop: one for the run, not one per principal.
    const notice = {
      kind: 'failed',
      runId: 'run-1',
      principal: null,
      reason: 'waiting to start: the time budget ended before 2 of 2 principal(s) were audited',
      errorName: 'TimeBudgetError',
      detectedAt: T0,
      failingSince: T0,
    };
    expect(sns.notices).toStrictEqual([notice]);
    expect(bus.notices).toStrictEqual([notice]);
    // Kept in the run-level record, with the principal the next run starts with.
    expect(store.runState?.state).toMatchObject({
      failure: { stage: 'waiting to start', errorName: 'TimeBudgetError', lastNotifiedAt: T0 },
      resumeFrom: 'a',
    });
  });

  it('publishes no failure notice once the hard stop has passed too, and logs that', async () => {
    const { run, sns, logger } = setup({ a: ['1'] });
    const summary = await run({ principals: ['a'], deadline: spent() });
    expect(summary.principals[0]?.errorName).toBe('TimeBudgetError');
    expect(sns.attempts).toEqual([]);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'no time left to publish the failed notice',
      extra: { principal: null },
    });
  });

  it('starts no write or publish but the failures once the deadline ended, and fails the principals not yet started', async () => {
    const { deadline, end } = controlledDeadline();
    const { run, store, sns, bus } = setup(
      { a: ['1'], b: ['2'] },
      { onWalk: (principal) => principal === 'a' && end() },
    );
    const summary = await run({
      principals: ['a', 'b'],
      deadline,
      hardStop: Deadline.none(),
      concurrency: 1,
    });
    expect(summary.principals.map((result) => [result.principal, result.status, result.errorName])).toEqual([
      ['a', 'failed', 'TimeBudgetError'],
      ['b', 'failed', 'TimeBudgetError'],
    ]);
    expect(summary.principals[0]?.reason).toBe("storing the snapshot: the run's work deadline ended");
    expect(store.reads).toEqual(['a']);
    // No inventory is written: only a's failure, in a state that awaits its baseline (b's state was never
    // read, so nothing is recorded for it).
    expect(store.writes.map((write) => [write.principal, write.expectedVersion])).toEqual([['a', undefined]]);
    expect(store.state('a')).toMatchObject({
      awaitingBaseline: true,
      keyCount: 0,
      keys: [],
      pending: [],
      failure: { stage: 'storing the snapshot', errorName: 'TimeBudgetError' },
    });
    expect(store.recordWrites).toEqual([]);
    // a's own failure, then one for the run: b was never reached (and the next run starts with it).
    for (const channel of [sns, bus]) {
      expect(channel.attempts.map((notice) => [notice.kind, principalOf(notice)])).toEqual([
        ['failed', 'a'],
        ['failed', '*'],
      ]);
    }
    expect(store.runState?.state.resumeFrom).toBe('b');
  });

  it('leaves the change pending when the deadline ends while it is published, and marks nothing', async () => {
    const { deadline, end } = controlledDeadline();
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    sns.beforePublish = (notice) => {
      if (notice.kind === 'changed') end();
    };
    const summary = await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    const id = store.state('root').pending[0]?.record.changeId;
    expect(summary.principals[0]).toMatchObject({ status: 'failed' });
    expect(summary.principals[0]?.reason).toMatch(/^publishing the change: /);
    // The commit, then the failure recorded over it (after the work deadline): nothing marked.
    expect(store.writes).toHaveLength(2);
    expect(keptOf(store.state('root'))).toBe(keptOf(store.writes[0]?.snapshot as Snapshot));
    expect(store.state('root').pending.map((entry) => [entry.record.changeId, entry.deliveredTo])).toEqual([
      [id, []],
    ]);
    expect(sns.ofKind('changed')).toEqual([]);
    expect(bus.ofKind('changed')).toEqual([]);
    // The failure notices still went out, on a signal of their own that had not ended.
    expect(sns.ofKind('failed')).toHaveLength(1);
    expect(bus.ofKind('failed')).toHaveLength(1);
    expect(sns.signals.at(-1)).not.toBe(deadline.signal);
    expect(sns.signals.at(-1)?.aborted).toBe(false);
  });

  it('starts no marking write when the deadline ends after a channel delivered the change', async () => {
    const { deadline, end } = controlledDeadline();
    const { run, store, sns } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    sns.afterPublish = (notice) => {
      if (notice.kind === 'changed') end();
    };
    const summary = await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    expect(summary.principals[0]?.status).toBe('failed');
    expect(summary.principals[0]?.reason).toMatch(/deadline/);
    expect(sns.ofKind('changed')).toHaveLength(1);
    // The commit, then the failure recorded over it: no marking write.
    expect(store.writes).toHaveLength(2);
    expect(keptOf(store.state('root'))).toBe(keptOf(store.writes[0]?.snapshot as Snapshot));
    // Not marked: the next run delivers it again (at least once).
    expect(store.state('root').pending.map((entry) => entry.deliveredTo)).toEqual([[]]);
  });

  it.each([
    ['while the change record is written (the write is cut short)', 'onCall', 'StorageError'],
    ['just after the change record was written', 'afterCall', 'TimeBudgetError'],
  ] as const)('starts no publish when the deadline ends %s', async (_when, hook, errorName) => {
    const { deadline, end } = controlledDeadline();
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    store[hook] = (operation: string) => {
      if (operation === 'writeChangeRecord') end();
    };
    const summary = await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName });
    expect(summary.principals[0]?.reason).toMatch(/^publishing the change: .*(deadline|time budget)/);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(bus.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    // The commit, then the failure recorded over it.
    expect(store.writes).toHaveLength(2);
    expect(keptOf(store.state('root'))).toBe(keptOf(store.writes[0]?.snapshot as Snapshot));
    expect(store.state('root').pending.map((entry) => entry.deliveredTo)).toEqual([[]]);
  });

  it('passes the run deadline signal to every store call and publish of the work', async () => {
    const deadline = Deadline.after(60_000);
    const { run, store, sns, bus } = setup({ root: ['a', 'new'] });
    store.seed(snapshotOf('root', ['a']));
    await run({ principals: ['root'], deadline });
    const work = store.calls.filter((call) => call.principal === 'root');
    expect(work.length).toBeGreaterThan(0);
    for (const call of work) expect(call.signal).toBe(deadline.signal);
    expect(sns.signals.length + bus.signals.length).toBeGreaterThan(0);
    for (const signal of [...sns.signals, ...bus.signals]) expect(signal).toBe(deadline.signal);
    // The run-level record is read first, as work (where to start), and the failures kept aside are listed, then
    // the record is read after the work on a short signal of its own (as the failure notices).
    const runLevel = store.calls.filter((call) => call.principal === '*');
    expect(runLevel.map((call) => call.operation)).toEqual([
      'readRunState',
      'sideFailureSegments',
      'readRunState',
    ]);
    expect(runLevel[0]?.signal).toBe(deadline.signal);
    expect(runLevel[1]?.signal).toBe(deadline.signal);
    expect(runLevel[2]?.signal).toBeDefined();
    expect(runLevel[2]?.signal).not.toBe(deadline.signal);
    expect(runLevel[2]?.signal?.aborted).toBe(false);
    expect(store.calls).toHaveLength(work.length + 3);
    deadline.dispose();
  });

  it('gives a failure notice a signal of its own that ends with the hard stop, not the work deadline', async () => {
    const work = controlledDeadline();
    const hardStopController = new AbortController();
    const hardStop = Deadline.none({ signal: hardStopController.signal });
    const { run, sns } = setup({ root: ['a'] }, { onWalk: () => work.end() });
    await run({ principals: ['root'], deadline: work.deadline, hardStop });
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    const signal = sns.signals[0];
    expect(signal).toBeDefined();
    expect(signal?.aborted).toBe(false);
    hardStopController.abort(new TimeBudgetError("the run's hard stop ended"));
    expect(signal?.aborted).toBe(true);
  });

  it('cuts a failure notice that hangs at the hard stop, and still resolves', async () => {
    const hardStop = Deadline.after(30);
    const walks = (): WalkScript => ({ error: new Error('boom') });
    const { run, sns, logger } = setup({}, { walks });
    sns.beforePublish = (_notice, signal) =>
      new Promise((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
    const started = Date.now();
    const summary = await run({ principals: ['root'], hardStop });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(summary.principals[0]?.status).toBe('failed');
    expect(logger.lines.some((line) => line.message === 'could not publish the failed notice')).toBe(true);
    hardStop.dispose();
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
    const { run, bigstate, store, sns } = setup({ a: ['1'], b: ['2'] });
    const summary = await run({ principals: ['a', 'b', 'a'] });
    expect(summary.principals.map((result) => result.principal)).toEqual(['a', 'b']);
    expect(bigstate.walksOf('a')).toBe(1);
    expect(store.reads).toEqual(['a', 'b']);
    expect(sns.notices).toHaveLength(2);
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
    const store = new MemoryStore();
    const sns = new RecordingChannel('sns');
    const clock = steppingClock(T0, 1_000);
    const summary = await runAudit(
      { bigstate: new FakeLister({ root: ['a'] }), store, channels: [sns], clock },
      { runId: 'run-9', principals: ['root'], host: HOST },
    );
    // Clock reads: start, the principal's "now", the run-level record's "now", the end.
    expect(summary).toMatchObject({
      runId: 'run-9',
      dryRun: false,
      ok: true,
      startedAt: '2025-06-01T12:00:00.000Z',
      finishedAt: '2025-06-01T12:00:03.000Z',
      durationMs: 3_000,
    });
    expect(recordOf(sns.notices[0]).detectedAt).toBe('2025-06-01T12:00:01.000Z');
  });

  it('uses the system clock and a silent logger by default', async () => {
    const before = Date.now();
    const summary = await runAudit(
      { bigstate: new FakeLister({ root: ['a'] }), store: new MemoryStore(), channels: [] },
      { runId: 'r', principals: ['root'], host: HOST },
    );
    const after = Date.now();
    expect(Date.parse(summary.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(summary.finishedAt)).toBeLessThanOrEqual(after);
    expect(summary.durationMs).toBe(Date.parse(summary.finishedAt) - Date.parse(summary.startedAt));
  });

  it('logs the start, the checks, each delivery, each principal, a failure and the end', async () => {
    const walks = (principal: string): WalkScript | undefined =>
      principal === 'bad' ? { error: new StorageError('nope') } : ['a', 'n'];
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
      { level: 'debug', message: 'removals checked', extra: { principal: 'good', candidates: 2, found: 0 } },
      { level: 'info', message: 'change delivered', extra: { principal: 'good', changeId: id } },
      {
        level: 'info',
        message: 'principal audited',
        extra: {
          principal: 'good',
          dryRun: false,
          baseline: false,
          keyCount: 2,
          added: 1,
          removed: 2,
          changeId: id,
        },
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
      extra: { principal: 'root', dryRun: true, baseline: false, keyCount: 1, added: 0, removed: 0 },
    });
  });

  it('logs how many changes are still pending', async () => {
    const { run, logger, bus } = setup({ root: ['a'] });
    bus.defer = () => true;
    await run({ principals: ['root'] });
    expect(logger.lines.find((line) => line.message === 'principal audited')?.extra).toMatchObject({
      pending: 1,
    });
  });
});
