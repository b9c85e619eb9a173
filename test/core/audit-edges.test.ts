/**
 * Edges of one run that the broader suites reach only behind another reason to act (found by mutation testing):
 * the states a run hands to the report, what a state keeps for it (the key-count series, the last 30 days of
 * removals), which baselines are new principals, delivery of owed changes at the edges (nothing owed, no time
 * left, a record that cannot be written), and where a run starts when the run-level record cannot be read.
 */
import { describe, expect, it } from 'vitest';
import type { PrincipalEntry, PrincipalLister } from '../../functions/bigstate/types.js';
import { Deadline } from '../../functions/commons/deadline.js';
import { TimeBudgetError } from '../../functions/commons/errors.js';
import {
  type AuditDeps,
  type AuditRequest,
  acknowledgeDelivery,
  acknowledgeRemoval,
  runAudit,
} from '../../functions/core/audit.js';
import type { ChangeRecord, Notice } from '../../functions/core/ports.js';
import {
  FakeLister,
  HOST,
  MemoryStore,
  RecordingChannel,
  RecordingLogger,
  recordOf,
  snapshotOf,
  storageFailure,
} from './support/fakes.js';

const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const DAY = 24 * 60 * 60 * 1000;

function setup(inventory: Record<string, string[]>, extra: Partial<AuditDeps> = {}) {
  const events: string[] = [];
  const store = new MemoryStore(events);
  const sns = new RecordingChannel('sns', events);
  const bus = new RecordingChannel('events', events);
  const bigstate = new FakeLister(inventory);
  const logger = new RecordingLogger();
  const at = { now: T0 };
  const deps: AuditDeps = {
    bigstate,
    store,
    channels: [sns, bus],
    clock: { now: () => new Date(at.now) },
    logger,
    ...extra,
  };
  let runs = 0;
  const run = (request: Partial<AuditRequest> = {}) =>
    runAudit(deps, { runId: `run-${++runs}`, host: HOST, principals: Object.keys(inventory), ...request });
  return { events, store, sns, bus, bigstate, logger, at, run };
}

/** A work deadline that ends once `store` completes its first call of `operation` (the hard stop never ends). */
function endingAfter(
  store: MemoryStore,
  operation: 'read' | 'write',
): Pick<AuditRequest, 'deadline' | 'hardStop'> {
  const controller = new AbortController();
  store.afterCall = (done) => {
    if (done === operation) controller.abort(new TimeBudgetError("the run's work deadline ended"));
  };
  return { deadline: Deadline.none({ signal: controller.signal }), hardStop: Deadline.none() };
}

const records = (notices: readonly Notice[]): ChangeRecord[] =>
  notices.flatMap((notice) => ('record' in notice ? [notice.record] : []));

describe('the states a run hands to the report', () => {
  it('is each principal state after the run: the new one, the last good one, and nothing for one not read', async () => {
    const store = new MemoryStore();
    store.seed(snapshotOf('failing', ['b']));
    store.seed(snapshotOf('unreadable', ['d']));
    store.failOn('read', 'unreadable', storageFailure('corrupt', { always: true }));
    const lister = new FakeLister(
      { fine: ['a'], fresh: ['c'] },
      { walks: (principal) => (principal === 'failing' ? { error: new Error('HTTP 500') } : undefined) },
    );
    const summary = await runAudit(
      { bigstate: lister, store, channels: [], clock: { now: () => new Date(T0) } },
      { runId: 'r', host: HOST, principals: ['fine', 'failing', 'fresh', 'unreadable'] },
    );
    const states = summary.states ?? new Map();
    expect(states.get('fine')?.keys.map((key: { name: string }) => key.name)).toEqual(['a']);
    // Its last good state (with the failure recorded), not nothing.
    expect(states.get('failing')?.keys.map((key: { name: string }) => key.name)).toEqual(['b']);
    expect(states.get('fresh')?.keys.map((key: { name: string }) => key.name)).toEqual(['c']);
    // A state that could not be read is left out: the report says what it last knew, never "no keys".
    expect([...states.keys()].sort()).toEqual(['failing', 'fine', 'fresh']);
  });

  it('is null for a principal read with no state that failed before writing one (a dry run)', async () => {
    const store = new MemoryStore();
    const summary = await runAudit(
      {
        bigstate: new FakeLister({}, { walks: () => ({ error: new Error('HTTP 500') }) }),
        store,
        channels: [],
        clock: { now: () => new Date(T0) },
      },
      { runId: 'r', host: HOST, principals: ['nobody'], dryRun: true },
    );
    expect(summary.states?.get('nobody')).toBeNull();
  });
});

