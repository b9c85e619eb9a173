import { describe, expect, it } from 'vitest';
import { environmentSecretSource } from '../../../functions/adapters/local/env-secret.js';
import { SecretError } from '../../../functions/commons/errors.js';

describe('environmentSecretSource', () => {
  it('returns the key from the variable, raw or as JSON', async () => {
    await expect(environmentSecretSource(() => ' bsk_local-1 ').getApiKey({ refresh: false })).resolves.toBe(
      'bsk_local-1',
    );
    await expect(
      environmentSecretSource(() => '{"apiKey":"bsk_json-2"}').getApiKey({ refresh: false }),
    ).resolves.toBe('bsk_json-2');
  });

  it('reads the variable afresh on every call, so a refresh sees a new value', async () => {
    let value = 'first-key';
    const source = environmentSecretSource(() => value);
    await expect(source.getApiKey({ refresh: false })).resolves.toBe('first-key');
    value = 'second-key';
    await expect(source.getApiKey({ refresh: true })).resolves.toBe('second-key');
  });

  it('names BIGSTATE_API_KEY when it is not set', async () => {
    const error = await environmentSecretSource(() => undefined)
      .getApiKey({ refresh: false })
      .catch((rejection: unknown) => rejection);
    expect(error).toBeInstanceOf(SecretError);
    expect((error as SecretError).secretId).toBe('environment variable BIGSTATE_API_KEY');
    expect((error as Error).message).toContain('environment variable BIGSTATE_API_KEY');
  });

  it('never shows an unusable value', async () => {
    const error: Error = await environmentSecretSource(() => 'sk-Local Space-3141')
      .getApiKey({ refresh: false })
      .then(
        () => new Error('expected a rejection'),
        (rejection: unknown) => rejection as Error,
      );
    expect(error).toBeInstanceOf(SecretError);
    expect(error.message).toContain('BIGSTATE_API_KEY');
    expect(error.message).not.toContain('sk-Local');
  });
});
