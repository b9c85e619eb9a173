/**
 * Schemas of what the stores read back. A state that does not parse is an error, never "no state": treating it
 * as missing would start a baseline and forget every key.
 *
 * Schema 2 is the principal's state with its outbox (`ports.ts`). Schema 1 (before the outbox) is read as a
 * schema-2 state with no host (it belongs to the configured one), no pending change and no write id, so an
 * upgrade needs no new baseline.
 */
import * as z from 'zod/mini';
import { RecordFormatError, StorageError } from '../commons/errors.js';
import type { ChangeRecord, RunState, SideFailure, Snapshot, StoredSideFailure } from './ports.js';

// Loose: a field a later version adds to a key survives a read by this one (and `buildSnapshot` carries it).
const keyRecordSchema = z.looseObject({
  name: z.string().check(z.minLength(1)),
  firstSeen: z.string(),
  lastSeen: z.string(),
  attributes: z.optional(z.record(z.string(), z.unknown())),
});

const names = z.array(z.string());

const changeRecordSchema = z.object({
  schemaVersion: z.literal(1),
  changeId: z.string().check(z.minLength(1)),
  runId: z.string(),
  principal: z.string(),
  kind: z.enum(['baseline', 'changed', 'stale']),
  pattern: z.nullable(z.string()),
  detectedAt: z.string(),
  previousSnapshotVersion: z.nullable(z.string()),
  added: names,
  removed: names,
  counts: z.object({
    added: z.int().check(z.nonnegative()),
    removed: z.int().check(z.nonnegative()),
    total: z.int().check(z.nonnegative()),
  }),
  snapshotLocation: z.string(),
  changeRecordLocation: z.string(),
  newPrincipal: z.optional(z.boolean()),
  stale: z.optional(
    z.array(
      z.object({
        name: z.string(),
        ageDays: z.int(),
        ageFrom: z.enum(['created', 'first-seen']),
        createdAt: z.nullable(z.string()),
      }),
    ),
  ),
  maxKeyAgeDays: z.optional(z.int()),
  reportLocation: z.optional(z.string()),
  info: z.optional(z.object({ type: z.nullable(z.number()), displayName: z.nullable(z.string()) })),
});

const failureSchema = z.object({
  stage: z.string(),
  errorName: z.string(),
  status: z.nullable(z.int()),
  reason: z.string(),
  since: z.string(),
  lastNotifiedAt: z.nullable(z.string()),
  runId: z.string(),
  toldBefore: z.optional(z.literal(true)),
});

const runStateSchema = z.looseObject({
  schemaVersion: z.literal(1),
  writeId: z.string(),
  failure: z.optional(failureSchema),
  resumeFrom: z.optional(z.string()),
});

const sideFailureSchema = z.looseObject({
  schemaVersion: z.literal(1),
  principal: z.string(),
  writeId: z.string(),
  failure: failureSchema,
});

const common = {
  principal: z.string(),
  pattern: z.nullable(z.string()),
  auditedAt: z.string(),
  runId: z.string(),
  keyCount: z.int().check(z.nonnegative()),
  keys: z.array(keyRecordSchema),
};

// Loose: a later version's optional fields survive a read by this one (and its write, which spreads the state).
const stateSchema = z.looseObject({
  schemaVersion: z.literal(2),
  ...common,
  host: z.nullable(z.string()),
  writeId: z.string(),
  pending: z.array(
    z.object({ record: changeRecordSchema, deliveredTo: z.array(z.string().check(z.minLength(1))) }),
  ),
  failure: z.optional(failureSchema),
  awaitingBaseline: z.optional(z.literal(true)),
  series: z.optional(z.array(z.object({ at: z.string(), count: z.int() }))),
  recentRemovals: z.optional(z.array(z.object({ name: z.string(), removedAt: z.string() }))),
  staleReported: z.optional(z.array(z.string())),
  info: z.optional(z.object({ type: z.nullable(z.number()), displayName: z.nullable(z.string()) })),
});

