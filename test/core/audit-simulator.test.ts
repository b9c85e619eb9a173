/**
 * The audit core with the real BigState client against the simulator (a real HTTP server on loopback), and the
 * in-memory store and channels.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SimulatorOptions } from '../../functions/bigstate/simulator.js';
import type { ApiKeyEntry, ApiKeyLister, WalkOptions } from '../../functions/bigstate/types.js';
import { Deadline } from '../../functions/commons/deadline.js';
import { type AuditRequest, runAudit } from '../../functions/core/audit.js';
import type { Snapshot } from '../../functions/core/ports.js';
import { simulatedClient } from '../bigstate/support.js';
import { HOST, keptOf, MemoryStore, RecordingChannel, steppingClock } from './support/fakes.js';

const KEY = 'sim-key-7f3a';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The real client, with every call recorded: walks use the run's pattern, exact checks another one. */
class RecordingLister implements ApiKeyLister {
  readonly calls: Array<{ principal: string; pattern: string | undefined }> = [];
  /** Runs before a call starts (lets a test change BigState between a walk and a check). */
  beforeCall: ((principal: string, pattern: string | undefined) => void) | undefined;

  constructor(
    readonly client: ApiKeyLister,
    readonly walkPattern: string | undefined = undefined,
  ) {}

  listApiKeys(principal: string, options?: WalkOptions): AsyncIterable<ApiKeyEntry> {
    this.calls.push({ principal, pattern: options?.pattern });
    this.beforeCall?.(principal, options?.pattern);
    return this.client.listApiKeys(principal, options);
  }

  walks(principal: string): number {
    return this.calls.filter((call) => call.principal === principal && call.pattern === this.walkPattern)
      .length;
  }

  checks(principal: string): Array<string | undefined> {
    return this.calls
      .filter((call) => call.principal === principal && call.pattern !== this.walkPattern)
      .map((call) => call.pattern);
  }
}

async function setup(options: SimulatorOptions, walkPattern?: string) {
  const { simulator, client } = await simulatedClient(KEY, options, closers);
  const bigstate = new RecordingLister(client, walkPattern);
  const store = new MemoryStore();
  const sns = new RecordingChannel('sns');
  const bus = new RecordingChannel('events');
  let runs = 0;
  const run = (request: Partial<AuditRequest> & { principals: readonly string[] }) =>
    runAudit(
      { bigstate, store, channels: [sns, bus], clock: steppingClock('2025-06-01T12:00:00.000Z') },
      { runId: `run-${++runs}`, host: HOST, ...request },
    );
  return { simulator, bigstate, store, sns, bus, run };
}

