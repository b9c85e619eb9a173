/**
 * The ports of the audit core: what a run needs from the outside world. The AWS adapters
 * (`functions/adapters/aws`) and the local ones (`functions/adapters/local`) implement them.
 */
import type { ApiKeyProvider } from '../bigstate/types.js';

/** One key as a snapshot remembers it. */
export interface KeyRecord {
  readonly name: string;
  /** When an audit first saw the key (ISO 8601). */
  readonly firstSeen: string;
  /** When an audit last saw the key (ISO 8601). */
  readonly lastSeen: string;
  /** Fields BigState returned besides `name`, kept as they were. */
  readonly attributes?: Readonly<Record<string, unknown>>;
}

/** The complete key inventory of one principal after a complete walk. */
export interface Snapshot {
  readonly schemaVersion: 1;
  readonly principal: string;
  /** The pattern the walk used; `null` = all keys. A different pattern starts a new baseline. */
  readonly pattern: string | null;
  readonly auditedAt: string;
  readonly runId: string;
  readonly keyCount: number;
  /** Sorted by name. */
  readonly keys: readonly KeyRecord[];
}

/** A snapshot with the store's version of it (an S3 ETag, a file hash): what a conditional write compares. */
export interface StoredSnapshot {
  readonly snapshot: Snapshot;
  readonly version: string;
}

/** What a run found for one principal, kept in the history and published. */
export interface ChangeRecord {
  readonly schemaVersion: 1;
  /** Deterministic: the same change from the same previous snapshot always gets the same id. */
  readonly changeId: string;
  readonly runId: string;
  readonly principal: string;
  /** `baseline`: the first snapshot (or the first after the pattern changed); `changed`: keys added or removed. */
  readonly kind: 'baseline' | 'changed';
  readonly pattern: string | null;
  readonly detectedAt: string;
  readonly previousSnapshotVersion: string | null;
  /** Sorted names. Empty for a baseline. */
  readonly added: readonly string[];
  /** Sorted names; each confirmed missing by a second walk. Empty for a baseline. */
  readonly removed: readonly string[];
  readonly counts: { readonly added: number; readonly removed: number; readonly total: number };
  readonly snapshotLocation: string;
  readonly changeRecordLocation: string;
}

/** Latest snapshot per principal plus the change history. */
export interface SnapshotStore {
  /** The latest snapshot, or `undefined` when the principal has none yet. Throws StorageError. */
  read(principal: string): Promise<StoredSnapshot | undefined>;
  /**
   * Replaces the latest snapshot only if it is still `expectedVersion` (`undefined`: only if there is none).
   * Throws ConcurrentWriteError when that precondition fails, StorageError otherwise.
   */
  write(principal: string, snapshot: Snapshot, expectedVersion: string | undefined): Promise<void>;
  /** Stores a change record under its id; storing the same id again is a no-op. Throws StorageError. */
  writeChangeRecord(record: ChangeRecord): Promise<void>;
  /** Where the latest snapshot of a principal lives (e.g. `s3://bucket/key`), for messages. */
  snapshotLocation(principal: string): string;
  /** Where a change record lives, for messages. */
  changeRecordLocation(principal: string, changeId: string): string;
}

/** The BigState API key; `refresh` forces a fresh read (after a 401). */
export interface SecretSource {
  readonly getApiKey: ApiKeyProvider;
}

/** A principal the run could not audit. */
export interface FailureNotice {
  readonly kind: 'failed';
  readonly runId: string;
  readonly principal: string;
  readonly reason: string;
  readonly errorName: string;
  readonly detectedAt: string;
}

/** Something worth telling people and machines about. */
export type Notice =
  | { readonly kind: 'changed'; readonly record: ChangeRecord }
  | { readonly kind: 'baseline'; readonly record: ChangeRecord }
  | FailureNotice;

/** Publishes a notice on every channel; resolves only when every channel accepted it. Throws PublishError. */
export interface ChangePublisher {
  publish(notice: Notice): Promise<void>;
}

/** Where "now" comes from (tests fix it). */
export interface Clock {
  now(): Date;
}

/** The logging the core does; Powertools' Logger fits it. Never give it a secret. */
export interface AuditLogger {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}
