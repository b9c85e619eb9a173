/**
 * One writer per CLI state folder: an exclusive lock file, `<state>/.lock`, held for the whole run.
 *
 * The file holds JSON `{ pid, hostname, startedAt, runId, processStart? }`. It is created exclusively: written
 * whole to a temporary file first, then hard-linked to `.lock` (`link` fails with EEXIST when the name exists,
 * like `open(..., 'wx')`, but the lock never exists half-written, so a second run never reads an empty holder).
 * `processStart` tells the holder's process apart from a later one given the same pid: on Linux the boot id
 * and the process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), an opaque token
 * compared for equality only; absent where it cannot be read (other systems).
 *
 * When a lock is stale (see {@link judgeHolder} for the rules, in order): a lock from another host is never
 * stale (we cannot see its processes). On this host:
 * 1. It names our own pid: if a run of this very process holds it (a run id this module registered), or it was
 *    written by this very process (same `processStart`, e.g. another thread), it is live. Otherwise it is stale:
 *    the process that wrote it is gone and its pid is now ours (a container's node is PID 1 on every run, with
 *    a fixed hostname; we are not that run). Where the start cannot be read, runs in other threads of one
 *    process cannot see each other's locks: run the CLI once per process there (it does).
 * 2. Its pid is gone (`process.kill(pid, 0)` answers ESRCH): stale. EPERM counts as alive (another user's).
 * 3. Its pid is alive and both the recorded and the current `processStart` are known: the same token means the
 *    holder itself, live whatever the lock's age; another token means the pid now belongs to a process started
 *    after the lock was written (pid reuse): stale.
 * 4. Its pid is alive but the holder cannot be confirmed (no `/proc`, a lock written without `processStart`,
 *    `/proc/<pid>` hidden): stale once the lock is more than a day old, live before.
 *
 * Why an age limit only in case 4: where the process can be identified, identity is exact and age adds only a
 * way to be wrong (a genuine run held up for a day, e.g. a laptop asleep mid-run, would lose its lock). Where it
 * cannot, pid liveness alone would keep a lock whose pid was reused by any long-lived process forever, each run
 * exiting 2 until someone deletes the file; a CLI run lasts minutes, so a live pid behind a lock over a day old is
 * far likelier a reused pid than the run itself. Should it be the run itself (asleep for a day), its snapshot
 * writes still carry the version they read, so it cannot silently overwrite what the second run committed;
 * that rare race is the price of never needing a person to clear a reused pid's lock by hand.
 *
 * Containers: "this host" is the hostname. Two containers running at the same time with the same fixed
 * `--hostname` on one shared state folder look like one host whose PID 1 is gone; give them distinct hostnames
 * (Docker's default) or distinct state folders.
 *
 * A lock judged live, a lock from another host or a file we cannot read is never taken over automatically: the
 * error names the holder and the file to delete once the user is sure no run is active.
 *
 * Taking over, when two processes both find the same lock stale: "read, decide, unlink, create" would let the
 * slower one unlink the lock the faster one just created, and an atomic `rename` over `.lock` replaces whatever
 * is there by then (possibly that fresh lock) just the same. So the takeover runs under a second exclusive
 * file, `.lock.takeover`: whoever creates it re-reads `.lock`, unlinks it only if it still holds exactly the
 * stale bytes it judged (no one else can change them meanwhile: the dead holder cannot release, a new run
 * cannot create over an existing name, and another taker-over is shut out), creates its own lock the normal
 * exclusive way, and removes `.lock.takeover`. The loser sees `.lock.takeover`, waits a moment, and starts
 * again: by then `.lock` is the winner's, live lock. Only a process killed inside that few-millisecond window
 * leaves `.lock.takeover` behind; the error then names it for deletion.
 *
 * A dry run takes no lock (it writes nothing, not even a lock): {@link inspectStateLock} only reads `.lock`,
 * so the CLI can warn that another run may change the state under it.
 *
 * Why not proper-lockfile (npm): it decides staleness by `mtime`, refreshed by a timer; a holder whose event
 * loop is busy longer than the stale period (a diff of a million keys, a laptop going to sleep) loses its lock
 * to a second run, which is exactly the double write this lock exists to prevent. It also removes a stale lock
 * and re-creates it without excluding a second taker-over (it only reports the loss afterwards, through
 * `onCompromised`), and it has had no release in years. A pid on the same host is a sharper test of "the run
 * is gone", needs no timer and no dependency.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { KeyAuditError } from '../../commons/errors.js';

/** Name of the lock file in the state folder. */
export const LOCK_FILE = '.lock';
/** Name of the file that excludes a second process while one takes over a stale lock. */
export const TAKEOVER_FILE = '.lock.takeover';
/** How old a lock whose live pid cannot be confirmed to be its holder may be before it is stale: a day. */
export const UNCONFIRMED_LOCK_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Who holds a state folder: the content of its lock file. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock (ISO 8601). */
  readonly startedAt: string;
  readonly runId: string;
  /**
   * The holder process's start, as {@link processStartOf} reads it: tells it apart from a later process given
   * the same pid. Absent where it cannot be read (and in locks of earlier versions).
   */
  readonly processStart?: string;
}

