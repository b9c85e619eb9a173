/**
 * "Did you mean ...?" for a mistyped setting (a `cdk.json` key, a CLI option): the nearest of a few known names,
 * by edit distance.
 */

/**
 * The optimal-string-alignment distance between two strings: insertions, deletions, substitutions and swaps
 * of two neighbouring characters each cost 1 (`principal` → `principals` is 1, `shcedule` → `schedule` is 1).
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: two back for a swap, one back for the rest.
  let before: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (previous[j] ?? 0) + 1, // delete a[i-1]
        (current[j - 1] ?? 0) + 1, // insert b[j-1]
        (previous[j - 1] ?? 0) + cost, // substitute
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, (before[j - 2] ?? 0) + 1); // swap two neighbours
      }
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** Case and the separators people add (`bigstate-host`, `bigstate_host`) are not what tells two keys apart. */
const normalize = (name: string): string => name.toLowerCase().replace(/[-_.\s]/g, '');

/**
 * The known name nearest to `name`, or undefined when none is near enough to be the one meant.
 *
 * Near enough: at most 2 edits (3 for names of 9 characters or more), ignoring case and `-`, `_`, `.`; or one
 * name holding the other (at least 4 characters), as `host` in `bigstateHost`. Ties go to the name listed first.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const wanted = normalize(name);
  let best: { readonly name: string; readonly distance: number } | undefined;
  for (const candidate of known) {
    const other = normalize(candidate);
    const distance = editDistance(wanted, other);
    const limit = wanted.length >= 9 ? 3 : 2;
    const contained =
      Math.min(wanted.length, other.length) >= 4 && (other.includes(wanted) || wanted.includes(other));
    if ((distance <= limit || contained) && (best === undefined || distance < best.distance)) {
      best = { name: candidate, distance };
    }
  }
  return best?.name;
}
