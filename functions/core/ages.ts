/**
 * How old a key is: from the creation time BigState returns among a key's fields when it does, otherwise from
 * when an audit first saw it (a lower bound: the key may be older). Used by the key-age notices and the report.
 */
import type { KeyRecord } from './ports.js';

/** The fields a creation time may come in, in the order they are looked for. */
export const CREATION_FIELDS = ['createdAt', 'created', 'creationTime', 'created_at', 'createTime'] as const;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** A key's creation time from its BigState fields (ISO 8601), or `null` when it has none that parses. */
export function creationTimeOf(attributes: Readonly<Record<string, unknown>> | undefined): Date | null {
  if (attributes === undefined) return null;
  for (const field of CREATION_FIELDS) {
    const value = Object.hasOwn(attributes, field) ? attributes[field] : undefined;
    if (typeof value !== 'string' || !ISO_8601.test(value.trim())) continue;
    const at = Date.parse(value.trim());
    if (!Number.isNaN(at)) return new Date(at);
  }
  return null;
}

/** A key's age in whole days, and how it was known. */
export interface KeyAge {
  readonly ageDays: number;
  readonly ageFrom: 'created' | 'first-seen';
  readonly createdAt: string | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The age of a key at `now` (never negative). A creation time after the key was first seen (a wrong clock, a
 * field that means something else, a forged `2999-01-01`) cannot be its age: the key existed when first seen, so
 * the first-seen lower bound counts instead, and a key never looks younger than the audits saw it.
 */
export function ageOf(key: KeyRecord, now: Date): KeyAge {
  const created = creationTimeOf(key.attributes);
  const firstSeen = new Date(key.firstSeen);
  const fromCreated = created !== null && !(created.getTime() > firstSeen.getTime());
  const since = fromCreated ? created : firstSeen;
  const days = Math.floor((now.getTime() - since.getTime()) / DAY_MS);
  return {
    ageDays: Number.isFinite(days) ? Math.max(0, days) : 0,
    ageFrom: fromCreated ? 'created' : 'first-seen',
    createdAt: created?.toISOString() ?? null,
  };
}
