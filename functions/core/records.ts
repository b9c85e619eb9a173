/**
 * Schemas of what the stores read back. A snapshot that does not parse is an error, never "no snapshot":
 * treating it as missing would start a baseline and forget every key.
 */
import { z } from 'zod';
import { StorageError } from '../commons/errors.js';
import type { Snapshot } from './ports.js';

const keyRecordSchema = z.object({
  name: z.string().min(1),
  firstSeen: z.string(),
  lastSeen: z.string(),
  attributes: z.record(z.string(), z.unknown()).optional(),
});

const snapshotSchema = z.object({
  schemaVersion: z.literal(1),
  principal: z.string(),
  pattern: z.string().nullable(),
  auditedAt: z.string(),
  runId: z.string(),
  keyCount: z.number().int().nonnegative(),
  keys: z.array(keyRecordSchema),
});

/**
 * Parses a stored snapshot of `principal`.
 * @throws StorageError naming `location` when the text is not a snapshot of that principal.
 */
export function parseSnapshot(text: string, principal: string, location: string): Snapshot {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StorageError(`snapshot ${location} is not valid JSON`, { cause: error });
  }
  const result = snapshotSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new StorageError(
      `snapshot ${location} is not a snapshot: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
    );
  }
  if (result.data.principal !== principal) {
    throw new StorageError(`snapshot ${location} belongs to another principal`);
  }
  return result.data as Snapshot;
}

/** Snapshots and records are stored as compact JSON with a final newline. */
export function serialize(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
