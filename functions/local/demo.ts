/**
 * `npm start`: the whole job with no accounts. A built-in BigState simulator, a fresh local state folder,
 * a baseline run that discovers every principal (`--principal-pattern '*'`), some keys changed, a dry run that
 * shows the plan of what the next run would publish, the run that finds the changes, a run that finds a new
 * principal and one deleted in BigState, and a run that finds nothing: each run is the real CLI
 * (`npm run audit`), so what is shown is what a user gets (in colour only on a terminal that takes it).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Write } from '../adapters/local/console.js';
import { DEMO_API_KEY, demoPrincipals, startSimulator } from '../bigstate/simulator.js';
import { quotedName } from '../commons/text.js';
import { CliUsageError, usageErrorLine } from './args.js';
import { runCli } from './cli.js';
import { NOT_A_TERMINAL, type Terminal, terminalOf } from './palette.js';

const DEMO_KEY = DEMO_API_KEY;

/** The application principal that appears in BigState between runs 2 and 3 (discovery). */
const NEW_PRINCIPAL = 'billing_export';
/** The principal deleted in BigState between runs 2 and 3 (told once as removed). */
const REMOVED_PRINCIPAL = 'svc a&b';

const EXIT_MEANING: Record<number, string> = { 0: 'nothing changed', 1: 'changes found', 2: 'error' };

/** How the demo writes. */
export interface DemoOptions {
  /** What `write` writes to: colour only when it takes colour. @default not a terminal */
  readonly terminal?: Terminal;
}

/** Lines a run writes on stderr that the demo shows: failures, not progress. */
const SHOWN_ON_STDERR = /^(\[error\]|error|audit failed|usage error)/;

