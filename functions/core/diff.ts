/**
 * The pure heart of the audit: comparing a snapshot with what one or two walks saw, and building the next
 * snapshot. No I/O here, so every rule is tested with plain fixtures.
 */
import { createHash } from 'node:crypto';
import type { ApiKeyEntry } from '../bigstate/types.js';
import type { KeyRecord, Snapshot } from './ports.js';

/** A principal's keys as one complete walk saw them, by name. */
export type Inventory = ReadonlyMap<string, ApiKeyEntry>;

/** Names sorted by UTF-16 code unit (the default sort order): the same on every machine and locale. */
export function sortNames(names: Iterable<string>): string[] {
  const sorted = [...names];
  // Walks usually arrive sorted already: checking is one pass, sorting a million names is not.
  for (let i = 1; i < sorted.length; i += 1) {
    if ((sorted[i - 1] as string) > (sorted[i] as string)) return sorted.sort();
  }
  return sorted;
}

/** The names of a set of keys, by membership: a Set of names, or a Map from name. */
export interface NameSet {
  has(name: string): boolean;
  keys(): Iterable<string>;
}

const indexes = new WeakMap<Snapshot, ReadonlyMap<string, KeyRecord>>();

/** A snapshot's keys by name; computed once per snapshot object, so a run indexes a large snapshot once. */
export function snapshotIndex(snapshot: Snapshot): ReadonlyMap<string, KeyRecord> {
  let index = indexes.get(snapshot);
  if (!index) {
    index = new Map(snapshot.keys.map((key) => [key.name, key]));
    indexes.set(snapshot, index);
  }
  return index;
}

/** The names of a snapshot, as a set. */
export function snapshotNames(snapshot: Snapshot): Set<string> {
  return new Set(snapshotIndex(snapshot).keys());
}

/** Names the previous snapshot had that the first walk did not see: removals still to be confirmed. */
export function removalCandidates(previous: NameSet, first: Inventory): string[] {
  const missing: string[] = [];
  for (const name of previous.keys()) if (!first.has(name)) missing.push(name);
  return sortNames(missing);
}

/** The outcome of comparing a snapshot with the walks of one run. */
export interface Reconciliation {
  /** Every key seen by either walk (the first walk's entry wins). */
  readonly inventory: Inventory;
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
export function reconcile(previous: NameSet, first: Inventory, second?: Inventory): Reconciliation {
  let inventory = first;
  if (second) {
    const late = [...second].filter(([name]) => !first.has(name));
    if (late.length > 0) inventory = new Map([...first, ...late]);
  }
  const added: string[] = [];
  for (const name of inventory.keys()) if (!previous.has(name)) added.push(name);
  const removed: string[] = [];
  for (const name of previous.keys()) if (!inventory.has(name)) removed.push(name);
  if (removed.length > 0 && !second) {
    throw new Error('reconcile: a removal must be confirmed by a second walk');
  }
  return { inventory, added: sortNames(added), removed: sortNames(removed) };
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
 * Builds the snapshot that replaces `previous`: every key of the inventory, sorted, with its first-seen time
 * carried over (or now, for a new key), last-seen now, and BigState's other fields as attributes.
 */
export function buildSnapshot(
  previous: Snapshot | undefined,
  inventory: Inventory,
  meta: SnapshotMeta,
): Snapshot {
  const now = meta.now.toISOString();
  const before = previous && previous.pattern === meta.pattern ? snapshotIndex(previous) : undefined;
  const keys = sortNames(inventory.keys()).map((name): KeyRecord => {
    const earlier = before?.get(name);
    const entry = inventory.get(name);
    const attributes = (entry && attributesOf(entry)) ?? earlier?.attributes;
    const firstSeen = earlier?.firstSeen ?? now;
    return attributes ? { name, firstSeen, lastSeen: now, attributes } : { name, firstSeen, lastSeen: now };
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
