/**
 * One audit run. Per principal: deliver what the outbox still owes, walk every page of its keys, confirm each
 * removal with an exact query of that key, commit the new inventory together with its change in one
 * conditional write, and only then deliver the change. Knows nothing of Lambda or AWS: the Lambda handler and
 * the CLI wire it to their adapters.
 *
 * Why this order: what subscribers were told and what the state holds can never diverge silently. A failure
 * before the commit publishes nothing (the next run finds the change again); a failure after it leaves the
 * change in the outbox, and every later run delivers it (same change id) before it diffs against the committed
 * inventory, so a change that is later reverted in BigState is followed by the reverse change.
 */
import { createHash, randomUUID } from 'node:crypto';
import pLimit from 'p-limit';
import type { ApiKeyEntry, ApiKeyLister, PrincipalEntry, PrincipalLister } from '../bigstate/types.js';
import { Deadline } from '../commons/deadline.js';
import {
  AuditRunFailedError,
  describeError,
  PrincipalNotFoundError,
  RecordFormatError,
  TimeBudgetError,
} from '../commons/errors.js';
import { matchesPattern } from '../commons/glob.js';
import { normalizeHost } from '../commons/host.js';
import { ageOf } from './ages.js';
import {
  buildSnapshot,
  changeId,
  type ExactChecks,
  exactPatterns,
  type Inventory,
  needsBaseline,
  reconcile,
  removalCandidates,
} from './diff.js';
import { decideFailure, latestFailure, notified, recoveryIsNews, statusOf } from './failures.js';
import { principalSegment } from './layout.js';
import type {
  AuditLogger,
  ChangeRecord,
  Clock,
  FailureNotice,
  FailureState,
  KeyRecord,
  Notice,
  NoticeChannel,
  PendingChange,
  PrincipalInfo,
  PrincipalRemovedNotice,
  RecoveredNotice,
  RunState,
  SecretSource,
  Snapshot,
  SnapshotStore,
  StaleKey,
  StoredSideFailure,
  StoredSnapshot,
} from './ports.js';
import { laterFields } from './records.js';

/** What a run talks to. */
export interface AuditDeps {
  readonly bigstate: ApiKeyLister;
  readonly store: SnapshotStore;
  /** Where notices go; a change is delivered once every channel took it. */
  readonly channels: readonly NoticeChannel[];
  /** @default the system clock */
  readonly clock?: Clock;
  /** @default silent */
  readonly logger?: AuditLogger;
  /**
   * The API key's source, read once before any principal: a key that cannot be read (an unfilled secret) fails
   * the run itself, with one notice for the run instead of one per principal. Without it, each principal's
   * first request reads the key.
   */
  readonly secret?: SecretSource;
  /**
   * BigState's principals: the listing that discovery walks, and the lookup that tells a principal that no longer
   * exists from one with no keys. Without it there is no discovery, and a principal whose walk finds no key is not
   * checked.
   */
  readonly directory?: PrincipalLister;
}

/** What to audit, and how. */
export interface AuditRequest {
  readonly runId: string;
  /** The principals to audit; duplicates are audited once. */
  readonly principals: readonly string[];
  /** The BigState host the keys are read from: a state taken from another host starts a new baseline. */
  readonly host: string;
  /** Glob passed to BigState; `undefined` = all keys. */
  readonly pattern?: string | undefined;
  /** Walk and diff only: nothing is written, delivered or published. @default false */
  readonly dryRun?: boolean | undefined;
  /**
   * The work deadline: after it no new BigState request, walk, check, write or delivery starts, and principals
   * not finished fail. @default no time limit
   */
  readonly deadline?: Deadline | undefined;
  /** Until when failure notices may still go out, each with a short timeout. @default `deadline` */
  readonly hardStop?: Deadline | undefined;
  /** Principals audited at once. @default 4 */
  readonly concurrency?: number | undefined;
  /** Keys older than this many days are told once as stale (`maxKeyAgeDays`). @default none */
  readonly maxKeyAgeDays?: number | undefined;
  /** Exact checks of one principal's removal candidates under way at once. @default 8 */
  readonly checkConcurrency?: number | undefined;
  /**
   * Discovery: list the principals matching this glob (`*`: every principal the key can see) and audit each one
   * found besides `principals`; a principal that has a state, matches it and is missing from a complete listing
   * is checked, and archived when BigState says it no longer exists. Needs `deps.directory`.
   */
  readonly principalPattern?: string | undefined;
  /**
   * The principals to audit, as a plan already resolved them (a fan-out worker's batch): no listing, no key read
   * before them, no run-level record; `principals` and `principalPattern` are then ignored.
   */
  readonly targets?: readonly Target[] | undefined;
}

/** The outcome for one principal. */
export interface PrincipalResult {
  readonly principal: string;
  readonly status: 'ok' | 'failed';
  /** Why it failed (never a secret). */
  readonly reason?: string;
  readonly errorName?: string;
  /** The first snapshot of this principal (or the first after its pattern or host changed). */
  readonly baseline: boolean;
  /** Keys after this run; `null` when the principal failed. */
  readonly keyCount: number | null;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Set when the run found a baseline or a change. */
  readonly changeId?: string;
  readonly changeRecordLocation?: string;
  /** Changes of earlier runs delivered by this one (their first delivery failed or was cut short). */
  readonly redelivered: readonly ChangeRecord[];
  /** The outbox after this run: changes some channel has not delivered (or deferred), oldest first. */
  readonly pending: readonly PendingChange[];
  /** A baseline of a principal discovery found for the first time. */
  readonly newPrincipal?: boolean;
  /**
   * Keys newly past `maxKeyAgeDays` in this run: told once as a `stale` notice (a dry run: would be), so the
   * plan of a dry run shows them too.
   */
  readonly stale?: NonNullable<ChangeRecord['stale']>;
  /** The principal no longer exists in BigState: it was told as removed and its state archived. */
  readonly principalRemoved?: PrincipalRemovedNotice;
  /**
   * The removal was deferred by a channel (not shown yet): its state is archived only by
   * {@link acknowledgeRemoval}, with this version.
   */
  readonly removalAwaitingAcknowledgement?: { readonly version: string };
  /** What the principal listing says of it. */
  readonly info?: PrincipalInfo;
  /**
   * Keys missing from the walk that no exact answer of one page could settle (names holding `*` that a pattern
   * shares with many keys, while keys churn): kept, not reported removed; a later run settles them.
   */
  readonly unconfirmedRemovals?: readonly string[];
}

/** The outcome of a run. */
export interface AuditSummary {
  readonly runId: string;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** In the order requested. */
  readonly principals: readonly PrincipalResult[];
  /** True when every principal was audited, every change delivered (or deferred), and the run itself did not fail. */
  readonly ok: boolean;
  /** A failure of the run itself beyond its principals (a principal listing that broke off). */
  readonly runFailure?: { readonly reason: string; readonly errorName: string };
  /**
   * Each audited principal's state after the run (the last good one when it failed): what the inventory report
   * is built from, without reading the states again. Not part of any response.
   */
  readonly states?: ReadonlyMap<string, Snapshot | null>;
  /**
   * The principals whose failure changed in a way people were told of in this run: a failure told (it started,
   * its reason changed, the daily reminder) or its end told. What a report listing failures is rewritten for (a
   * principal that keeps failing quietly changes nothing in it). Not part of any response.
   */
  readonly failureNews?: ReadonlySet<string>;
}

/** The stage of a principal the time budget never reached. */
const WAITING_TO_START = 'waiting to start';

/** How long one failure notice may take once the work deadline has passed. */
const NOTICE_TIMEOUT_MS = 2_000;
/** Above this many removal candidates, a second walk first narrows them (cheaper than one query per key). */
const SECOND_WALK_THRESHOLD = 16;

const systemClock: Clock = { now: () => new Date() };
const silent: AuditLogger = { debug() {}, info() {}, warn() {}, error() {} };

