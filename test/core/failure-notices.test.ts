/**
 * Failure notices by change of state: a principal's failure is told when it starts or its reason (stage, error
 * name, HTTP status) changes, then at most once a day, and its end once; the run's own failure (an unusable
 * secret) is one notice for the run, kept in the run-level record. The invocation fails on every failing run
 * regardless: only the notices are rationed.
 */
import { describe, expect, it } from 'vitest';
import { ForbiddenError, UnauthorizedError } from '../../functions/bigstate/errors.js';
import { parseApiKeySecret } from '../../functions/commons/api-key.js';
import { Deadline } from '../../functions/commons/deadline.js';
import {
  ConcurrentWriteError,
  RecordFormatError,
  StorageError,
  TimeBudgetError,
} from '../../functions/commons/errors.js';
import {
  type AuditDeps,
  type AuditRequest,
  type AuditSummary,
  assertAuditSucceeded,
  runAudit,
} from '../../functions/core/audit.js';
import type { Clock, FailureNotice, RecoveredNotice, SecretSource } from '../../functions/core/ports.js';
import {
  FakeLister,
  HOST,
  keptOf,
  MemoryStore,
  RecordingChannel,
  RecordingLogger,
  snapshotOf,
  storageFailure,
  type WalkScript,
} from './support/fakes.js';

const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
const SECRET_ID = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate-AbCdEf';

/** A clock that stands still until the test moves it. */
function manualClock(start = T0): Clock & { set(ms: number): void } {
  let now = start;
  return { now: () => new Date(now), set: (ms) => (now = ms) };
}

/** The key's source: the secret's text as the stack's secret would hold it, parsed as the adapters parse it. */
function secretOf(initial: string): SecretSource & {
  text: string;
  reads: number;
  getApiKey: SecretSource['getApiKey'];
} {
  const source = {
    text: initial,
    reads: 0,
    getApiKey: async () => {
      source.reads += 1;
      return parseApiKeySecret(SECRET_ID, source.text);
    },
  };
  return source;
}

const forbidden = () =>
  new ForbiddenError({ method: 'GET', path: '/v1/apikey/match?principal=root&next=0', attempts: 1 });
const unauthorized = () =>
  new UnauthorizedError({ method: 'GET', path: '/v1/apikey/match?principal=root&next=0', attempts: 2 });

function setup(
  inventory: Record<string, string[]> = {},
  listerOptions: ConstructorParameters<typeof FakeLister>[1] = {},
  extra: Partial<AuditDeps> = {},
) {
  const events: string[] = [];
  const store = new MemoryStore(events);
  const sns = new RecordingChannel('sns', events);
  const bus = new RecordingChannel('events', events);
  const bigstate = new FakeLister(inventory, listerOptions);
  const logger = new RecordingLogger();
  const clock = manualClock();
  const deps: AuditDeps = { bigstate, store, channels: [sns, bus], clock, logger, ...extra };
  let runs = 0;
  /** One run at `at` (ms since the epoch); run ids count up. */
  const run = (at: number, request: Partial<AuditRequest> = {}) => {
    clock.set(at);
    return runAudit(deps, { runId: `run-${++runs}`, host: HOST, principals: ['root'], ...request });
  };
  return { events, store, sns, bus, bigstate, logger, clock, deps, run };
}

/** The failure and recovery notices a channel took, as `[kind, principal, failingSince, detectedAt]`. */
const told = (channel: RecordingChannel) =>
  channel.notices
    .filter((notice): notice is FailureNotice | RecoveredNotice =>
      ['failed', 'recovered'].includes(notice.kind),
    )
    .map((notice) => [notice.kind, notice.principal, notice.failingSince, notice.detectedAt]);

/** The invocation fails on every failing run, told or not. */
const expectRunFails = (summary: AuditSummary) =>
  expect(() => assertAuditSucceeded(summary)).toThrow(/principal\(s\) failed/);

/** How `root` fails, if it does: its state cannot be read (access denied), or its walk gets a 403. */
type Mode = 'unreadable' | 'forbidden' | 'ok';

/** `root` with a state, failing as the mode the test sets says. */
function switchable(initial: Mode) {
  let mode = initial;
  const context = setup(
    { root: ['a'] },
    { walks: () => (mode === 'forbidden' ? { error: forbidden() } : undefined) },
  );
  context.store.seed(snapshotOf('root', ['a']));
  context.store.onCall = (operation, principal) => {
    if (mode === 'unreadable' && operation === 'read' && principal === 'root')
      throw new StorageError('access denied');
  };
  return { ...context, set: (next: Mode) => (mode = next) };
}

