/**
 * The key inventory as CSV, for spreadsheets and scripts: every key of every principal, one row each, whatever the
 * size of the inventory (the HTML page may summarise; this file never does).
 *
 * - **RFC 4180.** Records end with CRLF (the last one too); a field holding `"`, `,`, CR or LF is quoted, and a
 *   `"` inside it doubled. A header row names the columns ({@link CSV_COLUMNS}).
 * - **UTF-8 with a byte-order mark** (U+FEFF first): without it Excel reads the file as the system's code page and
 *   garbles every non-ASCII name; LibreOffice, Google Sheets, Python's `utf-8-sig` and `csv-parse` (`bom: true`)
 *   skip it. A lone surrogate in a name (not text, so not UTF-8) becomes U+FFFD when the file is written.
 * - **Names exact, formulas neutralised.** Names are written as BigState has them (control and bidi characters
 *   included: this file is data, not a page), except that any cell starting with a formula character gets a
 *   leading `'`, so a spreadsheet shows it as text instead of running it as a formula (CSV injection): `=`, `+`,
 *   `-`, `@`, a tab, a carriage return and NUL (OWASP ASVS 5.0, 1.2.10, lists all but CR), and the full-width
 *   `＝`, `＋`, `－`, `＠`, which spreadsheets in East Asian locales may take as their ASCII forms. A key named
 *   `-foo` therefore reads `'-foo`. So that the exact name can always be told back, a cell that already starts
 *   with `'`s followed by one of those characters gets one more `'` (`'-foo` reads `''-foo`); a script reading the
 *   file drops one leading `'` from a cell made of `'`s followed by one of them ({@link unneutralise}).
 * - A principal with no keys has no row (the HTML page lists it).
 */
import type { ReportModel } from './model.js';
import { typeLabel } from './totals.js';

/** The header row, in order. */
export const CSV_COLUMNS = [
  'principal',
  'display name',
  'type',
  'key',
  'first seen',
  'last seen',
  'created at',
  'age days',
  'age from',
  'stale',
] as const;

/** The byte-order mark the file starts with. */
export const CSV_BOM = '\uFEFF';

/** Options of {@link renderCsv}. */
export interface RenderCsvOptions {
  /** Start with a UTF-8 byte-order mark. @default true */
  readonly bom?: boolean;
}

/** The characters that may start a formula (see the module's comment). */
export const FORMULA_CHARACTERS = ['=', '+', '-', '@', '\t', '\r', '\0', '＝', '＋', '－', '＠'] as const;
const FORMULA_CLASS = '[=+\\-@\\t\\r\\0＝＋－＠]';
/** A cell a spreadsheet may read as a formula: one of them first (after any `'`s). */
const FORMULA_START = new RegExp(`^'*${FORMULA_CLASS}`);
/** A neutralised cell: one or more `'`s, then one of them. */
const NEUTRALISED = new RegExp(`^'+${FORMULA_CLASS}`);
const NEEDS_QUOTES = /[",\r\n]/;

/** A cell a spreadsheet shows as text: a leading `'` before a formula's first character. */
export function neutralise(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

/** The exact value of a neutralised cell: what a script reading the CSV does to get names back. */
export function unneutralise(cell: string): string {
  return NEUTRALISED.test(cell) ? cell.slice(1) : cell;
}

/** One RFC 4180 field, neutralised. */
export function csvField(value: string): string {
  const cell = neutralise(value);
  return NEEDS_QUOTES.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

/** About how many characters each chunk of {@link csvChunks} holds. */
const CHUNK_CHARS = 64 * 1024;

/**
 * The CSV in chunks of about 64 Ki characters (the byte-order mark alone first), for a caller that encodes or
 * writes as it goes: a single string of a large inventory costs twice its size whenever one character of it is
 * outside Latin-1 (the mark itself is), and a chunk that is all Latin-1 stays one byte per character.
 */
export function* csvChunks(
  model: ReportModel,
  options: RenderCsvOptions = {},
): Generator<string, void, undefined> {
  if (options.bom !== false) yield CSV_BOM;
  let chunk = `${CSV_COLUMNS.join(',')}\r\n`;
  for (const principal of model.principals) {
    // The principal's columns are the same for each of its keys: quoted once.
    const prefix = [
      csvField(principal.principal),
      csvField(principal.info?.displayName ?? ''),
      csvField(typeLabel(principal.info?.type)),
    ].join(',');
    for (const key of principal.keys) {
      chunk += `${prefix},${csvField(key.name)},${csvField(key.firstSeen)},${csvField(key.lastSeen)},${csvField(
        key.createdAt ?? '',
      )},${csvField(String(key.ageDays))},${key.ageFrom},${key.stale ? 'yes' : 'no'}\r\n`;
      if (chunk.length >= CHUNK_CHARS) {
        yield chunk;
        chunk = '';
      }
    }
  }
  if (chunk !== '') yield chunk;
}

/** The inventory as CSV: a header row, then one row per key (principals and keys in the model's order). */
export function renderCsv(model: ReportModel, options: RenderCsvOptions = {}): string {
  return [...csvChunks(model, options)].join('');
}

/**
 * The same CSV as UTF-8 bytes, encoded chunk by chunk: what a run writes to S3 or a file. Needs about the size of
 * the file twice at its peak (the chunks, then the whole), where {@link renderCsv} and `Buffer.from` need up to
 * four times (a two-byte string, then the bytes).
 */
export function renderCsvBytes(model: ReportModel, options: RenderCsvOptions = {}): Buffer {
  const buffers: Buffer[] = [];
  let length = 0;
  for (const chunk of csvChunks(model, options)) {
    const buffer = Buffer.from(chunk, 'utf8');
    buffers.push(buffer);
    length += buffer.length;
  }
  return Buffer.concat(buffers, length);
}
