/**
 * The fan-out (`fanOut`): the audit of thousands of principals as a Step Functions state machine with a Distributed
 * Map, three handlers of one bundle.
 *
 * - `plan`: takes the run lease, resolves the principals (the key read once, the listing walked, the configured
 *   ones, the stored ones a complete listing missed) and writes them to S3 for the Map's ItemReader.
 * - `worker`: audits one batch of principals with exactly the single run's per-principal semantics (outbox, exact
 *   checks, conditional writes, failure isolation), never past the run's deadline, which travels in the batch.
 * - `finish`: once every batch finished, reads the Map's results (ResultWriter), keeps the run-level record, logs
 *   the summary, emits the run-level metrics and heartbeat, releases the lease, and fails the execution when a
 *   principal failed.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import * as z from 'zod/mini';
import { leaseExpiry, releaseRunLease, skippedFor } from './adapters/aws/lease.js';
import { addRunMetrics } from './adapters/aws/metrics.js';
import { readStatesForReport, writeReport } from './adapters/aws/report.js';
import { awsWiring, settleOrExit } from './adapters/aws/wiring.js';
import { loadLambdaConfig } from './commons/config.js';
import { Deadline } from './commons/deadline.js';
import { ConfigurationError, describeError, InvalidRequestError, StorageError } from './commons/errors.js';
import {
  assertAuditSucceeded,
  type PrincipalResult,
  planRun,
  recordRunOutcome,
  runAudit,
  type Target,
} from './core/audit.js';
import { datedReportKey, runItemsKey } from './core/layout.js';

const config = loadLambdaConfig();
const logger = new Logger();
const metrics = new Metrics();
const { secret, bigstate, store, s3, channels } = await awsWiring(config, logger);
const deps = { bigstate, store, channels, logger, secret, directory: bigstate };

/**
 * How long a run may take in all: the state machine's timeout, which the stack hands the plan step as
 * `FAN_OUT_TIMEOUT_MS` (only the plan reads it). Missing or not a whole number of milliseconds ≥ 1 minute: the
 * plan fails naming it, never a run with a NaN deadline.
 */
function runTimeoutMs(): number {
  const text = process.env.FAN_OUT_TIMEOUT_MS ?? '';
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 60_000) {
    throw new ConfigurationError(
      'invalid environment: FAN_OUT_TIMEOUT_MS must be the state machine timeout in milliseconds (at least 60000)',
    );
  }
  return value;
}
/** Time kept back in a worker for its failure notices and its answer, as the single run keeps it. */
const WORKER_RESERVE_MS = 5_000;
/** Time kept back at the end of the run for the finish step (reading the results, the record, the notices). */
const FINISH_RESERVE_MS = 3 * 60_000;
/** Failed principals listed in the execution's output (its 256 KiB limit): the counts are always whole. */
const MAX_FAILED_IN_OUTPUT = 500;
/** The error name of a principal whose batch failed as a whole (its worker ended without an answer). */
const BATCH_FAILED = 'BatchFailedError';

/** What the plan step hands the state machine. */
export interface PlanOutput {
  readonly runId: string;
  /** Epoch ms: when the plan step started, i.e. the run (its duration in the summary and metrics). */
  readonly startedAt: number;
  /** Epoch ms: no batch starts work after it. */
  readonly deadline: number;
  readonly dryRun: boolean;
  readonly itemsBucket: string;
  readonly itemsKey: string;
  readonly count: number;
  readonly runFailure: { readonly reason: string; readonly errorName: string; readonly stage: string } | null;
  /** Set when another run holds the lease: the state machine then ends without an audit. */
  readonly skipped: string | null;
}

/** The summary of a fanned-out run: the execution's output. */
export interface FanOutSummary {
  readonly runId: string;
  readonly ok: boolean;
  readonly dryRun: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly runFailure: { readonly reason: string; readonly errorName: string } | null;
  /** In the execution's output: the failed principals only, at most 500 (all of them in the logs). */
  readonly principals: readonly WorkerRow[];
  /** Whole counts of the run (in the execution's output). */
  readonly counts?: {
    readonly principals: number;
    readonly failed: number;
    readonly baselines: number;
    readonly added: number;
    readonly removed: number;
  };
}

