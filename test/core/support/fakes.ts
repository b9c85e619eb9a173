/**
 * In-memory adapters for the audit core's tests: a snapshot store with real conditional-write semantics
 * (content-hash versions, like S3's ETags), recording notice channels with names, a scripted BigState lister
 * that answers exact-pattern queries too, clocks and a recording logger. Every store and channel call is
 * appended to a shared event log, so tests can assert the order of operations.
 */

import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiKeyEntry, ApiKeyLister, WalkOptions } from '../../../functions/bigstate/types.js';
import {
  ConcurrentWriteError,
  describeError,
  PublishError,
  StorageError,
} from '../../../functions/commons/errors.js';
import { matchesPattern } from '../../../functions/commons/glob.js';
import type { AuditSummary, PrincipalResult } from '../../../functions/core/audit.js';
import { principalSegment } from '../../../functions/core/layout.js';
import { noticePrincipal } from '../../../functions/core/messages.js';
import type {
  AuditLogger,
  CallOptions,
  ChangeRecord,
  Clock,
  KeyRecord,
  Notice,
  NoticeChannel,
  PendingChange,
  RunState,
  SideFailure,
  Snapshot,
  SnapshotStore,
  StoredSideFailure,
  StoredSnapshot,
} from '../../../functions/core/ports.js';
import { serialize } from '../../../functions/core/records.js';

/** The host the tests audit, as `normalizeHost` spells it. */
export const HOST = 'https://api.bigstate.dev';

/**
 * A shared, ordered log of what the adapters were asked to do: `read:<p>`, `write:<p>`, `record:<p>#<changeId>`,
 * `<channel>:<kind>:<p>` (with `#<changeId>` for a change or baseline).
 */
export type EventLog = string[];

/** The events without their change ids, for tests that only look at the order of operations. */
export function plain(events: EventLog): string[] {
  return events.map((event) => event.split('#')[0] as string);
}

/** A failure to play once (or on every call when `always`; only on a principal's `call`-th call, from 0). */
export interface Failure {
  readonly error: Error;
  readonly always?: boolean;
  /** The index of the call (per operation and principal, from 0) that fails; @default the next one */
  readonly call?: number;
}

export type StoreOperation =
  | 'read'
  | 'write'
  | 'writeChangeRecord'
  | 'readRunState'
  | 'writeRunState'
  | 'principalsWithState'
  | 'archive'
  | 'readSideFailure'
  | 'writeSideFailure'
  | 'deleteSideFailure'
  | 'sideFailureSegments';

/** What S3 returns as an ETag: a hash of the stored bytes. Equal content, equal version. */
export function contentVersion(text: string): string {
  return `"${createHash('md5').update(text).digest('hex')}"`;
}

/** A SnapshotStore in memory: content-hash versions and conditional writes as S3 does them. */
export class MemoryStore implements SnapshotStore {
  readonly snapshots = new Map<string, StoredSnapshot>();
  readonly records = new Map<string, ChangeRecord>();
  /** Every `write` call, with the version it expected, the bytes it carried and the version it made. */
  readonly writes: Array<{
    principal: string;
    snapshot: Snapshot;
    expectedVersion: string | undefined;
    text: string;
    version?: string;
    signal: AbortSignal | undefined;
  }> = [];
  readonly recordWrites: ChangeRecord[] = [];
  readonly reads: string[] = [];
  /** The signal of every call, in order. */
  readonly signals: Array<AbortSignal | undefined> = [];
  /** Every call, in order, with its signal: tells the run-level record's calls from a principal's. */
  readonly calls: Array<{ operation: StoreOperation; principal: string; signal: AbortSignal | undefined }> =
    [];
  readonly #failures = new Map<string, Failure[]>();
  readonly #callCounts = new Map<string, number>();
  /** Runs before a write is checked: lets a test play a concurrent writer. */
  beforeWrite: ((principal: string) => void) | undefined;
  /** Runs at the start of every call (awaited): lets a test end a deadline or hold a call. */
  onCall: ((operation: StoreOperation, principal: string, index: number) => void | Promise<void>) | undefined;
  /** Runs after a call succeeded. */
  afterCall: ((operation: StoreOperation, principal: string) => void) | undefined;

