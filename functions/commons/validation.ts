/**
 * Validation of the configuration values the product contract names, shared by the CDK stack (context
 * keys), the Lambda (environment) and the CLI (flags), so the three agree on what is valid.
 */
// zod's mini API: tree-shakeable, so the Lambda bundle carries only the checks used here.
import * as z from 'zod/mini';
import { quotedName } from './text.js';

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/** True for hosts that never leave the machine: the only ones where plain `http` is allowed. */
export function isLoopbackHost(hostname: string): boolean {
  // A fully qualified name may end in a dot (`localhost.`): the same host.
  return LOOPBACK.test(hostname.replace(/\.$/, ''));
}

/** A BigState base URL: `https`, or `http` on a loopback host; no query or fragment. */
export const hostSchema = z.string({ error: 'must be a URL string' }).check(
  z.trim(),
  z.minLength(1, 'is required'),
  z.refine((value) => URL.canParse(value), {
    error: 'must be an absolute URL such as https://api.bigstate.dev',
    abort: true,
  }),
  z.refine((value) => {
    const url = new URL(value);
    return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
  }, 'must use https (plain http is accepted for loopback hosts only)'),
  z.refine((value) => {
    const url = new URL(value);
    return url.search === '' && url.hash === '' && url.username === '' && url.password === '';
  }, 'must not carry a query, fragment or credentials'),
);

/** The four glob forms of the seed (`x`, `*x`, `x*`, `*x*`), `*` alone meaning every key. */
export const patternSchema = z.string({ error: 'must be a string' }).check(
  z.minLength(1, 'must not be empty'),
  z.refine(
    (value) => value === '*' || /^\*?[^*]+\*?$/.test(value),
    'must be one of the forms x, *x, x*, *x* (a * only at the start or end)',
  ),
);

/** Every UTF-16 code unit of `text` for which `test` holds is absent. */
const none = (text: string, test: (unit: number) => boolean): boolean => {
  for (let i = 0; i < text.length; i += 1) if (test(text.charCodeAt(i))) return false;
  return true;
};

/**
 * One principal name, as a person types it into `cdk.json`, `-c principals=...` or `--principal`. Names are
 * data and every text for people escapes them (`commons/text.ts`), so this refuses only what is almost
 * surely a mistake, or a trick, in a hand-written list, and could not name a real principal faithfully:
 * - C0 controls, DEL and C1 controls (U+0080-U+009F): a pasted line break or tab, or text decoded with the
 *   wrong code page;
 * - a lone surrogate: not text at all (invalid UTF-16); it cannot go into a URL (`encodeURIComponent`
 *   throws) nor into UTF-8 without turning into U+FFFD, i.e. into another principal's name;
 * - the line and paragraph separators U+2028 and U+2029: line breaks that JSON lets through unescaped;
 * - the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): formatting instructions, not
 *   letters, and the "Trojan Source" trick that makes a reviewer read a configured name as another.
 * The bidi marks U+200E, U+200F and U+061C are accepted: zero-width marks that names in
 * Arabic and Hebrew legitimately hold, and that carry no state a later character could inherit.
 * The checks are shared with every schema that takes a name (a manual invocation's `principals` too).
 */
export const principalNameChecks = [
  z.refine<string>((value) => value.trim() !== '', 'a principal name must not be blank'),
  z.refine<string>(
    (value) => none(value, (unit) => unit < 0x20 || (unit >= 0x7f && unit <= 0x9f)),
    'a principal name must not hold control characters',
  ),
  z.refine<string>(
    (value) => value.isWellFormed(),
    'a principal name must not hold a lone surrogate (invalid UTF-16)',
  ),
  z.refine<string>(
    (value) => none(value, (unit) => unit === 0x2028 || unit === 0x2029),
    'a principal name must not hold a line or paragraph separator (U+2028, U+2029)',
  ),
  z.refine<string>(
    (value) =>
      none(value, (unit) => (unit >= 0x202a && unit <= 0x202e) || (unit >= 0x2066 && unit <= 0x2069)),
    'a principal name must not hold bidi embedding, override or isolate controls (U+202A-U+202E, U+2066-U+2069)',
  ),
] as const;

const principalName = z
  .string({ error: 'a principal name must be a string' })
  .check(z.minLength(1, 'a principal name must not be empty'), ...principalNameChecks);

/** A non-empty list of distinct principal names. */
export const principalListSchema = z
  .array(principalName, { error: 'must be a list of principal names' })
  .check(
    z.minLength(1, 'must name at least one principal'),
    z.superRefine((names, ctx) => {
      const seen = new Set<string>();
      for (const name of names) {
        if (seen.has(name)) ctx.addIssue({ code: 'custom', message: `lists ${quotedName(name)} twice` });
        seen.add(name);
      }
    }),
  );

/**
 * Reads a list given as a JSON array (`["a","b c"]`) or a comma-separated string (`a, b c`), or passed
 * through when it already is an array (a cdk.json value).
 */
export function parseList(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (text.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch {
      return value; // not an array: the schema then says so, naming the key
    }
  }
  return text === '' ? [] : text.split(',').map((part) => part.trim());
}

/** Principals as a JSON array or comma list. */
export const principalsSchema = z.pipe(z.transform(parseList), principalListSchema);

/** The first problem zod found, as "`key` must ..." with the path inside the value when there is one. */
export function formatIssue(key: string, error: z.core.$ZodError): string {
  const issue = error.issues[0];
  if (!issue) return `${key} is invalid`;
  const where = issue.path.length > 0 ? `${key}[${issue.path.map(String).join('][')}]` : key;
  return `${where} ${issue.message}`;
}
