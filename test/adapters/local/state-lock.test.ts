import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  acquireStateLock,
  inspectStateLock,
  LOCK_FILE,
  type LockHolder,
  processIsAlive,
  processStartOf,
  type StateLock,
  StateLockedError,
  type StateLockOptions,
  startTicksOf,
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
/** `hours` before NOW, as a lock's `startedAt`. */
const hoursAgo = (hours: number) => new Date(NOW().getTime() - hours * 3_600_000).toISOString();

/** A holder's lock file, as another process would have written it (an hour before NOW). */
async function writeLock(holder: Partial<LockHolder>): Promise<string> {
  const text = `${JSON.stringify({
    pid: 4242,
    hostname: HOST,
    startedAt: '2026-11-28T09:00:00.000Z',
    runId: 'run-of-someone-else',
    ...holder,
  })}\n`;
  await mkdir(state, { recursive: true });
  await writeFile(lockPath, text);
  return text;
}

/**
 * Takes the lock as pid 1000 of HOST; `alive` says which other pids are running; no process start is known
 * unless `processStart` is given.
 */
function acquire(
  runId: string,
  alive: (pid: number) => boolean = () => true,
  pid = 1000,
  more: Partial<StateLockOptions> = {},
) {
  return acquireStateLock(state, {
    runId,
    pid,
    hostname: HOST,
    now: NOW,
    isAlive: alive,
    processStart: async () => undefined,
    ...more,
  });
}

