import { describe, expect, it } from 'vitest';
import { consolePublisher, formatSummary, lineLogger } from '../../../functions/adapters/local/console.js';
import type { AuditSummary, PrincipalResult } from '../../../functions/core/audit.js';
import { snsBody } from '../../../functions/core/messages.js';
import type { Notice } from '../../../functions/core/ports.js';

const notice: Notice = {
  kind: 'failed',
  runId: 'run-1',
  principal: 'zürich-ops',
  reason: 'walking the keys: 403',
  errorName: 'ForbiddenError',
  detectedAt: '2025-06-01T12:00:00.000Z',
};

describe('consolePublisher', () => {
  it('prints each notice as its subject, an underline and the e-mail body', async () => {
    const out: string[] = [];
    await consolePublisher((text) => out.push(text)).publish(notice);
    const subject = 'BigState key audit FAILED for zurich-ops';
    expect(out).toEqual([`\n${subject}\n${'-'.repeat(subject.length)}\n${snsBody(notice)}\n`]);
  });
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
  const result = (overrides: Partial<PrincipalResult>): PrincipalResult => ({
    principal: 'root',
    status: 'ok',
    baseline: false,
    keyCount: 3,
    added: [],
    removed: [],
    ...overrides,
  });
  const summary = (principals: PrincipalResult[], dryRun = false): AuditSummary => ({
    runId: 'run-1',
    dryRun,
    startedAt: '2025-06-01T12:00:00.000Z',
    finishedAt: '2025-06-01T12:00:01.234Z',
    durationMs: 1234,
    principals,
    ok: principals.every((p) => p.status === 'ok'),
  });

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
});
