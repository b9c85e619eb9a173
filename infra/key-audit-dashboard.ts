/**
 * The audit's dashboard: key counts per principal from the function's structured logs (Logs Insights), totals
 * and run health from run-level metrics, the alarms, and Lambda's own metrics.
 *
 * No custom metric per principal: each would cost a metric a month, and CloudWatch dimension values are ASCII,
 * so non-Latin principal names collide (`日本` and `中国` both folded to `??`). The logs carry names exactly.
 */
import { Duration } from 'aws-cdk-lib';
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  LogQueryVisualizationType,
  LogQueryWidget,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { METRIC } from '../functions/adapters/aws/metrics.js';
import { auditMetric } from './audit-metrics.js';

/**
 * The Logs Insights query of the "keys per principal" widget, one line per element (CDK joins them with
 * `\n| `). It reads the line the function logs per audited principal (Powertools JSON, fields at the top level):
 * `{"message":"principal audited","principal":...,"dryRun":false,"keyCount":N,...}`. Logs Insights exposes a
 * JSON boolean as 1 or 0, so `dryRun = 0` keeps real runs only (a dry run writes nothing and must not show).
 */
export const KEYS_PER_PRINCIPAL_QUERY: readonly string[] = [
  'fields @timestamp, principal, keyCount',
  'filter message = "principal audited" and dryRun = 0',
  'stats latest(keyCount) as keys, latest(@timestamp) as lastAudited by principal',
  'sort principal asc',
  'limit 10000',
];

/** What the dashboard shows. */
export interface AuditDashboardOptions {
  /** The audit function. */
  readonly function: IFunction;
  /** Its log group, where the "principal audited" lines are. */
  readonly logGroup: ILogGroup;
  /** Every alarm, for the status widget. */
  readonly alarms: readonly Alarm[];
  /** The period of the run-level graphs: the interval between runs. */
  readonly period: Duration;
  /** A line under the title, e.g. the principals and the schedule. */
  readonly summary: string;
}

/** Creates the dashboard (id `Dashboard`) in `scope`. */
export function createAuditDashboard(scope: Construct, options: AuditDashboardOptions): Dashboard {
  const { period } = options;
  const fiveMinutes = Duration.minutes(5);
  const fn = options.function;
  const dashboard = new Dashboard(scope, 'Dashboard', { defaultInterval: Duration.days(7) });
  dashboard.addWidgets(
    new TextWidget({
      markdown: `# BigState key audit\n${options.summary} Keys per principal come from the function's logs (real runs only); the other graphs from its run-level metrics.`,
      width: 24,
      height: 2,
    }),
  );
  dashboard.addWidgets(
    new LogQueryWidget({
      title: 'Keys per principal (latest real run, from the logs)',
      logGroupNames: [options.logGroup.logGroupName],
      queryLines: [...KEYS_PER_PRINCIPAL_QUERY],
      view: LogQueryVisualizationType.TABLE,
      width: 12,
      height: 8,
    }),
    new GraphWidget({
      title: 'Keys in all (audited principals)',
      left: [auditMetric(METRIC.keysTotal, Stats.MAXIMUM, period)],
      width: 6,
      height: 8,
    }),
    new GraphWidget({
      title: 'Keys added / removed',
      left: [
        auditMetric(METRIC.keysAdded, Stats.SUM, period),
        auditMetric(METRIC.keysRemoved, Stats.SUM, period),
      ],
      width: 6,
      height: 8,
    }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Runs: succeeded / principals failed',
      left: [
        auditMetric(METRIC.runSucceeded, Stats.SUM, period),
        auditMetric(METRIC.principalsFailed, Stats.SUM, period),
      ],
      width: 8,
    }),
    new GraphWidget({
      title: 'Run duration (ms)',
      left: [
        auditMetric(METRIC.runDuration, Stats.MAXIMUM, period),
        auditMetric(METRIC.runDuration, Stats.AVERAGE, period),
      ],
      width: 8,
    }),
    new AlarmStatusWidget({ title: 'Alarms', alarms: [...options.alarms], width: 8 }),
  );
  dashboard.addWidgets(
    new GraphWidget({
      title: 'Lambda invocations, errors, throttles',
      left: [
        fn.metricInvocations({ statistic: Stats.SUM, period: fiveMinutes }),
        fn.metricErrors({ statistic: Stats.SUM, period: fiveMinutes }),
        fn.metricThrottles({ statistic: Stats.SUM, period: fiveMinutes }),
      ],
      width: 12,
    }),
    new GraphWidget({
      title: 'Lambda duration (ms)',
      left: [
        fn.metricDuration({ statistic: Stats.MAXIMUM, period: fiveMinutes }),
        fn.metricDuration({ statistic: Stats.p(50), period: fiveMinutes }),
      ],
      width: 12,
    }),
  );
  return dashboard;
}
