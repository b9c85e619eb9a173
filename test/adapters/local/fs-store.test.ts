import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSnapshotStore } from '../../../functions/adapters/local/fs-store.js';
import { ConcurrentWriteError, StorageError } from '../../../functions/commons/errors.js';
import type { ChangeRecord } from '../../../functions/core/ports.js';
import { serialize } from '../../../functions/core/records.js';
import { snapshotOf } from '../../core/support/fakes.js';

/** Faults the mocked `node:fs/promises` plays; everything else passes through to the real one. */
const fsFaults = vi.hoisted(() => ({
  rename: undefined as Error | undefined,
  writeFile: undefined as Error | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rename: async (...args: Parameters<typeof actual.rename>) => {
      if (fsFaults.rename) throw fsFaults.rename;
      return actual.rename(...args);
    },
    writeFile: async (...args: Parameters<typeof actual.writeFile>) => {
      if (fsFaults.writeFile) throw fsFaults.writeFile;
      return actual.writeFile(...args);
    },
  };
});

let parent: string;
let root: string;
let store: FileSnapshotStore;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 'fs-store-test-'));
  root = join(parent, 'state');
  store = new FileSnapshotStore(root);
});

afterEach(async () => {
  fsFaults.rename = undefined;
  fsFaults.writeFile = undefined;
  await rm(parent, { recursive: true, force: true });
});

/** Every file under a folder, relative to it. */
async function files(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)))
    .sort();
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function record(principal: string, changeId: string, runId = 'run-1'): ChangeRecord {
  return {
    schemaVersion: 1,
    changeId,
    runId,
    principal,
    kind: 'baseline',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: null,
    added: [],
    removed: [],
    counts: { added: 0, removed: 0, total: 0 },
    snapshotLocation: 'x',
    changeRecordLocation: 'y',
  };
}

