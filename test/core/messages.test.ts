import { describe, expect, it } from 'vitest';
import {
  asciiSubjectText,
  changeTypes,
  DETAIL_TYPES,
  EVENT_MAX_BYTES,
  EVENT_SOURCE,
  eventParts,
  SNS_MAX_BYTES,
  SUBJECT_MAX_CHARS,
  snsAttributes,
  snsBody,
  snsSubject,
} from '../../functions/core/messages.js';
import type { ChangeRecord, FailureNotice, Notice } from '../../functions/core/ports.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
/** The bytes that listed lines take in a body, line breaks included. */
const listedBytes = (lines: readonly string[]) => lines.reduce((sum, line) => sum + bytes(line) + 1, 0);

function record(overrides: Partial<ChangeRecord> = {}): ChangeRecord {
  const added = overrides.added ?? ['new-1', 'new-2'];
  const removed = overrides.removed ?? ['old-1'];
  return {
    schemaVersion: 1,
    changeId: 'chg-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal: 'root',
    kind: 'changed',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: '"etag"',
    added,
    removed,
    counts: { added: added.length, removed: removed.length, total: 42 },
    snapshotLocation: 's3://bucket/snapshots/root.json',
    changeRecordLocation: 's3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
    ...overrides,
  };
}

const changed = (overrides: Partial<ChangeRecord> = {}): Notice => ({
  kind: 'changed',
  record: record(overrides),
});
const baseline = (overrides: Partial<ChangeRecord> = {}): Notice => ({
  kind: 'baseline',
  record: record({ kind: 'baseline', added: [], removed: [], previousSnapshotVersion: null, ...overrides }),
});
const failed = (overrides: Partial<FailureNotice> = {}): FailureNotice => ({
  kind: 'failed',
  runId: 'run-1',
  principal: 'root',
  reason: 'walking the keys: BigState GET /v1/apikey/match?principal=root&next=0 -> HTTP 403: access denied',
  errorName: 'ForbiddenError',
  detectedAt: '2025-06-01T12:00:00.000Z',
  ...overrides,
});

