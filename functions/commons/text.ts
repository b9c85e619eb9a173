/**
 * Names are data (product contract, guarantee 10): whoever creates a key or a principal in BigState
 * chooses its name, and BigState's own error text reaches failure reasons. Every text meant for people
 * (e-mail bodies, terminal output, log lines) shows such text through these functions, so it can never
 * break a line (and forge the next line of a notice), drive a terminal (ESC, CSI) or reorder the text
 * around it (bidi controls). Machine channels (JSON, SNS message attributes) carry names exactly and
 * never use them.
 *
 * The characters escaped, as `\n`, `\r`, `\t` or `\uXXXX` (lowercase hex, as `JSON.stringify` writes):
 * - C0 controls U+0000-U+001F, DEL U+007F and C1 controls U+0080-U+009F (NEL U+0085 and CSI U+009B
 *   among them);
 * - the line and paragraph separators U+2028 and U+2029;
 * - the bidi embeddings and overrides U+202A-U+202E, the isolates U+2066-U+2069 and the marks U+200E,
 *   U+200F and U+061C;
 * - lone surrogates (a high surrogate without its low half, or a low one without its high half), which
 *   are not text at all and turn into U+FFFD, or worse, on the way to a reader.
 *
 * Every other character, letters of every script and emoji included, is shown as it is.
 */

// The characters above, as the body of a character class. With the `u` flag the class sees code points,
// so `\ud800-\udfff` matches only a surrogate that is not half of a pair.
const UNSAFE_CLASS =
  '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff';
const UNSAFE = new RegExp(`[${UNSAFE_CLASS}]`, 'u');
const UNSAFE_ALL = new RegExp(`[${UNSAFE_CLASS}]`, 'gu');
// The same, plus the quote and the backslash, which a quoted literal must escape to stay unambiguous.
const UNSAFE_IN_QUOTES = new RegExp(`[${UNSAFE_CLASS}"\\\\]`, 'gu');

const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '"': '\\"',
  '\\': '\\\\',
};

/** Every match of the patterns above is one UTF-16 code unit. */
const escapeCharacter = (character: string): string =>
  SHORT_ESCAPES[character] ?? `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** True when `text` holds a character that {@link displayText} escapes. */
export function hasUnsafeCharacters(text: string): boolean {
  return UNSAFE.test(text);
}

/**
 * True when {@link displayName} shows `name` as it is: not empty, no character it would escape, no white
 * space at either end (which a reader could not see), white space inside only as single plain spaces and no
 * character that merely looks blank (a run of blanks could make a mail client wrap the rest of the name onto what
 * looks like a line of its own), and not starting with `"` (so that a shown name starting with `"` is always a quoted
 * literal, never a name that merely looks like one).
 */
export function isPlainName(name: string): boolean {
  return (
    name !== '' &&
    !name.startsWith('"') &&
    !/^\s|\s$|\s\s|[^\S ]/u.test(name) &&
    !LOOKS_BLANK.test(name) &&
    !UNSAFE.test(name)
  );
}

/**
 * Characters that show as nothing or as blank without being white space: the default-ignorable ones (zero-width
 * space, word joiner, Hangul fillers, soft hyphen, ...) and the braille blank U+2800. Between spaces they make a
 * run that looks like one, with more places to wrap. Left out: the zero-width joiner and the variation selectors,
 * which emoji need (`❤️`, `👩‍💻`).
 */
const LOOKS_BLANK = /(?![\u200d\ufe00-\ufe0f\u{e0100}-\u{e01ef}])[\p{Default_Ignorable_Code_Point}\u2800]/u;

/**
 * A name as a JSON-style string literal, always quoted: `"svc \"a\" & b"`, `"evil\nChange id: x"`.
 * Escapes `"`, `\` and every character listed in this module; the result is `JSON.parse`-able and gives
 * back the name exactly (a lone surrogate included). For a name in running text ("principal "x"
 * changed"), where quotes show where it starts and ends.
 */
export function quotedName(name: string): string {
  return `"${name.replace(UNSAFE_IN_QUOTES, escapeCharacter)}"`;
}

/**
 * A name for people: the name as it is when {@link isPlainName} (`tram_client-01`, `zürich ops`,
 * `日本`), else {@link quotedName} (`"a\u001b[31m"`, `" padded "`, `""`). For lists and tables, where
 * almost every name is plain and quotes would only add noise; a reader tells the two forms apart by the
 * leading `"`. Either way the name stays on its line and cannot reorder the text around it.
 */
export function displayName(name: string): string {
  return isPlainName(name) ? name : quotedName(name);
}

/**
 * Free text for people (a failure reason, BigState's error description, a log message): the same
 * characters escaped as in {@link quotedName}, without quotes and leaving `"` and `\` as they are, so
 * paths and quoted names inside the text stay readable. One line, no control characters, no bidi
 * controls; not meant to be parsed back.
 */
export function displayText(text: string): string {
  return text.replace(UNSAFE_ALL, escapeCharacter);
}
