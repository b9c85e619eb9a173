/**
 * The `schedule` setting: EventBridge Scheduler `rate(...)` and `cron(...)` expressions, and the heartbeat
 * alarm's window derived from them.
 */
import { Duration } from 'aws-cdk-lib';
import { ScheduleExpression } from 'aws-cdk-lib/aws-scheduler';

/** The schedule when none is configured. */
export const DEFAULT_SCHEDULE = 'rate(1 hour)';

/** A schedule expression, checked and ready for EventBridge Scheduler. */
export interface ParsedSchedule {
  /** The expression for `aws-scheduler`'s `Schedule`. */
  readonly expression: ScheduleExpression;
  /** The interval between runs for `rate(...)`; undefined for `cron(...)`, whose spacing may vary. */
  readonly interval?: Duration;
}

const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const CRON = /^cron\((.*)\)$/;
// Characters EventBridge Scheduler allows in a cron field (numbers, names such as MON or JAN, and , - * ? / L W #).
const CRON_FIELD = /^[0-9A-Za-z,\-*?/#]+$/;

/**
 * Checks a `rate(...)` or `cron(...)` expression.
 * @returns the parsed schedule, or a sentence saying what is wrong (the caller names the setting).
 */
export function parseSchedule(text: string): ParsedSchedule | { readonly problem: string } {
  const value = text.trim();
  const rate = RATE.exec(value);
  if (rate) {
    const count = Number(rate[1]);
    const unit = rate[2] ?? '';
    if (!Number.isSafeInteger(count) || count < 1) {
      return {
        problem: `must have a whole, positive rate such as rate(1 hour); got ${JSON.stringify(text)}`,
      };
    }
    const interval = unit.startsWith('minute')
      ? Duration.minutes(count)
      : unit.startsWith('hour')
        ? Duration.hours(count)
        : Duration.days(count);
    // `ScheduleExpression.rate` writes the unit in the form Scheduler expects (`1 hour`, `2 hours`).
    return { expression: ScheduleExpression.rate(interval), interval };
  }
  const cron = CRON.exec(value);
  if (cron) {
    const fields = (cron[1] ?? '').trim().split(/\s+/);
    if (fields.length !== 6) {
      return {
        problem: `must have six cron fields (minutes hours day-of-month month day-of-week year); got ${JSON.stringify(text)}`,
      };
    }
    if (!fields.every((field) => CRON_FIELD.test(field))) {
      return {
        problem: `holds a character that is not allowed in a cron field; got ${JSON.stringify(text)}`,
      };
    }
    const dayOfMonth = fields[2];
    const dayOfWeek = fields[4];
    if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
      return {
        problem: `must have "?" in exactly one of day-of-month and day-of-week; got ${JSON.stringify(text)}`,
      };
    }
    return { expression: ScheduleExpression.expression(`cron(${fields.join(' ')})`) };
  }
  return {
    problem: `must be an EventBridge Scheduler expression such as rate(1 hour) or cron(0 6 * * ? *); got ${JSON.stringify(text)}`,
  };
}

/** How the "no successful run" alarm looks at `RunSucceeded`: `evaluationPeriods` periods of `period`. */
export interface HeartbeatWindow {
  readonly period: Duration;
  readonly evaluationPeriods: number;
}

const ONE_DAY = 86_400;
// CloudWatch: period × evaluation periods may not exceed 7 days (1 day when the period is under an hour).
const MAX_WINDOW = 7 * ONE_DAY;

/**
 * The window of the heartbeat alarm: two runs' worth of `interval`, within CloudWatch's limits.
 *
 * Up to a day, the alarm period is the interval and it looks at two periods, so one late or failed run does
 * not alarm but two in a row do. Beyond a day (CloudWatch's longest usual alarm period) it looks at enough
 * one-day periods to cover two intervals, at most seven (CloudWatch's 7-day limit): for schedules sparser than
 * every 3.5 days, the alarm therefore fires after a single missed run.
 * @throws RangeError when the interval is not a whole number of minutes (CloudWatch periods are minutes).
 */
export function heartbeatWindow(interval: Duration): HeartbeatWindow {
  const seconds = interval.toSeconds();
  if (seconds < 60 || seconds % 60 !== 0) {
    throw new RangeError(`heartbeatPeriod must be a whole number of minutes; got ${seconds} seconds`);
  }
  if (seconds <= ONE_DAY) return { period: Duration.seconds(seconds), evaluationPeriods: 2 };
  const days = Math.min(Math.ceil((2 * seconds) / ONE_DAY), MAX_WINDOW / ONE_DAY);
  return { period: Duration.days(1), evaluationPeriods: days };
}
