/**
 * One writer per CLI state folder: an exclusive lock file, `<state>/.lock`, held for the whole run.
 *
 * The file holds JSON `{ pid, hostname, startedAt, runId }`. It is created exclusively: written whole to a
 * temporary file first, then hard-linked to `.lock` (`link` fails with EEXIST when the name exists, like
 * `open(..., 'wx')`, but the lock never exists half-written, so a second run never reads an empty holder).
 *
 * A lock is stale only when its holder is on this host and its pid is gone (`process.kill(pid, 0)` answers
 * ESRCH). A stale lock is taken over; a lock from another host, a live pid (EPERM counts as alive: a process
 * of another user) or a file we cannot read is never taken over automatically: the error names the holder and
 * the file to delete once the user is sure no run is active.
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
 * Why not proper-lockfile (npm): it decides staleness by `mtime`, refreshed by a timer; a holder whose event
 * loop is busy longer than the stale period (a diff of a million keys, a laptop going to sleep) loses its lock
 * to a second run, which is exactly the double write this lock exists to prevent. It also removes a stale lock
 * and re-creates it without excluding a second taker-over (it only reports the loss afterwards, through
 * `onCompromised`), and it has had no release in years. A pid on the same host is a sharper test of "the run
 * is gone", needs no timer and no dependency.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod/mini';
import { KeyAuditError } from '../../commons/errors.js';

/** Name of the lock file in the state folder. */
export const LOCK_FILE = '.lock';
/** Name of the file that excludes a second process while one takes over a stale lock. */
export const TAKEOVER_FILE = '.lock.takeover';

/** Who holds a state folder: the content of its lock file. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the holder took the lock (ISO 8601). */
  readonly startedAt: string;
  readonly runId: string;
}

const holderSchema = z.object({
  pid: z.int().check(z.positive()),
  hostname: z.string().check(z.minLength(1)),
  startedAt: z.string(),
  runId: z.string(),
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

/** Options of {@link acquireStateLock}. */
export interface StateLockOptions {
  /** The run taking the lock, written into it. */
  readonly runId: string;
  /**
   * Create the state folder when it does not exist. When false (a dry run, which must write nothing) and the
   * folder does not exist, there is nothing to lock and {@link acquireStateLock} returns `undefined`.
   * @default true
   */
  readonly createFolder?: boolean;
  /** Stops acquisition (checked between attempts, e.g. while another process takes over a stale lock). */
  readonly signal?: AbortSignal | undefined;
  /** @default process.pid */
  readonly pid?: number;
  /** @default os.hostname() */
  readonly hostname?: string;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** Whether a process of this host is alive. @default `process.kill(pid, 0)`: alive unless ESRCH */
  readonly isAlive?: (pid: number) => boolean;
}

/** How often, and how long apart, acquisition looks again while another process takes over a stale lock. */
const ATTEMPTS = 40;
const RETRY_MS = 25;

/** A held lock on a state folder. */
export class StateLock {
  /** The lock file. */
  readonly path: string;
  /** What this lock file holds: this process and run. */
  readonly holder: LockHolder;
  /** The holder of the stale lock this one replaced, if it replaced one. */
  readonly tookOverFrom: LockHolder | undefined;
  readonly #text: string;
  #released = false;

  /** @internal use {@link acquireStateLock} */
  constructor(path: string, holder: LockHolder, text: string, tookOverFrom: LockHolder | undefined) {
    this.path = path;
    this.holder = holder;
    this.#text = text;
    this.tookOverFrom = tookOverFrom;
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
    const text = await readIfExists(this.path);
    if (text !== this.#text) return false;
    await rm(this.path, { force: true });
    return true;
  }
}

/**
 * Takes the exclusive lock on a state folder, taking over a stale one (holder on this host, pid gone).
 * @returns the lock; `undefined` only when `createFolder` is false and the folder does not exist
 * @throws StateLockedError when another run holds the folder (live pid or another host), or the lock file
 *   cannot be read as a lock; the file system's error when the folder cannot be written; the signal's reason
 */
export async function acquireStateLock(
  folder: string,
  options: StateLockOptions,
): Promise<StateLock | undefined> {
  const root = resolve(folder);
  if (options.createFolder === false) {
    if (!(await exists(root))) return undefined;
  } else {
    await mkdir(root, { recursive: true });
  }
  const path = join(root, LOCK_FILE);
  const takeoverPath = join(root, TAKEOVER_FILE);
  const ownHost = options.hostname ?? osHostname();
  const isAlive = options.isAlive ?? processIsAlive;
  const holder: LockHolder = {
    pid: options.pid ?? process.pid,
    hostname: ownHost,
    startedAt: (options.now?.() ?? new Date()).toISOString(),
    runId: options.runId,
  };
  const text = `${JSON.stringify(holder)}\n`;

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    options.signal?.throwIfAborted();
    if (await createExclusive(path, text)) return new StateLock(path, holder, text, undefined);
    const current = await readIfExists(path);
    if (current === undefined) continue; // released between our attempt and the read: try again
    const other = parseHolder(current);
    if (other === undefined) {
      throw new StateLockedError(
        `the state folder ${root} is locked by a lock file that is not a lock this tool wrote (unreadable or cut short): ${path}. If you are sure no audit run is using ${root}, delete ${path} and run again.`,
        path,
      );
    }
    if (other.hostname !== ownHost || isAlive(other.pid)) throw lockedBy(other, root, path, ownHost);
    // Stale: its holder was on this host and its process is gone.
    const outcome = await takeOver({ path, takeoverPath, stale: current, text });
    if (outcome === 'acquired') return new StateLock(path, holder, text, other);
    if (outcome === 'busy') await sleep(RETRY_MS);
  }
  throw new StateLockedError(
    `could not take over the stale lock ${path}: another process kept taking it over (${takeoverPath} stays). If you are sure no audit run is using ${root}, delete ${takeoverPath} and ${path} and run again.`,
    path,
  );
}

function lockedBy(other: LockHolder, root: string, path: string, ownHost: string): StateLockedError {
  const where =
    other.hostname === ownHost
      ? `pid ${other.pid} on this host (${other.hostname})`
      : `pid ${other.pid} on another host, ${other.hostname} (a lock from another host is never taken over automatically)`;
  return new StateLockedError(
    `the state folder ${root} is in use by another audit run: ${where}, since ${other.startedAt} (run ${other.runId}). If you are sure no audit run is using it (e.g. that process was killed), delete ${path} and run again.`,
    path,
    other,
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
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
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

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
