/**
 * The local CLI: the same audit core against a real BigState host, with a state folder instead of S3 and
 * the terminal instead of SNS and EventBridge.
 *
 *   npm run audit -- --host URL --principal P [--principal Q ...] [--pattern G] [--state DIR] [--dry-run] [--json]
 *
 * Exit code 0: nothing changed (a baseline is not a change); 1: changes found; 2: any error, a failed
 * principal included (after the others were audited and reported), and a state folder another run holds
 * (`<state>/.lock`, see `adapters/local/state-lock.ts`).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as z from 'zod/mini';
import { consolePublisher, formatSummary, lineLogger, type Write } from '../adapters/local/console.js';
import { environmentSecretSource } from '../adapters/local/env-secret.js';
import { FileSnapshotStore } from '../adapters/local/fs-store.js';
import { acquireStateLock, type StateLock } from '../adapters/local/state-lock.js';
import { BigStateClient } from '../bigstate/client.js';
import { environmentApiKey } from '../commons/config.js';
import { Deadline } from '../commons/deadline.js';
import { describeError, InterruptedError } from '../commons/errors.js';
import { displayText } from '../commons/text.js';
import { formatIssue, hostSchema, patternSchema, principalListSchema } from '../commons/validation.js';
import { type AuditSummary, acknowledgeDelivery, runAudit } from '../core/audit.js';
import type { ChangeRecord, NoticeChannel } from '../core/ports.js';
import { toAuditResult } from '../core/result.js';

/** What the CLI talks to: injected so tests run it in-process. */
export interface CliIo {
  readonly stdout: Write;
  readonly stderr: Write;
  /** Reads the API key's current value (BIGSTATE_API_KEY for the real CLI). */
  readonly readApiKey: () => string | undefined;
  /** Aborts the walks (Ctrl-C). */
  readonly signal?: AbortSignal;
}

/** Exit codes of the CLI. */
export const EXIT = { unchanged: 0, changed: 1, error: 2 } as const;

/** The default state folder, in the working folder. */
export const DEFAULT_STATE_DIR = '.bigstate-audit';

const USAGE = `Usage: npm run audit -- --host URL --principal P [--principal Q ...] [options]

Audits the API keys of BigState principals against the last snapshot in a local state folder.
The API key is read from the environment variable BIGSTATE_API_KEY.

Options:
  --host URL         BigState base URL (https; http only for loopback hosts)     required
  --principal P      a principal to audit (repeat for more)                      required
  --pattern G        glob passed to BigState: x, *x, x*, *x*                     default: all keys
  --state DIR        state folder for snapshots and history                      default: ${DEFAULT_STATE_DIR}
  --dry-run          walk and diff only: write and publish nothing
  --json             print one JSON document on stdout (progress stays on stderr)
  --help             show this text

Exit code: 0 nothing changed (a baseline is not a change), 1 changes found, 2 error.
`;

class UsageError extends Error {
  override name = 'UsageError';
}

interface CliOptions {
  readonly host: string;
  readonly principals: string[];
  readonly pattern: string | undefined;
  readonly state: string;
  readonly dryRun: boolean;
  readonly json: boolean;
}

function parseOptions(argv: readonly string[]): CliOptions | 'help' {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new UsageError(describeError(error));
  }
  if (values.help) return 'help';
  const check = <S extends z.ZodMiniType>(flag: string, schema: S, value: unknown): z.output<S> => {
    if (value === undefined) throw new UsageError(`${flag} is required`);
    const result = schema.safeParse(value);
    if (!result.success) throw new UsageError(formatIssue(flag, result.error));
    return result.data;
  };
  return {
    host: check('--host', hostSchema, values.host),
    principals: check('--principal', principalListSchema, values.principal),
    pattern: values.pattern === undefined ? undefined : check('--pattern', patternSchema, values.pattern),
    state: values.state ?? DEFAULT_STATE_DIR,
    dryRun: values['dry-run'] === true,
    json: values.json === true,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      principal: { type: 'string', multiple: true },
      pattern: { type: 'string' },
      state: { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
}

/** The name of the CLI's one channel: the terminal. For the CLI, delivered means printed. */
export const STDOUT_CHANNEL = 'stdout';

/** The version of the `--json` document's shape. */
export const JSON_SCHEMA_VERSION = 1;

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
        result.redelivered.some((record) => record.kind === 'changed'),
    ) || printed.some((record) => record.kind === 'changed');
  return changed ? EXIT.changed : EXIT.unchanged;
}

