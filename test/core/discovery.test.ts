/**
 * Discovery and the principals' lifecycle, with the real BigState client against the simulator (real HTTP):
 * principals found by `principal/match`, new ones told as new, ones gone from BigState told once as removed and
 * archived, listing glitches and failed listings that must never look like principals disappearing, and
 * configured principals that do not exist.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BigStateClient } from '../../functions/bigstate/client.js';
import type { SimulatorOptions } from '../../functions/bigstate/simulator.js';
import type { PrincipalEntry, PrincipalLister, WalkOptions } from '../../functions/bigstate/types.js';
import { type AuditRequest, assertAuditSucceeded, runAudit } from '../../functions/core/audit.js';
import type { Notice, PrincipalRemovedNotice } from '../../functions/core/ports.js';
import { simulatedClient } from '../bigstate/support.js';
import { HOST, MemoryStore, RecordingChannel, steppingClock } from './support/fakes.js';

const KEY = 'disc-key-5d1e';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** The client's principal directory, counting what the run asks of it. */
class CountingDirectory implements PrincipalLister {
  listings = 0;
  /** The principals looked up one by one, in order. */
  readonly lookups: string[] = [];
  /** The most listing entries handed out and not yet taken by the audit (how far the listing ran ahead). */
  constructor(readonly client: BigStateClient) {}

  async *listPrincipals(options?: WalkOptions): AsyncGenerator<PrincipalEntry, void, undefined> {
    this.listings += 1;
    yield* this.client.listPrincipals(options);
  }

  getPrincipal(principal: string, options?: Parameters<PrincipalLister['getPrincipal']>[1]) {
    this.lookups.push(principal);
    return this.client.getPrincipal(principal, options);
  }
}

async function setup(options: SimulatorOptions) {
  const { simulator, client } = await simulatedClient(KEY, options, closers);
  const directory = new CountingDirectory(client);
  const store = new MemoryStore();
  const sns = new RecordingChannel('sns');
  const bus = new RecordingChannel('events');
  let runs = 0;
  const run = (request: Partial<AuditRequest> = {}) =>
    runAudit(
      {
        bigstate: client,
        directory,
        store,
        channels: [sns, bus],
        clock: steppingClock('2025-06-01T12:00:00.000Z', 1000),
      },
      { runId: `run-${++runs}`, host: HOST, principals: [], principalPattern: '*', ...request },
    );
  return { simulator, directory, store, sns, bus, run };
}

const kinds = (notices: readonly Notice[]) =>
  notices.map((notice) => {
    switch (notice.kind) {
      case 'failed':
      case 'recovered':
        return [notice.kind, notice.principal];
      case 'principal-removed':
        return [notice.kind, notice.principal];
      default:
        return [notice.kind, notice.record.principal, notice.record.newPrincipal === true];
    }
  });

