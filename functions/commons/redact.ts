/**
 * Cuts secrets (the BigState API key, session tokens) out of text that came from elsewhere, such as a server's
 * error description or an echoed body, before it goes into an error message, a log line or a notification.
 *
 * Two tools: `echoesSecret` decides whether a text echoes a secret in any recognisable form (it normalises a copy
 * through layers of encoding, see there), and `withholdOrRedact` withholds such a text as a whole. `redactSecrets`
 * below points at the forms it can match in place and replaces them; it is the safety net for a text that is kept.
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
export function cap(text: string, maxLength: number): string {
  if (text.length <= maxLength) return text;
  let end = maxLength - 1;
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

/**
 * How much of a text `echoesSecret` examines: its first 8 KiB characters. Callers that show a server's text must
 * show nothing past this window (slice the text to it first, as `withholdOrRedact` does), so every character that
 * can be shown has been examined. A server's description is capped at a few hundred characters when shown; the
 * window keeps the work small and bounded whatever the server sent (a 100 KB or 100 MB body costs the same).
 */
export const ECHO_SCAN_CHARS = 8 * 1024;

/** Rounds of decoding (percent, HTML entities, JSON/JS escapes, each once per round) before giving up. */
const MAX_DECODE_ROUNDS = 6;

/** Runs that may be base64 (both alphabets), searched decoded: at least MIN_BASE64_CORE characters. */
const BASE64_RUN = new RegExp(`[A-Za-z0-9+/_-]{${MIN_BASE64_CORE},}`, 'g');

/** White space and invisible characters a wrapped or padded echo may hold inside the secret. */
const INVISIBLE = /[\s\u00ad\u180e\u200b-\u200f\u2060-\u2064\ufeff]+/g;

/** What `echoesSecret` searches: lower-cased text forms, and lower-cased base64 forms in the standard alphabet. */
interface EchoNeedles {
  readonly text: readonly string[];
  readonly base64: readonly string[];
}

/**
 * Whether a text holds any of the secrets in any form it could plausibly take when echoed back by a server. Unlike
 * `redactSecrets`, it does not point at where: it answers whether the text must be withheld as a whole, and it
 * normalises a copy of the text to see through layers of encoding and wrapping.
 *
 * Only the first ECHO_SCAN_CHARS characters are examined. The copy is decoded in rounds (at most six) until
 * nothing changes: percent escapes (`%XX` in either hex case as UTF-8, `%uXXXX`; malformed ones stay), HTML
 * entities (`&quot; &amp; &lt; &gt; &apos; &nbsp;`, the named ones for ASCII punctuation such as `&sol;`, and
 * numeric `&#NN;` / `&#xHH;`), JSON and JavaScript escapes (`\"`, `\\`, `\/`, `\n`..., `\uXXXX`, `\u{...}`,
 * `\xHH`). After every round, with white space and invisible characters removed, the text is searched without
 * regard to case for each secret:
 * - as it is, with its spaces form-encoded (`+`) or a `+` form-decoded to a space, reversed, and quoted-printable
 *   (`=3D` for `=`);
 * - cut: any run of more than half its characters (at least 10), as a server that truncates what it echoes shows;
 * - as hexadecimal (of the secret, and of it upper- and lower-cased, whole or such a run), in either case;
 * - as base64 or base64url at each of the three byte alignments, padded or not, of the secret as it is, upper- and
 *   lower-cased, URL-encoded and JSON-escaped (a server that lower-cases the base64 itself is also caught);
 * and every run of at least eight base64 characters is decoded (at each of its four character offsets) and the
 * decoded text searched the same way (one level: base64 of base64 is caught by the base64 forms above).
 *
 * The work is linear in the examined window times the (small) number of rounds, offsets and forms: a few
 * milliseconds for 8 KiB. Secrets shorter than MIN_SECRET_LENGTH are ignored, and so are forms that normalise to
 * fewer characters than that.
 */
export function echoesSecret(text: string, secrets: readonly string[]): boolean {
  const searched = [...new Set(secrets)].filter((secret) => secret.length >= MIN_SECRET_LENGTH);
  if (searched.length === 0 || text.length === 0) return false;
  const needles = echoNeedles(searched);
  const window = text.length > ECHO_SCAN_CHARS ? text.slice(0, ECHO_SCAN_CHARS) : text;
  return scanForEcho(window, needles, true);
}

/** Options of `withholdOrRedact`. */
export interface WithholdOptions extends RedactOptions {
  /**
   * What replaces a text that echoes a secret, or a function of the examined window returning it (called only
   * then, e.g. to name which secret was echoed). @default '(withheld: it echoed a secret)'
   */
  readonly withheld?: string | ((window: string) => string);
}

/**
 * A server's text as it may be shown: `withheld` when the text echoes one of the secrets in any form
 * `echoesSecret` recognises, else the text redacted by `redactSecrets` and capped at `maxLength` (300 by default).
 * Only the first ECHO_SCAN_CHARS characters can be shown, and they are exactly the ones examined.
 */
