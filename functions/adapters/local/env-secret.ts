/**
 * The CLI's API key: an environment variable, read afresh on every refresh.
 */
import { parseApiKeySecret } from '../../commons/api-key.js';
import { API_KEY_VARIABLE } from '../../commons/config.js';
import { SecretError } from '../../commons/errors.js';
import type { SecretSource } from '../../core/ports.js';

const SOURCE = `environment variable ${API_KEY_VARIABLE}`;

/** A SecretSource over a function returning the variable's current value. */
export function environmentSecretSource(read: () => string | undefined): SecretSource {
  return {
    getApiKey: async () => {
      const value = read();
      if (value === undefined || value.trim() === '') {
        throw new SecretError(SOURCE, `${SOURCE} is not set: export the BigState API key in it`);
      }
      return parseApiKeySecret(SOURCE, value);
    },
  };
}
