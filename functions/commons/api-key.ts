/**
 * What a usable BigState API key looks like, and how the secret holds it.
 */
import { SecretError } from './errors.js';

/** The shape the contract allows besides the raw key. */
const EXPECTED = 'expected the raw API key or JSON {"apiKey": "..."}';

/**
 * Extracts the API key from a secret's text: the raw key, or JSON `{"apiKey": "..."}`.
 * @throws SecretError naming `source` (never the value) for anything else, an empty key included.
 */
export function parseApiKeySecret(source: string, secretString: string | undefined): string {
  if (secretString === undefined) {
    throw new SecretError(source, `secret ${source} has no SecretString: ${EXPECTED}`);
  }
  const text = secretString.trim();
  let key: unknown = text;
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SecretError(source, `secret ${source} looks like JSON but does not parse: ${EXPECTED}`);
    }
    key =
      typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).apiKey : undefined;
    if (typeof key !== 'string') {
      throw new SecretError(source, `secret ${source} is JSON without a string "apiKey": ${EXPECTED}`);
    }
    key = key.trim();
  }
  if (key === '') throw new SecretError(source, `secret ${source} holds an empty API key: ${EXPECTED}`);
  // A header value must be visible ASCII; anything else would fail later in an error that might echo it.
  if (!/^[\x21-\x7e]+$/.test(key as string)) {
    throw new SecretError(
      source,
      `secret ${source} holds an API key with spaces or non-ASCII characters: ${EXPECTED}`,
    );
  }
  return key as string;
}
