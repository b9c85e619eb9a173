import { describe, expect, it } from 'vitest';
import { consolePublisher, formatSummary, lineLogger } from '../../../functions/adapters/local/console.js';
import { displayName, displayText, quotedName } from '../../../functions/commons/text.js';
import type { AuditSummary, PrincipalResult } from '../../../functions/core/audit.js';
import { snsBody } from '../../../functions/core/messages.js';
import type { ChangeRecord, Notice } from '../../../functions/core/ports.js';
import { auditSummary, principalResult } from '../../core/support/fakes.js';
import { FORGED, HOSTILE, rawCharacters } from '../../support/hostile.js';

/** Output shows no raw control character and forges no line. */
function expectNoForgedLine(text: string) {
  expect(rawCharacters(text)).toEqual([]);
  const lines = text.split(/\r\n|[\n\r\v\f\u0085\u2028\u2029]/);
  expect(lines.some((line) => line.startsWith('Change id: chg-forged'))).toBe(false);
  expect(lines.some((line) => line.startsWith('No keys were removed'))).toBe(false);
}

function changeRecord(principal: string, added: string[], removed: string[]): ChangeRecord {
  return {
    schemaVersion: 1,
    changeId: 'chg-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal,
    kind: 'changed',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: '"etag"',
    added,
    removed,
    counts: { added: added.length, removed: removed.length, total: 3 },
    snapshotLocation: '/state/snapshots/x.json',
    changeRecordLocation: '/state/history/x/chg-0123456789abcdef0123456789abcdef.json',
  };
}

const notice = {
  kind: 'failed',
  runId: 'run-1',
  principal: 'zürich-ops',
  reason: 'walking the keys: 403',
  errorName: 'ForbiddenError',
  detectedAt: '2025-06-01T12:00:00.000Z',
  failingSince: '2025-06-01T11:00:00.000Z',
} as const satisfies Notice;

describe('consolePublisher', () => {
  it('prints each notice as its subject, an underline and the e-mail body', async () => {
    const out: string[] = [];
    await consolePublisher((text) => out.push(text)).publish(notice);
    const subject = 'BigState key audit FAILED for zurich-ops';
    expect(out).toEqual([`\n${subject}\n${'-'.repeat(subject.length)}\n${snsBody(notice)}\n`]);
  });

  it.each(HOSTILE)(
    'prints names and reasons holding %s escaped, on their own lines',
    async (_label, hostile) => {
      const principal = `ops${hostile}${FORGED}`;
      const keyName = `key${hostile}${FORGED}`;
      const out: string[] = [];
      const publisher = consolePublisher((text) => out.push(text));
      await publisher.publish({
        kind: 'changed',
        record: changeRecord(principal, [keyName], [`old${hostile}`]),
      });
      await publisher.publish({ ...notice, principal, reason: `HTTP 400: ${hostile}${FORGED}` });
      const printed = out.join('');
      expectNoForgedLine(printed);
      const lines = printed.split('\n');
      expect(lines).toContain(`  + ${quotedName(keyName)}`);
      expect(lines).toContain(`  - ${quotedName(`old${hostile}`)}`);
      expect(printed).toContain(`principal ${quotedName(principal)}`);
      expect(lines).toContain(`Reason: HTTP 400: ${displayText(`${hostile}${FORGED}`)}`);
      // The subjects are printable ASCII, and the underline matches each.
      for (const [index, line] of lines.entries()) {
        if (line.startsWith('BigState ')) {
          expect(line).toMatch(/^[\x20-\x7e]+$/);
          expect(lines[index + 1]).toBe('-'.repeat(line.length));
        }
      }
    },
  );
});

describe('lineLogger', () => {
  it('writes one line per entry with its level and attributes', () => {
    const out: string[] = [];
    const logger = lineLogger((text) => out.push(text));
    logger.info('principal audited', { principal: 'svc a&b', keyCount: 3, baseline: false });
    logger.warn('retrying', { attempt: 2 }, { delayMs: 150 });
    logger.error('failed');
    expect(out).toEqual([
      '[info] principal audited principal="svc a&b" keyCount=3 baseline=false\n',
      '[warn] retrying attempt=2 delayMs=150\n',
      '[error] failed\n',
    ]);
  });

  it.each(HOSTILE)('escapes %s in a message, a string value and a list', (_label, hostile) => {
    const out: string[] = [];
    const logger = lineLogger((text) => out.push(text), { verbose: true });
    const principal = `ops${hostile}${FORGED}`;
    logger.info(`audited${hostile}${FORGED}`, {
      principal,
      added: [`a${hostile}`],
      nested: { name: principal },
    });
    logger.error('failed', { principal, reason: `HTTP 400: ${hostile}${FORGED}` });
    expect(out).toHaveLength(2);
    for (const line of out) {
      expect(line.endsWith('\n')).toBe(true);
      expectNoForgedLine(line);
      expect(line.slice(0, -1)).not.toContain('\n');
    }
    expect(out[0]).toContain(`principal=${quotedName(principal)}`);
    expect(out[1]).toContain(`reason=${quotedName(`HTTP 400: ${hostile}${FORGED}`)}`);
  });

  it('quotes strings as JSON does, and also escapes what JSON.stringify leaves raw', () => {
    const out: string[] = [];
    lineLogger((text) => out.push(text)).info('x', { a: 'q"b\\', b: 'p\u2028\u0085\u202e' });
    expect(out).toEqual(['[info] x a="q\\"b\\\\" b="p\\u2028\\u0085\\u202e"\n']);
  });

  it('writes lists and objects as JSON, errors by name and message, never [object Object]', () => {
    const out: string[] = [];
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    lineLogger((text) => out.push(text)).warn('values', {
      list: ['a', 'b'],
      object: { n: 1 },
      error: new TypeError('bad\nthing'),
      nothing: null,
      missing: undefined,
      cyclic,
    });
    expect(out).toEqual([
      '[warn] values list=["a","b"] object={"n":1} error="TypeError: bad\\nthing" nothing=null missing=undefined cyclic=[unserializable]\n',
    ]);
  });

  it('writes debug lines only when verbose', () => {
    const quiet: string[] = [];
    lineLogger((text) => quiet.push(text)).debug('detail', { a: 1 });
    expect(quiet).toEqual([]);
    const verbose: string[] = [];
    lineLogger((text) => verbose.push(text), { verbose: true }).debug('detail', { a: 1 });
    expect(verbose).toEqual(['[debug] detail a=1\n']);
  });
});

