/**
 * What a notice says on each channel: a subject and text for people (SNS, e-mail) and an event for
 * machines (EventBridge). Pure functions, so every size limit is tested without AWS.
 *
 * Names are data (product contract, guarantee 10): the subject and the body show every name, pattern and
 * reason through `commons/text.ts`, so none can break a line, drive a terminal or reorder the text; the
 * event and the SNS message attributes carry them exactly.
 */
import { cap } from '../commons/redact.js';
import { displayName, displayText, quotedName } from '../commons/text.js';
import { principalDigest } from './layout.js';
import type { ChangeRecord, Notice, PrincipalInfo, StaleKey } from './ports.js';

/** The EventBridge `source` of every event. */
export const EVENT_SOURCE = 'bigstate.key-audit';

/** The EventBridge `detail-type` of each kind of notice. */
export const DETAIL_TYPES = {
  changed: 'BigState API Keys Changed',
  baseline: 'BigState Key Audit Baseline',
  failed: 'BigState Key Audit Failed',
  recovered: 'BigState Key Audit Recovered',
  'principal-removed': 'BigState Principal Removed',
  stale: 'BigState API Keys Stale',
} as const;

/** What the subject and body call a notice about the whole run rather than one principal. */
const WHOLE_RUN = 'the whole run';

/** The principal a notice is about; `null` for a notice about the whole run. */
export function noticePrincipal(notice: Notice): string | null {
  switch (notice.kind) {
    case 'failed':
    case 'recovered':
    case 'principal-removed':
      return notice.principal;
    default:
      return notice.record.principal;
  }
}

/** BigState's principal types, by number. */
const PRINCIPAL_TYPES: Readonly<Record<number, string>> = { 1: 'application', 2: 'user' };

/**
 * A principal for people, with what the listing says of it: `"tram_client" — Client for tram app (application)`.
 * The display name comes from BigState: escaped like any name.
 */
export function principalLabel(principal: string, info: PrincipalInfo | undefined): string {
  const name = info?.displayName ? ` — ${displayText(info.displayName)}` : '';
  const type =
    info?.type === null || info?.type === undefined
      ? ''
      : ` (${PRINCIPAL_TYPES[info.type] ?? `type ${info.type}`})`;
  return `${quotedName(principal)}${name}${type}`;
}

/** SNS takes 256 KiB (message, subject and attributes together); keep a margin for the envelope. */
export const SNS_MAX_BYTES = 256 * 1024 - 8 * 1024;
/** EventBridge takes 256 KB per entry (detail, detail-type, source, resources); keep a margin. */
export const EVENT_MAX_BYTES = 256 * 1024 - 8 * 1024;
/** SNS subjects must be under 100 characters. */
export const SUBJECT_MAX_CHARS = 99;

/** The `changeType` values of a notice, for subscription filter policies. */
export function changeTypes(notice: Notice): string[] {
  if (notice.kind !== 'changed') return [notice.kind];
  const types: string[] = [];
  if (notice.record.added.length > 0) types.push('added');
  if (notice.record.removed.length > 0) types.push('removed');
  return types;
}

/** Latin letters that have no decomposition into an ASCII letter and a mark. */
const LATIN_FOLDS: Readonly<Record<string, string>> = {
  ß: 'ss',
  ẞ: 'SS',
  Æ: 'AE',
  æ: 'ae',
  Œ: 'OE',
  œ: 'oe',
  Ø: 'O',
  ø: 'o',
  Ł: 'L',
  ł: 'l',
  Đ: 'D',
  đ: 'd',
  Ð: 'D',
  ð: 'd',
  Þ: 'TH',
  þ: 'th',
  Ħ: 'H',
  ħ: 'h',
  ı: 'i',
  Ŧ: 'T',
  ŧ: 't',
};

/** `text` folded to printable ASCII, and whether anything had to become `?` on the way. */
function foldToAscii(text: string): { readonly text: string; readonly lossy: boolean } {
  let lossy = false;
  const folded = text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/gu, (character) => {
      const fold = LATIN_FOLDS[character];
      if (fold !== undefined) return fold;
      lossy = true;
      // One `?` per UTF-16 unit, as before: an emoji shows as `??`.
      return '?'.repeat(character.length);
    });
  return { text: folded, lossy };
}

/**
 * SNS subjects must be printable ASCII without line breaks or control characters: letters lose their
 * accents (`ü` -> `u`), a few Latin letters are spelt out (`ß` -> `ss`, `Æ` -> `AE`, `Ø` -> `O`,
 * `Ł` -> `L`), anything else becomes `?` (an emoji, being two UTF-16 units, `??`).
 */