/** `count` distinct names of about `length` characters. */
const longNames = (count: number, prefix: string, length = 60) =>
  Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(6, '0')}-`.padEnd(length, 'x'));

describe('constants', () => {
  it('names the source and detail-types of the contract', () => {
    expect(EVENT_SOURCE).toBe('bigstate.key-audit');
    expect(DETAIL_TYPES).toEqual({
      changed: 'BigState API Keys Changed',
      baseline: 'BigState Key Audit Baseline',
      failed: 'BigState Key Audit Failed',
    });
  });

  it('keeps below the SNS and EventBridge limits with a margin', () => {
    expect(SNS_MAX_BYTES).toBe(253_952);
    expect(EVENT_MAX_BYTES).toBe(253_952);
    expect(SUBJECT_MAX_CHARS).toBe(99);
  });
});

describe('changeTypes', () => {
  it('is added and/or removed for a change, in that order', () => {
    expect(changeTypes(changed())).toEqual(['added', 'removed']);
    expect(changeTypes(changed({ removed: [] }))).toEqual(['added']);
    expect(changeTypes(changed({ added: [] }))).toEqual(['removed']);
  });

  it('is the kind for a baseline or a failure', () => {
    expect(changeTypes(baseline())).toEqual(['baseline']);
    expect(changeTypes(failed())).toEqual(['failed']);
  });
});

describe('asciiSubjectText', () => {
  it('drops accents and replaces anything else outside printable ASCII with "?"', () => {
    expect(asciiSubjectText('Zürich Café Ærø')).toBe('Zurich Cafe ?r?');
    expect(asciiSubjectText('ﬁ ß 😀 Ω')).toBe('fi ? ?? ?');
    expect(asciiSubjectText('line\nbreak\ttab\u007f')).toBe('line?break?tab?');
  });

  it('keeps printable ASCII as it is, from space to tilde', () => {
    const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    expect(asciiSubjectText(printable)).toBe(printable);
  });
});

describe('snsSubject', () => {
  it('says what happened, to whom, with the counts', () => {
    expect(snsSubject(changed())).toBe('BigState API keys changed for root (+2 -1)');
    expect(snsSubject(baseline())).toBe('BigState key audit baseline for root (42 keys)');
    expect(snsSubject(baseline({ counts: { added: 0, removed: 0, total: 1 } }))).toBe(
      'BigState key audit baseline for root (1 key)',
    );
    expect(snsSubject(failed())).toBe('BigState key audit FAILED for root');
  });

  it('turns a non-ASCII principal into ASCII (ü -> u)', () => {
    expect(snsSubject(changed({ principal: 'zürich-ops' }))).toBe(
      'BigState API keys changed for zurich-ops (+2 -1)',
    );
    expect(snsSubject(failed({ principal: 'Ünïcödé\nops' }))).toBe(
      'BigState key audit FAILED for Unicode?ops',
    );
  });

  it.each([
    ['changed', changed({ principal: 'p'.repeat(300), added: longNames(123_456, 'a', 8), removed: [] })],
    [
      'baseline',
      baseline({ principal: 'ü'.repeat(300), counts: { added: 0, removed: 0, total: 9_876_543 } }),
    ],
    ['failed', failed({ principal: `${'é'.repeat(150)}😀`.repeat(2) })],
  ])(
    'stays under 100 ASCII characters for a long principal (%s), keeping the counts whole',
    (_kind, notice) => {
      const subject = snsSubject(notice);
      expect(subject.length).toBe(99);
      expect(subject).toMatch(/^[\x20-\x7e]+$/);
      expect(subject).toContain('...');
      if (notice.kind === 'changed') expect(subject.endsWith('... (+123456 -0)')).toBe(true);
      if (notice.kind === 'baseline') expect(subject.endsWith('... (9876543 keys)')).toBe(true);
      if (notice.kind === 'failed')
        expect(subject).toBe(`BigState key audit FAILED for ${'e'.repeat(66)}...`);
    },
  );

  it('keeps a principal that just fits, and cuts one character more', () => {
    const prefix = 'BigState key audit FAILED for ';
    const fits = 'x'.repeat(SUBJECT_MAX_CHARS - prefix.length);
    expect(snsSubject(failed({ principal: fits }))).toBe(`${prefix}${fits}`);
    const cut = snsSubject(failed({ principal: `${fits}y` }));
    expect(cut).toBe(`${prefix}${fits.slice(0, -3)}...`);
    expect(cut.length).toBe(SUBJECT_MAX_CHARS);
  });
});

describe('snsBody', () => {
  it('lists removals first, then additions, then where to find everything', () => {
    expect(snsBody(changed())).toBe(
      [
        'API keys of principal "root" changed: 2 added, 1 removed.',
        '',
        'Removed (1):',
        '  - old-1',
        '',
        'Added (2):',
        '  + new-1',
        '  + new-2',
        '',
        'Change id: chg-0123456789abcdef0123456789abcdef',
        'Run id: run-1',
        'Detected at: 2025-06-01T12:00:00.000Z',
        'Snapshot: s3://bucket/snapshots/root.json',
        'Change record: s3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
      ].join('\n'),
    );
  });

  it('leaves out an empty section and names the pattern', () => {
    const body = snsBody(changed({ added: [], removed: ['gone'], pattern: 'ci-*' }));
    expect(body.startsWith('API keys of principal "ci" changed')).toBe(false);
    expect(body).toContain(
      'API keys of principal "root" (pattern ci-*) changed: 0 added, 1 removed.\n\nRemoved (1):\n  - gone\n\nChange id:',
    );
    expect(body).not.toContain('Added');
    const onlyAdded = snsBody(changed({ added: ['x'], removed: [] }));
    expect(onlyAdded).toContain('changed: 1 added, 0 removed.\n\nAdded (1):\n  + x\n\nChange id:');
    expect(onlyAdded).not.toContain('Removed');
  });

  it('quotes a principal name, so quotes and spaces in it stay readable', () => {
    expect(snsBody(changed({ principal: 'svc "a" & b' }))).toMatch(
      /^API keys of principal "svc \\"a\\" & b" changed/,
    );
  });

  it('announces a baseline with its count and no names', () => {
    expect(snsBody(baseline({ pattern: 'a*' }))).toBe(
      [
        'First audit of principal "root" (pattern a*): 42 key(s) recorded as the baseline.',
        'Later runs report keys added and removed against it.',
        '',
        'Change id: chg-0123456789abcdef0123456789abcdef',
        'Run id: run-1',
        'Detected at: 2025-06-01T12:00:00.000Z',
        'Snapshot: s3://bucket/snapshots/root.json',
        'Change record: s3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
      ].join('\n'),
    );
  });

  it('explains a failure, its reason, and that the snapshot is kept', () => {
    expect(snsBody(failed())).toBe(
      [
        'The BigState key audit could not read principal "root".',
        '',
        'Reason: walking the keys: BigState GET /v1/apikey/match?principal=root&next=0 -> HTTP 403: access denied',
        '',
        'Its last good snapshot is kept and no key change is reported for it; the next run tries again.',
        '',
        'Run id: run-1',
        'Detected at: 2025-06-01T12:00:00.000Z',
      ].join('\n'),
    );
  });

  it('stays under SNS_MAX_BYTES for a huge change and points at the change record for the rest', () => {
    const notice = changed({ added: longNames(50_000, 'added'), removed: longNames(50_000, 'removed') });
    const body = snsBody(notice);
    expect(bytes(body)).toBeLessThanOrEqual(SNS_MAX_BYTES);
    // The counts are never cut, and the reader learns where the full lists are.
    expect(body.split('\n')[0]).toBe('API keys of principal "root" changed: 50000 added, 50000 removed.');
    expect(body).toContain('Removed (50000):\n  - removed-000000-');
    expect(body).toContain('Added (50000):\n  + added-000000-');
    const more = body.split('\n').filter((line) => line.startsWith('  ... and '));
    expect(more).toHaveLength(2);
    for (const line of more) {
      expect(line).toMatch(
        /^ {2}\.\.\. and \d+ more: the full list is in s3:\/\/bucket\/history\/root\/chg-0123456789abcdef0123456789abcdef\.json$/,
      );
    }
    // The footer survives the cut.
    expect(
      body.endsWith('Change record: s3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json'),
    ).toBe(true);
  });

  it('gives removals at least half of the room when both lists are long', () => {
    const body = snsBody(changed({ added: longNames(50_000, 'a'), removed: longNames(50_000, 'r') }));
    const removedShown = body.split('\n').filter((line) => line.startsWith('  - ')).length;
    const addedShown = body.split('\n').filter((line) => line.startsWith('  + ')).length;
    expect(removedShown).toBeGreaterThan(1000);
    expect(removedShown).toBeGreaterThanOrEqual(addedShown);
    // Removals come first, so the first "... more" line is theirs.
    const firstMore = body.split('\n').find((line) => line.startsWith('  ... and '));
    expect(removedShown + Number(/and (\d+) more/.exec(firstMore ?? '')?.[1])).toBe(50_000);
  });

  it('gives the whole room to the removals when nothing was added', () => {
    const body = snsBody(changed({ added: [], removed: longNames(50_000, 'r') }));
    const listed = body.split('\n').filter((line) => line.startsWith('  - '));
    const shown = listed.length;
    expect(bytes(body)).toBeLessThanOrEqual(SNS_MAX_BYTES);
    expect(listedBytes(listed)).toBeGreaterThan(SNS_MAX_BYTES - 1_500);
    expect(body).toContain(`  ... and ${50_000 - shown} more: the full list is in s3://bucket/history/`);
  });

  it('lets the additions use the room the removals left', () => {
    const body = snsBody(changed({ added: longNames(50_000, 'a'), removed: ['only-one'] }));
    const added = body.split('\n').filter((line) => line.startsWith('  + '));
    expect(listedBytes(added)).toBeGreaterThan(SNS_MAX_BYTES - 1_500);
    expect(bytes(body)).toBeLessThanOrEqual(SNS_MAX_BYTES);
  });

  it('lists every name of a change that fits', () => {
    const names = longNames(100, 'k');
    const body = snsBody(changed({ added: names, removed: [] }));
    for (const name of names) expect(body).toContain(`  + ${name}\n`);
    expect(body).not.toContain('... and');
  });

  it('stays under a small maxBytes even when the change record location is long', () => {
    const location = `s3://bucket/history/${'%C3%BC'.repeat(160)}/chg-0123456789abcdef0123456789abcdef.json`;
    const notice = changed({
      added: longNames(500, 'a'),
      removed: longNames(500, 'r'),
      changeRecordLocation: location,
    });
    const body = snsBody(notice, 8_000);
    expect(bytes(body)).toBeLessThanOrEqual(8_000);
    expect(body).toContain(`more: the full list is in ${location}`);
  });

  it('stays under maxBytes with names of a kilobyte each (the cut is per whole line)', () => {
    for (const maxBytes of [3_000, 10_000, 25_000]) {
      const body = snsBody(
        changed({ added: longNames(100, 'a', 1_000), removed: longNames(100, 'r', 1_000) }),
        maxBytes,
      );
      expect(bytes(body)).toBeLessThanOrEqual(maxBytes);
      const onlyRemoved = snsBody(changed({ added: [], removed: longNames(100, 'r', 1_000) }), maxBytes);
      expect(bytes(onlyRemoved)).toBeLessThanOrEqual(maxBytes);
      expect(onlyRemoved).toContain('  - r-000000-');
    }
  });

  it('counts bytes, not characters, for names with multi-byte letters', () => {
    const names = Array.from({ length: 5_000 }, (_, i) => `schlüssel-ü-${i}-${'ü'.repeat(40)}`);
    const body = snsBody(changed({ added: names, removed: names }), 20_000);
    expect(bytes(body)).toBeLessThanOrEqual(20_000);
  });
});

