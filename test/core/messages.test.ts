import { describe, expect, it } from 'vitest';
import { displayName, displayText, quotedName } from '../../functions/commons/text.js';
import {
  asciiSubjectText,
  changeTypes,
  DETAIL_TYPES,
  EVENT_MAX_BYTES,
  EVENT_SOURCE,
  eventParts,
  REASON_MAX_CHARS,
  SNS_MAX_BYTES,
  SUBJECT_MAX_CHARS,
  snsAttributes,
  snsBody,
  snsSubject,
  subjectTag,
} from '../../functions/core/messages.js';
import type { ChangeRecord, FailureNotice, Notice, RecoveredNotice } from '../../functions/core/ports.js';
import { FORGED, HOSTILE, rawCharacters } from '../support/hostile.js';

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
  failingSince: '2025-06-01T11:00:00.000Z',
  ...overrides,
});
/** A failure of the run itself (an unusable secret): about no principal. */
const runFailed = (overrides: Partial<FailureNotice> = {}): FailureNotice =>
  failed({
    principal: null,
    reason:
      'reading the API key: secret arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate holds an empty apiKey',
    errorName: 'SecretError',
    ...overrides,
  });
const recovered = (overrides: Partial<RecoveredNotice> = {}): RecoveredNotice => ({
  kind: 'recovered',
  runId: 'run-2',
  principal: 'root',
  detectedAt: '2025-06-02T12:00:00.000Z',
  failingSince: '2025-06-01T11:00:00.000Z',
  ...overrides,
});

/** Lines as a person sees them: any of the line breaks a reader may honour ends a line. */
const linesOf = (text: string) => text.split(/\r\n|[\n\r\v\f\u0085\u2028\u2029]/);

/** A text for people shows no raw control character and forges no line. */
function expectNoForgedLine(text: string) {
  expect(rawCharacters(text)).toEqual([]);
  const lines = linesOf(text);
  expect(
    lines.filter((line) => line.startsWith('Change id:')).every((line) => !line.includes('forged')),
  ).toBe(true);
  expect(lines.some((line) => line.startsWith('No keys were removed'))).toBe(false);
}

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
      recovered: 'BigState Key Audit Recovered',
      'principal-removed': 'BigState Principal Removed',
      stale: 'BigState API Keys Stale',
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

  it('is the kind for a baseline, a failure or a recovery', () => {
    expect(changeTypes(baseline())).toEqual(['baseline']);
    expect(changeTypes(failed())).toEqual(['failed']);
    expect(changeTypes(runFailed())).toEqual(['failed']);
    expect(changeTypes(recovered())).toEqual(['recovered']);
    expect(changeTypes(recovered({ principal: null }))).toEqual(['recovered']);
  });
});