export function asciiSubjectText(text: string): string {
  return foldToAscii(text).text;
}

/**
 * The tag a subject adds to a principal whose name folding lost (`日本` and `中国` both fold to `??`):
 * ` #` and the first 6 hex digits of the SHA-256 of the exact name ({@link principalDigest}, the hash a
 * long name's state folder carries too), so two such principals stay apart in a mailbox. The body always
 * carries the name itself.
 */
export function subjectTag(principal: string): string {
  return ` #${principalDigest(principal).slice(0, 6)}`;
}

/**
 * A subject under 100 printable ASCII characters; the principal is shortened, never the counts nor the
 * tag of a name that folding lost ({@link subjectTag}).
 */
export function snsSubject(notice: Notice): string {
  const [prefix, suffix] = subjectParts(notice);
  const name = noticePrincipal(notice);
  if (name === null) return `${prefix}${WHOLE_RUN}${suffix}`;
  const folded = foldToAscii(name);
  const tag = folded.lossy ? subjectTag(name) : '';
  const room = SUBJECT_MAX_CHARS - prefix.length - suffix.length - tag.length;
  let principal = folded.text;
  if (principal.length > room) principal = `${principal.slice(0, Math.max(0, room - 3))}...`;
  return `${prefix}${principal}${tag}${suffix}`;
}

function subjectParts(notice: Notice): [string, string] {
  switch (notice.kind) {
    case 'failed':
      return ['BigState key audit FAILED for ', ''];
    case 'recovered':
      return ['BigState key audit recovered for ', ''];
    case 'stale': {
      const count = notice.record.stale?.length ?? 0;
      return ['BigState API keys stale for ', ` (${count} ${count === 1 ? 'key' : 'keys'})`];
    }
    case 'principal-removed':
      return [
        'BigState principal removed: ',
        ` (${notice.keys.length} ${notice.keys.length === 1 ? 'key' : 'keys'})`,
      ];
    case 'baseline':
      return [
        notice.record.newPrincipal === true
          ? 'BigState key audit: new principal '
          : 'BigState key audit baseline for ',
        ` (${notice.record.counts.total} ${notice.record.counts.total === 1 ? 'key' : 'keys'})`,
      ];
    case 'changed':
      return [
        'BigState API keys changed for ',
        ` (+${notice.record.counts.added} -${notice.record.counts.removed})`,
      ];
  }
}

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/** The stale keys with their ages, under a heading, until `budget` bytes are used. */
function listStale(stale: readonly StaleKey[], budget: number, where: string): string {
  return listWithin(
    `Stale (${stale.length}):`,
    stale,
    (key) =>
      `  ! ${displayName(key.name)}  ${
        key.ageFrom === 'created'
          ? `${key.ageDays} days old (created ${displayText(key.createdAt ?? '?')})`
          : `at least ${key.ageDays} days old (from first seen)`
      }`,
    budget,
    where,
  );
}

/** Lists names under a heading until `budget` bytes are used, then points at the full record. */
function listNames(heading: string, marker: string, names: readonly string[], budget: number, where: string) {
  return listWithin(
    `${heading} (${names.length}):`,
    names,
    (name) => `  ${marker} ${displayName(name)}`,
    budget,
    where,
  );
}

/**
 * `heading`, then one line per item (made only as far as they fit) until `budget` bytes are used, then how many
 * more there are and `where` the full list is.
 */
function listWithin<T>(
  heading: string,
  items: readonly T[],
  lineOf: (item: T) => string,
  budget: number,
  where: string,
): string {
  const lines = [heading];
  let used = bytes(heading) + 1;
  let shown = 0;
  for (const item of items) {
    const line = lineOf(item);
    if (used + bytes(line) + 1 > budget) break;
    lines.push(line);
    used += bytes(line) + 1;
    shown += 1;
  }
  if (shown < items.length)
    lines.push(`  ... and ${items.length - shown} more: the full list is in ${where}`);
  return lines.join('\n');
}

/**
 * A failure's reason is evidence, not a payload: capped at 2,000 characters (the last an ellipsis, never splitting
 * a surrogate pair) in the e-mail and the event alike, so that a huge server text or request path can never make
 * SNS or EventBridge refuse the notice.
 */
export const REASON_MAX_CHARS = 2_000;

/**
 * A readable plain-text body that stays under `maxBytes`. The principal is quoted (`"svc a&b"`), a key name
 * shown as it is unless it needs escaping (`  - ci-laptop`, `  - "evil\nChange id: x"`), the reason
 * escaped: no name or reason can start a line of its own.
 */
