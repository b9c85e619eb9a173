import { describe, expect, it } from 'vitest';
import type { ApiKeyEntry } from '../../functions/bigstate/types.js';
import { matchesPattern } from '../../functions/commons/glob.js';
import {
  buildSnapshot,
  type ChangeIdInput,
  changeId,
  type ExactChecks,
  exactPattern,
  type Inventory,
  needsBaseline,
  reconcile,
  removalCandidates,
  snapshotNames,
  sortedEntries,
  sortNames,
  unionOf,
} from '../../functions/core/diff.js';
import type { KeyRecord } from '../../functions/core/ports.js';
import { HOST, recordOf, snapshotOf } from './support/fakes.js';

/** An inventory of plain names, or of entries with fields. */
function inventory(...keys: Array<string | ApiKeyEntry>): Inventory {
  return new Map(
    keys.map((key): [string, ApiKeyEntry] =>
      typeof key === 'string' ? [key, { name: key }] : [key.name, key],
    ),
  );
}

const NOW = new Date('2025-06-01T12:00:00.000Z');
const EARLIER = '2025-01-01T00:00:00.000Z';

describe('sortNames', () => {
  it('sorts by UTF-16 code unit, not by locale: digits, upper case, lower case, then accented letters', () => {
    expect(sortNames(['b', 'ä', 'a', 'B', '9', '10', 'é', 'f'])).toEqual([
      '10',
      '9',
      'B',
      'a',
      'b',
      'f',
      'ä',
      'é',
    ]);
  });

  it('orders astral characters by their surrogate code units (before U+FFFF)', () => {
    expect(sortNames(['\uffff', '\u{1f600}', 'z'])).toEqual(['z', '\u{1f600}', '\uffff']);
  });

  it('keeps equal names and puts a prefix before its extensions', () => {
    expect(sortNames(['ab', 'a', 'a', 'abc'])).toEqual(['a', 'a', 'ab', 'abc']);
  });

  it('takes any iterable and leaves an input array untouched', () => {
    const input = ['c', 'a', 'b'];
    expect(sortNames(input)).toEqual(['a', 'b', 'c']);
    expect(input).toEqual(['c', 'a', 'b']);
    expect(sortNames(new Set(['y', 'x']))).toEqual(['x', 'y']);
    expect(sortNames(new Map([['k', 1]]).keys())).toEqual(['k']);
  });
});

describe('snapshotNames', () => {
  it('is the set of the names of a snapshot', () => {
    expect(snapshotNames(snapshotOf('p', ['a', 'b']))).toEqual(new Set(['a', 'b']));
    expect(snapshotNames(snapshotOf('p', []))).toEqual(new Set());
  });
});

describe('sortedEntries', () => {
  it("lists a walk's entries sorted by name, fields kept", () => {
    const walk = inventory({ name: 'b', x: 1 }, 'c', { name: 'a', y: 2 });
    expect(sortedEntries(walk)).toEqual([{ name: 'a', y: 2 }, { name: 'b', x: 1 }, { name: 'c' }]);
  });

  it('keeps a walk that arrived sorted in its order', () => {
    expect(sortedEntries(inventory('a', 'b', 'c')).map((entry) => entry.name)).toEqual(['a', 'b', 'c']);
  });

  it('sorts a walk once', () => {
    const walk = inventory('b', 'a');
    expect(sortedEntries(walk)).toBe(sortedEntries(walk));
  });
});

/** A snapshot of principal `p` listing `names` in the order given. */
const snap = (...names: string[]) => snapshotOf('p', names);

describe('removalCandidates', () => {
  it('lists, sorted, the previous names the first walk did not see', () => {
    expect(removalCandidates(snap('a', 'b', 'c', 'd'), inventory('b', 'x'))).toEqual(['a', 'c', 'd']);
  });

  it('is empty when the first walk saw every previous name, new names notwithstanding', () => {
    expect(removalCandidates(snap('a', 'b'), inventory('c', 'a', 'b'))).toEqual([]);
  });

  it('is every previous name when the first walk saw none', () => {
    expect(removalCandidates(snap('a', 'b'), inventory())).toEqual(['a', 'b']);
  });

  it('is empty for an empty snapshot', () => {
    expect(removalCandidates(snap(), inventory('a'))).toEqual([]);
  });

  it('compares a snapshot whose keys are out of order (edited by hand) correctly', () => {
    expect(removalCandidates(snap('d', 'b', 'a', 'c'), inventory('c', 'a'))).toEqual(['b', 'd']);
  });

  it('does not take a name a hand-edited snapshot lists twice for a removal candidate', () => {
    expect(removalCandidates(snap('a', 'a', 'b'), inventory('a', 'b'))).toEqual([]);
  });
});