const legacySchema = z.object({ schemaVersion: z.literal(1), ...common });

/** The kinds of change this version delivers (its schema's). */
const KNOWN_KINDS: ReadonlySet<string> = new Set(Object.keys(changeRecordSchema.shape.kind.def.entries));

/** Whether an issue is about the kind of an owed change (`pending.N.record.kind`). */
function isKindPath(path: readonly PropertyKey[]): boolean {
  return path.length === 4 && path[0] === 'pending' && path[2] === 'record' && path[3] === 'kind';
}

/** The first kind of an owed change that this version does not know (a newer version's), if any. */
function laterKind(json: unknown): string | undefined {
  const pending = (json as { pending?: unknown } | null)?.pending;
  if (!Array.isArray(pending)) return undefined;
  for (const entry of pending) {
    const kind = (entry as { record?: { kind?: unknown } } | null)?.record?.kind;
    if (typeof kind === 'string' && !KNOWN_KINDS.has(kind)) return kind;
  }
  return undefined;
}

/** `__proto__` is a name like any other: JSON.parse makes it an own property, and so must every copy. */
function reviveAttributes(snapshot: Snapshot, json: unknown): Snapshot {
  const raw = (json as { keys?: Array<{ attributes?: Record<string, unknown> }> }).keys;
  if (!raw?.some((key) => key.attributes !== undefined && Object.hasOwn(key.attributes, '__proto__'))) {
    return snapshot;
  }
  // zod copies records key by key, and an assignment to `__proto__` sets the prototype instead of a field.
  return {
    ...snapshot,
    keys: snapshot.keys.map((key, i) =>
      raw[i]?.attributes === undefined ? key : { ...key, attributes: raw[i]?.attributes },
    ),
  };
}

function issueText(error: z.core.$ZodError): string {
  const issue = error.issues[0];
  // zod/mini carries no message texts: the issue's code and path say what is wrong.
  return `${issue?.code ?? 'invalid'} at ${issue?.path.join('.') || '(root)'}`;
}

/**
 * Parses a stored state of `principal` (schema 2, or schema 1 read as schema 2).
 * @throws StorageError naming `location` when the text is not a state of that principal.
 */
export function parseSnapshot(text: string, principal: string, location: string): Snapshot {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StorageError(`snapshot ${location} is not valid JSON`, { cause: error });
  }
  const version = (json as { schemaVersion?: unknown } | null)?.schemaVersion;
  let snapshot: Snapshot;
  if (version === 1) {
    const result = legacySchema.safeParse(json);
    if (!result.success) {
      throw new StorageError(`snapshot ${location} is not a snapshot: ${issueText(result.error)}`);
    }
    snapshot = { ...result.data, schemaVersion: 2, host: null, writeId: '', pending: [] } as Snapshot;
  } else {
    const result = stateSchema.safeParse(json);
    if (!result.success) {
      // Only when nothing else is wrong: a state corrupt elsewhere must say so, not send people to a deployment.
      const onlyKinds = result.error.issues.every((issue) => isKindPath(issue.path));
      const later = onlyKinds ? laterKind(json) : undefined;
      const what =
        typeof version === 'number' && version > 2
          ? `schema version ${version} is newer than this code reads (2): deploy the newer version`
          : later !== undefined
            ? `it owes a change of kind ${JSON.stringify(later)}, which a newer version wrote and this one cannot deliver: deploy the newer version`
            : issueText(result.error);
      throw new StorageError(`snapshot ${location} is not a snapshot: ${what}`);
    }
    snapshot = result.data as unknown as Snapshot;
  }
  if (snapshot.principal !== principal) {
    throw new StorageError(`snapshot ${location} belongs to another principal`);
  }
  for (const pending of snapshot.pending) {
    if (pending.record.principal !== principal) {
      throw new StorageError(`snapshot ${location} holds a pending change of another principal`);
    }
  }
  return reviveAttributes(snapshot, json);
}