describe('what a state keeps for the report', () => {
  it('keeps the last 400 points of the key-count series, newest last', async () => {
    const { store, run } = setup({ root: ['a', 'b'] });
    const series = Array.from({ length: 400 }, (_, i) => ({
      at: new Date(T0 - (400 - i) * DAY).toISOString(),
      count: i,
    }));
    store.seed({ ...snapshotOf('root', ['a']), series });
    await run();
    const kept = store.state('root').series ?? [];
    expect(kept).toHaveLength(400);
    expect(kept[0]).toStrictEqual(series[1]);
    expect(kept.at(-1)).toStrictEqual({ at: new Date(T0).toISOString(), count: 2 });
  });

  it('keeps removals of the last 30 days, newest first, and lets older ones go', async () => {
    const { store, run } = setup({ root: ['a'] });
    store.seed({
      ...snapshotOf('root', ['a', 'gone']),
      recentRemovals: [
        { name: 'recent', removedAt: new Date(T0 - 29 * DAY).toISOString() },
        { name: 'edge', removedAt: new Date(T0 - 30 * DAY).toISOString() },
        { name: 'old', removedAt: new Date(T0 - 31 * DAY).toISOString() },
      ],
    });
    await run();
    expect(store.state('root').recentRemovals).toStrictEqual([
      { name: 'gone', removedAt: new Date(T0).toISOString() },
      { name: 'recent', removedAt: new Date(T0 - 29 * DAY).toISOString() },
    ]);
  });
});

describe('which baselines are new principals', () => {
  function discovering(entries: PrincipalEntry[]): PrincipalLister {
    return {
      async *listPrincipals() {
        yield* entries;
      },
      getPrincipal: async (principal) => entries.find((entry) => entry.principal === principal),
    };
  }

  it('a listed principal whose first audit failed is new once it gets its baseline; a change later is not', async () => {
    const lister = new FakeLister(
      { found: ['k'] },
      { walks: (_principal, index) => (index === 0 ? { error: new Error('HTTP 500') } : undefined) },
    );
    const { store, sns, run } = setup(
      {},
      { bigstate: lister, directory: discovering([{ principal: 'found' }]) },
    );
    await run({ principalPattern: '*' });
    expect(store.state('found').awaitingBaseline).toBe(true);
    await run({ principalPattern: '*' });
    lister.inventory.found = ['k', 'k2'];
    await run({ principalPattern: '*' });
    expect(records(sns.notices).map((record) => [record.kind, record.newPrincipal])).toEqual([
      ['baseline', true],
      ['changed', undefined],
    ]);
  });

  it('a listed principal that is also configured, or that starts over (another pattern), is no new principal', async () => {
    const lister = new FakeLister({ both: ['k'], old: ['k'] });
    const { store, sns, run } = setup(
      {},
      { bigstate: lister, directory: discovering([{ principal: 'both' }, { principal: 'old' }]) },
    );
    store.seed(snapshotOf('old', ['k'], { pattern: 'x*' }));
    await run({ principals: ['both'], principalPattern: '*' });
    expect(
      records(sns.notices).map((record) => [record.principal, record.kind, record.newPrincipal ?? false]),
    ).toEqual([
      ['both', 'baseline', false],
      ['old', 'baseline', false],
    ]);
  });
});