/** One row of a batch's answer: small, so a batch stays far under the Map's 256 KB per result. */
export interface WorkerRow {
  readonly principal: string;
  readonly status: 'ok' | 'failed';
  readonly reason: string | null;
  readonly errorName: string | null;
  readonly baseline: boolean;
  readonly keyCount: number | null;
  readonly added: number;
  readonly removed: number;
  readonly changeId: string | null;
  /** Set when the principal was gone from BigState and retired (told, its state archived). */
  readonly principalRemoved?: true;
  /**
   * Set when its failure changed in a way people were told of (started, changed, reminded, ended): the report,
   * which lists failures, is rewritten for it. A principal that keeps failing quietly changes nothing there.
   */
  readonly failureNews?: true;
}

const runInput = z.looseObject({ dryRun: z.optional(z.boolean()) });
/** What the Plan task sends: the execution's input and its name (the run id); a bare input is taken too. */
const planInput = z.object({
  input: z.optional(z.nullable(runInput)),
  execution: z.string().check(z.minLength(1)),
});

/** The plan step. The execution's input is the schedule's (or `{}` / `{"dryRun": true}` for a manual start). */
export async function planHandler(event: unknown, context: Context): Promise<PlanOutput> {
  const wrapped = typeof event === 'object' && event !== null && 'execution' in event;
  const parsed = wrapped
    ? planInput.safeParse(event)
    : runInput.safeParse(event ?? {}).success
      ? planInput.safeParse({ input: event ?? {}, execution: context.awsRequestId })
      : { success: false as const };
  if (!parsed.success)
    throw new InvalidRequestError('dryRun', 'invalid execution input: dryRun must be a boolean');
  const input = parsed.data.input ?? {};
  // The execution's name, the same in every attempt of the Plan task (the request id is not).
  const runId = parsed.data.execution;
  logger.appendKeys({ runId });
  // A dry run writes nothing, and the Map reads its items from S3: a dry run audits in-process instead.
  if (input.dryRun === true) {
    throw new InvalidRequestError(
      'dryRun',
      'a dry run writes nothing, and a fanned-out run writes its plan to S3: for a dry run invoke the audit function with {"dryRun": true}',
    );
  }
  // A real run, from here on (the BatchInput and the plan's output still say so, as the state machine reads them).
  const dryRun = false;
  const startedAt = Date.now();
  const runTimeout = runTimeoutMs();
  const deadline = startedAt + Math.max(60_000, runTimeout - FINISH_RESERVE_MS);
  const itemsKey = runItemsKey(runId);
  const base = { runId, startedAt, deadline, dryRun, itemsBucket: config.bucketName, itemsKey };
  const planDeadline = Deadline.after(Math.max(1_000, context.getRemainingTimeInMillis() - 2_000));
  try {
    const expiresAt = leaseExpiry(startedAt, runTimeout);
    const lease = await store.acquireLease({ runId, expiresAt }, new Date(), { signal: planDeadline.signal });
    if (!lease.acquired)
      return { ...base, count: 0, runFailure: null, skipped: skippedFor(lease.holder, logger) };
    return await planWithLease(runId, base, planDeadline);
  } finally {
    planDeadline.dispose();
  }
}

/**
 * The plan once the lease is held. A plan that fails (the listing or the items' put throws) releases the lease
 * before it fails: the state machine ends the run there, with no finish step to release it, and the lease would
 * otherwise skip every scheduled run until it expired (the run's timeout, hours).
 */
async function planWithLease(
  runId: string,
  base: Omit<PlanOutput, 'count' | 'runFailure' | 'skipped'>,
  planDeadline: Deadline,
): Promise<PlanOutput> {
  try {
    const plan = await planRun(deps, {
      runId,
      principals: config.principals,
      principalPattern: config.principalPattern,
      host: config.host,
      pattern: config.pattern,
      dryRun: base.dryRun,
      deadline: planDeadline,
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: config.bucketName,
        Key: base.itemsKey,
        Body: JSON.stringify(plan.targets),
        ContentType: 'application/json',
      }),
      { abortSignal: planDeadline.signal },
    );
    logger.info('run planned', { principals: plan.targets.length, runFailure: plan.runFailure ?? null });
    return { ...base, count: plan.targets.length, runFailure: plan.runFailure ?? null, skipped: null };
  } catch (error) {
    await releaseRunLease(store, runId, logger);
    throw error;
  }
}

