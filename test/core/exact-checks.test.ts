/**
 * The exact checks that confirm a removal, as a red team tried to break them: names a pattern cannot say (`*`,
 * lone surrogates, very long names), answers of several pages that churn can shift like a walk, and keys that are
 * really gone. Real HTTP against the simulator, whose cursors behave like offsets.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { startSimulator } from '../../functions/bigstate/simulator.js';
import { type AuditRequest, type AuditSummary, runAudit } from '../../functions/core/audit.js';
import { exactPattern, exactPatterns, MAX_PATTERN_LITERAL } from '../../functions/core/diff.js';
import { HOST, MemoryStore, RecordingChannel, steppingClock } from './support/fakes.js';

const KEY = 'exact-key-91c2';
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('exactPatterns', () => {
  it('is the name itself when a pattern can say it', () => {
    expect(exactPatterns('ci-deploy')).toEqual(['ci-deploy']);
    expect(exactPattern('svc a&b #1')).toBe('svc a&b #1');
  });

  it('anchors a name holding * by its longest literal first, then the others, each matching the name', () => {
    expect(exactPatterns('deploy*prod')).toEqual(['deploy*', '*prod']);
    expect(exactPatterns('a*')).toEqual(['a*']);
    expect(exactPatterns('*x')).toEqual(['*x']);
    expect(exactPatterns('x*yz')).toEqual(['*yz', 'x*']);
    // A middle piece only when it is the longest: around the first or last piece it would only match more.
    expect(exactPatterns('a*middle*z')).toEqual(['*middle*', 'a*', '*z']);
  });

  it('checks a name of only * with * (every key), never an invalid pattern', () => {
    expect(exactPatterns('*')).toEqual(['*']);
    expect(exactPatterns('***')).toEqual(['*']);
  });

  it('never sends a lone surrogate (encodeURIComponent would throw): the sendable pieces are used', () => {
    const name = 'ci-\ud800-laptop';
    const patterns = exactPatterns(name);
    expect(patterns).toEqual(['*-laptop', 'ci-*']);
    for (const pattern of patterns) expect(() => encodeURIComponent(pattern)).not.toThrow();
  });

  it('caps the literal of a very long name, so the request stays small', () => {
    const name = 'k'.repeat(20_000);
    for (const pattern of exactPatterns(name)) {
      expect(pattern.replaceAll('*', '').length).toBeLessThanOrEqual(MAX_PATTERN_LITERAL);
    }
    expect(exactPatterns(name)[0]).toBe(`${'k'.repeat(MAX_PATTERN_LITERAL)}*`);
  });

  it('always yields patterns that match the name, as BigState matches', () => {
    const matches = (name: string, pattern: string) => {
      const leading = pattern.startsWith('*');
      const trailing = pattern.length > 1 && pattern.endsWith('*');
      const core = pattern.slice(leading ? 1 : 0, trailing ? -1 : undefined);
      if (pattern === '*') return true;
      if (leading && trailing) return name.includes(core);
      if (leading) return name.endsWith(core);
      if (trailing) return name.startsWith(core);
      return name === core;
    };
    for (const name of ['a*b', '*', 'a**b', '*lead', 'trail*', 'x\udc00y*z', 'm'.repeat(500), 'é*ü']) {
      for (const pattern of exactPatterns(name))
        expect(matches(name, pattern), `${name} ~ ${pattern}`).toBe(true);
    }
  });
});

async function setup(keys: string[], pageSize: number) {
  const simulator = await startSimulator({ apiKeys: [KEY], pageSize, principals: { root: { keys } } });
  closers.push(() => simulator.close());
  const client = new BigStateClient({ host: simulator.url, apiKey: async () => KEY });
  closers.push(() => client.close());
  const store = new MemoryStore();
  const sns = new RecordingChannel('sns');
  let runs = 0;
  const run = (request: Partial<AuditRequest> = {}) =>
    runAudit(
      { bigstate: client, store, channels: [sns], clock: steppingClock('2025-06-01T12:00:00.000Z', 1000) },
      { runId: `run-${++runs}`, host: HOST, principals: ['root'], ...request },
    );
  return { simulator, store, sns, run };
}

const removedOf = (summary: AuditSummary) => summary.principals[0]?.removed ?? [];

describe('exact checks under churn (offset cursors)', () => {
  it.each([
    ['*', ['*', 'a', 'b', 'c']],
    ['a*', ['a*', 'a1', 'a2', 'a3']],
    ['deploy*prod', ['deploy*prod', ...Array.from({ length: 9 }, (_, i) => `deploy-${i}`)]],
  ])(
    'never reports %s removed while it exists, even when every answer that matches it spans pages',
    async (name, keys) => {
      // A churn key that sorts first and matches the name's patterns too: every multi-page answer is shifted.
      const { simulator, run, sns } = await setup(keys, 2);
      await run();
      simulator.churn('root', { name: '!' });
      for (let round = 0; round < 3; round += 1) {
        const summary = await run();
        expect(summary.principals[0]?.status).toBe('ok');
        expect(removedOf(summary)).not.toContain(name);
      }
      expect(simulator.keys('root')).toContain(name);
      for (const notice of sns.notices) {
        if (notice.kind === 'changed') expect(notice.record.removed).not.toContain(name);
      }
    },
  );

  it('reports a key holding * removed once an answer of one page says so', async () => {
    const { simulator, run } = await setup(['deploy*prod', 'other'], 2);
    await run();
    simulator.removeKeys('root', 'deploy*prod');
    const summary = await run();
    expect(removedOf(summary)).toEqual(['deploy*prod']);
  });

  it('keeps a key it cannot settle (unconfirmed), and reports it removed in a later run that can', async () => {
    const keys = ['x*y', ...Array.from({ length: 6 }, (_, i) => `x${i}*y`)];
    const { simulator, run } = await setup(keys, 2);
    await run();
    simulator.removeKeys('root', 'x*y');
    simulator.churn('root', { name: '!x' });
    const churning = await run();
    expect(removedOf(churning)).not.toContain('x*y');
    expect(churning.principals[0]?.unconfirmedRemovals).toEqual(['x*y']);
    simulator.stopChurn('root');
    // Without churn the answers are still several pages: only the walk and pattern order settle it.
    simulator.setKeys('root', keys.slice(1, 2));
    const settled = await run();
    expect(removedOf(settled)).toContain('x*y');
  });

  it('checks a key whose name holds a lone surrogate or is 20,000 characters long, and finds it removed', async () => {
    const odd = ['ci-\ud800-laptop', 'k'.repeat(20_000)];
    const { simulator, run } = await setup([...odd, 'plain'], 50);
    await run();
    simulator.removeKeys('root', ...odd);
    const summary = await run();
    expect(summary.principals[0]?.status).toBe('ok');
    expect([...removedOf(summary)].sort()).toEqual([...odd].sort());
  });
});
