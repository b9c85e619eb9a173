/**
 * The scenario the end-to-end tests share: three configured principals with awkward names, their starting keys,
 * where the README says their state lives, and the vitest hooks that give each test a fresh deployment.
 *
 * Per file: the BigState simulator starts first (its URL is the stack's `bigstateHost`), then the stack is
 * synthesized once. Per test: the simulator is reset and a fresh world (AWS fakes and a cold sandbox) is started;
 * afterwards the fakes must have met no call they do not understand, and the API key must show up nowhere.
 */
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';
import {
  type AuditResultJson,
  type AuditWorld,
  type AuditWorldOptions,
  type SynthesizedAudit,
  secretLeaks,
  startAuditWorld,
  succeeded,
  synthesizeAudit,
} from './harness.js';
import type { InvocationResult, LambdaErrorPayload } from './support/index.js';

/** Every API key in these tests starts with this, so one scan finds any of them. */
export const CANARY = 'sk-e2e-CANARY';
export const API_KEY = `${CANARY}-7f3a`;
export const PRINCIPALS = ['root', 'svc a&b', 'zürich #1'] as const;
export type Principal = (typeof PRINCIPALS)[number];

/** As the README's state layout says: the name percent-encoded, dots included. */
export const SNAPSHOT_KEY: Readonly<Record<Principal, string>> = {
  root: 'snapshots/root.json',
  'svc a&b': 'snapshots/svc%20a%26b.json',
  'zürich #1': 'snapshots/z%C3%BCrich%20%231.json',
};
export const HISTORY_PREFIX: Readonly<Record<Principal, string>> = {
  root: 'history/root/',
  'svc a&b': 'history/svc%20a%26b/',
  'zürich #1': 'history/z%C3%BCrich%20%231/',
};
/** The keys each principal has when a test starts. */
export const INITIAL_KEYS: Readonly<Record<Principal, readonly string[]>> = {
  root: ['ci-deploy', 'grafana-read', 'ops-laptop'],
  'svc a&b': ['#primary', 'zürich-backup'],
  'zürich #1': ['monitoring'],
};
/** The contract's EventBridge detail-types. */
export const DETAIL_TYPE = {
  changed: 'BigState API Keys Changed',
  baseline: 'BigState Key Audit Baseline',
  failed: 'BigState Key Audit Failed',
  recovered: 'BigState Key Audit Recovered',
  principalRemoved: 'BigState Principal Removed',
} as const;
/** The run-level record beside the principals' states (failures of the run itself), as the README says. */
export const RUN_STATE_KEY = 'snapshots/.run.json';
/** A subject SNS accepts (under 100 characters) and a mail client shows as it is. */
export const ASCII_SUBJECT = /^[\x20-\x7e]{1,99}$/;
/** Entries per `apikey/match` page: small, so that a few dozen keys make many pages. */
export const PAGE_SIZE = 4;

/** What a test file works with; `world` is replaced for every test. */
export interface E2e {
  readonly simulator: Simulator;
  /** The stack synthesized with the suite's context. */
  readonly audit: SynthesizedAudit;
  /** Further syntheses, by the names given to `useE2e`. */
  readonly variants: Readonly<Record<string, SynthesizedAudit>>;
  readonly world: AuditWorld;
  /** Replaces this test's world with one started with other options. */
  restartWorld(options: AuditWorldOptions): Promise<void>;
  /** A first run that succeeds with every principal's baseline. */
  baseline(): Promise<AuditResultJson>;
  /** The key names of a principal's current snapshot. */
  snapshotNames(principal: Principal): string[];
  /** How many versions each principal's snapshot has. */
  snapshotVersions(): Record<Principal, number>;
  /**
   * A principal's current snapshot without what recording a failure changes (its `failure` and the write id
   * every write renews): the inventory, outbox, host and pattern, each field's value as stored. A failed
   * principal keeps its last good snapshot when this is unchanged.
   */
  kept(principal: Principal): string;
  /** The failure a principal's current snapshot records, if any. */
  recordedFailure(principal: Principal): Record<string, unknown> | undefined;
}

/**
 * Registers the suite's hooks in the calling test file.
 * @param variants further contexts to synthesize the stack with (merged over the suite's), by name.
 */
