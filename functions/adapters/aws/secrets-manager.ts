/**
 * The BigState API key from Secrets Manager, cached in the warm container and re-read on demand (after a
 * 401) so a rotated key is picked up without a cold start.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseApiKeySecret } from '../../commons/api-key.js';
import { abortedBy, describeError, SecretError } from '../../commons/errors.js';
import type { SecretSource } from '../../core/ports.js';

/** Options of {@link SecretsManagerSecretSource}. */
export interface SecretsManagerSecretSourceOptions {
  /** How long a read key is reused without a 401. @default 15 minutes */
  readonly ttlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** A SecretSource reading one secret; concurrent reads share one call. */
export class SecretsManagerSecretSource implements SecretSource {
  readonly #client: SecretsManagerClient;
  readonly #secretId: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #cached: { key: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(
    client: SecretsManagerClient,
    secretId: string,
    options: SecretsManagerSecretSourceOptions = {},
  ) {
    this.#client = client;
    this.#secretId = secretId;
    this.#ttlMs = options.ttlMs ?? 15 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /**
   * The key; `refresh` skips the cache.
   * @throws SecretError naming the secret (never its value) when it cannot be read or holds no usable key.
   */
  readonly getApiKey = async ({
    refresh,
    signal,
  }: {
    readonly refresh: boolean;
    /** Ends the read (the run's deadline); a read shared by several callers ends with the first one's. */
    readonly signal?: AbortSignal | undefined;
  }): Promise<string> => {
    if (!refresh && this.#cached && this.#cached.expiresAt > this.#now()) return this.#cached.key;
    // Principals walked at once may all see the same 401: one read serves them all.
    this.#pending ??= this.#read(signal).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  };

  async #read(abortSignal: AbortSignal | undefined): Promise<string> {
    let secretString: string | undefined;
    try {
      const response = await this.#client.send(new GetSecretValueCommand({ SecretId: this.#secretId }), {
        abortSignal,
      });
      secretString = response.SecretString;
    } catch (error) {
      this.#cached = undefined;
      const cause = abortedBy(abortSignal, error);
      throw new SecretError(
        this.#secretId,
        `could not read secret ${this.#secretId}: ${describeError(cause)}`,
        {
          cause,
        },
      );
    }
    let key: string;
    try {
      key = parseApiKeySecret(this.#secretId, secretString);
    } catch (error) {
      // A secret that no longer holds a usable key must not leave the old one in use.
      this.#cached = undefined;
      throw error;
    }
    this.#cached = { key, expiresAt: this.#now() + this.#ttlMs };
    return key;
  }
}
