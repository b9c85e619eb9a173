/**
 * When a failure is worth telling people: when it starts, when its reason changes, then at most once a day
 * while it keeps failing. The invocation fails on every failing run regardless (alarms see each one); only the
 * notices are rationed, so an unfilled secret or a revoked permission does not page someone every hour.
 *
 * Pure: the state it compares lives in the principal's state (`Snapshot.failure`) or the run-level record.
 */
import { causeChain } from '../commons/errors.js';
import type { FailureState } from './ports.js';

/** How often a failure that keeps its reason is told again. */
export const REMINDER_INTERVAL_MS = 24 * 60 * 60 * 1000;

/** What identifies a failure's reason: the stage, the error's name and the HTTP status (never the text). */
export interface FailureSignal {
  readonly stage: string;
  readonly errorName: string;
  readonly status: number | null;
  /** In words, for people; not compared (it may hold counts, times, request ids). */
  readonly reason: string;
}

/** The stage as compared: counts left out, so `confirming 3 removal(s)` and `confirming 4 ...` are one stage. */
export function stageKey(stage: string): string {
  return stage.replace(/\d+/g, 'N');
}

/** The HTTP status an error (or one of its causes) carries, if any. */
export function statusOf(error: unknown): number | null {
  for (const link of causeChain(error)) {
    const status = (link as { status?: unknown }).status;
    if (typeof status === 'number' && Number.isInteger(status)) return status;
  }
  return null;
}

/** What to do about a failure seen now. */
export interface FailureDecision {
  /** Whether to publish a failure notice. */
  readonly notify: boolean;
  /** The state to keep, as if the notice (when `notify`) went out; see {@link notified}. */
  readonly state: FailureState;
}

/**
 * Compares a failure with the one kept from earlier runs. A new reason (another stage, error name or status)
 * is told at once and starts a new `since`; the same reason is told again once `REMINDER_INTERVAL_MS` has passed
 * since people were last told, or when they never were (an earlier notice could not be published).
 */
export function decideFailure(
  previous: FailureState | undefined,
  current: FailureSignal,
  now: Date,
  runId: string,
): FailureDecision {
  const at = now.toISOString();
  const signal = { stage: stageKey(current.stage), errorName: current.errorName, status: current.status };
  const same =
    previous !== undefined &&
    previous.stage === signal.stage &&
    previous.errorName === signal.errorName &&
    previous.status === signal.status;
  if (!same) {
    const told = previous !== undefined && wasTold(previous);
    return {
      notify: true,
      state: {
        ...signal,
        reason: current.reason,
        since: at,
        lastNotifiedAt: null,
        runId,
        ...(told ? { toldBefore: true as const } : {}),
      },
    };
  }
  const last = previous.lastNotifiedAt === null ? Number.NaN : Date.parse(previous.lastNotifiedAt);
  const due = Number.isNaN(last) || now.getTime() - last >= REMINDER_INTERVAL_MS;
  return { notify: due, state: { ...previous, reason: current.reason, runId } };
}

/** The state once its notice went out on every channel. */
export function notified(state: FailureState, now: Date): FailureState {
  return { ...state, lastNotifiedAt: now.toISOString() };
}

/**
 * Of a failure in the principal's state and one kept aside while the state could not be read, the one people heard
 * of last (the later of when it began and when it was told; the state's on a tie): what a new failure is compared
 * with. When only the other was told, the result says so (`toldBefore`), so that the end is told.
 */
export function latestFailure(
  inState: FailureState | undefined,
  aside: FailureState | undefined,
): FailureState | undefined {
  if (aside === undefined) return inState;
  if (inState === undefined) return aside;
  const heardAt = (failure: FailureState): number =>
    Math.max(
      Date.parse(failure.since) || 0,
      failure.lastNotifiedAt === null ? 0 : Date.parse(failure.lastNotifiedAt) || 0,
    );
  const [latest, other] = heardAt(aside) > heardAt(inState) ? [aside, inState] : [inState, aside];
  return wasTold(other) && !wasTold(latest) ? { ...latest, toldBefore: true } : latest;
}

/** Whether people were told of this failure, or of one it followed. */
function wasTold(failure: FailureState): boolean {
  return failure.lastNotifiedAt !== null || failure.toldBefore === true;
}

/** Whether a recovery is worth telling: only a failure people were told about. */
export function recoveryIsNews(previous: FailureState | undefined): previous is FailureState {
  return previous !== undefined && wasTold(previous);
}
