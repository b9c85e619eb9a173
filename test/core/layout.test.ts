import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  changeRecordKey,
  FILE_NAME_MAX_BYTES,
  HASHED_SEGMENT_MARK,
  principalDigest,
  principalOfStateKey,
  principalSegment,
  S3_KEY_MAX_BYTES,
  SEGMENT_HASH_CHARS,
  SEGMENT_MAX_BYTES,
  SIDE_FAILURES_PREFIX,
  segmentOfSideFailureKey,
  sideFailureKey,
  snapshotKey,
} from '../../functions/core/layout.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
/** The encoding every segment had before long names were hashed: what existing snapshots are named. */
const legacySegment = (name: string) =>
  encodeURIComponent(name).replace(/[.!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const CHANGE_ID = 'chg-0123456789abcdef0123456789abcdef';
const HASHED = /^((?:[A-Za-z0-9_-]|%[0-9A-F]{2})*)~([0-9a-f]{32})$/;

/** Names of the lengths the contract worries about, in ASCII, 2-, 3- and 4-byte characters. */
const LENGTHS = [1, 60, 70, 200, 250, 1000, 5000];
const ALPHABETS: ReadonlyArray<readonly [string, (length: number) => string]> = [
  ['ASCII', (length) => 'k'.repeat(length)],
  ['ASCII with dots and spaces', (length) => 'a. '.repeat(length).slice(0, length)],
  ['2-byte', (length) => 'ü'.repeat(length)],
  ['3-byte', (length) => '日'.repeat(length)],
  ['4-byte', (length) => '😀'.repeat(length)],
];
const CASES = ALPHABETS.flatMap(([alphabet, make]) =>
  LENGTHS.map((length) => [alphabet, length, make(length)] as const),
);

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

describe('principalSegment of long names', () => {
  it('exports the limits it keeps', () => {
    expect(FILE_NAME_MAX_BYTES).toBe(255);
    expect(S3_KEY_MAX_BYTES).toBe(1024);
    expect(SEGMENT_MAX_BYTES).toBe(200);
    expect(SEGMENT_HASH_CHARS).toBe(32);
    expect(HASHED_SEGMENT_MARK).toBe('~');
    // The temporary file of a snapshot write is the longest name a segment goes into.
    expect(bytes(`${'x'.repeat(SEGMENT_MAX_BYTES)}.json.${randomUUID()}.tmp`)).toBeLessThanOrEqual(
      FILE_NAME_MAX_BYTES,
    );
  });

  it.each(CASES)('keeps a %s name of %i characters within every limit', (_alphabet, _length, name) => {
    const segment = principalSegment(name);
    expect(bytes(segment)).toBeLessThanOrEqual(SEGMENT_MAX_BYTES);
    expect(segment).toMatch(/^[\x21-\x7e]+$/);
    expect(bytes(`${segment}.json.${randomUUID()}.tmp`)).toBeLessThanOrEqual(FILE_NAME_MAX_BYTES);
    expect(bytes(snapshotKey(name))).toBeLessThanOrEqual(S3_KEY_MAX_BYTES);
    expect(bytes(changeRecordKey(name, CHANGE_ID))).toBeLessThanOrEqual(S3_KEY_MAX_BYTES);
    expect(principalSegment(name)).toBe(segment);
    const legacy = legacySegment(name);
    if (legacy.length <= SEGMENT_MAX_BYTES) {
      // Fits: exactly the segment it always had, so its snapshot is still found.
      expect(segment).toBe(legacy);
      expect(segment).not.toContain('~');
    } else {
      const [, prefix, hash] = HASHED.exec(segment) ?? [];
      expect(hash).toBe(principalDigest(name).slice(0, 32));
      // A readable start of the name, cut between whole characters.
      expect(legacy.startsWith(prefix ?? '-')).toBe(true);
      expect(decodeURIComponent(prefix ?? '')).toBe(name.slice(0, decodeURIComponent(prefix ?? '').length));
      expect(bytes(segment)).toBeGreaterThan(SEGMENT_MAX_BYTES - 12);
    }
  });

  it('keeps a name of exactly 200 encoded bytes, and hashes one of 201', () => {
    expect(principalSegment('k'.repeat(200))).toBe('k'.repeat(200));
    expect(principalSegment(`${'k'.repeat(197)}.`)).toBe(`${'k'.repeat(197)}%2E`);
    expect(principalSegment('k'.repeat(201))).toMatch(HASHED);
    expect(principalSegment(`${'k'.repeat(198)}.`)).toMatch(HASHED);
    expect(principalSegment(`${'k'.repeat(198)}.`).startsWith(`${'k'.repeat(167)}~`)).toBe(true);
  });

  it('cuts the prefix between whole characters, never inside a percent-escape or a UTF-8 sequence', () => {
    // 55 ü take 330 encoded bytes; 167 bytes of prefix hold 27 of them (162 bytes), not 27 and a half.
    const segment = principalSegment('ü'.repeat(55));
    expect(segment).toBe(`${'%C3%BC'.repeat(27)}~${principalDigest('ü'.repeat(55)).slice(0, 32)}`);
    expect(principalSegment(`k${'😀'.repeat(50)}`).split('~')[0]).toBe(`k${'%F0%9F%98%80'.repeat(13)}`);
  });

  it('gives distinct long names sharing a long prefix distinct segments', () => {
    const base = 'tenant-'.repeat(200);
    const names = [`${base}a`, `${base}b`, `${base}a `, base, `${base}ü`, `${base}u\u0308`];
    const segments = names.map(principalSegment);
    expect(new Set(segments).size).toBe(names.length);
    // The same readable prefix: only the hash tells them apart.
    expect(new Set(segments.map((segment) => segment.split('~')[0])).size).toBe(1);
  });

  it('never mistakes a short name for a hashed one: "~" is always escaped in an encoded name', () => {
    const hashed = principalSegment('x'.repeat(300));
    const lookalike = `x~${hashed.split('~')[1]}`;
    expect(principalSegment(lookalike)).toBe(`x%7E${hashed.split('~')[1]}`);
    expect(principalSegment('~')).toBe('%7E');
  });

  it('gives a name that is not well-formed UTF-16 a hashed segment instead of throwing', () => {
    expect(() => encodeURIComponent('\ud800')).toThrow(URIError);
    const lone = principalSegment('a\ud800');
    expect(lone).toMatch(HASHED);
    expect(lone.startsWith('a%ED%A0%80~')).toBe(true);
    // U+FFFD, which a lone surrogate turns into in plain UTF-8, and another lone surrogate stay apart.
    const others = ['a\ufffd', 'a\udc00', 'a\ud801', 'a'].map(principalSegment);
    expect(new Set([lone, ...others]).size).toBe(5);
    expect(principalDigest('a\ud800')).not.toBe(principalDigest('a\ufffd'));
    expect(principalSegment('😀')).toBe('%F0%9F%98%80');
  });

  it('gives the empty name, which no valid principal has, a real segment', () => {
    expect(principalSegment('')).toBe(`~${principalDigest('').slice(0, 32)}`);
  });

  it('hashes the exact UTF-8 bytes of the name', () => {
    expect(principalDigest('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  describe('in a real folder', () => {
    let root = '';
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'layout-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it('writes the snapshot, its temporary file and a change record of every name', async () => {
      for (const [, , name] of CASES) {
        const snapshot = join(root, snapshotKey(name));
        const record = join(root, changeRecordKey(name, CHANGE_ID));
        await mkdir(join(snapshot, '..'), { recursive: true });
        await mkdir(join(record, '..'), { recursive: true });
        await writeFile(`${snapshot}.${randomUUID()}.tmp`, '{}');
        await writeFile(snapshot, '{}');
        await writeFile(record, '{}');
      }
      const distinct = new Set(CASES.map(([, , name]) => name)).size;
      expect((await readdir(join(root, 'snapshots'))).filter((file) => file.endsWith('.json'))).toHaveLength(
        distinct,
      );
      expect(await readdir(join(root, 'history'))).toHaveLength(distinct);
    });
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

describe('principalOfStateKey', () => {
  it('names the principal of a plain segment, and says a hashed one must be read', () => {
    expect(principalOfStateKey('snapshots/svc%20a%26b.json')).toStrictEqual({
      principal: 'svc a&b',
      hashed: false,
    });
    expect(principalOfStateKey(snapshotKey('x'.repeat(300)))).toStrictEqual({ hashed: true });
  });

  it('is undefined for anything that is not a principal state', () => {
    for (const key of [
      'snapshots/.run.json',
      'snapshots/a.json.0b1c.tmp',
      'snapshots/a.jsonx',
      'snapshots/sub/a.json',
      'archive/snapshots/a.json',
      'xsnapshots/a.json',
      'snapshots/%E0%A4.json',
      'failures/a.json',
    ]) {
      expect(principalOfStateKey(key), key).toBeUndefined();
    }
  });
});

describe('side failure keys', () => {
  it('round-trip the segment of every kind of name', () => {
    for (const name of [
      'root',
      'svc a&b',
      '../..',
      'failures/x',
      '~',
      '',
      'x'.repeat(300),
      'bad\uD800',
      'A',
    ]) {
      const key = sideFailureKey(name);
      expect(key.startsWith(SIDE_FAILURES_PREFIX)).toBe(true);
      expect(segmentOfSideFailureKey(key), name).toBe(principalSegment(name));
    }
  });

  it('is undefined for anything that is not a side failure record', () => {
    for (const key of [
      'failures/.json',
      'failures/x/y.json',
      'failures/.0b1c.tmp',
      'failures/a.json.0b1c.tmp',
      'snapshots/a.json',
      'xfailures/a.json',
    ]) {
      expect(segmentOfSideFailureKey(key), key).toBeUndefined();
    }
  });
});