/** The fields of a state this version knows (its schema's); any other field was written by a later version. */
const KNOWN_STATE_FIELDS = new Set(Object.keys(stateSchema.shape));
/** The fields of a key record this version knows. */
const KNOWN_KEY_FIELDS = new Set(Object.keys(keyRecordSchema.shape));

/** The fields of `record` outside `known` (written by a later version), or `undefined` when there are none. */
function fieldsBeyond(record: object, known: ReadonlySet<string>): Record<string, unknown> | undefined {
  let found: Array<[string, unknown]> | undefined;
  // No allocation for the usual record (three or four known fields): this runs for every key of every principal.
  for (const field in record) {
    if (known.has(field)) continue;
    found ??= [];
    found.push([field, (record as Record<string, unknown>)[field]]);
  }
  // fromEntries: a field named `__proto__` stays a field.
  return found && Object.fromEntries(found);
}

/** The fields of a key record that a later version wrote (see {@link laterFields}), or `undefined`. */
export function laterKeyFields(key: object): Record<string, unknown> | undefined {
  return fieldsBeyond(key, KNOWN_KEY_FIELDS);
}

/**
 * The fields of a state that a later version wrote and this one does not know: a commit carries them over, so a
 * rollback does not erase what the newer version keeps (its own flags, series, ...).
 */
export function laterFields(state: Snapshot | undefined): Record<string, unknown> {
  return state === undefined ? {} : (fieldsBeyond(state, KNOWN_STATE_FIELDS) ?? {});
}

/** Parses `text` as JSON and checks it against `schema`; a StorageError naming `location` and `what` otherwise. */
function parseStored<T>(text: string, schema: z.ZodMiniType, what: string, location: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new StorageError(`${what} ${location} is not valid JSON`, { cause: error });
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new StorageError(`${what} ${location} is not a ${what}: ${issueText(result.error)}`);
  }
  return result.data as T;
}

/** A change record as stored in the history. */
export function parseChangeRecord(text: string, location: string): ChangeRecord {
  return parseStored(text, changeRecordSchema, 'change record', location);
}

/**
 * Parses the run-level record.
 * @throws StorageError naming `location` when the text is not one.
 */
export function parseRunState(text: string, location: string): RunState {
  return parseStored(text, runStateSchema, 'run record', location);
}

/**
 * The run-level record as a store found it at `version`.
 * @throws RecordFormatError (with the version) when the text is not one this version reads.
 */
export function storedRunState(
  text: string,
  location: string,
  version: string,
): { readonly state: RunState; readonly version: string } {
  try {
    return { state: parseRunState(text, location), version };
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    throw new RecordFormatError(error.message, version, { cause: error });
  }
}

/**
 * Parses a principal's side failure record.
 * @throws StorageError naming `location` when the text is not one of that principal.
 */
export function parseSideFailure(text: string, principal: string, location: string): SideFailure {
  const record = parseStored<SideFailure>(text, sideFailureSchema, 'failure record', location);
  if (record.principal !== principal) {
    throw new StorageError(`failure record ${location} belongs to another principal`);
  }
  return record;
}

/**
 * A side failure as a store found it at `version`: one that does not parse (corrupt, a newer release's, another
 * principal's) is returned without its record, so the run replaces or deletes it instead of failing on it.
 */
export function storedSideFailure(
  text: string,
  principal: string,
  location: string,
  version: string,
): StoredSideFailure {
  try {
    return { record: parseSideFailure(text, principal, location), version };
  } catch (error) {
    if (!(error instanceof StorageError)) throw error;
    return { record: undefined, version, unreadable: error.message };
  }
}

/**
 * The `principal` a state's text names, without validating the rest: how a store lists the principal of a
 * hashed segment, whose name the key does not say. `undefined` when the text names none.
 */
export function principalNamedIn(text: string): string | undefined {
  try {
    const principal = (JSON.parse(text) as { principal?: unknown } | null)?.principal;
    return typeof principal === 'string' ? principal : undefined;
  } catch {
    return undefined;
  }
}

/** Snapshots and records are stored as compact JSON with a final newline. */
export function serialize(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}
