import { describe, expect, it } from 'vitest';
import {
  buildReportModel,
  CREATION_FIELDS,
  creationTimeOf,
  hostOfStates,
  RECENT_REMOVALS_DAYS,
} from '../../functions/report/build.js';
import { daysAgo, HOST, NOW, stateOf } from './fixtures.js';

const build = (states: Parameters<typeof buildReportModel>[0], maxKeyAgeDays: number | null = null) =>
  buildReportModel(states, { generatedAt: NOW, runId: 'run-7', host: HOST, maxKeyAgeDays });

const failure = (reason: string) => ({
  stage: 'walking the keys',
  errorName: 'ForbiddenError',
  status: 403,
  reason,
  since: daysAgo(1),
  lastNotifiedAt: null,
  runId: 'run-6',
});

describe('creationTimeOf', () => {
  it('looks in every documented field, in order', () => {
    expect(CREATION_FIELDS).toEqual(['createdAt', 'created', 'creationTime', 'created_at', 'createTime']);
    for (const field of CREATION_FIELDS) {
      expect(creationTimeOf({ [field]: '2025-01-02T03:04:05Z' })?.toISOString()).toBe(
        '2025-01-02T03:04:05.000Z',
      );
    }
    expect(
      creationTimeOf({ created: '2024-06-01T00:00:00Z', createdAt: '2025-06-01T00:00:00Z' })?.toISOString(),
    ).toBe('2025-06-01T00:00:00.000Z');
  });

  it('takes ISO 8601 only: anything else is no creation time', () => {
    expect(creationTimeOf(undefined)).toBeNull();
    expect(creationTimeOf({})).toBeNull();
    for (const value of ['yesterday', '', 1_700_000_000_000, null, true, ['2025-01-02'], '02/01/2025']) {
      expect(creationTimeOf({ createdAt: value })).toBeNull();
    }
    // An unusable field does not hide a usable one further down the list.
    expect(creationTimeOf({ createdAt: 'soon', createTime: '2025-01-02' })?.toISOString()).toBe(
      '2025-01-02T00:00:00.000Z',
    );
    expect(creationTimeOf({ createdAt: '2025-01-02T03:04:05+02:00' })?.toISOString()).toBe(
      '2025-01-02T01:04:05.000Z',
    );
  });
});

