/**
 * The audit's alarms: each named after the stack, each saying what happened, what it means and what to do
 * first, with a link to its runbook in the README; each notifies the topic when it fires and when it clears.
 */
import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IMetric, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { METRIC } from '../functions/adapters/aws/metrics.js';
import { auditMetric } from './audit-metrics.js';
import type { HeartbeatWindow } from './schedule.js';

/** Where the runbooks are: the README of this project, section "Alarms and the dashboard". */
export const RUNBOOK_DOCUMENT = 'README.md';

/**
 * Each alarm: the suffix of its name (`<prefix>-<suffix>`) and the anchor of its runbook section in the README
 * (GitHub's anchor of the heading `#### Alarm: <suffix>`).
 */
export const ALARMS = {
  errors: { suffix: 'audit-errors', anchor: 'alarm-audit-errors' },
  throttles: { suffix: 'audit-throttles', anchor: 'alarm-audit-throttles' },
  noSuccessfulRun: { suffix: 'no-successful-run', anchor: 'alarm-no-successful-run' },
  scheduleDeadLetters: { suffix: 'schedule-dead-letters', anchor: 'alarm-schedule-dead-letters' },
  asyncFailures: { suffix: 'async-failures', anchor: 'alarm-async-failures' },
} as const;

/** One of the alarms. */
export type AlarmKind = keyof typeof ALARMS;

/**
 * The alarms of the fan-out's state machine (`fanOut`), as {@link ALARMS}: their runbooks are in the README's
 * section "Thousands of principals: fan-out".
 */
export const FAN_OUT_ALARMS = {
  failed: { suffix: 'fan-out-failed', anchor: 'alarm-fan-out-failed' },
  timedOut: { suffix: 'fan-out-timed-out', anchor: 'alarm-fan-out-timed-out' },
  aborted: { suffix: 'fan-out-aborted', anchor: 'alarm-fan-out-aborted' },
} as const;

/** One of the fan-out's alarms. */
export type FanOutAlarmKind = keyof typeof FAN_OUT_ALARMS;

/** The link an alarm's description ends with. */
export const runbookLink = (kind: AlarmKind): string => `${RUNBOOK_DOCUMENT}#${ALARMS[kind].anchor}`;

/** The link a fan-out alarm's description ends with. */
export const fanOutRunbookLink = (kind: FanOutAlarmKind): string =>
  `${RUNBOOK_DOCUMENT}#${FAN_OUT_ALARMS[kind].anchor}`;

/** What the alarms watch. */
export interface AuditAlarmsOptions {
  /** Prefix of every alarm name, e.g. the stack name. */
  readonly namePrefix: string;
  /** The audit function. */
  readonly function: IFunction;
  /** Where the schedule puts invocations it could not deliver. */
  readonly scheduleDeadLetterQueue: IQueue;
  /** Where Lambda puts asynchronous invocations that failed. */
  readonly failureQueue: IQueue;
  /** The window of the "no successful run" alarm. */
  readonly heartbeat: HeartbeatWindow;
  /** Notified when an alarm fires and when it clears. */
  readonly topic: ITopic;
}

/** The alarms, by kind. */
export type AuditAlarms = Readonly<Record<AlarmKind, Alarm>>;

const FIVE_MINUTES = Duration.minutes(5);

/** "What happened. What it means. First: ... Runbook: README.md#..." */
function describe(kind: AlarmKind, parts: DescriptionParts): string {
  return describeWith(runbookLink(kind), parts);
}

interface DescriptionParts {
  readonly happened: string;
  readonly means: string;
  readonly first: string;
}

function describeWith(link: string, parts: DescriptionParts): string {
  return `What happened: ${parts.happened} What it means: ${parts.means} First thing to do: ${parts.first} Runbook: ${link} (bigstate-key-audit).`;
}

/**
 * Creates the five alarms in `scope`, with the ids they have always had (`ErrorsAlarm`, ...), each notifying
 * the topic on ALARM and on OK.
 */
