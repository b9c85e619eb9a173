/**
 * The audit core with the real BigState client against the simulator (a real HTTP server on loopback), and the
 * in-memory store and publisher.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../functions/bigstate/simulator.js';
import { type AuditRequest, runAudit } from '../../functions/core/audit.js';
import { MemoryStore, RecordingPublisher, steppingClock } from './support/fakes.js';

const KEY = 'sim-key-7f3a';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function setup(options: SimulatorOptions) {
  const simulator = await startSimulator({ apiKeys: [KEY], pageSize: 2, ...options });
  closers.push(() => simulator.close());
  const bigstate = new BigStateClient({
    host: simulator.url,
    apiKey: async () => KEY,
    sleep: async (_ms, signal) => signal?.throwIfAborted(),
    retry: { maxAttempts: 2 },
  });
  closers.push(() => bigstate.close());
  const store = new MemoryStore();
  const publisher = new RecordingPublisher();
  let runs = 0;
  const run = (request: Partial<AuditRequest> & { principals: readonly string[] }) =>
    runAudit(
      { bigstate, store, publisher, clock: steppingClock('2025-06-01T12:00:00.000Z') },
      { runId: `run-${++runs}`, ...request },
    );
  return { simulator, bigstate, store, publisher, run };
}

/** Counts the walks of each principal from the simulator's first-page hook. */
function countWalks(
  simulator: Simulator,
  hook?: (principal: string, walk: number) => void,
): Map<string, number> {
  const walks = new Map<string, number>();
  simulator.onPage((principal, pageIndex) => {
    if (pageIndex !== 0) return;
    const walk = walks.get(principal) ?? 0;
    walks.set(principal, walk + 1);
    hook?.(principal, walk);
  });
  return walks;
}

describe('runAudit against the BigState simulator', () => {
  it('records a baseline over every page, then finds keys added and removed', async () => {
    const names = ['k1', 'k2', 'k3', 'k4', 'k5'];
    const { simulator, store, publisher, run } = await setup({ principals: { root: { keys: names } } });

    const baseline = await run({ principals: ['root'] });
    expect(baseline.principals[0]).toMatchObject({ status: 'ok', baseline: true, keyCount: 5 });
    expect(store.snapshots.get('root')?.snapshot.keys.map((key) => key.name)).toEqual(names);

    simulator.addKeys('root', 'k6');
    simulator.removeKeys('root', 'k2', 'k5');
    const walks = countWalks(simulator);
    const changed = await run({ principals: ['root'] });
    expect(changed.principals[0]).toMatchObject({
      status: 'ok',
      baseline: false,
      keyCount: 4,
      added: ['k6'],
      removed: ['k2', 'k5'],
    });
    expect(walks.get('root')).toBe(2);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['baseline', 'changed']);
    expect(store.snapshots.get('root')?.snapshot.keys.map((key) => key.name)).toEqual([
      'k1',
      'k3',
      'k4',
      'k6',
    ]);
  });

  it('does not report a removal when the key is back in the second walk', async () => {
    const { simulator, store, publisher, run } = await setup({
      principals: { root: { keys: ['a', 'b', 'c'] } },
    });
    await run({ principals: ['root'] });

    // A page served while the list changes: the first walk misses "b", the confirming walk sees it.
    const walks = countWalks(simulator, (principal, walk) => {
      if (principal !== 'root') return;
      if (walk === 0) simulator.removeKeys('root', 'b');
      if (walk === 1) simulator.addKeys('root', 'b');
    });
    const summary = await run({ principals: ['root'] });
    expect(walks.get('root')).toBe(2);
    expect(summary.principals[0]).toMatchObject({ status: 'ok', keyCount: 3, added: [], removed: [] });
    expect(publisher.notices.map((notice) => notice.kind)).toEqual(['baseline']);
    expect(store.snapshots.get('root')?.snapshot.keys.map((key) => key.name)).toEqual(['a', 'b', 'c']);
  });

  it('keeps the last good snapshot of a principal BigState refuses (403), and audits the others', async () => {
    const { simulator, store, publisher, run } = await setup({
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
    expect(store.snapshots.get('secret')).toBe(before);
    expect(publisher.notices.map((notice) => notice.kind)).toEqual([
      'baseline',
      'baseline',
      'changed',
      'failed',
    ]);
  });

  it('fails a principal whose pages loop, without touching its snapshot', async () => {
    const { simulator, store, run } = await setup({
      principals: { root: { keys: ['a', 'b', 'c', 'd', 'e'] } },
    });
    await run({ principals: ['root'] });
    const before = store.snapshots.get('root');
    simulator.inject('root', { type: 'loop-cursor' }, { onPage: 1 });
    const summary = await run({ principals: ['root'] });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'CursorLoopError' });
    expect(store.snapshots.get('root')).toBe(before);
  });

  it('stops a walk that hangs when the time budget runs out', async () => {
    const { simulator, store, run } = await setup({ principals: { root: { keys: ['a'] } } });
    simulator.inject('root', { type: 'hang' });
    const summary = await run({ principals: ['root'], signal: AbortSignal.timeout(50) });
    expect(summary.principals[0]).toMatchObject({ status: 'failed', errorName: 'DeadlineExceededError' });
    expect(store.writes).toEqual([]);
  });

  it('audits principals with awkward names and passes the pattern through', async () => {
    const { store, run } = await setup({
      principals: {
        'svc a&b': { keys: ['#primary', 'zürich-backup', 'other'] },
        'zürich ops#1': { keys: ['monitoring', 'mon-2'] },
      },
    });
    const summary = await run({ principals: ['svc a&b', 'zürich ops#1'], pattern: '*r*' });
    expect(summary.principals.map((result) => [result.principal, result.keyCount])).toEqual([
      ['svc a&b', 3],
      ['zürich ops#1', 1],
    ]);
    expect(store.snapshots.get('zürich ops#1')?.snapshot.keys.map((key) => key.name)).toEqual(['monitoring']);
    expect(store.snapshots.get('svc a&b')?.snapshot.pattern).toBe('*r*');
  });

  it('keeps the fields BigState returns besides the name', async () => {
    const { store, run } = await setup({
      principals: { root: { keys: [{ name: 'ci', created: '2025-11-02T08:00:00Z', scopes: ['read'] }] } },
    });
    await run({ principals: ['root'] });
    expect(store.snapshots.get('root')?.snapshot.keys[0]?.attributes).toEqual({
      created: '2025-11-02T08:00:00Z',
      scopes: ['read'],
    });
  });
});
