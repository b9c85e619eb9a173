import { describe, expect, it } from 'vitest';
import { changeRecordKey, principalSegment, snapshotKey } from '../../functions/core/layout.js';

describe('principalSegment', () => {
  it('leaves a plain name as it is', () => {
    expect(principalSegment('tram_client-01')).toBe('tram_client-01');
  });

  it.each([
    ['../x', '%2E%2E%2Fx'],
    ['a/b', 'a%2Fb'],
    ['..', '%2E%2E'],
    ['ü', '%C3%BC'],
    ['svc a&b', 'svc%20a%26b'],
    ['#primary', '%23primary'],
    ["!'()*~.", '%21%27%28%29%2A%7E%2E'],
    ['a\\b', 'a%5Cb'],
    ['%2E', '%252E'],
  ])('encodes %j as the single safe segment %j', (name, segment) => {
    expect(principalSegment(name)).toBe(segment);
  });

  it('gives different names different segments', () => {
    const names = ['a.b', 'a%2Eb', 'a/b', 'a%2Fb', 'A.B', 'a b', 'a+b', 'ü', 'u\u0308'];
    expect(new Set(names.map(principalSegment)).size).toBe(names.length);
  });
});

describe('keys', () => {
  it('puts the latest snapshot under snapshots/', () => {
    expect(snapshotKey('root')).toBe('snapshots/root.json');
    expect(snapshotKey('../etc/passwd')).toBe('snapshots/%2E%2E%2Fetc%2Fpasswd.json');
  });

  it('puts each change record under history/<principal>/', () => {
    expect(changeRecordKey('svc a&b', 'chg-1234')).toBe('history/svc%20a%26b/chg-1234.json');
  });
});
