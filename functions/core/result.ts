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
}

/** The result of one run. */
export interface AuditResult {
  readonly runId: string;
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
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
    })),
  };
}