/** Process starts by pid, as `processStart` would read them. */
const starts =
  (table: Record<number, string>) =>
  async (pid: number): Promise<string | undefined> =>
    table[pid];

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
    const lock = await acquire('run-1');
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
    const lock = await acquireStateLock(state, { runId: 'r' });
    expect(lock.holder).toMatchObject({ pid: process.pid, hostname: hostname(), runId: 'r' });
    // On Linux the lock also records when this process started, to tell it apart from a later one with its pid.
    expect(lock.holder.processStart).toBe(await processStartOf(process.pid));
    if (process.platform === 'linux') expect(lock.holder.processStart).toMatch(/^linux:.+:\d+$/);
    await lock.release();
  });

  it('refuses a second run while the first holds the lock, naming the holder and the file to delete', async () => {
    const first = await acquire('run-1');
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
    const first = await acquireStateLock(state, { runId: 'a' });
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
    expect(error.message).toContain('pid 4242 on this host (audit-host), since 2026-11-28T09:00:00.000Z');
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it('takes over a lock whose pid is gone on this host, and says whose it was', async () => {
    await writeLock({ pid: 4242, runId: 'killed-run' });
    const lock = await acquire('run-2', (pid) => pid !== 4242);
    expect(lock.tookOverFrom).toEqual({
      pid: 4242,
      hostname: HOST,
      startedAt: '2026-11-28T09:00:00.000Z',
      runId: 'killed-run',
    });
    expect(lock.staleReason).toBe('that process is gone');
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
    const lock = await acquireStateLock(state, { runId: 'after-exit' });
    expect(lock.tookOverFrom?.pid).toBe(pid);
    await lock.release();
  });

  it('never takes over a lock from another host, even when that pid is not alive here', async () => {
    const text = await writeLock({ pid: 4242, hostname: 'build-agent-7' });
    const error = await refusal(acquire('run-2', () => false));
    expect(error.holder?.hostname).toBe('build-agent-7');
    expect(error.message).toContain(
      'pid 4242 on another host, build-agent-7 (a lock from another host is never taken over automatically), since 2026-11-28T09:00:00.000Z (run run-of-someone-else)',
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

  it('stops with the signal reason when aborted', async () => {
    const reason = new Error('stop');
    await expect(acquireStateLock(state, { runId: 'r', signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
  });
});

describe('acquireStateLock: when a lock is stale', () => {
  const ME = 1000;
  const MY_START = 'linux:boot-1:5000';

  it.each([
    ['without a recorded process start (a killed run of an earlier version)', {}],
    [
      'whose recorded process start is not ours (a killed run, pid reused)',
      { processStart: 'linux:boot-1:10' },
    ],
    ['from another boot', { processStart: 'linux:boot-0:5000' }],
  ])('takes over a lock naming our own pid with another run id, %s', async (_what, recorded) => {
    // A container's node is PID 1 on every run, with a fixed hostname: the killed run's pid is now ours.
    await writeLock({ pid: ME, runId: 'killed-run', startedAt: hoursAgo(400), ...recorded });
    const lock = await acquire('run-2', () => true, ME, { processStart: starts({ [ME]: MY_START }) });
    expect(lock.tookOverFrom).toMatchObject({ pid: ME, runId: 'killed-run' });
    expect(lock.staleReason).toBe(
      "that pid is now this process's own, so the run that wrote the lock is gone",
    );
    expect(JSON.parse(await readFile(lockPath, 'utf8'))).toEqual({
      pid: ME,
      hostname: HOST,
      startedAt: NOW().toISOString(),
      runId: 'run-2',
      processStart: MY_START,
    });
    await lock.release();
  });

  it('takes over a lock naming our own pid when no process start can be read at all', async () => {
    await writeLock({ pid: ME, runId: 'killed-run' }); // an hour old: age plays no part here
    const lock = await acquire('run-2', () => true, ME);
    expect(lock.tookOverFrom?.runId).toBe('killed-run');
    await lock.release();
  });

  it('never takes over a lock a run of this very process holds (same pid, another run)', async () => {
    const first = await acquire('run-1', () => true, ME);
    const text = await readFile(lockPath, 'utf8');
    const error = await refusal(acquire('run-2', () => true, ME));
    expect(error.holder?.runId).toBe('run-1');
    expect(await readFile(lockPath, 'utf8')).toBe(text);
    await first.release();
    // Released: the next run of this process takes the folder at once.
    const next = await acquire('run-3', () => true, ME);
    expect(next.tookOverFrom).toBeUndefined();
    await next.release();
  });

  it('never takes over a lock this very process wrote (same pid and process start), e.g. from another thread', async () => {
    const text = await writeLock({ pid: ME, runId: 'other-thread', processStart: MY_START });
    const error = await refusal(
      acquire('run-2', () => true, ME, { processStart: starts({ [ME]: MY_START }) }),
    );
    expect(error.holder?.runId).toBe('other-thread');
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it('takes over a lock whose live pid now belongs to a process started after the lock was written', async () => {
    await writeLock({ pid: 4242, runId: 'killed-run', processStart: 'linux:boot-1:100' });
    const lock = await acquire('run-2', () => true, ME, {
      processStart: starts({ [ME]: MY_START, 4242: 'linux:boot-1:900' }),
    });
    expect(lock.tookOverFrom).toMatchObject({ pid: 4242, runId: 'killed-run' });
    expect(lock.staleReason).toBe(
      'that pid now belongs to another process, started after the lock was written (a reused pid)',
    );
    await lock.release();
  });

  it('never takes over a live holder whose process start matches, however old its lock', async () => {
    const text = await writeLock({
      pid: 4242,
      processStart: 'linux:boot-1:100',
      startedAt: hoursAgo(24 * 30),
    });
    const error = await refusal(
      acquire('run-2', () => true, ME, {
        processStart: starts({ [ME]: MY_START, 4242: 'linux:boot-1:100' }),
      }),
    );
    expect(error.holder?.pid).toBe(4242);
    expect(await readFile(lockPath, 'utf8')).toBe(text);
  });

  it.each([
    ['no process start recorded', {}, {}],
    [
      'the process start cannot be read now (another system, /proc hidden)',
      { processStart: 'linux:boot-1:100' },
      {},
    ],
  ])(
    'with a live pid that cannot be confirmed (%s): live for a day, stale after',
    async (_what, recorded, now) => {
      const options = { processStart: starts({ [ME]: MY_START, ...now }) };
      const recent = await writeLock({ pid: 4242, startedAt: hoursAgo(23.9), ...recorded });
      expect((await refusal(acquire('run-2', () => true, ME, options))).holder?.pid).toBe(4242);
      expect(await readFile(lockPath, 'utf8')).toBe(recent);

      await writeLock({ pid: 4242, startedAt: hoursAgo(24.1), ...recorded });
      const lock = await acquire('run-3', () => true, ME, options);
      expect(lock.tookOverFrom?.pid).toBe(4242);
      expect(lock.staleReason).toBe(
        'the lock is over a day old and that pid cannot be confirmed to be the process that wrote it (no run lasts that long; taken for a reused pid)',
      );
      await lock.release();
    },
  );

  it.each([
    ['no date', ''],
    ['a date in the future (a clock set back)', '2026-12-01T00:00:00.000Z'],
  ])('never judges a live, unconfirmed holder by age when its start time is %s', async (_what, startedAt) => {
    await writeLock({ pid: 4242, startedAt });
    await refusal(acquire('run-2', () => true, ME));
  });

  it('never takes over a lock of another host, whatever its age or pid', async () => {
    await writeLock({ pid: ME, hostname: 'build-agent-7', startedAt: hoursAgo(24 * 30) });
    await refusal(acquire('run-2', () => false, ME));
  });

  describe.runIf(process.platform === 'linux')('with the real /proc', () => {
    it('reads a start that is stable for a process and differs between processes', async () => {
      const mine = await processStartOf(process.pid);
      expect(mine).toMatch(/^linux:[0-9a-f-]+:\d+$/);
      expect(await processStartOf(process.pid)).toBe(mine);
      const parent = await processStartOf(process.ppid);
      expect(parent).toBeDefined();
      expect(parent).not.toBe(mine);
      const { stdout } = await run(process.execPath, ['-e', 'console.log(process.pid)']);
      expect(await processStartOf(Number(stdout.trim()))).toBeUndefined(); // gone
    });

    it('takes over the lock of a live pid started after it was written, never that of the live holder', async () => {
      const parent = process.ppid; // alive for the whole test
      const real = (await processStartOf(parent)) as string;
      const boot = real.split(':')[1];
      await writeLock({ pid: parent, hostname: hostname(), processStart: `linux:${boot}:0` });
      const lock = await acquireStateLock(state, { runId: 'after-reuse' });
      expect(lock.tookOverFrom?.pid).toBe(parent);
      await lock.release();

      const text = await writeLock({
        pid: parent,
        hostname: hostname(),
        processStart: real,
        startedAt: '2020-01-01T00:00:00.000Z',
      });
      await refusal(acquireStateLock(state, { runId: 'refused' }));
      expect(await readFile(lockPath, 'utf8')).toBe(text);
    });

    it('takes over a lock naming this process that no run of it holds', async () => {
      await writeLock({
        pid: process.pid,
        hostname: hostname(),
        runId: 'killed-run',
        processStart: 'linux:x:1',
      });
      const lock = await acquireStateLock(state, { runId: 'mine' });
      expect(lock.tookOverFrom?.runId).toBe('killed-run');
      await lock.release();
    });
  });
});

describe('startTicksOf', () => {
  it('reads field 22 of /proc/<pid>/stat, whatever the process name holds', () => {
    const tail = 'S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 264954 3133440 392 18446744073709551615';
    expect(startTicksOf(`1 (node) ${tail}`)).toBe('264954');
    expect(startTicksOf(`7 (a) b (c d) ${tail}\n`)).toBe('264954');
    expect(startTicksOf('7 (node')).toBeUndefined();
    expect(startTicksOf('7 (node) S 1 2')).toBeUndefined();
  });
});

describe('inspectStateLock (for dry runs)', () => {
  const judge = { pid: 1000, hostname: HOST, now: NOW, processStart: async () => undefined };

  async function listing(folder: string): Promise<string[]> {
    const names = (await readdir(folder, { recursive: true }).catch(() => [])).map(String).sort();
    const entries = await Promise.all(
      names.map(async (name) => {
        const info = await stat(join(folder, name));
        const content = info.isFile() ? await readFile(join(folder, name), 'utf8') : '';
        return `${name} ${info.mtimeMs} ${content}`;
      }),
    );
    const self = await stat(folder).then(
      (info) => `. ${info.mtimeMs}`,
      () => 'missing',
    );
    return [self, ...entries];
  }

  it('finds no lock where there is no folder, creating nothing', async () => {
    expect(await inspectStateLock(state, judge)).toEqual({ kind: 'free' });
    expect(await readdir(parent)).toEqual([]);
  });

  it('tells a held, a stale and an unreadable lock apart, writing nothing', async () => {
    await writeLock({ pid: 4242 });
    let before = await listing(state);
    const held = await inspectStateLock(state, { ...judge, isAlive: () => true });
    expect(held).toMatchObject({ kind: 'held', holder: { pid: 4242 } });
    expect(held.kind === 'held' && held.error.message).toContain('in use by another audit run: pid 4242');
    expect(await listing(state)).toEqual(before);

    const stale = await inspectStateLock(state, { ...judge, isAlive: () => false });
    expect(stale).toEqual({
      kind: 'stale',
      holder: expect.objectContaining({ pid: 4242 }),
      reason: 'that process is gone',
    });
    expect(await listing(state)).toEqual(before);

    await writeFile(lockPath, 'not a lock');
    before = await listing(state);
    expect(await inspectStateLock(state, judge)).toMatchObject({ kind: 'unreadable' });
    expect(await listing(state)).toEqual(before);
  });
});

describe('StateLock.release', () => {
  it('removes only its own lock: not one another run created after ours was deleted by hand', async () => {
    const lock = await acquire('mine');
    await rm(lockPath);
    const theirs = await writeLock({ pid: 5555, runId: 'theirs' });
    expect(await lock.release()).toBe(false);
    expect(await readFile(lockPath, 'utf8')).toBe(theirs);
  });

  it('is quiet when the lock file is already gone', async () => {
    const lock = await acquire('mine');
    await rm(lockPath);
    expect(await lock.release()).toBe(false);
  });
});