interface RunContext {
  readonly deps: AuditDeps;
  readonly clock: Clock;
  readonly logger: AuditLogger;
  readonly request: AuditRequest;
  readonly host: string;
  readonly pattern: string | null;
  readonly dryRun: boolean;
  readonly deadline: Deadline;
  readonly hardStop: Deadline;
  /** Each principal's state after the run (the last good one when it failed): what the report is built from. */
  /** `null`: its state was read and there is none (a principal that never had one). */
  readonly states: Map<string, Snapshot | null>;
  /**
   * The principals that have a side failure (their segments), listed once before the principals of a run or
   * batch that writes; `undefined` when not listed (a dry run) or when the listing failed.
   */
  sideFailures: ReadonlySet<string> | undefined;
  /** The principals whose failure changed in a way people were told of in this run (see AuditSummary). */
  readonly failureNews: Set<string>;
}

/**
 * Runs one audit. Never throws for a principal's failure: that principal keeps its last good state, a failure
 * notice is published (unless dry), the others go on, and the summary says `ok: false`; the caller then fails
 * the invocation ({@link assertAuditSucceeded}). Resolves only when no work of the run is under way.
 */
export async function runAudit(deps: AuditDeps, request: AuditRequest): Promise<AuditSummary> {
  const ctx = contextOf(deps, request);
  const principals = [...new Set(request.principals)];
  const started = ctx.clock.now();
  ctx.logger.info('audit started', { principals: principals.length, dryRun: ctx.dryRun });
  if (request.targets !== undefined) {
    // A batch of a planned run: the plan step read the key and listed the principals; the final step keeps the
    // run-level record. Each principal is audited exactly as in a single run.
    const batch = request.targets;
    await listSideFailures(ctx);
    const outcomes = await drain(batch[Symbol.iterator](), request.concurrency ?? 4, async (target) =>
      auditPrincipal(ctx, target),
    );
    return summarise(ctx, started, outcomes, undefined);
  }
  const runFailure = await readApiKey(ctx);
  let listingFailure: StageError | undefined;
  let results: PrincipalResult[];
  if (runFailure) {
    results = principals.map((principal) => failedResult(principal, runFailure));
  } else {
    const order = await resumeOrder(ctx, principals);
    await listSideFailures(ctx);
    const discovery = discover(ctx, order);
    results = await drain(discovery.targets, request.concurrency ?? 4, (target) =>
      auditPrincipal(ctx, target),
    );
    listingFailure = discovery.failure();
  }
  // Principals the time budget never reached are one failure of the run, told once for all of them; the next
  // run starts with the first of them, so a list too long for one run is still audited in turns.
  const waited = results.filter(
    (result) => result.status === 'failed' && result.reason?.startsWith(WAITING_TO_START),
  );
  const budgetFailure =
    waited.length === 0
      ? undefined
      : new StageError(
          WAITING_TO_START,
          new TimeBudgetError(
            `the time budget ended before ${waited.length} of ${results.length} principal(s) were audited`,
          ),
        );
  if (!ctx.dryRun) await recordRun(ctx, runFailure ?? listingFailure ?? budgetFailure, waited[0]?.principal);
  return summarise(ctx, started, results, listingFailure);
}

/** The summary of a run (or of a batch), logged. */
function summarise(
  ctx: RunContext,
  started: Date,
  results: readonly PrincipalResult[],
  listingFailure: StageError | undefined,
): AuditSummary {
  const finished = ctx.clock.now();
  const summary: AuditSummary = {
    runId: ctx.request.runId,
    dryRun: ctx.dryRun,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    principals: results,
    states: ctx.states,
    failureNews: ctx.failureNews,
    ok: listingFailure === undefined && results.every((result) => result.status === 'ok'),
    ...(listingFailure === undefined
      ? {}
      : {
          runFailure: {
            reason: listingFailure.message,
            errorName: listingFailure.errorName,
          },
        }),
  };
  ctx.logger.info('audit finished', {
    ok: summary.ok,
    failed: results.filter((result) => result.status === 'failed').length,
    durationMs: summary.durationMs,
  });
  return summary;
}

/** What a plan step resolved: the principals of a run, or why the run itself failed. */
export interface RunPlan {
  readonly runId: string;
  /** Every principal to audit, in order (configured and discovered, and the stored ones a listing missed). */
  readonly targets: readonly Target[];
  /** A failure of the run itself: the key could not be read (no target then) or the listing broke off. */
  readonly runFailure?: { readonly reason: string; readonly errorName: string; readonly stage: string };
}

/**
 * Resolves the principals of a run without auditing them, for a fan-out (the plan step of the state machine):
 * the key read once, the principal listing walked (every page), then the configured principals and the stored
 * ones a complete listing missed, in the order a single run would audit them. The targets then go to workers
 * (`AuditRequest.targets`); {@link recordRunOutcome} keeps the run-level record at the end.
 */
export async function planRun(deps: AuditDeps, request: AuditRequest): Promise<RunPlan> {
  const ctx = contextOf(deps, request);
  const runFailure = await readApiKey(ctx);
  if (runFailure) {
    return { runId: request.runId, targets: [], runFailure: failureOf(runFailure) };
  }
  const discovery = discover(ctx, await resumeOrder(ctx, [...new Set(request.principals)]));
  const targets: Target[] = [];
  for await (const target of discovery.targets) targets.push(target);
  const listing = discovery.failure();
  return { runId: request.runId, targets, ...(listing ? { runFailure: failureOf(listing) } : {}) };
}

/**
 * Keeps the run-level record of a fanned-out run once every batch finished (the final step): its own failure
 * (from the plan) or the principals the time budget never reached, told under the rules of a single run.
 */
export async function recordRunOutcome(
  deps: AuditDeps,
  request: AuditRequest,
  outcome: {
    readonly runFailure?: RunPlan['runFailure'];
    /** Each principal's outcome (a fan-out's rows carry no more than this). */
    readonly results: ReadonlyArray<{
      readonly principal: string;
      readonly status: 'ok' | 'failed';
      readonly reason?: string | null | undefined;
    }>;
  },
): Promise<void> {
  const ctx = contextOf(deps, request);
  if (ctx.dryRun) return;
  const waited = outcome.results.filter(
    (result) => result.status === 'failed' && result.reason?.startsWith(WAITING_TO_START),
  );
  const failure =
    outcome.runFailure !== undefined
      ? stageErrorOf(outcome.runFailure)
      : waited.length > 0
        ? new StageError(
            WAITING_TO_START,
            new TimeBudgetError(
              `the time budget ended before ${waited.length} of ${outcome.results.length} principal(s) were audited`,
            ),
          )
        : undefined;
  await recordRun(ctx, failure, waited[0]?.principal);
}

/**
 * A failure the plan step passed on (see {@link failureOf}), as the StageError it was: the same stage, error name
 * and reason (its text already names the stage, which is not named twice).
 */
function stageErrorOf(failure: NonNullable<RunPlan['runFailure']>): StageError {
  const prefix = `${failure.stage}: `;
  const text = failure.reason.startsWith(prefix) ? failure.reason.slice(prefix.length) : failure.reason;
  return new StageError(failure.stage, Object.assign(new Error(text), { name: failure.errorName }));
}

function failureOf(failure: StageError): { reason: string; errorName: string; stage: string } {
  return {
    reason: failure.message,
    errorName: failure.errorName,
    stage: failure.stage,
  };
}

/** A principal to audit, and how the run came to it. */
export interface Target {
  readonly principal: string;
  /** What the listing says of it, when it was listed. */
  readonly info?: PrincipalInfo | undefined;
  /** Found in the principal listing (so it exists). */
  readonly listed: boolean;
  /** Named in the configuration or the invocation. */
  readonly configured: boolean;
  /** Has a state, matches the principal pattern, and a complete listing did not list it. */
  readonly missing: boolean;
}

function infoOf(entry: PrincipalEntry): PrincipalInfo {
  return {
    type: typeof entry.type === 'number' ? entry.type : null,
    displayName: typeof entry.name === 'string' && entry.name !== '' ? entry.name : null,
  };
}

