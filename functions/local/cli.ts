/**
 * The local CLI: the same audit core against a real BigState host, with a state folder instead of S3 and
 * the terminal instead of SNS and EventBridge.
 *
 *   npm run audit -- --host URL (--principal P ... | --principal-pattern G) [--pattern G] [--max-key-age-days N]
 *                    [--state DIR] [--dry-run]
 *                    [--json] [--no-color] [--verbose] [-h | --help] [--version]
 *
 * Exit code 0: nothing changed (a baseline is not a change); 1: changes found; 2: any error: a usage error
 * (`usage error: ... (see --help)`), a failed principal (after the others were audited and reported:
 * `audit failed: ...`), and a state folder another run holds (`<state>/.lock`, see `adapters/local/state-lock.ts`).
 * A dry run takes no lock and writes nothing; another run's live lock only earns a warning on stderr.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as z from 'zod/mini';
import { consolePublisher, formatSummary, lineLogger, PLAIN, type Write } from '../adapters/local/console.js';
import { environmentSecretSource } from '../adapters/local/env-secret.js';
import { FileSnapshotStore } from '../adapters/local/fs-store.js';
import {
  acquireStateLock,
  describeHolder,
  inspectStateLock,
  type LockStatus,
  type StateLock,
} from '../adapters/local/state-lock.js';
import { BigStateClient } from '../bigstate/client.js';
import { environmentApiKey } from '../commons/config.js';
import { Deadline } from '../commons/deadline.js';
import { describeError, InterruptedError } from '../commons/errors.js';
import { displayName, displayText, quotedName } from '../commons/text.js';
import { formatIssue, hostSchema, patternSchema, principalListSchema } from '../commons/validation.js';
import {
  type AuditSummary,
  acknowledgeDelivery,
  acknowledgeRemoval,
  type PrincipalResult,
  runAudit,
} from '../core/audit.js';
import type { ChangeRecord, NoticeChannel } from '../core/ports.js';
import { CliUsageError, DEFAULT_STATE_DIR, parseCommandLine, requirePaths, usageErrorLine } from './args.js';
import { toJsonDocument } from './json-document.js';
import { NOT_A_TERMINAL, paletteFor, type Terminal, terminalOf } from './palette.js';
import { formatPlan } from './plan.js';
import { Progress } from './progress.js';
import { writeLocalReport } from './report.js';

/** What the CLI talks to: injected so tests run it in-process. */
export interface CliIo {
  readonly stdout: Write;
  readonly stderr: Write;
  /** Reads the API key's current value (BIGSTATE_API_KEY for the real CLI). */
  readonly readApiKey: () => string | undefined;
  /** Aborts the walks (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** What stdout is: colour for people when it takes colour. @default not a terminal */
  readonly stdoutTerminal?: Terminal;
  /** What stderr is: a terminal gets one progress line redrawn in place. @default not a terminal */
  readonly stderrTerminal?: Terminal;
}

/** Exit codes of the CLI. */
export const EXIT = { unchanged: 0, changed: 1, error: 2 } as const;

export { DEFAULT_STATE_DIR };

const USAGE = `Usage: npm run audit -- --host URL --principal P [--principal Q ...] [options]
       npm run audit -- --host URL --principal-pattern G [options]

Audits the API keys of BigState principals against the last snapshot in a local state folder.
The API key is read from the environment variable BIGSTATE_API_KEY.

Options:
  --host URL         BigState base URL (https; http only for loopback hosts)     required
  --principal P      a principal to audit (repeat for more)      required unless --principal-pattern
  --principal-pattern G
                     discovery: audit every principal matching G (x, *x, x*, *x*, or * for all), each run;
                     one that has a state and is gone from BigState is reported removed once
  --pattern G        glob passed to BigState: x, *x, x*, *x*                     default: all keys
  --max-key-age-days N
                     keys older than N days (from their creation time, else first seen) are reported
                     once as stale
  --state DIR        state folder for snapshots and history                      default: ${DEFAULT_STATE_DIR}
  --dry-run          walk and diff only, write and publish nothing; print what a real run would publish
  --json             print one JSON document on stdout, for scripts (progress stays on stderr)
  --no-color         no colour (also: NO_COLOR set, or stdout not a terminal)
  --verbose          also print the audit's log lines on stderr
  -h, --help         show this text
  --version          print the version

A value starting with "-" is given as --principal=-name.
Progress goes to stderr: one line redrawn in place on a terminal, one line per principal otherwise.
Exit code: 0 nothing changed (a baseline is not a change), 1 changes found, 2 error (a usage error, a
failed principal after the others were audited and reported, a state folder in use).
`;

