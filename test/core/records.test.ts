import { describe, expect, it } from 'vitest';
import { StorageError } from '../../functions/commons/errors.js';
import type { Snapshot } from '../../functions/core/ports.js';
import {
  laterFields,
  laterKeyFields,
  parseChangeRecord,
  parseSnapshot,
  principalNamedIn,
  serialize,
} from '../../functions/core/records.js';
import { legacySnapshotOf, recordOf, snapshotOf } from './support/fakes.js';

/** The StorageError parsing `text` fails with. */
function refusal(text: string, principal = 'p'): StorageError {
  try {
    parseSnapshot(text, principal, 's3://b/snapshots/p.json');
  } catch (error) {
    expect(error).toBeInstanceOf(StorageError);
    return error as StorageError;
  }
  throw new Error('expected parseSnapshot to throw');
}

const where = 'snapshot s3://b/snapshots/p.json is not a snapshot:';

describe('parseSnapshot', () => {
  it('reads back what serialize wrote', () => {
    const snapshot = snapshotOf('p', ['a', 'b'], {
      keys: [
        { name: 'a', firstSeen: 't0', lastSeen: 't1', attributes: { created: 'x' } },
        { name: 'b', firstSeen: 't0', lastSeen: 't1' },
      ],
      pattern: 'a*',
      writeId: 'run-7/0f2c',
      pending: [
        { record: recordOf('p', 'chg-1'), deliveredTo: [] },
        {
          record: recordOf('p', 'chg-2', { kind: 'baseline', added: [], pattern: 'a*' }),
          deliveredTo: ['sns'],
        },
      ],
    });
    expect(parseSnapshot(serialize(snapshot), 'p', 'loc')).toStrictEqual(snapshot);
  });

  it('reads a state without a host (null) back as such', () => {
    const snapshot = snapshotOf('p', ['a'], { host: null });
    expect(parseSnapshot(serialize(snapshot), 'p', 'loc').host).toBeNull();
  });

  it('reads a schema-1 snapshot as a schema-2 state with no host, no write id and no pending change', () => {
    const legacy = legacySnapshotOf('p', ['a', 'b'], { pattern: 'a*', runId: 'run-old' });
    expect(parseSnapshot(JSON.stringify(legacy), 'p', 'loc')).toStrictEqual({
      schemaVersion: 2,
      principal: 'p',
      host: null,
      pattern: 'a*',
      auditedAt: '2025-01-01T00:00:00.000Z',
      runId: 'run-old',
      writeId: '',
      keyCount: 2,
      keys: [
        { name: 'a', firstSeen: '2025-01-01T00:00:00.000Z', lastSeen: '2025-01-01T00:00:00.000Z' },
        { name: 'b', firstSeen: '2025-01-01T00:00:00.000Z', lastSeen: '2025-01-01T00:00:00.000Z' },
      ],
      pending: [],
    });
  });

  it('keeps a later version’s optional fields of a schema-2 state (a loose read)', () => {
    const snapshot = { ...snapshotOf('p', ['a']), futureField: { x: 1 } };
    expect(parseSnapshot(serialize(snapshot), 'p', 'loc')).toMatchObject({ futureField: { x: 1 } });
  });

  it('checks the principal info it keeps (the notices read it), and tells later fields from its own', () => {
    const snapshot = snapshotOf('p', ['a']);
    expect(refusal(serialize({ ...snapshot, info: 'Old app' } as never)).message).toMatch(/at info$/);
    const read = parseSnapshot(
      serialize({ ...snapshot, info: { type: 1, displayName: 'App' }, futureField: 1, __proto__x: 2 }),
      'p',
      'loc',
    );
    expect(laterFields(read)).toEqual({ futureField: 1, __proto__x: 2 });
    expect(laterFields(snapshot)).toEqual({});
    const key = { name: 'k', firstSeen: 't', lastSeen: 't', rotatedBy: 'later' };
    expect(laterKeyFields(key)).toEqual({ rotatedBy: 'later' });
    expect(laterKeyFields({ name: 'k', firstSeen: 't', lastSeen: 't', attributes: {} })).toBeUndefined();
    const hostile = JSON.parse('{"name":"k","firstSeen":"t","lastSeen":"t","__proto__":{"polluted":true}}');
    const later = laterKeyFields(hostile) ?? {};
    expect(Object.hasOwn(later, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(later)).toBe(Object.prototype);
  });

  it('keeps an attribute named __proto__ as an own field through a round trip, never as a prototype', () => {
    const text =
      '{"schemaVersion":2,"principal":"p","host":null,"pattern":null,"auditedAt":"t","runId":"r","writeId":"w",' +
      '"keyCount":2,"keys":[{"name":"a","firstSeen":"t","lastSeen":"t"},' +
      '{"name":"k","firstSeen":"t","lastSeen":"t","attributes":{"__proto__":{"admin":true},"scope":"read"}}],"pending":[]}';
    const snapshot = parseSnapshot(text, 'p', 'loc');
    const attributes = snapshot.keys[1]?.attributes ?? {};
    expect(Object.hasOwn(attributes, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(attributes)).toBe(Object.prototype);
    expect((attributes as { admin?: unknown }).admin).toBeUndefined();
    expect(Object.keys(attributes)).toEqual(['__proto__', 'scope']);
    expect(snapshot.keys[0]).toStrictEqual({ name: 'a', firstSeen: 't', lastSeen: 't' });
    // Written back, the same field.
    expect(JSON.stringify(snapshot.keys[1])).toBe(
      '{"name":"k","firstSeen":"t","lastSeen":"t","attributes":{"__proto__":{"admin":true},"scope":"read"}}',
    );
    expect(serialize(snapshot)).toContain('"attributes":{"__proto__":{"admin":true},"scope":"read"}');
  });

  it('keeps an attribute named __proto__ of a schema-1 snapshot too', () => {
    const text =
      '{"schemaVersion":1,"principal":"p","pattern":null,"auditedAt":"t","runId":"r","keyCount":1,' +
      '"keys":[{"name":"k","firstSeen":"t","lastSeen":"t","attributes":{"__proto__":{"admin":true}}}]}';
    const attributes = parseSnapshot(text, 'p', 'loc').keys[0]?.attributes ?? {};
    expect(Object.hasOwn(attributes, '__proto__')).toBe(true);
    expect(JSON.stringify(attributes)).toBe('{"__proto__":{"admin":true}}');
  });

  it('refuses text that is not JSON, keeping the cause', () => {
    const error = refusal('{"schemaVersion":2,');
    expect(error.message).toBe('snapshot s3://b/snapshots/p.json is not valid JSON');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses JSON that is not a state, naming the problem and the field', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    expect(refusal(JSON.stringify({ ...valid, schemaVersion: 0 })).message).toBe(
      `${where} invalid_value at schemaVersion`,
    );
    expect(refusal(JSON.stringify({ ...valid, keys: [{ name: '' }] })).message).toBe(
      `${where} too_small at keys.0.name`,
    );
    expect(refusal(JSON.stringify({ ...valid, keyCount: -1 })).message).toBe(
      `${where} too_small at keyCount`,
    );
    expect(refusal(JSON.stringify({ ...valid, pattern: undefined })).message).toBe(
      `${where} invalid_type at pattern`,
    );
    expect(refusal(JSON.stringify({ ...valid, host: undefined })).message).toBe(
      `${where} invalid_type at host`,
    );
    expect(refusal(JSON.stringify({ ...valid, writeId: undefined })).message).toBe(
      `${where} invalid_type at writeId`,
    );
    expect(refusal(JSON.stringify({ ...valid, pending: undefined })).message).toBe(
      `${where} invalid_type at pending`,
    );
    expect(
      refusal(JSON.stringify({ ...valid, pending: [{ record: recordOf('p', 'c'), deliveredTo: [''] }] }))
        .message,
    ).toBe(`${where} too_small at pending.0.deliveredTo.0`);
    expect(
      refusal(JSON.stringify({ ...valid, pending: [{ record: { ...recordOf('p', 'c'), changeId: '' } }] }))
        .message,
    ).toMatch(new RegExp(`^${where.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\w+ at pending\\.0\\.`));
    expect(refusal('null').message).toBe(`${where} invalid_type at (root)`);
    expect(refusal('[]').message).toBe(`${where} invalid_type at (root)`);
  });

  it('refuses a schema-1 snapshot of the wrong shape, naming the field', () => {
    const legacy = legacySnapshotOf('p', ['a']);
    expect(refusal(JSON.stringify({ ...legacy, keyCount: 'x' })).message).toBe(
      `${where} invalid_type at keyCount`,
    );
  });

  it('says a change of a kind a newer version wrote needs the newer deployment (a rollback), not a bare schema issue', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    const owed = { record: { ...recordOf('p', 'chg-1'), kind: 'expiring' }, deliveredTo: [] };
    expect(refusal(JSON.stringify({ ...valid, pending: [owed] })).message).toBe(
      `${where} it owes a change of kind "expiring", which a newer version wrote and this one cannot deliver: deploy the newer version`,
    );
    // Corrupt elsewhere too: the corruption is what it says, not "deploy the newer version".
    expect(refusal(JSON.stringify({ ...valid, keyCount: -1, pending: [owed] })).message).toBe(
      `${where} too_small at keyCount`,
    );
    // A kind that is no text at all is a fault, not a newer version's change.
    const odd = { record: { ...recordOf('p', 'chg-1'), kind: 7 }, deliveredTo: [] };
    expect(refusal(JSON.stringify({ ...valid, pending: [odd] })).message).toMatch(
      /invalid_value at pending\.0\.record\.kind$/,
    );
    // A known kind with another fault is still the schema's issue.
    const broken = { record: { ...recordOf('p', 'chg-1'), counts: null }, deliveredTo: [] };
    expect(refusal(JSON.stringify({ ...valid, pending: [broken] })).message).toMatch(
      /invalid_type at pending\.0\.record\.counts$/,
    );
  });

  it('says a newer schema needs a newer deployment', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    expect(refusal(JSON.stringify({ ...valid, schemaVersion: 3 })).message).toBe(
      `${where} schema version 3 is newer than this code reads (2): deploy the newer version`,
    );
  });

  it('never echoes values from the file in its message', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    const message = refusal(JSON.stringify({ ...valid, runId: { apiKey: 'sk-Leaked-777' } })).message;
    expect(message).not.toContain('sk-Leaked-777');
  });

  it("refuses another principal's state", () => {
    expect(refusal(serialize(snapshotOf('q', ['a']))).message).toBe(
      'snapshot s3://b/snapshots/p.json belongs to another principal',
    );
    expect(refusal(JSON.stringify(legacySnapshotOf('q', ['a']))).message).toBe(
      'snapshot s3://b/snapshots/p.json belongs to another principal',
    );
  });

  it('refuses a state holding a pending change of another principal', () => {
    const snapshot = snapshotOf('p', ['a'], {
      pending: [{ record: recordOf('q', 'chg-1'), deliveredTo: [] }],
    });
    expect(refusal(serialize(snapshot)).message).toBe(
      'snapshot s3://b/snapshots/p.json holds a pending change of another principal',
    );
  });
});

