/**
 * Key ages and key-age notices (`maxKeyAgeDays`): ages from a creation time BigState returns, or from first seen
 * (a lower bound); a key that crosses the limit is told once, in the outbox like a change, never again every run;
 * and what the state keeps for the report (the key-count series, recent removals).
 */
import { describe, expect, it } from 'vitest';
import { ageOf, creationTimeOf } from '../../functions/core/ages.js';
import { type AuditDeps, runAudit } from '../../functions/core/audit.js';
import { eventParts, snsAttributes, snsBody, snsSubject } from '../../functions/core/messages.js';
import type { ChangeRecord, Notice } from '../../functions/core/ports.js';
import { FakeLister, HOST, MemoryStore, RecordingChannel } from './support/fakes.js';

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const daysAgo = (days: number, from = T0) => new Date(from - days * DAY).toISOString();

describe('creationTimeOf and ageOf', () => {
  it('takes a creation time from the fields BigState may use, in order, when it parses as ISO 8601', () => {
    expect(creationTimeOf({ createdAt: '2025-01-02T03:04:05Z' })?.toISOString()).toBe(
      '2025-01-02T03:04:05.000Z',
    );
    expect(creationTimeOf({ created: '2025-01-02' })?.toISOString()).toBe('2025-01-02T00:00:00.000Z');
    expect(creationTimeOf({ creationTime: '2025-01-02T03:04:05.2245429+00:00' })).not.toBeNull();
    expect(creationTimeOf({ created_at: '2025-01-02T03:04:05+02:00' })?.toISOString()).toBe(
      '2025-01-02T01:04:05.000Z',
    );
    expect(creationTimeOf({ createTime: 'not a date', createdAt: 'yesterday' })).toBeNull();
    expect(creationTimeOf({ createdAt: 1_700_000_000 })).toBeNull();
    expect(creationTimeOf(undefined)).toBeNull();
    // An inherited field is no field of the key.
    expect(creationTimeOf(Object.create({ createdAt: '2025-01-02' }) as Record<string, unknown>)).toBeNull();
  });

  it('ages a key from its creation time when it has one, else from first seen (a lower bound)', () => {
    const now = new Date(T0);
    const created = {
      name: 'k',
      firstSeen: daysAgo(3),
      lastSeen: daysAgo(0),
      attributes: { createdAt: daysAgo(100) },
    };
    expect(ageOf(created, now)).toEqual({ ageDays: 100, ageFrom: 'created', createdAt: daysAgo(100) });
    const seen = { name: 'k', firstSeen: daysAgo(3.5), lastSeen: daysAgo(0) };
    expect(ageOf(seen, now)).toEqual({ ageDays: 3, ageFrom: 'first-seen', createdAt: null });
    // A creation time after the key was first seen (in the future, or forged) is no age: first seen counts,
    // never a negative age nor a key made younger than the audits saw it (a 517-day-old key never escapes).
    const future = { ...seen, attributes: { createdAt: new Date(T0 + DAY).toISOString() } };
    expect(ageOf(future, now)).toEqual({
      ageDays: 3,
      ageFrom: 'first-seen',
      createdAt: new Date(T0 + DAY).toISOString(),
    });
    const forged = {
      name: 'k',
      firstSeen: daysAgo(517),
      lastSeen: daysAgo(0),
      attributes: { createdAt: '2999-01-01T00:00:00Z' },
    };
    expect(ageOf(forged, now)).toMatchObject({ ageDays: 517, ageFrom: 'first-seen' });
    // A creation time a little after first seen (the two clocks differ) is no creation time either.
    const skewed = {
      ...seen,
      attributes: { createdAt: new Date(Date.parse(seen.firstSeen) + 5_000).toISOString() },
    };
    expect(ageOf(skewed, now).ageFrom).toBe('first-seen');
  });
});

