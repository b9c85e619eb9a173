import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  acquireStateLock,
  LOCK_FILE,
  type LockHolder,
  processIsAlive,
  type StateLock,
  StateLockedError,
  TAKEOVER_FILE,
} from '../../../functions/adapters/local/state-lock.js';

const run = promisify(execFile);

/** While set, file operations wait a random few milliseconds first: races interleave as between processes. */
const jitter = vi.hoisted(() => ({ on: false }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  const { setTimeout: sleep } = await import('node:timers/promises');
  const shaken =
    <A extends unknown[], R>(operation: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (jitter.on) await sleep(Math.random() * 4);
      return operation(...args);
    };
  return {
    ...actual,
    readFile: shaken(actual.readFile),
    rm: shaken(actual.rm),
    link: shaken(actual.link),
    writeFile: shaken(actual.writeFile),
  };
});

let parent: string;
let state: string;
let lockPath: string;

beforeEach(async () => {
  parent = await mkdtemp(join(tmpdir(), 'state-lock-test-'));
  state = join(parent, 'state');
  lockPath = join(state, LOCK_FILE);
});

afterEach(async () => {
  jitter.on = false;
  await rm(parent, { recursive: true, force: true });
});

const HOST = 'audit-host';
const NOW = () => new Date('2026-11-28T10:00:00.000Z');

/** A holder's lock file, as another process would have written it. */
async function writeLock(holder: Partial<LockHolder>): Promise<string> {
  const text = `${JSON.stringify({
    pid: 4242,
    hostname: HOST,
    startedAt: '2026-11-27T09:00:00.000Z',
    runId: 'run-of-someone-else',
    ...holder,
  })}\n`;
  await mkdir(state, { recursive: true });
  await writeFile(lockPath, text);
  return text;
}

/** Takes the lock as pid 1000 of HOST; `alive` says which other pids are running. */
function acquire(runId: string, alive: (pid: number) => boolean = () => true, pid = 1000) {
  return acquireStateLock(state, { runId, pid, hostname: HOST, now: NOW, isAlive: alive });
}

async function refusal(promise: Promise<unknown>): Promise<StateLockedError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StateLockedError);
  return error as StateLockedError;
}

