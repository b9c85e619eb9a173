/**
 * Hostile text for the tests of everything that shows names to people (guarantee 10 of the contract): the
 * characters a name may hold and a text for people must never show raw, a name that tries to forge lines of a
 * notice, and a detector written independently of `functions/commons/text.ts`.
 */

/** Every character the contract says a name may hold and a text for people must not show raw. */
export const HOSTILE: ReadonlyArray<readonly [string, string]> = [
  ['ESC', '\u001b[31m'],
  ['CR', '\r'],
  ['LF', '\n'],
  ['NUL', '\u0000'],
  ['DEL', '\u007f'],
  ['NEL (C1)', '\u0085'],
  ['CSI (C1)', '\u009b'],
  ['RLO', '\u202e'],
  ['LRI', '\u2066'],
  ['LINE SEPARATOR', '\u2028'],
  ['PARAGRAPH SEPARATOR', '\u2029'],
  ['lone high surrogate', '\ud800'],
  ['lone low surrogate', '\udc00'],
];

/** What a forged name tries to add to a notice: lines of its own. */
export const FORGED = '\nChange id: chg-forged\nNo keys were removed.';

/** The raw characters that must never reach a text for people (a line break of our own aside). */
export function rawCharacters(text: string): string[] {
  return [...text].filter((character) => {
    const c = character.codePointAt(0) ?? 0;
    return (
      (c <= 0x1f && c !== 0x0a) ||
      (c >= 0x7f && c <= 0x9f) ||
      [0x061c, 0x200e, 0x200f, 0x2028, 0x2029].includes(c) ||
      (c >= 0x202a && c <= 0x202e) ||
      (c >= 0x2066 && c <= 0x2069) ||
      (c >= 0xd800 && c <= 0xdfff) // iterated by code point, a surrogate here is a lone one
    );
  });
}
