/**
 * The report's model from the principals' states (`snapshots/<principal>.json`), never from the history: each
 * state carries what the report needs (its keys with first and last seen and BigState's fields, its key-count
 * series, its recent removals, its failure).
 *
 * Ages come from `core/ages.ts`, the same code the key-age notices use, so the report and the notices always
 * agree on which keys are stale: from the creation time BigState returned among a key's fields when it did (any
 * of {@link CREATION_FIELDS}, ISO 8601), otherwise from first seen, a lower bound.
 */
import { ageOf } from '../core/ages.js';
import type { Snapshot } from '../core/ports.js';
import type { ReportKey, ReportModel, ReportPrincipal } from './model.js';

export { CREATION_FIELDS, creationTimeOf } from '../core/ages.js';

/** How far back the report lists removed keys. */
export const RECENT_REMOVALS_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/** What a report is made for. */
export interface BuildReportOptions {
  /** When the report is made: ages are counted to it, and "the last 30 days" end at it. */
  readonly generatedAt: Date;
  /** The run that makes it (`local` for the CLI's `npm run report`). */
  readonly runId: string;
  /** The BigState host the states were read from (see {@link hostOfStates}). */
  readonly host: string;
  /** The key-age policy (`maxKeyAgeDays`); `null`: none, and no key is stale. */
  readonly maxKeyAgeDays: number | null;
  /**
   * Principals whose run just failed, with the reason in words: wins over the failure kept in the state (which
   * may be from an earlier run).
   */
  readonly failures?: ReadonlyMap<string, string>;
}

/** Names in code-unit order, as the states keep their keys (`diff.ts`): the same order everywhere. */
const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const timeOf = (iso: string): number => {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? Number.NaN : at;
};

/** The model both renderers take. Principals sorted by name, keys by name. */
export function buildReportModel(states: readonly Snapshot[], options: BuildReportOptions): ReportModel {
  const principals = states.map((state) => principalOf(state, options));
  // A principal whose first audit failed has no state yet: it is listed all the same, with its failure and no
  // keys (the page says it has no complete audit yet), never left out of the report.
  const listed = new Set(states.map((state) => state.principal));
  for (const [principal, reason] of options.failures ?? []) {
    if (listed.has(principal)) continue;
    principals.push({
      principal,
      info: null,
      keyCount: 0,
      keys: [],
      removedRecently: [],
      series: [],
      failure: reason,
    });
  }
  principals.sort((a, b) => byCodeUnits(a.principal, b.principal));
  return {
    generatedAt: options.generatedAt.toISOString(),
    runId: options.runId,
    host: options.host,
    maxKeyAgeDays: options.maxKeyAgeDays,
    principals,
  };
}

function principalOf(state: Snapshot, options: BuildReportOptions): ReportPrincipal {
  const now = options.generatedAt;
  const max = options.maxKeyAgeDays;
  // A state awaiting its baseline holds no inventory: its keys mean nothing.
  const records = state.awaitingBaseline === true ? [] : state.keys;
  const keys: ReportKey[] = records.map((key) => {
    const age = ageOf(key, now);
    return {
      name: key.name,
      firstSeen: key.firstSeen,
      lastSeen: key.lastSeen,
      createdAt: age.createdAt,
      ageDays: age.ageDays,
      ageFrom: age.ageFrom,
      stale: max !== null && age.ageDays > max,
    };
  });
  if (!isSortedByName(keys)) keys.sort((a, b) => byCodeUnits(a.name, b.name));
  const failure = options.failures?.get(state.principal) ?? state.failure?.reason ?? null;
  return {
    principal: state.principal,
    info: state.info === undefined ? null : { type: state.info.type, displayName: state.info.displayName },
    keyCount: keys.length,
    keys,
    removedRecently: recentRemovalsOf(state, now),
    series: seriesOf(state),
    failure,
  };
}

function isSortedByName(keys: readonly ReportKey[]): boolean {
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as ReportKey).name > (keys[i] as ReportKey).name) return false;
  }
  return true;
}

/** The state's optional report fields, read defensively: a state written before them has none. */
interface ReportFields {
  readonly series?: unknown;
  readonly recentRemovals?: unknown;
}

/** Removals of the last 30 days (to `now`), newest first; entries that are not a name and a time are left out. */
function recentRemovalsOf(state: Snapshot, now: Date): Array<{ name: string; removedAt: string }> {
  const list = (state as ReportFields).recentRemovals;
  if (!Array.isArray(list)) return [];
  const since = now.getTime() - RECENT_REMOVALS_DAYS * DAY_MS;
  const removals: Array<{ name: string; removedAt: string; at: number }> = [];
  for (const entry of list as unknown[]) {
    const { name, removedAt } = (entry ?? {}) as { name?: unknown; removedAt?: unknown };
    if (typeof name !== 'string' || typeof removedAt !== 'string') continue;
    const at = timeOf(removedAt);
    if (Number.isNaN(at) || at < since) continue;
    removals.push({ name, removedAt, at });
  }
  removals.sort((a, b) => b.at - a.at || byCodeUnits(a.name, b.name));
  return removals.map(({ name, removedAt }) => ({ name, removedAt }));
}

/** The key-count series, oldest first; points that are not a time and a count are left out. */
function seriesOf(state: Snapshot): Array<{ at: string; count: number }> {
  const list = (state as ReportFields).series;
  if (!Array.isArray(list)) return [];
  const points: Array<{ at: string; count: number; time: number }> = [];
  for (const entry of list as unknown[]) {
    const { at, count } = (entry ?? {}) as { at?: unknown; count?: unknown };
    if (typeof at !== 'string' || typeof count !== 'number' || !Number.isFinite(count) || count < 0) continue;
    const time = timeOf(at);
    if (Number.isNaN(time)) continue;
    points.push({ at, count, time });
  }
  points.sort((a, b) => a.time - b.time);
  return points.map(({ at, count }) => ({ at, count }));
}

/**
 * The host a set of states was read from, for a report made outside a run (the CLI's `npm run report`): the
 * hosts the states name, most keys first, joined with `, ` (normally one); `''` when none names one.
 */
export function hostOfStates(states: readonly Snapshot[]): string {
  const weight = new Map<string, number>();
  for (const state of states) {
    if (state.host === null || state.host === '') continue;
    weight.set(state.host, (weight.get(state.host) ?? 0) + state.keys.length + 1);
  }
  return [...weight.entries()]
    .sort((a, b) => b[1] - a[1] || byCodeUnits(a[0], b[0]))
    .map(([host]) => host)
    .join(', ');
}