describe('discovery with principalPattern', () => {
  it('audits every principal the listing finds, as new principals, with the listing metadata kept and shown', async () => {
    const { store, sns, run } = await setup({
      principals: {
        tram_client: { type: 1, name: 'Client for tram app', keys: ['t1', 't2', 't3'] },
        'ops user': { type: 2, name: 'Ops\nChange id: forged', keys: ['o1'] },
        bus_client: { keys: [] },
      },
    });
    const summary = await run();
    expect(summary.ok).toBe(true);
    expect(
      summary.principals.map((p) => [p.principal, p.baseline, p.newPrincipal === true, p.keyCount]),
    ).toEqual([
      ['bus_client', true, true, 0],
      ['ops user', true, true, 1],
      ['tram_client', true, true, 3],
    ]);
    expect(kinds(sns.notices).sort()).toEqual([
      ['baseline', 'bus_client', true],
      ['baseline', 'ops user', true],
      ['baseline', 'tram_client', true],
    ]);
    expect(store.state('tram_client').info).toEqual({ type: 1, displayName: 'Client for tram app' });
    const tram = sns.notices.find((n) => n.kind === 'baseline' && n.record.principal === 'tram_client');
    expect(tram?.kind === 'baseline' && tram.record.info).toEqual({
      type: 1,
      displayName: 'Client for tram app',
    });
  });

  it('keeps the configured principals too (the union), each once, and a later run is a plain diff', async () => {
    const { simulator, sns, run } = await setup({
      principals: { app1: { keys: ['a'] }, app2: { keys: ['b'] }, other: { keys: ['c'] } },
    });
    const first = await run({ principals: ['other', 'app1'], principalPattern: 'app*' });
    expect(first.principals.map((p) => [p.principal, p.newPrincipal === true])).toEqual([
      ['app1', false],
      ['app2', true],
      ['other', false],
    ]);
    simulator.addKeys('app2', 'b2');
    const second = await run({ principals: ['other', 'app1'], principalPattern: 'app*' });
    expect(second.principals.map((p) => [p.principal, p.baseline, p.added])).toEqual([
      ['app1', false, []],
      ['app2', false, ['b2']],
      ['other', false, []],
    ]);
    expect(sns.notices.filter((n) => n.kind === 'changed')).toHaveLength(1);
  });

  it('a principal gone from BigState is told once as removed, with the keys it had, its state archived; no per-key removal', async () => {
    const { simulator, store, sns, bus, run, directory } = await setup({
      principals: { keep: { keys: ['k'] }, gone: { type: 1, name: 'Old app', keys: ['g1', 'g2'] } },
    });
    await run();
    simulator.removePrincipal('gone');
    const summary = await run();
    expect(summary.ok).toBe(true);
    const result = summary.principals.find((p) => p.principal === 'gone');
    expect(result).toMatchObject({ status: 'ok', removed: [], principalRemoved: { keys: ['g1', 'g2'] } });
    expect(directory.lookups).toEqual(['gone']);
    const removals = sns.notices.filter((n): n is PrincipalRemovedNotice => n.kind === 'principal-removed');
    expect(removals).toHaveLength(1);
    expect(removals[0]).toMatchObject({
      principal: 'gone',
      keys: ['g1', 'g2'],
      info: { type: 1, displayName: 'Old app' },
      removalId: expect.stringMatching(/^prm-[0-9a-f]{32}$/),
    });
    expect(bus.notices.filter((n) => n.kind === 'principal-removed')).toHaveLength(1);
    expect(sns.notices.filter((n) => n.kind === 'changed')).toEqual([]);
    expect(store.snapshots.has('gone')).toBe(false);
    expect([...store.archived.values()].map((state) => state.principal)).toEqual(['gone']);

    // Told once: the next run has nothing left to tell about it.
    const again = await run();
    expect(again.principals.map((p) => p.principal)).toEqual(['keep']);
    expect(sns.notices.filter((n) => n.kind === 'principal-removed')).toHaveLength(1);

    // It comes back: a new baseline, as a new principal.
    simulator.addPrincipal('gone', { keys: ['g3'] });
    const back = await run();
    expect(back.principals.find((p) => p.principal === 'gone')).toMatchObject({
      baseline: true,
      newPrincipal: true,
      keyCount: 1,
      removed: [],
    });
  });

  it('a principal gone from BigState that still owes a change is not retired until the change is delivered', async () => {
    const { simulator, store, sns, bus, run } = await setup({
      principals: { keep: { keys: ['k'] }, gone: { keys: ['g1', 'g2'] } },
    });
    await run();
    // A change is committed while EventBridge is down: owed to it.
    bus.fail = () => new Error('EventBridge down');
    simulator.removeKeys('gone', 'g2');
    expect((await run()).ok).toBe(false);
    expect(store.snapshots.get('gone')?.snapshot.pending).toHaveLength(1);
    // The principal is deleted; EventBridge is still down: the change stays owed, the state stays, it fails.
    simulator.removePrincipal('gone');
    const down = await run();
    expect(down.principals.find((p) => p.principal === 'gone')).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('EventBridge down'),
    });
    expect(store.snapshots.get('gone')?.snapshot.pending).toHaveLength(1);
    expect(store.archived.size).toBe(0);
    expect(sns.notices.filter((n) => n.kind === 'principal-removed')).toEqual([]);
    // EventBridge is back: the owed change goes out first, then the principal is retired (told, archived).
    bus.fail = undefined;
    const back = await run();
    expect(back.ok).toBe(true);
    const gone = bus.notices.flatMap((n) =>
      n.kind === 'changed' && n.record.principal === 'gone' ? [n.record.removed] : [],
    );
    expect(gone).toEqual([['g2']]);
    expect(bus.notices.filter((n) => n.kind === 'principal-removed')).toHaveLength(1);
    expect(store.snapshots.has('gone')).toBe(false);
    expect([...store.archived.values()][0]?.pending).toEqual([]);
  });

  it('a deferring channel (the CLI --json) shows the owed change first; a later run retires the principal', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { keep: { keys: ['k'] }, gone: { keys: ['g1', 'g2'] } },
    });
    await run();
    // The change is taken by a deferring channel and never acknowledged (the document was never printed).
    sns.defer = () => true;
    simulator.removeKeys('gone', 'g2');
    await run();
    expect(store.snapshots.get('gone')?.snapshot.pending).toHaveLength(1);
    simulator.removePrincipal('gone');
    const next = await run();
    const result = next.principals.find((p) => p.principal === 'gone');
    expect(result?.principalRemoved).toBeUndefined();
    expect(result?.pending.map((entry) => entry.record.removed)).toEqual([['g2']]);
    expect(store.snapshots.has('gone')).toBe(true);
    expect(store.archived.size).toBe(0);
  });

  it('a state of another host is never taken as removed: repointing the stack tells no principal removal', async () => {
    const { simulator, store, sns, bus, run } = await setup({
      principals: { shared: { keys: ['s'] }, 'staging-ci': { keys: ['s1', 's2'] } },
    });
    await run({ host: 'https://staging.bigstate.example' });
    // The stack now points at another host, which has no staging-ci.
    simulator.removePrincipal('staging-ci');
    const summary = await run();
    expect(summary.ok).toBe(true);
    expect([...sns.notices, ...bus.notices].filter((n) => n.kind === 'principal-removed')).toEqual([]);
    expect(store.archived.size).toBe(0);
    expect(store.snapshots.get('staging-ci')?.snapshot.keys.map((key) => key.name)).toEqual(['s1', 's2']);
    // Back on the first host, it is audited as ever.
    expect(
      (await run({ host: 'https://staging.bigstate.example' })).principals.map((p) => p.principal),
    ).toContain('staging-ci');
  });

  it('a failure kept aside ends with the principal it belongs to: retired (a deferring channel too) or of another host', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { keep: { keys: ['k'] }, gone: { keys: ['g1'] }, 'staging-ci': { keys: ['s1'] } },
    });
    await run();
    const aside = (principal: string) => ({
      record: {
        schemaVersion: 1 as const,
        principal,
        writeId: 'run-0/x',
        failure: {
          stage: 'reading the snapshot',
          errorName: 'StorageError',
          status: 403,
          reason: 'reading the snapshot: access denied',
          since: '2025-06-01T11:00:00.000Z',
          lastNotifiedAt: '2025-06-01T11:00:00.000Z',
          runId: 'run-0',
        },
      },
      version: `"${principal}"`,
    });
    store.sideFailures.set('gone', aside('gone'));
    // The CLI's --json defers the removal: the state stays until acknowledged, the record kept aside goes.
    sns.defer = (notice) => notice.kind === 'principal-removed';
    simulator.removePrincipal('gone');
    await run();
    expect(store.snapshots.has('gone')).toBe(true);
    expect(store.sideFailures.has('gone')).toBe(false);
    // Retired, the principal is told removed, not recovered.
    expect(sns.notices.filter((n) => n.kind === 'recovered')).toEqual([]);

    // A state of another host, left alone: it was read, so the failure kept aside has ended, and is told so.
    sns.defer = undefined;
    await run({
      host: 'https://staging.bigstate.example',
      principals: ['staging-ci'],
      principalPattern: undefined,
    });
    store.sideFailures.set('staging-ci', aside('staging-ci'));
    simulator.removePrincipal('staging-ci');
    await run();
    expect(store.sideFailures.has('staging-ci')).toBe(false);
    expect(kinds(sns.notices.filter((n) => n.kind === 'recovered'))).toEqual([['recovered', 'staging-ci']]);
  });

  it('a listing glitch (missing from the listing, but BigState still knows it) is audited as usual', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { a: { keys: ['a1'] }, b: { keys: ['b1', 'b2'] } },
    });
    await run();
    // The listing skips b (e.g. a list shifting under offset cursors), but `GET /v1/principal?principal=b` is 200.
    simulator.onListingPage((page) => {
      if (page !== 0) return;
      simulator.removePrincipal('b');
      // Back as soon as the page is served: only the listing missed it.
      queueMicrotask(() => simulator.addPrincipal('b', { keys: ['b1', 'b2'] }));
    });
    const summary = await run({});
    expect(summary.ok).toBe(true);
    expect(summary.principals.find((p) => p.principal === 'b')).toMatchObject({
      status: 'ok',
      baseline: false,
      keyCount: 2,
      removed: [],
    });
    expect(sns.notices.filter((n) => n.kind === 'principal-removed' || n.kind === 'changed')).toEqual([]);
    expect(store.snapshots.has('b')).toBe(true);
  });

  it('a failed listing fails the run loudly and takes no lifecycle action; the configured principals are still audited', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: {
        app1: { keys: ['a'] },
        app2: { keys: ['b'] },
        app3: { keys: ['d'] },
        app4: { keys: ['e'] },
        conf: { keys: ['c'] },
      },
    });
    await run({ principals: ['conf'], principalPattern: 'app*' });
    // app4 is gone, and the listing breaks off on its second page (app3 would be there).
    simulator.removePrincipal('app4');
    simulator.injectListing({ type: 'status', status: 403 }, { times: Number.POSITIVE_INFINITY, onPage: 1 });
    simulator.addKeys('conf', 'c2');
    const summary = await run({ principals: ['conf'], principalPattern: 'app*' });
    expect(summary.ok).toBe(false);
    expect(summary.runFailure?.reason).toMatch(/^listing the principals: .*403/);
    expect(() => assertAuditSucceeded(summary)).toThrow(/the run failed: listing the principals/);
    // app1 and app2 came on page 0 and were audited; conf is configured; neither app3 nor app4 is taken as removed.
    expect(summary.principals.map((p) => [p.principal, p.status])).toEqual([
      ['app1', 'ok'],
      ['app2', 'ok'],
      ['conf', 'ok'],
    ]);
    expect(summary.principals.find((p) => p.principal === 'conf')?.added).toEqual(['c2']);
    expect(sns.notices.filter((n) => n.kind === 'principal-removed')).toEqual([]);
    expect(store.snapshots.has('app3')).toBe(true);
    expect(store.snapshots.has('app4')).toBe(true);
    // One notice for the run, not one per principal.
    expect(kinds(sns.notices.filter((n) => n.kind === 'failed'))).toEqual([['failed', null]]);
  });

  it('a principal that stopped matching a changed principalPattern is out of scope, not removed', async () => {
    const { store, sns, run } = await setup({
      principals: { 'app-1': { keys: ['a'] }, 'svc-1': { keys: ['s'] } },
    });
    await run({ principalPattern: '*' });
    const summary = await run({ principalPattern: 'app-*' });
    expect(summary.principals.map((p) => p.principal)).toEqual(['app-1']);
    expect(sns.notices.filter((n) => n.kind === 'principal-removed')).toEqual([]);
    expect(store.snapshots.has('svc-1')).toBe(true);
  });

  it('a lookup that fails (not 404) fails that principal as today, keeping its state', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { a: { keys: ['a1'] }, b: { keys: ['b1'] } },
    });
    await run();
    simulator.removePrincipal('b');
    simulator.injectLookup('b', { type: 'status', status: 500 }, { times: Number.POSITIVE_INFINITY });
    const summary = await run();
    expect(summary.principals.find((p) => p.principal === 'b')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^checking whether the principal still exists: .*500/),
    });
    expect(store.snapshots.has('b')).toBe(true);
    expect(sns.notices.filter((n) => n.kind === 'principal-removed')).toEqual([]);
  });

  it('a dry run reports a removed principal but tells nothing and archives nothing', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { a: { keys: ['a1'] }, b: { keys: ['b1'] } },
    });
    await run();
    simulator.removePrincipal('b');
    const told = sns.notices.length;
    const summary = await run({ dryRun: true });
    expect(summary.principals.find((p) => p.principal === 'b')?.principalRemoved).toMatchObject({
      keys: ['b1'],
    });
    expect(sns.notices.length).toBe(told);
    expect(store.snapshots.has('b')).toBe(true);
  });

  it('the removal is told before the state is archived: an archive that fails tells it again (same id), never loses it', async () => {
    const { simulator, store, sns, run } = await setup({
      principals: { a: { keys: ['a1'] }, b: { keys: ['b1'] } },
    });
    await run();
    simulator.removePrincipal('b');
    store.failOn('archive', 'b', { error: new Error('S3 down') });
    const failed = await run();
    expect(failed.principals.find((p) => p.principal === 'b')).toMatchObject({
      status: 'failed',
      reason: expect.stringMatching(/^archiving the state/),
    });
    const again = await run();
    expect(again.principals.find((p) => p.principal === 'b')?.principalRemoved).toBeDefined();
    const ids = sns.notices.flatMap((n) => (n.kind === 'principal-removed' ? [n.removalId] : []));
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(1);
    expect(store.snapshots.has('b')).toBe(false);
  });

  it('streams a large listing: it runs at most a page or so ahead of the audit', async () => {
    const principals = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [`p${String(i).padStart(3, '0')}`, { keys: [] }]),
    );
    const { simulator, run } = await setup({ principals, latencyMs: 2 });
    let listed = 0;
    let maxAhead = 0;
    let audited = 0;
    simulator.onListingPage(() => {
      listed += 2;
      maxAhead = Math.max(maxAhead, listed - audited);
    });
    simulator.onPage(() => {
      audited += 1;
    });
    const summary = await run({ concurrency: 2 });
    expect(summary.principals).toHaveLength(60);
    // Two principals in flight and one page (2) of the listing taken ahead, plus the page being read.
    expect(maxAhead).toBeLessThanOrEqual(8);
  });
});

describe('configured principals that must exist', () => {
  it('a configured principal BigState does not know fails, naming it, instead of an empty baseline; its state is kept', async () => {
    const { store, sns, run } = await setup({ principals: { real: { keys: ['r1'] } } });
    const summary = await run({ principals: ['real', 'nobody'], principalPattern: undefined });
    expect(summary.principals.find((p) => p.principal === 'nobody')).toMatchObject({
      status: 'failed',
      errorName: 'PrincipalNotFoundError',
      reason: 'checking that the principal exists: principal "nobody" does not exist in BigState',
    });
    expect(store.snapshots.get('nobody')?.snapshot.awaitingBaseline).toBe(true);
    expect(
      sns.notices.filter((n) => n.kind === 'baseline').map((n) => 'record' in n && n.record.principal),
    ).toEqual(['real']);
  });

  it('a configured principal with no keys that exists gets its baseline of 0 keys', async () => {
    const { run } = await setup({ principals: { empty: { keys: [] } } });
    const summary = await run({ principals: ['empty'], principalPattern: undefined });
    expect(summary.principals[0]).toMatchObject({ status: 'ok', baseline: true, keyCount: 0 });
  });
});