/** The changes a `--json` run prints: every change still owed to the terminal, oldest first per principal. */
function owedChanges(summary: AuditSummary): ChangeRecord[] {
  return summary.principals.flatMap((result) =>
    result.pending
      .filter((entry) => !entry.deliveredTo.includes(STDOUT_CHANNEL))
      .map((entry) => entry.record),
  );
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    io.stderr(`error: ${describeError(error)}\n\n${USAGE}`);
    return EXIT.error;
  }
  if (options === 'help') {
    io.stdout(USAGE);
    return EXIT.unchanged;
  }
  const secret = environmentSecretSource(io.readApiKey);
  try {
    await secret.getApiKey({ refresh: false });
  } catch (error) {
    io.stderr(`error: ${displayText(describeError(error))}\n`);
    return EXIT.error;
  }
  const runId = randomUUID();
  // One writer per state folder, for the whole run, taken before any BigState request. A dry run takes it
  // too: it reports what a real run would publish, which only holds while no other run commits under it; on
  // a folder that does not exist yet it locks nothing (it must create nothing).
  let lock: StateLock | undefined;
  try {
    lock = await acquireStateLock(options.state, { runId, createFolder: !options.dryRun });
  } catch (error) {
    io.stderr(`error: ${displayText(describeError(error))}\n`);
    return EXIT.error;
  }
  if (lock?.tookOverFrom) {
    const { pid, hostname, startedAt } = lock.tookOverFrom;
    io.stderr(
      `took over the stale lock of pid ${pid} on ${hostname} (since ${startedAt}): that process is gone\n`,
    );
  }
  const logger = lineLogger(io.stderr);
  const client = new BigStateClient({ host: options.host, apiKey: secret.getApiKey, logger });
  const store = new FileSnapshotStore(resolve(options.state));
  // Text: each notice is printed as it is delivered. JSON: one document at the end, so each change is deferred
  // and stays in the outbox until the document has been written; a run killed before that prints it next time.
  const printer = consolePublisher(io.stdout);
  const channel: NoticeChannel = options.json
    ? { name: STDOUT_CHANNEL, publish: async () => 'deferred' }
    : { name: STDOUT_CHANNEL, publish: (notice) => printer.publish(notice) };
  const deadline = Deadline.none({ signal: io.signal });
  io.stderr(
    `auditing ${options.principals.length} principal(s) on ${options.host}; state in ${resolve(options.state)}\n`,
  );
  try {
    const summary = await runAudit(
      { bigstate: client, store, channels: [channel], logger },
      {
        runId,
        principals: options.principals,
        host: options.host,
        pattern: options.pattern,
        dryRun: options.dryRun,
        deadline,
      },
    );
    if (!options.json) {
      io.stdout(`\n${formatSummary(summary)}`);
      return exitCodeOf(summary);
    }
    const changes = summary.dryRun ? [] : owedChanges(summary);
    const document = { schemaVersion: JSON_SCHEMA_VERSION, ...toAuditResult(summary), changes };
    io.stdout(`${JSON.stringify(document, null, 2)}\n`);
    // Printed: now the changes leave the outbox. Should this fail, the next run prints them again.
    for (const result of summary.principals) {
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
    return exitCodeOf(summary, changes);
  } catch (error) {
    io.stderr(`error: ${displayText(describeError(error))}\n`);
    return EXIT.error;
  } finally {
    try {
      await client.close();
    } finally {
      await releaseLock(lock, io);
    }
  }
}

/** Releases the state folder's lock; a failure is reported, not thrown (the next run takes over a stale lock). */
async function releaseLock(lock: StateLock | undefined, io: CliIo): Promise<void> {
  try {
    await lock?.release();
  } catch (error) {
    io.stderr(`warning: could not remove the lock ${lock?.path}: ${describeError(error)}\n`);
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
  });
}