/** Runs the demo, writing for a person; resolves to 0 when every step behaved as expected. */
export async function runDemo(write: Write, stateDir?: string, options: DemoOptions = {}): Promise<number> {
  const principals = Object.keys(demoPrincipals());
  const simulator = await startSimulator({ apiKeys: [DEMO_KEY], principals: demoPrincipals(), pageSize: 25 });
  const state = stateDir ?? (await mkdtemp(join(tmpdir(), 'bigstate-audit-demo-')));
  const audit = async (title: string, expected: number, extra: string[] = []): Promise<boolean> => {
    write(`\n=== ${title} ===\n`);
    write(
      `$ npm run audit -- --host ${simulator.url} --principal-pattern '*' --state ${state}${extra.map((arg) => ` ${arg}`).join('')}\n`,
    );
    // Every principal the key can see, not a hand list: BigState's own listing says which ones exist.
    const code = await runCli(
      ['--host', simulator.url, '--principal-pattern', '*', '--state', state, ...extra],
      {
        stdout: write,
        // Progress lines are for a terminal session; the demo keeps only errors.
        stderr: (text) => {
          if (SHOWN_ON_STDERR.test(text)) write(text);
        },
        readApiKey: () => DEMO_KEY,
        stdoutTerminal: options.terminal ?? NOT_A_TERMINAL,
      },
    );
    write(`exit code ${code} (${EXIT_MEANING[code] ?? 'unknown'})\n`);
    return code === expected;
  };
  try {
    write(
      [
        'bigstate-key-audit demo',
        `A BigState simulator runs on ${simulator.url} with ${principals.length} principals (paged 25 keys at a time;`,
        'one has 121 keys, one has none, two have names with spaces, "&", "#" and umlauts).',
        `State folder: ${state}`,
        '',
        `Each run asks BigState which principals exist (--principal-pattern '*': all of them) instead of taking a`,
        'hand list, so a principal nobody listed is audited too.',
        'Run 1 walks every page of every principal and records a baseline: one notice per principal (each is new to',
        'the audit), no flood of "added" keys. A baseline is not a change, so it exits 0.',
        '',
      ].join('\n'),
    );
    let ok = await audit('Run 1: baseline', 0);
    simulator.addKeys('root', 'unknown-laptop');
    simulator.removeKeys('tram_client', 'tram-device-042');
    simulator.addKeys('svc a&b', '#secondary');
    simulator.removeKeys('zürich-ops', 'monitoring');
    write(
      '\nMeanwhile in BigState: root got a key "unknown-laptop", tram_client lost "tram-device-042",\n' +
        '"svc a&b" got "#secondary", and "zürich-ops" lost "monitoring".\n' +
        'A dry run first: it walks and diffs, shows what a real run would publish, and writes and publishes nothing.\n',
    );
    ok = (await audit('Dry run: the plan for run 2', 1, ['--dry-run'])) && ok;
    write(
      '\nRun 2 publishes exactly that plan; each removal was confirmed by an exact query of that key before it was\n' +
        'reported.\n',
    );
    ok = (await audit('Run 2: changes', 1)) && ok;
    simulator.addPrincipal(NEW_PRINCIPAL, {
      type: 1,
      name: 'Nightly billing export',
      keys: ['export-job', 'export-job-backup'],
    });
    simulator.removePrincipal(REMOVED_PRINCIPAL);
    write(
      `\nMeanwhile in BigState: a new application "${NEW_PRINCIPAL}" appeared with 2 keys, and "${REMOVED_PRINCIPAL}" was\n` +
        'deleted. Run 3 finds the new one without being told and records its baseline as a new principal; it tells\n' +
        'the deletion once, with the keys the deleted principal had, and moves its state to the archive.\n',
    );
    ok = (await audit('Run 3: a new principal, and one removed', 1)) && ok;
    write(
      `\nRun 4 has nothing to tell: "${NEW_PRINCIPAL}" is compared with its baseline now, and "${REMOVED_PRINCIPAL}"\n` +
        'was told once and is not audited any more.\n',
    );
    ok = (await audit('Run 4: nothing changed since', 0)) && ok;
    write(
      `\nSnapshots are in ${join(state, 'snapshots')},\n` +
        `the archived state of "${REMOVED_PRINCIPAL}" in ${join(state, 'archive')},\n` +
        `every change record in ${join(state, 'history')}.\n` +
        'In AWS the same job runs as a Lambda on a schedule, with S3, SNS and EventBridge: see README.md.\n' +
        `\nThe key inventory report (every key, its age, the key counts over time; open it in a browser):\n` +
        `  ${join(state, 'reports', 'latest.html')}\n` +
        `  ${join(state, 'reports', 'latest.csv')} (for spreadsheets)\n`,
    );
    return ok ? 0 : 1;
  } finally {
    await simulator.close();
  }
}

/** What `npm start -- --help` prints. */
export const DEMO_HELP = `npm start: the whole audit job on a built-in BigState simulator, in a fresh state folder, with no
account: a baseline that discovers every principal, a dry run showing the plan, changes, a new principal and a
removed one, then a run that finds nothing. It takes no options.

The audit itself: npm run audit -- --help
The inventory report: npm run report -- --help
The simulator on its own: npm run simulator -- --help
`;

/**
 * `npm start [-- --help]`: the demo, or its help; any other argument is a usage error of one line (exit 2), never
 * a demo run that ignored it.
 */
export async function demoMain(
  args: readonly string[],
  io: { readonly stdout: Write; readonly stderr: Write; readonly terminal?: Terminal },
): Promise<number> {
  if (args.length === 0) return runDemo(io.stdout, undefined, { terminal: io.terminal ?? NOT_A_TERMINAL });
  const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h';
  const other = args.find((arg) => !isHelp(arg));
  if (other === undefined) {
    io.stdout(DEMO_HELP);
    return 0;
  }
  io.stderr(
    usageErrorLine(
      new CliUsageError(
        `npm start takes no options, got ${quotedName(other)}: the audit itself is npm run audit`,
      ),
    ),
  );
  return 2;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await demoMain(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    terminal: terminalOf(process.stdout),
  });
}
