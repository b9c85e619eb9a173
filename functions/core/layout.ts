/**
 * Where snapshots and change records live, the same in S3 and in a local state folder:
 *
 *   snapshots/<principal>.json            the latest snapshot of a principal
 *   history/<principal>/<changeId>.json   every baseline and change, one immutable record each
 *   snapshots/.run.json                   the run-level record (failures of the run itself)
 *   archive/<principal>/<archiveId>.json  the last state of a principal that no longer exists in BigState
 *   failures/<principal>.json             a principal's failure while its state cannot be read (corrupt, denied)
 *
 * `<principal>` is the name percent-encoded (dots too), so `/`, `..`, spaces, `&`, `#` and non-ASCII
 * letters can neither escape the folder nor collide. A name whose encoded form is longer than
 * {@link SEGMENT_MAX_BYTES} (or that is not well-formed UTF-16) is stored as a readable prefix of that
 * form, `~` and a hash of the exact name: percent-encoding escapes `~` (`%7E`), so a `~` marks a hashed
 * segment and the two forms never collide. Every segment fits in 200 bytes, so `<segment>.json`, its
 * temporary `<segment>.json.<uuid>.tmp` and the history folder fit in a file name (255 bytes) and every
 * key fits in S3's 1,024 bytes.
 */
import { createHash } from 'node:crypto';

/** The longest file or folder name most file systems take (ext4, APFS, NTFS: 255 bytes or units). */
export const FILE_NAME_MAX_BYTES = 255;
/** The longest S3 object key. */
export const S3_KEY_MAX_BYTES = 1024;
/**
 * The longest principal segment: leaves 55 bytes of a file name for `.json` and a temporary suffix
 * (`.json.<uuid>.tmp` is 46 bytes).
 */
export const SEGMENT_MAX_BYTES = 200;
/** Hex digits of the SHA-256 in a hashed segment (128 bits). */
export const SEGMENT_HASH_CHARS = 32;
/** What separates the readable prefix of a hashed segment from its hash; never in an encoded name. */
export const HASHED_SEGMENT_MARK = '~';

const PREFIX_MAX_BYTES = SEGMENT_MAX_BYTES - HASHED_SEGMENT_MARK.length - SEGMENT_HASH_CHARS;

/** `encodeURIComponent`, and the characters it leaves that a path or a hashed segment must not hold. */
function percentEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[.!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const isSurrogate = (codePoint: number): boolean => codePoint >= 0xd800 && codePoint <= 0xdfff;

/** A lone surrogate's three bytes in WTF-8 (generalised UTF-8): what UTF-8 would be for it. */
function surrogateBytes(codePoint: number): number[] {
  return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 0x3f), 0x80 | (codePoint & 0x3f)];
}

/**
 * The bytes of a name: UTF-8, a lone surrogate (which UTF-8 cannot carry) as its WTF-8 form. Different
 * names always give different bytes, which plain UTF-8 (turning every lone surrogate into U+FFFD) does not.
 */
function nameBytes(name: string): Buffer {
  if (name.isWellFormed()) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  for (const character of name) {
    const codePoint = character.codePointAt(0) ?? 0;
    parts.push(
      isSurrogate(codePoint) ? Buffer.from(surrogateBytes(codePoint)) : Buffer.from(character, 'utf8'),
    );
  }
  return Buffer.concat(parts);
}

/**
 * The SHA-256 of a principal name's exact bytes (UTF-8; a lone surrogate as WTF-8), 64 hex digits: what
 * a hashed segment carries, and what a subject tags a name with when ASCII folding lost it.
 */
export function principalDigest(principal: string): string {
  return createHash('sha256').update(nameBytes(principal)).digest('hex');
}

/** The longest run of whole encoded characters from the start of `name` that fits `maxBytes`. */
function encodedPrefix(name: string, maxBytes: number): string {
  let prefix = '';
  for (const character of name) {
    const codePoint = character.codePointAt(0) ?? 0;
    const encoded = isSurrogate(codePoint)
      ? surrogateBytes(codePoint)
          .map((byte) => `%${byte.toString(16).toUpperCase()}`)
          .join('')
      : percentEncode(character);
    if (prefix.length + encoded.length > maxBytes) break;
    prefix += encoded;
  }
  return prefix;
}

