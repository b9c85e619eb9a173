import { describe, expect, it } from 'vitest';
import { quotedName } from '../../functions/commons/text.js';
import type { AuditSummary, PrincipalResult } from '../../functions/core/audit.js';
import type { ChangeRecord } from '../../functions/core/ports.js';
import { paletteFor } from '../../functions/local/palette.js';
import { formatPlan } from '../../functions/local/plan.js';
import { auditSummary, principalResult } from '../core/support/fakes.js';

const result = (overrides: Partial<PrincipalResult>): PrincipalResult => principalResult(overrides);
const summary = (principals: PrincipalResult[]): AuditSummary => auditSummary(principals, { dryRun: true });

/** One SGR style sequence (built, not a literal: no control character in a regex literal). */
const STYLE = new RegExp(`${String.fromCharCode(0x1b)}\\[\\d+m`, 'g');

/** Raw characters a terminal would act on (our own line breaks and, in colour, our own ESC aside). */
function raw(text: string, allowEsc = false): string[] {
  return [...text].filter((character) => {
    const c = character.codePointAt(0) ?? 0;
    if (c === 0x0a || (allowEsc && c === 0x1b)) return false;
    return (
      c <= 0x1f ||
      (c >= 0x7f && c <= 0x9f) ||
      [0x061c, 0x200e, 0x200f, 0x2028, 0x2029].includes(c) ||
      (c >= 0x202a && c <= 0x202e) ||
      (c >= 0x2066 && c <= 0x2069) ||
      (c >= 0xd800 && c <= 0xdfff)
    );
  });
}

describe('formatPlan', () => {
  it('lists per principal the names a real run would report, baselines with counts, failures, then totals', () => {
    expect(
      formatPlan(
        summary([
          result({ principal: 'root', keyCount: 4, added: ['a', 'b'], removed: ['c'] }),
          result({ principal: 'svc a&b', baseline: true, keyCount: 1 }),
          result({ principal: 'quiet' }),
          result({
            principal: 'bad',
            status: 'failed',
            reason: 'walking the keys: 403',
            errorName: 'ForbiddenError',
            keyCount: null,
          }),
        ]),
      ),
    ).toBe(
      [
        'Dry run: a real run would publish the following (nothing was written or published).',
        '',
        'root: 2 added, 1 removed (4 keys after)',
        '  + a',
        '  + b',
        '  - c',
        '',
        'svc a&b: baseline, 1 key recorded (no key is reported added)',
        '',
        'bad: FAILED walking the keys: 403',
        '  its last good snapshot is kept and no key change is reported for it',
        '',
        'Plan: 1 principal changed (+2 -1), 1 baseline, 1 unchanged, 1 failed.',
        '',
      ].join('\n'),
    );
  });

  it('says when nothing would be published', () => {
    expect(formatPlan(summary([result({}), result({ principal: 'b' })]))).toBe(
      'Dry run: a real run would publish nothing (nothing was written or published).\n\nPlan: 0 principals changed (+0 -0), 0 baselines, 2 unchanged, 0 failed.\n',
    );
  });

  it('shows changes of earlier runs a real run would print first', () => {
    const record = {
      changeId: 'chg-0123456789abcdef0123456789abcdef',
      kind: 'changed',
      counts: { added: 1, removed: 2, total: 5 },
    } as ChangeRecord;
    const text = formatPlan(summary([result({ principal: 'p' })]), { owed: () => [record] });
    expect(text).toContain(
      'p: no change\n  first, a change of an earlier run not printed yet: chg-0123456789abcdef0123456789abcdef (+1 -2)\n',
    );
    expect(text).toContain('1 earlier change to print.');
  });

  it('shows a new principal, a principal removed from BigState with the keys it had, and a failed listing', () => {
    const text = formatPlan({
      ...summary([
        result({ principal: 'found', baseline: true, newPrincipal: true, keyCount: 2 }),
        result({
          principal: 'gone',
          keyCount: null,
          principalRemoved: {
            kind: 'principal-removed',
            removalId: 'prm-1',
            runId: 'run-1',
            principal: 'gone',
            keys: ['k1', 'k\nforged'],
            detectedAt: '2025-06-01T12:00:00.000Z',
            archiveLocation: '/a',
          },
        }),
      ]),
      runFailure: { reason: 'listing the principals: HTTP 500', errorName: 'ServerError' },
    });
    expect(text).toContain(
      'found: new principal found by discovery: baseline, 2 keys recorded (no key is reported added)\n',
    );
    expect(text).toContain(
      'gone: principal removed from BigState, with the 2 keys it had\n  told once as one removal (no key is reported removed one by one); its state is archived\n  - k1\n  - "k\\nforged"\n',
    );
    expect(text).toContain(
      'The run itself FAILED: listing the principals: HTTP 500 (ServerError)\n  no principal is taken as missing\n',
    );
    expect(text).toContain(
      'Plan: 0 principals changed (+0 -0), 1 baseline, 0 unchanged, 0 failed, 1 principal removed, the run itself failed.\n',
    );
  });

  it.each([
    ['ESC', '\u001b[31m'],
    ['LF', '\n'],
    ['CR', '\r'],
    ['NEL', '\u0085'],
    ['RLO', '\u202e'],
    ['LINE SEPARATOR', '\u2028'],
    ['a lone surrogate', '\ud800'],
  ])('escapes names and reasons holding %s, in colour too, so none forges a line', (_label, hostile) => {
    const forged = `${hostile}\n  - forged-removal`;
    const plan = summary([
      result({ principal: `p${forged}`, added: [`k${forged}`], removed: [`r${hostile}`] }),
      result({ principal: `f${hostile}`, status: 'failed', reason: `HTTP 400: ${forged}` }),
    ]);
    for (const [palette, allowEsc] of [
      [undefined, false],
      [paletteFor({ isTTY: true, color: true }), true],
    ] as const) {
      const text = formatPlan(plan, palette ? { palette } : {});
      expect(raw(text, allowEsc)).toEqual([]);
      // In colour, an ESC only ever starts one of our styles.
      if (allowEsc) expect(text.replace(STYLE, '')).not.toContain('\u001b');
      const lines = text.replace(STYLE, '').split('\n');
      expect(lines).not.toContain('  - forged-removal');
      expect(lines).toContain(`  + ${quotedName(`k${forged}`)}`);
      expect(lines).toContain(`  - ${quotedName(`r${hostile}`)}`);
      expect(lines).toContain(`${quotedName(`p${forged}`)}: 1 added, 1 removed (3 keys after)`);
    }
  });
});
