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

/**
 * The state of one principal, stored as one document (`snapshots/<principal>.json`): its key inventory after
 * the last complete walk, and the outbox of notices committed with it and not yet delivered. Keeping both in
 * one document is what lets one conditional write commit a change and its notice together.
 *
 * Versioned: schema 1 (inventory only, before the outbox) is still read, as a state with no host, no pending
 * notices and no write id (see `records.ts`). Later fields are added as optional fields of schema 2.
 */
export interface Snapshot {
  readonly schemaVersion: 2;
  readonly principal: string;
  /**
   * The BigState host the keys were read from, normalised (`normalizeHost`); `null` in a state written before
   * hosts were recorded, which is taken to belong to the configured host. Another host starts a new baseline.
   */
  readonly host: string | null;
  /** The pattern the walk used; `null` = all keys. A different pattern starts a new baseline. */
  readonly pattern: string | null;
  /** When the keys were last read completely (ISO 8601). */
  readonly auditedAt: string;
  /** The run that last read the keys. */
  readonly runId: string;
  /**
   * Unique per write (the run id and a sequence number): the stored bytes, hence the S3 ETag, never repeat, so
   * content going A -> B -> A can never satisfy an old `If-Match`.
   */
  readonly writeId: string;
  readonly keyCount: number;
  /** Sorted by name. */
  readonly keys: readonly KeyRecord[];
  /** The outbox: changes committed with this state that some channel has not delivered yet, oldest first. */
  readonly pending: readonly PendingChange[];
  /**
   * Set while the principal keeps failing: what failed and when people were last told, so a failure is
   * published when it starts or its reason changes, then at most once a day, and a recovery once.
   */
  readonly failure?: FailureState | undefined;
  /**
   * True for a state that holds no inventory yet (the principal has only ever failed): its keys mean
   * nothing, and its first complete walk is a baseline.
   */
  readonly awaitingBaseline?: true | undefined;
  /** What BigState's principal listing says of the principal (discovery), kept for the notices. */
  readonly info?: PrincipalInfo | undefined;
  /** Its key count over time, oldest first: one point per write (the report's chart). At most 400 points. */
  readonly series?: ReadonlyArray<{ readonly at: string; readonly count: number }> | undefined;
  /** Keys reported removed in the last 30 days, newest first (the report). */
  readonly recentRemovals?: ReadonlyArray<{ readonly name: string; readonly removedAt: string }> | undefined;
  /** Keys already reported stale (`maxKeyAgeDays`): told once when they cross the line, not every run. */
  readonly staleReported?: readonly string[] | undefined;
}

/** A principal as BigState's listing describes it. */
export interface PrincipalInfo {
  /** BigState's `type`: 1 = application, 2 = user; `null` when not given. */
  readonly type: number | null;
  /** BigState's display `name` (data from BigState: escaped wherever people read it); `null` when not given. */
  readonly displayName: string | null;
}

/** Why a principal (or the run itself) is failing, as the failure notices compare it. */
export interface FailureState {
  /** The stage that failed, its counts left out (`confirming N removal(s) ...`). */
  readonly stage: string;
  readonly errorName: string;
  /** The HTTP status of the failed request, when there was one. */
  readonly status: number | null;
  /** The last reason in words (for people; not compared). */
  readonly reason: string;
  /** When this reason was first seen (ISO 8601). */
  readonly since: string;
  /** When people were last told (ISO 8601); `null` when no notice went out. */
  readonly lastNotifiedAt: string | null;
  /**
   * People were told of an earlier reason of this same failing streak: its end is news even if the notice of the
   * current reason could not go out.
   */
  readonly toldBefore?: true | undefined;
  /** The run that last saw it. */
  readonly runId: string;
}

/** The run-level record beside the principals' states: failures of the run itself (an unusable secret). */
export interface RunState {
  readonly schemaVersion: 1;
  /** Unique per write, as a snapshot's. */
  readonly writeId: string;
  readonly failure?: FailureState | undefined;
  /** The first principal the last run's time budget did not reach: the next run starts with it. */
  readonly resumeFrom?: string | undefined;
}

/** A principal's failure kept beside its unreadable state (`failures/<principal>.json`). */
export interface SideFailure {
  readonly schemaVersion: 1;
  readonly principal: string;
  /** Unique per write, as a snapshot's. */
  readonly writeId: string;
  readonly failure: FailureState;
}

/** A side failure with the store's version of it. */
export interface StoredSideFailure {
  /**
   * `undefined` when the object there is not a record this version reads (corrupt, a newer release's): it says
   * nothing of what was told, and is replaced or deleted at `version` like any other.
   */
  readonly record: SideFailure | undefined;
  readonly version: string;
  /** Why `record` is `undefined`. */
  readonly unreadable?: string | undefined;
}