describe("the listing's description of a principal", () => {
  it('keeps a numeric type and a non-empty name, and null for anything else', async () => {
    const entries = [
      { principal: 'typed', type: 2, name: 'Pat' },
      { principal: 'odd', type: '2', name: '' },
      { principal: 'bare' },
    ] as unknown as PrincipalEntry[];
    const directory: PrincipalLister = {
      async *listPrincipals() {
        yield* entries;
      },
      getPrincipal: async () => undefined,
    };
    const { store, run } = setup(
      {},
      { bigstate: new FakeLister({ typed: ['a'], odd: ['b'], bare: ['c'] }), directory },
    );
    await run({ principals: [], principalPattern: '*' });
    expect(['typed', 'odd', 'bare'].map((principal) => store.state(principal).info)).toStrictEqual([
      { type: 2, displayName: 'Pat' },
      { type: null, displayName: null },
      { type: null, displayName: null },
    ]);
  });
});

describe('delivering what earlier runs owe, at the edges', () => {
  const owed = (principal: string, changeId: string, deliveredTo: string[] = []) => ({
    record: recordOf(principal, changeId),
    deliveredTo,
  });

  it('drops a change every channel already has (left by a crash after the last publish), publishing nothing', async () => {
    const { store, sns, bus, run } = setup({ root: ['a'] });
    store.seed(snapshotOf('root', ['a'], { pending: [owed('root', 'chg-1', ['sns', 'events'])] }));
    const summary = await run();
    expect(summary.ok).toBe(true);
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
    expect(store.state('root').pending).toEqual([]);
  });

  it('keeps every owed change and fails the principal when no time is left to deliver them', async () => {
    const { store, sns, run } = setup({ root: ['a'] });
    store.seed(snapshotOf('root', ['a'], { pending: [owed('root', 'chg-1'), owed('root', 'chg-2')] }));
    const summary = await run(endingAfter(store, 'read'));
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      errorName: 'TimeBudgetError',
      reason: "delivering changes of earlier runs: the run's work deadline ended",
    });
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['failed']);
    expect(store.state('root').pending.map((entry) => entry.record.changeId)).toEqual(['chg-1', 'chg-2']);
    expect(store.recordWrites).toEqual([]);
  });

  it('sends no channel anything newer once a change record could not be written, keeping both owed', async () => {
    const { store, sns, bus, run } = setup({ root: ['a'] });
    store.seed(
      snapshotOf('root', ['a'], { pending: [owed('root', 'chg-1'), owed('root', 'chg-2', ['sns'])] }),
    );
    store.failOn('writeChangeRecord', 'root', storageFailure('history unavailable'));
    const summary = await run();
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('history unavailable'),
    });
    expect([...sns.attempts, ...bus.attempts].filter((notice) => notice.kind !== 'failed')).toEqual([]);
    expect(store.state('root').pending).toStrictEqual([
      owed('root', 'chg-1'),
      owed('root', 'chg-2', ['sns']),
    ]);
  });
});

describe('where a run starts', () => {
  it('audits in the given order, warning, when the run-level record cannot be read', async () => {
    const { store, logger, run, bigstate } = setup({ a: ['1'], b: ['2'] });
    store.failOn('readRunState', '*', storageFailure('bucket unavailable'));
    const summary = await run({ concurrency: 1 });
    expect(summary.ok).toBe(true);
    expect(bigstate.calls.map((call) => call.principal)).toEqual(['a', 'b']);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not read the run-level record',
      extra: { reason: 'bucket unavailable' },
    });
  });

  it('does not read where to start when the work deadline has already ended', async () => {
    const controller = new AbortController();
    controller.abort(new TimeBudgetError("the run's work deadline ended"));
    const { store, run } = setup({ a: ['1'] });
    const deadline = Deadline.none({ signal: controller.signal });
    await run({ deadline, hardStop: Deadline.none() });
    const reads = store.calls.filter((call) => call.operation === 'readRunState');
    // Only the read after the work, on a signal of the hard stop's (alive): none on the ended work deadline.
    expect(reads).toHaveLength(1);
    expect(reads[0]?.signal).not.toBe(deadline.signal);
    expect(reads[0]?.signal?.aborted).toBe(false);
  });
});