describe('FileSnapshotStore', () => {
  it('has no snapshot for a principal in a state folder that does not exist yet', async () => {
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it('names locations inside the state folder, with the S3 layout', () => {
    expect(store.snapshotLocation('svc a&b')).toBe(join(root, 'snapshots', 'svc%20a%26b.json'));
    expect(store.changeRecordLocation('root', 'chg-1')).toBe(join(root, 'history', 'root', 'chg-1.json'));
    expect(new FileSnapshotStore('relative/state').snapshotLocation('p')).toBe(
      join(process.cwd(), 'relative', 'state', 'snapshots', 'p.json'),
    );
  });

  it('writes a first snapshot and reads it back, versioned by the hash of the file', async () => {
    const snapshot = snapshotOf('root', ['a', 'b']);
    await store.write('root', snapshot, undefined);
    const text = await readFile(join(root, 'snapshots', 'root.json'), 'utf8');
    expect(text).toBe(serialize(snapshot));
    await expect(store.read('root')).resolves.toStrictEqual({ snapshot, version: sha256(text) });
  });

  it('replaces a snapshot when the expected version is still current', async () => {
    await store.write('root', snapshotOf('root', ['a']), undefined);
    const first = await store.read('root');
    const next = snapshotOf('root', ['a', 'b'], { runId: 'run-2' });
    await store.write('root', next, first?.version);
    const second = await store.read('root');
    expect(second?.snapshot).toStrictEqual(next);
    expect(second?.version).not.toBe(first?.version);
  });

  it('refuses to create a snapshot that another writer created meanwhile', async () => {
    const theirs = snapshotOf('root', ['theirs']);
    await store.write('root', theirs, undefined);
    const error = await failure(store.write('root', snapshotOf('root', ['mine']), undefined));
    expect(error).toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(
      `${join(root, 'snapshots', 'root.json')} changed since this run read it (conditional write refused)`,
    );
    expect((await store.read('root'))?.snapshot).toStrictEqual(theirs);
  });

  it('refuses to replace a snapshot that changed since it was read', async () => {
    await store.write('root', snapshotOf('root', ['a']), undefined);
    const read = await store.read('root');
    const theirs = snapshotOf('root', ['theirs'], { runId: 'other' });
    await store.write('root', theirs, read?.version);
    expect(await failure(store.write('root', snapshotOf('root', ['mine']), read?.version))).toBeInstanceOf(
      ConcurrentWriteError,
    );
    expect((await store.read('root'))?.snapshot).toStrictEqual(theirs);
  });

  it('refuses to replace a snapshot that was deleted since it was read', async () => {
    await store.write('root', snapshotOf('root', ['a']), undefined);
    const read = await store.read('root');
    await rm(join(root, 'snapshots', 'root.json'));
    expect(await failure(store.write('root', snapshotOf('root', []), read?.version))).toBeInstanceOf(
      ConcurrentWriteError,
    );
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it('leaves no temporary file behind', async () => {
    await store.write('root', snapshotOf('root', ['a']), undefined);
    const read = await store.read('root');
    await store.write('root', snapshotOf('root', ['b']), read?.version);
    await store.writeChangeRecord(record('root', 'chg-1'));
    expect(await files(root)).toEqual([
      join('history', 'root', 'chg-1.json'),
      join('snapshots', 'root.json'),
    ]);
  });

  it('fails with StorageError and leaves no temporary file when the folder cannot be created', async () => {
    await mkdir(parent, { recursive: true });
    await writeFile(root, 'a file where the state folder should be');
    const error = await failure(store.write('root', snapshotOf('root', []), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toMatch(/^could not (read|write) /);
    expect(await files(parent)).toEqual(['state']);
  });

  it('fails with StorageError, never "no snapshot", when the snapshot cannot be read', async () => {
    // A folder where the snapshot file should be: EISDIR, which is not ENOENT.
    await mkdir(join(root, 'snapshots', 'root.json'), { recursive: true });
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message.startsWith(`could not read ${join(root, 'snapshots', 'root.json')}: `)).toBe(true);
    expect(error.cause).toMatchObject({ code: 'EISDIR' });
  });

  it('fails with StorageError and removes the temporary file when the rename fails', async () => {
    fsFaults.rename = Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
    const error = await failure(store.write('root', snapshotOf('root', ['a']), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${join(root, 'snapshots', 'root.json')}: EXDEV: cross-device link not permitted`,
    );
    expect(error.cause).toBe(fsFaults.rename);
    expect(await files(root)).toEqual([]);

    const recordError = await failure(store.writeChangeRecord(record('root', 'chg-1')));
    expect(recordError).toBeInstanceOf(StorageError);
    expect(await files(root)).toEqual([]);
  });

  it('fails with StorageError, not the clean-up error, when the temporary file was never created', async () => {
    fsFaults.writeFile = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    const error = await failure(store.write('root', snapshotOf('root', ['a']), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${join(root, 'snapshots', 'root.json')}: ENOSPC: no space left on device`,
    );
    expect(await files(root)).toEqual([]);
  });

  it('fails with StorageError, never "no snapshot", for a corrupt file', async () => {
    await mkdir(join(root, 'snapshots'), { recursive: true });
    await writeFile(join(root, 'snapshots', 'root.json'), '{"schemaVersion":1,');
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`snapshot ${join(root, 'snapshots', 'root.json')} is not valid JSON`);
  });

  it.each(['../x', '..', 'a/b', 'ü', 'svc a&b#1', '.hidden', 'C:\\evil'])(
    'keeps the snapshot of %j inside the state folder, apart from the others',
    async (principal) => {
      await store.write(principal, snapshotOf(principal, ['k']), undefined);
      await store.write('x', snapshotOf('x', ['other']), undefined);
      expect(await files(parent)).toHaveLength(2);
      for (const file of await files(parent)) {
        expect(file.startsWith(join('state', 'snapshots'))).toBe(true);
        expect(file.split(/[\\/]/)).toHaveLength(3);
      }
      expect((await store.read(principal))?.snapshot.keys.map((key) => key.name)).toEqual(['k']);
      expect((await store.read('x'))?.snapshot.keys.map((key) => key.name)).toEqual(['other']);
    },
  );

  it('stores a change record once: the same id again is a no-op', async () => {
    await store.writeChangeRecord(record('../x', 'chg-abc', 'run-1'));
    await store.writeChangeRecord(record('../x', 'chg-abc', 'run-2'));
    const location = store.changeRecordLocation('../x', 'chg-abc');
    expect(location).toBe(join(root, 'history', '%2E%2E%2Fx', 'chg-abc.json'));
    expect(JSON.parse(await readFile(location, 'utf8')).runId).toBe('run-1');
    expect(await files(root)).toEqual([join('history', '%2E%2E%2Fx', 'chg-abc.json')]);
  });
});