const holderSchema = z.object({
  pid: z.int().check(z.positive()),
  hostname: z.string().check(z.minLength(1)),
  startedAt: z.string(),
  runId: z.string(),
  processStart: z.optional(z.string().check(z.minLength(1))),
});

/**
 * The state folder is locked by another run (or by a lock file we cannot read). The message names the holder
 * and the file to delete when the user is sure no run is active.
 */
export class StateLockedError extends KeyAuditError {
  /** The holder; `undefined` when the lock file could not be read as one. */
  readonly holder: LockHolder | undefined;
  /** The file to delete to clear a lock whose run is known to be gone. */
  readonly lockPath: string;

  constructor(message: string, lockPath: string, holder?: LockHolder) {
    super(message);
    this.name = 'StateLockedError';
    this.lockPath = lockPath;
    this.holder = holder;
  }
}

/** How a lock's holder is judged: who we are and how to look at the other processes of this host. */
export interface LockJudgeOptions {
  /** @default process.pid */
  readonly pid?: number;
  /** @default os.hostname() */
  readonly hostname?: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Whether a process of this host is alive. @default {@link processIsAlive} */
  readonly isAlive?: (pid: number) => boolean;
  /** The start token of a process of this host, `undefined` when unknown. @default {@link processStartOf} */
  readonly processStart?: (pid: number) => Promise<string | undefined>;
}

/** Options of {@link acquireStateLock}. */
export interface StateLockOptions extends LockJudgeOptions {
  /** The run taking the lock, written into it. */
  readonly runId: string;
  /** Stops acquisition (checked between attempts, e.g. while another process takes over a stale lock). */
  readonly signal?: AbortSignal | undefined;
}

/** How often, and how long apart, acquisition looks again while another process takes over a stale lock. */
const ATTEMPTS = 40;
const RETRY_MS = 25;

/**
 * The locks the runs of this process hold (`<lock path>\0<run id>`), shared by every copy of this module in the
 * process (a test runner may load it twice): a lock naming our pid is live only if one of them is it.
 */
const HELD: Set<string> = (() => {
  const key = Symbol.for('bigstate-key-audit.state-locks-held');
  const global = globalThis as { [key]?: Set<string> };
  global[key] ??= new Set<string>();
  return global[key];
})();

const heldKey = (path: string, runId: string): string => `${path}\0${runId}`;

/** A held lock on a state folder. */
export class StateLock {
  /** The lock file. */
  readonly path: string;
  /** What this lock file holds: this process and run. */
  readonly holder: LockHolder;
  /** The holder of the stale lock this one replaced, if it replaced one. */
  readonly tookOverFrom: LockHolder | undefined;
  /** Why the lock this one replaced was stale (e.g. `that process is gone`), if it replaced one. */
  readonly staleReason: string | undefined;
  readonly #text: string;
  #released = false;

  /** @internal use {@link acquireStateLock} */
  constructor(
    path: string,
    holder: LockHolder,
    text: string,
    tookOver?: { readonly from: LockHolder; readonly reason: string },
  ) {
    this.path = path;
    this.holder = holder;
    this.#text = text;
    this.tookOverFrom = tookOver?.from;
    this.staleReason = tookOver?.reason;
    HELD.add(heldKey(path, holder.runId));
  }

