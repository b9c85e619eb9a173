/**
 * One deadline object, threaded from the entry point (the Lambda handler, the CLI) down to every call: BigState
 * requests, AWS SDK calls, back-off waits. Each layer derives what it needs from it (an abort signal, the time
 * left, a per-call timeout) instead of carrying a signal and an epoch side by side and rejoining them.
 *
 * A deadline ends either when its time is up (the signal's reason is a TimeBudgetError) or when the caller's
 * own signal aborts (Ctrl-C: the reason is that signal's, e.g. an InterruptedError), so an error can say which.
 */
import { causeChain, InterruptedError, TimeBudgetError } from './errors.js';

/** Options of a deadline. */
export interface DeadlineOptions {
  /** A caller's signal (Ctrl-C, an outer deadline): aborting it ends this deadline too, with its reason. */
  readonly signal?: AbortSignal | undefined;
  /** Clock in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** What ran out, for the error when the time is up, e.g. `the run's work deadline`. @default 'the time budget' */
  readonly label?: string;
}

/** A point in time after which no new work starts, with the abort signal that fires then. */
export class Deadline {
  /** Epoch milliseconds when the time is up; `undefined` for a deadline with no time limit. */
  readonly at: number | undefined;
  /** Aborts when the time is up or the caller's signal aborts; its `reason` says which. */
  readonly signal: AbortSignal;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout | undefined;
  /** Ends the deadline now, with the time budget's reason (the timer's own action). */
  readonly #expire: () => void;

  private constructor(at: number | undefined, options: DeadlineOptions) {
    this.at = at;
    this.#now = options.now ?? Date.now;
    const controller = new AbortController();
    const label = options.label ?? 'the time budget';
    const expire = () => {
      if (!controller.signal.aborted) controller.abort(new TimeBudgetError(`${label} ended`));
    };
    this.#expire = expire;
    if (at !== undefined) {
      const left = at - this.#now();
      if (left <= 0) expire();
      else {
        this.#timer = setTimeout(expire, Math.ceil(left));
        // A pending deadline must not keep a CLI process (or a test) alive on its own.
        this.#timer.unref?.();
      }
    }
    this.signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  }

  /** A deadline at an absolute time (epoch milliseconds). */
  static at(epochMs: number, options: DeadlineOptions = {}): Deadline {
    if (!Number.isFinite(epochMs)) throw new RangeError('a deadline must be a finite epoch time');
    return new Deadline(epochMs, options);
  }

  /** A deadline `ms` from now. */
  static after(ms: number, options: DeadlineOptions = {}): Deadline {
    const now = options.now ?? Date.now;
    return Deadline.at(now() + Math.max(0, ms), options);
  }

  /** A deadline with no time limit that still ends with the caller's signal (the CLI without a budget). */
  static none(options: DeadlineOptions = {}): Deadline {
    return new Deadline(undefined, options);
  }

  /** Milliseconds left (never negative); `Infinity` for a deadline with no time limit. 0 once aborted. */
  remainingMs(): number {
    if (this.expired) return 0;
    return this.at === undefined ? Number.POSITIVE_INFINITY : Math.max(0, this.at - this.#now());
  }

  /**
   * True once the time is up or the caller aborted. The clock is read too, not only the signal: a timer fires only
   * when the event loop is free, and synchronous work (a large diff) can run past the deadline before it does.
   */
  get expired(): boolean {
    if (!this.signal.aborted && this.at !== undefined && this.#now() >= this.at) this.#expire();
    return this.signal.aborted;
  }

  /** Throws the reason the deadline ended (a TimeBudgetError or the caller's reason) when it has. */
  throwIfExpired(): void {
    if (this.expired) throw this.signal.reason;
  }

  /**
   * A signal for one call: aborts at this deadline or after `timeoutMs`, whichever comes first (a per-call
   * timeout that can never outlive the run).
   */
  signalWithin(timeoutMs: number): AbortSignal {
    return AbortSignal.any([this.signal, AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)))]);
  }

  /** Stops the timer (a finished run need not keep it). The signal stays as it is. */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}

/** True when an abort reason (or an error caused by one) says the caller interrupted rather than time ran out. */
export function isInterruption(reason: unknown): boolean {
  for (const link of causeChain(reason)) if (link instanceof InterruptedError) return true;
  return false;
}

/**
 * Waits for `work`, but no longer than `deadline` (plus `graceMs` for the work's own abort handling): past it,
 * calls `onOverrun` (which ends the process in the Lambda) and then rejects with the deadline's reason. The
 * work's own rejection passes through unchanged.
 */
export async function settleBy<T>(
  work: Promise<T>,
  deadline: Deadline,
  onOverrun: () => void,
  graceMs = 100,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const fire = () => {
    if (settled) return;
    timer = setTimeout(() => {
      if (settled) return;
      onOverrun();
      rejectOverrun(deadline.signal.reason);
    }, graceMs);
  };
  let rejectOverrun: (reason: unknown) => void = () => {};
  const overrun = new Promise<never>((_, reject) => {
    rejectOverrun = reject;
  });
  if (deadline.signal.aborted) fire();
  else deadline.signal.addEventListener('abort', fire, { once: true });
  try {
    return await Promise.race([work, overrun]);
  } finally {
    settled = true;
    deadline.signal.removeEventListener('abort', fire);
    if (timer !== undefined) clearTimeout(timer);
  }
}