describe('parseChangeRecord', () => {
  it('reads back what serialize wrote', () => {
    const record = recordOf('p', 'chg-1', { added: ['a'], removed: ['b'] });
    expect(parseChangeRecord(serialize(record), 'loc')).toStrictEqual(record);
  });

  it('refuses text that is not JSON, or not a change record, naming the location and field', () => {
    expect(() => parseChangeRecord('{', 's3://b/h.json')).toThrow(
      'change record s3://b/h.json is not valid JSON',
    );
    expect(() =>
      parseChangeRecord(JSON.stringify({ ...recordOf('p', 'c'), kind: 'other' }), 's3://b/h.json'),
    ).toThrow('change record s3://b/h.json is not a change record: invalid_value at kind');
  });
});

describe('serialize', () => {
  it('writes compact JSON with a final newline', () => {
    expect(serialize({ a: 1, b: ['x'] })).toBe('{"a":1,"b":["x"]}\n');
  });
});

describe('principalNamedIn', () => {
  it('is the principal a state names, whatever else the text holds', () => {
    expect(principalNamedIn('{"principal":"svc a&b","keys":"not even a list"}')).toBe('svc a&b');
    expect(principalNamedIn('{"principal":""}')).toBe('');
  });

  it('is undefined for a text that names none', () => {
    for (const text of ['{"principal":3}', '{}', 'null', '[]', '{', '']) {
      expect(principalNamedIn(text), text).toBeUndefined();
    }
  });
});

