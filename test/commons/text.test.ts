import { describe, expect, it } from 'vitest';
import {
  displayName,
  displayText,
  hasUnsafeCharacters,
  isPlainName,
  quotedName,
} from '../../functions/commons/text.js';
import { FORGED as FORGED_LINES, HOSTILE } from '../support/hostile.js';

/** The characters the contract names, written independently of the module's pattern. */
function shouldEscape(unit: number): boolean {
  return (
    unit <= 0x1f ||
    (unit >= 0x7f && unit <= 0x9f) ||
    unit === 0x061c ||
    unit === 0x200e ||
    unit === 0x200f ||
    unit === 0x2028 ||
    unit === 0x2029 ||
    (unit >= 0x202a && unit <= 0x202e) ||
    (unit >= 0x2066 && unit <= 0x2069) ||
    (unit >= 0xd800 && unit <= 0xdfff) // alone, every surrogate is a lone one
  );
}

/** A name that opens with a letter, then tries to forge lines of its own. */
const FORGED = `x${FORGED_LINES}`;

describe('displayText', () => {
  it('escapes exactly the characters of the contract, each as \\n, \\r, \\t or \\uXXXX', () => {
    for (let unit = 0; unit <= 0xffff; unit += 1) {
      const character = String.fromCharCode(unit);
      const shown = displayText(character);
      if (!shouldEscape(unit)) {
        expect(shown, `U+${unit.toString(16)}`).toBe(character);
        continue;
      }
      const short = { 10: '\\n', 13: '\\r', 9: '\\t' }[unit];
      expect(shown, `U+${unit.toString(16)}`).toBe(short ?? `\\u${unit.toString(16).padStart(4, '0')}`);
    }
  });

  it('keeps a surrogate pair (an emoji, a letter outside the BMP) and escapes a lone half', () => {
    expect(displayText('key 😀 𝒳')).toBe('key 😀 𝒳');
    expect(displayText('a\ud83d')).toBe('a\\ud83d');
    expect(displayText('\ude00b')).toBe('\\ude00b');
    // The halves in the wrong order are two lone surrogates, not a pair.
    expect(displayText('\ude00\ud83d')).toBe('\\ude00\\ud83d');
    expect(displayText('\ud83d\ud83d\ude00')).toBe('\\ud83d😀');
  });

  it('leaves quotes and backslashes as they are, and adds no quotes', () => {
    expect(displayText('GET /v1/principal?name="a\\b" -> 400')).toBe('GET /v1/principal?name="a\\b" -> 400');
  });

  it('keeps forged lines on one line', () => {
    expect(displayText(FORGED)).toBe('x\\nChange id: chg-forged\\nNo keys were removed.');
    expect(displayText('a\r\n\u2028\u2029\u0085\u000b\u000c')).toBe(
      'a\\r\\n\\u2028\\u2029\\u0085\\u000b\\u000c',
    );
  });

  it.each(HOSTILE)('never lets %s through', (_label, hostile) => {
    const shown = displayText(`before${hostile}after`);
    expect(hasUnsafeCharacters(shown)).toBe(false);
    expect(shown).not.toContain(hostile);
    expect(shown.startsWith('before')).toBe(true);
    expect(shown.endsWith('after')).toBe(true);
  });
});

