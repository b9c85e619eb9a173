import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { addRunMetrics, METRIC } from '../../../functions/adapters/aws/metrics.js';
import type { AuditSummary, PrincipalResult } from '../../../functions/core/audit.js';

/** The EMF documents Powertools writes to stdout while a test runs. */
let emitted: Array<Record<string, unknown>> = [];

beforeEach(() => {
  emitted = [];
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.includes('"_aws"')) {
      for (const line of text.split('\n').filter((l) => l.trim() !== '')) emitted.push(JSON.parse(line));
      return true;
    }
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stdout.write);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const ok = (
  principal: string,
  keyCount: number,
  added: string[] = [],
  removed: string[] = [],
): PrincipalResult => ({
  principal,
  status: 'ok',
  baseline: false,
  keyCount,
  added,
  removed,
  redelivered: [],
  pending: [],
});

const failed = (principal: string): PrincipalResult => ({
  principal,
  status: 'failed',
  reason: 'walking the keys: 403',
  baseline: false,
  keyCount: null,
  added: [],
  removed: [],
  redelivered: [],
  pending: [],
});

function summary(principals: PrincipalResult[], overrides: Partial<AuditSummary> = {}): AuditSummary {
  return {
    runId: 'run-1',
    dryRun: false,
    startedAt: '2025-06-01T12:00:00.000Z',
    finishedAt: '2025-06-01T12:00:01.234Z',
    durationMs: 1234,
    principals,
    ok: principals.every((result) => result.status === 'ok'),
    ...overrides,
  };
}

/** Adds a run's metrics, flushes them and returns every document written. */
function emit(run: AuditSummary): Array<Record<string, unknown>> {
  const metrics = new Metrics({ namespace: 'BigStateKeyAudit', serviceName: 'key-audit' });
  addRunMetrics(metrics, run);
  metrics.publishStoredMetrics();
  return emitted;
}

/** The names of the metrics of an EMF document. */
function metricNames(document: Record<string, unknown>): string[] {
  const aws = document._aws as { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string }> }> };
  return aws.CloudWatchMetrics.flatMap((entry) => entry.Metrics.map((metric) => metric.Name));
}

function dimensions(document: Record<string, unknown>): string[][] {
  const aws = document._aws as { CloudWatchMetrics: Array<{ Dimensions: string[][] }> };
  return aws.CloudWatchMetrics.flatMap((entry) => entry.Dimensions);
}

/** The document that carries the run-level metrics. */
function runDocument(documents: Array<Record<string, unknown>>): Record<string, unknown> {
  const run = documents.find((document) => metricNames(document).includes(METRIC.keysAdded));
  if (run === undefined) throw new Error('no run metrics were written');
  return run;
}

describe('METRIC', () => {
  it('has the names the alarms and the dashboard use, none of them per principal', () => {
    expect(METRIC).toEqual({
      keysTotal: 'KeysTotal',
      keysAdded: 'KeysAdded',
      keysRemoved: 'KeysRemoved',
      principalsFailed: 'PrincipalsFailed',
      runDuration: 'RunDuration',
      runSucceeded: 'RunSucceeded',
    });
  });
});

describe('addRunMetrics', () => {
  it('writes one run-level document: no metric and no dimension per principal, whatever the names', () => {
    const documents = emit(summary([ok('日本', 3), ok('中国', 4), ok('zürich-ops', 5), ok('svc a&b', 0)]));
    expect(documents).toHaveLength(1);
    const [run] = documents;
    expect(dimensions(run ?? {})).toEqual([['service']]);
    expect(metricNames(run ?? {})).not.toContain('KeyCount');
    expect(Object.keys(run ?? {})).not.toContain('principal');
    expect(JSON.stringify(documents)).not.toMatch(/日本|中国|zürich|svc a&b|\?\?/);
  });

  it('totals the keys of the audited principals in KeysTotal (a failed principal has none)', () => {
    expect(runDocument(emit(summary([ok('a', 3), ok('b', 4), failed('c')]))).KeysTotal).toBe(7);
  });

  it('writes KeysTotal 0 when no principal was audited', () => {
    expect(runDocument(emit(summary([failed('c')]))).KeysTotal).toBe(0);
  });

  it('sums the keys added and removed, counts failures, and times the run', () => {
    const run = runDocument(
      emit(summary([ok('a', 5, ['x', 'y'], ['z']), ok('b', 1, ['w'], []), failed('c'), failed('d')])),
    );
    expect(run).toMatchObject({ KeysAdded: 3, KeysRemoved: 1, PrincipalsFailed: 2, RunDuration: 1234 });
    const aws = run._aws as {
      CloudWatchMetrics: Array<{ Namespace: string; Metrics: Array<{ Name: string; Unit: string }> }>;
    };
    expect(aws.CloudWatchMetrics[0]?.Namespace).toBe('BigStateKeyAudit');
    expect(aws.CloudWatchMetrics[0]?.Metrics).toEqual([
      { Name: 'KeysTotal', Unit: 'Count' },
      { Name: 'KeysAdded', Unit: 'Count' },
      { Name: 'KeysRemoved', Unit: 'Count' },
      { Name: 'PrincipalsFailed', Unit: 'Count' },
      { Name: 'RunDuration', Unit: 'Milliseconds' },
      { Name: 'RunSucceeded', Unit: 'Count' },
    ]);
  });

  it('writes zeros for a run without changes', () => {
    const run = runDocument(emit(summary([ok('a', 5)])));
    expect(run).toMatchObject({ KeysAdded: 0, KeysRemoved: 0, PrincipalsFailed: 0 });
  });

  it('beats the RunSucceeded heartbeat with 1 for a run in which every principal was audited', () => {
    expect(runDocument(emit(summary([ok('a', 1)]))).RunSucceeded).toBe(1);
  });

  it('writes RunSucceeded 0 when a principal failed', () => {
    expect(runDocument(emit(summary([ok('a', 1), failed('b')]))).RunSucceeded).toBe(0);
  });

  it('emits nothing for a dry run: no heartbeat, no key totals, no failures an alarm would read', () => {
    expect(emit(summary([ok('a', 1, ['x'], ['y'])], { dryRun: true }))).toEqual([]);
    expect(emit(summary([ok('a', 1), failed('b')], { dryRun: true }))).toEqual([]);
  });

  it('still emits for a real run after a dry one', () => {
    expect(emit(summary([ok('a', 1)], { dryRun: true }))).toEqual([]);
    expect(runDocument(emit(summary([ok('a', 1)]))).RunSucceeded).toBe(1);
  });
});
