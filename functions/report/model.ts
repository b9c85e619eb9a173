/**
 * What the key inventory report shows, built from the principals' states (never by scanning the history): the
 * model both renderers (HTML for people, CSV for spreadsheets) take. Names come from BigState: a renderer escapes
 * them for its format.
 */

/** How a key's age was known. */
export type AgeSource = 'created' | 'first-seen';

/** One key of a principal. */
export interface ReportKey {
  readonly name: string;
  /** ISO 8601: when an audit first saw it. */
  readonly firstSeen: string;
  /** ISO 8601: when an audit last saw it. */
  readonly lastSeen: string;
  /** ISO 8601: its creation time, when BigState returned one among the key's fields; `null` otherwise. */
  readonly createdAt: string | null;
  /** Whole days since `createdAt` (or, without one, since `firstSeen`: a lower bound). */
  readonly ageDays: number;
  readonly ageFrom: AgeSource;
  /** Older than `maxKeyAgeDays` (always false without it). */
  readonly stale: boolean;
}

/** One principal of the report. */
export interface ReportPrincipal {
  readonly principal: string;
  /** What BigState's principal listing says of it (`type` 1 application, 2 user), when discovery found it. */
  readonly info: { readonly type: number | null; readonly displayName: string | null } | null;
  readonly keyCount: number;
  /** Sorted by name. */
  readonly keys: readonly ReportKey[];
  /** Keys removed in the last 30 days, newest first. */
  readonly removedRecently: ReadonlyArray<{ readonly name: string; readonly removedAt: string }>;
  /** Its key count over time, oldest first (one point per write of its state: at most one a day when unchanged). */
  readonly series: ReadonlyArray<{ readonly at: string; readonly count: number }>;
  /** Set when its last run failed (its keys are then the last good ones). */
  readonly failure: string | null;
}

/** The whole report. */
export interface ReportModel {
  /** ISO 8601. */
  readonly generatedAt: string;
  /** The run that made it. */
  readonly runId: string;
  readonly host: string;
  /** The key-age policy, when one is set. */
  readonly maxKeyAgeDays: number | null;
  readonly principals: readonly ReportPrincipal[];
}