const batchInput = z.object({
  Items: z.array(
    z.looseObject({
      principal: z.string().check(z.minLength(1)),
      listed: z.boolean(),
      configured: z.boolean(),
      missing: z.boolean(),
    }),
  ),
  BatchInput: z.object({ runId: z.string(), deadline: z.number(), dryRun: z.boolean() }),
});

/** The worker: one batch of the Map (`{ Items, BatchInput }`, as the ItemBatcher sends it). */
export async function workerHandler(event: unknown, context: Context): Promise<{ principals: WorkerRow[] }> {
  const parsed = batchInput.safeParse(event);
  if (!parsed.success)
    throw new InvalidRequestError('Items', 'invalid batch: expected { Items, BatchInput }');
  const { Items, BatchInput } = parsed.data;
  logger.appendKeys({ runId: BatchInput.runId });
  // The batch never outlives the run, nor this invocation: whichever ends first.
  const invocationEnd = Date.now() + context.getRemainingTimeInMillis() - WORKER_RESERVE_MS;
  const hardStop = Deadline.at(Math.min(BatchInput.deadline, invocationEnd) + WORKER_RESERVE_MS / 2);
  const work = Deadline.at(Math.min(BatchInput.deadline, invocationEnd), {
    label: "the run's work deadline",
  });
  try {
    const run = runAudit(deps, {
      runId: BatchInput.runId,
      principals: [],
      targets: Items as unknown as Target[],
      host: config.host,
      pattern: config.pattern,
      maxKeyAgeDays: config.maxKeyAgeDays,
      dryRun: BatchInput.dryRun,
      deadline: work,
      hardStop,
    });
    // As the audit function: no work of the batch outlives the invocation, into the next batch of this sandbox.
    const summary = await settleOrExit(run, hardStop, { logger, metrics });
    const news = summary.failureNews ?? new Set<string>();
    return { principals: summary.principals.map((result) => rowOf(result, news.has(result.principal))) };
  } finally {
    work.dispose();
    hardStop.dispose();
  }
}

function rowOf(result: PrincipalResult, failureNews: boolean): WorkerRow {
  return {
    principal: result.principal,
    status: result.status,
    reason: result.reason ?? null,
    errorName: result.errorName ?? null,
    baseline: result.baseline,
    keyCount: result.keyCount,
    added: result.added.length,
    removed: result.removed.length,
    changeId: result.changeId ?? null,
    ...(result.principalRemoved === undefined ? {} : { principalRemoved: true as const }),
    ...(failureNews ? { failureNews: true as const } : {}),
  };
}

const finishInput = z.object({
  plan: z.looseObject({
    runId: z.string(),
    // Absent from an execution planned by an earlier release: the finish step's start stands in.
    startedAt: z.optional(z.number()),
    dryRun: z.boolean(),
    itemsBucket: z.string(),
    itemsKey: z.string(),
    runFailure: z.nullable(z.object({ reason: z.string(), errorName: z.string(), stage: z.string() })),
  }),
  // The Map's ResultWriter output, or (its Catch) the error that ended the Map itself.
  map: z.union([
    z.looseObject({ ResultWriterDetails: z.object({ Bucket: z.string(), Key: z.string() }) }),
    z.looseObject({ Error: z.string(), Cause: z.optional(z.string()) }),
  ]),
});

/** The Map's manifest (ResultWriter), as AWS documents it. */
const manifestSchema = z.looseObject({
  DestinationBucket: z.string(),
  ResultFiles: z.looseObject({
    SUCCEEDED: z.optional(z.array(z.looseObject({ Key: z.string() }))),
    FAILED: z.optional(z.array(z.looseObject({ Key: z.string() }))),
    PENDING: z.optional(z.array(z.looseObject({ Key: z.string() }))),
  }),
});

/** One child execution's result in a ResultWriter file. */
const childSchema = z.array(
  z.looseObject({
    Input: z.optional(z.string()),
    Output: z.optional(z.string()),
    Status: z.optional(z.string()),
    Error: z.optional(z.string()),
  }),
);

async function readJson(bucket: string, key: string, signal: AbortSignal): Promise<unknown> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: signal,
    });
    return JSON.parse((await response.Body?.transformToString('utf-8')) ?? 'null');
  } catch (error) {
    throw new StorageError(`could not read s3://${bucket}/${key}`, { cause: error });
  }
}