describe('retiring a principal BigState no longer knows', () => {
  /** Lists only `keep`; looks up nothing else (404). */
  const directory: PrincipalLister = {
    async *listPrincipals() {
      yield { principal: 'keep' };
    },
    getPrincipal: async (principal) => (principal === 'keep' ? { principal } : undefined),
  };
  const retiring = () => {
    const context = setup({}, { bigstate: new FakeLister({ keep: ['k'] }), directory });
    const run = (request: Partial<AuditRequest> = {}) =>
      context.run({ principals: [], principalPattern: '*', ...request });
    return { ...context, run };
  };
  const removals = (channel: RecordingChannel) =>
    channel.notices.flatMap((notice) => (notice.kind === 'principal-removed' ? [notice] : []));

  it('tells each one once, with its keys and listing description, and archives it under its own removal id', async () => {
    const { store, sns, bus, run } = retiring();
    store.seed({ ...snapshotOf('gone-1', ['a', 'b']), info: { type: 2, displayName: 'Pat' } });
    store.seed({ ...snapshotOf('gone-2', []), awaitingBaseline: true });
    const deadline = Deadline.after(60_000);
    const summary = await run({ deadline });
    expect(summary.ok).toBe(true);
    const told = removals(sns);
    expect(told.map((notice) => [notice.principal, notice.keys, notice.info])).toEqual([
      ['gone-1', ['a', 'b'], { type: 2, displayName: 'Pat' }],
      ['gone-2', [], undefined],
    ]);
    expect(removals(bus)).toStrictEqual(told);
    const [first, second] = told;
    expect(first?.removalId).toMatch(/^prm-[0-9a-f]{32}$/);
    expect(first?.removalId).not.toBe(second?.removalId);
    expect([...store.archived.keys()].sort()).toEqual([first?.removalId, second?.removalId].sort());
    expect(store.snapshots.has('gone-1')).toBe(false);
    const result = summary.principals.find((principal) => principal.principal === 'gone-1');
    expect(result).toMatchObject({ status: 'ok', info: { type: 2, displayName: 'Pat' } });
    expect(result?.principalRemoved).toStrictEqual(first);
    expect(result?.removalAwaitingAcknowledgement).toBeUndefined();
    // On the run's signal, as every call of the work.
    const archives = store.calls.filter((call) => call.operation === 'archive');
    expect(archives).toHaveLength(2);
    for (const call of archives) expect(call.signal).toBe(deadline.signal);
    expect(sns.signals.length).toBeGreaterThan(0);
    for (const signal of sns.signals) expect(signal).toBe(deadline.signal);
    deadline.dispose();
  });

  it('keeps the state and fails the principal when a channel refuses the removal; the next run tells it again, same id', async () => {
    const { store, sns, bus, run } = retiring();
    store.seed(snapshotOf('gone', ['a']));
    sns.fail = (notice) => notice.kind === 'principal-removed';
    const first = await run();
    expect(first.principals.find((principal) => principal.principal === 'gone')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^publishing the principal removal: /),
    });
    expect(store.snapshots.has('gone')).toBe(true);
    expect(store.archived.size).toBe(0);
    sns.fail = undefined;
    expect((await run()).ok).toBe(true);
    const ids = removals(bus).map((notice) => notice.removalId);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(1);
    expect(removals(sns).map((notice) => notice.removalId)).toEqual([ids[0]]);
    expect(store.snapshots.has('gone')).toBe(false);
  });

  it('leaves the state for acknowledgeRemoval when a channel defers the removal, which then archives it', async () => {
    const { store, sns, run } = retiring();
    const version = store.seed(snapshotOf('gone', ['a']));
    sns.defer = (notice) => notice.kind === 'principal-removed';
    const summary = await run();
    const result = summary.principals.find((principal) => principal.principal === 'gone');
    expect(result?.removalAwaitingAcknowledgement).toStrictEqual({ version });
    expect(store.snapshots.has('gone')).toBe(true);
    // Nothing to acknowledge for the others.
    for (const other of summary.principals.filter((principal) => principal !== result)) {
      await acknowledgeRemoval(store, other);
    }
    expect(store.archived.size).toBe(0);
    if (result === undefined) throw new Error('expected a result for gone');
    const deadline = Deadline.none({ signal: new AbortController().signal });
    await acknowledgeRemoval(store, result, { deadline });
    expect([...store.archived.keys()]).toEqual([result.principalRemoved?.removalId]);
    expect(store.calls.at(-1)).toMatchObject({ operation: 'archive', principal: 'gone' });
    expect(store.calls.at(-1)?.signal).toBe(deadline.signal);
    // A result with a removal but no pending acknowledgement archives nothing more.
    await acknowledgeRemoval(store, { ...result, removalAwaitingAcknowledgement: undefined });
    expect(store.calls.filter((call) => call.operation === 'archive')).toHaveLength(1);
  });
});

