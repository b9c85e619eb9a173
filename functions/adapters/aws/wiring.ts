/**
 * The AWS side of the audit, built once per cold start and shared by every handler (the audit function and the
 * fan-out's plan, worker and finish steps): the secret, the BigState client, the S3 store and the notice channels.
 *
 * The SNS and EventBridge clients are loaded only when a notice goes out: most runs find no change and publish
 * nothing, and those two SDK modules are a large part of a cold start (measured in `npm run bench`). Their
 * `import()` is dynamic, so the bundle's external `@aws-sdk/*` imports for them are not hoisted to load time.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { BigStateClient, type BigStateLogger } from '../../bigstate/client.js';
import type { LambdaConfig } from '../../commons/config.js';
import { type Deadline, settleBy } from '../../commons/deadline.js';
import type { CallOptions, Notice, NoticeChannel } from '../../core/ports.js';
import { EventBridgePublisher } from './eventbridge-publisher.js';
import { assertConditionalWrites, S3SnapshotStore } from './s3-store.js';
import { SecretsManagerSecretSource } from './secrets-manager.js';
import { SnsPublisher } from './sns-publisher.js';

/** Every AWS call has its own timeouts besides the run's deadline (which each call also gets as abortSignal). */
export const REQUEST_HANDLER = { connectionTimeout: 3_000, requestTimeout: 10_000 } as const;

/** What a handler talks to. */
export interface AwsWiring {
  readonly secret: SecretsManagerSecretSource;
  readonly bigstate: BigStateClient;
  readonly store: S3SnapshotStore;
  /** The store's S3 client, for the fan-out's run files (one client per sandbox). */
  readonly s3: S3Client;
  readonly channels: readonly NoticeChannel[];
}

/** A channel whose client is created on its first notice. */
function lazyChannel(name: string, load: () => Promise<NoticeChannel>): NoticeChannel {
  let loaded: Promise<NoticeChannel> | undefined;
  return {
    name,
    async publish(notice: Notice, options?: CallOptions) {
      loaded ??= load().catch((error: unknown) => {
        loaded = undefined;
        throw error;
      });
      return (await loaded).publish(notice, options);
    },
  };
}

/**
 * Builds the AWS side from the configuration. Checks, offline, that the S3 client in use sends `If-Match` and
 * `If-None-Match` (the runtime's SDK is used, not bundled: one that dropped them would make every conditional
 * write unconditional).
 * @throws StorageError when it does not.
 */
export async function awsWiring(config: LambdaConfig, logger: BigStateLogger): Promise<AwsWiring> {
  await assertConditionalWrites();
  const secret = new SecretsManagerSecretSource(
    new SecretsManagerClient({ requestHandler: REQUEST_HANDLER }),
    config.secretId,
  );
  const bigstate = new BigStateClient({
    host: config.host,
    apiKey: secret.getApiKey,
    logger,
    // BIGSTATE_MAX_REQUESTS_IN_FLIGHT: the run's cap (single mode), or a worker's share of it (fan-out).
    maxConnections: config.maxRequestsInFlight,
  });
  const s3 = new S3Client({ requestHandler: REQUEST_HANDLER });
  const store = new S3SnapshotStore(s3, config.bucketName);
  const channels = [
    lazyChannel('sns', async () => {
      const { SNSClient } = await import('@aws-sdk/client-sns');
      return new SnsPublisher(new SNSClient({ requestHandler: REQUEST_HANDLER }), config.topicArn);
    }),
    lazyChannel('events', async () => {
      const { EventBridgeClient } = await import('@aws-sdk/client-eventbridge');
      return new EventBridgePublisher(
        new EventBridgeClient({ requestHandler: REQUEST_HANDLER }),
        config.eventBusName,
      );
    }),
  ];
  return { secret, bigstate, store, s3, channels };
}

/** What {@link settleOrExit} tells and flushes before it ends the process. */
export interface OverrunReporting {
  readonly logger: { critical(message: string): void };
  readonly metrics: { publishStoredMetrics(): void };
}

/**
 * Awaits a run's work. Every call honours the run's deadlines, so it has stopped by the hard stop; were some work
 * still under way, returning would leave it running in the warm container, into the next invocation. So the
 * process ends instead (Lambda then starts a fresh sandbox), after a critical log line and the stored metrics.
 * Every handler that runs an audit (the audit function, the fan-out worker) awaits its run through this.
 */
export function settleOrExit<T>(
  run: Promise<T>,
  hardStop: Deadline,
  reporting: OverrunReporting,
  exit: (code: number) => void = (code) => process.exit(code),
): Promise<T> {
  return settleBy(run, hardStop, () => {
    reporting.logger.critical(
      'the run did not stop by its hard stop: ending the process so no work outlives it',
    );
    reporting.metrics.publishStoredMetrics();
    exit(1);
  });
}
