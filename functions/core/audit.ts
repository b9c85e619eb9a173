/**
 * One audit run: for each principal, a complete walk of its keys, a diff against its last snapshot, the
 * change recorded, published and only then the snapshot advanced. Knows nothing of Lambda or AWS: the
 * Lambda handler and the CLI wire it to their adapters.
 */
import pLimit from 'p-limit';
import type { ApiKeyEntry, ApiKeyLister } from '../bigstate/types.js';
import { AuditRunFailedError, describeError, TimeBudgetError } from '../commons/errors.js';
import { buildSnapshot, changeId, type Inventory, reconcile, removalCandidates } from './diff.js';
import type {
  AuditLogger,
  ChangePublisher,
  ChangeRecord,
  Clock,
  FailureNotice,
  SnapshotStore,
  StoredSnapshot,
} from './ports.js';

/** What a run talks to. */
export interface AuditDeps {
  readonly bigstate: ApiKeyLister;
  readonly store: SnapshotStore;
  readonly publisher: ChangePublisher;
  /** @default the system clock */
  readonly clock?: Clock;
  /** @default silent */
  readonly logger?: AuditLogger;
}

/** What to audit, and how. */
export interface AuditRequest {
  readonly runId: string;
  /** The principals to audit; duplicates are audited once. */
  readonly principals: readonly string[];
  /** Glob passed to BigState; `undefined` = all keys. */
  readonly pattern?: string | undefined;
  /** Walk and diff only: nothing is written or published. @default false */
  readonly dryRun?: boolean | undefined;
  /** The time budget for BigState: once aborted, walks stop and principals not yet audited fail. */
  readonly signal?: AbortSignal | undefined;
  /**
   * When the time budget ends (epoch ms), alongside `signal`: lets the client refuse a back-off wait that
   * would outlast it instead of sleeping into the abort.
   */
  readonly deadline?: number | undefined;
  /** Principals audited at once. @default 4 */
  readonly concurrency?: number | undefined;
}

/** The outcome for one principal. */
export interface PrincipalResult {
  readonly principal: string;
  readonly status: 'ok' | 'failed';
  /** Why it failed (never a secret). */
  readonly reason?: string;
  readonly errorName?: string;
  /** The first snapshot of this principal (or the first after the pattern changed). */
  readonly baseline: boolean;
  /** Keys after this run; `null` when the principal failed. */
  readonly keyCount: number | null;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Set when the run recorded a baseline or a change. */
  readonly changeId?: string;
  readonly changeRecordLocation?: string;
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
  /** True when every principal was audited. */
  readonly ok: boolean;
}

const systemClock: Clock = { now: () => new Date() };
const silent: AuditLogger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * Runs one audit. Never throws for a principal's failure: that principal keeps its snapshot, a failure
 * notice is published (unless dry), the others go on, and the summary says `ok: false`; the caller then
 * fails the invocation ({@link assertAuditSucceeded}).
 */
export async function runAudit(deps: AuditDeps, request: AuditRequest): Promise<AuditSummary> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? silent;
  const principals = [...new Set(request.principals)];
  const started = clock.now();
  const limit = pLimit(request.concurrency ?? 4);
  logger.info('audit started', { principals: principals.length, dryRun: request.dryRun === true });
  const results = await Promise.all(
    principals.map((principal) =>
      limit(() => auditPrincipal({ ...deps, clock, logger }, request, principal)),
    ),
  );
  const finished = clock.now();
  const summary: AuditSummary = {
    runId: request.runId,
    dryRun: request.dryRun === true,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    principals: results,
    ok: results.every((result) => result.status === 'ok'),
  };
  logger.info('audit finished', {
    ok: summary.ok,
    failed: results.filter((result) => result.status === 'failed').length,
    durationMs: summary.durationMs,
  });
  return summary;
}

type Resolved = Required<Pick<AuditDeps, 'clock' | 'logger'>> & AuditDeps;

