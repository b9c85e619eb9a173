import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { heartbeatWindow, parseSchedule } from '../../infra/schedule.js';

function parsed(text: string) {
  const result = parseSchedule(text);
  if ('problem' in result) throw new Error(result.problem);
  return result;
}

describe('parseSchedule', () => {
  it.each([
    ['rate(1 minute)', 'rate(1 minute)', 60],
    ['rate(5 minutes)', 'rate(5 minutes)', 300],
    ['rate(1 hour)', 'rate(1 hour)', 3600],
    ['rate(1 hours)', 'rate(1 hour)', 3600],
    ['rate(90 minutes)', 'rate(90 minutes)', 5400],
    ['rate(2 days)', 'rate(2 days)', 172_800],
    [' rate(3 hours) ', 'rate(3 hours)', 10_800],
  ])('reads %s as %s every %i s', (text, expression, seconds) => {
    const result = parsed(text);
    expect(result.expression.expressionString).toBe(expression);
    expect(result.interval?.toSeconds()).toBe(seconds);
  });

  it('passes a cron expression through, with no fixed interval', () => {
    const result = parsed('cron(0/15  8-18 ? * MON-FRI *)');
    expect(result.expression.expressionString).toBe('cron(0/15 8-18 ? * MON-FRI *)');
    expect(result.interval).toBeUndefined();
  });

  it.each([
    ['hourly', /must be an EventBridge Scheduler expression/],
    ['rate(1 week)', /must be an EventBridge Scheduler expression/],
    ['rate(1.5 hours)', /must be an EventBridge Scheduler expression/],
    ['rate(0 minutes)', /whole, positive rate/],
    ['rate(-1 minutes)', /must be an EventBridge Scheduler expression/],
    ['at(2030-01-01T00:00:00)', /must be an EventBridge Scheduler expression/],
    ['cron(0 6 * * ?)', /six cron fields/],
    ['cron(0 6 * * ? * *)', /six cron fields/],
    ['cron(0 6 ? * ? *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 6 1 * MON *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 6 * * ? *); rm', /must be an EventBridge Scheduler expression/],
    ["cron(0 6 * * ? '*')", /not allowed in a cron field/],
  ])('refuses %s', (text, problem) => {
    const result = parseSchedule(text);
    expect('problem' in result && result.problem).toMatch(problem);
  });
});

describe('heartbeatWindow', () => {
  it.each([
    [Duration.minutes(1), 60, 2],
    [Duration.minutes(5), 300, 2],
    [Duration.hours(1), 3600, 2],
    [Duration.hours(6), 21_600, 2],
    [Duration.days(1), 86_400, 2],
    [Duration.hours(36), 86_400, 3],
    [Duration.days(2), 86_400, 4],
    [Duration.hours(50), 86_400, 5],
    [Duration.days(3), 86_400, 6],
    [Duration.days(7), 86_400, 7],
    [Duration.days(30), 86_400, 7],
  ])('for runs every %s looks at %i s × %i', (interval, period, evaluationPeriods) => {
    const window = heartbeatWindow(interval);
    expect(window.period.toSeconds()).toBe(period);
    expect(window.evaluationPeriods).toBe(evaluationPeriods);
  });

  it('always covers two runs where CloudWatch allows it, and stays within its limits', () => {
    for (let minutes = 1; minutes <= 14 * 24 * 60; minutes += 7) {
      const { period, evaluationPeriods } = heartbeatWindow(Duration.minutes(minutes));
      const seconds = period.toSeconds();
      const total = seconds * evaluationPeriods;
      expect(seconds % 60).toBe(0);
      expect(seconds).toBeLessThanOrEqual(86_400);
      expect(total).toBeLessThanOrEqual(seconds < 3600 ? 86_400 : 604_800);
      expect(total).toBeGreaterThanOrEqual(Math.min(2 * minutes * 60, 604_800));
    }
  });

  it.each([Duration.seconds(30), Duration.seconds(90)])('refuses %s, not whole minutes', (interval) => {
    expect(() => heartbeatWindow(interval)).toThrow(/heartbeatPeriod must be a whole number of minutes/);
  });
});
