/**
 * The one JSON document `npm run audit -- --json` prints, for scripts. Every field is always present (`null`
 * when it does not apply) and names are carried exactly (never escaped): the README has its field table.
 * Built field by field, not spread from the core's types, so the shape changes only with
 * {@link JSON_SCHEMA_VERSION}.
 */
import type { AuditSummary, PrincipalResult } from '../core/audit.js';
import type { ChangeRecord } from '../core/ports.js';

/** The version of the document's shape: 2 added `errorName`, `host`, `pattern`, `stateDir` and the `null`s. */
export const JSON_SCHEMA_VERSION = 2;

/** One principal of the run. */
export interface JsonPrincipal {
  readonly principal: string;
  readonly status: 'ok' | 'failed';
  readonly reason: string | null;
  readonly errorName: string | null;
  readonly baseline: boolean;
  readonly keyCount: number | null;
  readonly added: number;
  readonly removed: number;
  readonly addedKeys: readonly string[];
  readonly removedKeys: readonly string[];
  readonly keysTruncated: boolean;
  readonly changeId: string | null;
  readonly changeRecordLocation: string | null;
  readonly redeliveredChangeIds: readonly string[];
  readonly pendingChangeIds: readonly string[];
}

/** One change record the document delivers (prints): the record as the history keeps it. */
export interface JsonChange {
  /** The change record's own schema (as in the history files), not the document's. */
  readonly schemaVersion: number;
  readonly changeId: string;
  readonly runId: string;
  readonly principal: string;
  readonly kind: 'baseline' | 'changed';
  readonly pattern: string | null;
  readonly detectedAt: string;
  readonly previousSnapshotVersion: string | null;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly counts: { readonly added: number; readonly removed: number; readonly total: number };
  readonly snapshotLocation: string;
  readonly changeRecordLocation: string;
}

/** The document. */
export interface JsonDocument {
  readonly schemaVersion: typeof JSON_SCHEMA_VERSION;
  readonly runId: string;
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly host: string;
  readonly pattern: string | null;
  readonly stateDir: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly principals: readonly JsonPrincipal[];
  readonly changes: readonly JsonChange[];
}

/** What the document says beyond the summary. */
export interface JsonContext {
  readonly host: string;
  readonly pattern: string | undefined;
  /** The state folder, absolute. */
  readonly stateDir: string;
  /** The changes this document delivers: empty for a dry run. */
  readonly changes: readonly ChangeRecord[];
}

/** The `--json` document of a run. */
export function toJsonDocument(summary: AuditSummary, context: JsonContext): JsonDocument {
  return {
    schemaVersion: JSON_SCHEMA_VERSION,
    runId: summary.runId,
    ok: summary.ok,
    dryRun: summary.dryRun,
    host: context.host,
    pattern: context.pattern ?? null,
    stateDir: context.stateDir,
    startedAt: summary.startedAt,
    finishedAt: summary.finishedAt,
    durationMs: summary.durationMs,
    principals: summary.principals.map(toJsonPrincipal),
    changes: context.changes.map(toJsonChange),
  };
}

function toJsonPrincipal(result: PrincipalResult): JsonPrincipal {
  const failed = result.status === 'failed';
  return {
    principal: result.principal,
    status: result.status,
    reason: failed ? (result.reason ?? 'unknown') : null,
    errorName: failed ? (result.errorName ?? 'Error') : null,
    baseline: result.baseline,
    keyCount: result.keyCount,
    added: result.added.length,
    removed: result.removed.length,
    addedKeys: [...result.added],
    removedKeys: [...result.removed],
    // The CLI prints every name; the Lambda's response (same field names) may cut long lists.
    keysTruncated: false,
    changeId: result.changeId ?? null,
    changeRecordLocation: result.changeRecordLocation ?? null,
    redeliveredChangeIds: result.redelivered.map((record) => record.changeId),
    pendingChangeIds: result.pending.map((entry) => entry.record.changeId),
  };
}

function toJsonChange(record: ChangeRecord): JsonChange {
  return {
    schemaVersion: record.schemaVersion,
    changeId: record.changeId,
    runId: record.runId,
    principal: record.principal,
    kind: record.kind,
    pattern: record.pattern,
    detectedAt: record.detectedAt,
    previousSnapshotVersion: record.previousSnapshotVersion,
    added: [...record.added],
    removed: [...record.removed],
    counts: { added: record.counts.added, removed: record.counts.removed, total: record.counts.total },
    snapshotLocation: record.snapshotLocation,
    changeRecordLocation: record.changeRecordLocation,
  };
}
