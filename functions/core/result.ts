/**
 * The JSON an invocation (or `--json`) returns: the run id and, per principal, status, counts and names.
 */
import type { AuditSummary } from './audit.js';

/** One principal in the result. */
export interface PrincipalOutcome {
  readonly principal: string;
  readonly status: 'ok' | 'failed';
  readonly reason?: string;
  readonly baseline: boolean;
  readonly keyCount: number | null;
  readonly added: number;
  readonly removed: number;
  readonly changeId?: string;
  readonly changeRecordLocation?: string;
  readonly addedKeys: readonly string[];
  readonly removedKeys: readonly string[];
  /** True when `addedKeys` or `removedKeys` were cut to the limit; the change record has every name. */
  readonly keysTruncated: boolean;
  /** Changes of earlier runs this run delivered (their first delivery failed or was cut short). */
  readonly redeliveredChangeIds: readonly string[];
  /** Changes committed and not yet delivered on every channel: the next run delivers them. */
  readonly pendingChangeIds: readonly string[];
  /** A baseline of a principal that discovery found for the first time. */
  readonly newPrincipal: boolean;
  /** The principal no longer exists in BigState: told as removed (with the keys it had), its state archived. */
  readonly principalRemoved: boolean;
}

/** The result of one run. */
export interface AuditResult {
  readonly runId: string;
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** Why the run itself failed beyond its principals (a principal listing that broke off); `null` when it did not. */
  readonly runFailure: { readonly reason: string; readonly errorName: string } | null;
  /** Set when the run did no audit at all, and why (another run holds the lease). */
  readonly skipped?: string;
  readonly principals: readonly PrincipalOutcome[];
}

/** The result of a summary, with at most `maxNames` names per list (Lambda responses are limited to 6 MB). */
export function toAuditResult(summary: AuditSummary, maxNames = Number.POSITIVE_INFINITY): AuditResult {
  return {
    runId: summary.runId,
    ok: summary.ok,
    dryRun: summary.dryRun,
    startedAt: summary.startedAt,
    finishedAt: summary.finishedAt,
    durationMs: summary.durationMs,
    runFailure: summary.runFailure ?? null,
    principals: summary.principals.map((result) => ({
      principal: result.principal,
      status: result.status,
      ...(result.reason === undefined ? {} : { reason: result.reason }),
      baseline: result.baseline,
      keyCount: result.keyCount,
      added: result.added.length,
      removed: result.removed.length,
      ...(result.changeId === undefined ? {} : { changeId: result.changeId }),
      ...(result.changeRecordLocation === undefined
        ? {}
        : { changeRecordLocation: result.changeRecordLocation }),
      addedKeys: result.added.slice(0, maxNames),
      removedKeys: result.removed.slice(0, maxNames),
      keysTruncated: result.added.length > maxNames || result.removed.length > maxNames,
      redeliveredChangeIds: result.redelivered.map((record) => record.changeId),
      pendingChangeIds: result.pending.map((entry) => entry.record.changeId),
      newPrincipal: result.newPrincipal === true,
      principalRemoved: result.principalRemoved !== undefined,
    })),
  };
}
