import { describe, expect, it } from 'vitest';
import {
  ECHO_SCAN_CHARS,
  echoesSecret,
  MIN_SECRET_LENGTH,
  REDACTED,
  redactSecrets,
  withholdOrRedact,
} from '../../functions/commons/redact.js';

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

/** `&quot;`-style escaping of the HTML special characters, `'` as `&#39;`. */
const htmlEscape = (text: string) =>
  text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
const hex = (text: string) => Buffer.from(text, 'utf8').toString('hex');

/**
 * The forms of the red team's reports (which `redactSecrets` cannot point at), besides every form `redactSecrets`
 * handles: `echoesSecret` must see each.
 */
function echoForms(secret: string): Array<{ label: string; form: string }> {
  const url = encodeURIComponent;
  const list: Array<[string, string]> = [
    ['hex', hex(secret)],
    ['hex, upper case', hex(secret).toUpperCase()],
    ['hex of the upper-cased key', hex(secret.toUpperCase())],
    ['hex, wrapped over lines', hex(secret).replace(/(.{16})/g, '$1\n')],
    ['HTML-escaped', htmlEscape(secret)],
    ['HTML-escaped twice', htmlEscape(htmlEscape(secret))],
    ['HTML numeric entities, decimal', Array.from(secret, (c) => `&#${c.codePointAt(0)};`).join('')],
    [
      'HTML numeric entities, hex',
      Array.from(secret, (c) => `&#x${c.codePointAt(0)?.toString(16)};`).join(''),
    ],
    [
      'HTML5 named entities',
      secret.replace(/\+/g, '&plus;').replace(/\//g, '&sol;').replace(/=/g, '&equals;'),
    ],
    ['wrapped over two lines', `${secret.slice(0, 12)}\n ${secret.slice(12)}`],
    [
      'wrapped with CRLF and tabs',
      `${secret.slice(0, 5)}\r\n\t${secret.slice(5, 15)}\r\n\t${secret.slice(15)}`,
    ],
    ['spaced out character by character', Array.from(secret).join(' ')],
    ['triple percent-encoded', url(url(url(secret)))],
    ['four times percent-encoded', url(url(url(url(secret))))],
    ['JSON-escaped twice', JSON.stringify(JSON.stringify(secret)).slice(1, -1)],
    ['JSON-escaped three times', JSON.stringify(JSON.stringify(JSON.stringify(secret))).slice(1, -1)],
    ['JSON-escaped, then HTML-escaped', htmlEscape(JSON.stringify(secret))],
    ['HTML-escaped, then URL-encoded', url(htmlEscape(secret))],
    [
      'JavaScript \\x escapes',
      Array.from(secret, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    ],
    ['JavaScript \\u{} escapes', Array.from(secret, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`).join('')],
    ['base64 of the upper-cased key', base64(secret.toUpperCase())],
    ['base64 of the lower-cased key', base64(secret.toLowerCase())],
    ['base64 of the URL-encoded key', base64(url(secret))],
    ['base64url of the URL-encoded key', base64url(url(secret))],
    ['base64 of the JSON-escaped key', base64(JSON.stringify(secret))],
    ['base64, lower-cased', base64(secret).toLowerCase()],
    ['base64 of the HTML-escaped key', base64(htmlEscape(secret))],
    ['base64 of base64', base64(base64(secret))],
    [
      'base64, MIME-wrapped at 76',
      base64(`Authorization-Header-Dump: ${secret}${secret}`).replace(/(.{76})/g, '$1\r\n'),
    ],
    ['base64, wrapped at 20', base64(`Authorization-Header-Dump: ${secret}`).replace(/(.{20})/g, '$1\r\n')],
    ['base64, JSON-escaped slashes', base64(`xx${secret}`).replaceAll('/', '\\/')],
    ['base64 glued to a word', `token${base64(`:${secret}`)}`],
    ['quoted-printable', secret.replace(/=/g, '=3D')],
    ['reversed', Array.from(secret).reverse().join('')],
    [
      'full-width letters',
      Array.from(secret, (c) =>
        /[A-Za-z0-9]/.test(c) ? String.fromCodePoint(c.charCodeAt(0) + 0xfee0) : c,
      ).join(''),
    ],
    ['with zero-width spaces', Array.from(secret).join('\u200b')],
  ];
  return list.map(([label, form]) => ({ label, form }));
}

/** A different key of KEY's shape, sharing its first seven characters. */
const OTHER_KEY = 'sk-T3st-0ther/key+zz99';

/** A key like the red team's: `+ / = " \\ & < > '` and a distinctive tail. */
const RED_KEY = 'AbC+d/e=f"g\\h&i<j>k\'Lm9XyZ2024secretKEY';
/** The end-to-end red team's key: `\\t` in it, which a JSON decoder reads as a tab. */
const TAB_KEY = 'Kx9+vQ/7=Zp"M\\t2RwQ8sLq4N';

describe('echoesSecret', () => {
  describe.each([KEY, RED_KEY, TAB_KEY])('of the key %s', (secret) => {
    it.each([...forms(secret), ...echoForms(secret)])('sees it echoed $label', ({ form }) => {
      expect(echoesSecret(`invalid header: ${form} (rejected)`, [secret])).toBe(true);
      expect(echoesSecret(form, [secret])).toBe(true);
      // Also among other secrets, and as the second of them.
      expect(echoesSecret(`x-api-key=${form}`, ['tok-unrelated-1234', secret])).toBe(true);
    });

    it.each([3, 4, 5])('sees its base64 inside a longer blob after %i bytes, also MIME-wrapped', (before) => {
      const bytes = Buffer.concat([
        Buffer.from('user:'.slice(0, before)),
        Buffer.from(secret),
        Buffer.from('@t'),
      ]);
      for (const encoding of ['base64', 'base64url'] as const) {
        const blob = bytes.toString(encoding);
        expect(echoesSecret(`Authorization: Basic ${blob}`, [secret])).toBe(true);
        expect(echoesSecret(blob.replace(/(.{7})/g, '$1\n'), [secret])).toBe(true);
        expect(echoesSecret(blob.replace(/=+$/, ''), [secret])).toBe(true);
      }
    });
  });

  it('keeps what does not echo the key: plain descriptions, unrelated base64, hex and near misses', () => {
    const kept = [
      'Invalid request',
      'Invalid request: principal "svc a&b" may not list keys; see https://docs.example/errors#6',
      `blob ${base64('an unrelated blob of bytes that is long enough to decode')} end`,
      `MIME ${base64('x'.repeat(300)).replace(/(.{76})/g, '$1\r\n')}`,
      `trace ${hex('unrelated trace id 0123456789')} and 0x${'ab'.repeat(40)}`,
      `&quot;quoted&quot; &amp; &#x41;&#66; %2525 \\u0041 \\" ${'%'.repeat(50)} &#99999999; \\u{110000} %E9%ZZ`,
      // Another key of the same shape, sharing a short prefix, in several encodings.
      OTHER_KEY,
      hex(OTHER_KEY),
      base64(OTHER_KEY),
      encodeURIComponent(encodeURIComponent(OTHER_KEY)),
      // Half of the key or less: the other half is still to guess.
      KEY.slice(0, 12),
      KEY.slice(-12),
      '',
    ];
    for (const text of kept) expect(echoesSecret(text, [KEY, RED_KEY, TAB_KEY]), text).toBe(false);
    expect(echoesSecret(KEY, [])).toBe(false);
  });

  it('sees an echo the server cut: any run of more than half the key (at least 10 characters)', () => {
    for (const cut of [KEY.slice(0, -1), KEY.slice(0, 14), KEY.slice(-14), KEY.slice(5, 19)]) {
      for (const form of [
        cut,
        hex(cut),
        base64(`x-api-key: ${cut}`),
        encodeURIComponent(cut),
        htmlEscape(cut),
      ]) {
        expect(echoesSecret(`bad key ${form}…`, [KEY]), form).toBe(true);
      }
    }
    expect(echoesSecret('abcdefghi', ['abcdefghijkl'])).toBe(false);
    expect(echoesSecret('abcdefghij', ['abcdefghijkl'])).toBe(true);
  });

  it(`ignores secrets shorter than ${MIN_SECRET_LENGTH} characters, and forms that normalise to fewer`, () => {
    expect(echoesSecret('abc abc YWJj 616263', ['abc', '', 'x'])).toBe(false);
    // `\t\t\t\t` as written is found; read as JSON it is four tabs, white space that finds nothing.
    expect(echoesSecret('say \\t\\t\\t\\t here', ['\\t\\t\\t\\t'])).toBe(true);
    expect(echoesSecret('say \t\t\t\t here', ['\\t\\t\\t\\t'])).toBe(false);
    // A secret of white space alone normalises to nothing: it must not match every text.
    expect(echoesSecret('anything at all', ['    \t\t'])).toBe(false);
    expect(echoesSecret('x YWJjZA== y', ['abcd'])).toBe(true);
  });

  it(`examines only the first ${ECHO_SCAN_CHARS} characters, and stays fast on a huge or hostile body`, () => {
    expect(ECHO_SCAN_CHARS).toBe(8_192);
    const filler = 'x'.repeat(ECHO_SCAN_CHARS - KEY.length);
    expect(echoesSecret(`${filler}${KEY}`, [KEY])).toBe(true);
    // Only the key's first 6 characters fall in the window: they are not examined as the key.
    expect(echoesSecret(`${filler}${'y'.repeat(20)}${KEY}`, [KEY])).toBe(false);
    const hostile = [
      'A'.repeat(100_000),
      '%25'.repeat(40_000),
      '\\\\'.repeat(40_000),
      '&amp;'.repeat(30_000),
      `${base64('z'.repeat(60_000))}`,
      Array.from({ length: 10_000 }, (_, i) => `%25${i}&#${i};\\u00${i % 10}1 ${base64(String(i))}`).join(''),
    ];
    const started = performance.now();
    for (const body of hostile) expect(echoesSecret(body, [KEY, RED_KEY, 'tok-9f8e7d6c5b4a+/='])).toBe(false);
    // Loose: a few milliseconds each in practice; far below this even on a loaded machine.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('withholdOrRedact', () => {
  it('withholds a text that echoes a secret in any form, whole', () => {
    for (const { form } of [...forms(KEY), ...echoForms(KEY)]) {
      expect(withholdOrRedact(`bad key ${form} here`, [KEY])).toBe('(withheld: it echoed a secret)');
    }
    expect(withholdOrRedact(hex(KEY), [KEY], { withheld: '(gone)' })).toBe('(gone)');
    expect(withholdOrRedact(hex(KEY), [KEY], { withheld: (window) => `(${window.length})` })).toBe(
      `(${hex(KEY).length})`,
    );
  });

  it('keeps any other text, capped at maxLength (300 by default) and at the examined window', () => {
    expect(withholdOrRedact('Invalid request', [KEY])).toBe('Invalid request');
    expect(withholdOrRedact('x'.repeat(1_000), [KEY])).toBe(`${'x'.repeat(299)}…`);
    expect(withholdOrRedact('abcdef', [KEY], { maxLength: 4 })).toBe('abc…');
    // Past the window nothing is shown, also when the cap would allow more; and the cut is marked.
    const long = `${'x'.repeat(ECHO_SCAN_CHARS)}${KEY}`;
    expect(withholdOrRedact(long, [KEY], { maxLength: Number.POSITIVE_INFINITY })).toBe(
      `${'x'.repeat(ECHO_SCAN_CHARS)}…`,
    );
    expect(withholdOrRedact(long, [KEY], { maxLength: ECHO_SCAN_CHARS })).toBe(
      `${'x'.repeat(ECHO_SCAN_CHARS - 1)}…`,
    );
  });
});
