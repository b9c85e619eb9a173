/**
 * The core's two fan-out steps on their own (the Lambda handlers in functions/fan-out.ts only wire them): the plan
 * (`planRun`: the key read once, the listing walked, the targets in order) and the finish (`recordRunOutcome`: the
 * run-level record, told under the rules of a single run). The e2e suite runs them through the bundle.
 */
import { describe, expect, it } from 'vitest';
import type { PrincipalEntry, PrincipalLister, WalkOptions } from '../../functions/bigstate/types.js';
import { SecretError, StorageError } from '../../functions/commons/errors.js';
import { type AuditDeps, planRun, recordRunOutcome } from '../../functions/core/audit.js';
import type { FailureNotice, RecoveredNotice } from '../../functions/core/ports.js';
import {
  FakeLister,
  HOST,
  MemoryStore,
  RecordingChannel,
  snapshotOf,
  steppingClock,
} from './support/fakes.js';

/** A principal listing from a script: the entries in order, then (optionally) a failure. */
function directoryOf(entries: readonly PrincipalEntry[], failAfter?: number): PrincipalLister {
  return {
    async *listPrincipals(_options?: WalkOptions) {
      for (const [index, entry] of entries.entries()) {
        if (index === failAfter) throw new StorageError('listing page 2 failed');
        yield entry;
      }
    },
    getPrincipal: async (principal) => entries.find((entry) => entry.principal === principal),
  };
}

function setup(extra: Partial<AuditDeps> = {}) {
  const events: string[] = [];
  const store = new MemoryStore(events);
  const sns = new RecordingChannel('sns', events);
  const deps: AuditDeps = {
    bigstate: new FakeLister({}),
    store,
    channels: [sns],
    clock: steppingClock('2025-06-01T12:00:00.000Z'),
    ...extra,
  };
  return { deps, store, sns, events };
}

const told = (channel: RecordingChannel) =>
  channel.notices
    .filter((notice): notice is FailureNotice | RecoveredNotice =>
      ['failed', 'recovered'].includes(notice.kind),
    )
    .map((notice) => [notice.kind, notice.principal]);

describe('planRun', () => {
  it('resolves every target in the order a single run takes them: listed, configured, then missing', async () => {
    const { deps, store } = setup({
      directory: directoryOf([
        { principal: 'b', type: 1, name: 'Bee' },
        { principal: 'a', type: 2 },
      ]),
    });
    store.seed(snapshotOf('gone', ['g']));
    store.seed(snapshotOf('elsewhere', ['e']));
    const plan = await planRun(deps, {
      runId: 'exec-1',
      host: HOST,
      principals: ['c', 'a', 'c'],
      principalPattern: 'g*',
    });
    expect(plan).toStrictEqual({
      runId: 'exec-1',
      targets: [
        {
          principal: 'b',
          info: { type: 1, displayName: 'Bee' },
          listed: true,
          configured: false,
          missing: false,
        },
        {
          principal: 'a',
          info: { type: 2, displayName: null },
          listed: true,
          configured: true,
          missing: false,
        },
        { principal: 'c', listed: false, configured: true, missing: false },
        { principal: 'gone', listed: false, configured: false, missing: true },
      ],
    });
  });

  it('starts the configured principals where the last run ran out of time', async () => {
    const { deps, store } = setup();
    store.runState = { state: { schemaVersion: 1, writeId: 'w', resumeFrom: 'c' }, version: '"v"' };
    const plan = await planRun(deps, { runId: 'exec-2', host: HOST, principals: ['a', 'b', 'c', 'd'] });
    expect(plan.targets.map((target) => target.principal)).toEqual(['c', 'd', 'a', 'b']);
    expect(plan.runFailure).toBeUndefined();
  });

  it('fails the run, with no target, when the key cannot be read', async () => {
    const { deps } = setup({
      secret: {
        getApiKey: async () => {
          throw new SecretError('bigstate', 'secret bigstate holds an empty API key');
        },
      },
    });
    await expect(planRun(deps, { runId: 'exec-3', host: HOST, principals: ['a'] })).resolves.toStrictEqual({
      runId: 'exec-3',
      targets: [],
      runFailure: {
        stage: 'reading the API key',
        errorName: 'SecretError',
        reason: 'reading the API key: secret bigstate holds an empty API key',
      },
    });
  });

  it('keeps what a broken listing found and the configured principals, takes none as missing, and says why', async () => {
    const { deps, store } = setup({
      directory: directoryOf([{ principal: 'b' }, { principal: 'x' }], 1),
    });
    store.seed(snapshotOf('gone', ['g']));
    const plan = await planRun(deps, {
      runId: 'exec-4',
      host: HOST,
      principals: ['c'],
      principalPattern: '*',
    });
    expect(plan.targets.map((target) => [target.principal, target.missing])).toEqual([
      ['b', false],
      ['c', false],
    ]);
    expect(plan.runFailure).toStrictEqual({
      stage: 'listing the principals',
      errorName: 'StorageError',
      reason: 'listing the principals: listing page 2 failed',
    });
  });
});

