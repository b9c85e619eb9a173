/**
 * Schemas of what the stores read back. A snapshot that does not parse is an error, never "no snapshot":
 * treating it as missing would start a baseline and forget every key.
 */
import * as z from 'zod/mini';
import { StorageError } from '../commons/errors.js';
import type { Snapshot } from './ports.js';

const keyRecordSchema = z.object({
  name: z.string().check(z.minLength(1)),
  firstSeen: z.string(),
  lastSeen: z.string(),
  attributes: z.optional(z.record(z.string(), z.unknown())),
});

const snapshotSchema = z.object({
  schemaVersion: z.literal(1),
  principal: z.string(),
  pattern: z.nullable(z.string()),
  auditedAt: z.string(),
  runId: z.string(),
  keyCount: z.int().check(z.nonnegative()),
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
    // zod/mini carries no message texts: the issue's code and path say what is wrong.
    throw new StorageError(
      `snapshot ${location} is not a snapshot: ${issue?.code ?? 'invalid'} at ${issue?.path.join('.') || '(root)'}`,
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
