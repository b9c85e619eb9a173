import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { buildReportModel } from '../../functions/report/build.js';
import {
  CSV_BOM,
  CSV_COLUMNS,
  csvChunks,
  csvField,
  FORMULA_CHARACTERS,
  neutralise,
  renderCsv,
  renderCsvBytes,
  unneutralise,
} from '../../functions/report/csv.js';
import type { ReportModel } from '../../functions/report/model.js';
import { daysAgo, HOST, HOSTILE_NAMES, NOW, stateOf } from './fixtures.js';

const model = (
  states: Parameters<typeof buildReportModel>[0],
  maxKeyAgeDays: number | null = 90,
): ReportModel => buildReportModel(states, { generatedAt: NOW, runId: 'run-42', host: HOST, maxKeyAgeDays });

/** The CSV as a well-kept parser reads it, strictly: records as arrays of fields. */
const records = (csv: string): string[][] =>
  parse(csv, { bom: true, relax_quotes: false, relax_column_count: false, skip_empty_lines: false });

const FORMULA_STARTS = ['=', '+', '-', '@', '\t', '\r'];

describe('renderCsv', () => {
  it('starts with a UTF-8 byte-order mark and a header row, and ends every record with CRLF', () => {
    const csv = renderCsv(model([stateOf('root', ['a', 'b'])]));
    expect(csv.startsWith(`${CSV_BOM}principal,display name,type,key,first seen,`)).toBe(true);
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
    expect(csv.split('\r\n')).toHaveLength(4);
    expect(renderCsv(model([]), { bom: false })).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
    expect(Buffer.from(csv, 'utf8').subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  });

  it('writes one row per key with every column', () => {
    const csv = renderCsv(
      model([
        stateOf(
          'tram_client',
          [
            { name: 'made', firstSeenDaysAgo: 5, attributes: { createdAt: '2025-01-02T03:04:05Z' } },
            { name: 'seen', firstSeenDaysAgo: 12 },
          ],
          { info: { type: 1, displayName: 'Client for tram app' } },
        ),
      ]),
    );
    const rows = parse(csv, { bom: true, columns: true }) as Array<Record<string, string>>;
    expect(rows).toEqual([
      {
        principal: 'tram_client',
        'display name': 'Client for tram app',
        type: 'application',
        key: 'made',
        'first seen': daysAgo(5),
        'last seen': daysAgo(0),
        'created at': '2025-01-02T03:04:05.000Z',
        'age days': '695',
        'age from': 'created',
        stale: 'yes',
      },
      {
        principal: 'tram_client',
        'display name': 'Client for tram app',
        type: 'application',
        key: 'seen',
        'first seen': daysAgo(12),
        'last seen': daysAgo(0),
        'created at': '',
        'age days': '12',
        'age from': 'first-seen',
        stale: 'no',
      },
    ]);
  });

  it('quotes fields holding a quote, a comma, CR or LF, doubling the quotes (RFC 4180)', () => {
    expect(csvField('plain name')).toBe('plain name');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('cr\rin')).toBe('"cr\rin"');
    expect(csvField('')).toBe('');
    const csv = renderCsv(model([stateOf('p', ['it\'s & "quoted"', 'comma, inside', 'line\nbreak'])]), {
      bom: false,
    });
    expect(csv).toContain('\r\np,,,"comma, inside",');
    expect(csv).toContain('\r\np,,,"it\'s & ""quoted""",');
    expect(csv).toContain('\r\np,,,"line\nbreak",');
  });

  it('neutralises formulas: a cell starting with =, +, -, @, tab or CR gets a leading quote', () => {
    for (const start of FORMULA_STARTS) {
      expect(neutralise(`${start}x`)).toBe(`'${start}x`);
      expect(unneutralise(neutralise(`${start}x`))).toBe(`${start}x`);
    }
    expect(neutralise('-foo')).toBe("'-foo");
    expect(neutralise('a=b')).toBe('a=b');
    expect(neutralise("'plain")).toBe("'plain");
    // A name that already looks neutralised gets one more quote, so the exact name can be told back.
    expect(neutralise("'-foo")).toBe("''-foo");
    expect(unneutralise("''-foo")).toBe("'-foo");
    expect(unneutralise("'plain")).toBe("'plain");
    expect(csvField('=1+1')).toBe("'=1+1");
    expect(csvField('\rleading-cr')).toBe('"\'\rleading-cr"');
  });

  it('neutralises NUL (OWASP ASVS 1.2.10) and the full-width signs too, and only at the start', () => {
    for (const start of ['\0', '＝', '＋', '－', '＠']) {
      expect(FORMULA_CHARACTERS).toContain(start);
      expect(neutralise(`${start}HYPERLINK("http://evil")`)).toBe(`'${start}HYPERLINK("http://evil")`);
      expect(neutralise(`'${start}x`)).toBe(`''${start}x`);
      expect(unneutralise(`''${start}x`)).toBe(`'${start}x`);
      expect(neutralise(`a${start}`)).toBe(`a${start}`);
    }
    for (const start of FORMULA_CHARACTERS) expect(unneutralise(neutralise(`${start}x`))).toBe(`${start}x`);
    // Look-alikes that no spreadsheet reads as a formula stay as they are.
    for (const plain of ['\u00A0=x', ' =x', '\u2212x', '\nx', '#x', '_x'])
      expect(neutralise(plain)).toBe(plain);
  });

  it('round-trips hostile names through a real CSV parser, with formulas neutralised', () => {
    const names = [...HOSTILE_NAMES, "'-already", 'zürich 日本 🙂'];
    const principal = '=cmd|"/c calc"!A1, & co';
    const displayName = '@SUM(1+1)\t"x"';
    const csv = renderCsv(model([stateOf(principal, names, { info: { type: 2, displayName } })]));
    const [header, ...rows] = records(csv);
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(names.length);
    const byName = new Map(rows.map((row) => [unneutralise(row[3] as string), row]));
    for (const name of names) {
      const row = byName.get(name);
      expect(row, name).toBeDefined();
      if (row === undefined) continue;
      expect(row).toHaveLength(CSV_COLUMNS.length);
      expect(unneutralise(row[0] as string)).toBe(principal);
      expect(unneutralise(row[1] as string)).toBe(displayName);
      expect(row[2]).toBe('user');
      // What a spreadsheet sees: no cell of the row starts a formula.
      for (const cell of row) expect(FORMULA_STARTS).not.toContain(cell[0]);
    }
    expect(byName.get('=HYPERLINK("http://evil","x")')?.[3]).toBe('\'=HYPERLINK("http://evil","x")');
    expect(byName.get('+1')?.[3]).toBe("'+1");
    expect(byName.get('-2')?.[3]).toBe("'-2");
    expect(byName.get('@x')?.[3]).toBe("'@x");
    expect(byName.get('\tleading-tab')?.[3]).toBe("'\tleading-tab");
    expect(byName.get('\rleading-cr')?.[3]).toBe("'\rleading-cr");
    expect(byName.get('<script>alert(1)</script>')?.[3]).toBe('<script>alert(1)</script>');
    expect(byName.get('bidi\u202Etxt.exe')?.[3]).toBe('bidi\u202Etxt.exe');
    expect(byName.get("'-already")?.[3]).toBe("''-already");
  });

  it('has no row for a principal with no keys, and only the header for an empty inventory', () => {
    const csv = renderCsv(model([stateOf('empty', []), stateOf('one', ['k'])]));
    const [, ...rows] = records(csv);
    expect(rows.map((row) => row[0])).toEqual(['one']);
    expect(records(renderCsv(model([])))).toEqual([[...CSV_COLUMNS]]);
  });

  it('gives the same file as UTF-8 bytes, encoded chunk by chunk', () => {
    const names = Array.from({ length: 3000 }, (_, i) => `key-${i}-zürich-日本-${'x'.repeat(20)}`);
    const big = model([stateOf('p', names)]);
    const chunks = [...csvChunks(big)];
    expect(chunks[0]).toBe(CSV_BOM);
    expect(chunks.length).toBeGreaterThan(3);
    // Chunks of about 64 Ki characters: each full one just past the mark (by less than a row), the last the rest,
    // never an empty one, and every chunk ends with a whole record.
    const rows = chunks.slice(1);
    for (const chunk of rows.slice(0, -1)) {
      expect(chunk.length).toBeGreaterThanOrEqual(64 * 1024);
      expect(chunk.length).toBeLessThan(64 * 1024 + 200);
    }
    expect(rows.at(-1)?.length).toBeGreaterThan(0);
    expect(rows.at(-1)?.length).toBeLessThan(64 * 1024);
    for (const chunk of rows) expect(chunk.endsWith('\r\n')).toBe(true);
    const bytes = renderCsvBytes(big);
    expect(bytes.equals(Buffer.from(renderCsv(big), 'utf8'))).toBe(true);
    expect(records(bytes.toString('utf8'))).toHaveLength(names.length + 1);
    expect(renderCsvBytes(big, { bom: false }).subarray(0, 9).toString()).toBe('principal');
  });
});
