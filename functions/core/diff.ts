/**
 * The pure heart of the audit: comparing a snapshot with what one or two walks saw, and building the next
 * snapshot. No I/O here, so every rule is tested with plain fixtures.
 */
import { createHash } from 'node:crypto';
import type { ApiKeyEntry } from '../bigstate/types.js';
import type { KeyRecord, Snapshot } from './ports.js';

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

/** The outcome of comparing a snapshot with the walks of one run. */
export interface Reconciliation {
  /** Every key seen by either walk, sorted by name (the first walk's entry wins). */
  readonly inventory: readonly ApiKeyEntry[];
  /** Sorted names present now and absent from the previous snapshot. */
  readonly added: string[];
  /** Sorted names of the previous snapshot that neither walk saw. */
  readonly removed: string[];
}

/**
 * Reconciles the previous snapshot with the run's walks. A key seen in either walk stays; a key is removed
 * only when it is missing from both. A removal needs a second walk to confirm it: called with removal
 * candidates and no second walk, this throws rather than report an unconfirmed removal.
 */
export function reconcile(previous: Snapshot, first: Inventory, second?: Inventory): Reconciliation {
  let inventory = sortedEntries(first);
  if (second) {
    const union: ApiKeyEntry[] = [];
    const keep = (entry: ApiKeyEntry) => union.push(entry);
    merge(inventory, sortedEntries(second), { onlyLeft: keep, onlyRight: keep, both: keep });
    inventory = union;
  }
  const added: string[] = [];
  const removed: string[] = [];
  merge(inventory, sortedKeys(previous), {
    onlyLeft: (entry) => added.push(entry.name),
    onlyRight: (key) => removed.push(key.name),
  });
  if (removed.length > 0 && !second) {
    throw new Error('reconcile: a removal must be confirmed by a second walk');
  }
  return { inventory, added, removed };
}

/** The fields of an entry besides its name, or `undefined` when it has none. */
function attributesOf(entry: ApiKeyEntry): Record<string, unknown> | undefined {
  let attributes: Record<string, unknown> | undefined;
  for (const [field, value] of Object.entries(entry)) {
    if (field === 'name') continue;
    attributes ??= {};
    attributes[field] = value;
  }
  return attributes;
}

/** What the next snapshot records about the run that wrote it. */
export interface SnapshotMeta {
  readonly principal: string;
  readonly pattern: string | null;
  readonly runId: string;
  readonly now: Date;
}

/**
 * Builds the snapshot that replaces `previous`: every key of the inventory (a walk, or a reconciliation's
 * sorted list), sorted, with its first-seen time carried over (or now, for a new key; a pattern change
 * starts over), last-seen now, and BigState's other fields as attributes.
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
  const before = previous && previous.pattern === meta.pattern ? sortedKeys(previous) : [];
  const keys: KeyRecord[] = [];
  const record = (entry: ApiKeyEntry, earlier?: KeyRecord) => {
    // The walk is the truth: a field BigState no longer returns is no longer kept.
    const attributes = attributesOf(entry);
    const firstSeen = earlier?.firstSeen ?? now;
    const name = entry.name;
    keys.push(
      attributes ? { name, firstSeen, lastSeen: now, attributes } : { name, firstSeen, lastSeen: now },
    );
  };
  merge(entries, before, {
    onlyLeft: (entry) => record(entry),
    both: (entry, earlier) => record(entry, earlier),
  });
  return {
    schemaVersion: 1,
    principal: meta.principal,
    pattern: meta.pattern,
    auditedAt: now,
    runId: meta.runId,
    keyCount: keys.length,
    keys,
  };
}

/** What identifies a change: the same inputs always give the same id, so a re-published change deduplicates. */
export interface ChangeIdInput {
  readonly principal: string;
  readonly previousVersion: string | null;
  readonly kind: 'baseline' | 'changed';
  readonly pattern: string | null;
  /** For a change: the added names; for a baseline: every name of the new snapshot. */
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