describe('parseSnapshot: every field a state keeps, through serialize and back', () => {
  it('reads back a state using every optional field exactly as it was written', () => {
    const stale = recordOf('p', 'chg-stale', {
      kind: 'stale',
      added: [],
      stale: [
        { name: 'old', ageDays: 400, ageFrom: 'created', createdAt: '2024-01-01T00:00:00.000Z' },
        { name: 'older', ageDays: 500, ageFrom: 'first-seen', createdAt: null },
      ],
      maxKeyAgeDays: 365,
      reportLocation: 's3://b/reports/latest.html',
      info: { type: 2, displayName: 'Pat' },
      newPrincipal: false,
    });
    const baseline = recordOf('p', 'chg-base', {
      kind: 'baseline',
      added: [],
      info: { type: null, displayName: null },
    });
    const state: Snapshot = {
      ...snapshotOf('p', ['old', 'older'], {
        pending: [
          { record: stale, deliveredTo: ['sns'] },
          { record: baseline, deliveredTo: [] },
        ],
      }),
      failure: {
        stage: 'walking the keys',
        errorName: 'ForbiddenError',
        status: 403,
        reason: 'walking the keys: HTTP 403',
        since: '2025-06-01T12:00:00.000Z',
        lastNotifiedAt: null,
        toldBefore: true,
        runId: 'run-2',
      },
      info: { type: 1, displayName: 'Billing' },
      series: [
        { at: '2025-05-31T12:00:00.000Z', count: 1 },
        { at: '2025-06-01T12:00:00.000Z', count: 2 },
      ],
      recentRemovals: [{ name: 'gone', removedAt: '2025-06-01T12:00:00.000Z' }],
      staleReported: ['old', 'older'],
    };
    expect(parseSnapshot(serialize(state), 'p', 's3://b/snapshots/p.json')).toStrictEqual(state);
  });

  it('refuses a state whose failure says toldBefore false: the flag is only ever true', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    const failure = {
      stage: 's',
      errorName: 'E',
      status: null,
      reason: 'r',
      since: 'x',
      lastNotifiedAt: null,
      runId: 'r',
    };
    expect(() =>
      parseSnapshot(JSON.stringify({ ...valid, failure: { ...failure, toldBefore: false } }), 'p', 'here'),
    ).toThrow(/invalid_value at failure\.toldBefore$/);
  });

  it('takes a schema version that is no number as a fault, not as a newer version', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    expect(() => parseSnapshot(JSON.stringify({ ...valid, schemaVersion: '3' }), 'p', 'here')).toThrow(
      /^snapshot here is not a snapshot: invalid_value at schemaVersion$/,
    );
  });
});
