import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSnapshotStore } from '../../../functions/adapters/local/fs-store.js';
import {
  ConcurrentWriteError,
  RecordFormatError,
  StorageError,
  TimeBudgetError,
} from '../../../functions/commons/errors.js';
import type { ChangeRecord, FailureState, RunState, SideFailure } from '../../../functions/core/ports.js';
import { serialize } from '../../../functions/core/records.js';
import { legacySnapshotOf, snapshotOf } from '../../core/support/fakes.js';

/**
 * Faults the mocked `node:fs/promises` plays; everything else passes through to the real one. `writeFile`, `sync`
 * and `close` are the methods of the handle `open` returns for a temporary file.
 */
const fsFaults = vi.hoisted(() => ({
  rename: undefined as Error | undefined,
  writeFile: undefined as Error | undefined,
  sync: undefined as Error | undefined,
  close: undefined as Error | undefined,
  rm: undefined as Error | undefined,
  /** Paths `rm` was asked to remove. */
  removed: [] as string[],
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    rename: async (...args: Parameters<typeof actual.rename>) => {
      if (fsFaults.rename) throw fsFaults.rename;
      return actual.rename(...args);
    },
    rm: async (...args: Parameters<typeof actual.rm>) => {
      fsFaults.removed.push(String(args[0]));
      if (fsFaults.rm) throw fsFaults.rm;
      return actual.rm(...args);
    },
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      if (!String(args[0]).endsWith('.tmp')) return handle;
      return new Proxy(handle, {
        get(target, property) {
          const fault =
            property === 'writeFile' ? fsFaults.writeFile : property === 'sync' ? fsFaults.sync : undefined;
          if (fault) {
            return async () => {
              throw fault;
            };
          }
          if (property === 'close' && fsFaults.close) {
            const fault = fsFaults.close;
            return async () => {
              await target.close();
              throw fault;
            };
          }
          const value = Reflect.get(target, property, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    },
  };
});

let parent: string;
let root: string;
let store: FileSnapshotStore;

beforeEach(async () => {
  fsFaults.removed = [];
  parent = await mkdtemp(join(tmpdir(), 'fs-store-test-'));
  root = join(parent, 'state');
  store = new FileSnapshotStore(root);
});

afterEach(async () => {
  fsFaults.rename = undefined;
  fsFaults.writeFile = undefined;
  fsFaults.sync = undefined;
  fsFaults.close = undefined;
  fsFaults.rm = undefined;
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

  it('writes a first snapshot and reads it back, versioned by the hash of the file, returning that version', async () => {
    const snapshot = snapshotOf('root', ['a', 'b']);
    const version = await store.write('root', snapshot, undefined);
    const text = await readFile(join(root, 'snapshots', 'root.json'), 'utf8');
    expect(text).toBe(serialize(snapshot));
    expect(version).toBe(sha256(text));
    await expect(store.read('root')).resolves.toStrictEqual({ snapshot, version });
  });

  it('accepts the version a write returned for the next conditional write', async () => {
    const first = await store.write('root', snapshotOf('root', ['a']), undefined);
    const second = await store.write('root', snapshotOf('root', ['a', 'b'], { writeId: 'run-2/x' }), first);
    expect(second).not.toBe(first);
    expect((await store.read('root'))?.version).toBe(second);
    await expect(store.write('root', snapshotOf('root', ['c']), first)).rejects.toBeInstanceOf(
      ConcurrentWriteError,
    );
  });

  it('never lets the same content with another write id satisfy an old version', async () => {
    const a = await store.write('root', snapshotOf('root', ['a'], { writeId: 'run-1/1' }), undefined);
    const b = await store.write('root', snapshotOf('root', ['b'], { writeId: 'run-2/2' }), a);
    const a2 = await store.write('root', snapshotOf('root', ['a'], { writeId: 'run-3/3' }), b);
    expect(new Set([a, b, a2]).size).toBe(3);
    await expect(store.write('root', snapshotOf('root', ['x']), a)).rejects.toBeInstanceOf(
      ConcurrentWriteError,
    );
  });

  it('reads a schema-1 snapshot as a state with no host and no pending change', async () => {
    await mkdir(join(root, 'snapshots'), { recursive: true });
    const text = JSON.stringify(legacySnapshotOf('root', ['a']));
    await writeFile(join(root, 'snapshots', 'root.json'), text);
    const read = await store.read('root');
    expect(read?.version).toBe(sha256(text));
    expect(read?.snapshot).toMatchObject({ schemaVersion: 2, host: null, pending: [], writeId: '' });
  });

  it('starts no call once the signal ended, and writes nothing', async () => {
    const controller = new AbortController();
    const reason = new TimeBudgetError("the run's work deadline ended");
    controller.abort(reason);
    const signal = controller.signal;
    await expect(store.read('root', { signal })).rejects.toBe(reason);
    await expect(store.write('root', snapshotOf('root', ['a']), undefined, { signal })).rejects.toBe(reason);
    await expect(store.writeChangeRecord(record('root', 'chg-1'), { signal })).rejects.toBe(reason);
    await expect(readdir(parent)).resolves.toEqual([]);
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

  it('reports the rename failure, not the clean-up failure, when removing the temporary file fails too', async () => {
    fsFaults.rename = Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' });
    fsFaults.rm = Object.assign(new Error('EBUSY: resource busy or locked'), { code: 'EBUSY' });
    const error = await failure(store.write('root', snapshotOf('root', ['a']), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${join(root, 'snapshots', 'root.json')}: EXDEV: cross-device link not permitted`,
    );
    expect(error.cause).toBe(fsFaults.rename);
    expect(fsFaults.removed).toHaveLength(1);
    expect(fsFaults.removed[0]).toMatch(/\.tmp$/);
  });

  it('reports the flush failure, not the failure to close the file after it', async () => {
    fsFaults.sync = Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    fsFaults.close = Object.assign(new Error('EBADF: bad file descriptor, close'), { code: 'EBADF' });
    const error = await failure(store.write('root', snapshotOf('root', ['a']), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${join(root, 'snapshots', 'root.json')}: EIO: i/o error, fsync`,
    );
    expect(error.cause).toBe(fsFaults.sync);
    expect(await files(root)).toEqual([]);
  });

  it('fails when only the close fails: a file that may not be on disk is not a stored one', async () => {
    fsFaults.close = Object.assign(new Error('EIO: i/o error, close'), { code: 'EIO' });
    const error = await failure(store.write('root', snapshotOf('root', ['a']), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${join(root, 'snapshots', 'root.json')}: EIO: i/o error, close`,
    );
    await expect(store.read('root')).resolves.toBeUndefined();
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

describe('FileSnapshotStore: the run-level record', () => {
  const secretFailure: FailureState = {
    stage: 'reading the API key',
    errorName: 'SecretError',
    status: null,
    reason: 'reading the API key: secret bigstate holds an empty API key',
    since: '2025-06-01T12:00:00.000Z',
    lastNotifiedAt: '2025-06-01T12:00:00.000Z',
    runId: 'run-1',
  };
  const failing: RunState = { schemaVersion: 1, writeId: 'run-1/a', failure: secretFailure };
  const cleared: RunState = { schemaVersion: 1, writeId: 'run-2/b' };
  const location = () => join(root, 'snapshots', '.run.json');

  it('has none in a state folder that does not exist yet', async () => {
    await expect(store.readRunState()).resolves.toBeUndefined();
  });

  it('writes a first record at snapshots/.run.json and reads it back, versioned by the hash of the file', async () => {
    const version = await store.writeRunState(failing, undefined);
    const text = await readFile(location(), 'utf8');
    expect(text).toBe(serialize(failing));
    expect(version).toBe(sha256(text));
    await expect(store.readRunState()).resolves.toStrictEqual({ state: failing, version });
    expect(await files(root)).toEqual([join('snapshots', '.run.json')]);
  });

  it('replaces the record only at the version that was read (conditional writes)', async () => {
    const first = await store.writeRunState(failing, undefined);
    // Created only if there is none.
    const created = await failure(store.writeRunState(cleared, undefined));
    expect(created).toBeInstanceOf(ConcurrentWriteError);
    expect(created.message).toBe(`${location()} changed since this run read it (conditional write refused)`);
    const second = await store.writeRunState(cleared, first);
    expect(second).not.toBe(first);
    await expect(store.readRunState()).resolves.toStrictEqual({ state: cleared, version: second });
    // A stale version never matches again.
    await expect(store.writeRunState(failing, first)).rejects.toBeInstanceOf(ConcurrentWriteError);
    await expect(store.readRunState()).resolves.toStrictEqual({ state: cleared, version: second });
  });

  it('is no principal state: a principal named ".run" keeps a file of its own, and is not listed as the record', async () => {
    await store.writeRunState(failing, undefined);
    await store.write('.run', snapshotOf('.run', ['k']), undefined);
    expect(await files(root)).toEqual(
      [join('snapshots', '%2Erun.json'), join('snapshots', '.run.json')].sort(),
    );
    expect((await store.read('.run'))?.snapshot.keys.map((key) => key.name)).toEqual(['k']);
    expect((await store.readRunState())?.state).toStrictEqual(failing);
    const listed: string[] = [];
    for await (const principal of store.principalsWithState()) listed.push(principal);
    expect(listed).toEqual(['.run']);
  });

  it('fails with StorageError naming the record, never "no record", for a corrupt file or another shape', async () => {
    await mkdir(join(root, 'snapshots'), { recursive: true });
    await writeFile(location(), '{"schemaVersion":1,');
    const corrupt = await failure(store.readRunState());
    expect(corrupt).toBeInstanceOf(StorageError);
    expect(corrupt.message).toBe(`run record ${location()} is not valid JSON`);
    await writeFile(location(), '{"schemaVersion":2,"writeId":"x"}');
    const shape = await failure(store.readRunState());
    expect(shape).toBeInstanceOf(StorageError);
    expect(shape.message.startsWith(`run record ${location()} is not a run record: `)).toBe(true);
    await writeFile(location(), JSON.stringify({ ...failing, failure: { ...secretFailure, status: 'x' } }));
    expect((await failure(store.readRunState())).message).toMatch(/is not a run record: /);
  });

  it('says a record it cannot read is there, and at which version, so it can be replaced', async () => {
    await mkdir(join(root, 'snapshots'), { recursive: true });
    await writeFile(location(), '{"schemaVersion":3}');
    const newer = await failure(store.readRunState());
    expect(newer).toBeInstanceOf(RecordFormatError);
    const { version } = newer as RecordFormatError;
    expect(version).toBe(sha256('{"schemaVersion":3}'));
    await store.writeRunState(cleared, version);
    expect((await store.readRunState())?.state).toStrictEqual(cleared);
  });

  it('starts no call once the signal ended, and writes nothing', async () => {
    const controller = new AbortController();
    const reason = new TimeBudgetError("the run's hard stop ended");
    controller.abort(reason);
    const signal = controller.signal;
    await expect(store.readRunState({ signal })).rejects.toBe(reason);
    await expect(store.writeRunState(failing, undefined, { signal })).rejects.toBe(reason);
    await expect(readdir(parent)).resolves.toEqual([]);
  });

  it('fails with StorageError and leaves no temporary file when the write fails', async () => {
    fsFaults.rename = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    const error = await failure(store.writeRunState(failing, undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`could not write ${location()}: EACCES: permission denied`);
    expect(await files(root)).toEqual([]);
  });
});

describe('FileSnapshotStore: failures kept aside (an unreadable state)', () => {
  const failure403: FailureState = {
    stage: 'reading the snapshot',
    errorName: 'StorageError',
    status: null,
    reason: 'reading the snapshot: snapshot is not valid JSON',
    since: '2025-06-01T12:00:00.000Z',
    lastNotifiedAt: '2025-06-01T12:00:00.000Z',
    runId: 'run-1',
  };
  const recordOf = (principal: string): SideFailure => ({
    schemaVersion: 1,
    principal,
    writeId: 'run-1/x',
    failure: failure403,
  });
  const location = (segment: string) => join(root, 'failures', `${segment}.json`);

  it('has none, and lists none, in a state folder that does not exist yet', async () => {
    await expect(store.readSideFailure('root')).resolves.toBeUndefined();
    expect([...(await store.sideFailureSegments())]).toEqual([]);
  });

  it('writes failures/<segment>.json conditionally, reads it back, lists it and deletes it at its version', async () => {
    const long = 'x'.repeat(300);
    const first = await store.writeSideFailure('svc a&b', recordOf('svc a&b'), undefined);
    await store.writeSideFailure(long, recordOf(long), undefined);
    expect(await readFile(location('svc%20a%26b'), 'utf8')).toBe(serialize(recordOf('svc a&b')));
    await expect(store.readSideFailure('svc a&b')).resolves.toStrictEqual({
      record: recordOf('svc a&b'),
      version: first,
    });
    // A leftover temporary file is not a record.
    await writeFile(join(root, 'failures', '.0b1c.tmp'), 'half');
    const segments = [...(await store.sideFailureSegments())].sort();
    expect(segments).toHaveLength(2);
    expect(segments).toContain('svc%20a%26b');
    expect(segments.find((segment) => segment.includes('~'))).toMatch(/^x+~[0-9a-f]{32}$/);

    const again = await failure(store.writeSideFailure('svc a&b', recordOf('svc a&b'), undefined));
    expect(again).toBeInstanceOf(ConcurrentWriteError);
    const refused = await failure(store.deleteSideFailure('svc a&b', 'stale'));
    expect(refused).toBeInstanceOf(ConcurrentWriteError);
    expect(refused.message).toBe(
      `${location('svc%20a%26b')} changed since this run read it (delete refused)`,
    );
    await store.deleteSideFailure('svc a&b', first);
    await expect(store.readSideFailure('svc a&b')).resolves.toBeUndefined();
    // Already gone: done.
    await expect(store.deleteSideFailure('svc a&b', first)).resolves.toBeUndefined();
  });

  it('returns a corrupt record or one of another principal without it, naming why, at its version', async () => {
    await mkdir(join(root, 'failures'), { recursive: true });
    await writeFile(location('root'), '{');
    await expect(store.readSideFailure('root')).resolves.toStrictEqual({
      record: undefined,
      version: sha256('{'),
      unreadable: `failure record ${location('root')} is not valid JSON`,
    });
    await writeFile(location('root'), serialize(recordOf('other')));
    const other = await store.readSideFailure('root');
    expect(other?.record).toBeUndefined();
    expect(other?.unreadable).toBe(`failure record ${location('root')} belongs to another principal`);
    // Replaced at that version, it reads again.
    await store.writeSideFailure('root', recordOf('root'), other?.version);
    expect((await store.readSideFailure('root'))?.record).toStrictEqual(recordOf('root'));
  });

  it('starts no call once the signal ended', async () => {
    const controller = new AbortController();
    controller.abort(new TimeBudgetError("the run's hard stop ended"));
    const signal = controller.signal;
    await expect(store.readSideFailure('root', { signal })).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(store.sideFailureSegments({ signal })).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(store.deleteSideFailure('root', 'v', { signal })).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(
      store.writeSideFailure('root', recordOf('root'), undefined, { signal }),
    ).rejects.toBeInstanceOf(TimeBudgetError);
    await expect(readdir(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('FileSnapshotStore on a file system that ignores case', () => {
  it('says so when the state it finds is of a principal whose name differs only by case', async () => {
    // What a case-insensitive folder (macOS, Windows) gives `root` once `Root` has a state: Root's file.
    await mkdir(join(root, 'snapshots'), { recursive: true });
    await writeFile(join(root, 'snapshots', 'root.json'), serialize(snapshotOf('Root', ['k'])));
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toMatch(
      /belongs to principal "Root", whose name differs only by case: this state folder is on a file system that ignores case/,
    );
    // Another principal altogether is still just another principal's state.
    await writeFile(join(root, 'snapshots', 'root.json'), serialize(snapshotOf('other', ['k'])));
    expect((await failure(store.read('root'))).message).toMatch(/belongs to another principal$/);
  });
});
