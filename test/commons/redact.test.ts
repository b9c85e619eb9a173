import { describe, expect, it } from 'vitest';
import { MIN_SECRET_LENGTH, REDACTED, redactSecrets } from '../../functions/commons/redact.js';

/** A key with every character that changes under some encoding: `+ / = " \` and a dash. */
const KEY = 'sk-T3st+/="\\key-0123456789';

/** Percent-encodes every UTF-8 byte, unreserved ones included, in the given hex case. */
function percentAll(text: string, lower = false): string {
  const hex = [...Buffer.from(text, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`);
  return lower ? hex.join('').toLowerCase() : hex.join('');
}

/** `\uXXXX` for every UTF-16 unit. */
function jsonUnicodeAll(text: string, lower = false): string {
  return Array.from({ length: text.length }, (_, i) => {
    const hex = text.charCodeAt(i).toString(16).padStart(4, '0');
    return `\\u${lower ? hex : hex.toUpperCase()}`;
  }).join('');
}

const json = (text: string) => JSON.stringify(text).slice(1, -1);
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const base64url = (text: string) => Buffer.from(text, 'utf8').toString('base64url');

/** The forms a server could echo a secret in (label and text). */
function forms(secret: string): Array<{ label: string; form: string }> {
  const list: Array<[string, string]> = [
    ['raw', secret],
    ['upper-cased', secret.toUpperCase()],
    ['lower-cased', secret.toLowerCase()],
    ['encodeURIComponent', encodeURIComponent(secret)],
    [
      'encodeURIComponent, lower-case hex',
      encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    ],
    ['form-encoded (URLSearchParams)', new URLSearchParams({ v: secret }).toString().slice(2)],
    ['every byte percent-encoded', percentAll(secret)],
    ['every byte percent-encoded, lower-case hex', percentAll(secret, true)],
    ['encoded twice', encodeURIComponent(encodeURIComponent(secret))],
    ['encodeURI', encodeURI(secret)],
    ['upper-cased, then URL-encoded', encodeURIComponent(secret.toUpperCase())],
    ['JSON-escaped', json(secret)],
    ['JSON-escaped with \\/', json(secret).replaceAll('/', '\\/')],
    ['JSON \\u escapes', jsonUnicodeAll(secret)],
    ['JSON \\u escapes, lower-case hex', jsonUnicodeAll(secret, true)],
    ['JSON-escaped, then URL-encoded', encodeURIComponent(json(secret))],
    ['base64', base64(secret)],
    ['base64 unpadded', base64(secret).replace(/=+$/, '')],
    ['base64url', base64url(secret)],
    ['base64url padded', `${base64url(secret)}${'='.repeat((4 - (base64url(secret).length % 4)) % 4)}`],
    ['base64, then URL-encoded', encodeURIComponent(base64(secret))],
  ];
  // Mixed: every other character percent-encoded.
  list.push([
    'raw and percent-encoded characters mixed',
    Array.from(secret, (c, i) => (i % 2 === 0 ? percentAll(c) : c)).join(''),
  ]);
  return list.map(([label, form]) => ({ label, form }));
}

describe('redactSecrets', () => {
  it.each(forms(KEY))('redacts the key echoed $label: $form', ({ form }) => {
    const redacted = redactSecrets(`bad key "${form}" in request`, [KEY]);
    expect(redacted).toBe(`bad key "${REDACTED}" in request`);
    for (const { form: other } of forms(KEY)) expect(redacted).not.toContain(other);
  });

  it.each([3, 4, 5])(
    'redacts the base64 of the key inside a longer base64 blob, after %i bytes (each alignment)',
    (before) => {
      const prefix = Buffer.from('user:'.slice(0, before));
      const bytes = Buffer.concat([prefix, Buffer.from(KEY), Buffer.from('@tail-bytes')]);
      for (const encoding of ['base64', 'base64url'] as const) {
        const blob = bytes.toString(encoding);
        const redacted = redactSecrets(`Authorization: Basic ${blob}`, [KEY]);
        // Only the characters that also carry bits of the neighbouring bytes are left on either side.
        const kept = {
          left: blob.slice(0, Math.ceil((before * 4) / 3)),
          right: blob.slice(Math.floor(((before + KEY.length) * 4) / 3)),
        };
        expect(redacted).toBe(`Authorization: Basic ${kept.left}REDACTED${kept.right}`);
        // Those carry no more than a few bits of the key: the key's first bytes are not among them.
        expect(Buffer.from(kept.left, 'base64').toString('latin1')).not.toContain(KEY.slice(0, 2));
      }
    },
  );

  it('redacts every occurrence, in several forms in one text', () => {
    const text = `a=${KEY}&b=${encodeURIComponent(KEY)}&c=${base64(KEY)}&d=${KEY.toUpperCase()}&e=${KEY}`;
    expect(redactSecrets(text, [KEY], { maxLength: Number.POSITIVE_INFINITY })).toBe(
      'a=REDACTED&b=REDACTED&c=REDACTED&d=REDACTED&e=REDACTED',
    );
  });

  it('redacts several secrets, the longer first when one contains the other', () => {
    const token = 'tok-abcdef';
    const longer = `${token}-and-more`;
    expect(redactSecrets(`${longer} ${token} ${base64(token)}`, [token, longer, KEY])).toBe(
      'REDACTED REDACTED REDACTED',
    );
  });

  it('redacts secrets holding a space, a percent sign or characters beyond ASCII', () => {
    for (const secret of ['pass word 42', '100%sure-key', 'pässwörd-Ünïcode-€', 'emoji-🔑-key']) {
      for (const { form } of forms(secret)) {
        expect(redactSecrets(`<${form}>`, [secret])).toBe('<REDACTED>');
      }
    }
    // Form encoding writes the space as `+`; a server that form-decodes turns a `+` into a space.
    expect(redactSecrets('x=pass+word+42', ['pass word 42'])).toBe('x=REDACTED');
    expect(redactSecrets('sk-T3st /="\\key-0123456789', [KEY])).toBe('REDACTED');
  });

  it(`does not search secrets shorter than ${MIN_SECRET_LENGTH} characters (they would match almost anything)`, () => {
    expect(MIN_SECRET_LENGTH).toBe(4);
    expect(redactSecrets('abc abc YWJj', ['abc', '', 'x'])).toBe('abc abc YWJj');
    expect(redactSecrets('abcd ABCD YWJjZA== x', ['abcd'])).toBe('REDACTED REDACTED REDACTED x');
  });

  it('leaves text without a secret as it is, including near misses', () => {
    const text = 'Invalid request: principal "svc a&b" has no key sk-T3st+/="\\key-012345678X';
    expect(redactSecrets(text, [KEY])).toBe(text);
    expect(redactSecrets('', [KEY])).toBe('');
    expect(redactSecrets('nothing secret', [])).toBe('nothing secret');
  });

  it('caps the text at 300 characters by default, the ellipsis included', () => {
    const capped = redactSecrets('x'.repeat(1_000), [KEY]);
    expect(capped).toHaveLength(300);
    expect(capped).toBe(`${'x'.repeat(299)}…`);
    expect(redactSecrets('x'.repeat(300), [])).toBe('x'.repeat(300));
    expect(redactSecrets('abcdef', [], { maxLength: 4 })).toBe('abc…');
    expect(redactSecrets('abcdef', [], { maxLength: 1 })).toBe('…');
    expect(redactSecrets('x'.repeat(5_000), [], { maxLength: Number.POSITIVE_INFINITY })).toHaveLength(5_000);
  });

  it('redacts before it caps, so a secret across the cut never leaves a prefix behind', () => {
    const text = `${'x'.repeat(290)}${KEY}${'y'.repeat(100)}`;
    const redacted = redactSecrets(text, [KEY]);
    expect(redacted).toBe(`${'x'.repeat(290)}REDACTED${'y'.repeat(1)}…`);
    expect(redacted).not.toContain(KEY.slice(0, 4));
  });

  it('does not split a surrogate pair at the cut', () => {
    expect(redactSecrets(`ab${'🔑'.repeat(3)}`, [], { maxLength: 4 })).toBe('ab…');
    expect(redactSecrets(`abc${'🔑'.repeat(3)}`, [], { maxLength: 6 })).toBe('abc🔑…');
  });

  it('reads only as much of a huge text as can reach the capped result', () => {
    const huge = `${'%'.repeat(2_000_000)}${KEY}`;
    const started = performance.now();
    expect(redactSecrets(huge, [KEY, '%%%%%%%%'])).toBe(`${'REDACTED'.repeat(37)}RED…`);
    expect(performance.now() - started).toBeLessThan(2_000);
    // With the whole text kept, every occurrence is still found.
    expect(
      redactSecrets(`${'z'.repeat(100_000)}${KEY}`, [KEY], { maxLength: Number.POSITIVE_INFINITY }),
    ).toBe(`${'z'.repeat(100_000)}REDACTED`);
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects maxLength %s', (maxLength) => {
    expect(() => redactSecrets('x', [], { maxLength })).toThrow(RangeError);
  });
});
