/**
 * The key inventory report of a local state folder: `reports/latest.html` and `reports/latest.csv`, made from the
 * principals' states the CLI keeps there (never from the history).
 *
 *   npm run report -- [--state DIR] [--out FILE.html] [--csv FILE.csv] [--max-key-age-days N] [-h | --help]
 *
 * Prints the paths it wrote. Exit code 0 when written; 2 on any error: a usage error (one line,
 * `usage error: ... (see --help)`), a state folder that does not exist, a state that cannot be read.
 *
 * {@link writeLocalReport} is what the audit CLI and the demo call at the end of a real run. It reads the states
 * without the state lock: each state file is replaced whole by a rename, so it reads either the old or the new one.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileSnapshotStore } from '../adapters/local/fs-store.js';
import { describeError } from '../commons/errors.js';
import { displayText } from '../commons/text.js';
import type { Snapshot } from '../core/ports.js';
import { buildReportModel, hostOfStates } from '../report/build.js';
import { renderCsvBytes } from '../report/csv.js';
import { HTML_MAX_ROWS, renderHtml } from '../report/html.js';
import { reportTotals } from '../report/totals.js';
import { CliUsageError, DEFAULT_STATE_DIR, parseCommandLine, requirePaths, usageErrorLine } from './args.js';

/** Where the report goes in a state folder, as in S3 next to the snapshots. */
export const REPORT_HTML = join('reports', 'latest.html');
export const REPORT_CSV = join('reports', 'latest.csv');

/** Options of {@link writeLocalReport}. */
export interface LocalReportOptions {
  /** The HTML file. @default `<stateDir>/reports/latest.html` */
  readonly html?: string | undefined;
  /** The CSV file. @default `<stateDir>/reports/latest.csv` */
  readonly csv?: string | undefined;
  /** The key-age policy; `null` or absent: none. */
  readonly maxKeyAgeDays?: number | null | undefined;
  /** The run that makes the report. @default `local` */
  readonly runId?: string | undefined;
  /** @default now */
  readonly now?: Date | undefined;
  /** Principals whose run just failed, with the reason (see `buildReportModel`). */
  readonly failures?: ReadonlyMap<string, string> | undefined;
  /**
   * States the caller already holds (a run's `summary.states`: `null` for a principal read with none): not read
   * again. The folder's other principals (not in this run) are read.
   */
  readonly known?: ReadonlyMap<string, Snapshot | null> | undefined;
}

/** What {@link writeLocalReport} wrote. */
export interface LocalReport {
  /** Absolute paths. */
  readonly html: string;
  readonly csv: string;
  readonly principals: number;
  readonly keys: number;
  /** The HTML shows per-principal totals instead of every key (more than `HTML_MAX_ROWS` keys). */
  readonly summarised: boolean;
}

/**
 * Every principal's state in a state folder, read through the store (sorted by the model); a principal in `known`
 * is taken from there instead of read again.
 */
export async function readLocalStates(
  stateDir: string,
  known: ReadonlyMap<string, Snapshot | null> = new Map(),
): Promise<Snapshot[]> {
  const store = new FileSnapshotStore(stateDir);
  const states: Snapshot[] = [];
  for await (const principal of store.principalsWithState()) {
    const state = known.has(principal) ? known.get(principal) : (await store.read(principal))?.snapshot;
    if (state !== undefined && state !== null) states.push(state);
  }
  return states;
}

/**
 * Builds the report of the states in `stateDir` and writes its HTML and CSV (each written aside and renamed
 * over the old one, so a reader never sees half a report). Throws StorageError when a state cannot be read, and
 * the file system's error when a report cannot be written.
 */