/**
 * The principals of a run, as a stream: with a principal pattern, each principal of the listing as its page
 * arrives (the listing advances only as fast as principals are audited: a listing of thousands is never held
 * whole), then the configured ones it did not list, then, once the listing is complete, the principals that have
 * a state, match the pattern and were not listed. A listing that breaks off is the run's failure: nothing is then
 * taken as missing, and the configured principals are still audited.
 */
function discover(
  ctx: RunContext,
  configured: readonly string[],
): { readonly targets: AsyncGenerator<Target>; failure(): StageError | undefined } {
  let failure: StageError | undefined;
  const named = new Set(configured);
  async function* targets(): AsyncGenerator<Target, void, undefined> {
    const seen = new Set<string>();
    const pattern = ctx.request.principalPattern;
    const directory = ctx.deps.directory;
    let complete = false;
    if (pattern !== undefined) {
      try {
        if (directory === undefined) throw new Error('discovery needs the BigState principal directory');
        ctx.deadline.throwIfExpired();
        for await (const entry of directory.listPrincipals({ pattern, deadline: ctx.deadline })) {
          if (seen.has(entry.principal)) continue;
          seen.add(entry.principal);
          const configuredToo = named.has(entry.principal);
          yield {
            principal: entry.principal,
            info: infoOf(entry),
            listed: true,
            configured: configuredToo,
            missing: false,
          };
        }
        complete = true;
      } catch (error) {
        failure = new StageError('listing the principals', error);
        ctx.logger.error('the principal listing failed: no principal is taken as missing', {
          reason: failure.message,
        });
      }
    }
    for (const principal of configured) {
      if (seen.has(principal)) continue;
      seen.add(principal);
      yield { principal, listed: false, configured: true, missing: false };
    }
    if (!complete || pattern === undefined) return;
    try {
      for await (const principal of ctx.deps.store.principalsWithState({ signal: ctx.deadline.signal })) {
        if (seen.has(principal) || !matchesPattern(principal, pattern)) continue;
        seen.add(principal);
        yield { principal, listed: false, configured: false, missing: true };
      }
    } catch (error) {
      failure = new StageError('listing the principals that have a state', error);
      ctx.logger.error('could not list the stored states: no principal is taken as missing', {
        reason: failure.message,
      });
    }
  }
  return { targets: targets(), failure: () => failure };
}

/** Runs `work` on every item of a stream, `concurrency` at a time, pulling the next item only when one is free. */
async function drain<T, R>(
  source: AsyncIterator<T> | Iterator<T>,
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let index = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const next = await source.next();
      if (next.done === true) return;
      const at = index++;
      results[at] = await work(next.value);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return results;
}

/** Reads the API key once, before any principal; the failure of the run itself when it cannot. */
async function readApiKey(ctx: RunContext): Promise<StageError | undefined> {
  const secret = ctx.deps.secret;
  // A time budget spent before the run began is no failure of the key: each principal then fails with
  // "waiting to start", and the run-level record is not blamed on the secret.
  if (secret === undefined || ctx.deadline.expired) return undefined;
  try {
    await stage(ctx, 'reading the API key', () =>
      secret.getApiKey({ refresh: false, signal: ctx.deadline.signal }),
    );
    return undefined;
  } catch (error) {
    const failure = error as StageError;
    ctx.logger.error('the run failed: no principal can be audited', {
      reason: failure.message,
      errorName: failure.errorName,
    });
    return failure;
  }
}

/**
 * The configured principals in the order to audit them: from the first one an earlier run's time budget did not
 * reach (kept in the run-level record), round to the start, so a list too long for one run is audited in turns
 * instead of the same principals never being reached. A record that cannot be read changes nothing.
 */
async function resumeOrder(ctx: RunContext, principals: readonly string[]): Promise<readonly string[]> {
  // No time at all: every principal waits anyway, and the record need not be read (nor warned about).
  if (ctx.deadline.expired) return principals;
  let resumeFrom: string | undefined;
  try {
    resumeFrom = (await ctx.deps.store.readRunState({ signal: ctx.deadline.signal }))?.state.resumeFrom;
  } catch (error) {
    ctx.logger.warn('could not read the run-level record', { reason: describeError(error) });
  }
  const at = resumeFrom === undefined ? -1 : principals.indexOf(resumeFrom);
  if (at <= 0) return principals;
  ctx.logger.info('resuming where the last run ran out of time', { resumeFrom });
  return [...principals.slice(at), ...principals.slice(0, at)];
}

/** A principal the run could not audit because the run itself failed. */
function failedResult(principal: string, failure: StageError): PrincipalResult {
  return {
    principal,
    status: 'failed',
    reason: failure.message,
    errorName: failure.errorName,
    baseline: false,
    keyCount: null,
    added: [],
    removed: [],
    redelivered: [],
    pending: [],
  };
}

/**
 * Keeps the run-level record beside the principals' states, under the same rules as a principal's failure:
 * the run's own failure is told when it starts or its reason changes, then once a day, and its end once. Best
 * effort: a record that cannot be read or written is logged, and a failure is then always told. A record that is
 * there but is not one this version reads (corrupt, a newer release's) holds nothing worth keeping: it is
 * replaced, at its version, so the rationing starts over instead of being lost for good.
 */
async function recordRun(
  ctx: RunContext,
  failure: StageError | undefined,
  resumeFrom?: string,
): Promise<void> {
  if (ctx.hardStop.expired) {
    // As a principal's notice: a failure nobody could be told about is at least in the logs.
    if (failure !== undefined)
      ctx.logger.error('no time left to publish the failed notice', { principal: null });
    return;
  }
  const { store } = ctx.deps;
  const signal = ctx.hardStop.signalWithin(NOTICE_TIMEOUT_MS);
  let known: { readonly state: RunState; readonly version: string } | undefined;
  let readable = true;
  /** The version of a record to replace (one this version cannot read). */
  let replacing: string | undefined;
  try {
    known = await store.readRunState({ signal });
  } catch (error) {
    if (error instanceof RecordFormatError) {
      replacing = error.version;
      ctx.logger.warn('the run-level record is not one this version reads: it is replaced', {
        reason: error.message,
      });
    } else {
      readable = false;
      ctx.logger.warn('could not read the run-level record', { reason: describeError(error) });
    }
  }
  const now = ctx.clock.now();
  let next: RunState;
  if (failure === undefined) {
    const previous = known?.state.failure;
    if (previous === undefined && known?.state.resumeFrom === undefined && replacing === undefined) return;
    await tellRecovered(ctx, null, previous);
    next = { schemaVersion: 1, writeId: writeId(ctx.request.runId) };
  } else {
    const errorName = failure.errorName;
    const decision = decideFailure(
      known?.state.failure,
      { stage: failure.stage, errorName, status: statusOf(failure.error), reason: failure.message },
      now,
      ctx.request.runId,
    );
    let kept = decision.state;
    if (decision.notify || !readable) {
      const told = await publishNotice(ctx, {
        kind: 'failed',
        runId: ctx.request.runId,
        principal: null,
        reason: failure.message,
        errorName,
        detectedAt: now.toISOString(),
        failingSince: kept.since,
      });
      if (told) kept = notified(kept, now);
    } else {
      ctx.logger.info('run failure already told; not published again', { since: kept.since });
    }
    next = {
      schemaVersion: 1,
      writeId: writeId(ctx.request.runId),
      failure: kept,
      ...(resumeFrom === undefined ? {} : { resumeFrom }),
    };
  }
  if (!readable || ctx.hardStop.expired) return;
  try {
    await store.writeRunState(next, known?.version ?? replacing, { signal });
  } catch (error) {
    ctx.logger.warn('could not write the run-level record', { reason: describeError(error) });
  }
}

function contextOf(deps: AuditDeps, request: AuditRequest): RunContext {
  const deadline = request.deadline ?? Deadline.none();
  return {
    deps,
    clock: deps.clock ?? systemClock,
    logger: deps.logger ?? silent,
    request,
    host: normalizeHost(request.host),
    pattern: request.pattern ?? null,
    dryRun: request.dryRun === true,
    deadline,
    hardStop: request.hardStop ?? deadline,
    states: new Map(),
    sideFailures: undefined,
    failureNews: new Set(),
  };
}

