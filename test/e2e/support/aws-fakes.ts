/**
 * Starts the four AWS fakes together and gives the environment that points an unmodified AWS SDK v3 at them
 * through the SDK's own endpoint settings.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UnknownCall } from './aws-fake-server.js';
import {
  type EventBridgeFake,
  type EventBridgeFakeOptions,
  startEventBridgeFake,
} from './eventbridge-fake.js';
import { type S3Fake, type S3FakeOptions, startS3Fake } from './s3-fake.js';
import { type SecretsManagerFake, startSecretsManagerFake } from './secrets-manager-fake.js';
import { type SnsFake, type SnsFakeOptions, startSnsFake } from './sns-fake.js';

/** Options of `startAwsFakes`. */
export interface AwsFakesOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  readonly s3?: S3FakeOptions;
  readonly sns?: SnsFakeOptions;
  readonly eventBridge?: EventBridgeFakeOptions;
}

/** The running fakes and the environment that reaches them. */
export interface AwsFakes {
  readonly s3: S3Fake;
  readonly secretsManager: SecretsManagerFake;
  readonly sns: SnsFake;
  readonly eventBridge: EventBridgeFake;
  /**
   * Variables to give a process (or `vi.stubEnv`) so the SDK's default chain finds dummy credentials, the region,
   * and each fake through `AWS_ENDPOINT_URL_<SERVICE>`, and never reads `~/.aws` or instance metadata.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Every fake's unknown calls; an end-to-end test asserts this is empty. */
  unknownCalls(): UnknownCall[];
  /** Clears every fake's injected failures. */
  recover(): void;
  close(): Promise<void>;
}

/** Starts S3, Secrets Manager, SNS and EventBridge fakes on 127.0.0.1. */
export async function startAwsFakes(options: AwsFakesOptions = {}): Promise<AwsFakes> {
  const region = options.region ?? 'us-east-1';
  const [s3, secretsManager, sns, eventBridge] = await Promise.all([
    startS3Fake(options.s3),
    startSecretsManagerFake({
      region,
      ...(options.accountId === undefined ? {} : { accountId: options.accountId }),
    }),
    startSnsFake(options.sns),
    startEventBridgeFake(options.eventBridge),
  ]);
  const nowhere = join(tmpdir(), 'aws-fakes-no-such-dir', 'none');
  const env: Record<string, string> = {
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    // Lambda's role credentials come with a session token; the SDK then signs with x-amz-security-token.
    AWS_SESSION_TOKEN: 'test',
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.endpoint,
    AWS_ENDPOINT_URL_SNS: sns.endpoint,
    AWS_ENDPOINT_URL_EVENTBRIDGE: eventBridge.endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
    // A developer's ~/.aws/config could carry endpoint_url, region or retry settings: keep it out.
    AWS_CONFIG_FILE: nowhere,
    AWS_SHARED_CREDENTIALS_FILE: nowhere,
  };
  const all = [s3, secretsManager, sns, eventBridge];
  return {
    s3,
    secretsManager,
    sns,
    eventBridge,
    env,
    unknownCalls: () => all.flatMap((fake) => fake.unknownCalls),
    recover: () => {
      for (const fake of all) {
        fake.recover();
      }
    },
    close: async () => {
      await Promise.all(all.map((fake) => fake.close()));
    },
  };
}