/**
 * The finish step: every batch's rows, and for a batch that failed as a whole (its worker crashed or timed out),
 * each of its principals counted as failed with the batch's error. Then the run-level record, the summary log,
 * the metrics and heartbeat, the lease released; and the execution fails when anything failed.
 */
export async function finishHandler(event: unknown, context: Context): Promise<FanOutSummary> {
  const parsed = finishInput.safeParse(event);
  if (!parsed.success) throw new InvalidRequestError('plan', 'invalid finish input: expected { plan, map }');
  const { plan, map } = parsed.data;
  logger.appendKeys({ runId: plan.runId });
  // The run's start (the plan's), not the finish step's: the summary's duration and the RunDuration metric.
  const started = new Date(plan.startedAt ?? Date.now());
  // Whatever happens below, the lease is released (the `finally`): a finish step that threw early would leave
  // it held until it expires, and every run until then skipped.
  const deadline = Deadline.after(Math.max(1_000, context.getRemainingTimeInMillis() - 2_000));
  try {
    let rows: WorkerRow[];
    let runFailure = plan.runFailure;
    try {
      rows = await collectRows(plan, map, deadline.signal);
    } catch (error) {
      // The Map's results (or the plan's list) cannot be read: each principal's own outcome is in its state (the
      // workers recorded and told it); the run fails loudly, told once as a run-level failure.
      const reason = `reading the Map's results: ${describeError(error)}`;
      logger.error('the run outcome could not be read', { reason });
      rows = [];
      runFailure ??= { reason, errorName: error instanceof Error ? error.name : 'Error', stage: 'finishing' };
    }
    // A batch whose worker ended without an answer (crashed, timed out) told nothing of its principals: the run
    // tells it, once, as a failure of the run (by change of state, as any run-level failure), naming a few.
    const lost = rows.filter((row) => row.errorName === BATCH_FAILED);
    if (lost.length > 0 && runFailure === null) {
      const named = lost.slice(0, 5).map((row) => JSON.stringify(row.principal));
      runFailure = {
        stage: 'auditing the principals',
        errorName: BATCH_FAILED,
        reason: `${lost.length} principal(s) in batches whose worker ended without an answer (${named.join(', ')}${lost.length > named.length ? ', …' : ''}): ${lost[0]?.reason ?? ''}`,
      };
    }
    return await finishRun(plan, runFailure, rows, started, deadline, context);
  } finally {
    // The plan refuses a dry run: every fanned-out run holds the lease.
    await releaseRunLease(store, plan.runId, logger);
    deadline.dispose();
  }
}

type FinishInput = z.infer<typeof finishInput>;

/** Every principal's row from the Map's results (a batch that failed as a whole: its principals, failed). */
async function collectRows(
  plan: FinishInput['plan'],
  map: FinishInput['map'],
  signal: AbortSignal,
): Promise<WorkerRow[]> {
  const rows: WorkerRow[] = [];
  if ('ResultWriterDetails' in map) {
    const details = map.ResultWriterDetails as { Bucket: string; Key: string };
    const manifest = manifestSchema.parse(await readJson(details.Bucket, details.Key, signal));
    const files = [
      ...(manifest.ResultFiles.SUCCEEDED ?? []).map((file) => ({ key: file.Key, failed: false })),
      ...(manifest.ResultFiles.FAILED ?? []).map((file) => ({ key: file.Key, failed: true })),
    ];
    for (const file of files) {
      for (const child of childSchema.parse(await readJson(manifest.DestinationBucket, file.key, signal))) {
        if (!file.failed && child.Output !== undefined) {
          const output = JSON.parse(child.Output) as { principals?: WorkerRow[] };
          rows.push(...(output.principals ?? []));
          continue;
        }
        // A batch that failed as a whole: each of its principals failed with the batch's error.
        const items =
          (JSON.parse(child.Input ?? '{}') as { Items?: Array<{ principal: string }> }).Items ?? [];
        const reason = `auditing the batch: ${child.Error ?? child.Status ?? 'FAILED'} (its worker ended without an answer)`;
        for (const item of items) rows.push({ ...emptyRow(item.principal), reason });
      }
    }
  } else {
    // The Map itself failed: every planned principal counts as failed with its error (and the lease is freed).
    const error = map as { Error: string; Cause?: string };
    const items = (await readJson(plan.itemsBucket, plan.itemsKey, signal)) as Array<{
      principal: string;
    }> | null;
    const reason = `auditing the principals: the Map failed (${error.Error})`;
    for (const item of items ?? []) rows.push({ ...emptyRow(item.principal), reason });
  }
  return rows;
}