export function useE2e(
  variants: Readonly<
    Record<string, Record<string, unknown> | ((simulatorUrl: string) => Record<string, unknown>)>
  > = {},
): E2e {
  let simulator: Simulator | undefined;
  let audit: SynthesizedAudit | undefined;
  const synthesized: Record<string, SynthesizedAudit> = {};
  let world: AuditWorld | undefined;
  const defined = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready (used outside a test?)`);
    return value;
  };

  beforeAll(async () => {
    simulator = await startSimulator({ apiKeys: [API_KEY], pageSize: PAGE_SIZE });
    const context = { bigstateHost: simulator.url, principals: [...PRINCIPALS] };
    audit = synthesizeAudit(context);
    for (const [name, extra] of Object.entries(variants)) {
      const more = typeof extra === 'function' ? extra(simulator.url) : extra;
      synthesized[name] = synthesizeAudit({ ...context, ...more });
    }
  });

  afterAll(async () => {
    await simulator?.close();
    for (const each of [audit, ...Object.values(synthesized)]) {
      if (each !== undefined) await rm(each.assemblyDir, { recursive: true, force: true });
    }
  });

  beforeEach(async () => {
    const sim = defined(simulator, 'the simulator');
    sim.clearFaults();
    sim.onPage(undefined);
    sim.stopChurn();
    sim.setApiKeys([API_KEY]);
    for (const principal of PRINCIPALS) sim.setKeys(principal, [...INITIAL_KEYS[principal]]);
    sim.resetStats();
    world = await startAuditWorld(defined(audit, 'the synthesized stack'), { secretString: API_KEY });
  });

  afterEach(async () => {
    const current = world;
    world = undefined;
    if (current === undefined) return;
    try {
      expect(current.fakes.unknownCalls()).toEqual([]);
      expect(secretLeaks(current, [API_KEY, CANARY])).toEqual([]);
    } finally {
      await current.close();
    }
  });

  const e2e: E2e = {
    get simulator() {
      return defined(simulator, 'the simulator');
    },
    get audit() {
      return defined(audit, 'the synthesized stack');
    },
    variants: synthesized,
    get world() {
      return defined(world, 'the world');
    },
    async restartWorld(options) {
      await defined(world, 'the world').close();
      world = undefined;
      world = await startAuditWorld(e2e.audit, options);
    },
    async baseline() {
      const result = succeeded(await e2e.world.invoke({}));
      expect(result.principals.map((outcome) => [outcome.principal, outcome.baseline])).toEqual(
        PRINCIPALS.map((principal) => [principal, true]),
      );
      return result;
    },
    snapshotNames(principal) {
      const snapshot = e2e.world.json(SNAPSHOT_KEY[principal]) as
        | { keys: Array<{ name: string }> }
        | undefined;
      if (snapshot === undefined) throw new Error(`no snapshot of ${principal}`);
      return snapshot.keys.map((key) => key.name);
    },
    snapshotVersions() {
      const count = (principal: Principal) => e2e.world.versions(SNAPSHOT_KEY[principal]).length;
      return { root: count('root'), 'svc a&b': count('svc a&b'), 'zürich #1': count('zürich #1') };
    },
    kept(principal) {
      const snapshot = e2e.world.json(SNAPSHOT_KEY[principal]);
      if (snapshot === undefined) throw new Error(`no snapshot of ${principal}`);
      const { failure: _failure, writeId: _writeId, ...kept } = snapshot;
      // Field by field, each value as stored: a state read back is written with its top-level fields in the
      // order the parser gives them, which says nothing about what they hold.
      const fields = Object.entries(kept).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return JSON.stringify(Object.fromEntries(fields));
    },
    recordedFailure(principal) {
      return e2e.world.json(SNAPSHOT_KEY[principal])?.failure as Record<string, unknown> | undefined;
    },
  };
  return e2e;
}

/**
 * The error of an invocation that was expected to fail.
 * @throws when it succeeded.
 */
export function failureOf(invocation: InvocationResult): LambdaErrorPayload {
  if (invocation.error === undefined) {
    throw new Error(
      `the invocation succeeded where a failure was expected: ${JSON.stringify(invocation.result)}`,
    );
  }
  return invocation.error;
}

/** Sorted `[detail-type, principal]` pairs of events: principals run concurrently, so order is not fixed. */
export function eventKinds(
  events: ReadonlyArray<{ detailType: string; detailJson: Record<string, unknown> }>,
) {
  return events.map((event) => [event.detailType, event.detailJson.principal]).sort();
}
