import { describe, expect, it } from 'vitest';
import type * as z from 'zod/mini';
import {
  formatIssue,
  hostSchema,
  isLoopbackHost,
  parseList,
  patternSchema,
  principalListSchema,
  principalsSchema,
} from '../../functions/commons/validation.js';

/** The formatted first issue of a value a schema refuses. */
function problem(schema: z.ZodMiniType, value: unknown, key = 'KEY'): string {
  const result = schema.safeParse(value);
  if (result.success) throw new Error(`expected ${JSON.stringify(value)} to be refused`);
  return formatIssue(key, result.error);
}

describe('isLoopbackHost', () => {
  it.each([
    'localhost',
    'LOCALHOST',
    'localhost.',
    '127.0.0.1',
    '127.0.0.1.',
    '127.1.2.3',
    '127.10.200.100',
    '[::1]',
  ])('takes %s for loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each([
    'example.com',
    '128.0.0.1',
    '127.0.0.1.nip.io',
    'localhost.example',
    '::1',
    '10.0.0.1',
    'my-localhost',
    '127.1000.0.1',
    '127.0.0',
  ])('does not take %s for loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('hostSchema', () => {
  it.each([
    'https://api.bigstate.dev',
    'https://api.bigstate.dev/',
    'https://proxy.example/bigstate',
    'https://10.0.0.7:8443',
    'http://127.0.0.1:4010',
    'http://localhost:3000',
    'http://[::1]:3000',
  ])('accepts %s', (host) => {
    expect(hostSchema.parse(host)).toBe(host);
  });

  it('trims surrounding white space', () => {
    expect(hostSchema.parse('  https://api.bigstate.dev \n')).toBe('https://api.bigstate.dev');
  });

  it.each(['http://api.bigstate.dev', 'http://10.0.0.7', 'ftp://api.bigstate.dev', 'ws://localhost'])(
    'refuses %s: https only, http for loopback alone',
    (host) => {
      expect(problem(hostSchema, host, 'bigstateHost')).toBe(
        'bigstateHost must use https (plain http is accepted for loopback hosts only)',
      );
    },
  );

  it.each([
    'https://api.bigstate.dev/?x=1',
    'https://api.bigstate.dev/#top',
    'https://user:pw@api.bigstate.dev',
    'https://user@api.bigstate.dev',
    'https://:pw@api.bigstate.dev',
  ])('refuses %s: no query, fragment or credentials', (host) => {
    expect(problem(hostSchema, host, 'bigstateHost')).toBe(
      'bigstateHost must not carry a query, fragment or credentials',
    );
  });

  it.each(['api.bigstate.dev', 'nope', '/v1', 'https://'])(
    'refuses %s as not an absolute URL, without throwing',
    (host) => {
      expect(problem(hostSchema, host, 'bigstateHost')).toBe(
        'bigstateHost must be an absolute URL such as https://api.bigstate.dev',
      );
    },
  );

  it('refuses an empty or blank value as missing, without throwing', () => {
    expect(problem(hostSchema, '', 'bigstateHost')).toBe('bigstateHost is required');
    expect(problem(hostSchema, '   ', 'bigstateHost')).toBe('bigstateHost is required');
  });

  it('refuses a value that is not a string', () => {
    expect(problem(hostSchema, 42, 'bigstateHost')).toBe('bigstateHost must be a URL string');
  });
});

describe('patternSchema', () => {
  it.each(['*', 'ci', '*-laptop', 'ci-*', '*deploy*', 'a b', 'zürich*'])('accepts %j', (pattern) => {
    expect(patternSchema.parse(pattern)).toBe(pattern);
  });

  it.each(['a*b', '**', '***', '*a*b', 'a**', '*a*b*'])(
    'refuses %j: a * only at the start or end',
    (pattern) => {
      expect(problem(patternSchema, pattern, 'pattern')).toBe(
        'pattern must be one of the forms x, *x, x*, *x* (a * only at the start or end)',
      );
    },
  );

  it('refuses an empty pattern, and one that is not a string', () => {
    expect(problem(patternSchema, '', 'pattern')).toBe('pattern must not be empty');
    expect(problem(patternSchema, ['a*'], 'pattern')).toBe('pattern must be a string');
  });
});

describe('parseList', () => {
  it('reads a JSON array', () => {
    expect(parseList('["root", "svc a&b", " spaced "]')).toEqual(['root', 'svc a&b', ' spaced ']);
    expect(parseList('  ["a"]  ')).toEqual(['a']);
  });

  it('reads a comma list, trimming each name', () => {
    expect(parseList('root, svc a&b ,zürich-ops')).toEqual(['root', 'svc a&b', 'zürich-ops']);
    expect(parseList('single')).toEqual(['single']);
  });

  it('reads an empty or blank string as an empty list', () => {
    expect(parseList('')).toEqual([]);
    expect(parseList('   ')).toEqual([]);
  });

  it('passes a broken JSON array through as the string, for the schema to refuse', () => {
    expect(parseList('["a"')).toBe('["a"');
  });

  it('passes anything but a string through', () => {
    const list = ['a'];
    expect(parseList(list)).toBe(list);
    expect(parseList(undefined)).toBeUndefined();
  });
});