async function finishRun(
  plan: FinishInput['plan'],
  runFailure: FinishInput['plan']['runFailure'],
  rows: WorkerRow[],
  started: Date,
  deadline: Deadline,
  context: Context,
): Promise<FanOutSummary> {
  const request = {
    runId: plan.runId,
    principals: [],
    host: config.host,
    pattern: config.pattern,
    dryRun: plan.dryRun,
    deadline,
  };
  await recordRunOutcome(deps, request, {
    ...(runFailure ? { runFailure: runFailure } : {}),
    results: rows.map((row) => ({ principal: row.principal, status: row.status, reason: row.reason })),
  });
  const finished = new Date();
  const summary: FanOutSummary = {
    runId: plan.runId,
    ok: runFailure === null && rows.every((row) => row.status === 'ok'),
    dryRun: plan.dryRun,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    runFailure: runFailure === null ? null : { reason: runFailure.reason, errorName: runFailure.errorName },
    principals: rows,
  };
  addRunMetrics(metrics, summary);
  if (!plan.dryRun) await writeFanOutReport(plan.runId, rows, context);
  // The execution's output holds at most 256 KiB: every count, and the failed principals up to a limit.
  const failed = rows.filter((row) => row.status === 'failed');
  const output: FanOutSummary = {
    ...summary,
    principals: failed.slice(0, MAX_FAILED_IN_OUTPUT),
    counts: {
      principals: rows.length,
      failed: failed.length,
      baselines: rows.filter((row) => row.baseline).length,
      added: rows.reduce((sum, row) => sum + row.added, 0),
      removed: rows.reduce((sum, row) => sum + row.removed, 0),
    },
  };
  logger.info('audit result', {
    trigger: 'fan-out',
    ok: summary.ok,
    principals: rows.length,
    failed: failed.length,
  });
  if (!plan.dryRun) assertAuditSucceeded(summary);
  return output;
}

/**
 * The inventory report of a fanned-out run. The finish step holds only the workers' rows, so it reads every
 * principal's state back: at 10,000 principals, 10,000 GETs (about $0.004). It does so when the report would
 * change (a key added or removed, a principal baselined or retired, a failure told or ended, a batch lost), and at least once a day (the day's copy is missing,
 * so key ages move on); otherwise the last report still holds. Never fails the run: any error is a log line.
 */
async function writeFanOutReport(runId: string, rows: readonly WorkerRow[], context: Context): Promise<void> {
  // writeReport skips with too little time left; the reads before it stop at the same hard stop.
  const remaining = () => context.getRemainingTimeInMillis() - 2_000;
  const signal = AbortSignal.timeout(Math.max(1, remaining() - 1_000));
  const now = new Date();
  try {
    const changed = rows.some(
      (row) =>
        row.failureNews === true ||
        row.errorName === BATCH_FAILED ||
        row.baseline ||
        row.added > 0 ||
        row.removed > 0 ||
        row.principalRemoved === true,
    );
    if (!changed && (await store.hasReport(datedReportKey(now, 'html'), { signal }))) {
      logger.info("report kept: nothing changed and today's is written");
      return;
    }
    const principals = rows.map((row) => row.principal);
    const states = await readStatesForReport(store, principals, { signal });
    const results = rows.map((row) => ({
      principal: row.principal,
      status: row.status,
      ...(row.reason === null ? {} : { reason: row.reason }),
    }));
    await writeReport(
      { runId, dryRun: false, principals: results, states },
      {
        store,
        logger,
        host: config.host,
        maxKeyAgeDays: config.maxKeyAgeDays,
        remainingMs: remaining(),
        now,
      },
    );
  } catch (error) {
    logger.warn('report skipped: the states could not be read', { error });
  }
}

function emptyRow(principal: string): WorkerRow {
  return {
    principal,
    status: 'failed',
    reason: null,
    errorName: BATCH_FAILED,
    baseline: false,
    keyCount: null,
    added: 0,
    removed: 0,
    changeId: null,
  };
}

const middleware = <E, R>(fn: (event: E, context: Context) => Promise<R>) =>
  middy(fn)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));

export const plan = middleware(planHandler);
export const worker = middleware(workerHandler);
export const finish = middleware(finishHandler);