describe('formatSummary', () => {
  // Asserted rather than annotated: fields the core adds to a result (its outbox) are not the table's concern.
  const result = (overrides: Partial<PrincipalResult>): PrincipalResult => principalResult(overrides);
  const summary = (principals: PrincipalResult[], dryRun = false): AuditSummary =>
    auditSummary(principals, { dryRun, finishedAt: '2025-06-01T12:00:01.234Z', durationMs: 1234 });

  it('prints one aligned line per principal', () => {
    expect(
      formatSummary(
        summary([
          result({ principal: 'root', baseline: true, keyCount: 3 }),
          result({ principal: 'tram_client', keyCount: 120, added: ['a', 'b'], removed: ['c'] }),
          result({ principal: 'empty', keyCount: 0 }),
          result({ principal: 'bad', status: 'failed', reason: 'walking the keys: 403', keyCount: null }),
        ]),
      ),
    ).toBe(
      [
        'Run run-1 took 1.23 s',
        '  root         baseline   3 key(s) recorded',
        '  tram_client  changed    120 key(s), +2 -1',
        '  empty        no change  0 key(s), +0 -0',
        '  bad          FAILED     walking the keys: 403',
        '',
      ].join('\n'),
    );
  });

  it('pads names to at least 9 and at most 40 characters, and marks a dry run', () => {
    const short = formatSummary(summary([result({ principal: 'a' })], true));
    expect(short).toBe(
      'Run run-1 (dry run: nothing written or published) took 1.23 s\n  a          no change  3 key(s), +0 -0\n',
    );
    const long = formatSummary(summary([result({ principal: 'p'.repeat(50) }), result({ principal: 'q' })]));
    expect(long.split('\n')[2]).toBe(`  ${'q'.padEnd(40)}  no change  3 key(s), +0 -0`);
  });

  it.each(HOSTILE)('prints a principal and a reason holding %s escaped, one line each', (_label, hostile) => {
    const name = `ops${hostile}${FORGED}`;
    const table = formatSummary(
      summary([
        result({ principal: name, added: ['a'] }),
        result({ principal: `bad${hostile}`, status: 'failed', reason: `HTTP 400: ${hostile}${FORGED}` }),
      ]),
    );
    expectNoForgedLine(table);
    const lines = table.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]?.startsWith(`  ${quotedName(name)}  changed `)).toBe(true);
    expect(lines[2]?.startsWith(`  ${quotedName(`bad${hostile}`)}`)).toBe(true);
    expect(lines[2]?.endsWith(`FAILED     HTTP 400: ${displayText(`${hostile}${FORGED}`)}`)).toBe(true);
  });

  it('sizes the name column by the names as shown, escapes included', () => {
    const escaped = 'a\u0000\u0000';
    expect(displayName(escaped)).toBe('"a\\u0000\\u0000"');
    const table = formatSummary(summary([result({ principal: escaped }), result({ principal: 'b' })]));
    expect(table.split('\n').slice(1, 3)).toEqual([
      '  "a\\u0000\\u0000"  no change  3 key(s), +0 -0',
      `  ${'b'.padEnd(15)}  no change  3 key(s), +0 -0`,
    ]);
  });
});

describe('formatSummary: discovery and the run itself', () => {
  const base = {
    status: 'ok',
    baseline: false,
    keyCount: 3,
    added: [],
    removed: [],
    redelivered: [],
    pending: [],
  } as const;

  it('marks a new principal, a principal removed from BigState, and a failure of the run itself', () => {
    const removal = {
      kind: 'principal-removed',
      removalId: 'prm-1',
      runId: 'run-1',
      principal: 'gone',
      keys: ['a', 'b'],
      detectedAt: '2025-06-01T12:00:00.000Z',
      archiveLocation: '/state/archive/gone.json',
    } as const;
    const summary = (dryRun: boolean): AuditSummary => ({
      runId: 'run-1',
      dryRun,
      startedAt: '',
      finishedAt: '',
      durationMs: 0,
      ok: false,
      runFailure: { reason: 'listing the principals: HTTP 500\u001b[2J', errorName: 'ServerError' },
      principals: [
        { ...base, principal: 'found', baseline: true, newPrincipal: true },
        { ...base, principal: 'gone', keyCount: null, principalRemoved: removal },
      ],
    });
    expect(formatSummary(summary(false)).split('\n').slice(1)).toEqual([
      '  found      baseline   3 key(s) recorded (new principal)',
      '  gone       REMOVED    no longer in BigState; had 2 key(s); its state was archived',
      '  RUN FAILED  listing the principals: HTTP 500\\u001b[2J (ServerError)',
      '',
    ]);
    expect(formatSummary(summary(true))).toContain('its state would be archived');
  });
});