export function createAuditAlarms(scope: Construct, options: AuditAlarmsOptions): AuditAlarms {
  const { namePrefix, heartbeat } = options;
  const name = (kind: AlarmKind) => `${namePrefix}-${ALARMS[kind].suffix}`;
  const window = `${heartbeat.evaluationPeriods} × ${heartbeat.period.toHumanString()}`;

  /** An alarm on anything at all in 5 minutes: one error, throttle or queued message is one too many. */
  const anyOf = (
    id: string,
    kind: AlarmKind,
    metric: IMetric,
    description: string,
    treatMissingData: TreatMissingData,
  ) =>
    new Alarm(scope, id, {
      alarmName: name(kind),
      alarmDescription: description,
      metric,
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData,
    });

  const alarms: AuditAlarms = {
    errors: anyOf(
      'ErrorsAlarm',
      'errors',
      options.function.metricErrors({ statistic: Stats.SUM, period: FIVE_MINUTES }),
      describe('errors', {
        happened: 'an invocation of the BigState key audit function ended in an error.',
        means:
          'a principal could not be audited (its last good snapshot is kept, no key change is reported for it; the others were audited and published) or the run itself failed (API key secret empty or wrong, BigState unreachable, S3, SNS or EventBridge refused). It stays in ALARM until an invocation ends without error.',
        first:
          'read the function\'s log lines "principal failed" and "audit result" (each reason names the principal and the stage).',
      }),
      // Lambda reports Errors only when the function runs: between runs there is no data, which must keep the
      // alarm where it is, so it clears when a run ends without error (Errors 0), not minutes after it fired.
      TreatMissingData.IGNORE,
    ),
    throttles: anyOf(
      'ThrottlesAlarm',
      'throttles',
      options.function.metricThrottles({ statistic: Stats.SUM, period: FIVE_MINUTES }),
      describe('throttles', {
        happened:
          'Lambda refused an audit invocation because a run was already in progress (one run at a time).',
        means:
          'runs overlap: a manual run during a scheduled one, or runs longer than the schedule interval. The refused invocation did not run (a scheduled one is retried, then dead-lettered). It clears by itself.',
        first:
          'compare the run duration on the dashboard with the schedule, and look for manual runs at that time.',
      }),
      // A throttle is an event, not a state: no data means no throttle.
      TreatMissingData.NOT_BREACHING,
    ),
    noSuccessfulRun: new Alarm(scope, 'NoSuccessfulRunAlarm', {
      alarmName: name('noSuccessfulRun'),
      alarmDescription: describe('noSuccessfulRun', {
        happened: `no audit run succeeded (every principal audited) within ${window}.`,
        means: `key changes may be going unreported: runs fail, or nothing runs the function. It clears after the next successful run.`,
        first: `look at the ${name('errors')}, ${name('scheduleDeadLetters')} and ${name('asyncFailures')} alarms, then run a dry run by hand (the DryRunCommand output of the stack).`,
      }),
      metric: auditMetric(METRIC.runSucceeded, Stats.SUM, heartbeat.period),
      threshold: 1,
      comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: heartbeat.evaluationPeriods,
      datapointsToAlarm: heartbeat.evaluationPeriods,
      // No data means no run reported success: that is exactly what this alarm is for.
      treatMissingData: TreatMissingData.BREACHING,
    }),
    // The queue alarms count messages arriving (NumberOfMessagesSent: Scheduler and Lambda both deliver with
    // SendMessage; only SQS's own redrive from a source queue is not counted, and these queues have none), not
    // messages waiting: a message kept for the 14 days of retention must not hold the alarm that long.
    scheduleDeadLetters: anyOf(
      'ScheduleDeadLetterQueueAlarm',
      'scheduleDeadLetters',
      options.scheduleDeadLetterQueue.metricNumberOfMessagesSent({
        statistic: Stats.SUM,
        period: FIVE_MINUTES,
      }),
      describe('scheduleDeadLetters', {
        happened:
          'EventBridge Scheduler could not invoke the audit function (with fanOut: start the state machine) after its retries, and put the invocation on the schedule dead-letter queue.',
        means:
          'a scheduled run did not happen at all: the function (or state machine) was never called (a missing permission, a deleted resource, Lambda or Step Functions refusing the call). It clears by itself; the message stays in the queue for 14 days.',
        first:
          'read the message and its ERROR_CODE / ERROR_MESSAGE attributes with aws sqs receive-message, then run the audit by hand.',
      }),
      TreatMissingData.NOT_BREACHING,
    ),
    asyncFailures: anyOf(
      'FailureQueueAlarm',
      'asyncFailures',
      options.failureQueue.metricNumberOfMessagesSent({ statistic: Stats.SUM, period: FIVE_MINUTES }),
      describe('asyncFailures', {
        happened:
          'an asynchronous (scheduled) audit invocation failed or expired, and Lambda put a record of it on the on-failure queue.',
        means: `a scheduled run failed (see ${name('errors')}) or waited over an hour behind another run and was dropped. It clears by itself; the record stays in the queue for 14 days.`,
        first:
          'read the record (requestContext.condition, responsePayload) with aws sqs receive-message; fix the cause, then run the audit by hand.',
      }),
      TreatMissingData.NOT_BREACHING,
    ),
  };

  // The notification topic is where people already listen; alarm messages carry no `changeType` attribute,
  // so subscriptions filtering on it (machines) do not receive them. OK too: people learn when it clears.
  const action = new SnsAction(options.topic);
  for (const alarm of Object.values(alarms)) {
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
  }
  return alarms;
}

