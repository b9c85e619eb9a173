/**
 * Snapshots and change records in a local folder, with the same layout as S3. Conditional writes compare a
 * hash of the file; the new file is written aside and renamed over the old one, so a reader never sees
 * half a snapshot.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ConcurrentWriteError, describeError, StorageError } from '../../commons/errors.js';
import { changeRecordKey, snapshotKey } from '../../core/layout.js';
import type { ChangeRecord, Snapshot, SnapshotStore, StoredSnapshot } from '../../core/ports.js';
import { parseSnapshot, serialize } from '../../core/records.js';

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

  async read(principal: string): Promise<StoredSnapshot | undefined> {
    const location = this.snapshotLocation(principal);
    const text = await this.#readText(location);
    if (text === undefined) return undefined;
    return { snapshot: parseSnapshot(text, principal, location), version: version(text) };
  }

  async write(principal: string, snapshot: Snapshot, expectedVersion: string | undefined): Promise<void> {
    const location = this.snapshotLocation(principal);
    const current = await this.#readText(location);
    const currentVersion = current === undefined ? undefined : version(current);
    if (currentVersion !== expectedVersion) {
      throw new ConcurrentWriteError(
        `${location} changed since this run read it (conditional write refused)`,
      );
    }
    await this.#writeAtomically(location, serialize(snapshot));
  }

  async writeChangeRecord(record: ChangeRecord): Promise<void> {
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

  async #writeAtomically(location: string, text: string): Promise<void> {
    const temporary = `${location}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(location), { recursive: true });
      await writeFile(temporary, text, 'utf8');
      await rename(temporary, location);
    } catch (error) {
      await rm(temporary, { force: true });
      throw new StorageError(`could not write ${location}: ${describeError(error)}`, { cause: error });
    }
  }
}