  constructor(readonly events: EventLog = []) {}

  /** Seeds a snapshot as if an earlier run had stored it; returns its version. */
  seed(snapshot: Snapshot): string {
    const version = contentVersion(serialize(snapshot));
    this.snapshots.set(snapshot.principal, { snapshot, version });
    return version;
  }

  /** The stored state of a principal (throws when there is none). */
  state(principal: string): Snapshot {
    const stored = this.snapshots.get(principal);
    if (stored === undefined) throw new Error(`no state stored for ${principal}`);
    return stored.snapshot;
  }

  failOn(operation: StoreOperation, principal: string, failure: Failure): void {
    const key = `${operation}:${principal}`;
    this.#failures.set(key, [...(this.#failures.get(key) ?? []), failure]);
  }

  snapshotLocation(principal: string): string {
    return `mem://snapshots/${principal}`;
  }

  changeRecordLocation(principal: string, changeId: string): string {
    return `mem://history/${principal}/${changeId}`;
  }

  async read(principal: string, options: CallOptions = {}): Promise<StoredSnapshot | undefined> {
    this.reads.push(principal);
    await this.#enter('read', principal, options.signal, `read:${principal}`);
    this.afterCall?.('read', principal);
    return this.snapshots.get(principal);
  }

  async write(
    principal: string,
    snapshot: Snapshot,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    const text = serialize(snapshot);
    const entry: (typeof this.writes)[number] = {
      principal,
      snapshot,
      expectedVersion,
      text,
      signal: options.signal,
    };
    this.writes.push(entry);
    await this.#enter('write', principal, options.signal, `write:${principal}`);
    this.beforeWrite?.(principal);
    const current = this.snapshots.get(principal)?.version;
    if (current !== expectedVersion) {
      throw new ConcurrentWriteError(`mem://snapshots/${principal} changed since this run read it`);
    }
    // The store keeps a copy, as S3 keeps bytes: a caller changing its object later changes nothing here.
    const version = contentVersion(text);
    this.snapshots.set(principal, { snapshot: JSON.parse(text) as Snapshot, version });
    entry.version = version;
    this.afterCall?.('write', principal);
    return version;
  }

  /** The run-level record, as S3 keeps it (principal `*` in failures and events). */
  runState: { state: RunState; version: string } | undefined;
  readonly runStateWrites: RunState[] = [];

  async readRunState(options: CallOptions = {}): Promise<{ state: RunState; version: string } | undefined> {
    await this.#enter('readRunState', '*', options.signal, 'read-run');
    return this.runState;
  }