export function withholdOrRedact(
  text: string,
  secrets: readonly string[],
  options: WithholdOptions = {},
): string {
  const window = text.length > ECHO_SCAN_CHARS ? text.slice(0, ECHO_SCAN_CHARS) : text;
  if (echoesSecret(window, secrets)) {
    const { withheld = '(withheld: it echoed a secret)' } = options;
    return typeof withheld === 'string' ? withheld : withheld(window);
  }
  const maxLength = options.maxLength ?? 300;
  const shown = redactSecrets(window, secrets, { maxLength });
  // The window cut the text: say so, even when what is left fits.
  return window.length < text.length && !shown.endsWith('…') ? cap(`${shown}…`, maxLength) : shown;
}

/** Searches the text after each decoding round, and (when `decodeRuns`) the decoded base64 runs in it. */
function scanForEcho(text: string, needles: EchoNeedles, decodeRuns: boolean): boolean {
  const runs = new Set<string>();
  let current = text;
  for (let round = 0; ; round++) {
    const compact = current.replace(INVISIBLE, '');
    if (matchesNeedles(compact, needles)) return true;
    if (decodeRuns) for (const run of compact.match(BASE64_RUN) ?? []) runs.add(run);
    if (round >= MAX_DECODE_ROUNDS) break;
    const next = decodeOnce(current);
    if (next === current) break;
    current = next;
  }
  if (!decodeRuns || runs.size === 0) return false;
  // One text of every decoding, separated by a character no decoding removes or joins across.
  const decoded: string[] = [];
  for (const run of runs) {
    for (let offset = 0; offset < 4 && run.length - offset >= MIN_BASE64_CORE; offset++) {
      decoded.push(Buffer.from(run.slice(offset), 'base64').toString('utf8'));
    }
  }
  return scanForEcho(decoded.join('\u0000'), needles, false);
}

function matchesNeedles(compact: string, needles: EchoNeedles): boolean {
  const lower = compact.toLowerCase();
  // Compatibility forms too: a full-width `ｋｅｙ` or a ligature reads as the same letters.
  const folded = compact.normalize('NFKC').toLowerCase();
  for (const form of folded === lower ? [lower] : [lower, folded]) {
    if (needles.text.some((needle) => form.includes(needle))) return true;
    const canonical = form.replace(/-/g, '+').replace(/_/g, '/');
    if (needles.base64.some((needle) => canonical.includes(needle))) return true;
  }
  return false;
}

/** The forms of each secret `echoesSecret` searches for, lower-cased, without white space. */
function echoNeedles(secrets: readonly string[]): EchoNeedles {
  const text = new Set<string>();
  const base64 = new Set<string>();
  for (const secret of secrets) {
    const variants = new Set([secret, secret.replace(/ /g, '+'), secret.replace(/\+/g, ' ')]);
    for (const variant of variants) {
      const compact = variant.replace(INVISIBLE, '');
      text.add(compact);
      text.add(normaliseFully(variant));
      text.add(Array.from(compact).reverse().join(''));
      text.add(variant.replace(/=/g, '=3D').replace(/ /g, '=20'));
      // A server that cuts what it echoes still shows most of the key: any long enough piece of it counts.
      for (const piece of fragments(compact)) text.add(piece);
      for (const piece of fragments(normaliseFully(variant))) text.add(piece);
    }
    for (const cased of new Set([secret, secret.toUpperCase(), secret.toLowerCase()])) {
      text.add(Buffer.from(cased, 'utf8').toString('hex'));
      for (const piece of fragments(cased)) text.add(Buffer.from(piece, 'utf8').toString('hex'));
    }
    const encoded = new Set([
      secret,
      secret.toUpperCase(),
      secret.toLowerCase(),
      encodeURIComponent(secret),
      encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (pair) => pair.toLowerCase()),
      new URLSearchParams({ v: secret }).toString().slice(2),
      JSON.stringify(secret).slice(1, -1),
    ]);
    for (const form of encoded) for (const needle of base64Needles(form)) base64.add(needle);
  }
  const usable = (set: Set<string>) =>
    [...set]
      .flatMap((needle) => [needle.toLowerCase(), needle.normalize('NFKC').toLowerCase()])
      .filter((needle) => needle.length >= MIN_SECRET_LENGTH);
  return { text: [...new Set(usable(text))], base64: [...new Set(usable(base64))] };
}

/**
 * The pieces of a secret long enough to count as an echo of it: every run of more than half its characters (at
 * least FRAGMENT_MIN of them). Less than half a key leaves more than half of it to guess; more gives too much away.
 */
function fragments(secret: string): string[] {
  const characters = Array.from(secret);
  const length = Math.max(FRAGMENT_MIN, Math.floor(characters.length / 2) + 1);
  const pieces: string[] = [];
  for (let start = 0; start + length <= characters.length && length < characters.length; start++) {
    pieces.push(characters.slice(start, start + length).join(''));
  }
  return pieces;
}