async function auditPrincipal(
  deps: Resolved,
  request: AuditRequest,
  principal: string,
): Promise<PrincipalResult> {
  const { bigstate, store, publisher, clock, logger } = deps;
  const pattern = request.pattern ?? null;
  const dryRun = request.dryRun === true;
  // Each stage names itself in the failure reason, so an operator knows what broke without the logs.
  let stage = 'reading the snapshot';
  try {
    if (request.signal?.aborted) {
      throw new TimeBudgetError('the time budget was spent before this principal was audited');
    }
    const stored = await store.read(principal);
    stage = 'walking the keys';
    const first = await walk(bigstate, principal, request);
    const baseline = stored === undefined || stored.snapshot.pattern !== pattern;
    let inventory: Inventory | readonly ApiKeyEntry[] = first;
    let added: string[] = [];
    let removed: string[] = [];
    if (!baseline) {
      const previous = stored.snapshot;
      const candidates = removalCandidates(previous, first);
      let second: Inventory | undefined;
      if (candidates.length > 0) {
        stage = 'confirming removals with a second walk';
        logger.debug('confirming removals', { principal, candidates: candidates.length });
        second = await walk(bigstate, principal, request);
      }
      ({ inventory, added, removed } = reconcile(previous, first, second));
    }
    const now = clock.now();
    const next = buildSnapshot(stored?.snapshot, inventory, {
      principal,
      pattern,
      runId: request.runId,
      now,
    });
    const record =
      baseline || added.length > 0 || removed.length > 0
        ? changeRecord(
            store,
            request,
            principal,
            stored,
            baseline,
            next.keys.map((key) => key.name),
            added,
            removed,
            now,
          )
        : undefined;
    if (!dryRun) {
      if (record) {
        // The record first, so the location the messages point at exists; then the notice; and only once
        // both are done does the snapshot advance. A failure anywhere leaves the old snapshot, so the next
        // run finds the same change again, with the same id.
        stage = 'storing the change record';
        await store.writeChangeRecord(record);
        stage = 'publishing the change';
        await publisher.publish({ kind: record.kind, record });
      }
      stage = 'storing the snapshot';
      await store.write(principal, next, stored?.version);
    }
    logger.info('principal audited', {
      principal,
      baseline,
      keyCount: next.keyCount,
      added: added.length,
      removed: removed.length,
      ...(record ? { changeId: record.changeId } : {}),
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
      ...(record && !dryRun ? { changeRecordLocation: record.changeRecordLocation } : {}),
    };
  } catch (error) {
    const reason = `${stage}: ${describeError(error)}`;
    const errorName = error instanceof Error ? error.name : 'Error';
    logger.error('principal failed', { principal, reason, errorName });
    if (!dryRun)
      await publishFailure(deps, {
        kind: 'failed',
        runId: request.runId,
        principal,
        reason,
        errorName,
        detectedAt: clock.now().toISOString(),
      });
    return {
      principal,
      status: 'failed',
      reason,
      errorName,
      baseline: false,
      keyCount: null,
      added: [],
      removed: [],
    };
  }
}

/** One complete walk of a principal's keys, each name once. */
async function walk(
  bigstate: ApiKeyLister,
  principal: string,
  request: AuditRequest,
): Promise<Map<string, ApiKeyEntry>> {
  const inventory = new Map<string, ApiKeyEntry>();
  for await (const entry of bigstate.listApiKeys(principal, {
    pattern: request.pattern,
    signal: request.signal,
    deadline: request.deadline,
  })) {
    if (!inventory.has(entry.name)) inventory.set(entry.name, entry);
  }
  return inventory;
}

function changeRecord(
  store: SnapshotStore,
  request: AuditRequest,
  principal: string,
  stored: StoredSnapshot | undefined,
  baseline: boolean,
  names: readonly string[],
  added: readonly string[],
  removed: readonly string[],
  now: Date,
): ChangeRecord {
  const kind = baseline ? 'baseline' : 'changed';
  const previousSnapshotVersion = stored?.version ?? null;
  const pattern = request.pattern ?? null;
  const id = changeId({
    principal,
    previousVersion: previousSnapshotVersion,
    kind,
    pattern,
    added: baseline ? names : added,
    removed,
  });
  return {
    schemaVersion: 1,
    changeId: id,
    runId: request.runId,
    principal,
    kind,
    pattern,
    detectedAt: now.toISOString(),
    previousSnapshotVersion,
    added,
    removed,
    counts: { added: added.length, removed: removed.length, total: names.length },
    snapshotLocation: store.snapshotLocation(principal),
    changeRecordLocation: store.changeRecordLocation(principal, id),
  };
}

/** Best effort: the run fails anyway, and a broken channel must not hide the original failure. */
async function publishFailure(deps: Resolved, notice: FailureNotice): Promise<void> {
  try {
    await deps.publisher.publish(notice);
  } catch (error) {
    deps.logger.error('could not publish the failure notice', {
      principal: notice.principal,
      reason: describeError(error),
    });
  }
}

/** Throws AuditRunFailedError when a principal failed: what makes the invocation (or the CLI) fail loudly. */
export function assertAuditSucceeded(summary: AuditSummary): void {
  const failures = summary.principals
    .filter((result) => result.status === 'failed')
    .map((result) => ({ principal: result.principal, reason: result.reason ?? 'unknown' }));
  if (failures.length > 0) throw new AuditRunFailedError(summary.runId, failures, summary.principals.length);
}