  async writeRunState(
    state: RunState,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    await this.#enter('writeRunState', '*', options.signal, 'write-run', () =>
      this.runStateWrites.push(state),
    );
    if (this.runState?.version !== expectedVersion) {
      throw new ConcurrentWriteError('mem://snapshots/.run.json changed since this run read it');
    }
    const text = serialize(state);
    const version = contentVersion(text);
    this.runState = { state: JSON.parse(text) as RunState, version };
    return version;
  }

  /** Side failures (a principal's failure while its state cannot be read), by principal. */
  readonly sideFailures = new Map<string, StoredSideFailure>();

  async readSideFailure(
    principal: string,
    options: CallOptions = {},
  ): Promise<StoredSideFailure | undefined> {
    await this.#enter('readSideFailure', principal, options.signal, `read-failure:${principal}`);
    return this.sideFailures.get(principal);
  }

  async writeSideFailure(
    principal: string,
    record: SideFailure,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    await this.#enter('writeSideFailure', principal, options.signal, `write-failure:${principal}`);
    if (this.sideFailures.get(principal)?.version !== expectedVersion) {
      throw new ConcurrentWriteError(`mem://failures/${principal} changed since this run read it`);
    }
    const text = serialize(record);
    const version = contentVersion(text);
    this.sideFailures.set(principal, { record: JSON.parse(text) as SideFailure, version });
    return version;
  }

  async deleteSideFailure(principal: string, version: string, options: CallOptions = {}): Promise<void> {
    await this.#enter('deleteSideFailure', principal, options.signal, `delete-failure:${principal}`);
    const stored = this.sideFailures.get(principal);
    if (stored === undefined) return;
    if (stored.version !== version) {
      throw new ConcurrentWriteError(`mem://failures/${principal} changed since this run read it`);
    }
    this.sideFailures.delete(principal);
  }

  async sideFailureSegments(options: CallOptions = {}): Promise<ReadonlySet<string>> {
    await this.#enter('sideFailureSegments', '*', options.signal, 'list-failures');
    return new Set([...this.sideFailures.keys()].map(principalSegment));
  }

  /** States moved to the archive, by archive id. */
  readonly archived = new Map<string, Snapshot>();

  archiveLocation(principal: string, archiveId: string): string {
    return `mem://archive/${principal}/${archiveId}`;
  }

  async *principalsWithState(options: CallOptions = {}): AsyncGenerator<string, void, undefined> {
    await this.#enter('principalsWithState', '*', options.signal, 'list-states');
    yield* [...this.snapshots.keys()];
  }

  async archive(
    principal: string,
    version: string,
    archiveId: string,
    options: CallOptions = {},
  ): Promise<void> {
    await this.#enter('archive', principal, options.signal, `archive:${principal}`);
    const stored = this.snapshots.get(principal);
    if (stored === undefined || stored.version !== version) {
      throw new ConcurrentWriteError(`mem://snapshots/${principal} changed since this run read it`);
    }
    this.archived.set(archiveId, stored.snapshot);
    this.snapshots.delete(principal);
  }

  async writeChangeRecord(record: ChangeRecord, options: CallOptions = {}): Promise<void> {
    await this.#enter(
      'writeChangeRecord',
      record.principal,
      options.signal,
      `record:${record.principal}#${record.changeId}`,
      () => this.recordWrites.push(record),
    );
    if (!this.records.has(record.changeId)) this.records.set(record.changeId, record);
    this.afterCall?.('writeChangeRecord', record.principal);
  }

  /** Logs the call, honours the signal (before and after the hook) and plays the failures. */
  async #enter(
    operation: StoreOperation,
    principal: string,
    signal: AbortSignal | undefined,
    event: string,
    record?: () => void,
  ): Promise<void> {
    const key = `${operation}:${principal}`;
    const index = this.#callCounts.get(key) ?? 0;
    this.#callCounts.set(key, index + 1);
    // Every call that starts is logged, one refused at once included: "no write starts" means none here.
    this.events.push(event);
    record?.();
    this.signals.push(signal);
    this.calls.push({ operation, principal, signal });
    this.#throwIfAborted(operation, principal, signal);
    await this.onCall?.(operation, principal, index);
    this.#throwIfAborted(operation, principal, signal);
    const failures = this.#failures.get(key) ?? [];
    const failure = failures.find((f) => f.call === undefined || f.call === index);
    if (failure === undefined) return;
    if (failure.always !== true) failures.splice(failures.indexOf(failure), 1);
    throw failure.error;
  }

  #throwIfAborted(operation: StoreOperation, principal: string, signal: AbortSignal | undefined): void {
    if (signal?.aborted) {
      throw new StorageError(`${operation} of ${principal} stopped: ${describeError(signal.reason)}`, {
        cause: signal.reason,
      });
    }
  }
}

/**
 * What recording a failure must leave exactly as it was, as the bytes a store keeps: the state without its
 * `failure` and the write id every write renews (so the inventory and its times, the outbox, the host and the
 * pattern). A failed principal "keeps its last good snapshot" when this is unchanged.
 */
export function keptOf(snapshot: Snapshot): string {
  const { failure: _failure, writeId: _writeId, ...kept } = snapshot;
  return serialize(kept);
}

/** The principal a notice is about (`*` for a notice about the whole run). */
export function principalOf(notice: Notice): string {
  return noticePrincipal(notice) ?? '*';
}