describe('the report location in a change record', () => {
  it('points at the latest report when the store keeps one', async () => {
    class ReportingStore extends MemoryStore {
      reportLocation(): string {
        return 'mem://reports/latest.html';
      }
    }
    const store = new ReportingStore();
    const sns = new RecordingChannel('sns');
    await runAudit(
      {
        bigstate: new FakeLister({ root: ['a'] }),
        store,
        channels: [sns],
        clock: { now: () => new Date(T0) },
      },
      { runId: 'r', host: HOST, principals: ['root'] },
    );
    expect(records(sns.notices).map((record) => record.reportLocation)).toEqual([
      'mem://reports/latest.html',
    ]);
  });
});

describe('discovery: which principals a run takes', () => {
  const listing = (principals: string[]): PrincipalLister => ({
    async *listPrincipals() {
      for (const principal of principals) yield { principal };
    },
    getPrincipal: async (principal) => (principals.includes(principal) ? { principal } : undefined),
  });

  it('audits a principal the listing repeats (offset cursors) once', async () => {
    const { run } = setup(
      {},
      { bigstate: new FakeLister({ a: ['1'], b: ['2'] }), directory: listing(['a', 'b', 'a']) },
    );
    const summary = await run({ principals: [], principalPattern: '*' });
    expect(summary.principals.map((principal) => principal.principal)).toEqual(['a', 'b']);
  });

  it('audits a configured principal that has a state and is not listed once, as configured, never as missing', async () => {
    const lister = new FakeLister({ a: ['1'], c: ['3'] });
    const { store, sns, run } = setup({}, { bigstate: lister, directory: listing(['a']) });
    store.seed(snapshotOf('c', ['3']));
    const summary = await run({ principals: ['c'], principalPattern: '*' });
    expect(summary.principals.map((principal) => principal.principal)).toEqual(['a', 'c']);
    expect(lister.walksOf('c')).toBe(1);
    expect(sns.notices.filter((notice) => notice.kind === 'principal-removed')).toEqual([]);
    expect(store.snapshots.has('c')).toBe(true);
  });

  it('fails the run, naming why, when a pattern is given without a principal listing', async () => {
    const { run } = setup({ a: ['1'] });
    const summary = await run({ principalPattern: '*' });
    expect(summary.runFailure?.reason).toBe(
      'listing the principals: discovery needs the BigState principal directory',
    );
    expect(summary.principals.map((principal) => [principal.principal, principal.status])).toEqual([
      ['a', 'ok'],
    ]);
  });

  it('fails the run, taking none as missing, when the stored states cannot be listed', async () => {
    const { store, logger, run } = setup(
      {},
      { bigstate: new FakeLister({ a: ['1'] }), directory: listing(['a']) },
    );
    store.seed(snapshotOf('gone', ['g']));
    store.failOn('principalsWithState', '*', storageFailure('list denied'));
    const summary = await run({ principals: [], principalPattern: '*' });
    expect(summary.runFailure).toStrictEqual({
      reason: 'listing the principals that have a state: list denied',
      errorName: 'StorageError',
    });
    expect(summary.principals.map((principal) => principal.principal)).toEqual(['a']);
    expect(store.snapshots.has('gone')).toBe(true);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'could not list the stored states: no principal is taken as missing',
      extra: { reason: 'listing the principals that have a state: list denied' },
    });
  });
});

