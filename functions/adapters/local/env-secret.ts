/**
 * The CLI's API key: an environment variable, read afresh on every refresh.
 */
import { parseApiKeySecret } from '../../commons/api-key.js';
import { API_KEY_VARIABLE } from '../../commons/config.js';
import type { SecretSource } from '../../core/ports.js';

/** A SecretSource over a function returning the variable's current value. */
export function environmentSecretSource(read: () => string | undefined): SecretSource {
  return {
    getApiKey: async () => parseApiKeySecret(`environment variable ${API_KEY_VARIABLE}`, read()),
  };
}
