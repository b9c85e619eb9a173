/**
 * The Lambda: middleware around a plain function that wires the audit core to AWS. Configuration is read
 * and the clients are built once, at cold start.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { leaseExpiry, releaseRunLease, skippedFor } from './adapters/aws/lease.js';
import { addRunMetrics } from './adapters/aws/metrics.js';
import { writeReport } from './adapters/aws/report.js';
import { LeaseHeldError } from './adapters/aws/s3-store.js';
import { awsWiring, settleOrExit } from './adapters/aws/wiring.js';
import { loadLambdaConfig } from './commons/config.js';
import { Deadline } from './commons/deadline.js';
import { type AuditSummary, assertAuditSucceeded, runAudit } from './core/audit.js';
import { parseInvocation } from './core/invocation.js';
import { type AuditResult, toAuditResult } from './core/result.js';

const config = loadLambdaConfig();
const logger = new Logger();
const metrics = new Metrics();
const { secret, bigstate, store, channels } = await awsWiring(config, logger);

/** Names listed per principal in the response (Lambda responses are limited to 6 MB). */
const MAX_NAMES_IN_RESPONSE = 1000;
/** middy's own early timeout: our hard stop comes before it, so middy's TimeoutError never ends a run. */
const MIDDY_EARLY_TIMEOUT_MS = 200;

/** The two times of a run, in milliseconds from the start of the invocation. */
export interface RunBudget {
  /** Until then work may start: BigState requests, walks, checks, writes, deliveries. */
  readonly workMs: number;
  /** Until then failure notices, the summary log and metrics may go out; the handler returns by then. */
  readonly hardStopMs: number;
}

/**
 * Splits the invocation's remaining time. The hard stop keeps back a twentieth (0.5 s to 3 s) for returning the
 * response and flushing metrics ahead of middy's early timeout; the work deadline keeps back a fifth of the
 * rest (1 s to 30 s) for failure notices and the summary. Whole milliseconds.
 */
export function runBudget(remainingMs: number): RunBudget {
  const safety = Math.min(3_000, Math.max(500 + MIDDY_EARLY_TIMEOUT_MS, Math.ceil(remainingMs / 20)));
  const hardStopMs = Math.max(0, Math.floor(remainingMs - safety));
  const reserve = Math.min(30_000, Math.max(1_000, Math.ceil(hardStopMs / 5)));
  return { workMs: Math.max(0, hardStopMs - reserve), hardStopMs };
}

/**
 * One invocation: a scheduled or manual run over the configured principals.
 * @throws InvalidRequestError for a malformed payload (before any BigState call), AuditRunFailedError when
 *   a principal failed in a real run (after the others were audited and published). A dry run returns its
 *   summary, `ok: false` included, and never fails the invocation.
 */
export async function auditHandler(event: unknown, context: Context): Promise<AuditResult> {
  const runId = context.awsRequestId;
  logger.appendKeys({ runId });
  const invocation = parseInvocation(event, config.principals, config.principalPattern);
  const startedAt = Date.now();
  const budget = runBudget(context.getRemainingTimeInMillis());
  const work = Deadline.at(startedAt + budget.workMs, { label: "the run's work deadline" });
  const hardStop = Deadline.at(startedAt + budget.hardStopMs, { label: "the run's hard stop" });
  // One run at a time, whatever started it: a real run holds the lease until it returns (or, if it crashed, until
  // the invocation's timeout has long passed). A dry run writes nothing, the lease included.
  let leased = false;
  if (!invocation.dryRun) {
    const expiresAt = leaseExpiry(startedAt, context.getRemainingTimeInMillis());
    // A lease that cannot be read or written (S3 failing) does not stop the audit: the conditional writes still
    // refuse a concurrent writer, and the principals then fail (and are told) as S3 fails them.
    const lease = await store
      .acquireLease({ runId, expiresAt }, new Date(), { signal: work.signal })
      .catch((error: unknown) => {
        // A lease that exists but cannot be read: another run may hold it, so this one fails loudly instead.
        if (error instanceof LeaseHeldError) {
          work.dispose();
          hardStop.dispose();
          throw error;
        }
        logger.warn('could not take the run lease; auditing without it', { error });
        return undefined;
      });
    if (lease !== undefined && !lease.acquired) {
      work.dispose();
      hardStop.dispose();
      return { ...toAuditResult(emptySummary(runId, startedAt)), skipped: skippedFor(lease.holder, logger) };
    }
    leased = lease !== undefined;
  }
  try {
    const run = runAudit(
      { bigstate, store, channels, logger, secret, directory: bigstate },
      {
        runId,
        principals: invocation.principals,
        host: config.host,
        pattern: config.pattern,
        maxKeyAgeDays: config.maxKeyAgeDays,
        // Discovery on full runs; a subset audits just the principals it names.
        principalPattern: invocation.full ? config.principalPattern : undefined,
        dryRun: invocation.dryRun,
        deadline: work,
        hardStop,
      },
    );
    // No work of the run outlives the invocation (a warm container's next one): see settleOrExit.
    const summary = await settleOrExit(run, hardStop, { logger, metrics });
    addRunMetrics(metrics, summary);
    // A full real run leaves an inventory report next to the states (a subset run would show only its part).
    if (invocation.full) {
      await writeReport(summary, {
        store,
        logger,
        host: config.host,
        maxKeyAgeDays: config.maxKeyAgeDays,
        remainingMs: hardStop.remainingMs(),
      });
    }
    const result = toAuditResult(summary, MAX_NAMES_IN_RESPONSE);
    logger.info('audit result', { trigger: invocation.trigger, result });
    if (!summary.dryRun) assertAuditSucceeded(summary);
    return result;
  } finally {
    if (leased) await releaseRunLease(store, runId, logger);
    work.dispose();
    hardStop.dispose();
  }
}

/** The summary of a run that did no audit. */
function emptySummary(runId: string, startedAt: number): AuditSummary {
  const at = new Date(startedAt).toISOString();
  return { runId, dryRun: false, startedAt: at, finishedAt: at, durationMs: 0, principals: [], ok: true };
}

export const handler = middy(auditHandler, { timeoutEarlyInMillis: MIDDY_EARLY_TIMEOUT_MS })
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
