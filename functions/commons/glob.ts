/**
 * BigState's glob patterns (`x`, `*x`, `x*`, `*x*`, and `*` alone): only a leading and a trailing `*` are
 * wildcards, every other character (`?`, `[`, `*` in the middle cannot occur) is itself. The audit uses it where
 * it must know what BigState's listing would match: which principals a `principalPattern` covers.
 */

/** Whether `name` matches `pattern` as BigState matches it; an undefined pattern matches everything. */
export function matchesPattern(name: string, pattern: string | undefined): boolean {
  if (pattern === undefined || pattern === '*') return true;
  const leading = pattern.startsWith('*');
  const trailing = pattern.length > 1 && pattern.endsWith('*');
  const core = pattern.slice(leading ? 1 : 0, trailing ? -1 : undefined);
  if (leading && trailing) return name.includes(core);
  if (leading) return name.endsWith(core);
  if (trailing) return name.startsWith(core);
  return name === core;
}
