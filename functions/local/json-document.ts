/**
 * The one JSON document `npm run audit -- --json` prints, for scripts. Every field is always present (`null`
 * when it does not apply) and names are carried exactly (never escaped): the README has its field table.
 * Built field by field, not spread from the core's types, so the shape changes only with
 * {@link JSON_SCHEMA_VERSION}.
 */
import type { AuditSummary, PrincipalResult } from '../core/audit.js';
import type { ChangeRecord, PrincipalInfo } from '../core/ports.js';

/**
 * The version of the document's shape. 2: every field always present (`null` when it does not apply), `errorName`,
 * `host`, `pattern`, `principalPattern`, `stateDir`, `runFailure`, `newPrincipal`, `principalRemoved`.
 */
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
  readonly newPrincipal: boolean;
  readonly principalRemoved: JsonPrincipalRemoval | null;
  readonly info: JsonPrincipalInfo | null;
  /** Keys that crossed the key-age limit in this run (a stale notice: dry run, would be); empty when none. */
  readonly staleKeys: NonNullable<ChangeRecord['stale']>;
}

/** What BigState's principal listing says of a principal (discovery): as the state keeps it. */
export type JsonPrincipalInfo = PrincipalInfo;

/** A principal that no longer exists in BigState: told once as removed, its state archived. */
export interface JsonPrincipalRemoval {
  readonly removalId: string;
  /** The keys it had, sorted. */
  readonly keys: readonly string[];
  readonly archiveLocation: string;
}

/**
 * One change record the document delivers (prints): the record as the history keeps it, with every field present
 * (`null` where it does not apply).
 */
export interface JsonChange
  extends Pick<
    ChangeRecord,
    | 'changeId'
    | 'runId'
    | 'principal'
    | 'kind'
    | 'pattern'
    | 'detectedAt'
    | 'previousSnapshotVersion'
    | 'added'
    | 'removed'
    | 'counts'
    | 'snapshotLocation'
    | 'changeRecordLocation'
  > {
  /** The change record's own schema (as in the history files), not the document's. */
  readonly schemaVersion: number;
  readonly newPrincipal: boolean;
  readonly info: JsonPrincipalInfo | null;
  /**
   * A `stale` record's keys past the limit (names, ages, how each age was known), and the limit: a stale notice
   * is told once, so the document must carry its names. `null` for other kinds.
   */
  readonly stale: NonNullable<ChangeRecord['stale']> | null;
  readonly maxKeyAgeDays: number | null;
}

/** The document. */
export interface JsonDocument {
  readonly schemaVersion: typeof JSON_SCHEMA_VERSION;
  readonly runId: string;
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly host: string;
  readonly pattern: string | null;
  readonly principalPattern: string | null;
  readonly stateDir: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly runFailure: { readonly reason: string; readonly errorName: string } | null;
  readonly principals: readonly JsonPrincipal[];
  readonly changes: readonly JsonChange[];
}

/** What the document says beyond the summary. */
export interface JsonContext {
  readonly host: string;
  readonly pattern: string | undefined;
  readonly principalPattern: string | undefined;
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
    principalPattern: context.principalPattern ?? null,
    stateDir: context.stateDir,
    startedAt: summary.startedAt,
    finishedAt: summary.finishedAt,
    durationMs: summary.durationMs,
    runFailure:
      summary.runFailure === undefined
        ? null
        : { reason: summary.runFailure.reason, errorName: summary.runFailure.errorName },
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
    newPrincipal: result.newPrincipal === true,
    principalRemoved:
      result.principalRemoved === undefined
        ? null
        : {
            removalId: result.principalRemoved.removalId,
            keys: [...result.principalRemoved.keys],
            archiveLocation: result.principalRemoved.archiveLocation,
          },
    info: toJsonInfo(result.info),
    staleKeys: (result.stale ?? []).map((key) => ({ ...key })),
  };
}

function toJsonInfo(info: PrincipalInfo | undefined): JsonPrincipalInfo | null {
  return info === undefined ? null : { type: info.type, displayName: info.displayName };
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
    newPrincipal: record.newPrincipal === true,
    info: toJsonInfo(record.info),
    stale: record.stale === undefined ? null : record.stale.map((key) => ({ ...key })),
    maxKeyAgeDays: record.maxKeyAgeDays ?? null,
  };
}