describe('failure notices of a principal', () => {
  it('tells a 403 once over three runs, again a day later, at once when it turns 401, and its end once', async () => {
    let mode: 'forbidden' | 'unauthorized' | 'ok' = 'forbidden';
    const walks = (): WalkScript | undefined =>
      mode === 'forbidden'
        ? { error: forbidden() }
        : mode === 'unauthorized'
          ? { error: unauthorized() }
          : undefined;
    const { run, store, sns, bus, logger } = setup({ root: ['a', 'b'] }, { walks });
    const seeded = snapshotOf('root', ['a', 'b']);
    store.seed(seeded);

    // Three runs in a row, an hour apart: one notice.
    for (const at of [T0, T0 + HOUR, T0 + 2 * HOUR]) {
      const summary = await run(at);
      expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'ForbiddenError' });
      expectRunFails(summary);
      // Its last good snapshot: the inventory, outbox and host as they were; only the failure is recorded.
      expect(keptOf(store.state('root'))).toBe(keptOf(seeded));
    }
    expect(told(sns)).toEqual([['failed', 'root', iso(T0), iso(T0)]]);
    expect(told(bus)).toEqual(told(sns));
    expect(store.state('root').failure).toStrictEqual({
      stage: 'walking the keys',
      errorName: 'ForbiddenError',
      status: 403,
      reason: expect.stringMatching(/^walking the keys: .*HTTP 403/),
      since: iso(T0),
      lastNotifiedAt: iso(T0),
      runId: 'run-3',
    });
    expect(
      logger.lines.filter((line) => line.message === 'failure already told; not published again'),
    ).toEqual([
      {
        level: 'info',
        message: 'failure already told; not published again',
        extra: { principal: 'root', since: iso(T0), lastNotifiedAt: iso(T0) },
      },
      {
        level: 'info',
        message: 'failure already told; not published again',
        extra: { principal: 'root', since: iso(T0), lastNotifiedAt: iso(T0) },
      },
    ]);

    // A day after the notice: told again, still failing since T0.
    expectRunFails(await run(T0 + DAY));
    // 401 next: another reason, told at once, a new since.
    mode = 'unauthorized';
    expectRunFails(await run(T0 + DAY + HOUR));
    expect(store.state('root').failure).toMatchObject({
      errorName: 'UnauthorizedError',
      status: 401,
      since: iso(T0 + DAY + HOUR),
      lastNotifiedAt: iso(T0 + DAY + HOUR),
    });
    expect(keptOf(store.state('root'))).toBe(keptOf(seeded));

    // Then it succeeds: one recovered notice, the failure cleared, no key change.
    mode = 'ok';
    const recovered = await run(T0 + DAY + 2 * HOUR);
    expect(recovered.ok).toBe(true);
    expect(recovered.principals[0]).toMatchObject({ status: 'ok', baseline: false, added: [], removed: [] });
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0), iso(T0 + DAY)],
      ['failed', 'root', iso(T0 + DAY + HOUR), iso(T0 + DAY + HOUR)],
      ['recovered', 'root', iso(T0 + DAY + HOUR), iso(T0 + DAY + 2 * HOUR)],
    ]);
    expect(told(bus)).toEqual(told(sns));
    expect(sns.ofKind('failed').map((notice) => notice.errorName)).toEqual([
      'ForbiddenError',
      'ForbiddenError',
      'UnauthorizedError',
    ]);
    expect(sns.ofKind('recovered')[0]).toStrictEqual({
      kind: 'recovered',
      runId: 'run-6',
      principal: 'root',
      detectedAt: iso(T0 + DAY + 2 * HOUR),
      failingSince: iso(T0 + DAY + HOUR),
    });
    expect(store.state('root')).not.toHaveProperty('failure');
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['a', 'b']);

    // Succeeding again tells nothing more.
    await run(T0 + DAY + 3 * HOUR);
    expect(sns.notices).toHaveLength(4);
  });

  it('tells a reminder at exactly 24 hours after the last notice, not a millisecond before', async () => {
    const { run, store, sns } = setup({}, { walks: () => ({ error: forbidden() }) });
    store.seed(snapshotOf('root', ['a']));
    await run(T0);
    await run(T0 + DAY - 1);
    expect(sns.ofKind('failed')).toHaveLength(1);
    await run(T0 + DAY);
    expect(sns.ofKind('failed').map((notice) => notice.detectedAt)).toEqual([iso(T0), iso(T0 + DAY)]);
    // The next reminder counts from this one.
    await run(T0 + 2 * DAY - 1);
    expect(sns.ofKind('failed')).toHaveLength(2);
  });

  it('tells one failure whose removal count changes between runs (the stage is compared without counts)', async () => {
    const exact = () => ({ error: new Error('HTTP 503 after 5 attempts') });
    let keys = ['a'];
    const { run, store, sns } = setup({}, { walks: () => keys, exact });
    store.seed(snapshotOf('root', ['a', 'b', 'c', 'd']));
    const first = await run(T0);
    expect(first.principals[0]?.reason).toMatch(/^confirming 3 removal\(s\)/);
    keys = [];
    const second = await run(T0 + HOUR);
    expect(second.principals[0]?.reason).toMatch(/^confirming 4 removal\(s\)/);
    expect(sns.ofKind('failed')).toHaveLength(1);
    expect(store.state('root').failure).toMatchObject({
      stage: 'confirming N removal(s) with an exact query of each key',
      since: iso(T0),
      reason: second.principals[0]?.reason,
    });
  });

  it('counts a failure told once some channel took it: a channel that stays down makes no notice every run', async () => {
    const { run, store, sns, bus, logger } = setup({}, { walks: () => ({ error: forbidden() }) });
    store.seed(snapshotOf('root', ['a']));
    sns.fail = (notice) => notice.kind === 'failed';
    await run(T0);
    expect(sns.ofKind('failed')).toEqual([]);
    expect(bus.ofKind('failed')).toHaveLength(1);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'could not publish the failed notice',
      extra: { principal: 'root', reason: 'sns refused the failed notice' },
    });
    expect(store.state('root').failure).toMatchObject({ since: iso(T0), lastNotifiedAt: iso(T0) });
    await run(T0 + HOUR);
    await run(T0 + 2 * HOUR);
    expect(sns.attempts).toHaveLength(1);
    expect(bus.ofKind('failed')).toHaveLength(1);
  });

  it('tells a failure again on the next run when no channel took its notice', async () => {
    const { run, store, sns, bus } = setup({}, { walks: () => ({ error: forbidden() }) });
    store.seed(snapshotOf('root', ['a']));
    sns.fail = () => true;
    bus.fail = () => true;
    await run(T0);
    expect(sns.attempts).toHaveLength(1);
    expect(bus.attempts).toHaveLength(1);
    // Not told: recorded as such.
    expect(store.state('root').failure).toMatchObject({ since: iso(T0), lastNotifiedAt: null });

    sns.fail = undefined;
    bus.fail = undefined;
    await run(T0 + HOUR);
    // Told now, still failing since T0.
    expect(told(sns)).toEqual([['failed', 'root', iso(T0), iso(T0 + HOUR)]]);
    expect(told(bus)).toEqual(told(sns));
    expect(store.state('root').failure).toMatchObject({ since: iso(T0), lastNotifiedAt: iso(T0 + HOUR) });

    await run(T0 + 2 * HOUR);
    expect(sns.ofKind('failed')).toHaveLength(1);
  });

  it('compares a failure after the commit with the one the run found (the commit does not make it new)', async () => {
    const { run, store, sns, bus, bigstate } = setup({ root: ['a', 'new-1'] });
    // Failing since yesterday, told an hour ago: SNS refuses changes.
    const previous = {
      stage: 'publishing the change',
      errorName: 'PublishError',
      status: null,
      reason: 'publishing the change: sns refused the changed notice',
      since: iso(T0 - DAY),
      lastNotifiedAt: iso(T0 - HOUR),
      runId: 'run-0',
    };
    store.seed({ ...snapshotOf('root', ['a']), failure: previous });
    sns.fail = (notice) => notice.kind === 'changed';
    const summary = await run(T0);
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      reason: 'publishing the change: sns refused the changed notice',
    });
    // The commit dropped the failure from the state, yet it is the same one: not told again, no recovery.
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['changed']);
    expect(bus.ofKind('failed')).toEqual([]);
    expect(bus.ofKind('recovered')).toEqual([]);
    const state = store.state('root');
    expect(state.keys.map((key) => key.name)).toEqual(['a', 'new-1']);
    expect(state.failure).toStrictEqual({ ...previous, runId: 'run-1' });
    expect(bigstate.walksOf('root')).toBe(1);
  });

  it('tells no recovery of a failure people were never told about', async () => {
    let failing = true;
    const { run, store, sns, bus } = setup(
      { root: ['a'] },
      { walks: () => (failing ? { error: forbidden() } : undefined) },
    );
    store.seed(snapshotOf('root', ['a']));
    sns.fail = () => true;
    bus.fail = () => true;
    await run(T0);
    expect(store.state('root').failure?.lastNotifiedAt).toBeNull();
    sns.fail = undefined;
    bus.fail = undefined;
    failing = false;
    const summary = await run(T0 + HOUR);
    expect(summary.ok).toBe(true);
    expect(sns.notices).toEqual([]);
    expect(bus.notices).toEqual([]);
    expect(store.state('root')).not.toHaveProperty('failure');
  });

  it('gives a principal that never succeeded a state awaiting its baseline, then a baseline, never added keys', async () => {
    let failing = true;
    const { run, store, sns, bus, bigstate } = setup(
      { root: ['k1', 'k2', 'k3'] },
      { walks: () => (failing ? { error: forbidden() } : undefined) },
    );
    await run(T0);
    await run(T0 + HOUR);
    expect(sns.ofKind('failed')).toHaveLength(1);
    // One state, created once (only if there was none), then replaced conditionally.
    expect(store.writes.map((write) => write.expectedVersion)).toEqual([undefined, store.writes[0]?.version]);
    const waiting = store.state('root');
    expect(waiting).toStrictEqual({
      schemaVersion: 2,
      principal: 'root',
      host: HOST,
      pattern: null,
      auditedAt: iso(T0),
      runId: 'run-1',
      writeId: expect.stringMatching(/^run-2\//),
      keyCount: 0,
      keys: [],
      pending: [],
      awaitingBaseline: true,
      failure: {
        stage: 'walking the keys',
        errorName: 'ForbiddenError',
        status: 403,
        reason: expect.stringMatching(/^walking the keys: /),
        since: iso(T0),
        lastNotifiedAt: iso(T0),
        runId: 'run-2',
      },
    });
    const waitingVersion = store.snapshots.get('root')?.version;

    failing = false;
    const summary = await run(T0 + 2 * HOUR);
    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      baseline: true,
      keyCount: 3,
      added: [],
      removed: [],
    });
    // A baseline with the count: no "added" flood, no removal, nothing to confirm.
    expect(sns.ofKind('changed')).toEqual([]);
    expect(bus.ofKind('changed')).toEqual([]);
    const [notice] = sns.ofKind('baseline');
    expect(notice?.record).toMatchObject({
      kind: 'baseline',
      added: [],
      removed: [],
      counts: { added: 0, removed: 0, total: 3 },
      previousSnapshotVersion: waitingVersion,
    });
    expect(bigstate.exactCalls).toEqual([]);
    // Its failure was told, so its end is too.
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['recovered', 'root', iso(T0), iso(T0 + 2 * HOUR)],
    ]);
    const state = store.state('root');
    expect(state).not.toHaveProperty('awaitingBaseline');
    expect(state).not.toHaveProperty('failure');
    expect(state.keys.map((key) => [key.name, key.firstSeen])).toEqual([
      ['k1', iso(T0 + 2 * HOUR)],
      ['k2', iso(T0 + 2 * HOUR)],
      ['k3', iso(T0 + 2 * HOUR)],
    ]);

    // And the run after it diffs against that baseline.
    bigstate.inventory.root = ['k1', 'k2', 'k3', 'k4'];
    const next = await run(T0 + 3 * HOUR);
    expect(next.principals[0]).toMatchObject({ baseline: false, added: ['k4'], removed: [] });
  });

  it('tells an unreadable state once over three runs and again a day later, keeping the failure aside, never writing the state', async () => {
    const { run, store, sns, bus, bigstate } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    for (const at of [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + DAY]) expectRunFails(await run(at));
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0), iso(T0 + DAY)],
    ]);
    expect(told(bus)).toEqual(told(sns));
    expect(sns.ofKind('failed').map((notice) => notice.reason)).toEqual([
      'reading the snapshot: snapshot is not valid JSON',
      'reading the snapshot: snapshot is not valid JSON',
    ]);
    // The state is never written (it might be a newer version's, or hold what a person must see as it is).
    expect(store.writes).toEqual([]);
    expect(bigstate.calls).toEqual([]);
    expect(store.sideFailures.get('root')?.record).toStrictEqual({
      schemaVersion: 1,
      principal: 'root',
      writeId: expect.stringMatching(/^run-4\//),
      failure: {
        stage: 'reading the snapshot',
        errorName: 'StorageError',
        status: null,
        reason: 'reading the snapshot: snapshot is not valid JSON',
        since: iso(T0),
        lastNotifiedAt: iso(T0 + DAY),
        runId: 'run-4',
      },
    });
  });

  it('tells the end of an unreadable state once, and drops the failure kept aside', async () => {
    const { run, store, sns, events, set } = switchable('unreadable');
    expectRunFails(await run(T0));
    expectRunFails(await run(T0 + HOUR));
    set('ok');
    events.length = 0;
    expect((await run(T0 + 2 * HOUR)).ok).toBe(true);
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['recovered', 'root', iso(T0), iso(T0 + 2 * HOUR)],
    ]);
    expect(store.sideFailures.size).toBe(0);
    expect(events).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      // The day's refresh of its last-seen times (the seeded state is older), then the record kept aside.
      'write:root',
      'read-failure:root',
      // Deleted first, then told: at most once, as the state's own recovery.
      'delete-failure:root',
      'sns:recovered:root',
      'events:recovered:root',
      'read-run',
    ]);
    // Ended: the next runs neither tell it nor look for it.
    events.length = 0;
    expect((await run(T0 + 3 * HOUR)).ok).toBe(true);
    expect(told(sns)).toHaveLength(2);
    expect(events).toEqual(['read-run', 'list-failures', 'read:root', 'read-run']);
  });

  it('tells a new reason of an unreadable state at once (another status), then rations it again', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    let error: Error = new StorageError('snapshot is not valid JSON');
    store.onCall = (operation, principal) => {
      if (operation === 'read' && principal === 'root') throw error;
    };
    expectRunFails(await run(T0));
    error = Object.assign(new StorageError('access denied'), { status: 403 });
    expectRunFails(await run(T0 + HOUR));
    expectRunFails(await run(T0 + 2 * HOUR));
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)],
    ]);
    expect(store.sideFailures.get('root')?.record?.failure).toMatchObject({ status: 403, toldBefore: true });
  });

  it('tells an unreadable state every run only when the failure kept aside cannot be read either', async () => {
    const { run, store, sns, logger } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    store.failOn('sideFailureSegments', '*', storageFailure('list denied', { always: true }));
    store.failOn('readSideFailure', 'root', storageFailure('get denied', { always: true }));
    expectRunFails(await run(T0));
    expectRunFails(await run(T0 + HOUR));
    // Nothing remembers when it began: each notice says it began when it was seen.
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)],
    ]);
    // Nothing written on a record that could not be read: it might hold a newer failure.
    expect(store.calls.filter((call) => call.operation === 'writeSideFailure')).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not read the failure kept aside',
      extra: { principal: 'root', reason: 'get denied' },
    });
  });

  it('still rations an unreadable state when the failures kept aside cannot be listed: it reads its own', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    store.failOn('sideFailureSegments', '*', storageFailure('list denied', { always: true }));
    for (const at of [T0, T0 + HOUR, T0 + 2 * HOUR]) expectRunFails(await run(at));
    expect(told(sns)).toEqual([['failed', 'root', iso(T0), iso(T0)]]);
    expect(store.sideFailures.get('root')?.record?.failure.lastNotifiedAt).toBe(iso(T0));
  });

  it("looks for no failure kept aside when the listing names none, and for no other principal's", async () => {
    const { run, store } = setup({ root: ['a'], other: ['b'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    expectRunFails(await run(T0, { principals: ['root', 'other'] }));
    expectRunFails(await run(T0 + HOUR, { principals: ['root', 'other'] }));
    const sideReads = store.calls.filter((call) => call.operation === 'readSideFailure');
    // The first run's listing was empty: no read at all. The second reads root's only.
    expect(sideReads.map((call) => call.principal)).toEqual(['root']);
  });

  it('moves a failure kept aside into the state once the state reads again and fails otherwise', async () => {
    const { run, store, sns, set } = switchable('unreadable');
    expectRunFails(await run(T0));
    set('forbidden');
    expectRunFails(await run(T0 + HOUR));
    expectRunFails(await run(T0 + 2 * HOUR));
    expect(store.sideFailures.size).toBe(0);
    expect(store.state('root').failure).toMatchObject({ errorName: 'ForbiddenError', toldBefore: true });
    set('ok');
    expect((await run(T0 + 3 * HOUR)).ok).toBe(true);
    // Each reason once, and one end: not one for the record kept aside and another for the state's.
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)],
      ['recovered', 'root', iso(T0 + HOUR), iso(T0 + 3 * HOUR)],
    ]);
  });

  it('tells one end when both the state and the record kept aside hold a failure people were told', async () => {
    const { run, store, sns, set } = switchable('forbidden');
    expectRunFails(await run(T0));
    set('unreadable');
    expectRunFails(await run(T0 + HOUR));
    set('ok');
    expect((await run(T0 + 2 * HOUR)).ok).toBe(true);
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)],
      ['recovered', 'root', iso(T0), iso(T0 + 2 * HOUR)],
    ]);
    expect(store.sideFailures.size).toBe(0);
  });

  it("tells at once a reason that goes back from the record kept aside to the state's older one", async () => {
    const { run, store, sns, set } = switchable('forbidden');
    expectRunFails(await run(T0));
    set('unreadable');
    expectRunFails(await run(T0 + HOUR));
    set('forbidden');
    expectRunFails(await run(T0 + 2 * HOUR));
    // The last people heard was "reading the snapshot": the 403 back is news, not a reminder due in a day.
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)],
      ['failed', 'root', iso(T0 + 2 * HOUR), iso(T0 + 2 * HOUR)],
    ]);
    expect(store.sideFailures.size).toBe(0);
  });

  it('tells the end of a failure kept aside at most once: only after its record is gone', async () => {
    const { run, store, sns, set } = switchable('unreadable');
    expectRunFails(await run(T0));
    set('ok');
    store.failOn('deleteSideFailure', 'root', storageFailure('delete throttled'));
    expect((await run(T0 + HOUR)).ok).toBe(true);
    expect(told(sns).map(([kind]) => kind)).toEqual(['failed']);
    expect(store.sideFailures.size).toBe(1);
    expect((await run(T0 + 2 * HOUR)).ok).toBe(true);
    expect((await run(T0 + 3 * HOUR)).ok).toBe(true);
    expect(told(sns)).toEqual([
      ['failed', 'root', iso(T0), iso(T0)],
      ['recovered', 'root', iso(T0), iso(T0 + 2 * HOUR)],
    ]);
    expect(store.sideFailures.size).toBe(0);
  });

  it("replaces a record kept aside that this version cannot read (a newer release's): told once, then rationed", async () => {
    const { run, store, sns, logger } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    store.sideFailures.set('root', { record: undefined, version: '"newer"', unreadable: 'schemaVersion 2' });
    for (const at of [T0, T0 + HOUR, T0 + 2 * HOUR]) expectRunFails(await run(at));
    expect(told(sns)).toEqual([['failed', 'root', iso(T0), iso(T0)]]);
    expect(store.sideFailures.get('root')?.record?.failure.since).toBe(iso(T0));
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'the failure kept aside is not one this version reads: it is replaced',
      extra: { principal: 'root', reason: 'schemaVersion 2' },
    });
  });

  it('deletes a record kept aside that this version cannot read once the principal succeeds, telling no end it cannot vouch for', async () => {
    const { run, store, sns } = setup({ root: ['a'] });
    store.sideFailures.set('root', { record: undefined, version: '"newer"', unreadable: 'schemaVersion 2' });
    expect((await run(T0)).ok).toBe(true);
    expect(told(sns)).toEqual([]);
    expect(store.sideFailures.size).toBe(0);
  });

  it('rations an unreadable state in a batch of a fanned-out run too: one listing per batch', async () => {
    const { deps, store, sns, events, clock } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    const target = { principal: 'root', listed: false, configured: true, missing: false };
    for (const [index, at] of [T0, T0 + HOUR].entries()) {
      clock.set(at);
      await runAudit(deps, { runId: `batch-${index}`, host: HOST, principals: [], targets: [target] });
    }
    expect(told(sns)).toEqual([['failed', 'root', iso(T0), iso(T0)]]);
    expect(events.filter((event) => event === 'list-failures')).toHaveLength(2);
  });

  it('neither lists nor writes the failures kept aside in a dry run', async () => {
    const { run, store, sns, events } = setup({ root: ['a'] });
    store.failOn('read', 'root', storageFailure('snapshot is not valid JSON', { always: true }));
    await run(T0, { dryRun: true });
    expect(sns.attempts).toEqual([]);
    expect(events).toEqual(['read-run', 'read:root']);
    expect(store.sideFailures.size).toBe(0);
  });

  it('logs a failure record it cannot write, and still fails the run', async () => {
    const { run, store, sns, logger } = setup({}, { walks: () => ({ error: forbidden() }) });
    const version = store.seed(snapshotOf('root', ['a']));
    store.failOn('write', 'root', { error: new ConcurrentWriteError('mem://snapshots/root changed') });
    const summary = await run(T0);
    expectRunFails(summary);
    expect(sns.ofKind('failed')).toHaveLength(1);
    expect(store.snapshots.get('root')?.version).toBe(version);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not record the failure; the next run may tell it again',
      extra: { principal: 'root', reason: 'mem://snapshots/root changed' },
    });
  });
});

