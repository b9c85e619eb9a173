/**
 * Snapshots and change records in a local folder, with the same layout as S3. Conditional writes compare a
 * hash of the file; the new file is written aside, flushed to disk and renamed over the old one, so a reader
 * never sees half a snapshot and a crash never leaves an empty one. One writer per folder is the CLI's state
 * lock (`state-lock.ts`): without it the check-then-rename below would race.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConcurrentWriteError, describeError, StorageError } from '../../commons/errors.js';
import { quotedName } from '../../commons/text.js';
import {
  archiveKey,
  changeRecordKey,
  principalOfStateKey,
  REPORT_KEYS,
  RUN_STATE_KEY,
  SIDE_FAILURES_PREFIX,
  segmentOfSideFailureKey,
  sideFailureKey,
  snapshotKey,
} from '../../core/layout.js';
import type {
  CallOptions,
  ChangeRecord,
  RunState,
  SideFailure,
  Snapshot,
  SnapshotStore,
  StoredSideFailure,
  StoredSnapshot,
} from '../../core/ports.js';
import {
  parseSnapshot,
  principalNamedIn,
  serialize,
  storedRunState,
  storedSideFailure,
} from '../../core/records.js';

const version = (text: string): string => createHash('sha256').update(text).digest('hex');

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** A SnapshotStore in a folder (the CLI's `--state`). */
export class FileSnapshotStore implements SnapshotStore {
  readonly #root: string;

  constructor(root: string) {
    this.#root = resolve(root);
  }

