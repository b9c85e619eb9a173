import { describe, expect, it } from 'vitest';
import type { ApiKeyEntry } from '../../functions/bigstate/types.js';
import {
  buildSnapshot,
  type ChangeIdInput,
  changeId,
  type Inventory,
  reconcile,
  removalCandidates,
  snapshotNames,
  sortedEntries,
  sortNames,
} from '../../functions/core/diff.js';
import { snapshotOf } from './support/fakes.js';

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

describe('reconcile', () => {
  const names = (result: { inventory: readonly ApiKeyEntry[] }) =>
    result.inventory.map((entry) => entry.name);

  it('finds added names (sorted) and no removal when nothing is missing, without a second walk', () => {
    const result = reconcile(snap('a'), inventory('z', 'a', 'm'));
    expect(result.added).toEqual(['m', 'z']);
    expect(result.removed).toEqual([]);
    expect(names(result)).toEqual(['a', 'm', 'z']);
  });

  it('reports nothing when both walks match the previous snapshot', () => {
    const result = reconcile(snap('a', 'b'), inventory('a', 'b'), inventory('b', 'a'));
    expect(result).toEqual({ inventory: [{ name: 'a' }, { name: 'b' }], added: [], removed: [] });
  });

  it('removes a name missing from both walks, sorted', () => {
    const result = reconcile(snap('a', 'b', 'c', 'd'), inventory('b'), inventory('b'));
    expect(result.removed).toEqual(['a', 'c', 'd']);
    expect(result.added).toEqual([]);
    expect(names(result)).toEqual(['b']);
  });

  it('does not remove a candidate the second walk saw, and keeps it in the inventory', () => {
    const result = reconcile(snap('a', 'b'), inventory('a'), inventory('a', 'b'));
    expect(result.removed).toEqual([]);
    expect(result.added).toEqual([]);
    expect(names(result)).toEqual(['a', 'b']);
  });

  it('keeps a key seen only in the second walk and counts it as added', () => {
    const result = reconcile(snap('a', 'gone'), inventory('a'), inventory('late', 'a'));
    expect(result.added).toEqual(['late']);
    expect(result.removed).toEqual(['gone']);
    expect(result.inventory).toEqual([{ name: 'a' }, { name: 'late' }]);
  });

  it('does not count a key seen only in the second walk as added when the snapshot had it', () => {
    const result = reconcile(snap('a', 'b'), inventory('a'), inventory('b'));
    expect(result.added).toEqual([]);
    expect(result.removed).toEqual([]);
    expect(names(result)).toEqual(['a', 'b']);
  });

  it("keeps the first walk's entry when both walks saw a key", () => {
    const first = inventory({ name: 'k', version: 1 });
    const second = inventory({ name: 'k', version: 2 }, { name: 'n', version: 2 });
    const result = reconcile(snap('k', 'x'), first, second);
    expect(result.inventory).toEqual([
      { name: 'k', version: 1 },
      { name: 'n', version: 2 },
    ]);
  });

  it('throws rather than report an unconfirmed removal when there is no second walk', () => {
    expect(() => reconcile(snap('a', 'b'), inventory('a'))).toThrow(
      'reconcile: a removal must be confirmed by a second walk',
    );
  });

  it('does not modify the walks it is given', () => {
    const first = inventory('a');
    const second = inventory('b');
    reconcile(snap('a', 'b', 'c'), first, second);
    expect([...first.keys()]).toEqual(['a']);
    expect([...second.keys()]).toEqual(['b']);
  });

  it('treats an empty previous snapshot as "everything added"', () => {
    expect(reconcile(snap(), inventory('b', 'a')).added).toEqual(['a', 'b']);
  });

  it('compares a snapshot whose keys are out of order (edited by hand) correctly', () => {
    const result = reconcile(snap('c', 'a', 'b'), inventory('b', 'd'), inventory('d', 'b'));
    expect(result.added).toEqual(['d']);
    expect(result.removed).toEqual(['a', 'c']);
  });

  it('reports no false removal of a name a hand-edited snapshot lists twice', () => {
    const result = reconcile(snap('a', 'a', 'b'), inventory('a', 'b'), inventory('a', 'b'));
    expect(result.removed).toEqual([]);
    expect(result.added).toEqual([]);
  });
});

describe('buildSnapshot', () => {
  const meta = { principal: 'p', pattern: null, runId: 'run-2', now: NOW };

  it('builds a sorted snapshot with the run, the time and the key count', () => {
    const snapshot = buildSnapshot(undefined, inventory('b', 'a', 'c'), meta);
    expect(snapshot).toStrictEqual({
      schemaVersion: 1,
      principal: 'p',
      pattern: null,
      auditedAt: '2025-06-01T12:00:00.000Z',
      runId: 'run-2',
      keyCount: 3,
      keys: [
        { name: 'a', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
        { name: 'b', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
        { name: 'c', firstSeen: '2025-06-01T12:00:00.000Z', lastSeen: '2025-06-01T12:00:00.000Z' },
      ],
    });
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