describe('failure records and the run deadlines', () => {
  /** A deadline the test ends when it likes. */
  const controlled = (why: string) => {
    const controller = new AbortController();
    return {
      deadline: Deadline.none({ signal: controller.signal }),
      end: () => controller.abort(new TimeBudgetError(why)),
    };
  };

  it('records a failure after the work deadline, until the hard stop', async () => {
    const work = controlled("the run's work deadline ended");
    const { run, store, sns, events } = setup({ root: ['a', 'b'] }, { onWalk: () => work.end() });
    const seeded = snapshotOf('root', ['a']);
    const version = store.seed(seeded);
    const summary = await run(T0, { deadline: work.deadline, hardStop: Deadline.none() });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'TimeBudgetError' });
    expect(sns.ofKind('failed')).toHaveLength(1);
    // The work deadline ended before the commit: the only write is the failure's, over the state as it was.
    expect(store.writes.map((write) => write.expectedVersion)).toEqual([version]);
    expect(keptOf(store.state('root'))).toBe(keptOf(seeded));
    expect(store.state('root').failure).toMatchObject({
      errorName: 'TimeBudgetError',
      lastNotifiedAt: iso(T0),
    });
    // On a signal of the hard stop's, not the ended work deadline's.
    expect(store.writes[0]?.signal?.aborted).toBe(false);
    expect(events).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'sns:failed:root',
      'events:failed:root',
      'write:root',
      'read-run',
    ]);
  });

  it('records nothing once the hard stop has passed: no notice, no write, no run-level record', async () => {
    const work = controlled("the run's work deadline ended");
    const hard = controlled("the run's hard stop ended");
    const { run, store, sns, logger, events } = setup(
      { root: ['a', 'b'] },
      {
        onWalk: () => {
          work.end();
          hard.end();
        },
      },
    );
    const version = store.seed(snapshotOf('root', ['a']));
    const summary = await run(T0, { deadline: work.deadline, hardStop: hard.deadline });
    expectRunFails(summary);
    expect(sns.attempts).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    // Past the hard stop, not even the run-level record is read.
    expect(events).toEqual(['read-run', 'list-failures', 'read:root']);
    expect(logger.lines).toContainEqual({
      level: 'error',
      message: 'no time left to publish the failed notice',
      extra: { principal: 'root' },
    });
  });

  it('starts no failure record when the hard stop passes while the notice goes out', async () => {
    const work = controlled("the run's work deadline ended");
    const hard = controlled("the run's hard stop ended");
    const { run, store, sns, events } = setup({ root: ['a', 'b'] }, { onWalk: () => work.end() });
    const version = store.seed(snapshotOf('root', ['a']));
    sns.beforePublish = () => hard.end();
    await run(T0, { deadline: work.deadline, hardStop: hard.deadline });
    expect(sns.notices).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    expect(events).toEqual([
      'read-run',
      'list-failures',
      'read:root',
      'sns:failed:root',
      'events:failed:root',
    ]);
  });
});