describe('recordRunOutcome', () => {
  const request = { runId: 'exec-9', host: HOST, principals: [] };
  const planFailure = {
    stage: 'reading the API key',
    errorName: 'SecretError',
    reason: 'reading the API key: secret bigstate holds an empty API key',
  };

  it("tells the plan's failure once for the run, keeps it with its stage and error name, then tells its end", async () => {
    const { deps, store, sns } = setup();
    await recordRunOutcome(deps, request, { runFailure: planFailure, results: [] });
    await recordRunOutcome(deps, { ...request, runId: 'exec-10' }, { runFailure: planFailure, results: [] });
    expect(told(sns)).toEqual([['failed', null]]);
    expect(sns.ofKind('failed')[0]).toMatchObject({ errorName: 'SecretError', reason: planFailure.reason });
    expect(store.runState?.state.failure).toMatchObject({
      stage: 'reading the API key',
      errorName: 'SecretError',
      status: null,
    });
    await recordRunOutcome(
      deps,
      { ...request, runId: 'exec-11' },
      {
        results: [{ principal: 'a', status: 'ok' }],
      },
    );
    expect(told(sns)).toEqual([
      ['failed', null],
      ['recovered', null],
    ]);
    expect(store.runState?.state.failure).toBeUndefined();
  });

  it('tells the principals the time budget never reached as one failure, and starts the next run with the first', async () => {
    const { deps, store, sns } = setup();
    await recordRunOutcome(deps, request, {
      results: [
        { principal: 'a', status: 'ok' },
        { principal: 'b', status: 'failed', reason: 'waiting to start: the time budget was spent' },
        { principal: 'c', status: 'failed', reason: 'walking the keys: HTTP 403' },
        { principal: 'd', status: 'failed', reason: 'waiting to start: the time budget was spent' },
      ],
    });
    expect(sns.ofKind('failed')).toStrictEqual([
      expect.objectContaining({
        principal: null,
        errorName: 'TimeBudgetError',
        reason: 'waiting to start: the time budget ended before 2 of 4 principal(s) were audited',
      }),
    ]);
    expect(store.runState?.state.resumeFrom).toBe('b');
  });

  it('keeps nothing and tells nothing when every principal was reached and nothing failed before', async () => {
    const { deps, store, sns, events } = setup();
    await recordRunOutcome(deps, request, {
      results: [
        { principal: 'a', status: 'ok' },
        { principal: 'b', status: 'failed', reason: null },
      ],
    });
    expect(sns.attempts).toEqual([]);
    expect(store.runStateWrites).toEqual([]);
    expect(events).toEqual(['read-run']);
  });

  it('does nothing at all in a dry run', async () => {
    const { deps, sns, events } = setup();
    await recordRunOutcome(deps, { ...request, dryRun: true }, { runFailure: planFailure, results: [] });
    expect(sns.attempts).toEqual([]);
    expect(events).toEqual([]);
  });
});