export function snsBody(notice: Notice, maxBytes = SNS_MAX_BYTES): string {
  if (notice.kind === 'failed') {
    const what =
      notice.principal === null
        ? 'The BigState key audit could not run: no principal was audited.'
        : `The BigState key audit could not read principal ${quotedName(notice.principal)}.`;
    const kept =
      notice.principal === null
        ? 'Every last good snapshot is kept and no key change is reported; the next run tries again.'
        : 'Its last good snapshot is kept and no key change is reported for it; the next run tries again.';
    return [
      what,
      '',
      `Reason: ${displayText(cap(notice.reason, REASON_MAX_CHARS))}`,
      '',
      kept,
      'You are told again when the reason changes, once a day while it keeps failing, and when it recovers.',
      '',
      `Failing since: ${displayText(notice.failingSince)}`,
      `Run id: ${displayText(notice.runId)}`,
      `Detected at: ${displayText(notice.detectedAt)}`,
    ].join('\n');
  }
  if (notice.kind === 'recovered') {
    return [
      notice.principal === null
        ? 'The BigState key audit runs again: the failure of the whole run has ended.'
        : `The BigState key audit reads principal ${quotedName(notice.principal)} again: its failure has ended.`,
      '',
      `Failing since: ${displayText(notice.failingSince)}`,
      `Run id: ${displayText(notice.runId)}`,
      `Detected at: ${displayText(notice.detectedAt)}`,
    ].join('\n');
  }
  if (notice.kind === 'principal-removed') {
    const where = displayText(notice.archiveLocation);
    const header = `Principal ${principalLabel(notice.principal, notice.info)} no longer exists in BigState: it was missing from the principal listing, and BigState answers 404 for it. It had ${notice.keys.length} key(s); no key is reported removed one by one.`;
    const footer = [
      `Removal id: ${displayText(notice.removalId)}`,
      `Run id: ${displayText(notice.runId)}`,
      `Detected at: ${displayText(notice.detectedAt)}`,
      `Archived state: ${where}`,
    ].join('\n');
    const budget = Math.max(0, maxBytes - bytes(header) - bytes(footer) - 16 - (80 + bytes(where)));
    return [header, '', listNames('Keys it had', '-', notice.keys, budget, where), '', footer].join('\n');
  }
  const record = notice.record;
  const footer = footerLines(record).join('\n');
  const who = principalLabel(record.principal, record.info);
  if (notice.kind === 'stale') {
    const stale = record.stale ?? [];
    const header = `API keys of principal ${who} crossed the key-age limit of ${record.maxKeyAgeDays ?? '?'} days: ${stale.length} key(s). Each is told once; an age "from first seen" is a lower bound (the key may be older).`;
    const where = displayText(record.changeRecordLocation);
    const budget = Math.max(0, maxBytes - bytes(header) - bytes(footer) - 16 - (80 + bytes(where)));
    const list = listStale(stale, budget, where);
    return [header, '', list, '', footer].join('\n');
  }
  if (notice.kind === 'baseline') {
    return [
      record.newPrincipal === true
        ? `New principal ${who}${patternText(record)}, found by discovery: ${record.counts.total} key(s) recorded as its baseline.`
        : `First audit of principal ${who}${patternText(record)}: ${record.counts.total} key(s) recorded as the baseline.`,
      'Later runs report keys added and removed against it.',
      '',
      footer,
    ].join('\n');
  }
  const header = `API keys of principal ${who}${patternText(record)} changed: ${record.counts.added} added, ${record.counts.removed} removed.`;
  const where = displayText(record.changeRecordLocation);
  // Blank lines, and room for two "... and N more: the full list is in <location>" lines, which name the
  // location: an S3 key may be 1 KB long.
  const more = 2 * (80 + bytes(where));
  const fixed = bytes(header) + bytes(footer) + 16 + more;
  const budget = Math.max(0, maxBytes - fixed);
  const sections: string[] = [header, ''];
  // Removals first, with at least half the room: they are what a security team acts on.
  let left = budget;
  if (record.removed.length > 0) {
    const share = record.added.length === 0 ? budget : Math.floor(budget / 2);
    const section = listNames('Removed', '-', record.removed, share, where);
    sections.push(section, '');
    left -= bytes(section);
  }
  if (record.added.length > 0) {
    sections.push(listNames('Added', '+', record.added, left, where), '');
  }
  sections.push(footer);
  return sections.join('\n');
}

