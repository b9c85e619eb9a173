/**
 * In-memory adapters for the audit core's tests: a snapshot store with real conditional-write semantics, a
 * recording publisher, a scripted BigState lister, clocks and a recording logger. Every store and publisher
 * call is appended to a shared event log, so tests can assert the order of operations.
 */
import type { ApiKeyEntry, ApiKeyLister, WalkOptions } from '../../../functions/bigstate/types.js';
import { ConcurrentWriteError, PublishError, StorageError } from '../../../functions/commons/errors.js';
import type {
  AuditLogger,
  ChangePublisher,
  ChangeRecord,
  Clock,
  KeyRecord,
  Notice,
  Snapshot,
  SnapshotStore,
  StoredSnapshot,
} from '../../../functions/core/ports.js';

/** A shared, ordered log of what the adapters were asked to do. */
export type EventLog = string[];

/** A failure to play once (or on every call when `always`). */
export interface Failure {
  readonly error: Error;
  readonly always?: boolean;
}

/** A SnapshotStore in memory: versions `v1`, `v2`... and conditional writes as S3 does them. */
export class MemoryStore implements SnapshotStore {
  readonly snapshots = new Map<string, StoredSnapshot>();
  readonly records = new Map<string, ChangeRecord>();
  /** Every `write` call, with the version it expected. */
  readonly writes: Array<{ principal: string; snapshot: Snapshot; expectedVersion: string | undefined }> = [];
  readonly recordWrites: ChangeRecord[] = [];
  readonly reads: string[] = [];
  readonly failures: {
    read?: Map<string, Failure>;
    write?: Map<string, Failure>;
    writeChangeRecord?: Map<string, Failure>;
  } = {};
  /** Runs before a write is checked: lets a test play a concurrent writer. */
  beforeWrite: ((principal: string) => void) | undefined;
  #counter = 0;

  constructor(readonly events: EventLog = []) {}

  /** Seeds a snapshot as if an earlier run had stored it; returns its version. */
  seed(snapshot: Snapshot): string {
    const version = this.#nextVersion();
    this.snapshots.set(snapshot.principal, { snapshot, version });
    return version;
  }

  failOn(operation: 'read' | 'write' | 'writeChangeRecord', principal: string, failure: Failure): void {
    this.failures[operation] ??= new Map();
    this.failures[operation].set(principal, failure);
  }

  snapshotLocation(principal: string): string {
    return `mem://snapshots/${principal}`;
  }

  changeRecordLocation(principal: string, changeId: string): string {
    return `mem://history/${principal}/${changeId}`;
  }

  async read(principal: string): Promise<StoredSnapshot | undefined> {
    this.events.push(`read:${principal}`);
    this.reads.push(principal);
    this.#maybeFail('read', principal);
    return this.snapshots.get(principal);
  }

  async write(principal: string, snapshot: Snapshot, expectedVersion: string | undefined): Promise<void> {
    this.events.push(`write:${principal}`);
    this.writes.push({ principal, snapshot, expectedVersion });
    this.#maybeFail('write', principal);
    this.beforeWrite?.(principal);
    const current = this.snapshots.get(principal)?.version;
    if (current !== expectedVersion) {
      throw new ConcurrentWriteError(`mem://snapshots/${principal} changed since this run read it`);
    }
    this.snapshots.set(principal, { snapshot, version: this.#nextVersion() });
  }

  async writeChangeRecord(record: ChangeRecord): Promise<void> {
    this.events.push(`record:${record.principal}`);
    this.recordWrites.push(record);
    this.#maybeFail('writeChangeRecord', record.principal);
    if (!this.records.has(record.changeId)) this.records.set(record.changeId, record);
  }

  #maybeFail(operation: 'read' | 'write' | 'writeChangeRecord', principal: string): void {
    const failure = this.failures[operation]?.get(principal);
    if (failure === undefined) return;
    if (failure.always !== true) this.failures[operation]?.delete(principal);
    throw failure.error;
  }

  #nextVersion(): string {
    this.#counter += 1;
    return `v${this.#counter}`;
  }
}

/** A publisher that records every notice; `fail` decides per notice whether it is refused. */
export class RecordingPublisher implements ChangePublisher {
  readonly notices: Notice[] = [];
  /** Every notice offered, refused ones included. */
  readonly attempts: Notice[] = [];
  fail: ((notice: Notice) => boolean) | undefined;
  /** Runs after a notice is accepted (e.g. to play a concurrent writer). */
  afterPublish: ((notice: Notice) => void) | undefined;

  constructor(readonly events: EventLog = []) {}

  async publish(notice: Notice): Promise<void> {
    const principal = notice.kind === 'failed' ? notice.principal : notice.record.principal;
    this.events.push(`publish:${notice.kind}:${principal}`);
    this.attempts.push(notice);
    if (this.fail?.(notice)) throw new PublishError(`channel refused the ${notice.kind} notice`);
    this.notices.push(notice);
    this.afterPublish?.(notice);
  }

  /** The notices of one kind. */
  ofKind<K extends Notice['kind']>(kind: K): Array<Extract<Notice, { kind: K }>> {
    return this.notices.filter((notice): notice is Extract<Notice, { kind: K }> => notice.kind === kind);
  }
}

/** What a fake walk yields: names or entries, or an error to throw after yielding what came before. */
export type WalkScript =
  | ReadonlyArray<string | ApiKeyEntry>
  | { readonly keys?: string[]; readonly error: Error };

/**
 * An ApiKeyLister from a script: `inventory` per principal, or `walks(principal, index)` for walks that differ.
 * Records every walk with its options and the number of walks under way at once.
 */
export class FakeLister implements ApiKeyLister {
  readonly calls: Array<{ principal: string; options: WalkOptions | undefined }> = [];
  active = 0;
  maxActive = 0;
  readonly #walkCounts = new Map<string, number>();

  constructor(
    readonly inventory: Record<string, ReadonlyArray<string | ApiKeyEntry>> = {},
    readonly options: {
      walks?: (principal: string, index: number) => WalkScript | undefined;
      delayMs?: number | ((principal: string) => number);
      onWalk?: (principal: string, index: number) => void;
    } = {},
  ) {}

  walksOf(principal: string): number {
    return this.#walkCounts.get(principal) ?? 0;
  }

  async *listApiKeys(principal: string, options?: WalkOptions): AsyncGenerator<ApiKeyEntry, void, undefined> {
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
        for (const name of script.keys ?? []) yield { name };
        throw script.error;
      }
      for (const key of script as ReadonlyArray<string | ApiKeyEntry>) {
        yield typeof key === 'string' ? { name: key } : key;
      }
    } finally {
      this.active -= 1;
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

/** A snapshot fixture of `names` (sorted as given), every key first seen at `firstSeen`. */
export function snapshotOf(
  principal: string,
  names: readonly string[],
  options: { pattern?: string | null; at?: string; runId?: string; keys?: KeyRecord[] } = {},
): Snapshot {
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

/** A StorageError with a recognisable message. */
export function storageFailure(message = 'disk on fire'): Failure {
  return { error: new StorageError(message) };
}
