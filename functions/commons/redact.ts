/**
 * Cuts secrets (the BigState API key, session tokens) out of text that came from elsewhere, such as a server's
 * error description or an echoed body, before it goes into an error message, a log line or a notification.
 *
 * A server that echoes what it received may hand a secret back in another encoding than it was sent in, so each
 * secret is searched in the forms it plausibly takes on the way:
 * - as it is, and with its letters in any case (a server that upper- or lower-cases what it echoes);
 * - URL-encoded, character by character, so that `encodeURIComponent`, form encoding (`+` for a space), percent
 *   escapes in either hex case, double encoding (`%252B`) and raw characters mixed with escaped ones all match;
 * - JSON-escaped (`\"`, `\\`, `\/`, `\uXXXX`), also mixed with the forms above;
 * - base64 and base64url, padded or not, and inside a longer base64 blob (a Basic credential, a token) at each of
 *   the three byte alignments.
 */

/** What a secret is replaced with. */
export const REDACTED = 'REDACTED';

/**
 * Secrets shorter than this are not searched. One to three characters occur by chance in almost any text, and
 * their encoded forms even more often: redacting them would blank out the message while protecting nothing (a
 * secret that short is guessed faster than read). Real keys and tokens are far longer.
 */
export const MIN_SECRET_LENGTH = 4;

/** Shortest base64 run searched for inside a longer blob: shorter runs would match unrelated data by chance. */
const MIN_BASE64_CORE = 8;

/** Longest text a one-character form of a secret can take: `%255cuD83D` per UTF-16 unit, two units at most. */
const MAX_FORM_PER_CHARACTER = 20;

/** Options of `redactSecrets`. */
export interface RedactOptions {
  /**
   * Length of the result at most, an ellipsis included: a server's text is evidence, not a payload to forward.
   * `Infinity` keeps the whole text. @default 300
   */
  readonly maxLength?: number;
}

/**
 * Replaces every occurrence of each secret, in any of the forms listed above, with `REDACTED`, then caps the text
 * at `maxLength` characters with an ellipsis. Secrets shorter than MIN_SECRET_LENGTH are ignored.
 * @throws RangeError when `maxLength` is not a positive integer or Infinity.
 */
export function redactSecrets(text: string, secrets: readonly string[], options: RedactOptions = {}): string {
  const maxLength = options.maxLength ?? 300;
  if (!(maxLength >= 1) || (Number.isFinite(maxLength) && !Number.isInteger(maxLength))) {
    throw new RangeError(`maxLength must be a positive integer or Infinity; got ${String(maxLength)}`);
  }
  // Longest first: a secret that contains a shorter one must be matched before the shorter one breaks it up.
  const searched = [...new Set(secrets)]
    .filter((secret) => secret.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  let result = limitInput(text, searched, maxLength);
  for (const secret of searched) {
    result = result.replace(textForms(secret), REDACTED).replace(base64Forms(secret), REDACTED);
  }
  return cap(result, maxLength);
}

/**
 * Only the start of a huge text can reach the capped result: each visible `REDACTED` stands for one match of at
 * most `longest` characters. Cutting the rest first keeps the cost of the search bounded whatever the server sent.
 */
function limitInput(text: string, secrets: readonly string[], maxLength: number): string {
  if (!Number.isFinite(maxLength) || secrets.length === 0) return text;
  const longest = Math.max(...secrets.map((secret) => secret.length)) * MAX_FORM_PER_CHARACTER + 6;
  const limit = maxLength + (Math.ceil(maxLength / REDACTED.length) + 1) * longest;
  return text.length > limit ? text.slice(0, limit) : text;
}

/** A backslash, also percent-encoded (once or twice), as it starts a JSON escape. */
const BACKSLASH = String.raw`(?:\\|%(?:25)?5C)`;

/** JSON's two-character escapes of the characters a key or token may hold. */
const JSON_SHORT_ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/' };

/**
 * The secret with each character in any of its textual forms (raw, either case, percent-encoded, JSON-escaped),
 * matched case-insensitively, which also covers either hex case of the escapes.
 */
function textForms(secret: string): RegExp {
  return new RegExp(Array.from(secret, characterForms).join(''), 'gi');
}

function characterForms(character: string): string {
  const forms = new Set<string>();
  const short = JSON_SHORT_ESCAPES[character];
  if (short !== undefined) forms.add(`${BACKSLASH}(?:${escapeRegExp(short)}|${percentBytes(short)})`);
  const variants = [character, character.toLowerCase(), character.toUpperCase()].filter(
    // `ß` upper-cases to `SS`: such a variant is not a one-character form.
    (variant) => Array.from(variant).length === 1,
  );
  for (const variant of new Set(variants)) {
    forms.add(jsonUnicode(variant));
    forms.add(percentBytes(variant));
  }
  for (const variant of new Set(variants)) forms.add(escapeRegExp(variant));
  // Form encoding writes a space as `+`; a server that form-decodes what it echoes turns a `+` into a space.
  if (character === ' ') forms.add(String.raw`\+`);
  if (character === '+') forms.add(' ');
  return `(?:${[...forms].join('|')})`;
}

/** `%XX` for each UTF-8 byte, the `%` itself possibly encoded again (`%25XX`). */
function percentBytes(character: string): string {
  return [...Buffer.from(character, 'utf8')].map((byte) => `%(?:25)?${hex(byte, 2)}`).join('');
}

/** `\uXXXX` for each UTF-16 unit (a surrogate pair for characters beyond the BMP). */
function jsonUnicode(character: string): string {
  let pattern = '';
  for (let i = 0; i < character.length; i++) pattern += `${BACKSLASH}u${hex(character.charCodeAt(i), 4)}`;
  return pattern;
}

/**
 * The secret's base64 and base64url forms (case-sensitive). Besides the whole encoding with optional padding, the
 * encoding inside a longer blob at each byte alignment: with `shift` unknown bytes before the secret, the first
 * `ceil(shift * 4 / 3)` characters and the last partial one also carry bits of the neighbours, so only the core in
 * between is searched, and only when it is at least MIN_BASE64_CORE characters long.
 */
function base64Forms(secret: string): RegExp {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = [`${base64Pattern(bytes.toString('base64').replace(/=+$/, ''))}(?:=|%3[dD]){0,2}`];
  for (const shift of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes, Buffer.alloc(2)]).toString('base64');
    const core = encoded.slice(Math.ceil((shift * 4) / 3), Math.floor(((shift + bytes.length) * 4) / 3));
    if (core.length >= MIN_BASE64_CORE) forms.push(base64Pattern(core));
  }
  return new RegExp(forms.join('|'), 'g');
}

/** Base64 text where `+` and `/` may also be base64url's `-` and `_`, percent-encoded, or (`/`) JSON-escaped. */
function base64Pattern(encoded: string): string {
  return Array.from(encoded, (c) => {
    if (c === '+') return String.raw`(?:\+|-|%2[bB])`;
    if (c === '/') return String.raw`(?:\/|_|%2[fF]|\\\/)`;
    return c;
  }).join('');
}

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** The text cut to `maxLength` characters, the last of them an ellipsis, never splitting a surrogate pair. */
function cap(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  let end = maxLength - 1;
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}