/** A principal's failure, carrying the stage it happened in. */
class StageError extends Error {
  constructor(
    readonly stage: string,
    readonly error: unknown,
  ) {
    super(`${stage}: ${describeError(error)}`);
  }

  /** The class of the error behind it (`ForbiddenError`, ...): what failure notices compare. */
  get errorName(): string {
    return this.error instanceof Error ? this.error.name : 'Error';
  }
}

/** Runs one stage of a principal's audit; a failure names the stage. No stage starts after the deadline. */
async function stage<T>(ctx: RunContext, name: string, work: () => Promise<T>): Promise<T> {
  try {
    ctx.deadline.throwIfExpired();
    return await work();
  } catch (error) {
    throw error instanceof StageError ? error : new StageError(name, error);
  }
}

/** A write id that never repeats (Lambda reuses a request id when it retries an event). */
function writeId(runId: string): string {
  return `${runId}/${randomUUID()}`;
}

async function auditPrincipal(ctx: RunContext, target: Target): Promise<PrincipalResult> {
  const { principal } = target;
  let info = target.info;
  const { store } = ctx.deps;
  const signal = ctx.deadline.signal;
  let redelivered: ChangeRecord[] = [];
  let outbox: readonly PendingChange[] = [];
  // What the failure path needs to record a failure in the principal's state: whether it was read, and its
  // latest version (each commit below moves it).
  let stateRead = false;
  let state: Snapshot | undefined;
  let version: string | undefined;
  // The failure as the run found it: a commit below drops it from the state, and a failure after that commit
  // (a channel down) must still be compared with it, or it would be told as new on every run.
  let failedBefore: FailureState | undefined;
  try {
    if (ctx.deadline.expired) {
      throw new StageError(
        WAITING_TO_START,
        new TimeBudgetError('the time budget was spent before this principal was audited'),
      );
    }
    const stored = await stage(ctx, 'reading the snapshot', () => store.read(principal, { signal }));
    state = stored?.snapshot;
    version = stored?.version;
    stateRead = true;
    failedBefore = state?.failure;
    outbox = state?.pending ?? [];
    const commit = async (next: Snapshot, name: string): Promise<void> => {
      const written = { ...next, writeId: writeId(ctx.request.runId) };
      version = await stage(ctx, name, () => store.write(principal, written, version, { signal }));
      state = written;
    };

    // 1. What earlier runs committed and could not deliver goes out first, oldest first.
    const deliveryErrors: StageError[] = [];
    // Marks deliveries. When a delivery failed too (a channel down, the deadline), that failure is the one to
    // report: the mark's own failure (often the same deadline) would hide which channel still owes the change.
    const markDelivered = async (next: Snapshot, name: string): Promise<void> => {
      try {
        await commit(next, name);
      } catch (error) {
        const [first] = deliveryErrors;
        if (first === undefined) throw error;
        ctx.logger.warn('could not mark the deliveries; the next run delivers them again', {
          principal,
          reason: describeError(error),
        });
        throw first;
      }
    };
    // Channels that failed in this run: they get nothing newer until a later run delivered the older change.
    const blocked = new Set<string>();
    if (!ctx.dryRun && state !== undefined && outbox.length > 0) {
      const delivery = await deliver(ctx, outbox, 'delivering changes of earlier runs', blocked);
      deliveryErrors.push(...delivery.errors);
      redelivered = delivery.delivered;
      if (delivery.changed) {
        await markDelivered({ ...state, pending: delivery.pending }, 'marking earlier changes delivered');
        outbox = delivery.pending;
      }
      // Out of time while delivering: nothing more can start, and the delivery is what the principal failed at
      // (not the next stage, refused for the same deadline).
      if (ctx.deadline.expired && deliveryErrors.length > 0) throw deliveryErrors[0];
    }

    // A principal this run reads but does not walk (another host's state; one gone from BigState that still owes a
    // change): what earlier runs owe was offered, so a channel that refused it fails the principal, as anywhere;
    // its state goes to the report as it is; a failure kept aside for it has ended.
    const leaveAlone = async (): Promise<PrincipalResult> => {
      if (deliveryErrors.length > 0) throw deliveryErrors[0];
      ctx.states.set(principal, state ?? null);
      if (!ctx.dryRun) await endSideFailure(ctx, principal, false);
      return leftAlone(principal, redelivered, outbox);
    };

    // A principal with a state that a complete listing did not list: gone from BigState, or a listing glitch?
    const directory = ctx.deps.directory;
    if (target.missing && state !== undefined && state.host !== null && state.host !== ctx.host) {
      // A state read from another BigState host (the stack repointed, staging to prod): this host not listing
      // it says nothing of whether it was removed there. It is left as it is: never a removal across hosts.
      ctx.logger.info('a state of another host, missing from this host: left alone', {
        principal,
        stateHost: state.host,
      });
      return await leaveAlone();
    }
    if (target.missing && directory !== undefined) {
      const found = await stage(ctx, 'checking whether the principal still exists', () =>
        directory.getPrincipal(principal, { deadline: ctx.deadline }),
      );
      if (found === undefined && state !== undefined && version !== undefined) {
        // Never retire a principal that still owes a change: archived, its outbox would never be delivered.
        // A channel that failed fails the principal (as anywhere); one that defers (the CLI's --json) shows the
        // change in this run's document, and a later run retires it once the outbox is empty.
        if (outbox.length > 0) {
          const left = await leaveAlone();
          ctx.logger.info('principal removed from BigState: retired once its owed changes are delivered', {
            principal,
            owed: outbox.length,
          });
          return left;
        }
        return await retire(ctx, { principal, state, version, redelivered });
      }
      if (found !== undefined) info = infoOf(found);
    }
    info ??= state?.info;

    // 2. A complete walk, compared with the committed inventory.
    const first = await stage(ctx, 'walking the keys', () => walk(ctx, principal, ctx.request.pattern));
    if (first.size === 0 && !target.listed && !target.missing && directory !== undefined) {
      // BigState may answer an unknown principal with an empty list: only its lookup tells them apart.
      const exists = await stage(ctx, 'checking that the principal exists', () =>
        directory.getPrincipal(principal, { deadline: ctx.deadline }),
      );
      if (exists === undefined)
        throw new StageError('checking that the principal exists', new PrincipalNotFoundError(principal));
      info ??= infoOf(exists);
    }
    const previous = state;
    const baseline = needsBaseline(previous, { pattern: ctx.pattern, host: ctx.host });
    let inventory: Inventory | readonly ApiKeyEntry[] = first;
    let added: string[] = [];
    let removed: string[] = [];
    let unconfirmed: readonly string[] = [];
    if (!baseline && previous !== undefined) {
      const walks: Inventory[] = [first];
      let candidates = removalCandidates(previous, first);
      if (candidates.length > SECOND_WALK_THRESHOLD) {
        const second = await stage(ctx, 'walking the keys again', () =>
          walk(ctx, principal, ctx.request.pattern),
        );
        walks.push(second);
        candidates = candidates.filter((name) => !second.has(name));
      }
      const exact =
        candidates.length === 0
          ? undefined
          : await stage(
              ctx,
              `confirming ${candidates.length} removal(s) with an exact query of each key`,
              () => checkExactly(ctx, principal, candidates),
            );
      ({ inventory, added, removed } = reconcile(previous, walks, exact));
      unconfirmed = exact?.unconfirmed ?? [];
    }
    const now = ctx.clock.now();
    const next = buildSnapshot(previous, inventory, {
      principal,
      pattern: ctx.pattern,
      host: ctx.host,
      runId: ctx.request.runId,
      now,
    });
    const newPrincipal =
      baseline &&
      target.listed &&
      !target.configured &&
      (previous === undefined || previous.awaitingBaseline === true);
    const record =
      baseline || added.length > 0 || removed.length > 0
        ? changeRecord(ctx, {
            principal,
            info,
            newPrincipal,
            previousVersion: version ?? null,
            baseline,
            names: next.keys.map((key) => key.name),
            added,
            removed,
            now,
          })
        : undefined;

    // Keys that crossed the key-age limit since they were last told: told once, in the outbox like a change.
    const ages = staleKeys(ctx, previous, next, baseline, now);
    const staleRecord =
      ages.newly.length === 0
        ? undefined
        : changeRecord(ctx, {
            principal,
            info,
            newPrincipal: false,
            previousVersion: version ?? null,
            baseline: false,
            kind: 'stale',
            names: next.keys.map((key) => key.name),
            added: [],
            removed: [],
            stale: ages.newly,
            now,
          });
    const fresh = [record, staleRecord].filter((entry): entry is ChangeRecord => entry !== undefined);
    // What the state keeps for the report and the notices besides the keys.
    const kept = {
      ...(info === undefined ? {} : { info }),
      series: [...(previous?.series ?? []), { at: now.toISOString(), count: next.keyCount }].slice(
        -SERIES_POINTS,
      ),
      recentRemovals: [
        ...removed.map((name) => ({ name, removedAt: now.toISOString() })),
        ...(previous?.recentRemovals ?? []).filter(
          (entry) => now.getTime() - Date.parse(entry.removedAt) < RECENT_REMOVALS_MS,
        ),
      ],
      ...(ages.reported.length > 0 ? { staleReported: ages.reported } : {}),
    };

    // A principal with nothing new writes nothing (one PUT per principal per run would be the audit's largest
    // cost at scale): its state is rewritten when it changed, or once a day to refresh its last-seen times.
    const unchanged =
      fresh.length === 0 &&
      previous !== undefined &&
      !ages.changed &&
      !worthWriting(previous, next, { info, now });
    if (!ctx.dryRun && !unchanged) {
      // 3. The inventory and its changes, committed together in one conditional write.
      const pending = [...outbox, ...fresh.map((entry) => ({ record: entry, deliveredTo: [] }))];
      await commit({ ...laterFields(previous), ...next, pending, ...kept }, 'storing the snapshot');
      outbox = pending;
      // 4. Then delivered, and marked delivered. Only the new changes: the older ones had their turn in step 1
      // (a channel is offered each change once per run, and one that failed there is blocked here too).
      if (fresh.length > 0) {
        const older = outbox.slice(0, outbox.length - fresh.length);
        const delivery = await deliver(
          ctx,
          fresh.map((entry) => ({ record: entry, deliveredTo: [] })),
          'publishing the change',
          blocked,
        );
        deliveryErrors.push(...delivery.errors);
        if (delivery.changed) {
          const marked = [...older, ...delivery.pending];
          await markDelivered(
            { ...laterFields(previous), ...next, pending: marked, ...kept },
            'marking the change delivered',
          );
          outbox = marked;
        }
      }
    }
    if (deliveryErrors.length > 0) throw deliveryErrors[0];
    // The commit dropped the failure; people who were told it are told it ended (best effort).
    const recovered = !ctx.dryRun && (await tellRecovered(ctx, principal, failedBefore));
    const sideRecovered = !ctx.dryRun && (await endSideFailure(ctx, principal, recovered));
    if (recovered || sideRecovered) ctx.failureNews.add(principal);
    ctx.states.set(principal, state ?? null);
    // The dashboard's key counts per principal come from this line (a dry run says so: the widget leaves it out).
    ctx.logger.info('principal audited', {
      principal,
      dryRun: ctx.dryRun,
      baseline,
      keyCount: next.keyCount,
      added: added.length,
      removed: removed.length,
      ...(record ? { changeId: record.changeId } : {}),
      ...(outbox.length > 0 ? { pending: outbox.length } : {}),
    });
    return {
      principal,
      status: 'ok',
      baseline,
      keyCount: next.keyCount,
      added,
      removed,
      ...(record ? { changeId: record.changeId } : {}),
      // A dry run writes nothing: there is no record to point at.
      ...(record && !ctx.dryRun ? { changeRecordLocation: record.changeRecordLocation } : {}),
      ...(newPrincipal ? { newPrincipal: true } : {}),
      ...(info === undefined ? {} : { info }),
      ...(unconfirmed.length > 0 ? { unconfirmedRemovals: unconfirmed } : {}),
      ...(staleRecord?.stale === undefined ? {} : { stale: staleRecord.stale }),
      redelivered,
      pending: outbox,
    };
  } catch (caught) {
    const failure = caught instanceof StageError ? caught : new StageError('auditing', caught);
    const reason = failure.message;
    const errorName = failure.errorName;
    ctx.logger.error('principal failed', { principal, reason, errorName });
    if (stateRead) ctx.states.set(principal, state ?? null);
    // A principal the time budget never reached is not told on its own: the run tells it once for all of them.
    const news =
      !ctx.dryRun &&
      failure.stage !== WAITING_TO_START &&
      (await recordFailure(ctx, {
        principal,
        failure,
        previous: failedBefore,
        known: stateRead ? { state, version } : undefined,
      }));
    if (news) ctx.failureNews.add(principal);
    return {
      principal,
      status: 'failed',
      reason,
      errorName,
      baseline: false,
      keyCount: null,
      added: [],
      removed: [],
      redelivered,
      pending: outbox,
    };
  }
}