describe('quotedName', () => {
  it('is a JSON string literal that gives back every name exactly', () => {
    const everything = Array.from({ length: 0x10000 }, (_, unit) => String.fromCharCode(unit)).join('');
    for (const name of [everything, '', 'root', '"', '\\', FORGED, ...HOSTILE.map(([, text]) => text)]) {
      const quoted = quotedName(name);
      expect(JSON.parse(quoted)).toBe(name);
      expect(hasUnsafeCharacters(quoted)).toBe(false);
      expect(quoted.startsWith('"') && quoted.endsWith('"')).toBe(true);
    }
  });

  it('is what JSON.stringify writes for names JSON.stringify already makes safe', () => {
    for (const name of ['root', 'svc "a" & b', 'a\\b', 'tab\there', FORGED, 'nul\u0000', 'zürich 日本 😀']) {
      expect(quotedName(name)).toBe(JSON.stringify(name));
    }
  });

  it('also escapes what JSON.stringify leaves raw: DEL, C1, bidi controls and line separators', () => {
    expect(quotedName('a\u007f\u0085\u009b\u202e\u2066\u200f\u061c\u2028\u2029')).toBe(
      '"a\\u007f\\u0085\\u009b\\u202e\\u2066\\u200f\\u061c\\u2028\\u2029"',
    );
  });
});

describe('displayName', () => {
  it.each([
    'root',
    'tram_client-01',
    'svc a&b',
    '#1 zürich',
    '日本',
    'ключ',
    'مفتاح',
    'key 😀',
    'a"b',
    'a\\b',
    '%2E',
    // Emoji keep their joiners and variation selectors.
    'on call \u2764\ufe0f',
    'dev \u{1f469}\u200d\u{1f4bb}',
  ])('shows the plain name %j as it is', (name) => {
    expect(isPlainName(name)).toBe(true);
    expect(displayName(name)).toBe(name);
  });

  it.each([
    ['', '""'],
    [' padded', '" padded"'],
    ['padded ', '"padded "'],
    ['\u00a0nbsp', '"\u00a0nbsp"'],
    ['"quoted"', '"\\"quoted\\""'],
    ['a\u001b[31mred', '"a\\u001b[31mred"'],
    ['a\\u001b', 'a\\u001b'],
    // A run of spaces, or a space character other than U+0020, inside a name: a mail client could wrap the rest
    // onto what looks like a line of its own. Quoted, the name shows where it starts and ends.
    ['a  b', '"a  b"'],
    [`x${' '.repeat(80)}Change id: chg-forged`, `"x${' '.repeat(80)}Change id: chg-forged"`],
    ['a\u00a0b', '"a\u00a0b"'],
    ['a\u3000b', '"a\u3000b"'],
    ['a\u2003b', '"a\u2003b"'],
    // Blanks that are not white space: each alone, and a run of spaces split by zero-width spaces.
    [`ci-deploy${' \u200b'.repeat(40)}Change id: x`, `"ci-deploy${' \u200b'.repeat(40)}Change id: x"`],
    ['a\u2800b', '"a\u2800b"'],
    ['a\u3164b', '"a\u3164b"'],
    ['a\u2060b', '"a\u2060b"'],
    ['a\u00adb', '"a\u00adb"'],
  ])('shows %j as %s', (name, shown) => {
    expect(displayName(name)).toBe(shown);
  });

  it('tells a name that looks like an escaped one from the escaped one', () => {
    const lookalike = '"a\\u001b"';
    const escaped = 'a\u001b';
    expect(displayName(lookalike)).not.toBe(displayName(escaped));
    expect(JSON.parse(displayName(lookalike))).toBe(lookalike);
    expect(JSON.parse(displayName(escaped))).toBe(escaped);
  });

  it.each(HOSTILE)(
    'quotes and escapes a name holding %s, which a person can still read',
    (_label, hostile) => {
      const name = `key${hostile}name`;
      const shown = displayName(name);
      expect(isPlainName(name)).toBe(false);
      expect(shown).not.toContain(hostile);
      expect(hasUnsafeCharacters(shown)).toBe(false);
      expect(shown.startsWith('"key')).toBe(true);
      expect(shown.endsWith('name"')).toBe(true);
      expect(JSON.parse(shown)).toBe(name);
    },
  );

  it('keeps a forged notice on the line of the name', () => {
    const shown = `  - ${displayName(FORGED)}`;
    expect(shown.split('\n')).toEqual(['  - "x\\nChange id: chg-forged\\nNo keys were removed."']);
  });
});