/** What exact checks found: entries found, and names confirmed gone. */
function checks(found: Array<string | ApiKeyEntry>, gone: string[]): ExactChecks {
  return {
    found: found.map((key) => (typeof key === 'string' ? { name: key } : key)),
    gone: new Set(gone),
  };
}

describe('reconcile', () => {
  const names = (result: { inventory: readonly ApiKeyEntry[] }) =>
    result.inventory.map((entry) => entry.name);

  it('finds added names (sorted) and no removal when nothing is missing, without any check', () => {
    const result = reconcile(snap('a'), [inventory('z', 'a', 'm')]);
    expect(result.added).toEqual(['m', 'z']);
    expect(result.removed).toEqual([]);
    expect(names(result)).toEqual(['a', 'm', 'z']);
  });

  it('reports nothing when both walks match the previous snapshot', () => {
    const result = reconcile(snap('a', 'b'), [inventory('a', 'b'), inventory('b', 'a')]);
    expect(result).toEqual({ inventory: [{ name: 'a' }, { name: 'b' }], added: [], removed: [] });
  });

  it('removes the names missing from every walk that an exact check confirmed gone, sorted', () => {
    const result = reconcile(snap('a', 'b', 'c', 'd'), [inventory('b')], checks([], ['d', 'a', 'c']));
    expect(result.removed).toEqual(['a', 'c', 'd']);
    expect(result.added).toEqual([]);
    expect(names(result)).toEqual(['b']);
  });

  it('keeps a name an exact check found (churn), with the entry the check returned', () => {
    const result = reconcile(
      snap('a', 'b', 'c'),
      [inventory('a')],
      checks([{ name: 'b', created: 'x' }], ['c']),
    );
    expect(result.removed).toEqual(['c']);
    expect(result.added).toEqual([]);
    expect(result.inventory).toEqual([{ name: 'a' }, { name: 'b', created: 'x' }]);
  });

  it('does not remove a candidate the second walk saw, and keeps it in the inventory', () => {
    const result = reconcile(snap('a', 'b'), [inventory('a'), inventory('a', 'b')]);
    expect(result.removed).toEqual([]);
    expect(result.added).toEqual([]);
    expect(names(result)).toEqual(['a', 'b']);
  });

  it('keeps a key seen only in the second walk and counts it as added', () => {
    const result = reconcile(
      snap('a', 'gone'),
      [inventory('a'), inventory('late', 'a')],
      checks([], ['gone']),
    );
    expect(result.added).toEqual(['late']);
    expect(result.removed).toEqual(['gone']);
    expect(result.inventory).toEqual([{ name: 'a' }, { name: 'late' }]);
  });

  it('keeps a key seen only in the first walk: a walk is evidence that a key exists', () => {
    const result = reconcile(snap('a'), [inventory('a', 'early'), inventory('a')]);
    expect(result.added).toEqual(['early']);
    expect(names(result)).toEqual(['a', 'early']);
  });

  it('does not count a key seen only in the second walk as added when the snapshot had it', () => {
    const result = reconcile(snap('a', 'b'), [inventory('a'), inventory('b')]);
    expect(result.added).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(names(result)).toEqual(['a', 'b']);
  });

  it("keeps the first walk's entry when both walks saw a key, and a walk's over a check's", () => {
    const first = inventory({ name: 'k', version: 1 });
    const second = inventory({ name: 'k', version: 2 }, { name: 'n', version: 2 });
    const result = reconcile(
      snap('k', 'n', 'x'),
      [first, second],
      checks(
        [
          { name: 'n', version: 3 },
          { name: 'x', version: 3 },
        ],
        [],
      ),
    );
    expect(result.inventory).toEqual([
      { name: 'k', version: 1 },
      { name: 'n', version: 2 },
      { name: 'x', version: 3 },
    ]);
  });

  it('throws rather than report a removal no exact check confirmed', () => {
    expect(() => reconcile(snap('a', 'b'), [inventory('a')])).toThrow(
      'reconcile: 1 removal(s) not confirmed by an exact check',
    );
    expect(() => reconcile(snap('a', 'b', 'c'), [inventory('a'), inventory('a')], checks([], ['b']))).toThrow(
      'reconcile: 1 removal(s) not confirmed by an exact check',
    );
  });

  it('does not remove a name confirmed gone that a walk saw after all', () => {
    const result = reconcile(snap('a', 'b'), [inventory('a'), inventory('a', 'b')], checks([], ['b']));
    expect(result.removed).toEqual([]);
    expect(names(result)).toEqual(['a', 'b']);
  });

  it('does not modify the walks or the checks it is given', () => {
    const first = inventory('a');
    const second = inventory('b');
    const exact = checks(['c'], []);
    reconcile(snap('a', 'b', 'c'), [first, second], exact);
    expect([...first.keys()]).toEqual(['a']);
    expect([...second.keys()]).toEqual(['b']);
    expect(exact.found).toEqual([{ name: 'c' }]);
  });

  it('treats an empty previous snapshot as "everything added"', () => {
    expect(reconcile(snap(), [inventory('b', 'a')]).added).toEqual(['a', 'b']);
  });

  it('compares a snapshot whose keys are out of order (edited by hand) correctly', () => {
    const result = reconcile(
      snap('c', 'a', 'b'),
      [inventory('b', 'd'), inventory('d', 'b')],
      checks([], ['a', 'c']),
    );
    expect(result.added).toEqual(['d']);
    expect(result.removed).toEqual(['a', 'c']);
  });

  it('reports no false removal of a name a hand-edited snapshot lists twice', () => {
    const result = reconcile(snap('a', 'a', 'b'), [inventory('a', 'b'), inventory('a', 'b')]);
    expect(result.removed).toEqual([]);
    expect(result.added).toEqual([]);
  });

  it('takes walks as sorted or unsorted lists of entries too', () => {
    const result = reconcile(snap('a', 'c'), [[{ name: 'c' }, { name: 'b' }]], checks([], ['a']));
    expect(result).toEqual({ inventory: [{ name: 'b' }, { name: 'c' }], added: ['b'], removed: ['a'] });
  });
});

