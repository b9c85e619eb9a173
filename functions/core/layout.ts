/**
 * Where snapshots and change records live, the same in S3 and in a local state folder:
 *
 *   snapshots/<principal>.json            the latest snapshot of a principal
 *   history/<principal>/<changeId>.json   every baseline and change, one immutable record each
 *
 * `<principal>` is the name percent-encoded (dots too), so `/`, `..`, spaces, `&`, `#` and non-ASCII
 * letters can neither escape the folder nor collide.
 */

/** A principal name as one safe path segment. */
export function principalSegment(principal: string): string {
  return encodeURIComponent(principal).replace(
    /[.!'()*~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The key (relative path) of a principal's latest snapshot. */
export function snapshotKey(principal: string): string {
  return `snapshots/${principalSegment(principal)}.json`;
}

/** The key (relative path) of a change record. */
export function changeRecordKey(principal: string, changeId: string): string {
  return `history/${principalSegment(principal)}/${changeId}.json`;
}
