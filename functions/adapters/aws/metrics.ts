/**
 * The run's CloudWatch metrics (EMF through Powertools): what the stack's alarms and dashboard read.
 *
 * Run-level only, never one per principal: a metric per principal costs a custom metric a month each, and
 * CloudWatch dimension values are ASCII, so non-Latin names would collide. Key counts per principal are in the
 * function's "principal audited" log lines, which the dashboard queries with Logs Insights.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
/** What the metrics of a run are made of: a single run's summary, or a fan-out's rows (counts, not names). */
export interface RunFigures {
  readonly dryRun: boolean;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly principals: ReadonlyArray<{
    readonly status: 'ok' | 'failed';
    readonly keyCount: number | null;
    readonly added: number | readonly string[];
    readonly removed: number | readonly string[];
  }>;
}

const countOf = (value: number | readonly string[]): number =>
  typeof value === 'number' ? value : value.length;

/** Metric names; the stack's alarms and dashboard use the same. */
export const METRIC = {
  keysTotal: 'KeysTotal',
  keysAdded: 'KeysAdded',
  keysRemoved: 'KeysRemoved',
  principalsFailed: 'PrincipalsFailed',
  runDuration: 'RunDuration',
  runSucceeded: 'RunSucceeded',
} as const;

/**
 * Adds the metrics of one real run (a dry run adds none), all in one EMF document. `KeysTotal` is the sum of
 * the key counts of the principals audited in the run (a failed principal has none). `RunSucceeded` is the
 * heartbeat: 1 for a run (not a dry run) in which every principal was audited, so "no heartbeat for two
 * periods" means the audit stopped working.
 */
export function addRunMetrics(metrics: Metrics, summary: RunFigures): void {
  // A dry run must not move any series an alarm or the dashboard reads: it emits none.
  if (summary.dryRun) return;
  let total = 0;
  let added = 0;
  let removed = 0;
  let failed = 0;
  for (const result of summary.principals) {
    total += result.keyCount ?? 0;
    added += countOf(result.added);
    removed += countOf(result.removed);
    if (result.status === 'failed') failed += 1;
  }
  metrics.addMetric(METRIC.keysTotal, MetricUnit.Count, total);
  metrics.addMetric(METRIC.keysAdded, MetricUnit.Count, added);
  metrics.addMetric(METRIC.keysRemoved, MetricUnit.Count, removed);
  metrics.addMetric(METRIC.principalsFailed, MetricUnit.Count, failed);
  metrics.addMetric(METRIC.runDuration, MetricUnit.Milliseconds, summary.durationMs);
  metrics.addMetric(METRIC.runSucceeded, MetricUnit.Count, summary.ok ? 1 : 0);
}