describe('unionOf', () => {
  it('merges walks and lists into one sorted list, each name once, the earliest entry winning', () => {
    const union = unionOf(
      inventory({ name: 'b', from: 1 }, 'd'),
      [
        { name: 'c', from: 2 },
        { name: 'a', from: 2 },
        { name: 'b', from: 2 },
      ],
      inventory({ name: 'a', from: 3 }, 'e'),
    );
    expect(union).toEqual([
      { name: 'a', from: 2 },
      { name: 'b', from: 1 },
      { name: 'c', from: 2 },
      { name: 'd' },
      { name: 'e' },
    ]);
  });

  it('is empty for no lists or empty ones', () => {
    expect(unionOf()).toEqual([]);
    expect(unionOf(inventory(), [])).toEqual([]);
  });
});

describe('exactPattern', () => {
  // The narrowest pattern that still matches the name: the name itself, else the anchored form with the longest
  // literal (`prefix*`, `*suffix`), else `*piece*` around a middle piece.
  it.each([
    ['ci-deploy', 'ci-deploy'],
    ['a*b', 'a*'],
    ['ci*deploy*x', '*deploy*'],
    ['*suffix', '*suffix'],
    ['prefix*', 'prefix*'],
    ['ab*cd', 'ab*'],
    ['*', '*'],
    ['**', '*'],
    ['***', '*'],
    ['zürich*Ω', 'zürich*'],
  ])('checks %j with %j', (name, pattern) => {
    expect(exactPattern(name)).toBe(pattern);
  });

  it('gives a pattern that matches the name it was made from', () => {
    const matches = (name: string, pattern: string) => matchesPattern(name, pattern);
    for (const name of ['a', 'a*b', 'x**y', '*a*', 'k*1*22*333', '*']) {
      expect(matches(name, exactPattern(name))).toBe(true);
    }
  });
});

