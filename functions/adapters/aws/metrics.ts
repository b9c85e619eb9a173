/**
 * The run's CloudWatch metrics (EMF through Powertools): what the stack's alarms and dashboard read.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AuditSummary } from '../../core/audit.js';
import { asciiSubjectText } from '../../core/messages.js';

/** Metric names; the stack's alarms and dashboard use the same. */
export const METRIC = {
  keyCount: 'KeyCount',
  keysAdded: 'KeysAdded',
  keysRemoved: 'KeysRemoved',
  principalsFailed: 'PrincipalsFailed',
  runDuration: 'RunDuration',
  runSucceeded: 'RunSucceeded',
} as const;

/**
 * Adds the metrics of one real run (a dry run adds none). `RunSucceeded` is the heartbeat: 1 for a run (not a dry run) in which every
 * principal was audited, so "no heartbeat for two periods" means the audit stopped working.
 */
export function addRunMetrics(metrics: Metrics, summary: AuditSummary): void {
  // A dry run must not move any series an alarm or the dashboard reads: it emits none.
  if (summary.dryRun) return;
  let added = 0;
  let removed = 0;
  let failed = 0;
  for (const result of summary.principals) {
    added += result.added.length;
    removed += result.removed.length;
    if (result.status === 'failed') failed += 1;
    if (result.keyCount !== null) {
      // CloudWatch dimension values must be ASCII.
      metrics
        .singleMetric()
        .addDimension('principal', asciiSubjectText(result.principal))
        .addMetric(METRIC.keyCount, MetricUnit.Count, result.keyCount);
    }
  }
  metrics.addMetric(METRIC.keysAdded, MetricUnit.Count, added);
  metrics.addMetric(METRIC.keysRemoved, MetricUnit.Count, removed);
  metrics.addMetric(METRIC.principalsFailed, MetricUnit.Count, failed);
  metrics.addMetric(METRIC.runDuration, MetricUnit.Milliseconds, summary.durationMs);
  metrics.addMetric(METRIC.runSucceeded, MetricUnit.Count, summary.ok ? 1 : 0);
}
