/**
 * The pure heart of the audit: comparing a snapshot with what one or two walks saw, and building the next
 * snapshot. No I/O here, so every rule is tested with plain fixtures.
 */
import { createHash } from 'node:crypto';
import type { ApiKeyEntry } from '../bigstate/types.js';
import type { KeyRecord, Snapshot } from './ports.js';

/** A principal's keys as one complete walk saw them, by name. */
export type Inventory = ReadonlyMap<string, ApiKeyEntry>;

/** Names sorted by code unit, the same on every machine and locale. */
export function sortNames(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The names of a snapshot, as a set. */
export function snapshotNames(snapshot: Snapshot): Set<string> {
  return new Set(snapshot.keys.map((key) => key.name));
}

/** Names the previous snapshot had that the first walk did not see: removals still to be confirmed. */
export function removalCandidates(previous: ReadonlySet<string>, first: Inventory): string[] {
  const missing: string[] = [];
  for (const name of previous) if (!first.has(name)) missing.push(name);
  return sortNames(missing);
}

/** The outcome of comparing a snapshot with the walks of one run. */
export interface Reconciliation {
  /** Every key seen by either walk (the first walk's entry wins). */
  readonly inventory: Map<string, ApiKeyEntry>;
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
export function reconcile(
  previous: ReadonlySet<string>,
  first: Inventory,
  second?: Inventory,
): Reconciliation {
  const inventory = new Map(first);
  if (second) {
    for (const [name, entry] of second) if (!inventory.has(name)) inventory.set(name, entry);
  }
  const added: string[] = [];
  for (const name of inventory.keys()) if (!previous.has(name)) added.push(name);
  const removed: string[] = [];
  for (const name of previous) if (!inventory.has(name)) removed.push(name);
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
  const before = new Map<string, KeyRecord>();
  if (previous && previous.pattern === meta.pattern)
    for (const key of previous.keys) before.set(key.name, key);
  const keys = sortNames(inventory.keys()).map((name): KeyRecord => {
    const entry = inventory.get(name) ?? { name };
    const attributes = attributesOf(entry) ?? before.get(name)?.attributes;
    const firstSeen = before.get(name)?.firstSeen ?? now;
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