/** What the fan-out's alarms watch. */
export interface FanOutAlarmsOptions {
  /** Prefix of every alarm name, e.g. the stack name. */
  readonly namePrefix: string;
  /** The fan-out's state machine. */
  readonly stateMachine: IStateMachine;
  /** Notified when an alarm fires and when it clears. */
  readonly topic: ITopic;
}

/** The fan-out's alarms, by kind. */
export type FanOutAlarms = Readonly<Record<FanOutAlarmKind, Alarm>>;

/**
 * Creates the three alarms of the fan-out's state machine in `scope` (`FanOutFailedAlarm`, ...): any execution
 * that failed, timed out or was aborted in 5 minutes; each notifies the topic on ALARM and on OK.
 */
export function createFanOutAlarms(scope: Construct, options: FanOutAlarmsOptions): FanOutAlarms {
  const name = (kind: FanOutAlarmKind) => `${options.namePrefix}-${FAN_OUT_ALARMS[kind].suffix}`;
  const anyOf = (id: string, kind: FanOutAlarmKind, metric: IMetric, parts: DescriptionParts) =>
    new Alarm(scope, id, {
      alarmName: name(kind),
      alarmDescription: describeWith(fanOutRunbookLink(kind), parts),
      metric,
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // An execution's end is an event, not a state: no data means no such execution.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  const sm = options.stateMachine;
  const sum = { statistic: Stats.SUM, period: FIVE_MINUTES };
  const alarms: FanOutAlarms = {
    failed: anyOf('FanOutFailedAlarm', 'failed', sm.metricFailed(sum), {
      happened: 'an execution of the fan-out state machine (a scheduled or manual full run) failed.',
      means:
        'a principal could not be audited (its last good snapshot is kept, no key change is reported for it; every other batch finished and published first), the run itself failed (API key secret empty or wrong, the principal listing failed), or a step of the run failed (plan, map, finish). It clears by itself; the next failing run fires it again.',
      first:
        'open the execution in the Step Functions console (its error and cause name the principals and reasons), then read the "principal failed" and "audit result" lines in the function log group.',
    }),
    timedOut: anyOf('FanOutTimedOutAlarm', 'timedOut', sm.metricTimedOut(sum), {
      happened: 'an execution of the fan-out state machine ran into the state machine timeout.',
      means:
        'the run did not finish in time: batches still running were stopped, the finish step did not run, so the run summary, its metrics and the release of the run lease are missing (the lease expires by itself a minute after the timeout). Principals not reached keep their last snapshot. It clears by itself.',
      first:
        'compare the Map run duration with the timeout in the Step Functions console; look for slow BigState answers (retries) in the function log group; consider raising maxRequestsInFlight if BigState allows.',
    }),
    aborted: anyOf('FanOutAbortedAlarm', 'aborted', sm.metricAborted(sum), {
      happened:
        'an execution of the fan-out state machine was stopped (StopExecution, by a person or a script).',
      means:
        'the run ended early: the finish step did not run, so the run lease stays until it expires (a minute after the state machine timeout), and the next scheduled ticks skip. It clears by itself.',
      first:
        'find who stopped it in CloudTrail (StopExecution); if a run is needed now, wait for the lease to expire or remove leases/run.json by hand when no run is under way, then start one.',
    }),
  };
  const action = new SnsAction(options.topic);
  for (const alarm of Object.values(alarms)) {
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
  }
  return alarms;
}