describe('principals the time budget never reached', () => {
  /** A work deadline that ends when the walk of `principal` starts. */
  function endingAt(principal: string) {
    const controller = new AbortController();
    return {
      deadline: Deadline.none({ signal: controller.signal }),
      onWalk: (walked: string) => {
        if (walked === principal) controller.abort(new TimeBudgetError("the run's work deadline ended"));
      },
    };
  }

  it('are one notice for the run, told once; the next run starts with them; their end is told once', async () => {
    let budget = endingAt('p1');
    const { run, store, sns, bigstate } = setup(
      { p1: ['a'], p2: ['b'], p3: ['c'] },
      { onWalk: (principal) => budget.onWalk(principal) },
    );
    const principals = ['p1', 'p2', 'p3'];
    const first = await run(T0, {
      principals,
      concurrency: 1,
      deadline: budget.deadline,
      hardStop: Deadline.none(),
    });
    expect(first.principals.map((result) => [result.principal, result.reason])).toEqual([
      ['p1', "storing the snapshot: the run's work deadline ended"],
      ['p2', 'waiting to start: the time budget was spent before this principal was audited'],
      ['p3', 'waiting to start: the time budget was spent before this principal was audited'],
    ]);
    expectRunFails(first);
    // p1's own failure, and one for the two principals never reached.
    expect(sns.ofKind('failed').map((notice) => [notice.principal, notice.reason])).toEqual([
      ['p1', "storing the snapshot: the run's work deadline ended"],
      [null, 'waiting to start: the time budget ended before 2 of 3 principal(s) were audited'],
    ]);
    expect(store.runState?.state).toMatchObject({
      failure: { stage: 'waiting to start', errorName: 'TimeBudgetError', since: iso(T0) },
      resumeFrom: 'p2',
    });
    // Nothing is recorded for the principals never reached (their states were never read).
    expect([...store.snapshots.keys()]).toEqual(['p1']);

    // The next run starts with p2 and runs out in p3's walk (p3 fails on its own): p1 is the one never reached
    // now, the same failure of the run, not told again.
    budget = endingAt('p3');
    bigstate.calls.length = 0;
    await run(T0 + HOUR, {
      principals,
      concurrency: 1,
      deadline: budget.deadline,
      hardStop: Deadline.none(),
    });
    expect(bigstate.calls.map((call) => call.principal)).toEqual(['p2', 'p3']);
    expect(sns.ofKind('failed').filter((notice) => notice.principal === null)).toHaveLength(1);
    expect(store.runState?.state).toMatchObject({ failure: { since: iso(T0) }, resumeFrom: 'p1' });

    // A run with time for all, from p1 on: the run's failure ends, told once, and the record is cleared.
    bigstate.calls.length = 0;
    const done = await run(T0 + 2 * HOUR, { principals, concurrency: 1 });
    expect(bigstate.calls.map((call) => call.principal)).toEqual(['p1', 'p2', 'p3']);
    expect(done.ok).toBe(true);
    expect(sns.ofKind('recovered').map((notice) => [notice.principal, notice.failingSince])).toEqual([
      ['p1', iso(T0)],
      ['p3', iso(T0 + HOUR)],
      [null, iso(T0)],
    ]);
    expect(store.runState?.state).not.toHaveProperty('failure');
    expect(store.runState?.state).not.toHaveProperty('resumeFrom');
  });

  it('starts with the configured order when the principal to resume from is no longer configured', async () => {
    const { run, store, bigstate } = setup({ p1: ['a'], p2: ['b'] });
    store.runState = { state: { schemaVersion: 1, writeId: 'w', resumeFrom: 'gone' }, version: '"v"' };
    await run(T0, { principals: ['p1', 'p2'], concurrency: 1 });
    expect(bigstate.calls.map((call) => call.principal)).toEqual(['p1', 'p2']);
  });
});

