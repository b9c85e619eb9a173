import { describe, expect, it } from 'vitest';
import { parseApiKeySecret } from '../../functions/commons/api-key.js';
import { SecretError } from '../../functions/commons/errors.js';

const SOURCE = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate-AbCdEf';
const EXPECTED = 'expected the raw API key or JSON {"apiKey": "..."}';

/** The SecretError a secret text is refused with; asserts it names the source and not `secretValue`. */
function refusal(text: string | undefined, secretValue?: string): SecretError {
  try {
    parseApiKeySecret(SOURCE, text);
  } catch (error) {
    expect(error).toBeInstanceOf(SecretError);
    const secretError = error as SecretError;
    expect(secretError.secretId).toBe(SOURCE);
    expect(secretError.message).toContain(SOURCE);
    if (secretValue !== undefined) {
      expect(secretError.message).not.toContain(secretValue);
      expect(JSON.stringify({ ...secretError, message: secretError.message })).not.toContain(secretValue);
      expect(String(secretError.stack)).not.toContain(secretValue);
    }
    return secretError;
  }
  throw new Error('expected parseApiKeySecret to throw');
}

describe('parseApiKeySecret', () => {
  it('takes the raw key', () => {
    expect(parseApiKeySecret(SOURCE, 'bsk_Live-8f2K9q')).toBe('bsk_Live-8f2K9q');
  });

  it('takes JSON {"apiKey": ...}, ignoring other fields', () => {
    expect(parseApiKeySecret(SOURCE, '{"apiKey":"bsk_Live-8f2K9q","note":"rotated"}')).toBe(
      'bsk_Live-8f2K9q',
    );
  });

  it('trims white space around the raw key, the JSON and the key inside it', () => {
    expect(parseApiKeySecret(SOURCE, '  bsk_raw\n')).toBe('bsk_raw');
    expect(parseApiKeySecret(SOURCE, '\n { "apiKey": "  bsk_json \\n" } \n')).toBe('bsk_json');
  });

  it('takes every visible ASCII character in a key', () => {
    const visible = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i))
      .join('')
      .replace('{', '');
    expect(parseApiKeySecret(SOURCE, visible)).toBe(visible);
  });

  it('refuses a secret without a SecretString', () => {
    expect(refusal(undefined).message).toBe(`secret ${SOURCE} has no SecretString: ${EXPECTED}`);
  });

  it('refuses an empty or blank raw key', () => {
    expect(refusal('').message).toBe(`secret ${SOURCE} holds an empty API key: ${EXPECTED}`);
    expect(refusal('  \n ').message).toBe(`secret ${SOURCE} holds an empty API key: ${EXPECTED}`);
  });

  it('refuses an empty apiKey in JSON (the placeholder the stack creates)', () => {
    expect(refusal('{"apiKey": ""}').message).toBe(`secret ${SOURCE} holds an empty API key: ${EXPECTED}`);
    expect(refusal('{"apiKey": "   "}').message).toBe(`secret ${SOURCE} holds an empty API key: ${EXPECTED}`);
  });

  it('refuses JSON without apiKey, never showing the other fields', () => {
    const error = refusal('{"api_key":"sk-Distinctive-4711"}', 'sk-Distinctive-4711');
    expect(error.message).toBe(`secret ${SOURCE} is JSON without a string "apiKey": ${EXPECTED}`);
  });

  it('refuses a non-string apiKey, never showing it', () => {
    expect(refusal('{"apiKey":987654321987}', '987654321987').message).toBe(
      `secret ${SOURCE} is JSON without a string "apiKey": ${EXPECTED}`,
    );
    expect(refusal('{"apiKey":{"value":"sk-Nested-0815"}}', 'sk-Nested-0815').message).toContain(
      'without a string "apiKey"',
    );
    expect(refusal('{"apiKey":null}').message).toContain('without a string "apiKey"');
  });

  it('refuses JSON that does not parse, never showing it', () => {
    const error = refusal('{"apiKey":"sk-Broken-1234"', 'sk-Broken-1234');
    expect(error.message).toBe(`secret ${SOURCE} looks like JSON but does not parse: ${EXPECTED}`);
    expect(error.cause).toBeUndefined();
  });

  it('refuses a key with white space or non-ASCII characters inside, never showing it', () => {
    const message = `secret ${SOURCE} holds an API key with spaces or non-ASCII characters: ${EXPECTED}`;
    expect(refusal('sk-Two Words-99', 'sk-Two Words-99').message).toBe(message);
    expect(refusal('{"apiKey":"sk-Tab\\tInside"}', 'Inside').message).toBe(message);
    expect(refusal('sk-Ümlaut-77', 'sk-Ümlaut-77').message).toBe(message);
    expect(refusal('sk-Line\nBreak-55', 'Break-55').message).toBe(message);
  });

  it('reads only a text starting with { as JSON: anything else visible is the raw key', () => {
    expect(parseApiKeySecret(SOURCE, '["sk-In-Array"]')).toBe('["sk-In-Array"]');
    expect(parseApiKeySecret(SOURCE, '"quoted"')).toBe('"quoted"');
  });
});
