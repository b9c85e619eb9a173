/** States, models and hostile names for the report's tests. */
import type { KeyRecord, Snapshot } from '../../functions/core/ports.js';

export const HOST = 'https://api.bigstate.dev';
/** When the tests' reports are made. */
export const NOW = new Date('2026-11-28T12:00:00.000Z');
export const DAY_MS = 24 * 60 * 60 * 1000;

/** `days` days before {@link NOW}, ISO 8601. */
export const daysAgo = (days: number): string => new Date(NOW.getTime() - days * DAY_MS).toISOString();

/**
 * Names someone with the right to create keys could choose: markup, quotes, controls, bidi overrides, and every
 * character a spreadsheet reads as the start of a formula.
 */
export const HOSTILE_NAMES = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(2)>',
  'it\'s & "quoted"',
  'line\nbreak\r\nand\ttab',
  'esc\u001b[31mred',
  'bidi\u202Etxt.exe',
  '=HYPERLINK("http://evil","x")',
  '+1',
  '-2',
  '@x',
  '\tleading-tab',
  '\rleading-cr',
  'comma, inside',
  '  padded  ',
] as const;

export interface KeySpec {
  readonly name: string;
  readonly firstSeenDaysAgo?: number;
  readonly lastSeenDaysAgo?: number;
  readonly attributes?: Record<string, unknown>;
}

/** A principal's state as the audit writes it (schema 2), with the report's optional fields when given. */
export function stateOf(
  principal: string,
  keys: ReadonlyArray<string | KeySpec>,
  extra: Partial<Record<'series' | 'recentRemovals' | 'failure' | 'info' | 'awaitingBaseline', unknown>> & {
    host?: string | null;
  } = {},
): Snapshot {
  const records: KeyRecord[] = keys
    .map((spec) => (typeof spec === 'string' ? { name: spec } : spec))
    .map((spec) => ({
      name: spec.name,
      firstSeen: daysAgo(spec.firstSeenDaysAgo ?? 10),
      lastSeen: daysAgo(spec.lastSeenDaysAgo ?? 0),
      ...(spec.attributes === undefined ? {} : { attributes: spec.attributes }),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const { host, ...fields } = extra;
  return {
    schemaVersion: 2,
    principal,
    host: host === undefined ? HOST : host,
    pattern: null,
    auditedAt: NOW.toISOString(),
    runId: 'run-1',
    writeId: 'run-1#1',
    keyCount: records.length,
    keys: records,
    pending: [],
    ...fields,
  } as Snapshot;
}

/** A key-count series of `n` daily points ending at {@link NOW}. */
export function dailySeries(n: number, count: (day: number) => number): Array<{ at: string; count: number }> {
  return Array.from({ length: n }, (_, i) => ({ at: daysAgo(n - 1 - i), count: count(i) }));
}