  snapshotLocation(principal: string): string {
    return join(this.#root, snapshotKey(principal));
  }

  changeRecordLocation(principal: string, changeId: string): string {
    return join(this.#root, changeRecordKey(principal, changeId));
  }

  reportLocation(): string {
    return join(this.#root, REPORT_KEYS.html);
  }

  archiveLocation(principal: string, archiveId: string): string {
    return join(this.#root, archiveKey(principal, archiveId));
  }

  async *principalsWithState(options: CallOptions = {}): AsyncGenerator<string, void, undefined> {
    options.signal?.throwIfAborted();
    let files: string[];
    try {
      files = await readdir(join(this.#root, 'snapshots'));
    } catch (error) {
      if (isMissing(error)) return;
      throw new StorageError(`could not list ${join(this.#root, 'snapshots')}: ${describeError(error)}`, {
        cause: error,
      });
    }
    for (const file of files.sort()) {
      const named = principalOfStateKey(`snapshots/${file}`);
      if (named === undefined) continue;
      if (named.principal !== undefined) {
        yield named.principal;
        continue;
      }
      // A hashed file name does not say its name: the state does.
      const text = await this.#readText(join(this.#root, 'snapshots', file));
      const principal = text === undefined ? undefined : principalNamedIn(text);
      if (principal !== undefined) yield principal;
    }
  }

  async archive(
    principal: string,
    expectedVersion: string,
    archiveId: string,
    options: CallOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    const location = this.snapshotLocation(principal);
    const text = await this.#readText(location);
    if (text === undefined || version(text) !== expectedVersion) {
      throw new ConcurrentWriteError(`${location} changed since this run read it (archive refused)`);
    }
    const target = this.archiveLocation(principal, archiveId);
    if ((await this.#readText(target)) === undefined) await this.#writeAtomically(target, text);
    try {
      await rm(location);
    } catch (error) {
      throw new StorageError(`could not delete ${location}: ${describeError(error)}`, { cause: error });
    }
  }

  async read(principal: string, options: CallOptions = {}): Promise<StoredSnapshot | undefined> {
    options.signal?.throwIfAborted();
    const location = this.snapshotLocation(principal);
    const text = await this.#readText(location);
    if (text === undefined) return undefined;
    const named = principalNamedIn(text);
    if (named !== undefined && named !== principal && named.toLowerCase() === principal.toLowerCase()) {
      // macOS and Windows folders ignore case by default: `Root` and `root` are one file there.
      throw new StorageError(
        `snapshot ${location} belongs to principal ${quotedName(named)}, whose name differs only by case: this state folder is on a file system that ignores case, where the two cannot be kept apart; use a case-sensitive folder (e.g. a case-sensitive APFS volume) for --state`,
      );
    }
    return { snapshot: parseSnapshot(text, principal, location), version: version(text) };
  }

  async write(
    principal: string,
    snapshot: Snapshot,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#writeIf(this.snapshotLocation(principal), serialize(snapshot), expectedVersion, options);
  }

  async readRunState(options: CallOptions = {}): Promise<{ state: RunState; version: string } | undefined> {
    options.signal?.throwIfAborted();
    const location = join(this.#root, RUN_STATE_KEY);
    const text = await this.#readText(location);
    return text === undefined ? undefined : storedRunState(text, location, version(text));
  }

  writeRunState(
    state: RunState,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#writeIf(join(this.#root, RUN_STATE_KEY), serialize(state), expectedVersion, options);
  }

  async readSideFailure(
    principal: string,
    options: CallOptions = {},
  ): Promise<StoredSideFailure | undefined> {
    options.signal?.throwIfAborted();
    const location = join(this.#root, sideFailureKey(principal));
    const text = await this.#readText(location);
    return text === undefined ? undefined : storedSideFailure(text, principal, location, version(text));
  }

  writeSideFailure(
    principal: string,
    record: SideFailure,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#writeIf(
      join(this.#root, sideFailureKey(principal)),
      serialize(record),
      expectedVersion,
      options,
    );
  }

  async deleteSideFailure(
    principal: string,
    expectedVersion: string,
    options: CallOptions = {},
  ): Promise<void> {
    options.signal?.throwIfAborted();
    const location = join(this.#root, sideFailureKey(principal));
    const text = await this.#readText(location);
    if (text === undefined) return;
    if (version(text) !== expectedVersion) {
      throw new ConcurrentWriteError(`${location} changed since this run read it (delete refused)`);
    }
    try {
      await rm(location);
    } catch (error) {
      if (isMissing(error)) return;
      throw new StorageError(`could not delete ${location}: ${describeError(error)}`, { cause: error });
    }
  }

  async sideFailureSegments(options: CallOptions = {}): Promise<ReadonlySet<string>> {
    options.signal?.throwIfAborted();
    const folder = join(this.#root, SIDE_FAILURES_PREFIX);
    let files: string[];
    try {
      files = await readdir(folder);
    } catch (error) {
      if (isMissing(error)) return new Set();
      throw new StorageError(`could not list ${folder}: ${describeError(error)}`, { cause: error });
    }
    const segments = new Set<string>();
    for (const file of files) {
      const segment = segmentOfSideFailureKey(`${SIDE_FAILURES_PREFIX}${file}`);
      if (segment !== undefined) segments.add(segment);
    }
    return segments;
  }

  /** Replaces a file only if it is still `expectedVersion` (none: only if it does not exist). */
  async #writeIf(
    location: string,
    text: string,
    expectedVersion: string | undefined,
    options: CallOptions,
  ): Promise<string> {
    options.signal?.throwIfAborted();
    const current = await this.#readText(location);
    const currentVersion = current === undefined ? undefined : version(current);
    if (currentVersion !== expectedVersion) {
      throw new ConcurrentWriteError(
        `${location} changed since this run read it (conditional write refused)`,
      );
    }
    await this.#writeAtomically(location, text);
    return version(text);
  }

  async writeChangeRecord(record: ChangeRecord, options: CallOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const location = this.changeRecordLocation(record.principal, record.changeId);
    if ((await this.#readText(location)) !== undefined) return; // same id, same change: stored already
    await this.#writeAtomically(location, serialize(record));
  }

  async #readText(location: string): Promise<string | undefined> {
    try {
      return await readFile(location, 'utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw new StorageError(`could not read ${location}: ${describeError(error)}`, { cause: error });
    }
  }

  /** Temp file, fsync, rename, fsync of the folder: after it returns, a crash keeps the old or the new file. */
  async #writeAtomically(location: string, text: string): Promise<void> {
    const folder = dirname(location);
    const temporary = join(folder, `.${randomUUID()}.tmp`);
    try {
      await mkdir(folder, { recursive: true });
      const file = await open(temporary, 'wx');
      try {
        await file.writeFile(text, 'utf8');
        await file.sync();
      } catch (error) {
        // Closing must not hide why the write failed (a close after a failed fsync often fails too).
        await file.close().catch(() => {});
        throw error;
      }
      await file.close();
      await rename(temporary, location);
      await syncFolder(folder);
    } catch (error) {
      // The clean-up must never hide the error that made it necessary.
      await rm(temporary, { force: true }).catch(() => {});
      throw new StorageError(`could not write ${location}: ${describeError(error)}`, { cause: error });
    }
  }
}

/** Flushes a folder's entries (the rename) to disk; a no-op where folders cannot be opened (Windows). */
async function syncFolder(folder: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error;
  } finally {
    await handle?.close();
  }
}