  /**
   * Removes the lock file if it is still this lock (never one another run created after ours was deleted by
   * hand). Idempotent.
   * @returns whether the file was removed
   * @throws the file system's error when the lock file exists but cannot be read or removed
   */
  async release(): Promise<boolean> {
    if (this.#released) return false;
    this.#released = true;
    HELD.delete(heldKey(this.path, this.holder.runId));
    const text = await readIfExists(this.path);
    if (text !== this.#text) return false;
    await rm(this.path, { force: true });
    return true;
  }
}

/**
 * Takes the exclusive lock on a state folder (creating the folder), taking over a stale one (see the rules at
 * the top of this module).
 * @throws StateLockedError when another run holds the folder (a live holder or another host), or the lock file
 *   cannot be read as a lock; the file system's error when the folder cannot be written; the signal's reason
 */
export async function acquireStateLock(folder: string, options: StateLockOptions): Promise<StateLock> {
  const root = resolve(folder);
  await mkdir(root, { recursive: true });
  const path = join(root, LOCK_FILE);
  const takeoverPath = join(root, TAKEOVER_FILE);
  const judge = judgeOptions(options);
  const processStart = await judge.processStart(judge.pid);
  const holder: LockHolder = {
    pid: judge.pid,
    hostname: judge.hostname,
    startedAt: judge.now().toISOString(),
    runId: options.runId,
    ...(processStart === undefined ? {} : { processStart }),
  };
  const text = `${JSON.stringify(holder)}\n`;

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    options.signal?.throwIfAborted();
    if (await createExclusive(path, text)) return new StateLock(path, holder, text);
    const current = await readIfExists(path);
    if (current === undefined) continue; // released between our attempt and the read: try again
    const other = parseHolder(current);
    if (other === undefined) throw unreadableLock(root, path);
    const verdict = await judgeHolder(other, path, judge);
    if (!verdict.stale) throw lockedBy(other, root, path, judge.hostname);
    const outcome = await takeOver({ path, takeoverPath, stale: current, text });
    if (outcome === 'acquired') {
      return new StateLock(path, holder, text, { from: other, reason: verdict.reason });
    }
    if (outcome === 'busy') await sleep(RETRY_MS);
  }
  throw new StateLockedError(
    `could not take over the stale lock ${path}: another process kept taking it over (${takeoverPath} stays). If you are sure no audit run is using ${root}, delete ${takeoverPath} and ${path} and run again.`,
    path,
  );
}

/** What {@link inspectStateLock} found in a state folder. */
export type LockStatus =
  /** No lock file (or no folder). */
  | { readonly kind: 'free' }
  /** A live lock of another run: a real run would be refused with `error`. */
  | { readonly kind: 'held'; readonly holder: LockHolder; readonly error: StateLockedError }
  /** A lock a real run would take over, and why. */
  | { readonly kind: 'stale'; readonly holder: LockHolder; readonly reason: string }
  /** A lock file that is no lock this tool wrote: a real run would be refused with `error`. */
  | { readonly kind: 'unreadable'; readonly error: StateLockedError };

/**
 * Looks at a state folder's lock without taking it, creating nothing and writing nothing (for a dry run).
 * @throws the file system's error when the lock file exists but cannot be read
 */
export async function inspectStateLock(folder: string, options: LockJudgeOptions = {}): Promise<LockStatus> {
  const root = resolve(folder);
  const path = join(root, LOCK_FILE);
  const current = await readIfExists(path);
  if (current === undefined) return { kind: 'free' };
  const other = parseHolder(current);
  if (other === undefined) return { kind: 'unreadable', error: unreadableLock(root, path) };
  const judge = judgeOptions(options);
  const verdict = await judgeHolder(other, path, judge);
  return verdict.stale
    ? { kind: 'stale', holder: other, reason: verdict.reason }
    : { kind: 'held', holder: other, error: lockedBy(other, root, path, judge.hostname) };
}

/** The holder in words: `pid 12 on this host (h), since <time> (run <id>)`. */
export function describeHolder(other: LockHolder, ownHost: string = osHostname()): string {
  const where =
    other.hostname === ownHost
      ? `pid ${other.pid} on this host (${other.hostname})`
      : `pid ${other.pid} on another host, ${other.hostname} (a lock from another host is never taken over automatically)`;
  return `${where}, since ${other.startedAt} (run ${other.runId})`;
}

type Judge = Required<LockJudgeOptions>;

function judgeOptions(options: LockJudgeOptions): Judge {
  return {
    pid: options.pid ?? process.pid,
    hostname: options.hostname ?? osHostname(),
    now: options.now ?? (() => new Date()),
    isAlive: options.isAlive ?? processIsAlive,
    processStart: options.processStart ?? processStartOf,
  };
}

type Verdict = { readonly stale: false } | { readonly stale: true; readonly reason: string };

const LIVE: Verdict = { stale: false };

/** Whether a lock's holder is gone (the rules, in order, are at the top of this module). */
async function judgeHolder(other: LockHolder, path: string, judge: Judge): Promise<Verdict> {
  if (other.hostname !== judge.hostname) return LIVE;
  if (other.pid === judge.pid) {
    if (HELD.has(heldKey(path, other.runId))) return LIVE;
    const ours = await judge.processStart(judge.pid);
    if (ours !== undefined && other.processStart === ours) return LIVE; // this very process (another thread)
    return {
      stale: true,
      reason: `that pid is now this process's own, so the run that wrote the lock is gone`,
    };
  }
  if (!judge.isAlive(other.pid)) return { stale: true, reason: 'that process is gone' };
  const current = other.processStart === undefined ? undefined : await judge.processStart(other.pid);
  if (current !== undefined) {
    return current === other.processStart
      ? LIVE
      : {
          stale: true,
          reason: `that pid now belongs to another process, started after the lock was written (a reused pid)`,
        };
  }
  const age = judge.now().getTime() - Date.parse(other.startedAt);
  if (age > UNCONFIRMED_LOCK_MAX_AGE_MS) {
    return {
      stale: true,
      reason: `the lock is over a day old and that pid cannot be confirmed to be the process that wrote it (no run lasts that long; taken for a reused pid)`,
    };
  }
  return LIVE;
}

function lockedBy(other: LockHolder, root: string, path: string, ownHost: string): StateLockedError {
  return new StateLockedError(
    `the state folder ${root} is in use by another audit run: ${describeHolder(other, ownHost)}. If you are sure no audit run is using it (e.g. that process was killed), delete ${path} and run again.`,
    path,
    other,
  );
}

function unreadableLock(root: string, path: string): StateLockedError {
  return new StateLockedError(
    `the state folder ${root} is locked by a lock file that is not a lock this tool wrote (unreadable or cut short): ${path}. If you are sure no audit run is using ${root}, delete ${path} and run again.`,
    path,
  );
}

/**
 * Replaces a stale lock under the takeover file.
 * @returns `acquired`; `changed` when `.lock` no longer holds the stale bytes (look again); `busy` when another
 *   process is taking over right now
 */
async function takeOver(args: {
  path: string;
  takeoverPath: string;
  stale: string;
  text: string;
}): Promise<'acquired' | 'changed' | 'busy'> {
  if (!(await createExclusive(args.takeoverPath, args.text))) return 'busy';
  try {
    if ((await readIfExists(args.path)) !== args.stale) return 'changed';
    await rm(args.path, { force: true });
    return (await createExclusive(args.path, args.text)) ? 'acquired' : 'changed';
  } finally {
    await rm(args.takeoverPath, { force: true });
  }
}

/** Creates `path` holding `text`, atomically and only if it does not exist. @returns false when it exists */
async function createExclusive(path: string, text: string): Promise<boolean> {
  const temporary = `${path}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, text, { encoding: 'utf8', flag: 'wx' });
    await link(temporary, path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temporary, { force: true });
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const result = holderSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    // ENOTDIR: a path below a file; no lock can be there either.
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Whether a process of this host is alive: signal 0 checks without signalling; EPERM means it exists. */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== 'ESRCH';
  }
}

/**
 * When a process of this host started, as a token equal for the same process and different for any later one
 * given the same pid: on Linux `linux:<boot id>:<start time in clock ticks since boot>` (`/proc/<pid>/stat`
 * field 22; the boot id keeps two boots apart). Compared for equality only: the tick length (`CLK_TCK`) is not
 * needed. `undefined` where it cannot be read: another system, no `/proc`, a process `/proc` hides, or gone.
 */
export async function processStartOf(pid: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  try {
    const [stat, boot] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), bootId()]);
    const ticks = startTicksOf(stat);
    return ticks === undefined || boot === undefined ? undefined : `linux:${boot}:${ticks}`;
  } catch {
    return undefined;
  }
}

/** Field 22 (starttime) of a `/proc/<pid>/stat` line; the name in field 2 may hold spaces and `)`. */
export function startTicksOf(stat: string): string | undefined {
  const close = stat.lastIndexOf(')');
  if (close === -1) return undefined;
  // After ") " come the fields from 3 (state) on: starttime, field 22, is the 20th of them.
  const ticks = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/)[19];
  return ticks !== undefined && /^\d+$/.test(ticks) ? ticks : undefined;
}

let bootIdOnce: Promise<string | undefined> | undefined;

/** This boot's id (`/proc/sys/kernel/random/boot_id`), else the boot time (`btime` of `/proc/stat`). */
function bootId(): Promise<string | undefined> {
  bootIdOnce ??= (async () => {
    const id = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined);
    if (id !== undefined && id.trim() !== '') return id.trim();
    const stat = await readFile('/proc/stat', 'utf8').catch(() => undefined);
    const btime = stat?.match(/^btime (\d+)$/m)?.[1];
    return btime === undefined ? undefined : `btime-${btime}`;
  })();
  return bootIdOnce;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