describe('acquireStateLock', () => {
  it('creates the folder and a lock holding pid, host, start time and run id; release removes it', async () => {
    const lock = (await acquire('run-1')) as StateLock;
    expect(lock.path).toBe(lockPath);
    expect(lock.tookOverFrom).toBeUndefined();
    const holder = { pid: 1000, hostname: HOST, startedAt: '2026-11-28T10:00:00.000Z', runId: 'run-1' };
    expect(lock.holder).toEqual(holder);
    expect(JSON.parse(await readFile(lockPath, 'utf8'))).toEqual(holder);
    // Written aside and linked: no temporary file stays behind.
    expect(await readdir(state)).toEqual([LOCK_FILE]);

    expect(await lock.release()).toBe(true);
    expect(await readdir(state)).toEqual([]);
    expect(await lock.release()).toBe(false);
  });

  it('defaults to this process and this host', async () => {
    const lock = (await acquireStateLock(state, { runId: 'r' })) as StateLock;
    expect(lock.holder).toMatchObject({ pid: process.pid, hostname: hostname(), runId: 'r' });
    await lock.release();
  });

  it('refuses a second run while the first holds the lock, naming the holder and the file to delete', async () => {
    const first = (await acquire('run-1')) as StateLock;
    const before = await readFile(lockPath, 'utf8');
    const error = await refusal(acquire('run-2', () => true, 2000));
    expect(error.holder).toEqual(first.holder);
    expect(error.lockPath).toBe(lockPath);
    expect(error.message).toBe(
      `the state folder ${state} is in use by another audit run: pid 1000 on this host (${HOST}), since 2026-11-28T10:00:00.000Z (run run-1). If you are sure no audit run is using it (e.g. that process was killed), delete ${lockPath} and run again.`,
    );
    expect(await readFile(lockPath, 'utf8')).toBe(before);
    expect(await readdir(state)).toEqual([LOCK_FILE]);
    await first.release();
  });

  it('refuses a second run of the same process too (two runs in one test process)', async () => {
    const first = (await acquireStateLock(state, { runId: 'a' })) as StateLock;
    await expect(acquireStateLock(state, { runId: 'b' })).rejects.toBeInstanceOf(StateLockedError);
    await first.release();
  });

  it('never takes over a live pid of this host', async () => {
    const text = await writeLock({ pid: 4242 });
    const checked: number[] = [];
    const error = await refusal(
      acquire('run-2', (pid) => {
        checked.push(pid);
        return true;
      }),
    );
    expect(checked).toEqual([4242]);
    expect(error.holder?.pid).toBe(4242);
    expect(error.message).toContain('pid 4242 on this host (audit-host), since 2026-11-27T09:00:00.000Z');
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it('takes over a lock whose pid is gone on this host, and says whose it was', async () => {
    await writeLock({ pid: 4242, runId: 'killed-run' });
    const lock = (await acquire('run-2', (pid) => pid !== 4242)) as StateLock;
    expect(lock.tookOverFrom).toEqual({
      pid: 4242,
      hostname: HOST,
      startedAt: '2026-11-27T09:00:00.000Z',
      runId: 'killed-run',
    });
    expect(JSON.parse(await readFile(lockPath, 'utf8')).runId).toBe('run-2');
    expect(await readdir(state)).toEqual([LOCK_FILE]);
    await lock.release();
  });

  it('takes over the lock of a process that really exited (signal 0 answers ESRCH)', async () => {
    const { stdout } = await run(process.execPath, ['-e', 'console.log(process.pid)']);
    const pid = Number(stdout.trim());
    expect(processIsAlive(pid)).toBe(false);
    expect(processIsAlive(process.pid)).toBe(true);
    await writeLock({ pid, hostname: hostname() });
    const lock = (await acquireStateLock(state, { runId: 'after-exit' })) as StateLock;
    expect(lock.tookOverFrom?.pid).toBe(pid);
    await lock.release();
  });

  it('never takes over a lock from another host, even when that pid is not alive here', async () => {
    const text = await writeLock({ pid: 4242, hostname: 'build-agent-7' });
    const error = await refusal(acquire('run-2', () => false));
    expect(error.holder?.hostname).toBe('build-agent-7');
    expect(error.message).toContain(
      'pid 4242 on another host, build-agent-7 (a lock from another host is never taken over automatically), since 2026-11-27T09:00:00.000Z (run run-of-someone-else)',
    );
    expect(error.message).toContain(`delete ${lockPath}`);
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it.each([
    ['an empty file', ''],
    ['text that is no JSON', 'locked by bob'],
    ['JSON without the fields', '{}'],
    [
      'pid 0 (would signal the process group)',
      JSON.stringify({ pid: 0, hostname: HOST, startedAt: '', runId: '' }),
    ],
    ['a negative pid', JSON.stringify({ pid: -1, hostname: HOST, startedAt: '', runId: '' })],
    ['a pid that is no number', JSON.stringify({ pid: '12', hostname: HOST, startedAt: '', runId: '' })],
  ])('never takes over a corrupt lock file (%s), naming the file to delete', async (_what, text) => {
    await mkdir(state, { recursive: true });
    await writeFile(lockPath, text);
    const error = await refusal(acquire('run-2', () => false));
    expect(error.holder).toBeUndefined();
    expect(error.message).toBe(
      `the state folder ${state} is locked by a lock file that is not a lock this tool wrote (unreadable or cut short): ${lockPath}. If you are sure no audit run is using ${state}, delete ${lockPath} and run again.`,
    );
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it('lets exactly one of many processes take over the same stale lock; the others name the winner', async () => {
    jitter.on = true;
    for (let round = 0; round < 20; round++) {
      await writeLock({ pid: 4242, runId: `stale-${round}` });
      const contenders = Array.from({ length: 6 }, (_, i) =>
        acquire(`r${round}-${i}`, (pid) => pid !== 4242, 2000 + i),
      );
      const outcomes = await Promise.allSettled(contenders);
      const winners = outcomes.flatMap((o) => (o.status === 'fulfilled' && o.value ? [o.value] : []));
      expect(winners).toHaveLength(1);
      const winner = winners[0] as StateLock;
      expect(JSON.parse(await readFile(lockPath, 'utf8')).runId).toBe(winner.holder.runId);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') {
          expect(outcome.reason).toBeInstanceOf(StateLockedError);
          expect((outcome.reason as StateLockedError).holder?.runId).toBe(winner.holder.runId);
        }
      }
      expect((await readdir(state)).sort()).toEqual([LOCK_FILE]);
      await winner.release();
    }
    jitter.on = false;
  });

  it('names the takeover file when a process died while taking over', async () => {
    await writeLock({ pid: 4242 });
    await writeFile(join(state, TAKEOVER_FILE), '{"pid":4243}');
    const error = await refusal(acquire('run-2', (pid) => pid !== 4242));
    expect(error.message).toContain(`delete ${join(state, TAKEOVER_FILE)} and ${lockPath}`);
  });

  it('does not create the folder (nor lock anything) when asked not to and it is missing', async () => {
    expect(await acquireStateLock(state, { runId: 'dry', createFolder: false })).toBeUndefined();
    expect(await readdir(parent)).toEqual([]);
    await mkdir(state);
    const lock = await acquireStateLock(state, { runId: 'dry', createFolder: false });
    expect(lock?.holder.runId).toBe('dry');
    await lock?.release();
  });

  it('stops with the signal reason when aborted', async () => {
    const reason = new Error('stop');
    await expect(acquireStateLock(state, { runId: 'r', signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
  });
});

describe('StateLock.release', () => {
  it('removes only its own lock: not one another run created after ours was deleted by hand', async () => {
    const lock = (await acquire('mine')) as StateLock;
    await rm(lockPath);
    const theirs = await writeLock({ pid: 5555, runId: 'theirs' });
    expect(await lock.release()).toBe(false);
    expect(await readFile(lockPath, 'utf8')).toBe(theirs);
  });

  it('is quiet when the lock file is already gone', async () => {
    const lock = (await acquire('mine')) as StateLock;
    await rm(lockPath);
    expect(await lock.release()).toBe(false);
  });
});