/** `--max-key-age-days N`: a whole number of days, at least 1 (the contract's maxKeyAgeDays). */
const maxKeyAgeDaysSchema = z.pipe(
  z.string(),
  z.pipe(
    z.transform((value: string) => (/^\d+$/.test(value) ? Number(value) : Number.NaN)),
    z.int({ error: 'must be a whole number of days' }).check(z.positive('must be at least 1')),
  ),
);

const OPTIONS = {
  host: { type: 'string' },
  principal: { type: 'string', multiple: true },
  'principal-pattern': { type: 'string' },
  pattern: { type: 'string' },
  'max-key-age-days': { type: 'string' },
  state: { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  'no-color': { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

interface CliOptions {
  readonly host: string;
  readonly principals: string[];
  readonly principalPattern: string | undefined;
  readonly pattern: string | undefined;
  readonly maxKeyAgeDays: number | undefined;
  readonly state: string;
  readonly dryRun: boolean;
  readonly json: boolean;
  readonly color: boolean;
  readonly verbose: boolean;
}

/** `--help` or `--version` anywhere before `--` wins over everything else on the line. */
function requested(argv: readonly string[]): 'help' | 'version' | undefined {
  const end = argv.indexOf('--');
  const before = end === -1 ? argv : argv.slice(0, end);
  if (before.some((arg) => arg === '--help' || arg === '-h')) return 'help';
  if (before.includes('--version')) return 'version';
  return undefined;
}

/** @throws CliUsageError naming the argument. */
function parseOptions(argv: readonly string[]): CliOptions {
  const values = parseCommandLine(argv, OPTIONS);
  requirePaths(values, ['state']);
  const check = <S extends z.ZodMiniType>(flag: string, schema: S, value: unknown): z.output<S> => {
    if (value === undefined) throw new CliUsageError(`${flag} is required`);
    const result = schema.safeParse(value);
    if (!result.success) throw new CliUsageError(displayText(formatIssue(flag, result.error)));
    return result.data;
  };
  const principalPattern =
    values['principal-pattern'] === undefined
      ? undefined
      : check('--principal-pattern', patternSchema, values['principal-pattern']);
  const host = check('--host', hostSchema, values.host);
  if (values.principal === undefined && principalPattern === undefined) {
    throw new CliUsageError('--principal or --principal-pattern is required');
  }
  return {
    host,
    principals:
      values.principal === undefined ? [] : check('--principal', principalListSchema, values.principal),
    principalPattern,
    pattern: values.pattern === undefined ? undefined : check('--pattern', patternSchema, values.pattern),
    maxKeyAgeDays:
      values['max-key-age-days'] === undefined
        ? undefined
        : check('--max-key-age-days', maxKeyAgeDaysSchema, values['max-key-age-days']),
    state: values.state ?? DEFAULT_STATE_DIR,
    dryRun: values['dry-run'] === true,
    json: values.json === true,
    color: values['no-color'] !== true,
    verbose: values.verbose === true,
  };
}

/** The version in package.json, read when asked (no JSON import: the CLI runs from source under tsx). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  const version: unknown = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}

/** The name of the CLI's one channel: the terminal. For the CLI, delivered means printed. */
export const STDOUT_CHANNEL = 'stdout';

/**
 * The inventory report of the state folder after a real run (`<state>/reports/latest.html` and `.csv`), as the
 * Lambda writes it next to the states. A dry run writes none; a report that cannot be written is a warning, never
 * a failed audit. Resolves to the HTML's path, or `undefined`.
 */
async function inventoryReport(
  summary: AuditSummary,
  options: CliOptions,
  runId: string,
  io: CliIo,
): Promise<string | undefined> {
  if (summary.dryRun) return undefined;
  try {
    const failures = new Map(
      summary.principals
        .filter((result) => result.status === 'failed')
        .map((result) => [result.principal, result.reason ?? 'failed'] as const),
    );
    const written = await writeLocalReport(resolve(options.state), {
      maxKeyAgeDays: options.maxKeyAgeDays ?? null,
      runId,
      failures,
      // The run's states are in hand: only the folder's other principals are read.
      known: summary.states,
    });
    return written.html;
  } catch (error) {
    io.stderr(`warning: the inventory report could not be written: ${displayText(describeError(error))}\n`);
    return undefined;
  }
}

/**
 * The exit code a run's summary calls for: changes found counts a change of an earlier run printed only now
 * (its run was killed before it could print it), so no change ever goes by with exit code 0.
 */
export function exitCodeOf(summary: AuditSummary, printed: readonly ChangeRecord[] = []): number {
  if (!summary.ok) return EXIT.error;
  const changed =
    summary.principals.some(
      (result) =>
        result.added.length + result.removed.length > 0 ||
        result.principalRemoved !== undefined ||
        result.redelivered.some((record) => record.kind === 'changed'),
    ) || printed.some((record) => record.kind === 'changed');
  return changed ? EXIT.changed : EXIT.unchanged;
}

/** The changes still owed to the terminal (committed, never printed), oldest first per principal. */
function owedChanges(summary: AuditSummary): ChangeRecord[] {
  return summary.principals.flatMap(owedTo);
}

function owedTo(result: PrincipalResult): ChangeRecord[] {
  return result.pending
    .filter((entry) => !entry.deliveredTo.includes(STDOUT_CHANNEL))
    .map((entry) => entry.record);
}

/**
 * One line for a run that failed: the failure of the run itself (a principal listing that broke off), and which
 * principals failed, with the error's name (the table has the reasons).
 */
function failureLine(summary: AuditSummary): string {
  const parts: string[] = [];
  if (summary.runFailure !== undefined) {
    parts.push(`${displayText(summary.runFailure.reason)} (${displayText(summary.runFailure.errorName)})`);
  }
  const failed = summary.principals.filter((result) => result.status === 'failed');
  if (failed.length > 0) {
    const names = failed
      .map((result) => `${displayName(result.principal)} (${displayText(result.errorName ?? 'Error')})`)
      .join(', ');
    parts.push(`${failed.length} of ${summary.principals.length} principal(s) failed: ${names}`);
  }
  return `audit failed: ${parts.length > 0 ? parts.join('; ') : 'see above'}\n`;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const asked = requested(argv);
  if (asked === 'help') {
    io.stdout(USAGE);
    return EXIT.unchanged;
  }
  if (asked === 'version') {
    io.stdout(`bigstate-key-audit ${packageVersion()}\n`);
    return EXIT.unchanged;
  }
  let options: CliOptions;
  try {
    options = parseOptions(argv);
  } catch (error) {
    io.stderr(
      error instanceof CliUsageError
        ? usageErrorLine(error)
        : `error: ${displayText(describeError(error))}\n`,
    );
    return EXIT.error;
  }
  const secret = environmentSecretSource(io.readApiKey);
  try {
    await secret.getApiKey({ refresh: false });
  } catch (error) {
    io.stderr(`error: ${displayText(describeError(error))}\n`);
    return EXIT.error;
  }
  const runId = randomUUID();
  // One writer per state folder, for the whole run, taken before any BigState request. A dry run takes no lock:
  // it writes nothing anywhere, not even a lock file (guarantee 9); see lockNoticeForDryRun.
  let lock: StateLock | undefined;
  if (options.dryRun) {
    const notice = await lockNoticeForDryRun(options.state);
    if (notice !== '') io.stderr(notice);
  } else {
    try {
      lock = await acquireStateLock(options.state, { runId });
    } catch (error) {
      io.stderr(`error: ${displayText(describeError(error))}\n`);
      return EXIT.error;
    }
  }
  if (lock?.tookOverFrom !== undefined) {
    const { pid, hostname, startedAt } = lock.tookOverFrom;
    const why = lock.staleReason ?? 'that process is gone';
    io.stderr(
      `${displayText(`took over the stale lock of pid ${pid} on ${hostname} (since ${startedAt}): ${why}`)}\n`,
    );
  }
  const stdoutTerminal = io.stdoutTerminal ?? NOT_A_TERMINAL;
  const stderrTerminal = io.stderrTerminal ?? NOT_A_TERMINAL;
  const palette = options.color ? paletteFor(stdoutTerminal) : PLAIN;
  const progress = new Progress({
    write: io.stderr,
    terminal: stderrTerminal,
    // With discovery, how many principals there are is known only at the end.
    total: options.principalPattern === undefined ? options.principals.length : undefined,
    palette: options.color ? paletteFor(stderrTerminal) : PLAIN,
  });
  // Every line on the terminal goes around the progress line, which is taken down first.
  const stdout = progress.wrap(io.stdout);
  const logger = progress.logger(lineLogger(progress.print, { verbose: options.verbose }), {
    verbose: options.verbose,
  });
  const client = new BigStateClient({ host: options.host, apiKey: secret.getApiKey, logger });
  const store = new FileSnapshotStore(resolve(options.state));
  // Text: each notice is printed as it is delivered. JSON: one document at the end, so each change is deferred
  // and stays in the outbox until the document has been written; a run killed before that prints it next time.
  const printer = consolePublisher(stdout, palette);
  const channel: NoticeChannel = options.json
    ? { name: STDOUT_CHANNEL, publish: async () => 'deferred' }
    : { name: STDOUT_CHANNEL, publish: (notice) => printer.publish(notice) };
  const deadline = Deadline.none({ signal: io.signal });
  const what =
    options.principalPattern === undefined
      ? `${options.principals.length} principal(s)`
      : `the principals matching ${quotedName(options.principalPattern)}${options.principals.length > 0 ? ` and ${options.principals.length} named` : ''}`;
  progress.print(
    `auditing ${what} on ${displayText(options.host)}${options.dryRun ? ' (dry run)' : ''}; state in ${displayText(resolve(options.state))}\n`,
  );
  try {
    const summary = await runAudit(
      { bigstate: progress.count(client), directory: client, store, channels: [channel], logger },
      {
        runId,
        principals: options.principals,
        principalPattern: options.principalPattern,
        host: options.host,
        pattern: options.pattern,
        maxKeyAgeDays: options.maxKeyAgeDays,
        dryRun: options.dryRun,
        deadline,
      },
    );
    progress.stop();
    // A dry run prints nothing as it goes: what a real run would print first (changes of earlier runs) counts.
    const owed = summary.dryRun ? owedChanges(summary) : [];
    if (!options.json) {
      if (summary.dryRun) io.stdout(`\n${formatPlan(summary, { palette, owed: owedTo })}`);
      io.stdout(`\n${formatSummary(summary, palette)}`);
      const report = await inventoryReport(summary, options, runId, io);
      if (report !== undefined) io.stdout(`\nInventory report: ${displayText(report)}\n`);
      if (!summary.ok) io.stderr(failureLine(summary));
      return exitCodeOf(summary, owed);
    }
    const changes = summary.dryRun ? [] : owedChanges(summary);
    const document = toJsonDocument(summary, {
      host: options.host,
      pattern: options.pattern,
      principalPattern: options.principalPattern,
      stateDir: resolve(options.state),
      changes,
    });
    io.stdout(`${JSON.stringify(document, null, 2)}\n`);
    // Printed: now the changes leave the outbox. Should this fail, the next run prints them again.
    for (const result of summary.principals) {
      if (!summary.dryRun) await acknowledgeRemoval(store, result, { deadline });
      const ids = result.pending.map((entry) => entry.record.changeId);
      if (summary.dryRun || ids.length === 0) continue;
      await acknowledgeDelivery(store, {
        principal: result.principal,
        channel: STDOUT_CHANNEL,
        channels: [STDOUT_CHANNEL],
        changeIds: ids,
        runId,
        deadline,
      });
    }
    const report = await inventoryReport(summary, options, runId, io);
    if (report !== undefined) io.stderr(`inventory report: ${displayText(report)}\n`);
    if (!summary.ok) io.stderr(failureLine(summary));
    return exitCodeOf(summary, [...changes, ...owed]);
  } catch (error) {
    progress.stop();
    io.stderr(`audit failed: ${displayText(describeError(error))}\n`);
    return EXIT.error;
  } finally {
    try {
      await client.close();
    } finally {
      await releaseLock(lock, io);
    }
  }
}

/**
 * What a dry run says about the state folder's lock, which it neither takes nor waits for ('' when free).
 *
 * A dry run held by another run goes on, with a warning, and exits as any dry run would: it writes nothing, so
 * it cannot harm that run, and reading under it is safe (every write replaces a file whole by a rename, so no
 * file is ever read half-written). What it cannot promise is a plan that still holds once that run commits, so
 * the warning says so. Refusing (exit 2) would make the one command meant for looking, e.g. while a scheduled
 * run is going, fail for no safety gained.
 */
async function lockNoticeForDryRun(state: string): Promise<string> {
  let status: LockStatus;
  try {
    status = await inspectStateLock(state);
  } catch (error) {
    return `warning: could not read the state folder's lock: ${displayText(describeError(error))}\n`;
  }
  const goesOn =
    'this dry run takes no lock and goes on, reading the state as it is now; that run may change it meanwhile, so run again once it is done for a plan that holds';
  switch (status.kind) {
    case 'free':
      return '';
    case 'held':
      return `${displayText(`warning: the state folder ${resolve(state)} is in use by another audit run: ${describeHolder(status.holder)}; ${goesOn}`)}\n`;
    case 'unreadable':
      return `${displayText(`warning: the state folder's lock ${status.error.lockPath} is not a lock this tool wrote: a real run would be refused until it is deleted; this dry run takes no lock and goes on`)}\n`;
    case 'stale':
      return `${displayText(`note: the state folder's lock is stale (${describeHolder(status.holder)}: ${status.reason}); a real run would take it over`)}\n`;
  }
}

/** Releases the state folder's lock; a failure is reported, not thrown (the next run takes over a stale lock). */
async function releaseLock(lock: StateLock | undefined, io: CliIo): Promise<void> {
  try {
    await lock?.release();
  } catch (error) {
    io.stderr(
      `warning: could not remove the lock ${displayText(lock?.path ?? '')}: ${displayText(describeError(error))}\n`,
    );
  }
}

// Run when started as a program (`npm run audit`), not when imported by a test.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  // The run stops its requests and ends as usual (releasing the state folder's lock); a second signal quits at
  // once (Node's default), leaving a stale lock that the next run takes over.
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted (Ctrl-C): stopping; press Ctrl-C again to quit at once\n');
    controller.abort(new InterruptedError('interrupted (Ctrl-C)'));
  });
  process.once('SIGTERM', () => {
    process.stderr.write('\ninterrupted (SIGTERM): stopping\n');
    controller.abort(new InterruptedError('interrupted (SIGTERM)'));
  });
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    readApiKey: environmentApiKey(),
    signal: controller.signal,
    stdoutTerminal: terminalOf(process.stdout),
    stderrTerminal: terminalOf(process.stderr),
  });
}
