import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadline, isInterruption, settleBy } from '../../functions/commons/deadline.js';
import { InterruptedError, TimeBudgetError } from '../../functions/commons/errors.js';

/** A promise the test settles when it likes. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('Deadline', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(1_000_000);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends at its time with a TimeBudgetError naming what ran out', () => {
    const deadline = Deadline.after(100, { label: "the run's work deadline" });
    expect(deadline.at).toBe(1_000_100);
    expect(deadline.expired).toBe(false);
    expect(deadline.remainingMs()).toBe(100);
    vi.advanceTimersByTime(99);
    expect(deadline.expired).toBe(false);
    expect(deadline.remainingMs()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(deadline.expired).toBe(true);
    expect(deadline.remainingMs()).toBe(0);
    expect(deadline.signal.reason).toBeInstanceOf(TimeBudgetError);
    expect(deadline.signal.reason.message).toBe("the run's work deadline ended");
    expect(() => deadline.throwIfExpired()).toThrow(deadline.signal.reason);
  });

  it('says "the time budget" when it has no label', () => {
    const deadline = Deadline.after(0);
    expect(deadline.signal.reason.message).toBe('the time budget ended');
  });

  it('has ended at once when its time has passed (or is now)', () => {
    expect(Deadline.at(Date.now() - 1).expired).toBe(true);
    expect(Deadline.at(Date.now()).expired).toBe(true);
    expect(Deadline.after(-5).expired).toBe(true);
    expect(Deadline.after(-5).at).toBe(Date.now());
  });

  it('refuses a time that is not finite', () => {
    expect(() => Deadline.at(Number.NaN)).toThrow(RangeError);
    expect(() => Deadline.at(Number.POSITIVE_INFINITY)).toThrow('a deadline must be a finite epoch time');
    expect(() => Deadline.after(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('takes its clock from the options', () => {
    let now = 50;
    const deadline = Deadline.after(10, { now: () => now });
    expect(deadline.at).toBe(60);
    now = 55;
    expect(deadline.remainingMs()).toBe(5);
    now = 70;
    expect(deadline.remainingMs()).toBe(0);
  });

  it('has no time limit when made with none, and ends only with the caller', () => {
    const controller = new AbortController();
    const deadline = Deadline.none({ signal: controller.signal });
    expect(deadline.at).toBeUndefined();
    expect(deadline.remainingMs()).toBe(Number.POSITIVE_INFINITY);
    vi.advanceTimersByTime(10 ** 9);
    expect(deadline.expired).toBe(false);
    const reason = new InterruptedError('interrupted (Ctrl-C)');
    controller.abort(reason);
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.reason).toBe(reason);
    expect(deadline.remainingMs()).toBe(0);
    expect(isInterruption(deadline.signal.reason)).toBe(true);
  });

  it("ends early with the caller's reason, which tells an interruption from a spent budget", () => {
    const controller = new AbortController();
    const deadline = Deadline.after(1_000, { signal: controller.signal });
    controller.abort(new InterruptedError());
    expect(deadline.expired).toBe(true);
    expect(deadline.remainingMs()).toBe(0);
    expect(isInterruption(deadline.signal.reason)).toBe(true);
    expect(isInterruption(Deadline.after(0).signal.reason)).toBe(false);
  });

  it('has ended at once when the caller already aborted', () => {
    const deadline = Deadline.after(1_000, { signal: AbortSignal.abort(new InterruptedError()) });
    expect(deadline.expired).toBe(true);
  });

  it('stops its timer when disposed: the signal no longer fires by itself, while `expired` still reads the clock', () => {
    const deadline = Deadline.after(100);
    deadline.dispose();
    vi.advanceTimersByTime(1_000);
    expect(vi.getTimerCount()).toBe(0);
    expect(deadline.signal.aborted).toBe(false);
    expect(deadline.expired).toBe(true);
  });

  it('is expired once its time has passed even before its timer could fire (synchronous work ran past it)', () => {
    let now = 1_000;
    const deadline = Deadline.at(1_100, { now: () => now });
    now = 1_160; // a long synchronous diff: the event loop never ran the timer
    expect(deadline.remainingMs()).toBe(0);
    expect(deadline.expired).toBe(true);
    expect(deadline.signal.aborted).toBe(true);
    expect(() => deadline.throwIfExpired()).toThrow(/time budget ended/);
    deadline.dispose();
  });

  it('leaves an ended deadline ended when disposed', () => {
    const deadline = Deadline.after(0);
    deadline.dispose();
    expect(deadline.expired).toBe(true);
  });
});

describe('Deadline.signalWithin', () => {
  it('aborts after the per-call timeout when that comes first, leaving the deadline running', async () => {
    const deadline = Deadline.after(60_000);
    const signal = deadline.signalWithin(5);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    expect(signal.reason).toMatchObject({ name: 'TimeoutError' });
    expect(deadline.expired).toBe(false);
    deadline.dispose();
  });

  it('aborts with the deadline when that comes first', () => {
    const controller = new AbortController();
    const deadline = Deadline.none({ signal: controller.signal });
    const signal = deadline.signalWithin(60_000);
    const reason = new TimeBudgetError('the hard stop ended');
    controller.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
  });

  it('accepts a fraction or nothing left (AbortSignal.timeout alone refuses them)', () => {
    const deadline = Deadline.after(60_000);
    expect(() => deadline.signalWithin(0.4)).not.toThrow();
    expect(() => deadline.signalWithin(0)).not.toThrow();
    expect(() => deadline.signalWithin(-3)).not.toThrow();
    deadline.dispose();
  });

  it('is aborted at once for a deadline that has ended', () => {
    expect(Deadline.after(0).signalWithin(60_000).aborted).toBe(true);
  });
});

describe('isInterruption', () => {
  it('finds an InterruptedError up the cause chain, at most five deep', () => {
    const interrupted = new InterruptedError();
    const wrap = (cause: unknown, times: number): unknown =>
      times === 0 ? cause : wrap(new Error('wrapped', { cause }), times - 1);
    expect(isInterruption(interrupted)).toBe(true);
    expect(isInterruption(wrap(interrupted, 4))).toBe(true);
    expect(isInterruption(wrap(interrupted, 5))).toBe(false);
    expect(isInterruption(new TimeBudgetError('spent'))).toBe(false);
    expect(isInterruption(undefined)).toBe(false);
    expect(isInterruption('interrupted')).toBe(false);
  });
});

describe('settleBy', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves with the work, without calling onOverrun, when the work settles before the deadline', async () => {
    const deadline = Deadline.after(100);
    const onOverrun = vi.fn();
    await expect(settleBy(Promise.resolve('done'), deadline, onOverrun)).resolves.toBe('done');
    expect(onOverrun).not.toHaveBeenCalled();
  });

  it("passes the work's own rejection through unchanged", async () => {
    const deadline = Deadline.after(100);
    const onOverrun = vi.fn();
    const error = new Error('the work failed');
    await expect(settleBy(Promise.reject(error), deadline, onOverrun)).rejects.toBe(error);
    expect(onOverrun).not.toHaveBeenCalled();
  });

  it('calls onOverrun once, then rejects with the deadline reason, when the work outlives deadline + grace', async () => {
    const deadline = Deadline.after(100, { label: "the run's hard stop" });
    const onOverrun = vi.fn();
    const work = deferred<string>();
    const settled = settleBy(work.promise, deadline, onOverrun, 50);
    const outcome = settled.then(
      () => 'resolved',
      (reason: unknown) => reason,
    );
    await vi.advanceTimersByTimeAsync(149);
    expect(onOverrun).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onOverrun).toHaveBeenCalledTimes(1);
    const reason = await outcome;
    expect(reason).toBe(deadline.signal.reason);
    expect((reason as Error).message).toBe("the run's hard stop ended");
    // The work settling later changes nothing.
    work.resolve('late');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(onOverrun).toHaveBeenCalledTimes(1);
  });

  it('gives the work its grace after the deadline: settling within it is no overrun', async () => {
    const deadline = Deadline.after(100);
    const onOverrun = vi.fn();
    const work = deferred<string>();
    const settled = settleBy(work.promise, deadline, onOverrun, 50);
    await vi.advanceTimersByTimeAsync(149);
    work.resolve('just in time');
    await expect(settled).resolves.toBe('just in time');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(onOverrun).not.toHaveBeenCalled();
  });

  it('waits 100 ms of grace by default', async () => {
    const deadline = Deadline.after(0);
    const onOverrun = vi.fn();
    const settled = settleBy(new Promise<never>(() => {}), deadline, onOverrun);
    settled.catch(() => {});
    await vi.advanceTimersByTimeAsync(99);
    expect(onOverrun).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(onOverrun).toHaveBeenCalledTimes(1);
    await expect(settled).rejects.toBeInstanceOf(TimeBudgetError);
  });

  it('never calls onOverrun after the work settled, however late the deadline then ends', async () => {
    const deadline = Deadline.after(100);
    const onOverrun = vi.fn();
    await expect(settleBy(Promise.resolve(1), deadline, onOverrun, 10)).resolves.toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(deadline.expired).toBe(true);
    expect(onOverrun).not.toHaveBeenCalled();
    // Nothing of settleBy is left waiting.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('never calls onOverrun for work that settled after the deadline, within the grace', async () => {
    const controller = new AbortController();
    const deadline = Deadline.none({ signal: controller.signal });
    const onOverrun = vi.fn();
    const work = deferred<string>();
    // The work stops as soon as the deadline aborts it, as every call of a run does.
    deadline.signal.addEventListener('abort', () => work.reject(deadline.signal.reason), { once: true });
    const settled = settleBy(work.promise, deadline, onOverrun, 50);
    controller.abort(new TimeBudgetError('the hard stop ended'));
    await expect(settled).rejects.toMatchObject({ message: 'the hard stop ended' });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(onOverrun).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('starts the grace at once for a deadline that had already ended', async () => {
    const deadline = Deadline.after(0);
    const onOverrun = vi.fn();
    const settled = settleBy(new Promise<never>(() => {}), deadline, onOverrun, 20);
    settled.catch(() => {});
    await vi.advanceTimersByTimeAsync(20);
    expect(onOverrun).toHaveBeenCalledTimes(1);
    await expect(settled).rejects.toBe(deadline.signal.reason);
  });
});