/** Points of a principal's key-count series kept in its state (about a year at one point a day). */
const SERIES_POINTS = 400;
/** How long a removal stays in the state's recent removals (the report shows the last 30 days). */
const RECENT_REMOVALS_MS = 30 * 24 * 60 * 60 * 1000;

/** The keys past the key-age limit: all of them now, those newly past it, and whether that list changed. */
function staleKeys(
  ctx: RunContext,
  previous: Snapshot | undefined,
  next: Snapshot,
  baseline: boolean,
  now: Date,
): { readonly reported: string[]; readonly newly: StaleKey[]; readonly changed: boolean } {
  const max = ctx.request.maxKeyAgeDays;
  const before = baseline ? [] : (previous?.staleReported ?? []);
  if (max === undefined) return { reported: [], newly: [], changed: before.length > 0 };
  const told = new Set(before);
  const stale: StaleKey[] = [];
  for (const key of next.keys) {
    const age = ageOf(key, now);
    if (age.ageDays > max) stale.push({ name: key.name, ...age });
  }
  const reported = stale.map((key) => key.name);
  const newly = stale.filter((key) => !told.has(key.name));
  const changed = reported.length !== before.length || reported.some((name, i) => name !== before[i]);
  return { reported, newly, changed };
}

/** How old a state's last-seen times may grow before a run with no change rewrites it anyway. */
const REFRESH_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Whether a run that found no added or removed key must still rewrite the state (`previous`, as this run last
 * read or wrote it: its outbox already marked): a failure to clear, a state from before hosts were recorded, new
 * listing metadata, a key whose fields BigState changed (or a name a hand-edited state listed twice), or last-seen
 * times more than a day old. (A state awaiting its baseline gets one, which is always written.)
 */
function worthWriting(
  previous: Snapshot,
  next: Snapshot,
  context: { readonly info: PrincipalInfo | undefined; readonly now: Date },
): boolean {
  if (previous.failure !== undefined || previous.host === null) return true;
  if (context.info !== undefined && JSON.stringify(context.info) !== JSON.stringify(previous.info ?? null))
    return true;
  const written = Date.parse(previous.auditedAt);
  if (Number.isNaN(written) || context.now.getTime() - written >= REFRESH_AFTER_MS) return true;
  if (previous.keys.length !== next.keys.length) return true;
  for (let i = 0; i < next.keys.length; i += 1) {
    const before = previous.keys[i];
    const after = next.keys[i] as KeyRecord;
    if (before?.name !== after.name) return true;
    if (JSON.stringify(before.attributes ?? null) !== JSON.stringify(after.attributes ?? null)) return true;
  }
  return false;
}

/** One complete walk of a principal's keys, each name once. */
async function walk(
  ctx: RunContext,
  principal: string,
  pattern: string | undefined,
): Promise<Map<string, ApiKeyEntry>> {
  const inventory = new Map<string, ApiKeyEntry>();
  for await (const entry of ctx.deps.bigstate.listApiKeys(principal, { pattern, deadline: ctx.deadline })) {
    if (!inventory.has(entry.name)) inventory.set(entry.name, entry);
  }
  return inventory;
}