/** A change in the outbox, with the channels that have already delivered it. */
export interface PendingChange {
  readonly record: ChangeRecord;
  /** Names of the channels that delivered it (e.g. `sns`); the others still owe it. */
  readonly deliveredTo: readonly string[];
}

/** A snapshot with the store's version of it (an S3 ETag, a file hash): what a conditional write compares. */
export interface StoredSnapshot {
  readonly snapshot: Snapshot;
  readonly version: string;
}

/** What a run found for one principal, kept in the history and published. */
export interface ChangeRecord {
  readonly schemaVersion: 1;
  /** Deterministic: the same change from the same previous state always gets the same id. */
  readonly changeId: string;
  readonly runId: string;
  readonly principal: string;
  /**
   * `baseline`: the first snapshot (or the first after the pattern or host changed); `changed`: keys added or
   * removed; `stale`: keys that crossed `maxKeyAgeDays` (listed in `stale`).
   */
  readonly kind: 'baseline' | 'changed' | 'stale';
  readonly pattern: string | null;
  readonly detectedAt: string;
  readonly previousSnapshotVersion: string | null;
  /** Sorted names. Empty for a baseline. */
  readonly added: readonly string[];
  /** Sorted names; each confirmed gone by an exact query of that key. Empty for a baseline. */
  readonly removed: readonly string[];
  readonly counts: { readonly added: number; readonly removed: number; readonly total: number };
  readonly snapshotLocation: string;
  readonly changeRecordLocation: string;
  /** A baseline of a principal that discovery found for the first time. */
  readonly newPrincipal?: boolean | undefined;
  /** For `stale`: the keys that crossed the age limit, with their ages and how each age was known. */
  readonly stale?: readonly StaleKey[] | undefined;
  /** For `stale`: the limit they crossed. */
  readonly maxKeyAgeDays?: number | undefined;
  /** Where the latest inventory report is (written after the run). */
  readonly reportLocation?: string | undefined;
  /** What the principal listing says of the principal, when discovery found it. */
  readonly info?: PrincipalInfo | undefined;
}

/** A key older than the key-age policy allows. */
export interface StaleKey {
  readonly name: string;
  readonly ageDays: number;
  /** `created`: from the creation time BigState returned; `first-seen`: from the first audit that saw it (a lower bound). */
  readonly ageFrom: 'created' | 'first-seen';
  readonly createdAt: string | null;
}

/** What every call to the outside world takes: the signal that ends it (the run's deadline). */
export interface CallOptions {
  readonly signal?: AbortSignal | undefined;
}

/** Latest state per principal plus the change history. */
export interface SnapshotStore {
  /** The latest state, or `undefined` when the principal has none yet. Throws StorageError. */
  read(principal: string, options?: CallOptions): Promise<StoredSnapshot | undefined>;
  /**
   * Replaces the latest state only if it is still `expectedVersion` (`undefined`: only if there is none), and
   * returns the new version.
   * Throws ConcurrentWriteError when that precondition fails, StorageError otherwise.
   */
  write(
    principal: string,
    snapshot: Snapshot,
    expectedVersion: string | undefined,
    options?: CallOptions,
  ): Promise<string>;
  /**
   * Stores a change record under its id (never overwriting one); storing the same id again is a no-op.
   * Throws StorageError.
   */
  writeChangeRecord(record: ChangeRecord, options?: CallOptions): Promise<void>;
  /** The run-level record, or `undefined` when there is none. Throws StorageError. */
  readRunState(
    options?: CallOptions,
  ): Promise<{ readonly state: RunState; readonly version: string } | undefined>;
  /** Replaces the run-level record conditionally, as `write`; returns the new version. */
  writeRunState(state: RunState, expectedVersion: string | undefined, options?: CallOptions): Promise<string>;
  /**
   * A principal's failure kept aside while its state cannot be read (a corrupt object, access denied, a schema
   * this version does not read): the state is never written then, and its notices must still be rationed across
   * runs. `undefined` when there is none. Throws StorageError.
   */
  readSideFailure(principal: string, options?: CallOptions): Promise<StoredSideFailure | undefined>;
  /** Replaces the side failure conditionally, as `write`; returns the new version. */
  writeSideFailure(
    principal: string,
    record: SideFailure,
    expectedVersion: string | undefined,
    options?: CallOptions,
  ): Promise<string>;
  /**
   * Deletes the side failure if it is still `version` (the principal recovered).
   * Throws ConcurrentWriteError when it changed, StorageError.
   */
  deleteSideFailure(principal: string, version: string, options?: CallOptions): Promise<void>;
  /**
   * The principals that have a side failure, as their segments (`principalSegment` in `layout.ts`): one listing,
   * so a run looks for a recovery only where there is something to recover from. Throws StorageError.
   */
  sideFailureSegments(options?: CallOptions): Promise<ReadonlySet<string>>;
  /**
   * Every principal that has a state, each once, in no particular order (the run-level record excluded).
   * Throws StorageError.
   */
  principalsWithState(options?: CallOptions): AsyncIterable<string>;
  /**
   * Moves a principal's state into the archive: a copy to {@link archiveLocation} (only if the state is still
   * `version` and the archive does not hold one under that id yet), then a delete of the state (only if it is
   * still `version`). The history stays. Throws ConcurrentWriteError when the state changed, StorageError.
   */
  archive(principal: string, version: string, archiveId: string, options?: CallOptions): Promise<void>;
  /** Where an archived state lives, for messages. */
  archiveLocation(principal: string, archiveId: string): string;
  /** Where the latest inventory report is written, for the notices; absent when none is kept. */
  reportLocation?(): string;
  /** Where the latest snapshot of a principal lives (e.g. `s3://bucket/key`), for messages. */
  snapshotLocation(principal: string): string;
  /** Where a change record lives, for messages. */
  changeRecordLocation(principal: string, changeId: string): string;
}