function setup(keys: Array<string | { name: string; [field: string]: unknown }>) {
  const at = { now: new Date(T0) };
  const store = new MemoryStore();
  const bigstate = new FakeLister({ root: keys });
  const sns = new RecordingChannel('sns');
  const bus = new RecordingChannel('events');
  const deps: AuditDeps = { bigstate, store, channels: [sns, bus], clock: { now: () => at.now } };
  let runs = 0;
  /** A run with the key-age limit (90 days unless said otherwise; `null`: none). */
  const run = (limit: number | null = 90) =>
    runAudit(deps, {
      runId: `run-${++runs}`,
      host: HOST,
      principals: ['root'],
      maxKeyAgeDays: limit ?? undefined,
    });
  const staleNotices = () =>
    sns.notices.filter(
      (notice): notice is { kind: 'stale'; record: ChangeRecord } => notice.kind === 'stale',
    );
  return { at, store, bigstate, sns, bus, run, staleNotices };
}

describe('key-age notices', () => {
  it('tells keys past the limit once, with their ages and how each was known, and never again every run', async () => {
    const { at, store, run, staleNotices, bus } = setup([
      { name: 'old-created', createdAt: daysAgo(120) },
      { name: 'young-created', createdAt: daysAgo(10) },
      'seen-only',
    ]);
    await run();
    const [first, ...more] = staleNotices();
    expect(more).toEqual([]);
    expect(first?.record).toMatchObject({
      kind: 'stale',
      maxKeyAgeDays: 90,
      stale: [{ name: 'old-created', ageDays: 120, ageFrom: 'created', createdAt: daysAgo(120) }],
    });
    expect(store.state('root').staleReported).toEqual(['old-created']);
    expect(bus.notices.filter((notice) => notice.kind === 'stale')).toHaveLength(1);

    // Next day: still stale, not told again.
    at.now = new Date(T0 + DAY);
    await run();
    expect(staleNotices()).toHaveLength(1);

    // 91 days later the key with no creation time crosses the line (a lower bound), and so does the young one:
    // told together, the one told before not again.
    at.now = new Date(T0 + 91 * DAY);
    await run();
    const [, second] = staleNotices();
    expect(second?.record.stale).toEqual([
      { name: 'seen-only', ageDays: 91, ageFrom: 'first-seen', createdAt: null },
      { name: 'young-created', ageDays: 101, ageFrom: 'created', createdAt: daysAgo(10) },
    ]);
    expect(staleNotices()).toHaveLength(2);
    expect(store.state('root').staleReported).toEqual(['old-created', 'seen-only', 'young-created']);
  });

  it('tells nothing without a limit, and forgets what it told once the limit is lifted', async () => {
    const { store, run, staleNotices } = setup([{ name: 'old', createdAt: daysAgo(500) }]);
    await run(null);
    expect(staleNotices()).toEqual([]);
    await run(90);
    expect(staleNotices()).toHaveLength(1);
    await run(null);
    expect(store.state('root').staleReported).toBeUndefined();
  });

  it('a stale key that is removed and comes back is told again (it is a new key)', async () => {
    const { bigstate, run, staleNotices } = setup([{ name: 'old', createdAt: daysAgo(500) }, 'other']);
    await run();
    bigstate.inventory.root = ['other'];
    await run();
    bigstate.inventory.root = [{ name: 'old', createdAt: daysAgo(500) }, 'other'];
    await run();
    expect(staleNotices()).toHaveLength(2);
  });
});