/**
 * Queries each removal candidate on its own (`pattern` = its name, or the narrowest pattern matching a name that
 * holds `*`), every page, and looks for the exact name: a walk can skip a key when the list shifts under an
 * offset-like cursor, an exact query cannot. Any failure (the deadline included) fails the whole principal: a
 * removal is never reported on a partial check.
 */
async function checkExactly(
  ctx: RunContext,
  principal: string,
  candidates: readonly string[],
): Promise<ExactChecks> {
  const limit = pLimit(ctx.request.checkConcurrency ?? 8);
  const found: ApiKeyEntry[] = [];
  const gone = new Set<string>();
  const unconfirmed: string[] = [];
  // If one check fails, the others stop starting new requests at once. The checks keep the run's time limit
  // (not only its signal): the client fails fast on a back-off that would outlast it.
  const failed = new AbortController();
  const signal = AbortSignal.any([ctx.deadline.signal, failed.signal]);
  const deadline =
    ctx.deadline.at === undefined ? Deadline.none({ signal }) : Deadline.at(ctx.deadline.at, { signal });
  try {
    // Settled, not raced: no check may still be under way when the principal's audit goes on (or returns).
    await Promise.allSettled(
      candidates.map((name) =>
        limit(async () => {
          if (failed.signal.aborted) return;
          try {
            const outcome = await checkOne(ctx, principal, name, deadline);
            if (outcome.kind === 'found') found.push(outcome.entry);
            else if (outcome.kind === 'gone') gone.add(name);
            else unconfirmed.push(name);
          } catch (error) {
            failed.abort(error);
          }
        }),
      ),
    );
  } finally {
    deadline.dispose();
  }
  // The first failure, not the aborts it caused in the other checks.
  if (failed.signal.aborted) throw failed.signal.reason;
  ctx.logger.debug('removals checked', { principal, candidates: candidates.length, found: found.length });
  if (unconfirmed.length > 0) {
    ctx.logger.warn('removals not confirmed: kept until an exact answer of one page says they are gone', {
      principal,
      keys: unconfirmed.length,
    });
  }
  return { found, gone, unconfirmed };
}

/** What one key's exact check found. */
type CheckOutcome =
  | { readonly kind: 'found'; readonly entry: ApiKeyEntry }
  | { readonly kind: 'gone' }
  | { readonly kind: 'unconfirmed' };

/**
 * Checks one key with its patterns, narrowest first (see `exactPatterns`), every page, for the exact name. An
 * answer of one page is the list at one moment: a name missing from it is gone. An answer of several pages can be
 * shifted by keys created or deleted while it is paged (offset cursors) just as a walk can: a name missing from
 * it proves nothing, and the next pattern is tried; when none answers in one page, the key is kept, unconfirmed.
 */
async function checkOne(
  ctx: RunContext,
  principal: string,
  name: string,
  deadline: Deadline,
): Promise<CheckOutcome> {
  for (const pattern of exactPatterns(name)) {
    ctx.deadline.throwIfExpired();
    let pages = 0;
    const onPage = () => {
      pages += 1;
    };
    for await (const entry of ctx.deps.bigstate.listApiKeys(principal, { pattern, deadline, onPage })) {
      if (entry.name === name) return { kind: 'found', entry };
    }
    if (pages <= 1) return { kind: 'gone' };
  }
  return { kind: 'unconfirmed' };
}

/** The outcome of delivering an outbox. */
interface Delivery {
  /** The outbox afterwards: entries some channel still owes. */
  readonly pending: PendingChange[];
  /** Whether anything was delivered (so the outbox must be written). */
  readonly changed: boolean;
  /** Changes every channel has now delivered. */
  readonly delivered: ChangeRecord[];
  readonly errors: StageError[];
}

/**
 * Delivers an outbox, oldest first: the change record into the history (the location the messages point at),
 * then the notice on every channel that still owes it. A channel that fails gets nothing newer in this run
 * (`blocked`, shared by every delivery of the principal's run), so no channel ever tells a later change before an
 * earlier one. Never throws: failures come back in `errors`.
 */
async function deliver(
  ctx: RunContext,
  outbox: readonly PendingChange[],
  name: string,
  blocked: Set<string>,
): Promise<Delivery> {
  const { store, channels } = ctx.deps;
  const signal = ctx.deadline.signal;
  const pending: PendingChange[] = [];
  const delivered: ChangeRecord[] = [];
  const errors: StageError[] = [];
  let changed = false;
  for (const entry of outbox) {
    const owed = channels.filter((channel) => !entry.deliveredTo.includes(channel.name));
    const open = owed.filter((channel) => !blocked.has(channel.name));
    if (owed.length === 0) {
      changed = true;
      continue;
    }
    if (open.length === 0 || ctx.deadline.expired) {
      if (ctx.deadline.expired && errors.length === 0) {
        errors.push(new StageError(name, ctx.deadline.signal.reason));
      }
      pending.push(entry);
      continue;
    }
    try {
      await stage(ctx, name, async () => {
        await store.writeChangeRecord(entry.record, { signal });
        // The record may have taken the last of the time: no notice starts after the deadline.
        ctx.deadline.throwIfExpired();
      });
    } catch (error) {
      errors.push(error as StageError);
      for (const channel of channels) blocked.add(channel.name);
      pending.push(entry);
      continue;
    }
    const notice: Notice = { kind: entry.record.kind, record: entry.record };
    const deliveredTo = [...entry.deliveredTo];
    for (const answer of await offer(open, notice, signal)) {
      if (answer.refused !== undefined) {
        blocked.add(answer.channel.name);
        errors.push(new StageError(name, answer.refused.reason));
      } else if (!answer.deferred) {
        deliveredTo.push(answer.channel.name);
      }
    }
    if (deliveredTo.length > entry.deliveredTo.length) changed = true;
    if (channels.every((channel) => deliveredTo.includes(channel.name))) {
      delivered.push(entry.record);
      ctx.logger.info('change delivered', {
        principal: entry.record.principal,
        changeId: entry.record.changeId,
      });
    } else {
      pending.push({ record: entry.record, deliveredTo });
    }
  }
  return { pending, changed, delivered, errors };
}

/** A principal to retire: its state as read (and its outbox delivered). */
/** The result of a principal this run did not walk: left alone (see where it is returned), or retired. */
function leftAlone(
  principal: string,
  redelivered: ChangeRecord[],
  pending: readonly PendingChange[],
): PrincipalResult {
  return {
    principal,
    status: 'ok',
    baseline: false,
    keyCount: null,
    added: [],
    removed: [],
    redelivered,
    pending,
  };
}

interface Retirement {
  readonly principal: string;
  readonly state: Snapshot;
  readonly version: string;
  readonly redelivered: ChangeRecord[];
}

/**
 * A principal missing from a complete listing that BigState says does not exist (404): one `principal-removed`
 * notice listing the keys it had (no per-key removal), on every channel, then its state archived (a conditional
 * copy, then a conditional delete; the history stays). The notice goes first: were the archive to fail, the next
 * run finds the principal missing again and tells it again (same removal id), where the other order could lose
 * it. A dry run only reports it.
 */