describe('buildReportModel', () => {
  it('says when, by which run, from which host and under which policy it was made', () => {
    const model = buildReportModel([], { generatedAt: NOW, runId: 'run-7', host: HOST, maxKeyAgeDays: 90 });
    expect(model).toEqual({
      generatedAt: NOW.toISOString(),
      runId: 'run-7',
      host: HOST,
      maxKeyAgeDays: 90,
      principals: [],
    });
  });

  it('counts ages from the creation time BigState gave, otherwise from first seen (a lower bound)', () => {
    const model = build([
      stateOf('root', [
        { name: 'created', firstSeenDaysAgo: 10, attributes: { createdAt: daysAgo(400.5) } },
        { name: 'seen', firstSeenDaysAgo: 10.9 },
        { name: 'future', firstSeenDaysAgo: 1, attributes: { created: '2030-01-01T00:00:00Z' } },
      ]),
    ]);
    const keys = model.principals[0]?.keys ?? [];
    expect(keys.map((key) => [key.name, key.ageDays, key.ageFrom, key.createdAt])).toEqual([
      ['created', 400, 'created', daysAgo(400.5)],
      // A creation time after first seen (here in the future) is no age: first seen counts, a lower bound.
      ['future', 1, 'first-seen', '2030-01-01T00:00:00.000Z'],
      ['seen', 10, 'first-seen', null],
    ]);
    expect(keys[2]).toMatchObject({ firstSeen: daysAgo(10.9), lastSeen: daysAgo(0) });
  });

  it('marks stale the keys older than maxKeyAgeDays (not those exactly at it), none without a policy', () => {
    const keys = [
      { name: 'at-limit', firstSeenDaysAgo: 90.2 },
      { name: 'over', firstSeenDaysAgo: 91 },
      { name: 'created-old', firstSeenDaysAgo: 1, attributes: { creationTime: daysAgo(365) } },
    ];
    const stale = (max: number | null) =>
      build([stateOf('root', keys)], max)
        .principals[0]?.keys.filter((key) => key.stale)
        .map((key) => key.name);
    expect(stale(90)).toEqual(['created-old', 'over']);
    expect(stale(null)).toEqual([]);
    expect(stale(1000)).toEqual([]);
  });

  it('lists the removals of the last 30 days, newest first, and leaves out older or malformed ones', () => {
    const model = build([
      stateOf('root', ['a'], {
        recentRemovals: [
          { name: 'old', removedAt: daysAgo(RECENT_REMOVALS_DAYS + 1) },
          { name: 'week', removedAt: daysAgo(7) },
          { name: 'today', removedAt: daysAgo(0.1) },
          { name: 'edge', removedAt: daysAgo(RECENT_REMOVALS_DAYS) },
          { name: 42, removedAt: daysAgo(1) },
          { name: 'no-time', removedAt: 'whenever' },
          null,
        ],
      }),
    ]);
    expect(model.principals[0]?.removedRecently).toEqual([
      { name: 'today', removedAt: daysAgo(0.1) },
      { name: 'week', removedAt: daysAgo(7) },
      { name: 'edge', removedAt: daysAgo(RECENT_REMOVALS_DAYS) },
    ]);
  });

  it('reads the key-count series oldest first, and treats a state without one as empty', () => {
    const model = build([
      stateOf('with', ['a'], {
        series: [
          { at: daysAgo(1), count: 5 },
          { at: daysAgo(3), count: 3 },
          { at: 'garbage', count: 4 },
          { at: daysAgo(2), count: -1 },
          { at: daysAgo(2), count: '4' },
        ],
      }),
      stateOf('without', ['a']),
    ]);
    expect(model.principals.map((principal) => principal.series)).toEqual([
      [
        { at: daysAgo(3), count: 3 },
        { at: daysAgo(1), count: 5 },
      ],
      [],
    ]);
    expect(model.principals[1]?.removedRecently).toEqual([]);
  });

  it('sorts principals and keys by name (code units, as the states keep them)', () => {
    const model = build([
      stateOf('zürich', ['b', 'a']),
      stateOf('Zeta', ['x']),
      stateOf('alpha', ['Z', 'a', '_']),
    ]);
    expect(model.principals.map((principal) => principal.principal)).toEqual(['Zeta', 'alpha', 'zürich']);
    expect(model.principals[1]?.keys.map((key) => key.name)).toEqual(['Z', '_', 'a']);
    expect(model.principals.map((principal) => principal.keyCount)).toEqual([1, 3, 2]);
  });

  it('keeps names exactly: escaping is the renderers’ job', () => {
    const name = '<script>alert(1)</script>\u202e\n';
    const model = build([stateOf(name, [name], { info: { type: 2, displayName: name } })]);
    expect(model.principals[0]).toMatchObject({
      principal: name,
      info: { type: 2, displayName: name },
      keys: [{ name }],
    });
  });

  it('shows the failure of the run that makes the report, else the one the state keeps', () => {
    const states = [
      stateOf('kept', ['a'], { failure: failure('403 from the state') }),
      stateOf('fresh', ['a'], { failure: failure('older reason') }),
      stateOf('fine', ['a']),
    ];
    const model = buildReportModel(states, {
      generatedAt: NOW,
      runId: 'run-7',
      host: HOST,
      maxKeyAgeDays: null,
      failures: new Map([['fresh', 'timed out']]),
    });
    expect(model.principals.map((principal) => [principal.principal, principal.failure])).toEqual([
      ['fine', null],
      ['fresh', 'timed out'],
      ['kept', '403 from the state'],
    ]);
    // The keys of a failing principal are its last good ones.
    expect(model.principals[2]?.keys.map((key) => key.name)).toEqual(['a']);
  });

  it('lists a principal whose first audit just failed, with no state at all, in its place by name', () => {
    const model = buildReportModel([stateOf('b', ['a']), stateOf('d', ['a'])], {
      generatedAt: NOW,
      runId: 'run-7',
      host: HOST,
      maxKeyAgeDays: null,
      failures: new Map([
        ['c', 'HTTP 403'],
        ['d', 'timed out'],
      ]),
    });
    expect(model.principals.map((principal) => [principal.principal, principal.failure])).toEqual([
      ['b', null],
      ['c', 'HTTP 403'],
      ['d', 'timed out'],
    ]);
    expect(model.principals[1]).toMatchObject({ keyCount: 0, keys: [], info: null, series: [] });
  });

  it('shows a principal awaiting its baseline (only failures so far) with no keys and its failure', () => {
    const model = build([
      stateOf('new', ['left-over'], { awaitingBaseline: true, failure: failure('401 Unauthorized') }),
    ]);
    expect(model.principals).toEqual([
      {
        principal: 'new',
        info: null,
        keyCount: 0,
        keys: [],
        removedRecently: [],
        series: [],
        failure: '401 Unauthorized',
      },
    ]);
  });
});

describe('hostOfStates', () => {
  it('names the host of the states, the one with most keys first when they differ', () => {
    expect(hostOfStates([])).toBe('');
    expect(hostOfStates([stateOf('a', ['k'], { host: null })])).toBe('');
    expect(hostOfStates([stateOf('a', ['k']), stateOf('b', ['k'], { host: null })])).toBe(HOST);
    expect(
      hostOfStates([
        stateOf('a', ['k'], { host: 'https://old.example' }),
        stateOf('b', ['k', 'l'], { host: HOST }),
        stateOf('c', ['k'], { host: HOST }),
      ]),
    ).toBe(`${HOST}, https://old.example`);
  });
});