/**
 * A principal name as one safe path segment of at most {@link SEGMENT_MAX_BYTES} bytes (ASCII, so bytes
 * and characters agree). A name that fits is percent-encoded, dots and `~` too, exactly as it always was
 * (`svc a&b` -> `svc%20a%26b`), so existing snapshots are still found. A longer one, an empty one or one
 * that is not well-formed UTF-16 becomes `<prefix>~<hash>`: the longest run of its whole encoded characters
 * that fits, `~`, and the first {@link SEGMENT_HASH_CHARS} hex digits of {@link principalDigest}. Never throws.
 */
export function principalSegment(principal: string): string {
  if (principal !== '' && principal.isWellFormed()) {
    const encoded = percentEncode(principal);
    if (encoded.length <= SEGMENT_MAX_BYTES) return encoded;
  }
  const hash = principalDigest(principal).slice(0, SEGMENT_HASH_CHARS);
  return `${encodedPrefix(principal, PREFIX_MAX_BYTES)}${HASHED_SEGMENT_MARK}${hash}`;
}

/** The key (relative path) of a principal's latest snapshot. */
export function snapshotKey(principal: string): string {
  return `snapshots/${principalSegment(principal)}.json`;
}

/** The key (relative path) of a change record. */
export function changeRecordKey(principal: string, changeId: string): string {
  return `history/${principalSegment(principal)}/${changeId}.json`;
}

/**
 * The key of the run-level record. A principal's segment never starts with `.` (percent-encoding escapes it as
 * `%2E`), so no principal can have this key.
 */
export const RUN_STATE_KEY = 'snapshots/.run.json';

/** Where the latest inventory report is kept, next to the states. */
export const REPORT_KEYS = { html: 'reports/latest.html', csv: 'reports/latest.csv' } as const;

/**
 * The dated copy of a report: one a day (each run of the day replaces it, so the day's last run is kept), expired
 * with the history. One a run would keep 8,760 copies a year: at 10,000 principals, more storage than the audit.
 */
export function datedReportKey(at: Date, extension: 'html' | 'csv'): string {
  return `reports/${at.toISOString().slice(0, 10)}/report.${extension}`;
}

/** Where a fanned-out run keeps its working files: `runs/<runId>/...`, expired with a lifecycle rule. */
const RUNS_PREFIX = 'runs/';

/** The key of a fanned-out run's list of principals: what the plan writes and the Map's ItemReader reads. */
export function runItemsKey(runId: string): string {
  return `${RUNS_PREFIX}${runId}/principals.json`;
}

/** The key of the run lease (one run at a time): outside `snapshots/` and `history/`, whose write rules differ. */
export const LEASE_KEY = 'leases/run.json';

/** Where the failures of principals whose state could not be read are kept (see {@link sideFailureKey}). */
export const SIDE_FAILURES_PREFIX = 'failures/';

/**
 * The key of a principal's side failure record: its failure kept beside the state while the state itself cannot
 * be read (a corrupt object, access denied, a newer schema), so its notices are rationed as any other failure's.
 */
export function sideFailureKey(principal: string): string {
  return `${SIDE_FAILURES_PREFIX}${principalSegment(principal)}.json`;
}

/** The principal segment a side failure key names, or `undefined` when the key is not one. */
export function segmentOfSideFailureKey(key: string): string | undefined {
  if (!key.startsWith(SIDE_FAILURES_PREFIX) || !key.endsWith('.json')) return undefined;
  const segment = key.slice(SIDE_FAILURES_PREFIX.length, -'.json'.length);
  return segment === '' || segment.includes('/') ? undefined : segment;
}

/** The key (relative path) of an archived state. */
export function archiveKey(principal: string, archiveId: string): string {
  return `archive/${principalSegment(principal)}/${archiveId}.json`;
}

/**
 * The principal a state key names, when its segment says it (`undefined` for a hashed segment, whose state
 * must be read for its name, and for anything that is not a principal's state, such as the run-level record).
 */
export function principalOfStateKey(
  key: string,
): { readonly principal?: string; readonly hashed: boolean } | undefined {
  const match = /^snapshots\/([^/]+)\.json$/.exec(key);
  const segment = match?.[1];
  if (segment === undefined || segment.startsWith('.')) return undefined;
  if (segment.includes(HASHED_SEGMENT_MARK)) return { hashed: true };
  try {
    return { principal: decodeURIComponent(segment), hashed: false };
  } catch {
    return undefined;
  }
}