/** A notice channel that records every notice; `fail` and `defer` decide per notice. */
export class RecordingChannel implements NoticeChannel {
  /** Notices taken (delivered or deferred). */
  readonly notices: Notice[] = [];
  /** Notices taken for later delivery (`'deferred'`). */
  readonly deferred: Notice[] = [];
  /** Every notice offered, refused ones included. */
  readonly attempts: Notice[] = [];
  /** The signal of every attempt. */
  readonly signals: Array<AbortSignal | undefined> = [];
  /** Refuses a notice when it returns true (or an error, thrown as it is). */
  fail: ((notice: Notice) => boolean | Error) | undefined;
  /** Takes a notice for later delivery when it returns true. */
  defer: ((notice: Notice) => boolean) | undefined;
  /** Runs (awaited) before a notice is taken: lets a test end a deadline or hold a call. */
  beforePublish: ((notice: Notice, signal: AbortSignal | undefined) => void | Promise<void>) | undefined;
  /** Runs after a notice is taken. */
  afterPublish: ((notice: Notice) => void) | undefined;

  constructor(
    readonly name: string,
    readonly events: EventLog = [],
  ) {}

  async publish(notice: Notice, options: CallOptions = {}): Promise<undefined | 'deferred'> {
    const id = 'record' in notice ? `#${notice.record.changeId}` : '';
    // Every attempt is logged, one refused at once included.
    this.events.push(`${this.name}:${notice.kind}:${principalOf(notice)}${id}`);
    this.attempts.push(notice);
    this.signals.push(options.signal);
    if (options.signal?.aborted) {
      throw new PublishError(`${this.name} stopped: ${describeError(options.signal.reason)}`);
    }
    await this.beforePublish?.(notice, options.signal);
    if (options.signal?.aborted) {
      throw new PublishError(`${this.name} stopped: ${describeError(options.signal.reason)}`);
    }
    const refusal = this.fail?.(notice);
    if (refusal instanceof Error) throw refusal;
    if (refusal === true) throw new PublishError(`${this.name} refused the ${notice.kind} notice`);
    this.notices.push(notice);
    this.afterPublish?.(notice);
    if (this.defer?.(notice)) {
      this.deferred.push(notice);
      return 'deferred';
    }
    return undefined;
  }

  /** The notices of one kind. */
  ofKind<K extends Notice['kind']>(kind: K): Array<Extract<Notice, { kind: K }>> {
    return this.notices.filter((notice): notice is Extract<Notice, { kind: K }> => notice.kind === kind);
  }

  /** The change ids of the changes and baselines taken, in order. */
  changeIds(): string[] {
    return this.notices.flatMap((notice) => ('record' in notice ? [notice.record.changeId] : []));
  }
}

/** What a fake walk yields: names or entries, or an error to throw after yielding what came before. */
export type WalkScript =
  | ReadonlyArray<string | ApiKeyEntry>
  | { readonly keys?: ReadonlyArray<string | ApiKeyEntry>; readonly error: Error };

/** Whether `name` matches a BigState glob (`x`, `*x`, `x*`, `*x*`, `*`); `undefined` matches all. */
export const matchesGlob = matchesPattern;

const entryOf = (key: string | ApiKeyEntry): ApiKeyEntry => (typeof key === 'string' ? { name: key } : key);

/** One recorded `listApiKeys` call. */
export interface ListCall {
  readonly principal: string;
  readonly options: WalkOptions | undefined;
}

/**
 * An ApiKeyLister from a script. A call whose `pattern` is the run's (`pattern` option, default none) is a
 * walk: `inventory` per principal, or `walks(principal, index)` for walks that differ. Any other call is an exact
 * check: `exact(principal, pattern, index)`, by default what the principal's latest walk script (or its
 * inventory) holds that matches the pattern, i.e. what BigState holds now. Honours the deadline.
 */
export class FakeLister implements ApiKeyLister {
  /** Every walk, with its options. */
  readonly calls: ListCall[] = [];
  /** Every exact check, with its options. */
  readonly exactCalls: ListCall[] = [];
  active = 0;
  maxActive = 0;
  exactActive = 0;
  exactMaxActive = 0;
  readonly #walkCounts = new Map<string, number>();
  readonly #exactCounts = new Map<string, number>();
  readonly #latest = new Map<string, ReadonlyArray<string | ApiKeyEntry>>();