describe('needsBaseline', () => {
  const meta = { pattern: null, host: 'https://api.bigstate.dev' };

  it('is true without a previous state, or after the pattern or the host changed', () => {
    expect(needsBaseline(undefined, meta)).toBe(true);
    expect(needsBaseline(snapshotOf('p', [], { pattern: 'a*' }), meta)).toBe(true);
    expect(needsBaseline(snapshotOf('p', []), { ...meta, pattern: 'a*' })).toBe(true);
    expect(needsBaseline(snapshotOf('p', [], { host: 'https://other.example' }), meta)).toBe(true);
  });

  it('is false for the same pattern and host, and for a state that recorded no host', () => {
    expect(needsBaseline(snapshotOf('p', []), meta)).toBe(false);
    expect(needsBaseline(snapshotOf('p', [], { pattern: 'a*' }), { ...meta, pattern: 'a*' })).toBe(false);
    expect(needsBaseline(snapshotOf('p', [], { host: null }), meta)).toBe(false);
  });
});

describe('buildSnapshot', () => {
  const meta = { principal: 'p', pattern: null, host: HOST, runId: 'run-2', now: NOW };

  it("carries over a field a later version keeps on a key, under the walk's own fields, and only for a key still there", () => {
    const previous = snapshotOf('p', ['a', 'b'], {
      keys: [
        // `rotationDue` and `lastSeen` as a later release wrote them: the field it added stays, its lastSeen does not.
        {
          name: 'a',
          firstSeen: 't0',
          lastSeen: 't1',
          rotationDue: '2026-01-01',
          attributes: { scope: 'old' },
        },
        { name: 'b', firstSeen: 't0', lastSeen: 't1', rotationDue: '2026-02-01' },
      ] as unknown as KeyRecord[],
    });
    const snapshot = buildSnapshot(previous, inventory({ name: 'a', scope: 'new' }, 'c'), meta);
    expect(snapshot.keys).toStrictEqual([
      {
        rotationDue: '2026-01-01',
        name: 'a',
        firstSeen: 't0',
        lastSeen: '2025-06-01T12:00:00.000Z',
        attributes: { scope: 'new' },
      },
      { name: 'c', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
    ]);
  });

  it('builds a sorted state with the run, the host, the time and the key count, and an empty outbox', () => {
    const snapshot = buildSnapshot(undefined, inventory('b', 'a', 'c'), meta);
    expect(snapshot).toStrictEqual({
      schemaVersion: 2,
      principal: 'p',
      host: HOST,
      pattern: null,
      auditedAt: '2025-06-01T12:00:00.000Z',
      runId: 'run-2',
      writeId: '',
      keyCount: 3,
      keys: [
        { name: 'a', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
        { name: 'b', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
        { name: 'c', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
      ],
      pending: [],
    });
  });

  it('does not carry the outbox over: the run commits it', () => {
    const previous = snapshotOf('p', ['a'], {
      pending: [{ record: recordOf('p', 'chg-1'), deliveredTo: [] }],
    });
    expect(buildSnapshot(previous, inventory('a'), meta).pending).toEqual([]);
  });

  it('carries firstSeen over for known keys, sets it to now for new ones, and lastSeen to now for all', () => {
    const previous = snapshotOf('p', ['a', 'b'], { at: EARLIER });
    const snapshot = buildSnapshot(previous, inventory('b', 'new'), meta);
    expect(snapshot.keys).toStrictEqual([
      { name: 'b', firstSeen: EARLIER, lastSeen: NOW.toISOString() },
      { name: 'new', firstSeen: NOW.toISOString(), lastSeen: NOW.toISOString() },
    ]);
    expect(snapshot.keyCount).toBe(2);
  });

  it('carries firstSeen over from a state that recorded no host, and records the host', () => {
    const previous = snapshotOf('p', ['a'], { at: EARLIER, host: null });
    const snapshot = buildSnapshot(previous, inventory('a'), meta);
    expect(snapshot.keys[0]?.firstSeen).toBe(EARLIER);
    expect(snapshot.host).toBe(HOST);
  });

  it('starts firstSeen afresh when the host changed (a new baseline)', () => {
    const previous = snapshotOf('p', ['a'], { at: EARLIER, host: 'https://other.example' });
    expect(buildSnapshot(previous, inventory('a'), meta).keys[0]?.firstSeen).toBe(NOW.toISOString());
  });

  it("keeps BigState's other fields as attributes, and no attributes field when there are none", () => {
    const snapshot = buildSnapshot(
      undefined,
      inventory({ name: 'x', created: '2025-01-02', scopes: ['read'] }, 'y'),
      meta,
    );
    expect(snapshot.keys[0]).toStrictEqual({
      name: 'x',
      firstSeen: NOW.toISOString(),
      lastSeen: NOW.toISOString(),
      attributes: { created: '2025-01-02', scopes: ['read'] },
    });
    expect(snapshot.keys[1]).toStrictEqual({
      name: 'y',
      firstSeen: NOW.toISOString(),
      lastSeen: NOW.toISOString(),
    });
    expect(Object.hasOwn(snapshot.keys[1] ?? {}, 'attributes')).toBe(false);
  });

  it('keeps a field named __proto__ as a field, never as the prototype', () => {
    const entry = JSON.parse('{"name":"k","__proto__":{"polluted":true},"constructor":"c"}') as ApiKeyEntry;
    const snapshot = buildSnapshot(undefined, inventory(entry), meta);
    const attributes = snapshot.keys[0]?.attributes ?? {};
    expect(Object.hasOwn(attributes, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(attributes)).toBe(Object.prototype);
    expect((attributes as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(attributes)).toEqual(['__proto__', 'constructor']);
    expect(JSON.parse(JSON.stringify(snapshot.keys[0])).attributes).toStrictEqual(
      JSON.parse('{"__proto__":{"polluted":true},"constructor":"c"}'),
    );
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('records the pattern of the walk', () => {
    const snapshot = buildSnapshot(undefined, inventory('ab'), { ...meta, pattern: 'a*' });
    expect(snapshot.pattern).toBe('a*');
  });

  it('starts firstSeen afresh when the pattern changed (a new baseline)', () => {
    const previous = snapshotOf('p', ['a'], { at: EARLIER, pattern: null });
    const snapshot = buildSnapshot(previous, inventory('a'), { ...meta, pattern: 'a*' });
    expect(snapshot.keys).toStrictEqual([
      { name: 'a', firstSeen: NOW.toISOString(), lastSeen: NOW.toISOString() },
    ]);
  });

  it('carries firstSeen over when the previous snapshot had the same non-null pattern', () => {
    const previous = snapshotOf('p', ['a1'], { at: EARLIER, pattern: 'a*' });
    const snapshot = buildSnapshot(previous, inventory('a1'), { ...meta, pattern: 'a*' });
    expect(snapshot.keys[0]?.firstSeen).toBe(EARLIER);
  });

  it('drops an attribute BigState no longer returns: the walk is the truth', () => {
    const previous = snapshotOf('p', [], {
      keys: [{ name: 'a', firstSeen: EARLIER, lastSeen: EARLIER, attributes: { scopes: ['admin'] } }],
    });
    const snapshot = buildSnapshot(previous, inventory('a'), meta);
    expect(snapshot.keys).toStrictEqual([{ name: 'a', firstSeen: EARLIER, lastSeen: NOW.toISOString() }]);
  });

  it('builds from a list of entries too, in any order', () => {
    const snapshot = buildSnapshot(
      snapshotOf('p', ['b'], { at: EARLIER }),
      [{ name: 'c', x: 1 }, { name: 'b' }],
      meta,
    );
    expect(snapshot.keys).toStrictEqual([
      { name: 'b', firstSeen: EARLIER, lastSeen: NOW.toISOString() },
      { name: 'c', firstSeen: NOW.toISOString(), lastSeen: NOW.toISOString(), attributes: { x: 1 } },
    ]);
  });

  it('carries firstSeen over from a snapshot whose keys are out of order (edited by hand)', () => {
    const previous = snapshotOf('p', [], {
      keys: [
        { name: 'b', firstSeen: '2024-02-02T00:00:00.000Z', lastSeen: EARLIER },
        { name: 'a', firstSeen: '2024-01-01T00:00:00.000Z', lastSeen: EARLIER },
      ],
    });
    const snapshot = buildSnapshot(previous, inventory('a', 'b'), meta);
    expect(snapshot.keys.map((key) => [key.name, key.firstSeen])).toEqual([
      ['a', '2024-01-01T00:00:00.000Z'],
      ['b', '2024-02-02T00:00:00.000Z'],
    ]);
  });

  it('builds an empty snapshot for a principal without keys', () => {
    const snapshot = buildSnapshot(snapshotOf('p', ['a']), inventory(), meta);
    expect(snapshot.keyCount).toBe(0);
    expect(snapshot.keys).toEqual([]);
  });
});

describe('changeId', () => {
  const base: ChangeIdInput = {
    principal: 'root',
    previousVersion: '"etag-1"',
    kind: 'changed',
    pattern: null,
    added: ['a', 'b'],
    removed: ['c'],
  };

  it('is chg- and 32 lowercase hex digits', () => {
    expect(changeId(base)).toMatch(/^chg-[0-9a-f]{32}$/);
  });

  it('is deterministic: the same change always has the same id', () => {
    expect(changeId({ ...base, added: [...base.added] })).toBe(changeId(base));
  });

  it('is stable across releases (a re-published change must deduplicate after a deploy)', () => {
    expect(changeId(base)).toBe('chg-36c548de0247ac1650f41b536a67ba07');
    expect(
      changeId({
        principal: 'p',
        previousVersion: null,
        kind: 'baseline',
        pattern: null,
        added: [],
        removed: [],
      }),
    ).toBe('chg-288c2b4958ffa8663742b97324664fc4');
  });

  it.each<[string, Partial<ChangeIdInput>]>([
    ['principal', { principal: 'root2' }],
    ['previous version', { previousVersion: '"etag-2"' }],
    ['previous version null', { previousVersion: null }],
    ['kind', { kind: 'baseline' }],
    ['pattern', { pattern: '*' }],
    ['added', { added: ['a'] }],
    ['added name', { added: ['a', 'B'] }],
    ['removed', { removed: [] }],
    ['removed name', { removed: ['d'] }],
  ])('differs when the %s differs', (_part, change) => {
    expect(changeId({ ...base, ...change })).not.toBe(changeId(base));
  });

  it('tells an added name from the same name removed', () => {
    const common = { principal: 'p', previousVersion: 'v', kind: 'changed' as const, pattern: null };
    expect(changeId({ ...common, added: ['x'], removed: [] })).not.toBe(
      changeId({ ...common, added: [], removed: ['x'] }),
    );
    expect(changeId({ ...common, added: ['x', 'y'], removed: [] })).not.toBe(
      changeId({ ...common, added: ['x'], removed: ['y'] }),
    );
  });

  it('cannot be forged by names holding newlines, quotes or the separators', () => {
    const common = { principal: 'p', previousVersion: 'v', kind: 'changed' as const, pattern: null };
    const honest = changeId({ ...common, added: ['a'], removed: ['b'] });
    const forgeries: ChangeIdInput[] = [
      { ...common, added: ['a\n-1\n"b"'], removed: [] },
      { ...common, added: ['a"\n-1\n"b'], removed: [] },
      { ...common, added: ['a', '-1', 'b'], removed: [] },
      { ...common, added: [], removed: ['a\n-1\n"b"'] },
    ];
    for (const forged of forgeries) expect(changeId(forged)).not.toBe(honest);
    expect(changeId({ ...common, added: ['x"\n"y'], removed: [] })).not.toBe(
      changeId({ ...common, added: ['x', 'y'], removed: [] }),
    );
  });

  it('cannot be forged by a principal or version that holds the JSON of another part', () => {
    const a = changeId({ ...base, principal: 'p","v', previousVersion: null });
    const b = changeId({ ...base, principal: 'p', previousVersion: 'v' });
    expect(a).not.toBe(b);
    expect(changeId({ ...base, pattern: 'null' })).not.toBe(changeId({ ...base, pattern: null }));
    expect(changeId({ ...base, previousVersion: 'null' })).not.toBe(
      changeId({ ...base, previousVersion: null }),
    );
  });
});