function patternText(record: ChangeRecord): string {
  return record.pattern === null ? '' : ` (pattern ${displayName(record.pattern)})`;
}

// Ids and locations are ours (percent-encoded keys, UUIDs), but a local state folder is any path:
// escaped like the rest, so the footer is always the footer.
function footerLines(record: ChangeRecord): string[] {
  return [
    `Change id: ${displayText(record.changeId)}`,
    `Run id: ${displayText(record.runId)}`,
    `Detected at: ${displayText(record.detectedAt)}`,
    `Snapshot: ${displayText(record.snapshotLocation)}`,
    `Change record: ${displayText(record.changeRecordLocation)}`,
    ...(record.reportLocation === undefined
      ? []
      : [`Inventory report: ${displayText(record.reportLocation)} (written after the run)`]),
  ];
}

/** SNS message attributes for subscription filter policies: the principal exactly, never escaped. */
export function snsAttributes(notice: Notice): Record<string, { DataType: string; StringValue: string }> {
  const principal = noticePrincipal(notice);
  return {
    // A notice about the whole run has no principal to filter on.
    ...(principal === null ? {} : { principal: { DataType: 'String', StringValue: principal } }),
    changeType: { DataType: 'String.Array', StringValue: JSON.stringify(changeTypes(notice)) },
  };
}

/** One EventBridge entry's `detail-type` and `detail`. */
export interface EventParts {
  readonly detailType: string;
  readonly detail: string;
}

/**
 * The event of a notice, for machines: names exactly as BigState gave them (JSON escapes what it must).
 * A change whose names would not fit one entry drops the name lists, sets
 * `truncated: true` and keeps the counts and the change record's location, which holds every name.
 */
export function eventParts(notice: Notice, maxBytes = EVENT_MAX_BYTES): EventParts {
  const detailType = DETAIL_TYPES[notice.kind];
  if (notice.kind === 'failed') {
    const { runId, principal, errorName, detectedAt, failingSince } = notice;
    const reason = cap(notice.reason, REASON_MAX_CHARS);
    return {
      detailType,
      detail: JSON.stringify({ runId, principal, reason, errorName, detectedAt, failingSince }),
    };
  }
  if (notice.kind === 'recovered') {
    const { runId, principal, detectedAt, failingSince } = notice;
    return { detailType, detail: JSON.stringify({ runId, principal, detectedAt, failingSince }) };
  }
  if (notice.kind === 'principal-removed') {
    const { removalId, runId, principal, detectedAt, archiveLocation, keys } = notice;
    const common = {
      removalId,
      runId,
      principal,
      ...(notice.info === undefined ? {} : { principalInfo: notice.info }),
      detectedAt,
      counts: { total: keys.length },
      archiveLocation,
    };
    return fitted(detailType, maxBytes, { ...common, keys }, { ...common, keys: [] });
  }
  const record = notice.record;
  const common = {
    changeId: record.changeId,
    runId: record.runId,
    principal: record.principal,
    pattern: record.pattern,
    detectedAt: record.detectedAt,
    counts: record.counts,
    snapshotLocation: record.snapshotLocation,
    changeRecordLocation: record.changeRecordLocation,
    ...(record.info === undefined ? {} : { principalInfo: record.info }),
  };
  if (notice.kind === 'baseline') {
    return { detailType, detail: JSON.stringify({ ...common, newPrincipal: record.newPrincipal === true }) };
  }
  if (notice.kind === 'stale') {
    const { counts: _counts, ...rest } = common;
    const stale = record.stale ?? [];
    const staleCommon = {
      ...rest,
      maxKeyAgeDays: record.maxKeyAgeDays ?? null,
      counts: { stale: stale.length },
    };
    return fitted(detailType, maxBytes, { ...staleCommon, stale }, { ...staleCommon, stale: [] });
  }
  return fitted(
    detailType,
    maxBytes,
    { ...common, added: record.added, removed: record.removed },
    { ...common, added: [], removed: [] },
  );
}

/**
 * The whole detail (`truncated: false`) when the entry fits in `maxBytes` (source and detail-type included), else
 * the one without its name lists (`truncated: true`): the counts and the record's location always say the rest.
 */
function fitted(detailType: string, maxBytes: number, whole: object, cut: object): EventParts {
  const detail = JSON.stringify({ ...whole, truncated: false });
  if (bytes(detail) + bytes(EVENT_SOURCE) + bytes(detailType) <= maxBytes) return { detailType, detail };
  return { detailType, detail: JSON.stringify({ ...cut, truncated: true }) };
}
