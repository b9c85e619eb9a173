/**
 * The Lambda: middleware around a plain function that wires the audit core to AWS. Configuration is read
 * and the clients are built once, at cold start.
 */

import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { EventBridgePublisher } from './adapters/aws/eventbridge-publisher.js';
import { addRunMetrics } from './adapters/aws/metrics.js';
import { S3SnapshotStore } from './adapters/aws/s3-store.js';
import { SecretsManagerSecretSource } from './adapters/aws/secrets-manager.js';
import { SnsPublisher } from './adapters/aws/sns-publisher.js';
import { BigStateClient } from './bigstate/client.js';
import { loadLambdaConfig } from './commons/config.js';
import { assertAuditSucceeded, runAudit } from './core/audit.js';
import { fanOut } from './core/fan-out.js';
import { parseInvocation } from './core/invocation.js';
import { type AuditResult, toAuditResult } from './core/result.js';

const config = loadLambdaConfig();
const logger = new Logger();
const metrics = new Metrics();
const secret = new SecretsManagerSecretSource(new SecretsManagerClient({}), config.secretId);
const bigstate = new BigStateClient({ host: config.host, apiKey: secret.getApiKey, logger });
const store = new S3SnapshotStore(new S3Client({}), config.bucketName);
const publisher = fanOut([
  new SnsPublisher(new SNSClient({}), config.topicArn),
  new EventBridgePublisher(new EventBridgeClient({}), config.eventBusName),
]);

/** Names listed per principal in the response (Lambda responses are limited to 6 MB). */
const MAX_NAMES_IN_RESPONSE = 1000;

/**
 * Time kept back from the walks for publishing, storing and failing loudly before Lambda's own timeout:
 * a fifth of what is left, at least 1 s and at most 30 s. Whole milliseconds: `AbortSignal.timeout` throws a
 * RangeError for a fraction.
 */
export function walkBudgetMs(remainingMs: number): number {
  const reserve = Math.min(30_000, Math.max(1_000, Math.ceil(remainingMs / 5)));
  return Math.max(0, Math.floor(remainingMs - reserve));
}

/**
 * One invocation: a scheduled or manual run over the configured principals.
 * @throws InvalidRequestError for a malformed payload (before any BigState call), AuditRunFailedError when
 *   a principal failed (after the others were audited and published).
 */
export async function auditHandler(event: unknown, context: Context): Promise<AuditResult> {
  const runId = context.awsRequestId;
  logger.appendKeys({ runId });
  const invocation = parseInvocation(event, config.principals);
  const budgetMs = walkBudgetMs(context.getRemainingTimeInMillis());
  const summary = await runAudit(
    { bigstate, store, publisher, logger },
    {
      runId,
      principals: invocation.principals,
      pattern: config.pattern,
      dryRun: invocation.dryRun,
      signal: AbortSignal.timeout(budgetMs),
      deadline: Date.now() + budgetMs,
    },
  );
  addRunMetrics(metrics, summary);
  const result = toAuditResult(summary, MAX_NAMES_IN_RESPONSE);
  logger.info('audit result', { trigger: invocation.trigger, result });
  assertAuditSucceeded(summary);
  return result;
}

export const handler = middy(auditHandler)
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }));
