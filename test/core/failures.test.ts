import { describe, expect, it } from 'vitest';
import { ForbiddenError, HttpStatusError, UnauthorizedError } from '../../functions/bigstate/errors.js';
import { StorageError } from '../../functions/commons/errors.js';
import {
  decideFailure,
  type FailureSignal,
  latestFailure,
  notified,
  REMINDER_INTERVAL_MS,
  recoveryIsNews,
  stageKey,
  statusOf,
} from '../../functions/core/failures.js';
import type { FailureState } from '../../functions/core/ports.js';

const T0 = new Date('2025-06-01T12:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const HOUR = 60 * 60 * 1000;

const signal = (overrides: Partial<FailureSignal> = {}): FailureSignal => ({
  stage: 'walking the keys',
  errorName: 'ForbiddenError',
  status: 403,
  reason: 'walking the keys: BigState GET /v1/apikey/match?principal=root&next=0 -> HTTP 403: access denied',
  ...overrides,
});

/** The state kept after a failure first seen (and told) at T0. */
const told = (overrides: Partial<FailureState> = {}): FailureState => ({
  stage: 'walking the keys',
  errorName: 'ForbiddenError',
  status: 403,
  reason: 'walking the keys: HTTP 403',
  since: T0.toISOString(),
  lastNotifiedAt: T0.toISOString(),
  runId: 'run-1',
  ...overrides,
});

describe('REMINDER_INTERVAL_MS', () => {
  it('is one day', () => {
    expect(REMINDER_INTERVAL_MS).toBe(24 * HOUR);
  });
});

describe('stageKey', () => {
  it('leaves the counts out of a stage, so a count that changes is the same stage', () => {
    expect(stageKey('confirming 3 removal(s) with an exact query of each key')).toBe(
      'confirming N removal(s) with an exact query of each key',
    );
    expect(stageKey('confirming 3 removal(s) with an exact query of each key')).toBe(
      stageKey('confirming 4 removal(s) with an exact query of each key'),
    );
    expect(stageKey('confirming 12 removal(s)')).toBe(stageKey('confirming 7 removal(s)'));
  });

  it('keeps stages without digits as they are, and different stages apart', () => {
    expect(stageKey('walking the keys')).toBe('walking the keys');
    expect(stageKey('walking the keys')).not.toBe(stageKey('walking the keys again'));
  });
});

describe('statusOf', () => {
  it('finds the HTTP status of a BigState error', () => {
    expect(statusOf(new ForbiddenError({ method: 'GET', path: '/v1/apikey/match' }))).toBe(403);
    expect(statusOf(new UnauthorizedError({ method: 'GET', path: '/v1/apikey/match' }))).toBe(401);
    expect(statusOf(new HttpStatusError({ method: 'GET', path: '/v1/apikey/match', status: 503 }))).toBe(503);
  });

  it('takes only a whole number as a status, and looks five levels down at most', () => {
    expect(statusOf(Object.assign(new Error('x'), { status: '403' }))).toBeNull();
    expect(statusOf(Object.assign(new Error('x'), { status: 403.5 }))).toBeNull();
    let deep: Error = Object.assign(new Error('bottom'), { status: 500 });
    for (let level = 0; level < 4; level++) deep = new Error(`level ${level}`, { cause: deep });
    expect(statusOf(deep)).toBe(500);
    expect(statusOf(new Error('too deep', { cause: deep }))).toBeNull();
  });

  it('finds a status on a cause, a few levels down', () => {
    const cause = new HttpStatusError({ method: 'GET', path: '/x', status: 502 });
    expect(statusOf(new StorageError('could not read', { cause }))).toBe(502);
    expect(statusOf(new Error('outer', { cause: new Error('middle', { cause }) }))).toBe(502);
  });

  it('takes the outermost status when there are several', () => {
    const inner = new HttpStatusError({ method: 'GET', path: '/x', status: 502 });
    expect(statusOf(new ForbiddenError({ method: 'GET', path: '/x', cause: inner }))).toBe(403);
  });

  it('is null when no error in the chain has an integer status', () => {
    expect(statusOf(new Error('connection reset'))).toBeNull();
    expect(statusOf(new Error('a', { cause: new Error('b') }))).toBeNull();
    expect(statusOf(Object.assign(new Error('odd'), { status: '403' }))).toBeNull();
    expect(statusOf(Object.assign(new Error('odd'), { status: 403.5 }))).toBeNull();
    expect(statusOf('a string')).toBeNull();
    expect(statusOf(undefined)).toBeNull();
    expect(statusOf(null)).toBeNull();
  });

  it('stops looking after a few causes (a cycle cannot hang it)', () => {
    const looped = new Error('loop') as Error & { cause?: unknown };
    looped.cause = looped;
    expect(statusOf(looped)).toBeNull();
    let deep: unknown = new HttpStatusError({ method: 'GET', path: '/x', status: 500 });
    for (let i = 0; i < 10; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(statusOf(deep)).toBeNull();
  });
});

describe('decideFailure', () => {
  it('tells a failure seen for the first time, which starts now and was not told yet', () => {
    const decision = decideFailure(undefined, signal(), T0, 'run-1');
    expect(decision).toStrictEqual({
      notify: true,
      state: {
        stage: 'walking the keys',
        errorName: 'ForbiddenError',
        status: 403,
        reason: signal().reason,
        since: T0.toISOString(),
        lastNotifiedAt: null,
        runId: 'run-1',
      },
    });
  });

  it('keeps the stage without its counts', () => {
    const decision = decideFailure(
      undefined,
      signal({ stage: 'confirming 3 removal(s) with an exact query of each key' }),
      T0,
      'run-1',
    );
    expect(decision.state.stage).toBe('confirming N removal(s) with an exact query of each key');
  });

  it('does not tell the same reason again within 24 hours of the last notice', () => {
    for (const later of [1, HOUR, 23 * HOUR, REMINDER_INTERVAL_MS - 1]) {
      const decision = decideFailure(told(), signal(), at(later), `run-${later}`);
      expect(decision.notify).toBe(false);
      // The same failure: since and the last notice stay, the reason and run are the latest.
      expect(decision.state).toStrictEqual({
        ...told(),
        reason: signal().reason,
        runId: `run-${later}`,
      });
    }
  });

  it('tells the same reason again once 24 hours have passed since the last notice, exactly 24 h included', () => {
    for (const later of [REMINDER_INTERVAL_MS, REMINDER_INTERVAL_MS + 1, 3 * REMINDER_INTERVAL_MS]) {
      const decision = decideFailure(told(), signal(), at(later), 'run-9');
      expect(decision.notify).toBe(true);
      // A reminder: the failure still began at T0.
      expect(decision.state.since).toBe(T0.toISOString());
      expect(decision.state.lastNotifiedAt).toBe(T0.toISOString());
    }
  });

  it('counts the 24 hours from the last notice, not from when the failure began', () => {
    const previous = told({
      since: '2025-05-20T00:00:00.000Z',
      lastNotifiedAt: at(-HOUR).toISOString(),
    });
    expect(decideFailure(previous, signal(), T0, 'run-2').notify).toBe(false);
    expect(decideFailure(previous, signal(), at(REMINDER_INTERVAL_MS - HOUR), 'run-3').notify).toBe(true);
  });

  it('tells the same reason at once when people were never told (the notice could not be published)', () => {
    const previous = told({ lastNotifiedAt: null });
    const decision = decideFailure(previous, signal(), at(1), 'run-2');
    expect(decision.notify).toBe(true);
    expect(decision.state.since).toBe(T0.toISOString());
    expect(decision.state.lastNotifiedAt).toBeNull();
  });

  it('tells the same reason when the last notice time cannot be read', () => {
    const decision = decideFailure(told({ lastNotifiedAt: 'not a time' }), signal(), at(1), 'run-2');
    expect(decision.notify).toBe(true);
  });

  it.each([
    ['another HTTP status', { errorName: 'UnauthorizedError', status: 401 }, { errorName: 'ForbiddenError' }],
    ['another HTTP status, same error name', { status: 404 }, {}],
    ['a status where there was none', { status: 403 }, { status: null }],
    ['another error name', { errorName: 'ProtocolError' }, {}],
    ['another stage', { stage: 'walking the keys again' }, {}],
  ] as Array<[string, Partial<FailureSignal>, Partial<FailureState>]>)(
    'tells %s at once, even within 24 hours, and starts a new since',
    (_what, now, before) => {
      const decision = decideFailure(told(before), signal(now), at(HOUR), 'run-2');
      expect(decision.notify).toBe(true);
      expect(decision.state.since).toBe(at(HOUR).toISOString());
      expect(decision.state.lastNotifiedAt).toBeNull();
      expect(decision.state.runId).toBe('run-2');
      expect(decision.state).toMatchObject({
        stage: stageKey(now.stage ?? 'walking the keys'),
        errorName: now.errorName ?? 'ForbiddenError',
        status: now.status === undefined ? 403 : now.status,
      });
    },
  );

  it('compares the stage without its counts: another count is the same failure', () => {
    const previous = told({ stage: 'confirming N removal(s) with an exact query of each key' });
    const decision = decideFailure(
      previous,
      signal({ stage: 'confirming 4 removal(s) with an exact query of each key', reason: 'four now' }),
      at(HOUR),
      'run-2',
    );
    expect(decision.notify).toBe(false);
    expect(decision.state).toStrictEqual({ ...previous, reason: 'four now', runId: 'run-2' });
  });

  it('never compares the text: another reason in words is the same failure', () => {
    const decision = decideFailure(
      told(),
      signal({ reason: 'walking the keys: request id 9f2c, HTTP 403' }),
      at(HOUR),
      'run-2',
    );
    expect(decision.notify).toBe(false);
    expect(decision.state.reason).toBe('walking the keys: request id 9f2c, HTTP 403');
  });
});

describe('notified', () => {
  it('records when people were told, and nothing else', () => {
    const state = told({ lastNotifiedAt: null });
    expect(notified(state, at(HOUR))).toStrictEqual({ ...state, lastNotifiedAt: at(HOUR).toISOString() });
    // A copy: the state given is left as it was.
    expect(state.lastNotifiedAt).toBeNull();
  });
});

describe('recoveryIsNews', () => {
  it('is true only for a failure people were told about', () => {
    expect(recoveryIsNews(told())).toBe(true);
    expect(recoveryIsNews(told({ lastNotifiedAt: null }))).toBe(false);
    expect(recoveryIsNews(undefined)).toBe(false);
  });
});

describe('a failing streak whose reason changed', () => {
  it('keeps that people were told of an earlier reason, so its end is news even if the new reason was never told', () => {
    const first = decideFailure(
      undefined,
      { stage: 'walking the keys', errorName: 'ForbiddenError', status: 403, reason: 'r1' },
      new Date('2025-06-01T10:00:00.000Z'),
      'run-1',
    );
    const told = notified(first.state, new Date('2025-06-01T10:00:00.000Z'));
    const changed = decideFailure(
      told,
      { stage: 'walking the keys', errorName: 'UnauthorizedError', status: 401, reason: 'r2' },
      new Date('2025-06-01T11:00:00.000Z'),
      'run-2',
    );
    expect(changed.notify).toBe(true);
    // Its notice could not go out: lastNotifiedAt stays null, yet the recovery is still news.
    expect(changed.state).toMatchObject({ lastNotifiedAt: null, toldBefore: true });
    expect(recoveryIsNews(changed.state)).toBe(true);
    // A streak never told at all has no recovery to tell.
    expect(recoveryIsNews(first.state)).toBe(false);
  });
});

describe('decideFailure: whether an earlier reason was told', () => {
  const changed = (previous: FailureState) =>
    decideFailure(previous, signal({ errorName: 'UnauthorizedError', status: 401 }), at(HOUR), 'run-2').state;

  it('carries toldBefore through a reason never told itself, when one before it was', () => {
    const carried = changed(told({ lastNotifiedAt: null, toldBefore: true }));
    expect(carried).toMatchObject({ lastNotifiedAt: null, toldBefore: true });
    // And once more: the chain of untold reasons still ends in a recovery worth telling.
    expect(changed({ ...carried, errorName: 'Other' }).toldBefore).toBe(true);
  });

  it('sets no toldBefore when nothing before was told', () => {
    const state = changed(told({ lastNotifiedAt: null }));
    expect(state).not.toHaveProperty('toldBefore');
    expect(recoveryIsNews(state)).toBe(false);
  });
});

describe('latestFailure', () => {
  const inState = told({
    stage: 'walking the keys',
    since: T0.toISOString(),
    lastNotifiedAt: T0.toISOString(),
  });
  const aside = told({
    stage: 'reading the snapshot',
    errorName: 'StorageError',
    status: null,
    since: at(HOUR).toISOString(),
    lastNotifiedAt: at(HOUR).toISOString(),
  });

  it('is either one when the other is missing', () => {
    expect(latestFailure(inState, undefined)).toBe(inState);
    expect(latestFailure(undefined, aside)).toBe(aside);
    expect(latestFailure(undefined, undefined)).toBeUndefined();
  });

  it('is the one people heard of last, whichever side it is on', () => {
    expect(latestFailure(inState, aside)).toBe(aside);
    const laterInState = { ...inState, lastNotifiedAt: at(2 * HOUR).toISOString() };
    expect(latestFailure(laterInState, aside)).toBe(laterInState);
    // Begun later but never told: heard of by when it began.
    const newest = { ...inState, since: at(3 * HOUR).toISOString(), lastNotifiedAt: null };
    expect(latestFailure(newest, aside)).toMatchObject({ since: newest.since, toldBefore: true });
  });

  it("keeps the state's on a tie", () => {
    expect(
      latestFailure(inState, { ...aside, since: inState.since, lastNotifiedAt: inState.lastNotifiedAt }),
    ).toBe(inState);
  });

  it('says an earlier one was told when only the other was, so that its end is told', () => {
    const untold = { ...aside, lastNotifiedAt: null };
    expect(latestFailure(inState, untold)).toStrictEqual({ ...untold, toldBefore: true });
    expect(recoveryIsNews(latestFailure(inState, untold))).toBe(true);
    const neither = { ...inState, lastNotifiedAt: null };
    expect(latestFailure(neither, untold)).toBe(untold);
    expect(recoveryIsNews(latestFailure(neither, untold))).toBe(false);
  });
});