async function retire(ctx: RunContext, retirement: Retirement): Promise<PrincipalResult> {
  const { principal, state, version, redelivered } = retirement;
  // The same removal whatever was written since (a failure record moves the version): named by the inventory.
  const removalId = `prm-${createHash('sha256')
    .update(JSON.stringify([principal, state.runId, state.auditedAt]))
    .digest('hex')
    .slice(0, 32)}`;
  const notice: PrincipalRemovedNotice = {
    kind: 'principal-removed',
    removalId,
    runId: ctx.request.runId,
    principal,
    ...(state.info === undefined ? {} : { info: state.info }),
    keys: state.awaitingBaseline === true ? [] : state.keys.map((key) => key.name),
    detectedAt: ctx.clock.now().toISOString(),
    archiveLocation: ctx.deps.store.archiveLocation(principal, removalId),
  };
  // A channel that defers (the CLI's --json document) has not shown the removal yet: the state stays until the
  // caller acknowledges it ({@link acknowledgeRemoval}), so a run killed before printing tells it again.
  let deferred = false;
  if (!ctx.dryRun) {
    const signal = ctx.deadline.signal;
    await stage(ctx, 'publishing the principal removal', async () => {
      const answers = await offer(ctx.deps.channels, notice, signal);
      const refused = answers.find((answer) => answer.refused !== undefined)?.refused;
      if (refused !== undefined) throw refused.reason;
      deferred = answers.some((answer) => answer.deferred);
    });
    if (!deferred) {
      await stage(ctx, 'archiving the state', () =>
        ctx.deps.store.archive(principal, version, removalId, { signal }),
      );
    }
    // A failure kept aside while its state could not be read ends here, untold: the removal says more. Also when a
    // deferring channel keeps the state until it is acknowledged, or it would outlive the principal.
    await endSideFailure(ctx, principal, true);
  }
  ctx.logger.info('principal removed', {
    principal,
    dryRun: ctx.dryRun,
    keyCount: notice.keys.length,
    removalId,
  });
  return {
    // Retired only with nothing owed (see auditPrincipal): no pending change.
    ...leftAlone(principal, redelivered, []),
    principalRemoved: notice,
    ...(deferred ? { removalAwaitingAcknowledgement: { version } } : {}),
    ...(state.info === undefined ? {} : { info: state.info }),
  };
}

/**
 * Archives the state of a removed principal once a deferring channel has shown its removal (the CLI's --json
 * document, once printed). Until then the state stays, and the next run tells the removal again (same id).
 * @throws StorageError, ConcurrentWriteError.
 */
export async function acknowledgeRemoval(
  store: SnapshotStore,
  result: PrincipalResult,
  options: { readonly deadline?: Deadline | undefined } = {},
): Promise<void> {
  const removal = result.principalRemoved;
  const awaiting = result.removalAwaitingAcknowledgement;
  if (removal === undefined || awaiting === undefined) return;
  await store.archive(result.principal, awaiting.version, removal.removalId, {
    signal: options.deadline?.signal,
  });
}

/** What a change record is made of. */
interface ChangeInput {
  /** @default baseline ? 'baseline' : 'changed' */
  readonly kind?: ChangeRecord['kind'];
  /** For `stale`: the keys past the limit. */
  readonly stale?: readonly StaleKey[];
  readonly principal: string;
  readonly info: PrincipalInfo | undefined;
  readonly newPrincipal: boolean;
  readonly previousVersion: string | null;
  readonly baseline: boolean;
  /** Every name of the new inventory. */
  readonly names: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly now: Date;
}

function changeRecord(ctx: RunContext, input: ChangeInput): ChangeRecord {
  const kind = input.kind ?? (input.baseline ? 'baseline' : 'changed');
  const id = changeId({
    principal: input.principal,
    // A first baseline follows no state: the run names it, so a baseline after a reset (the state deleted by
    // hand) never repeats the id of the first one, which subscribers would drop as a duplicate.
    previousVersion: input.previousVersion ?? `none:${ctx.request.runId}`,
    kind,
    pattern: ctx.pattern,
    added: input.baseline
      ? input.names
      : input.kind === 'stale'
        ? (input.stale ?? []).map((key) => key.name)
        : input.added,
    removed: input.removed,
  });
  return {
    schemaVersion: 1,
    changeId: id,
    runId: ctx.request.runId,
    principal: input.principal,
    kind,
    pattern: ctx.pattern,
    detectedAt: input.now.toISOString(),
    previousSnapshotVersion: input.previousVersion,
    added: input.added,
    removed: input.removed,
    counts: { added: input.added.length, removed: input.removed.length, total: input.names.length },
    snapshotLocation: ctx.deps.store.snapshotLocation(input.principal),
    changeRecordLocation: ctx.deps.store.changeRecordLocation(input.principal, id),
    ...(input.newPrincipal ? { newPrincipal: true } : {}),
    ...(ctx.deps.store.reportLocation === undefined
      ? {}
      : { reportLocation: ctx.deps.store.reportLocation() }),
    ...(input.kind === 'stale' ? { stale: input.stale ?? [], maxKeyAgeDays: ctx.request.maxKeyAgeDays } : {}),
    ...(input.info === undefined ? {} : { info: input.info }),
  };
}

/** A principal's failure and what the run knows of its state. */
interface FailureRecord {
  readonly principal: string;
  readonly failure: StageError;
  /** The failure as the run found it in the state (compared with this one). */
  readonly previous: FailureState | undefined;
  /** The state as last read or written; `undefined` when it could not be read (then it is not written). */
  readonly known: { readonly state: Snapshot | undefined; readonly version: string | undefined } | undefined;
}

/**
 * Publishes a principal's failure when it is news (it starts, its reason changes, or a day has passed since
 * people were told) and records it in the principal's state, so a cold start does not forget it. A state that
 * could not be read (corrupt, access denied, a newer schema) is not written: the failure is kept aside instead
 * (`failures/<principal>.json`), under the same rules; only when that record cannot be read either is the failure
 * told on every run. A principal with no state yet gets one that holds only the failure (`awaitingBaseline`). The
 * records are written with the notices, until the hard stop.
 */
async function recordFailure(ctx: RunContext, record: FailureRecord): Promise<boolean> {
  const { principal, failure, known } = record;
  const now = ctx.clock.now();
  // Kept aside by earlier runs: the only record of an unreadable state's failure, and a readable state's
  // predecessor (whether people were told, so that its recovery is told).
  const side = await readSideFailure(ctx, principal, known === undefined);
  const decision = decideFailure(
    latestFailure(record.previous, side?.found?.record?.failure),
    {
      stage: failure.stage,
      errorName: failure.errorName,
      status: statusOf(failure.error),
      reason: failure.message,
    },
    now,
    ctx.request.runId,
  );
  // Nothing durable to ration by: the state and the record kept aside both unreadable.
  const unrecorded = known === undefined && side === undefined;
  const news = decision.notify || unrecorded;
  let kept = decision.state;
  if (news) {
    const told = await publishNotice(ctx, {
      kind: 'failed',
      runId: ctx.request.runId,
      principal,
      reason: failure.message,
      errorName: decision.state.errorName,
      detectedAt: now.toISOString(),
      failingSince: decision.state.since,
    });
    if (told) kept = notified(kept, now);
  } else {
    ctx.logger.info('failure already told; not published again', {
      principal,
      since: decision.state.since,
      lastNotifiedAt: decision.state.lastNotifiedAt,
    });
  }
  if (unrecorded || ctx.hardStop.expired) return news;
  const signal = ctx.hardStop.signalWithin(NOTICE_TIMEOUT_MS);
  if (known === undefined) {
    await bestEffort(ctx, principal, 'could not keep the failure aside; the next run may tell it again', () =>
      ctx.deps.store.writeSideFailure(
        principal,
        { schemaVersion: 1, principal, writeId: writeId(ctx.request.runId), failure: kept },
        side?.found?.version,
        { signal },
      ),
    );
    return news;
  }
  const base: Snapshot = known.state ?? {
    schemaVersion: 2,
    principal,
    host: ctx.host,
    pattern: ctx.pattern,
    auditedAt: now.toISOString(),
    runId: ctx.request.runId,
    writeId: '',
    keyCount: 0,
    keys: [],
    pending: [],
    awaitingBaseline: true,
  };
  const recorded = await bestEffort(
    ctx,
    principal,
    'could not record the failure; the next run may tell it again',
    () =>
      ctx.deps.store.write(
        principal,
        { ...base, failure: kept, writeId: writeId(ctx.request.runId) },
        known.version,
        { signal },
      ),
  );
  // The state holds the failure now: the one kept aside has served.
  if (recorded && side?.found !== undefined) await deleteSideFailure(ctx, principal, side.found.version);
  return news;
}

/** Runs one write of the failure records: whether it succeeded; a failure of it is logged as `warning`. */
async function bestEffort(
  ctx: RunContext,
  principal: string,
  warning: string,
  work: () => Promise<unknown>,
): Promise<boolean> {
  try {
    await work();
    return true;
  } catch (error) {
    ctx.logger.warn(warning, { principal, reason: describeError(error) });
    return false;
  }
}

