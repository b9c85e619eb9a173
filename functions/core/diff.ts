/**
 * The pure heart of the audit: comparing a snapshot with what one or two walks saw, and building the next
 * snapshot. No I/O here, so every rule is tested with plain fixtures.
 */

import { createHash } from 'node:crypto';
import type { ApiKeyEntry } from '../bigstate/types.js';
import type { KeyRecord, Snapshot } from './ports.js';
import { laterKeyFields } from './records.js';

/** A principal's keys as one complete walk saw them, by name. */
export type Inventory = ReadonlyMap<string, ApiKeyEntry>;

// Everything below works on lists sorted by name and merges them in one pass. A snapshot of a million keys
// is then compared without hashing a million names (which costs seconds where a merge costs milliseconds).

const byName = (a: { readonly name: string }, b: { readonly name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** Sorted with each name once (strictly ascending). */
function isSortedByName(items: ReadonlyArray<{ readonly name: string }>): boolean {
  for (let i = 1; i < items.length; i += 1) {
    if ((items[i - 1] as { name: string }).name >= (items[i] as { name: string }).name) return false;
  }
  return true;
}

/** Names sorted by UTF-16 code unit (the default sort order): the same on every machine and locale. */
export function sortNames(names: Iterable<string>): string[] {
  const sorted = [...names];
  // Walks usually arrive sorted already: checking is one pass, sorting a million names is not.
  for (let i = 1; i < sorted.length; i += 1) {
    if ((sorted[i - 1] as string) > (sorted[i] as string)) return sorted.sort();
  }
  return sorted;
}

const sortedWalks = new WeakMap<Inventory, readonly ApiKeyEntry[]>();

/** A walk's entries sorted by name; computed once per walk, which a run compares more than once. */
export function sortedEntries(inventory: Inventory): readonly ApiKeyEntry[] {
  let entries = sortedWalks.get(inventory);
  if (!entries) {
    const values = [...inventory.values()];
    entries = isSortedByName(values) ? values : values.sort(byName);
    sortedWalks.set(inventory, entries);
  }
  return entries;
}

/** A snapshot's keys sorted by name, each name once: as stored, unless someone edited the file by hand. */
function sortedKeys(snapshot: Snapshot): readonly KeyRecord[] {
  if (isSortedByName(snapshot.keys)) return snapshot.keys;
  const sorted = [...snapshot.keys].sort(byName);
  // A name listed twice would meet one walk entry in the merge and leave its twin as a false removal.
  return sorted.filter((key, i) => i === 0 || key.name !== sorted[i - 1]?.name);
}

/** The names of a snapshot, as a set. */
export function snapshotNames(snapshot: Snapshot): Set<string> {
  return new Set(snapshot.keys.map((key) => key.name));
}

/**
 * Walks two name-sorted lists together, calling `onlyLeft`, `onlyRight` or `both` for every name: the one
 * loop every comparison here is made of.
 */
function merge<L extends { readonly name: string }, R extends { readonly name: string }>(
  left: readonly L[],
  right: readonly R[],
  visit: { onlyLeft?(item: L): void; onlyRight?(item: R): void; both?(l: L, r: R): void },
): void {
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    const l = left[i];
    const r = right[j];
    if (r === undefined || (l !== undefined && l.name < r.name)) {
      visit.onlyLeft?.(l as L);
      i += 1;
    } else if (l === undefined || r.name < l.name) {
      visit.onlyRight?.(r);
      j += 1;
    } else {
      visit.both?.(l, r);
      i += 1;
      j += 1;
    }
  }
}

/** Names the previous snapshot had that the first walk did not see: removals still to be confirmed. */
export function removalCandidates(previous: Snapshot, first: Inventory): string[] {
  const missing: string[] = [];
  merge(sortedKeys(previous), sortedEntries(first), { onlyLeft: (key) => missing.push(key.name) });
  return missing;
}

/** What the exact checks of the removal candidates found: each candidate is either found or gone. */
export interface ExactChecks {
  /** Candidates an exact query found after all (the walks missed them: churn while paging). */
  readonly found: readonly ApiKeyEntry[];
  /** Candidates an exact query did not find: the only names that may be reported removed. */
  readonly gone: ReadonlySet<string>;
  /**
   * Candidates no exact answer of one page could settle (names holding `*` under a pattern many keys match): kept,
   * never reported removed, until a later run settles them.
   */
  readonly unconfirmed?: readonly string[];
}

/** The outcome of comparing a snapshot with what one run saw. */
export interface Reconciliation {
  /** Every key seen by a walk or an exact check, sorted by name (the first walk's entry wins). */
  readonly inventory: readonly ApiKeyEntry[];
  /** Sorted names present now and absent from the previous snapshot. */
  readonly added: string[];
  /** Sorted names of the previous snapshot that no walk saw and an exact check confirmed gone. */
  readonly removed: string[];
}

/** Every entry of the lists, each name once, sorted (an earlier list's entry wins). */
export function unionOf(...lists: ReadonlyArray<Inventory | readonly ApiKeyEntry[]>): readonly ApiKeyEntry[] {
  let union: readonly ApiKeyEntry[] = [];
  for (const list of lists) {
    const sorted = Array.isArray(list)
      ? isSortedByName(list)
        ? list
        : [...list].sort(byName)
      : sortedEntries(list as Inventory);
    const merged: ApiKeyEntry[] = [];
    const keep = (entry: ApiKeyEntry) => merged.push(entry);
    merge(union, sorted, { onlyLeft: keep, onlyRight: keep, both: keep });
    union = merged;
  }
  return union;
}

/**
 * Reconciles the previous snapshot with the run's walks and exact checks. A key seen anywhere stays; a key is
 * removed only when no walk saw it and its exact check confirmed it gone. A walk is evidence that a key exists,
 * never proof that one is gone: called with a missing name that no exact check confirmed, this throws rather
 * than report an unconfirmed removal.
 */
export function reconcile(
  previous: Snapshot,
  walks: ReadonlyArray<Inventory | readonly ApiKeyEntry[]>,
  exact: ExactChecks = { found: [], gone: new Set() },
): Reconciliation {
  // An unconfirmed candidate is kept as the snapshot had it: no answer could say it is gone.
  const kept = new Set(exact.unconfirmed ?? []);
  const keptEntries: ApiKeyEntry[] = [];
  if (kept.size > 0) {
    for (const key of sortedKeys(previous)) {
      if (kept.has(key.name)) keptEntries.push({ ...(key.attributes ?? {}), name: key.name });
    }
  }
  const inventory = unionOf(...walks, exact.found, keptEntries);
  const added: string[] = [];
  const removed: string[] = [];
  merge(inventory, sortedKeys(previous), {
    onlyLeft: (entry) => added.push(entry.name),
    onlyRight: (key) => removed.push(key.name),
  });
  const unconfirmed = removed.filter((name) => !exact.gone.has(name));
  if (unconfirmed.length > 0) {
    throw new Error(`reconcile: ${unconfirmed.length} removal(s) not confirmed by an exact check`);
  }
  return { inventory, added, removed };
}

/** The longest literal a check's pattern carries: a longer one would make a URL a server may refuse. */
export const MAX_PATTERN_LITERAL = 200;

/** The well-formed pieces of a name: split at `*` (a pattern cannot say it) and at lone surrogates (unsendable). */
function literalPieces(name: string): string[] {
  return name.split(/\*|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
}

/**
 * The patterns that can check a key's name exactly, narrowest first: the name itself when a pattern can say it
 * (no `*`, well-formed UTF-16, not too long); otherwise anchored forms that still match it (`prefix*` from its
 * start, `*suffix` from its end) and `*fragment*` from its longest sendable piece, each literal at most
 * {@link MAX_PATTERN_LITERAL} characters. A name with nothing sendable at all is checked with `*` (every key).
 * The answer must always be searched for the exact name.
 */
export function exactPatterns(name: string): string[] {
  const pieces = literalPieces(name);
  if (pieces.length === 1 && name.length <= MAX_PATTERN_LITERAL) return [name];
  const first = pieces[0] ?? '';
  const last = pieces[pieces.length - 1] ?? '';
  let longest = '';
  for (const piece of pieces) if (piece.length > longest.length) longest = piece;
  const patterns: Array<{ pattern: string; literal: number }> = [];
  if (first !== '') {
    const prefix = first.slice(0, MAX_PATTERN_LITERAL);
    patterns.push({ pattern: `${prefix}*`, literal: prefix.length });
  }
  if (last !== '' && pieces.length > 1) {
    const suffix = last.slice(-MAX_PATTERN_LITERAL);
    patterns.push({ pattern: `*${suffix}`, literal: suffix.length });
  }
  // `*piece*` only for a piece that is neither the first nor the last: around those, it would only match more.
  if (longest !== '' && longest !== first && longest !== last) {
    const infix = longest.slice(0, MAX_PATTERN_LITERAL);
    patterns.push({ pattern: `*${infix}*`, literal: infix.length });
  }
  if (patterns.length === 0) return [longest === '' ? '*' : `*${longest.slice(0, MAX_PATTERN_LITERAL)}*`];
  // The longest literal first (the fewest other keys match it); each pattern once.
  return [...new Set(patterns.sort((a, b) => b.literal - a.literal).map((entry) => entry.pattern))];
}

/** The narrowest pattern that matches a key's name (the first of {@link exactPatterns}). */
export function exactPattern(name: string): string {
  return exactPatterns(name)[0] ?? '*';
}

/** The fields of an entry besides its name, or `undefined` when it has none (`__proto__` kept as a field). */
function attributesOf(entry: ApiKeyEntry): Record<string, unknown> | undefined {
  const fields = Object.entries(entry).filter(([field]) => field !== 'name');
  // Object.fromEntries defines own properties: an assignment to `__proto__` would set the prototype instead.
  return fields.length === 0 ? undefined : Object.fromEntries(fields);
}

/** What the next snapshot records about the run that wrote it. */
export interface SnapshotMeta {
  readonly principal: string;
  readonly pattern: string | null;
  /** The normalised host the keys were read from. */
  readonly host: string;
  readonly runId: string;
  readonly now: Date;
}

/**
 * Whether `previous` cannot be compared with a walk of `meta`: there is none (or only a failure was ever
 * recorded), or it was taken with another pattern or from another host (a state from before hosts were recorded belongs to the configured host).
 */
export function needsBaseline(
  previous: Snapshot | undefined,
  meta: Pick<SnapshotMeta, 'pattern' | 'host'>,
): boolean {
  if (previous === undefined || previous.awaitingBaseline === true) return true;
  if (previous.pattern !== meta.pattern) return true;
  return previous.host !== null && previous.host !== meta.host;
}

/**
 * Builds the inventory that replaces `previous`: every key of the inventory (a walk, or a reconciliation's
 * sorted list), sorted, with its first-seen time carried over (or now, for a new key; a baseline starts over),
 * last-seen now, and BigState's other fields as attributes. The outbox starts empty and the write id unset:
 * the run fills both when it commits.
 */
export function buildSnapshot(
  previous: Snapshot | undefined,
  inventory: Inventory | readonly ApiKeyEntry[],
  meta: SnapshotMeta,
): Snapshot {
  const now = meta.now.toISOString();
  const entries = Array.isArray(inventory)
    ? isSortedByName(inventory)
      ? inventory
      : [...inventory].sort(byName)
    : sortedEntries(inventory as Inventory);
  const before = previous === undefined || needsBaseline(previous, meta) ? [] : sortedKeys(previous);
  const keys: KeyRecord[] = [];
  const record = (entry: ApiKeyEntry, earlier?: KeyRecord) => {
    // The walk is the truth: a field BigState no longer returns is no longer kept.
    const attributes = attributesOf(entry);
    const firstSeen = earlier?.firstSeen ?? now;
    const name = entry.name;
    const own = attributes
      ? { name, firstSeen, lastSeen: now, attributes }
      : { name, firstSeen, lastSeen: now };
    // A field a later version keeps on a key (not BigState's: those are in `attributes`) is carried over.
    const later = earlier === undefined ? undefined : laterKeyFields(earlier);
    keys.push(later === undefined ? own : { ...later, ...own });
  };
  merge(entries, before, {
    onlyLeft: (entry) => record(entry),
    both: (entry, earlier) => record(entry, earlier),
  });
  return {
    schemaVersion: 2,
    principal: meta.principal,
    host: meta.host,
    pattern: meta.pattern,
    auditedAt: now,
    runId: meta.runId,
    writeId: '',
    keyCount: keys.length,
    keys,
    pending: [],
  };
}

/** What identifies a change: the same inputs always give the same id, so a re-published change deduplicates. */
export interface ChangeIdInput {
  readonly principal: string;
  readonly previousVersion: string | null;
  readonly kind: 'baseline' | 'changed' | 'stale';
  readonly pattern: string | null;
  /** For a change: the added names; for a baseline: every name of the new snapshot; for stale: the stale names. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** A deterministic change id (`chg-` and 32 hex digits of a SHA-256 over the change and what it follows). */
export function changeId(input: ChangeIdInput): string {
  const hash = createHash('sha256');
  // JSON-encode every part: no separator can be forged by a name that contains it.
  hash.update(JSON.stringify([input.principal, input.previousVersion, input.kind, input.pattern]));
  hash.update(`\n+${input.added.length}`);
  for (const name of input.added) hash.update(`\n${JSON.stringify(name)}`);
  hash.update(`\n-${input.removed.length}`);
  for (const name of input.removed) hash.update(`\n${JSON.stringify(name)}`);
  return `chg-${hash.digest('hex').slice(0, 32)}`;
}