describe('principalsSchema', () => {
  it('accepts a JSON array and a comma list', () => {
    expect(principalsSchema.parse('["root","svc a&b","#1 zürich"]')).toEqual([
      'root',
      'svc a&b',
      '#1 zürich',
    ]);
    expect(principalsSchema.parse('root,svc a&b')).toEqual(['root', 'svc a&b']);
    expect(principalsSchema.parse(['root'])).toEqual(['root']);
  });

  it('refuses an empty list', () => {
    expect(problem(principalsSchema, '', 'principals')).toBe('principals must name at least one principal');
    expect(problem(principalsSchema, '[]', 'principals')).toBe('principals must name at least one principal');
  });

  it('refuses a name listed twice', () => {
    expect(problem(principalsSchema, 'a, b, a', 'principals')).toBe('principals lists "a" twice');
  });

  it('refuses an empty, blank or control-character name, naming its position', () => {
    expect(problem(principalsSchema, 'a,,b', 'principals')).toBe(
      'principals[1] a principal name must not be empty',
    );
    expect(problem(principalsSchema, '["a","  "]', 'principals')).toBe(
      'principals[1] a principal name must not be blank',
    );
    expect(problem(principalsSchema, '["a\\nb"]', 'principals')).toBe(
      'principals[0] a principal name must not hold control characters',
    );
    expect(problem(principalsSchema, '["a\\u007f"]', 'principals')).toBe(
      'principals[0] a principal name must not hold control characters',
    );
  });

  it.each([
    ['NUL', '\u0000'],
    ['ESC', '\u001b'],
    ['CR', '\r'],
    ['TAB', '\t'],
    ['DEL', '\u007f'],
    ['PAD (first C1)', '\u0080'],
    ['NEL (C1)', '\u0085'],
    ['CSI (C1)', '\u009b'],
    ['APC (last C1)', '\u009f'],
  ])('refuses a name holding %s as a control character', (_label, control) => {
    expect(problem(principalListSchema, ['ok', `a${control}b`], 'principals')).toBe(
      'principals[1] a principal name must not hold control characters',
    );
  });

  it.each([
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate', '\udfff'],
    ['halves in the wrong order', '\ude00\ud83d'],
  ])('refuses a name holding %s: not UTF-16, and no URL can carry it', (_label, surrogate) => {
    expect(problem(principalListSchema, [`a${surrogate}`], 'principals')).toBe(
      'principals[0] a principal name must not hold a lone surrogate (invalid UTF-16)',
    );
    expect(problem(principalsSchema, JSON.stringify([`a${surrogate}`]), 'principals')).toBe(
      'principals[0] a principal name must not hold a lone surrogate (invalid UTF-16)',
    );
  });

  it.each(['\u2028', '\u2029'])(
    'refuses a name holding the separator %j, a line break JSON lets through',
    (separator) => {
      expect(problem(principalsSchema, `["a${separator}b"]`, 'principals')).toBe(
        'principals[0] a principal name must not hold a line or paragraph separator (U+2028, U+2029)',
      );
    },
  );

  it.each(['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'])(
    'refuses a name holding the bidi control %j (Trojan Source)',
    (control) => {
      expect(problem(principalListSchema, [`admin${control}nimda`], '--principal')).toBe(
        '--principal[0] a principal name must not hold bidi embedding, override or isolate controls (U+202A-U+202E, U+2066-U+2069)',
      );
    },
  );

  it('accepts the characters around the refused ranges, the bidi marks and any well-formed letter', () => {
    const names = [
      'a\u00a0b', // NO-BREAK SPACE, right after the C1 controls
      'a~b', // right before DEL
      'שלום\u200f', // RIGHT-TO-LEFT MARK after a Hebrew name
      'a\u200eb\u061cc', // LEFT-TO-RIGHT MARK, ARABIC LETTER MARK
      'a\u2027b\u202fc\u2065d\u206ae', // neighbours of the separators and the bidi controls
      'key 😀 𝒳', // surrogate pairs
      'ключ 日本 مفتاح',
    ];
    expect(principalListSchema.parse(names)).toEqual(names);
  });

  it('quotes and escapes a name listed twice', () => {
    expect(problem(principalListSchema, ['a"b', 'a"b'], 'principals')).toBe('principals lists "a\\"b" twice');
    expect(problem(principalListSchema, ['a\u200fb', 'a\u200fb'], 'principals')).toBe(
      'principals lists "a\\u200fb" twice',
    );
  });

  it('refuses a JSON array of other things, and a broken one', () => {
    expect(problem(principalsSchema, '[1]', 'principals')).toBe(
      'principals[0] a principal name must be a string',
    );
    expect(problem(principalsSchema, '["a"', 'principals')).toBe(
      'principals must be a list of principal names',
    );
  });

  it('exports the list schema for values that already are lists', () => {
    expect(principalListSchema.parse(['a', 'b'])).toEqual(['a', 'b']);
    expect(problem(principalListSchema, ['a', 'a'], '--principal')).toBe('--principal lists "a" twice');
  });
});

describe('formatIssue', () => {
  it('says "is invalid" when zod reported no issue', () => {
    expect(formatIssue('KEY', { issues: [] } as unknown as z.core.$ZodError)).toBe('KEY is invalid');
  });

  it('writes a nested path as KEY[a][1]', () => {
    const error = { issues: [{ path: ['a', 1], message: 'is bad' }] } as unknown as z.core.$ZodError;
    expect(formatIssue('KEY', error)).toBe('KEY[a][1] is bad');
  });
});