describe('asciiSubjectText', () => {
  it('drops accents, spells out Latin letters without a decomposition, and replaces anything else outside printable ASCII with "?"', () => {
    expect(asciiSubjectText('Zürich Café Ærø')).toBe('Zurich Cafe AEro');
    expect(asciiSubjectText('ﬁ ß 😀 Ω')).toBe('fi ss ?? ?');
    expect(asciiSubjectText('line\nbreak\ttab\u007f')).toBe('line?break?tab?');
  });

  it('spells out ß, Æ, Ø, Œ, Ł, Đ, Þ and their kin', () => {
    expect(asciiSubjectText('Straße ẞ Øresund Łódź Æsir œuvre Đorđe Þór ħ ı Ŧ')).toBe(
      'Strasse SS Oresund Lodz AEsir oeuvre Dorde THor h i T',
    );
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
    expect(snsSubject(recovered())).toBe('BigState key audit recovered for root');
  });

  it('names the whole run for a failure of the run itself and its recovery', () => {
    expect(snsSubject(runFailed())).toBe('BigState key audit FAILED for the whole run');
    expect(snsSubject(recovered({ principal: null }))).toBe('BigState key audit recovered for the whole run');
  });

  it('folds and tags a recovered principal as a failed one', () => {
    expect(snsSubject(recovered({ principal: 'Ünïcödé\nops' }))).toBe(
      snsSubject(failed({ principal: 'Ünïcödé\nops' })).replace('FAILED', 'recovered'),
    );
    expect(snsSubject(recovered({ principal: 'ключ' }))).toBe(
      `BigState key audit recovered for ????${subjectTag('ключ')}`,
    );
  });

  it('turns a non-ASCII principal into ASCII (ü -> u)', () => {
    expect(snsSubject(changed({ principal: 'zürich-ops' }))).toBe(
      'BigState API keys changed for zurich-ops (+2 -1)',
    );
    expect(snsSubject(failed({ principal: 'Ünïcödé\nops' }))).toBe(
      `BigState key audit FAILED for Unicode?ops${subjectTag('Ünïcödé\nops')}`,
    );
  });

  it('tags a principal whose letters folding lost, so 日本 and 中国 stay apart', () => {
    expect(subjectTag('日本')).toMatch(/^ #[0-9a-f]{6}$/);
    // The first digits of the SHA-256 of the name's UTF-8 bytes.
    expect(subjectTag('abc')).toBe(' #ba7816');
    expect(subjectTag('日本')).toBe(subjectTag('日本'));
    expect(subjectTag('日本')).not.toBe(subjectTag('中国'));
    expect(snsSubject(changed({ principal: '日本' }))).toBe(
      `BigState API keys changed for ??${subjectTag('日本')} (+2 -1)`,
    );
    expect(snsSubject(changed({ principal: '日本' }))).not.toBe(snsSubject(changed({ principal: '中国' })));
    expect(snsSubject(failed({ principal: 'ключ' }))).toBe(
      `BigState key audit FAILED for ????${subjectTag('ключ')}`,
    );
  });

  it('adds no tag when folding kept every letter', () => {
    expect(snsSubject(failed({ principal: 'Straße-ops' }))).toBe('BigState key audit FAILED for Strasse-ops');
    expect(snsSubject(failed({ principal: 'what?' }))).toBe('BigState key audit FAILED for what?');
  });

  it.each(HOSTILE)('keeps a principal holding %s to printable ASCII on one line', (_label, hostile) => {
    const principal = `${hostile}${FORGED}${hostile}`;
    for (const notice of [changed({ principal }), baseline({ principal }), failed({ principal })]) {
      const subject = snsSubject(notice);
      expect(subject).toMatch(/^BigState [\x20-\x7e]+$/);
      expect(subject.length).toBeLessThanOrEqual(SUBJECT_MAX_CHARS);
      expect(subject).toContain('?Change id: chg-forged?No keys');
      expect(subject).toContain(subjectTag(principal));
    }
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
      // The emoji folds to "??": the tag that keeps such names apart is never cut.
      if (notice.kind === 'failed')
        expect(subject).toBe(
          `BigState key audit FAILED for ${'e'.repeat(58)}...${subjectTag(notice.principal ?? '')}`,
        );
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

  it('explains a failure, its reason, that the snapshot is kept, when people are told again, and since when', () => {
    expect(snsBody(failed())).toBe(
      [
        'The BigState key audit could not read principal "root".',
        '',
        'Reason: walking the keys: BigState GET /v1/apikey/match?principal=root&next=0 -> HTTP 403: access denied',
        '',
        'Its last good snapshot is kept and no key change is reported for it; the next run tries again.',
        'You are told again when the reason changes, once a day while it keeps failing, and when it recovers.',
        '',
        'Failing since: 2025-06-01T11:00:00.000Z',
        'Run id: run-1',
        'Detected at: 2025-06-01T12:00:00.000Z',
      ].join('\n'),
    );
  });

  it('explains a failure of the run itself: no principal audited, every snapshot kept', () => {
    expect(snsBody(runFailed())).toBe(
      [
        'The BigState key audit could not run: no principal was audited.',
        '',
        'Reason: reading the API key: secret arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate holds an empty apiKey',
        '',
        'Every last good snapshot is kept and no key change is reported; the next run tries again.',
        'You are told again when the reason changes, once a day while it keeps failing, and when it recovers.',
        '',
        'Failing since: 2025-06-01T11:00:00.000Z',
        'Run id: run-1',
        'Detected at: 2025-06-01T12:00:00.000Z',
      ].join('\n'),
    );
  });

  it('tells a recovery of a principal, and since when it had been failing', () => {
    expect(snsBody(recovered())).toBe(
      [
        'The BigState key audit reads principal "root" again: its failure has ended.',
        '',
        'Failing since: 2025-06-01T11:00:00.000Z',
        'Run id: run-2',
        'Detected at: 2025-06-02T12:00:00.000Z',
      ].join('\n'),
    );
  });

  it('tells the end of a failure of the run itself', () => {
    expect(snsBody(recovered({ principal: null }))).toBe(
      [
        'The BigState key audit runs again: the failure of the whole run has ended.',
        '',
        'Failing since: 2025-06-01T11:00:00.000Z',
        'Run id: run-2',
        'Detected at: 2025-06-02T12:00:00.000Z',
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

  describe('with names that try to forge lines, drive a terminal or reorder the text', () => {
    it.each(HOSTILE)('escapes %s in the principal, the key names and the pattern', (_label, hostile) => {
      const principal = `ops${hostile}${FORGED}`;
      const keyName = `key${hostile}${FORGED}`;
      const pattern = `ci${hostile}*`;
      const body = snsBody(
        changed({ principal, pattern, added: [keyName, 'plain'], removed: [`old${hostile}`] }),
      );
      expectNoForgedLine(body);
      // A person still sees each name, escaped as a JSON-style literal, on the line where it belongs.
      const lines = body.split('\n');
      expect(lines[0]).toBe(
        `API keys of principal ${quotedName(principal)} (pattern ${displayName(pattern)}) changed: 2 added, 1 removed.`,
      );
      expect(lines).toContain(`  + ${quotedName(keyName)}`);
      expect(lines).toContain('  + plain');
      expect(lines).toContain(`  - ${quotedName(`old${hostile}`)}`);
      expect(JSON.parse(quotedName(keyName))).toBe(keyName);
      expect(lines.filter((line) => line.startsWith('Change id: '))).toEqual([
        'Change id: chg-0123456789abcdef0123456789abcdef',
      ]);
    });

    it.each(HOSTILE)('escapes %s in a baseline principal', (_label, hostile) => {
      const principal = `${hostile}${FORGED}`;
      const body = snsBody(baseline({ principal }));
      expectNoForgedLine(body);
      expect(body.split('\n')[0]).toBe(
        `First audit of principal ${quotedName(principal)}: 42 key(s) recorded as the baseline.`,
      );
    });

    it.each(HOSTILE)(
      "escapes %s in a failed principal and in the reason (BigState's desc)",
      (_label, hostile) => {
        const principal = `ops${hostile}${FORGED}`;
        const reason = `walking the keys: HTTP 400: bad${hostile}${FORGED}`;
        const body = snsBody(failed({ principal, reason }));
        expectNoForgedLine(body);
        const lines = body.split('\n');
        expect(lines[0]).toBe(`The BigState key audit could not read principal ${quotedName(principal)}.`);
        expect(lines[2]).toBe(`Reason: ${displayText(reason)}`);
        expect(lines[2]).toContain('\\nChange id: chg-forged\\nNo keys were removed.');
      },
    );

    it.each(HOSTILE)('escapes %s in the reason of a failure of the run itself', (_label, hostile) => {
      const reason = `reading the API key: secret bad${hostile}${FORGED}`;
      const body = snsBody(runFailed({ reason }));
      expectNoForgedLine(body);
      expect(body.split('\n')[2]).toBe(`Reason: ${displayText(reason)}`);
    });

    it.each(HOSTILE)('escapes %s in a recovered principal and in the run id', (_label, hostile) => {
      const principal = `ops${hostile}${FORGED}`;
      const runId = `run${hostile}${FORGED}`;
      const body = snsBody(recovered({ principal, runId }));
      expectNoForgedLine(body);
      const lines = body.split('\n');
      expect(lines[0]).toBe(
        `The BigState key audit reads principal ${quotedName(principal)} again: its failure has ended.`,
      );
      expect(lines).toContain(`Run id: ${displayText(runId)}`);
    });

    it('shows a plain key name as it is and quotes only the names that need it', () => {
      const body = snsBody(changed({ added: ['ci-laptop', 'zürich 日本', ' padded'], removed: [] }));
      expect(body).toContain('  + ci-laptop\n  + zürich 日本\n  + " padded"\n');
    });

    it('stays under maxBytes when escaping makes names six times longer', () => {
      const names = Array.from({ length: 2_000 }, (_, i) => `${i}${'\u0000'.repeat(100)}`);
      const body = snsBody(changed({ added: names, removed: names }), 20_000);
      expect(bytes(body)).toBeLessThanOrEqual(20_000);
      expectNoForgedLine(body);
      expect(body).toMatch(/ {2}\.\.\. and \d+ more: the full list is in s3:/);
    });
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

  it('carries the principal of a recovery and the change type recovered', () => {
    expect(snsAttributes(recovered({ principal: 'zürich-ops' }))).toStrictEqual({
      principal: { DataType: 'String', StringValue: 'zürich-ops' },
      changeType: { DataType: 'String.Array', StringValue: '["recovered"]' },
    });
  });

  it('has no principal attribute for a notice about the whole run (nothing to filter a principal on)', () => {
    expect(snsAttributes(runFailed())).toStrictEqual({
      changeType: { DataType: 'String.Array', StringValue: '["failed"]' },
    });
    expect(snsAttributes(recovered({ principal: null }))).toStrictEqual({
      changeType: { DataType: 'String.Array', StringValue: '["recovered"]' },
    });
  });

  it.each(HOSTILE)('carries a principal holding %s exactly, unescaped', (_label, hostile) => {
    const principal = `ops${hostile}${FORGED}`;
    for (const notice of [
      changed({ principal }),
      baseline({ principal }),
      failed({ principal }),
      recovered({ principal }),
    ]) {
      expect(snsAttributes(notice).principal).toStrictEqual({ DataType: 'String', StringValue: principal });
    }
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
      newPrincipal: false,
    });
  });

  it('describes a failure with its reason, since when it fails, and nothing else', () => {
    const notice = failed();
    const parts = eventParts(notice);
    expect(parts.detailType).toBe('BigState Key Audit Failed');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      runId: 'run-1',
      principal: 'root',
      reason: notice.reason,
      errorName: 'ForbiddenError',
      detectedAt: '2025-06-01T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
    });
  });

  it('describes a failure of the run itself with principal null', () => {
    const notice = runFailed();
    const parts = eventParts(notice);
    expect(parts.detailType).toBe('BigState Key Audit Failed');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      runId: 'run-1',
      principal: null,
      reason: notice.reason,
      errorName: 'SecretError',
      detectedAt: '2025-06-01T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
    });
  });

  it('caps a 50 KB reason at 2,000 characters with an ellipsis, so the entry is never refused for its size', () => {
    const reason = `walking the keys: ${'x'.repeat(50_000)}`;
    const parts = eventParts(failed({ reason }));
    expect(bytes(parts.detail) + bytes(EVENT_SOURCE) + bytes(parts.detailType)).toBeLessThan(3_000);
    const detail = JSON.parse(parts.detail);
    expect(detail.reason).toHaveLength(2_000);
    expect(detail.reason).toBe(`${reason.slice(0, 1_999)}…`);
    expect(detail).toMatchObject({ runId: 'run-1', principal: 'root', errorName: 'ForbiddenError' });
    // Also well under a small limit: the size no longer depends on the reason.
    expect(bytes(eventParts(failed({ reason: '\u0001'.repeat(50_000) }), 20_000).detail)).toBeLessThan(
      20_000,
    );
  });

  it('keeps a reason of 2,000 characters whole, and never splits a surrogate pair at the cut', () => {
    const exact = 'r'.repeat(2_000);
    expect(JSON.parse(eventParts(failed({ reason: exact })).detail).reason).toBe(exact);
    const split = `${'r'.repeat(1_998)}${'🔑'.repeat(10)}`;
    expect(JSON.parse(eventParts(failed({ reason: split })).detail).reason).toBe(`${'r'.repeat(1_998)}…`);
    const whole = `${'r'.repeat(1_997)}${'🔑'.repeat(10)}`;
    expect(JSON.parse(eventParts(failed({ reason: whole })).detail).reason).toBe(`${'r'.repeat(1_997)}🔑…`);
  });

  it('describes a recovery, of a principal or of the run itself (principal null)', () => {
    const parts = eventParts(recovered());
    expect(parts.detailType).toBe('BigState Key Audit Recovered');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      runId: 'run-2',
      principal: 'root',
      detectedAt: '2025-06-02T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
    });
    const run = eventParts(recovered({ principal: null }));
    expect(run.detailType).toBe('BigState Key Audit Recovered');
    expect(JSON.parse(run.detail)).toStrictEqual({
      runId: 'run-2',
      principal: null,
      detectedAt: '2025-06-02T12:00:00.000Z',
      failingSince: '2025-06-01T11:00:00.000Z',
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

  it.each(HOSTILE)(
    'carries names holding %s exactly: they round-trip through the JSON',
    (_label, hostile) => {
      const principal = `ops${hostile}${FORGED}`;
      const added = [`a${hostile}`, `b${FORGED}`, 'plain'];
      const removed = [`${hostile}gone`];
      const pattern = `ci${hostile}*`;
      const change = JSON.parse(eventParts(changed({ principal, added, removed, pattern })).detail);
      expect(change.principal).toBe(principal);
      expect(change.added).toStrictEqual(added);
      expect(change.removed).toStrictEqual(removed);
      expect(change.pattern).toBe(pattern);
      expect(JSON.parse(eventParts(baseline({ principal })).detail).principal).toBe(principal);
      const reason = `HTTP 400: ${hostile}${FORGED}`;
      const failure = JSON.parse(eventParts(failed({ principal, reason })).detail);
      expect(failure.principal).toBe(principal);
      expect(failure.reason).toBe(reason);
      expect(JSON.parse(eventParts(recovered({ principal })).detail).principal).toBe(principal);
    },
  );

  it('keeps a change that fits exactly, and truncates one byte more', () => {
    const notice = changed();
    const full = eventParts(notice).detail;
    const limit = bytes(full) + bytes(EVENT_SOURCE) + bytes(DETAIL_TYPES.changed);
    expect(JSON.parse(eventParts(notice, limit).detail).truncated).toBe(false);
    expect(JSON.parse(eventParts(notice, limit - 1).detail).truncated).toBe(true);
  });
});

describe('the principal-removed and stale notices at their limits', () => {
  const removed = (keys: string[], info?: { type: number | null; displayName: string | null }): Notice => ({
    kind: 'principal-removed',
    removalId: 'prm-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal: 'svc a&b',
    ...(info === undefined ? {} : { info }),
    keys,
    detectedAt: '2025-06-01T12:00:00.000Z',
    archiveLocation: 's3://bucket/archive/svc%20a%26b/prm-0123456789abcdef0123456789abcdef.json',
  });

  it('describes a removed principal for machines: its keys, its description when known, and where it was archived', () => {
    const parts = eventParts(removed(['k1', 'k2'], { type: 7, displayName: 'Pat' }));
    expect(parts.detailType).toBe('BigState Principal Removed');
    expect(JSON.parse(parts.detail)).toStrictEqual({
      removalId: 'prm-0123456789abcdef0123456789abcdef',
      runId: 'run-1',
      principal: 'svc a&b',
      principalInfo: { type: 7, displayName: 'Pat' },
      detectedAt: '2025-06-01T12:00:00.000Z',
      counts: { total: 2 },
      archiveLocation: 's3://bucket/archive/svc%20a%26b/prm-0123456789abcdef0123456789abcdef.json',
      keys: ['k1', 'k2'],
      truncated: false,
    });
    expect(JSON.parse(eventParts(removed([])).detail)).not.toHaveProperty('principalInfo');
  });

  it('drops the key list of a removed principal that does not fit, keeping its count, and fits exactly at the limit', () => {
    const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
    const whole = eventParts(removed(keys));
    const limit = bytes(whole.detail) + bytes(EVENT_SOURCE) + bytes(whole.detailType);
    expect(eventParts(removed(keys), limit)).toStrictEqual(whole);
    const cut = JSON.parse(eventParts(removed(keys), limit - 1).detail);
    expect(cut).toMatchObject({ keys: [], truncated: true, counts: { total: 20 } });
  });

  it('drops the stale list that does not fit, keeping its count and limit', () => {
    const stale: Notice = {
      kind: 'stale',
      record: record({
        kind: 'stale',
        added: [],
        removed: [],
        maxKeyAgeDays: 90,
        stale: Array.from({ length: 30 }, (_, i) => ({
          name: `old-${i}`,
          ageDays: 100 + i,
          ageFrom: 'first-seen' as const,
          createdAt: null,
        })),
      }),
    };
    const whole = JSON.parse(eventParts(stale).detail);
    expect(whole).toMatchObject({ truncated: false, maxKeyAgeDays: 90, counts: { stale: 30 } });
    expect(whole.stale).toHaveLength(30);
    const cut = JSON.parse(eventParts(stale, 1_000).detail);
    expect(cut).toMatchObject({ stale: [], truncated: true, maxKeyAgeDays: 90, counts: { stale: 30 } });
  });

  it('lists stale keys with how each age is known, and says how many more there are when the body is full', () => {
    const keys = [
      { name: 'made', ageDays: 120, ageFrom: 'created' as const, createdAt: '2025-02-01T00:00:00.000Z' },
      { name: 'seen', ageDays: 95, ageFrom: 'first-seen' as const, createdAt: null },
      ...Array.from({ length: 400 }, (_, i) => ({
        name: `filler-${i}`,
        ageDays: 91,
        ageFrom: 'first-seen' as const,
        createdAt: null,
      })),
    ];
    const notice: Notice = {
      kind: 'stale',
      record: record({ kind: 'stale', added: [], removed: [], maxKeyAgeDays: 90, stale: keys }),
    };
    const body = snsBody(notice, 4_000);
    expect(body).toContain('  ! made  120 days old (created 2025-02-01T00:00:00.000Z)');
    expect(body).toContain('  ! seen  at least 95 days old (from first seen)');
    expect(bytes(body)).toBeLessThanOrEqual(4_000);
    const shown = body.split('\n').filter((line) => line.startsWith('  ! ')).length;
    expect(body).toContain(`  ... and ${keys.length - shown} more: the full list is in `);
  });
});

describe('a huge failure reason', () => {
  it('is capped alike in the e-mail and the event, so neither channel refuses the notice', () => {
    const reason = `walking the keys: ${'x'.repeat(300_000)}`;
    const body = snsBody(failed({ reason }));
    expect(bytes(body)).toBeLessThan(SNS_MAX_BYTES);
    const shown = body.split('\n').find((line) => line.startsWith('Reason: ')) ?? '';
    expect([...shown.slice('Reason: '.length)]).toHaveLength(REASON_MAX_CHARS);
    expect(shown.endsWith('…')).toBe(true);
    expect(JSON.parse(eventParts(failed({ reason })).detail).reason).toBe(shown.slice('Reason: '.length));
  });
});