describe('looking a principal up, only when its keys cannot tell', () => {
  function lookups(entries: PrincipalEntry[]) {
    const asked: string[] = [];
    const directory: PrincipalLister = {
      async *listPrincipals() {
        yield* entries.filter((entry) => entry.principal !== 'glitch');
      },
      getPrincipal: async (principal) => {
        asked.push(principal);
        return entries.find((entry) => entry.principal === principal);
      },
    };
    return { asked, directory };
  }

  it('asks nothing of a configured principal with keys; takes the description of one with none from its lookup', async () => {
    const { asked, directory } = lookups([{ principal: 'empty', type: 1, name: 'Quiet app' }]);
    const { store, run } = setup({}, { bigstate: new FakeLister({ keyed: ['k'], empty: [] }), directory });
    const summary = await run({ principals: ['keyed', 'empty'] });
    expect(summary.ok).toBe(true);
    expect(asked).toEqual(['empty']);
    expect(store.state('empty').info).toStrictEqual({ type: 1, displayName: 'Quiet app' });
    expect(summary.principals.find((principal) => principal.principal === 'empty')?.info).toStrictEqual({
      type: 1,
      displayName: 'Quiet app',
    });
  });

  it('takes the description of a principal the listing missed (a glitch) from its lookup', async () => {
    const { asked, directory } = lookups([{ principal: 'a' }, { principal: 'glitch', type: 2, name: 'Pat' }]);
    const { store, run } = setup({}, { bigstate: new FakeLister({ a: ['1'], glitch: ['2'] }), directory });
    store.seed({ ...snapshotOf('glitch', ['2']), info: { type: 2, displayName: 'Old name' } });
    const summary = await run({ principals: [], principalPattern: '*' });
    expect(summary.ok).toBe(true);
    expect(asked).toEqual(['glitch']);
    expect(store.state('glitch').info).toStrictEqual({ type: 2, displayName: 'Pat' });
  });
});

describe('a stale record', () => {
  it('names no added or removed key and no new principal, and follows the state it was found in', async () => {
    const store = new MemoryStore();
    const sns = new RecordingChannel('sns');
    const deps: AuditDeps = {
      bigstate: new FakeLister({
        root: [{ name: 'old', createdAt: new Date(T0 - 400 * DAY).toISOString() }],
      }),
      store,
      channels: [sns],
      clock: { now: () => new Date(T0) },
    };
    await runAudit(deps, { runId: 'r1', host: HOST, principals: ['root'] });
    const version = store.snapshots.get('root')?.version;
    await runAudit(deps, { runId: 'r2', host: HOST, principals: ['root'], maxKeyAgeDays: 90 });
    const stale = records(sns.notices).find((record) => record.kind === 'stale');
    expect(stale).toMatchObject({
      added: [],
      removed: [],
      counts: { added: 0, removed: 0, total: 1 },
      previousSnapshotVersion: version,
      maxKeyAgeDays: 90,
    });
    expect(stale).not.toHaveProperty('newPrincipal');
  });
});

describe('writes when every channel refuses a change', () => {
  it('commits the change once and records the failure, never a marking that marks nothing', async () => {
    const { store, sns, bus, run } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a']));
    sns.fail = (notice) => notice.kind === 'changed';
    bus.fail = (notice) => notice.kind === 'changed';
    const summary = await run();
    expect(summary.principals[0]?.status).toBe('failed');
    // The commit, then the failure recorded over it.
    expect(store.writes).toHaveLength(2);
    expect(store.state('root').pending.map((entry) => entry.deliveredTo)).toEqual([[]]);
  });
});

