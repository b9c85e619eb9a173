/**
 * What a notice says on each channel: a subject and text for people (SNS, e-mail) and an event for
 * machines (EventBridge). Pure functions, so every size limit is tested without AWS.
 */
import type { ChangeRecord, Notice } from './ports.js';

/** The EventBridge `source` of every event. */
export const EVENT_SOURCE = 'bigstate.key-audit';

/** The EventBridge `detail-type` of each kind of notice. */
export const DETAIL_TYPES = {
  changed: 'BigState API Keys Changed',
  baseline: 'BigState Key Audit Baseline',
  failed: 'BigState Key Audit Failed',
} as const;

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

/**
 * SNS subjects must be printable ASCII without line breaks: letters lose their accents (`ü` -> `u`),
 * anything else becomes `?`.
 */
export function asciiSubjectText(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/g, '?');
}

/** A subject under 100 characters; the principal is shortened, never the counts. */
export function snsSubject(notice: Notice): string {
  const [prefix, suffix] = subjectParts(notice);
  const room = SUBJECT_MAX_CHARS - prefix.length - suffix.length;
  let principal = asciiSubjectText(notice.kind === 'failed' ? notice.principal : notice.record.principal);
  if (principal.length > room) principal = `${principal.slice(0, Math.max(0, room - 3))}...`;
  return `${prefix}${principal}${suffix}`;
}

function subjectParts(notice: Notice): [string, string] {
  switch (notice.kind) {
    case 'failed':
      return ['BigState key audit FAILED for ', ''];
    case 'baseline':
      return [
        'BigState key audit baseline for ',
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

/** Lists names under a heading until `budget` bytes are used, then points at the full record. */
function listNames(heading: string, marker: string, names: readonly string[], budget: number, where: string) {
  const lines = [`${heading} (${names.length}):`];
  let used = bytes(lines[0] ?? '') + 1;
  let shown = 0;
  for (const name of names) {
    const line = `  ${marker} ${name}`;
    if (used + bytes(line) + 1 > budget) break;
    lines.push(line);
    used += bytes(line) + 1;
    shown += 1;
  }
  if (shown < names.length)
    lines.push(`  ... and ${names.length - shown} more: the full list is in ${where}`);
  return lines.join('\n');
}

/** A readable plain-text body that stays under `maxBytes`. */
export function snsBody(notice: Notice, maxBytes = SNS_MAX_BYTES): string {
  if (notice.kind === 'failed') {
    return [
      `The BigState key audit could not read principal ${JSON.stringify(notice.principal)}.`,
      '',
      `Reason: ${notice.reason}`,
      '',
      'Its last good snapshot is kept and no key change is reported for it; the next run tries again.',
      '',
      `Run id: ${notice.runId}`,
      `Detected at: ${notice.detectedAt}`,
    ].join('\n');
  }
  const record = notice.record;
  const footer = footerLines(record).join('\n');
  if (notice.kind === 'baseline') {
    return [
      `First audit of principal ${JSON.stringify(record.principal)}${patternText(record)}: ${record.counts.total} key(s) recorded as the baseline.`,
      'Later runs report keys added and removed against it.',
      '',
      footer,
    ].join('\n');
  }
  const header = `API keys of principal ${JSON.stringify(record.principal)}${patternText(record)} changed: ${record.counts.added} added, ${record.counts.removed} removed.`;
  // Blank lines, and room for two "... and N more: the full list is in <location>" lines, which name the
  // location: an S3 key may be 1 KB long.
  const more = 2 * (80 + bytes(record.changeRecordLocation));
  const fixed = bytes(header) + bytes(footer) + 16 + more;
  const budget = Math.max(0, maxBytes - fixed);
  const sections: string[] = [header, ''];
  // Removals first, with at least half the room: they are what a security team acts on.
  let left = budget;
  if (record.removed.length > 0) {
    const share = record.added.length === 0 ? budget : Math.floor(budget / 2);
    const section = listNames('Removed', '-', record.removed, share, record.changeRecordLocation);
    sections.push(section, '');
    left -= bytes(section);
  }
  if (record.added.length > 0) {
    sections.push(listNames('Added', '+', record.added, left, record.changeRecordLocation), '');
  }
  sections.push(footer);
  return sections.join('\n');
}

function patternText(record: ChangeRecord): string {
  return record.pattern === null ? '' : ` (pattern ${record.pattern})`;
}

function footerLines(record: ChangeRecord): string[] {
  return [
    `Change id: ${record.changeId}`,
    `Run id: ${record.runId}`,
    `Detected at: ${record.detectedAt}`,
    `Snapshot: ${record.snapshotLocation}`,
    `Change record: ${record.changeRecordLocation}`,
  ];
}

/** SNS message attributes for subscription filter policies. */
export function snsAttributes(notice: Notice): Record<string, { DataType: string; StringValue: string }> {
  return {
    principal: {
      DataType: 'String',
      StringValue: notice.kind === 'failed' ? notice.principal : notice.record.principal,
    },
    changeType: { DataType: 'String.Array', StringValue: JSON.stringify(changeTypes(notice)) },
  };
}

/** One EventBridge entry's `detail-type` and `detail`. */
export interface EventParts {
  readonly detailType: string;
  readonly detail: string;
}

/**
 * The event of a notice. A change whose names would not fit one entry drops the name lists, sets
 * `truncated: true` and keeps the counts and the change record's location, which holds every name.
 */
export function eventParts(notice: Notice, maxBytes = EVENT_MAX_BYTES): EventParts {
  const detailType = DETAIL_TYPES[notice.kind];
  if (notice.kind === 'failed') {
    const { runId, principal, reason, errorName, detectedAt } = notice;
    return { detailType, detail: JSON.stringify({ runId, principal, reason, errorName, detectedAt }) };
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
  };
  if (notice.kind === 'baseline') return { detailType, detail: JSON.stringify(common) };
  const full = JSON.stringify({ ...common, added: record.added, removed: record.removed, truncated: false });
  const overhead = bytes(EVENT_SOURCE) + bytes(detailType);
  if (bytes(full) + overhead <= maxBytes) return { detailType, detail: full };
  return { detailType, detail: JSON.stringify({ ...common, added: [], removed: [], truncated: true }) };
}