/** The shortest piece of a secret `echoesSecret` counts as an echo of it (see `fragments`). */
const FRAGMENT_MIN = 10;

/** The standard-alphabet base64 of a text, unpadded, and its cores at each of the three byte alignments. */
function base64Needles(text: string): string[] {
  const bytes = Buffer.from(text, 'utf8');
  const needles = [bytes.toString('base64').replace(/=+$/, '')];
  for (const shift of [0, 1, 2]) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes, Buffer.alloc(2)]).toString('base64');
    const core = encoded.slice(Math.ceil((shift * 4) / 3), Math.floor(((shift + bytes.length) * 4) / 3));
    if (core.length >= MIN_BASE64_CORE) needles.push(core);
  }
  return needles;
}

/** The text decoded until nothing changes (bounded), white space removed: a secret as a normalised echo shows it. */
function normaliseFully(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_DECODE_ROUNDS; round++) {
    const next = decodeOnce(current);
    if (next === current) break;
    current = next;
  }
  return current.replace(INVISIBLE, '');
}

/** One round: percent escapes, then HTML entities, then JSON and JavaScript escapes. */
function decodeOnce(text: string): string {
  return decodeEscapes(decodeEntities(decodePercent(text)));
}

const UTF8 = new TextDecoder('utf-8', { fatal: false });

/** `%XX` runs as UTF-8 (an invalid sequence becomes U+FFFD) and `%uXXXX`; a malformed escape stays as it is. */
function decodePercent(text: string): string {
  if (!text.includes('%')) return text;
  return text
    .replace(/%u([0-9a-fA-F]{4})/g, (_, hexDigits: string) =>
      String.fromCharCode(Number.parseInt(hexDigits, 16)),
    )
    .replace(/(?:%[0-9a-fA-F]{2})+/g, (run) =>
      UTF8.decode(Uint8Array.from(run.slice(1).split('%'), (pair) => Number.parseInt(pair, 16))),
    );
}

/** Named entities of the characters a key or token may hold (HTML5 names), lower-cased. */
const ENTITIES: Readonly<Record<string, string>> = {
  quot: '"',
  amp: '&',
  lt: '<',
  gt: '>',
  apos: "'",
  nbsp: ' ',
  excl: '!',
  num: '#',
  dollar: '$',
  percnt: '%',
  lpar: '(',
  rpar: ')',
  ast: '*',
  midast: '*',
  plus: '+',
  comma: ',',
  period: '.',
  sol: '/',
  colon: ':',
  semi: ';',
  equals: '=',
  quest: '?',
  commat: '@',
  lsqb: '[',
  lbrack: '[',
  bsol: '\\',
  rsqb: ']',
  rbrack: ']',
  hat: '^',
  lowbar: '_',
  underbar: '_',
  grave: '`',
  lcub: '{',
  lbrace: '{',
  verbar: '|',
  vert: '|',
  rcub: '}',
  rbrace: '}',
  tilde: '~',
  dash: '-',
  hyphen: '-',
  newline: '\n',
  tab: '\t',
};

/** HTML entities: the named ones above (`;` required but for the legacy five), decimal and hex numeric ones. */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(
    /&(?:#[xX]([0-9a-fA-F]{1,6});?|#([0-9]{1,7});?|([A-Za-z]{2,8});|(amp|lt|gt|quot|apos)(?![A-Za-z;]))/gi,
    (entity, hexDigits?: string, decimal?: string, name?: string, legacy?: string) => {
      if (hexDigits !== undefined || decimal !== undefined) {
        return (
          codePoint(hexDigits === undefined ? Number(decimal) : Number.parseInt(hexDigits, 16)) ?? entity
        );
      }
      return ENTITIES[(name ?? legacy ?? '').toLowerCase()] ?? entity;
    },
  );
}

/** JSON and JavaScript escapes; an unknown `\c` stays as it is. */
function decodeEscapes(text: string): string {
  if (!text.includes('\\')) return text;
  return text.replace(
    /\\(?:u\{([0-9a-fA-F]{1,6})\}|u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|([\s\S]))/g,
    (sequence, braced?: string, unit?: string, byte?: string, single?: string) => {
      const hexDigits = braced ?? unit ?? byte;
      if (hexDigits !== undefined) {
        const value = Number.parseInt(hexDigits, 16);
        return unit === undefined ? (codePoint(value) ?? sequence) : String.fromCharCode(value);
      }
      return SINGLE_ESCAPES[single ?? ''] ?? sequence;
    },
  );
}

const SINGLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "'": "'",
  '\\': '\\',
  '/': '/',
  '`': '`',
  n: '\n',
  r: '\r',
  t: '\t',
  b: '\b',
  f: '\f',
  v: '\v',
  '0': '\0',
  '\n': '',
  '\r': '',
};

function codePoint(value: number): string | undefined {
  return Number.isInteger(value) && value >= 0 && value <= 0x10ffff ? String.fromCodePoint(value) : undefined;
}
