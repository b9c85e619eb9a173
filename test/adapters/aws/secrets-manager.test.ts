import './support.js';
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { SecretsManagerSecretSource } from '../../../functions/adapters/aws/secrets-manager.js';
import { SecretError, TimeBudgetError } from '../../../functions/commons/errors.js';

const SECRET = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate-AbCdEf';
const sm = mockClient(SecretsManagerClient);
const client = new SecretsManagerClient({ region: 'eu-central-1' });

beforeEach(() => {
  sm.reset();
});

/** A source with a clock the test moves. */
function source(ttlMs?: number) {
  const clock = { now: 0 };
  const secret = new SecretsManagerSecretSource(client, SECRET, {
    ...(ttlMs === undefined ? {} : { ttlMs }),
    now: () => clock.now,
  });
  return { secret, clock };
}

async function failure(promise: Promise<unknown>): Promise<SecretError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SecretError);
    return error as SecretError;
  }
  throw new Error('expected a rejection');
}

describe('SecretsManagerSecretSource', () => {
  it('reads the secret by its id and extracts the key (raw or JSON)', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: '{"apiKey":"bsk_json-1"}' });
    const { secret } = source();
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('bsk_json-1');
    expect(sm).toReceiveCommandExactlyOnceWith(GetSecretValueCommand, { SecretId: SECRET });

    sm.on(GetSecretValueCommand).resolves({ SecretString: 'bsk_raw-2' });
    await expect(source().secret.getApiKey({ refresh: false })).resolves.toBe('bsk_raw-2');
  });

  it('reuses the key within its time to live, and reads again once it expired', async () => {
    sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'key-1' }).resolves({ SecretString: 'key-2' });
    const { secret, clock } = source(1_000);
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('key-1');
    clock.now = 999;
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('key-1');
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 1);
    clock.now = 1_000;
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('key-2');
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('keeps a key for 15 minutes by default', async () => {
    sm.on(GetSecretValueCommand).resolvesOnce({ SecretString: 'key-1' }).resolves({ SecretString: 'key-2' });
    const { secret, clock } = source();
    await secret.getApiKey({ refresh: false });
    clock.now = 15 * 60_000 - 1;
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('key-1');
    clock.now = 15 * 60_000;
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('key-2');
  });

  it('uses the system clock by default', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'key-1' });
    const secret = new SecretsManagerSecretSource(client, SECRET);
    await secret.getApiKey({ refresh: false });
    await secret.getApiKey({ refresh: false });
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 1);
  });

  it('reads the secret again on refresh (a rotated key after a 401) and caches the new key', async () => {
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'old-key' })
      .resolves({ SecretString: 'new-key' });
    const { secret } = source();
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('old-key');
    await expect(secret.getApiKey({ refresh: true })).resolves.toBe('new-key');
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('new-key');
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('shares one read among concurrent refreshes, and reads afresh after it settled', async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    sm.on(GetSecretValueCommand).callsFake(async () => {
      calls += 1;
      const value = `key-${calls}`;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { SecretString: value };
    });
    const { secret } = source();
    const pending = [
      secret.getApiKey({ refresh: true }),
      secret.getApiKey({ refresh: true }),
      secret.getApiKey({ refresh: false }),
    ];
    await new Promise((resolve) => setImmediate(resolve));
    release?.();
    await expect(Promise.all(pending)).resolves.toEqual(['key-1', 'key-1', 'key-1']);
    expect(calls).toBe(1);

    const next = secret.getApiKey({ refresh: true });
    await new Promise((resolve) => setImmediate(resolve));
    release?.();
    await expect(next).resolves.toBe('key-2');
    expect(calls).toBe(2);
  });

  it('names the secret when it cannot be read, and forgets the cached key', async () => {
    const cause = new ResourceNotFoundException({
      message: "Secrets Manager can't find the specified secret.",
      $metadata: { httpStatusCode: 400 },
    });
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'cached-key' })
      .rejectsOnce(cause)
      .resolves({ SecretString: 'later-key' });
    const { secret } = source();
    await secret.getApiKey({ refresh: false });

    const error = await failure(secret.getApiKey({ refresh: true }));
    expect(error.name).toBe('SecretError');
    expect(error.secretId).toBe(SECRET);
    expect(error.message).toBe(
      `could not read secret ${SECRET}: Secrets Manager can't find the specified secret.`,
    );
    expect(error.cause).toBe(cause);
    // The failed read dropped the cache: the next call reads again instead of serving the old key.
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('later-key');
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 3);
  });

  it('forgets the cached key when the secret now holds no usable key', async () => {
    sm.on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'old-key' })
      .resolvesOnce({ SecretString: '{"apiKey": ""}' })
      .resolves({ SecretString: 'fixed-key' });
    const { secret } = source();
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('old-key');
    await failure(secret.getApiKey({ refresh: true }));
    // Not the old key from the cache: the secret is read again.
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('fixed-key');
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 3);
  });

  it('a failed shared read fails every waiter, and the next call tries again', async () => {
    sm.on(GetSecretValueCommand).rejectsOnce(new Error('throttled')).resolves({ SecretString: 'k' });
    const { secret } = source();
    const results = await Promise.allSettled([
      secret.getApiKey({ refresh: true }),
      secret.getApiKey({ refresh: true }),
    ]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 1);
    await expect(secret.getApiKey({ refresh: false })).resolves.toBe('k');
  });

  it.each([
    ['an empty key', '{"apiKey": ""}', 'holds an empty API key'],
    ['JSON without apiKey', '{"key":"sk-Distinct-7781"}', 'is JSON without a string "apiKey"'],
    ['a key with a space', 'sk-Has Space-9902', 'holds an API key with spaces or non-ASCII characters'],
    ['broken JSON', '{"apiKey":"sk-Broken-3321"', 'looks like JSON but does not parse'],
  ])('refuses a secret holding %s, naming the secret and never the value', async (_what, text, says) => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: text });
    const error = await failure(source().secret.getApiKey({ refresh: false }));
    expect(error.secretId).toBe(SECRET);
    expect(error.message).toContain(`secret ${SECRET} ${says}`);
    for (const part of text.match(/sk-[\w ]+-\d+/g) ?? []) {
      expect(error.message).not.toContain(part);
      expect(String(error.stack)).not.toContain(part);
    }
  });

  it('refuses a binary-only secret (no SecretString)', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretBinary: new Uint8Array([1, 2, 3]) });
    const error = await failure(source().secret.getApiKey({ refresh: false }));
    expect(error.message).toBe(
      `secret ${SECRET} has no SecretString: expected the raw API key or JSON {"apiKey": "..."}`,
    );
  });

  it('hands the signal to the read, and says the deadline ended a read it aborted', async () => {
    const signal = new AbortController().signal;
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'k' });
    await source().secret.getApiKey({ refresh: false, signal });
    expect((sm.commandCalls(GetSecretValueCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: signal,
    });

    const controller = new AbortController();
    const reason = new TimeBudgetError("the run's work deadline ended");
    controller.abort(reason);
    sm.on(GetSecretValueCommand).rejects(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
    const error = await failure(source().secret.getApiKey({ refresh: true, signal: controller.signal }));
    expect(error.message).toBe(`could not read secret ${SECRET}: the run's work deadline ended`);
    expect(error.cause).toBe(reason);
  });

  it('reads without a signal when none is given', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'k' });
    await source().secret.getApiKey({ refresh: false });
    expect((sm.commandCalls(GetSecretValueCommand)[0]?.args as unknown[] | undefined)?.[1]).toEqual({
      abortSignal: undefined,
    });
  });
});