export async function writeLocalReport(
  stateDir: string,
  options: LocalReportOptions = {},
): Promise<LocalReport> {
  const states = await readLocalStates(stateDir, options.known);
  const model = buildReportModel(states, {
    generatedAt: options.now ?? new Date(),
    runId: options.runId ?? 'local',
    host: hostOfStates(states),
    maxKeyAgeDays: options.maxKeyAgeDays ?? null,
    ...(options.failures === undefined ? {} : { failures: options.failures }),
  });
  const html = resolve(options.html ?? join(stateDir, REPORT_HTML));
  const csv = resolve(options.csv ?? join(stateDir, REPORT_CSV));
  await writeAtomically(html, renderHtml(model, { csvName: basename(csv) }));
  await writeAtomically(csv, renderCsvBytes(model));
  const totals = reportTotals(model);
  return {
    html,
    csv,
    principals: totals.principals,
    keys: totals.keys,
    summarised: totals.keys > HTML_MAX_ROWS,
  };
}

async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, data);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

const USAGE = `Usage: npm run report -- [--state DIR] [--out FILE.html] [--csv FILE.csv] [--max-key-age-days N]

Writes the key inventory report of a local state folder (the audit CLI's --state): one self-contained HTML
page and a CSV of every key, made from the principals' states.

Options:
  --state DIR             the state folder                         default: ${DEFAULT_STATE_DIR}
  --out FILE.html         the HTML report                          default: DIR/${REPORT_HTML}
  --csv FILE.csv          the CSV report                           default: DIR/${REPORT_CSV}
  --max-key-age-days N    mark keys older than N days as stale     default: none
  -h, --help              show this text

Exit code: 0 written, 2 error (a usage error, no state folder, a state that cannot be read).
`;

const OPTIONS = {
  state: { type: 'string' },
  out: { type: 'string' },
  csv: { type: 'string' },
  'max-key-age-days': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What the command writes to. */
export interface ReportIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** An integer >= 1 (`maxKeyAgeDays`), as digits. */
function parseMaxKeyAgeDays(value: string): number {
  const days = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(days) || days < 1) {
    throw new CliUsageError(
      `option --max-key-age-days needs a whole number of days >= 1, got ${JSON.stringify(displayText(value))}`,
    );
  }
  return days;
}

/** The `npm run report` command; resolves with the exit code. */
export async function runReportCli(argv: readonly string[], io: ReportIo): Promise<number> {
  let values: ReturnType<typeof parseCommandLine<typeof OPTIONS>>;
  let maxKeyAgeDays: number | null = null;
  try {
    values = parseCommandLine(argv, OPTIONS);
    if (values.help === true) {
      io.stdout(USAGE);
      return 0;
    }
    if (values['max-key-age-days'] !== undefined) {
      maxKeyAgeDays = parseMaxKeyAgeDays(values['max-key-age-days']);
    }
    requirePaths(values, ['state', 'out', 'csv']);
  } catch (error) {
    if (error instanceof CliUsageError) {
      io.stderr(usageErrorLine(error));
      return 2;
    }
    throw error;
  }
  const stateDir = values.state ?? DEFAULT_STATE_DIR;
  try {
    const folder = await stat(stateDir).catch(() => undefined);
    if (folder === undefined || !folder.isDirectory()) {
      io.stderr(`error: no state folder at ${displayText(resolve(stateDir))} (run npm run audit first)\n`);
      return 2;
    }
    const report = await writeLocalReport(stateDir, {
      html: values.out,
      csv: values.csv,
      maxKeyAgeDays,
    });
    const what = `${report.principals} principal${report.principals === 1 ? '' : 's'}, ${report.keys} key${report.keys === 1 ? '' : 's'}${report.summarised ? '; the page shows totals per principal, the CSV every key' : ''}`;
    io.stdout(
      `HTML report: ${displayText(report.html)} (${what})\nCSV report:  ${displayText(report.csv)}\n`,
    );
    return 0;
  } catch (error) {
    io.stderr(`error: ${displayText(describeError(error))}\n`);
    return 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const code = await runReportCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
  process.exitCode = code;
}