describe('no time left between the commit and its delivery', () => {
  it('fails the principal, naming the delivery, and keeps the change owed for the next run', async () => {
    const { store, sns, bus, run } = setup({ root: ['a', 'b'] });
    store.seed(snapshotOf('root', ['a']));
    const summary = await run(endingAfter(store, 'write'));
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      errorName: 'TimeBudgetError',
      reason: "publishing the change: the run's work deadline ended",
    });
    expect([...sns.attempts, ...bus.attempts].map((notice) => notice.kind)).toEqual(['failed', 'failed']);
    expect(store.recordWrites).toEqual([]);
    expect(store.state('root').pending.map((entry) => [entry.record.added, entry.deliveredTo])).toEqual([
      [['b'], []],
    ]);
  });
});

describe('the signals of the calls that record failures and acknowledgements', () => {
  it('gives every call of a failure kept aside a live signal of its own', async () => {
    const store = new MemoryStore();
    store.failOn('read', 'root', storageFailure('corrupt', { always: true }));
    const deadline = Deadline.after(60_000);
    const deps: AuditDeps = {
      bigstate: new FakeLister({}),
      store,
      channels: [],
      clock: { now: () => new Date(T0) },
    };
    await runAudit(deps, { runId: 'r1', host: HOST, principals: ['root'], deadline });
    await runAudit(deps, { runId: 'r2', host: HOST, principals: ['root'], deadline });
    store.sideFailures.clear();
    const side = store.calls.filter((call) => /SideFailure$/.test(call.operation));
    expect(side.map((call) => call.operation)).toEqual([
      'writeSideFailure',
      'readSideFailure',
      'writeSideFailure',
    ]);
    for (const call of side) {
      expect(call.signal).toBeInstanceOf(AbortSignal);
      expect(call.signal?.aborted).toBe(false);
    }
    deadline.dispose();
  });

  it("acknowledgeDelivery reads and writes on the caller's deadline", async () => {
    const store = new MemoryStore();
    store.seed(
      snapshotOf('root', ['a'], { pending: [{ record: recordOf('root', 'chg-1'), deliveredTo: [] }] }),
    );
    const deadline = Deadline.none({ signal: new AbortController().signal });
    await acknowledgeDelivery(store, {
      principal: 'root',
      channel: 'cli',
      channels: ['cli'],
      changeIds: ['chg-1'],
      runId: 'ack',
      deadline,
    });
    expect(store.calls.map((call) => [call.operation, call.signal === deadline.signal])).toEqual([
      ['read', true],
      ['write', true],
    ]);
    expect(store.state('root').pending).toEqual([]);
  });
});

describe('a state of another host, left alone', () => {
  it('hands its state to the report as it is (the report lists it, never "no keys")', async () => {
    const directory: PrincipalLister = {
      async *listPrincipals() {
        yield { principal: 'keep' };
      },
      getPrincipal: async () => undefined,
    };
    const { store, run } = setup({}, { bigstate: new FakeLister({ keep: ['k'] }), directory });
    store.seed(snapshotOf('staging-ci', ['a', 'b'], { host: 'https://staging.bigstate.example' }));
    const summary = await run({ principals: [], principalPattern: '*' });
    expect(summary.ok).toBe(true);
    expect(summary.states?.get('staging-ci')?.keys.map((key) => key.name)).toEqual(['a', 'b']);
  });

  it('still fails when a channel refused what earlier runs owe, keeping it owed', async () => {
    const directory: PrincipalLister = {
      async *listPrincipals() {
        yield { principal: 'keep' };
      },
      getPrincipal: async () => undefined,
    };
    const { store, sns, run } = setup({}, { bigstate: new FakeLister({ keep: ['k'] }), directory });
    store.seed(
      snapshotOf('staging-ci', ['a'], {
        host: 'https://staging.bigstate.example',
        pending: [{ record: recordOf('staging-ci', 'chg-1'), deliveredTo: ['events'] }],
      }),
    );
    sns.fail = (notice) => notice.kind === 'changed';
    const summary = await run({ principals: [], principalPattern: '*' });
    expect(summary.principals.find((principal) => principal.principal === 'staging-ci')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^delivering changes of earlier runs: /),
    });
    expect(store.state('staging-ci').pending.map((entry) => entry.deliveredTo)).toEqual([['events']]);
    expect(store.archived.size).toBe(0);
  });
});