describe('runAudit against the BigState simulator', () => {
  it('records a baseline over every page, then finds keys added and removed, each removal checked exactly', async () => {
    const names = ['k1', 'k2', 'k3', 'k4', 'k5'];
    const { simulator, store, sns, bus, bigstate, run } = await setup({
      principals: { root: { keys: names } },
    });

    const baseline = await run({ principals: ['root'] });
    expect(baseline.principals[0]).toMatchObject({ status: 'ok', baseline: true, keyCount: 5 });
    expect(store.state('root').keys.map((key) => key.name)).toEqual(names);

    simulator.addKeys('root', 'k6');
    simulator.removeKeys('root', 'k2', 'k5');
    const changed = await run({ principals: ['root'] });
    expect(changed.principals[0]).toMatchObject({
      status: 'ok',
      baseline: false,
      keyCount: 4,
      added: ['k6'],
      removed: ['k2', 'k5'],
    });
    expect(bigstate.walks('root')).toBe(2);
    expect(bigstate.checks('root')).toEqual(['k2', 'k5']);
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline', 'changed']);
    expect(bus.notices.map((notice) => notice.kind)).toEqual(['baseline', 'changed']);
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['k1', 'k3', 'k4', 'k6']);
    expect(store.state('root').pending).toEqual([]);
  });

  it('reports no removal when offset-cursor churn hides a key from every walk: its exact query finds it', async () => {
    const names = ['a', 'b', 'c', 'd', 'e'];
    const { simulator, store, sns, bigstate, run } = await setup({ principals: { root: { keys: names } } });
    await run({ principals: ['root'] });

    simulator.churn('root');
    const summary = await run({ principals: ['root'] });
    // The churn made the walk miss a real key, so there was something to check, and the check found it. The
    // short-lived key itself did exist while page 0 was served: it is a key added, not a false removal.
    expect(bigstate.checks('root').length).toBeGreaterThan(0);
    expect(summary.principals[0]).toMatchObject({
      status: 'ok',
      keyCount: 6,
      added: ['!churn'],
      removed: [],
    });
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['!churn', ...names]);

    simulator.stopChurn();
    const after = await run({ principals: ['root'] });
    expect(after.principals[0]).toMatchObject({ status: 'ok', keyCount: 5, added: [], removed: ['!churn'] });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline', 'changed', 'changed']);
    for (const notice of sns.ofKind('changed')) {
      expect(notice.record.removed.filter((name) => names.includes(name))).toEqual([]);
    }
  });

  it('keeps a key that was gone from the walk but is back for its exact query', async () => {
    const { simulator, store, sns, bigstate, run } = await setup({
      principals: { root: { keys: ['a', 'b', 'c'] } },
    });
    await run({ principals: ['root'] });

    simulator.removeKeys('root', 'b');
    bigstate.beforeCall = (principal, pattern) => {
      if (principal === 'root' && pattern === 'b') simulator.addKeys('root', 'b');
    };
    const summary = await run({ principals: ['root'] });
    expect(bigstate.checks('root')).toEqual(['b']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', keyCount: 3, added: [], removed: [] });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline']);
    expect(store.state('root').keys.map((key) => key.name)).toEqual(['a', 'b', 'c']);
  });

  it('checks a name holding "*" with a pattern around its longest fragment, and looks for the exact name', async () => {
    const { simulator, bigstate, run } = await setup({
      principals: { root: { keys: ['ci*deploy*x', 'deploy-tool', 'other'] } },
    });
    await run({ principals: ['root'] });

    // Gone, while other names still match the pattern of its check.
    simulator.removeKeys('root', 'ci*deploy*x');
    const summary = await run({ principals: ['root'] });
    expect(bigstate.checks('root')).toEqual(['*deploy*']);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', added: [], removed: ['ci*deploy*x'] });
  });

  it('keeps the last good state of a principal BigState refuses (403), and audits the others', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { open: { keys: ['o1'] }, secret: { keys: ['s1', 's2'] } },
    });
    await run({ principals: ['open', 'secret'] });
    const before = store.snapshots.get('secret');
    simulator.inject('secret', { type: 'status', status: 403 }, { times: 5 });
    simulator.addKeys('open', 'o2');

    const summary = await run({ principals: ['open', 'secret'] });
    expect(summary.ok).toBe(false);
    expect(summary.principals[0]).toMatchObject({ principal: 'open', status: 'ok', added: ['o2'] });
    expect(summary.principals[1]).toMatchObject({
      principal: 'secret',
      status: 'failed',
      errorName: 'ForbiddenError',
    });
    expect(summary.principals[1]?.reason).toMatch(
      /^walking the keys: BigState GET \/v1\/apikey\/match\?principal=secret/,
    );
    expect(summary.principals[1]?.reason).not.toContain(KEY);
    // Its last good state: only the failure is recorded over it, with the status compared by later runs.
    expect(keptOf(store.state('secret'))).toBe(keptOf(before?.snapshot as Snapshot));
    expect(store.writes.filter((write) => write.principal === 'secret').at(-1)?.expectedVersion).toBe(
      before?.version,
    );
    expect(store.state('secret').failure).toMatchObject({
      stage: 'walking the keys',
      errorName: 'ForbiddenError',
      status: 403,
    });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline', 'baseline', 'changed', 'failed']);
  });

  it('fails a principal whose exact check BigState refuses, reporting no removal', async () => {
    const { simulator, store, sns, run } = await setup({ principals: { root: { keys: ['a', 'b'] } } });
    await run({ principals: ['root'] });
    const before = store.snapshots.get('root');
    simulator.removeKeys('root', 'b');
    // The walk's single page passes; the check (the next request) is refused.
    simulator.onPage((principal, pageIndex) => {
      if (principal === 'root' && pageIndex === 0) {
        simulator.onPage(undefined);
        simulator.inject('root', { type: 'status', status: 403 }, { times: 5 });
      }
    });
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({
      status: 'failed',
      errorName: 'ForbiddenError',
      removed: [],
    });
    expect(summary.principals[0]?.reason).toMatch(
      /^confirming 1 removal\(s\) with an exact query of each key: /,
    );
    expect(keptOf(store.state('root'))).toBe(keptOf(before?.snapshot as Snapshot));
    expect(store.state('root').failure).toMatchObject({
      stage: 'confirming N removal(s) with an exact query of each key',
      status: 403,
    });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['baseline', 'failed']);
  });

  it('fails a principal whose pages loop, without touching its inventory', async () => {
    const { simulator, store, run } = await setup({
      principals: { root: { keys: ['a', 'b', 'c', 'd', 'e'] } },
    });
    await run({ principals: ['root'] });
    const before = store.snapshots.get('root');
    simulator.inject('root', { type: 'loop-cursor' }, { onPage: 1 });
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'CursorLoopError' });
    expect(keptOf(store.state('root'))).toBe(keptOf(before?.snapshot as Snapshot));
    expect(store.state('root').failure).toMatchObject({ errorName: 'CursorLoopError', status: null });
  });

  it('stops a walk that hangs when the deadline ends', async () => {
    const { simulator, store, sns, run } = await setup({ principals: { root: { keys: ['a'] } } });
    simulator.inject('root', { type: 'hang' });
    const deadline = Deadline.after(50);
    const started = Date.now();
    const summary = await run({ principals: ['root'], deadline, hardStop: Deadline.none() });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'DeadlineExceededError' });
    // A principal never audited before: its state holds only the failure, and no keys.
    expect(store.writes).toHaveLength(1);
    expect(store.state('root')).toMatchObject({
      awaitingBaseline: true,
      keyCount: 0,
      keys: [],
      pending: [],
      failure: { stage: 'walking the keys', errorName: 'DeadlineExceededError' },
    });
    expect(sns.notices.map((notice) => notice.kind)).toEqual(['failed']);
  });

  it('audits principals with awkward names and passes the pattern through', async () => {
    const { store, run } = await setup(
      {
        principals: {
          'svc a&b': { keys: ['#primary', 'zürich-backup', 'other'] },
          'zürich ops#1': { keys: ['monitoring', 'mon-2'] },
        },
      },
      '*r*',
    );
    const summary = await run({ principals: ['svc a&b', 'zürich ops#1'], pattern: '*r*' });
    expect(summary.principals.map((result) => [result.principal, result.keyCount])).toEqual([
      ['svc a&b', 3],
      ['zürich ops#1', 1],
    ]);
    expect(store.state('zürich ops#1').keys.map((key) => key.name)).toEqual(['monitoring']);
    expect(store.state('svc a&b').pattern).toBe('*r*');
  });

  it('keeps the fields BigState returns besides the name', async () => {
    const { store, run } = await setup({
      principals: { root: { keys: [{ name: 'ci', created: '2025-11-02T08:00:00Z', scopes: ['read'] }] } },
    });
    await run({ principals: ['root'] });
    expect(store.state('root').keys[0]?.attributes).toEqual({
      created: '2025-11-02T08:00:00Z',
      scopes: ['read'],
    });
  });
});
