import { Logger } from '@aws-lambda-powertools/logger';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KEYS_PER_PRINCIPAL_QUERY } from '../../infra/key-audit-dashboard.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** The JSON lines a Powertools Logger (as the function builds it) writes while `log` runs. */
function loggedLines(log: (logger: Logger) => void): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
    for (const line of String(chunk)
      .split('\n')
      .filter((l) => l.trim() !== ''))
      lines.push(JSON.parse(line));
    return true;
  }) as typeof process.stdout.write);
  log(new Logger({ serviceName: 'bigstate-key-audit' }));
  vi.restoreAllMocks();
  return lines;
}

/**
 * The widget's query, as Logs Insights reads these lines: top-level JSON fields by name, a JSON boolean as 1
 * or 0; `filter`, then the latest `keyCount` (and time) of each principal.
 */
function keysPerPrincipal(lines: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> {
  const asInsights = (value: unknown) => (typeof value === 'boolean' ? Number(value) : value);
  const latest: Record<string, { keys: unknown; at: string }> = {};
  for (const line of lines) {
    if (!(line.message === 'principal audited' && asInsights(line.dryRun) === 0)) continue;
    const principal = String(line.principal);
    const at = String(line.timestamp);
    const seen = latest[principal];
    if (seen === undefined || seen.at <= at) latest[principal] = { keys: line.keyCount, at };
  }
  return Object.fromEntries(Object.entries(latest).map(([principal, { keys }]) => [principal, keys]));
}

describe('the keys-per-principal query', () => {
  it('filters the "principal audited" lines of real runs and keeps the latest key count per principal', () => {
    expect(KEYS_PER_PRINCIPAL_QUERY).toEqual([
      'fields @timestamp, principal, keyCount',
      'filter message = "principal audited" and dryRun = 0',
      'stats latest(keyCount) as keys, latest(@timestamp) as lastAudited by principal',
      'sort principal asc',
      'limit 10000',
    ]);
  });

  it('reads fields the function logs at the top level of its Powertools JSON lines, names exact', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const lines = loggedLines((logger) => {
        const audited = (principal: string, dryRun: boolean, keyCount: number) =>
          logger.info('principal audited', {
            principal,
            dryRun,
            baseline: false,
            keyCount,
            added: 0,
            removed: 0,
          });
        vi.setSystemTime(new Date('2026-11-28T10:00:00.000Z'));
        audited('日本', false, 3);
        audited('中国', false, 4);
        audited('svc a&b', false, 5);
        vi.setSystemTime(new Date('2026-11-28T11:00:00.000Z'));
        audited('日本', false, 6);
        vi.setSystemTime(new Date('2026-11-28T11:30:00.000Z'));
        audited('中国', true, 99); // a dry run: left out
        logger.info('audit result', { principal: 'svc a&b', dryRun: false, keyCount: 42 });
      });
      expect(lines[0]).toMatchObject({
        level: 'INFO',
        message: 'principal audited',
        principal: '日本',
        dryRun: false,
        keyCount: 3,
      });
      expect(keysPerPrincipal(lines)).toEqual({ 日本: 6, 中国: 4, 'svc a&b': 5 });
    } finally {
      vi.useRealTimers();
    }
  });
});