/** Lists the principals with a side failure, once before the principals of a run or batch that writes. */
async function listSideFailures(ctx: RunContext): Promise<void> {
  if (ctx.dryRun) return;
  try {
    ctx.sideFailures = await ctx.deps.store.sideFailureSegments({ signal: ctx.deadline.signal });
  } catch (error) {
    ctx.logger.warn('could not list the failures kept aside: recoveries from them wait for a later run', {
      reason: describeError(error),
    });
  }
}

/**
 * A principal's side failure: `{ found }` (`found` undefined when it has none), or `undefined` when it could not
 * be read. Read only when the run's listing names the principal; when the listing failed, only if `mustKnow`
 * (an unreadable state, whose rationing depends on it), and otherwise taken as none.
 */
async function readSideFailure(
  ctx: RunContext,
  principal: string,
  mustKnow: boolean,
): Promise<{ readonly found: StoredSideFailure | undefined } | undefined> {
  const listed = ctx.sideFailures;
  if (listed === undefined ? !mustKnow : !listed.has(principalSegment(principal)))
    return { found: undefined };
  if (ctx.hardStop.expired) return undefined;
  try {
    const found = await ctx.deps.store.readSideFailure(principal, {
      signal: ctx.hardStop.signalWithin(NOTICE_TIMEOUT_MS),
    });
    if (found?.unreadable !== undefined) {
      // Corrupt, or a newer release's: it says nothing of what was told, and is replaced (or deleted) at its version.
      ctx.logger.warn('the failure kept aside is not one this version reads: it is replaced', {
        principal,
        reason: found.unreadable,
      });
    }
    return { found };
  } catch (error) {
    ctx.logger.warn('could not read the failure kept aside', { principal, reason: describeError(error) });
    return undefined;
  }
}

/** Deletes a side failure that has served; whether it is gone (best effort: the next run tries again). */
async function deleteSideFailure(ctx: RunContext, principal: string, version: string): Promise<boolean> {
  if (ctx.hardStop.expired) return false;
  return bestEffort(ctx, principal, 'could not delete the failure kept aside', () =>
    ctx.deps.store.deleteSideFailure(principal, version, {
      signal: ctx.hardStop.signalWithin(NOTICE_TIMEOUT_MS),
    }),
  );
}

/**
 * A principal whose state was read and that is done: a failure kept aside for it (its state could not be read) has
 * ended. It is deleted first, and only then are people told of it told it ended (unless `toldAlready`: the state's
 * own failure was told ended): at most once, as the state's own recovery (its commit comes before the notice).
 */
async function endSideFailure(ctx: RunContext, principal: string, toldAlready: boolean): Promise<boolean> {
  const found = (await readSideFailure(ctx, principal, false))?.found;
  if (found === undefined) return false;
  if (!(await deleteSideFailure(ctx, principal, found.version))) return false;
  return !toldAlready && (await tellRecovered(ctx, principal, found.record?.failure));
}

/** Tells that a failure ended (`principal` null: the run's own), when people were told of it; whether it was news. */
async function tellRecovered(
  ctx: RunContext,
  principal: string | null,
  failure: FailureState | undefined,
): Promise<boolean> {
  if (!recoveryIsNews(failure)) return false;
  await publishNotice(ctx, {
    kind: 'recovered',
    runId: ctx.request.runId,
    principal,
    detectedAt: ctx.clock.now().toISOString(),
    failingSince: failure.since,
  });
  return true;
}

/**
 * Best effort, on every channel: a broken channel must not hide the failure that made the notice, and the run
 * fails anyway. Notices may go out after the work deadline, until the hard stop, each with a short timeout.
 * Resolves to whether some channel took the notice: once people or machines were told, a channel that stays down
 * must not turn the failure into a notice every run on the others (it fails on its own, loudly).
 */
async function publishNotice(ctx: RunContext, notice: FailureNotice | RecoveredNotice): Promise<boolean> {
  if (ctx.hardStop.expired) {
    ctx.logger.error(`no time left to publish the ${notice.kind} notice`, { principal: notice.principal });
    return false;
  }
  const signal = ctx.hardStop.signalWithin(NOTICE_TIMEOUT_MS);
  let some = false;
  for (const answer of await offer(ctx.deps.channels, notice, signal)) {
    if (answer.refused === undefined) some = true;
    else {
      ctx.logger.error(`could not publish the ${notice.kind} notice`, {
        principal: notice.principal,
        reason: describeError(answer.refused.reason),
      });
    }
  }
  return some;
}

/** What a channel did with a notice {@link offer}ed to it. */
interface Answer {
  readonly channel: NoticeChannel;
  /** Took it for later delivery (the CLI's --json document). */
  readonly deferred: boolean;
  /** Refused it, and why (`reason` as thrown). */
  readonly refused?: { readonly reason: unknown } | undefined;
}

/** Offers a notice to every channel at once and waits for each (settled, never raced): what each did. */
async function offer(
  channels: readonly NoticeChannel[],
  notice: Notice,
  signal: AbortSignal,
): Promise<Answer[]> {
  const outcomes = await Promise.allSettled(channels.map((channel) => channel.publish(notice, { signal })));
  return outcomes.map((outcome, i) => ({
    channel: channels[i] as NoticeChannel,
    deferred: outcome.status === 'fulfilled' && outcome.value === 'deferred',
    ...(outcome.status === 'rejected' ? { refused: { reason: outcome.reason } } : {}),
  }));
}

/** Throws AuditRunFailedError when a principal failed: what makes the invocation (or the CLI) fail loudly. */
export function assertAuditSucceeded(summary: {
  readonly runId: string;
  /** A run's results, or a fanned-out run's rows (their reason `null` when none). */
  readonly principals: ReadonlyArray<{
    readonly principal: string;
    readonly status: 'ok' | 'failed';
    readonly reason?: string | null | undefined;
  }>;
  readonly runFailure?: { readonly reason: string } | null | undefined;
}): void {
  const failures = summary.principals
    .filter((result) => result.status === 'failed')
    .map((result) => ({ principal: result.principal, reason: result.reason ?? 'unknown' }));
  const runFailure = summary.runFailure?.reason;
  if (failures.length > 0 || runFailure !== undefined) {
    throw new AuditRunFailedError(summary.runId, failures, summary.principals.length, runFailure);
  }
}

/** What {@link acknowledgeDelivery} marks. */
export interface Acknowledgement {
  readonly principal: string;
  /** The channel that has now delivered the changes (it deferred them during the run). */
  readonly channel: string;
  /** Every channel of the deployment: a change leaves the outbox once all of them delivered it. */
  readonly channels: readonly string[];
  readonly changeIds: readonly string[];
  readonly runId: string;
  readonly deadline?: Deadline | undefined;
}

/**
 * Marks changes as delivered by a channel that deferred them (the CLI's `--json` document, once printed): one
 * conditional write of the principal's state. Until it succeeds the changes stay in the outbox, and the next
 * run delivers them again.
 * @throws StorageError, ConcurrentWriteError.
 */
export async function acknowledgeDelivery(store: SnapshotStore, ack: Acknowledgement): Promise<void> {
  const signal = ack.deadline?.signal;
  const stored: StoredSnapshot | undefined = await store.read(ack.principal, { signal });
  if (stored === undefined) return;
  const ids = new Set(ack.changeIds);
  let changed = false;
  const pending: PendingChange[] = [];
  for (const entry of stored.snapshot.pending) {
    const deliveredTo =
      ids.has(entry.record.changeId) && !entry.deliveredTo.includes(ack.channel)
        ? [...entry.deliveredTo, ack.channel]
        : entry.deliveredTo;
    if (deliveredTo !== entry.deliveredTo) changed = true;
    if (!ack.channels.every((channel) => deliveredTo.includes(channel))) {
      pending.push({ record: entry.record, deliveredTo });
    }
  }
  if (!changed) return;
  const next = { ...stored.snapshot, pending, writeId: writeId(ack.runId) };
  await store.write(ack.principal, next, stored.version, { signal });
}