describe('key-age notices: the limit and what is written', () => {
  it('tells a key of exactly the limit nothing; one day more, it is stale', async () => {
    const { at, run, staleNotices } = setup([{ name: 'k', createdAt: daysAgo(90) }]);
    await run(90);
    expect(staleNotices()).toEqual([]);
    at.now = new Date(T0 + DAY);
    await run(90);
    expect(
      staleNotices().map((notice) => notice.record.stale?.map((key) => [key.name, key.ageDays])),
    ).toEqual([[['k', 91]]]);
  });

  it('writes nothing on a run that finds the same stale keys (within the day), and nothing is told again', async () => {
    const { store, run, staleNotices } = setup([{ name: 'old', createdAt: daysAgo(500) }, 'young']);
    await run(90);
    const written = store.writes.length;
    await run(90);
    expect(store.writes.length).toBe(written);
    expect(staleNotices()).toHaveLength(1);
  });

  it('rewrites the state the same day when a raised limit leaves fewer keys stale, telling nothing', async () => {
    const { store, run, staleNotices } = setup([
      { name: 'old', createdAt: daysAgo(100) },
      { name: 'older', createdAt: daysAgo(300) },
    ]);
    await run(90);
    expect(store.state('root').staleReported).toEqual(['old', 'older']);
    const written = store.writes.length;
    await run(200);
    expect(store.writes.length).toBe(written + 1);
    expect(store.state('root').staleReported).toEqual(['older']);
    await run(1000);
    expect(store.state('root').staleReported).toBeUndefined();
    expect(staleNotices()).toHaveLength(1);
  });
});

describe('what the state keeps for the report', () => {
  it('a key-count series (one point per write) and the removals of the last 30 days', async () => {
    const { at, store, bigstate, run } = setup(['a', 'b', 'c']);
    await run(null);
    bigstate.inventory.root = ['a', 'b'];
    at.now = new Date(T0 + DAY);
    await run(null);
    expect(store.state('root').series).toEqual([
      { at: new Date(T0).toISOString(), count: 3 },
      { at: new Date(T0 + DAY).toISOString(), count: 2 },
    ]);
    expect(store.state('root').recentRemovals).toEqual([
      { name: 'c', removedAt: new Date(T0 + DAY).toISOString() },
    ]);
    // A month and a day later (a daily refresh): the removal is no longer recent; the series goes on.
    at.now = new Date(T0 + 32 * DAY);
    await run(null);
    expect(store.state('root').recentRemovals).toEqual([]);
    expect(store.state('root').series?.map((point) => point.count)).toEqual([3, 2, 2]);
  });
});

describe('the stale notice on each channel', () => {
  const record: ChangeRecord = {
    schemaVersion: 1,
    changeId: 'chg-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal: 'root',
    kind: 'stale',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: '"v"',
    added: [],
    removed: [],
    counts: { added: 0, removed: 0, total: 5 },
    snapshotLocation: 's3://b/snapshots/root.json',
    changeRecordLocation: 's3://b/history/root/chg-0123456789abcdef0123456789abcdef.json',
    maxKeyAgeDays: 90,
    stale: [
      {
        name: 'old\nChange id: forged',
        ageDays: 120,
        ageFrom: 'created',
        createdAt: '2025-02-01T00:00:00.000Z',
      },
      { name: 'seen', ageDays: 91, ageFrom: 'first-seen', createdAt: null },
    ],
  };
  const notice: Notice = { kind: 'stale', record };

  it('tells people which keys, how old, and how each age was known, with names escaped', () => {
    expect(snsSubject(notice)).toBe('BigState API keys stale for root (2 keys)');
    const body = snsBody(notice);
    expect(body).toContain('limit of 90 days');
    expect(body).toContain('  ! "old\\nChange id: forged"  120 days old (created 2025-02-01T00:00:00.000Z)');
    expect(body).toContain('  ! seen  at least 91 days old (from first seen)');
    expect(body.split('\n').filter((line) => line.startsWith('Change id:'))).toEqual([
      `Change id: ${record.changeId}`,
    ]);
    expect(snsAttributes(notice).changeType).toEqual({ DataType: 'String.Array', StringValue: '["stale"]' });
  });

  it('gives machines the exact names, ages and sources as BigState API Keys Stale', () => {
    const parts = eventParts(notice);
    expect(parts.detailType).toBe('BigState API Keys Stale');
    expect(JSON.parse(parts.detail)).toMatchObject({
      changeId: record.changeId,
      principal: 'root',
      maxKeyAgeDays: 90,
      counts: { stale: 2 },
      stale: record.stale,
      truncated: false,
    });
  });
});