describe('dry runs', () => {
  it('neither publish nor record a failure, and only read the run-level record', async () => {
    const { run, store, sns, bus, events } = setup({}, { walks: () => ({ error: forbidden() }) });
    const version = store.seed(snapshotOf('root', ['a']));
    const summary = await run(T0, { dryRun: true });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'ForbiddenError' });
    expect(sns.attempts).toEqual([]);
    expect(bus.attempts).toEqual([]);
    expect(store.writes).toEqual([]);
    expect(store.snapshots.get('root')?.version).toBe(version);
    // Where to start: read, never written.
    expect(events).toEqual(['read-run', 'read:root']);
    // A real run afterwards tells it: the dry run recorded nothing.
    await run(T0 + HOUR);
    expect(told(sns)).toEqual([['failed', 'root', iso(T0 + HOUR), iso(T0 + HOUR)]]);
  });

  it('tell no recovery and keep the failure for the real run that follows', async () => {
    let failing = true;
    const { run, store, sns } = setup(
      { root: ['a'] },
      { walks: () => (failing ? { error: forbidden() } : undefined) },
    );
    store.seed(snapshotOf('root', ['a']));
    await run(T0);
    failing = false;
    const before = store.snapshots.get('root');
    const dry = await run(T0 + HOUR, { dryRun: true });
    expect(dry.ok).toBe(true);
    expect(sns.ofKind('recovered')).toEqual([]);
    expect(store.snapshots.get('root')).toBe(before);
    await run(T0 + 2 * HOUR);
    expect(told(sns).map(([kind]) => kind)).toEqual(['failed', 'recovered']);
  });

  it('with an unusable secret: every principal fails, nothing is published, read or written', async () => {
    const secret = secretOf('{"apiKey": ""}');
    const { run, store, sns, bigstate, events } = setup({ root: ['a'], other: ['b'] }, {}, { secret });
    const summary = await run(T0, { principals: ['root', 'other'], dryRun: true });
    expect(summary.principals.map((result) => [result.principal, result.status, result.errorName])).toEqual([
      ['root', 'failed', 'SecretError'],
      ['other', 'failed', 'SecretError'],
    ]);
    expect(sns.attempts).toEqual([]);
    expect(bigstate.calls).toEqual([]);
    expect(events).toEqual([]);
    expect(store.runState).toBeUndefined();
  });
});