  constructor(
    readonly inventory: Record<string, ReadonlyArray<string | ApiKeyEntry>> = {},
    readonly options: {
      /** The run's pattern: calls with it are walks, any other call is an exact check. */
      pattern?: string;
      walks?: (principal: string, index: number) => WalkScript | undefined;
      exact?: (principal: string, pattern: string, index: number) => WalkScript | undefined;
      delayMs?: number | ((principal: string) => number);
      exactDelayMs?: number;
      /** How long an exact check takes to stop once its deadline ended (a slow teardown). @default 0 */
      exactStopMs?: number;
      onWalk?: (principal: string, index: number) => void;
      onExact?: (principal: string, pattern: string, index: number) => void;
    } = {},
  ) {}

  walksOf(principal: string): number {
    return this.#walkCounts.get(principal) ?? 0;
  }

  /** The patterns of the exact checks of a principal, in the order they started. */
  exactPatternsOf(principal: string): Array<string | undefined> {
    return this.exactCalls
      .filter((call) => call.principal === principal)
      .map((call) => call.options?.pattern);
  }

  listApiKeys(principal: string, options?: WalkOptions): AsyncGenerator<ApiKeyEntry, void, undefined> {
    const pattern = options?.pattern;
    return pattern === this.options.pattern
      ? this.#walk(principal, options)
      : this.#exact(principal, options);
  }

  async *#walk(principal: string, options: WalkOptions | undefined): AsyncGenerator<ApiKeyEntry> {
    const index = this.walksOf(principal);
    this.#walkCounts.set(principal, index + 1);
    this.calls.push({ principal, options });
    this.options.onWalk?.(principal, index);
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      const delay =
        typeof this.options.delayMs === 'function' ? this.options.delayMs(principal) : this.options.delayMs;
      if (delay !== undefined && delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const script = this.options.walks?.(principal, index) ?? this.inventory[principal] ?? [];
      if ('error' in script) {
        this.#latest.set(principal, script.keys ?? []);
        for (const key of script.keys ?? []) yield entryOf(key);
        throw script.error;
      }
      this.#latest.set(principal, script as ReadonlyArray<string | ApiKeyEntry>);
      for (const key of script as ReadonlyArray<string | ApiKeyEntry>) yield entryOf(key);
    } finally {
      this.active -= 1;
    }
  }

  async *#exact(principal: string, options: WalkOptions | undefined): AsyncGenerator<ApiKeyEntry> {
    const pattern = options?.pattern ?? '';
    const key = `${principal}\n${pattern}`;
    const index = this.#exactCounts.get(key) ?? 0;
    this.#exactCounts.set(key, index + 1);
    this.exactCalls.push({ principal, options });
    this.options.onExact?.(principal, pattern, index);
    this.exactActive += 1;
    this.exactMaxActive = Math.max(this.exactMaxActive, this.exactActive);
    const signal = options?.deadline?.signal;
    try {
      signal?.throwIfAborted();
      if (this.options.exactDelayMs !== undefined) {
        try {
          await sleep(this.options.exactDelayMs, undefined, signal ? { signal } : {});
        } catch (error) {
          if (this.options.exactStopMs) await sleep(this.options.exactStopMs);
          throw signal?.aborted ? signal.reason : error;
        }
      }
      const script: WalkScript =
        this.options.exact?.(principal, pattern, index) ??
        this.#latest.get(principal) ??
        this.inventory[principal] ??
        [];
      const keys = 'error' in script ? (script.keys ?? []) : (script as ReadonlyArray<string | ApiKeyEntry>);
      for (const key of keys) {
        const entry = entryOf(key);
        if (matchesGlob(entry.name, pattern)) yield entry;
      }
      if ('error' in script) throw script.error;
    } finally {
      this.exactActive -= 1;
    }
  }
}

/** A clock that returns `start`, then `start + stepMs`, and so on. */
export function steppingClock(start: string, stepMs = 0): Clock & { readonly calls: number } {
  let calls = 0;
  const base = Date.parse(start);
  return {
    now: () => new Date(base + stepMs * calls++),
    get calls() {
      return calls;
    },
  };
}