describe('snsAttributes', () => {
  it('carries the principal as a String and the change types as a String.Array', () => {
    expect(snsAttributes(changed({ principal: 'svc a&b' }))).toStrictEqual({
      principal: { DataType: 'String', StringValue: 'svc a&b' },
      changeType: { DataType: 'String.Array', StringValue: '["added","removed"]' },
    });
    expect(snsAttributes(baseline()).changeType).toStrictEqual({
      DataType: 'String.Array',
      StringValue: '["baseline"]',
    });
  });

  it('keeps the exact principal name of a failure (non-ASCII included)', () => {
    expect(snsAttributes(failed({ principal: 'zürich-ops' }))).toStrictEqual({
      principal: { DataType: 'String', StringValue: 'zürich-ops' },
      changeType: { DataType: 'String.Array', StringValue: '["failed"]' },
    });
  });

  it('lists only removed for a change without additions', () => {
    expect(snsAttributes(changed({ added: [] })).changeType?.StringValue).toBe('["removed"]');
  });
});

describe('eventParts', () => {
  it('describes a change with every name, the counts and both locations', () => {
    const parts = eventParts(changed());
    expect(parts.detailType).toBe('BigState API Keys Changed');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      changeId: 'chg-0123456789abcdef0123456789abcdef',
      runId: 'run-1',
      principal: 'root',
      pattern: null,
      detectedAt: '2025-06-01T12:00:00.000Z',
      counts: { added: 2, removed: 1, total: 42 },
      snapshotLocation: 's3://bucket/snapshots/root.json',
      changeRecordLocation: 's3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
      added: ['new-1', 'new-2'],
      removed: ['old-1'],
      truncated: false,
    });
  });

  it('describes a baseline with its count and without name lists', () => {
    const parts = eventParts(baseline({ pattern: 'a*' }));
    expect(parts.detailType).toBe('BigState Key Audit Baseline');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      changeId: 'chg-0123456789abcdef0123456789abcdef',
      runId: 'run-1',
      principal: 'root',
      pattern: 'a*',
      detectedAt: '2025-06-01T12:00:00.000Z',
      counts: { added: 0, removed: 0, total: 42 },
      snapshotLocation: 's3://bucket/snapshots/root.json',
      changeRecordLocation: 's3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
    });
  });

  it('describes a failure with its reason and nothing else', () => {
    const notice = failed();
    const parts = eventParts(notice);
    expect(parts.detailType).toBe('BigState Key Audit Failed');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      runId: 'run-1',
      principal: 'root',
      reason: notice.reason,
      errorName: 'ForbiddenError',
      detectedAt: '2025-06-01T12:00:00.000Z',
    });
  });

  it('drops the name lists of an oversized change, keeping the counts and the location', () => {
    const parts = eventParts(changed({ added: longNames(50_000, 'a'), removed: longNames(10, 'r') }));
    expect(parts.detailType).toBe('BigState API Keys Changed');
    expect(bytes(parts.detail) + bytes(EVENT_SOURCE) + bytes(parts.detailType)).toBeLessThanOrEqual(
      EVENT_MAX_BYTES,
    );
    expect(JSON.parse(parts.detail)).toStrictEqual({
      changeId: 'chg-0123456789abcdef0123456789abcdef',
      runId: 'run-1',
      principal: 'root',
      pattern: null,
      detectedAt: '2025-06-01T12:00:00.000Z',
      counts: { added: 50_000, removed: 10, total: 42 },
      snapshotLocation: 's3://bucket/snapshots/root.json',
      changeRecordLocation: 's3://bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
      added: [],
      removed: [],
      truncated: true,
    });
  });

  it('keeps a change that fits exactly, and truncates one byte more', () => {
    const notice = changed();
    const full = eventParts(notice).detail;
    const limit = bytes(full) + bytes(EVENT_SOURCE) + bytes(DETAIL_TYPES.changed);
    expect(JSON.parse(eventParts(notice, limit).detail).truncated).toBe(false);
    expect(JSON.parse(eventParts(notice, limit - 1).detail).truncated).toBe(true);
  });
});