describe('a failure of the run itself: the API key cannot be read', () => {
  const PRINCIPALS = ['root', 'svc a&b', 'zürich #1'];

  function secretSetup() {
    const secret = secretOf('{"apiKey": ""}');
    const context = setup({ root: ['r1'], 'svc a&b': ['s1', 's2'], 'zürich #1': ['z1'] }, {}, { secret });
    return { secret, ...context, run: (at: number) => context.run(at, { principals: PRINCIPALS }) };
  }

  it('replaces a run-level record this version cannot read, then rations as ever: told once, not every run', async () => {
    const { run, store, sns, logger } = secretSetup();
    store.runState = { state: { schemaVersion: 1, writeId: 'newer' }, version: '"newer"' };
    let corrupt = true;
    // Unreadable until a run replaces it (the write starts with the corrupt record still there).
    store.onCall = (operation) => {
      if (operation === 'writeRunState') corrupt = false;
      if (corrupt && operation === 'readRunState')
        throw new RecordFormatError(
          'run record mem://.run is not a run record: invalid_value at schemaVersion',
          '"newer"',
        );
    };
    for (const at of [T0, T0 + HOUR, T0 + 2 * HOUR]) expectRunFails(await run(at));
    expect(told(sns)).toEqual([['failed', null, iso(T0), iso(T0)]]);
    expect(store.runStateWrites[0]?.failure).toMatchObject({
      errorName: 'SecretError',
      lastNotifiedAt: iso(T0),
    });
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'the run-level record is not one this version reads: it is replaced',
      extra: { reason: 'run record mem://.run is not a run record: invalid_value at schemaVersion' },
    });
  });

  it('heals a run-level record it cannot read on a run that has nothing to tell', async () => {
    const { store, sns, run } = setup({ root: ['a'] });
    store.runState = { state: { schemaVersion: 1, writeId: 'newer' }, version: '"newer"' };
    let corrupt = true;
    store.onCall = (operation) => {
      if (operation === 'writeRunState') corrupt = false;
      if (corrupt && operation === 'readRunState') throw new RecordFormatError('not a run record', '"newer"');
    };
    expect((await run(T0)).ok).toBe(true);
    expect(store.runStateWrites).toHaveLength(1);
    expect(store.runStateWrites[0]).not.toHaveProperty('failure');
    expect(corrupt).toBe(false);
    expect(sns.attempts.map((notice) => notice.kind)).toEqual(['baseline']);
  });

  it('fails every principal naming the secret, with one notice for the run and no BigState request', async () => {
    const { run, store, sns, bus, bigstate, events, secret } = secretSetup();
    const summary = await run(T0);
    const reason = `reading the API key: secret ${SECRET_ID} holds an empty API key: expected the raw API key or JSON {"apiKey": "..."}`;
    expect(summary.ok).toBe(false);
    expect(summary.principals).toStrictEqual(
      PRINCIPALS.map((principal) => ({
        principal,
        status: 'failed',
        reason,
        errorName: 'SecretError',
        baseline: false,
        keyCount: null,
        added: [],
        removed: [],
        redelivered: [],
        pending: [],
      })),
    );
    expectRunFails(summary);
    expect(secret.reads).toBe(1);
    expect(bigstate.calls).toEqual([]);
    // No principal is read, written or told: one notice for the run, kept in the run-level record.
    expect(events).toEqual(['read-run', 'sns:failed:*', 'events:failed:*', 'write-run']);
    expect(store.reads).toEqual([]);
    expect(store.writes).toEqual([]);
    const notice: FailureNotice = {
      kind: 'failed',
      runId: 'run-1',
      principal: null,
      reason,
      errorName: 'SecretError',
      detectedAt: iso(T0),
      failingSince: iso(T0),
    };
    expect(sns.notices).toStrictEqual([notice]);
    expect(bus.notices).toStrictEqual([notice]);
    expect(store.runState?.state).toStrictEqual({
      schemaVersion: 1,
      writeId: expect.stringMatching(/^run-1\//),
      failure: {
        stage: 'reading the API key',
        errorName: 'SecretError',
        status: null,
        reason,
        since: iso(T0),
        lastNotifiedAt: iso(T0),
        runId: 'run-1',
      },
    });
  });

  it('tells it once, a day later again, and its end once the key is fixed; then nothing', async () => {
    const { run, store, sns, bus, events, secret, bigstate } = secretSetup();
    await run(T0);
    const firstVersion = store.runState?.version;
    events.length = 0;
    expectRunFails(await run(T0 + HOUR));
    // Not told again; the record is replaced conditionally, still failing since T0.
    expect(sns.notices).toHaveLength(1);
    expect(events).toEqual(['read-run', 'write-run']);
    expect(store.runState?.state.failure).toMatchObject({
      since: iso(T0),
      lastNotifiedAt: iso(T0),
      runId: 'run-2',
    });
    expect(store.runState?.version).not.toBe(firstVersion);
    expect(bigstate.calls).toEqual([]);

    await run(T0 + DAY);
    expect(told(sns)).toEqual([
      [`failed`, null, iso(T0), iso(T0)],
      ['failed', null, iso(T0), iso(T0 + DAY)],
    ]);

    // The key is filled in: every principal gets its baseline, and the run's failure ends, told once.
    secret.text = '{"apiKey": "bsk_live-7f3a"}';
    events.length = 0;
    const fixed = await run(T0 + DAY + HOUR);
    expect(fixed.ok).toBe(true);
    expect(fixed.principals.map((result) => [result.principal, result.baseline])).toEqual(
      PRINCIPALS.map((principal) => [principal, true]),
    );
    expect(sns.ofKind('baseline')).toHaveLength(3);
    expect(sns.ofKind('changed')).toEqual([]);
    const recovered: RecoveredNotice = {
      kind: 'recovered',
      runId: 'run-4',
      principal: null,
      detectedAt: iso(T0 + DAY + HOUR),
      failingSince: iso(T0),
    };
    expect(sns.ofKind('recovered')).toStrictEqual([recovered]);
    expect(bus.ofKind('recovered')).toStrictEqual([recovered]);
    // After the principals: the record is read, the end told, and the record cleared.
    expect(events.slice(-4)).toEqual(['read-run', 'sns:recovered:*', 'events:recovered:*', 'write-run']);
    expect(store.runState?.state).toStrictEqual({
      schemaVersion: 1,
      writeId: expect.stringMatching(/^run-4\//),
    });

    // A later run has nothing to say about the run itself, and leaves the record alone (it reads it where to
    // start, and after the principals).
    events.length = 0;
    await run(T0 + DAY + 2 * HOUR);
    expect(events.filter((event) => event.endsWith('-run') || event.endsWith(':*'))).toEqual([
      'read-run',
      'read-run',
    ]);
    expect(sns.ofKind('recovered')).toHaveLength(1);
  });

  it('tells a changed reason of the run at once', async () => {
    const { run, sns, secret } = secretSetup();
    await run(T0);
    // Another SecretError, another text: the same failure (the text is not compared).
    secret.text = '{"key": "x"}';
    await run(T0 + HOUR);
    expect(sns.notices).toHaveLength(1);
    // A secret store that fails otherwise: another error name, told at once.
    secret.getApiKey = async () => {
      throw new TypeError('fetch failed');
    };
    await run(T0 + 2 * HOUR);
    expect(told(sns)).toEqual([
      ['failed', null, iso(T0), iso(T0)],
      ['failed', null, iso(T0 + 2 * HOUR), iso(T0 + 2 * HOUR)],
    ]);
    expect(sns.ofKind('failed')[1]?.errorName).toBe('TypeError');
  });

  it('tells no end of a run failure people were never told about', async () => {
    const { run, store, sns, bus, secret } = secretSetup();
    sns.fail = () => true;
    bus.fail = () => true;
    await run(T0);
    expect(store.runState?.state.failure?.lastNotifiedAt).toBeNull();
    sns.fail = undefined;
    bus.fail = undefined;
    secret.text = 'bsk_live-7f3a';
    await run(T0 + HOUR);
    expect(sns.ofKind('recovered')).toEqual([]);
    expect(bus.ofKind('recovered')).toEqual([]);
    expect(store.runState?.state).not.toHaveProperty('failure');
  });

  it('tells the failure every run when the run-level record cannot be read, and warns', async () => {
    const { run, store, sns, logger, events } = secretSetup();
    store.failOn('readRunState', '*', storageFailure('bucket unavailable', { always: true }));
    await run(T0);
    await run(T0 + HOUR);
    expect(sns.ofKind('failed')).toHaveLength(2);
    // Unread, it is never overwritten.
    expect(events.filter((event) => event === 'write-run')).toEqual([]);
    expect(store.runState).toBeUndefined();
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not read the run-level record',
      extra: { reason: 'bucket unavailable' },
    });
  });

  it('warns when the run-level record cannot be written, and tells the failure again next run', async () => {
    const { run, store, sns, logger } = secretSetup();
    store.failOn('writeRunState', '*', storageFailure('throttled'));
    await run(T0);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'could not write the run-level record',
      extra: { reason: 'throttled' },
    });
    await run(T0 + HOUR);
    expect(sns.ofKind('failed')).toHaveLength(2);
    await run(T0 + 2 * HOUR);
    expect(sns.ofKind('failed')).toHaveLength(2);
  });

  it('reads the key before any principal and then not again per principal', async () => {
    const secret = secretOf('bsk_live-7f3a');
    const { run, events } = setup({ root: ['a'] }, {}, { secret });
    const summary = await run(T0);
    expect(summary.ok).toBe(true);
    expect(secret.reads).toBe(1);
    // The run-level calls (where to start, the failures kept aside) aside, the first is a principal's.
    expect(events.filter((event) => !event.endsWith('-run') && event !== 'list-failures')[0]).toBe(
      'read:root',
    );
  });

  it('names the secret in the reason, never its value', async () => {
    const secret = secretOf('{"apiKey": "has a space"}');
    const { run, sns } = setup({ root: ['a'] }, {}, { secret });
    const summary = await run(T0);
    expect(summary.principals[0]?.errorName).toBe('SecretError');
    expect(summary.principals[0]?.reason).toContain(SECRET_ID);
    expect(summary.principals[0]?.reason).not.toContain('has a space');
    expect(sns.ofKind('failed')[0]?.reason).toBe(summary.principals[0]?.reason);
  });

  it('is told as the run failing when what the key source throws is not an Error', async () => {
    const secret = secretOf('x');
    secret.getApiKey = async () => {
      throw 'no key';
    };
    const { run, sns } = setup({ root: ['a'] }, {}, { secret });
    const summary = await run(T0);
    expect(summary.principals[0]).toMatchObject({
      reason: 'reading the API key: no key',
      errorName: 'Error',
    });
    expect(sns.ofKind('failed')).toMatchObject([{ principal: null, errorName: 'Error' }]);
  });
});