/** A logger that keeps every line. */
export class RecordingLogger implements AuditLogger {
  readonly lines: Array<{ level: string; message: string; extra: Record<string, unknown> }> = [];
  debug(message: string, ...extra: Record<string, unknown>[]): void {
    this.#push('debug', message, extra);
  }
  info(message: string, ...extra: Record<string, unknown>[]): void {
    this.#push('info', message, extra);
  }
  warn(message: string, ...extra: Record<string, unknown>[]): void {
    this.#push('warn', message, extra);
  }
  error(message: string, ...extra: Record<string, unknown>[]): void {
    this.#push('error', message, extra);
  }
  #push(level: string, message: string, extra: Record<string, unknown>[]): void {
    this.lines.push({ level, message, extra: Object.assign({}, ...extra) });
  }
}

/** Options of {@link snapshotOf}. */
export interface SnapshotFixtureOptions {
  pattern?: string | null;
  /** @default HOST */
  host?: string | null;
  at?: string;
  runId?: string;
  writeId?: string;
  keys?: KeyRecord[];
  pending?: PendingChange[];
}

/** A (schema 2) state fixture of `names` (sorted as given), every key first seen at `at`. */
export function snapshotOf(
  principal: string,
  names: readonly string[],
  options: SnapshotFixtureOptions = {},
): Snapshot {
  const at = options.at ?? '2025-01-01T00:00:00.000Z';
  const keys = options.keys ?? names.map((name) => ({ name, firstSeen: at, lastSeen: at }));
  return {
    schemaVersion: 2,
    principal,
    host: options.host === undefined ? HOST : options.host,
    pattern: options.pattern ?? null,
    auditedAt: at,
    runId: options.runId ?? 'run-0',
    writeId: options.writeId ?? `${options.runId ?? 'run-0'}/seed`,
    keyCount: keys.length,
    keys,
    pending: options.pending ?? [],
  };
}

/** A schema-1 snapshot (before the outbox and the host) as an earlier release stored it. */
export function legacySnapshotOf(
  principal: string,
  names: readonly string[],
  options: { pattern?: string | null; at?: string; runId?: string; keys?: KeyRecord[] } = {},
): Record<string, unknown> {
  const at = options.at ?? '2025-01-01T00:00:00.000Z';
  const keys = options.keys ?? names.map((name) => ({ name, firstSeen: at, lastSeen: at }));
  return {
    schemaVersion: 1,
    principal,
    pattern: options.pattern ?? null,
    auditedAt: at,
    runId: options.runId ?? 'run-0',
    keyCount: keys.length,
    keys,
  };
}

/** A change record fixture of `principal`, as a store names it. */
export function recordOf(
  principal: string,
  changeId: string,
  overrides: Partial<ChangeRecord> = {},
): ChangeRecord {
  const added = overrides.added ?? ['k1'];
  const removed = overrides.removed ?? [];
  return {
    schemaVersion: 1,
    changeId,
    runId: 'run-0',
    principal,
    kind: 'changed',
    pattern: null,
    detectedAt: '2025-01-01T00:00:00.000Z',
    previousSnapshotVersion: '"v0"',
    added,
    removed,
    counts: { added: added.length, removed: removed.length, total: 1 },
    snapshotLocation: `mem://snapshots/${principal}`,
    changeRecordLocation: `mem://history/${principal}/${changeId}`,
    ...overrides,
  };
}

/** A StorageError with a recognisable message. */
export function storageFailure(message = 'disk on fire', options: Omit<Failure, 'error'> = {}): Failure {
  return { error: new StorageError(message), ...options };
}

/** A principal's result as a run reports it: `root`, audited, 3 keys, nothing changed, unless overridden. */
export function principalResult(overrides: Partial<PrincipalResult> = {}): PrincipalResult {
  return {
    principal: 'root',
    status: 'ok',
    baseline: false,
    keyCount: 3,
    added: [],
    removed: [],
    redelivered: [],
    pending: [],
    ...overrides,
  };
}

/** A run's summary of `principals` (`ok` when every one is), with the other fields overridable. */
export function auditSummary(
  principals: readonly PrincipalResult[],
  overrides: Partial<AuditSummary> = {},
): AuditSummary {
  return {
    runId: 'run-1',
    dryRun: false,
    startedAt: '2025-06-01T12:00:00.000Z',
    finishedAt: '2025-06-01T12:00:01.000Z',
    durationMs: 1000,
    principals,
    ok: principals.every((principal) => principal.status === 'ok'),
    ...overrides,
  };
}
