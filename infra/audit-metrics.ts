/**
 * The function's own CloudWatch metrics, as the alarms and the dashboard read them.
 */
import type { Duration } from 'aws-cdk-lib';
import { Metric } from 'aws-cdk-lib/aws-cloudwatch';

/** The Powertools service of the function (`POWERTOOLS_SERVICE_NAME`): the `service` dimension of its metrics. */
export const SERVICE_NAME = 'bigstate-key-audit';
/** CloudWatch namespace of the function's metrics (Powertools `POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'BigStateKeyAudit';

/** A run-level metric the function emits through Powertools, with its default `service` dimension. */
export function auditMetric(metricName: string, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic,
    period,
  });
}