/** Who holds the run lease, and until when. */
export interface Lease {
  readonly runId: string;
  /** ISO 8601: after it the lease is free even if its run never released it (a crashed run). */
  readonly expiresAt: string;
}

/**
 * One run at a time, across scheduled, fan-out and manual runs: a lease object created only if there is none
 * (`If-None-Match`), taken over only once expired (`If-Match` on the expired one), released only by its holder.
 */
export interface LeaseStore {
  /** Takes the lease, or says who holds it. Throws StorageError. */
  acquireLease(
    lease: Lease,
    now: Date,
    options?: CallOptions,
  ): Promise<{ readonly acquired: true } | { readonly acquired: false; readonly holder: Lease }>;
  /** Frees the lease if `runId` still holds it. Throws StorageError. */
  releaseLease(runId: string, options?: CallOptions): Promise<void>;
}

/** The BigState API key; `refresh` forces a fresh read (after a 401). */
export interface SecretSource {
  readonly getApiKey: ApiKeyProvider;
}

/** A principal the run could not audit, or (`principal: null`) a run that could audit none. */
export interface FailureNotice {
  readonly kind: 'failed';
  readonly runId: string;
  /** `null`: the run itself failed (e.g. the API key could not be read), not one principal. */
  readonly principal: string | null;
  readonly reason: string;
  readonly errorName: string;
  readonly detectedAt: string;
  /** When this reason was first seen: earlier than `detectedAt` for a daily reminder. */
  readonly failingSince: string;
}

/** A principal (or, with `principal: null`, the run) that succeeds again after a published failure. */
export interface RecoveredNotice {
  readonly kind: 'recovered';
  readonly runId: string;
  readonly principal: string | null;
  readonly detectedAt: string;
  /** When the failure that ended began. */
  readonly failingSince: string;
}

/** A principal that has a state, was missing from a complete listing, and that BigState says does not exist. */
export interface PrincipalRemovedNotice {
  readonly kind: 'principal-removed';
  /** Deterministic (the principal and the version of its state): deduplicate a notice told again on it. */
  readonly removalId: string;
  readonly runId: string;
  readonly principal: string;
  readonly info?: PrincipalInfo | undefined;
  /** The names of the keys it had, sorted. */
  readonly keys: readonly string[];
  readonly detectedAt: string;
  /** Where its state was archived (the history stays where it was). */
  readonly archiveLocation: string;
}

/** Something worth telling people and machines about. */
export type Notice =
  | { readonly kind: 'changed'; readonly record: ChangeRecord }
  | { readonly kind: 'baseline'; readonly record: ChangeRecord }
  | { readonly kind: 'stale'; readonly record: ChangeRecord }
  | FailureNotice
  | RecoveredNotice
  | PrincipalRemovedNotice;

/**
 * One way notices reach people or machines (SNS, EventBridge, the terminal). Resolves when the channel took the
 * notice; `'deferred'` when it took it for later delivery (the CLI's `--json` document, printed at the end), so
 * the change stays in the outbox until the caller acknowledges it. Throws PublishError.
 */
export interface NoticeChannel {
  /** Stable name, recorded in the outbox (`deliveredTo`). */
  readonly name: string;
  // biome-ignore lint/suspicious/noConfusingVoidType: an adapter resolves with nothing; only a deferring channel says so.
  publish(notice: Notice, options?: CallOptions): Promise<void | 'deferred'>;
}

/** A channel without its name (the adapters' side); the entry points name it. */
export type ChangePublisher = Pick<NoticeChannel, 'publish'>;

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
