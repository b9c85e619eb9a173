/**
 * `npm run simulator [-- --port N --page-size N --latency MS --base-path /P]`: starts the BigState simulator with
 * the demo inventory and prints its URL on stdout (one line, for scripts); details go to stderr. It accepts the
 * key in BIGSTATE_API_KEY when set (never printed), otherwise the public demo key. A bad option is one line on
 * stderr (`usage error: ... (see --help)`) and exit code 2, as is a simulator that cannot start; never a stack.
 */
import { pathToFileURL } from 'node:url';
import { API_KEY_VARIABLE } from '../commons/config.js';
import { describeError } from '../commons/errors.js';
import { displayName, displayText, quotedName } from '../commons/text.js';
import { CliUsageError, parseCommandLine, usageErrorLine } from '../local/args.js';
import { DEMO_API_KEY, demoPrincipals, type SimulatorOptions, startSimulator } from './simulator.js';

const DEMO_KEY = DEMO_API_KEY;

const USAGE = `Usage: npm run simulator -- [options]

Starts a BigState simulator with the demo inventory and prints its URL on stdout (one line, for scripts);
details go to stderr. It accepts the API key in BIGSTATE_API_KEY when set (never printed), otherwise the
demo key ${DEMO_KEY}. Ctrl-C stops it.

Options:
  --port N           port to listen on, 0-65535                   default: 0 (any free port)
  --page-size N      keys per page, at least 1                    default: 50
  --latency MS       delay added to every response, 0-60000 ms    default: 0
  --base-path /P     serve the API under a path prefix, as behind a proxy (e.g. /bigstate)
  -h, --help         show this text
`;

const OPTIONS = {
  port: { type: 'string' },
  'page-size': { type: 'string' },
  latency: { type: 'string' },
  'base-path': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** What the command line asks for: the usage, or a simulator. */
export type SimulatorCommand =
  | 'help'
  | Pick<SimulatorOptions, 'port' | 'pageSize' | 'latencyMs' | 'basePath'>;

/** A whole number in [min, max] given to `flag`, or undefined when the flag was not given. */
function integer(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const number = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max)) {
    throw new CliUsageError(`${flag} must be a whole number from ${min} to ${max}, got ${quotedName(value)}`);
  }
  return number;
}

/**
 * Reads the simulator's command line.
 * @throws CliUsageError naming the option.
 */
export function parseSimulatorArgs(argv: readonly string[]): SimulatorCommand {
  const values = parseCommandLine(argv, OPTIONS);
  if (values.help === true) return 'help';
  const basePath = values['base-path'];
  if (basePath !== undefined && !/^\/[\x21-\x7e]*$/.test(basePath)) {
    throw new CliUsageError(`--base-path must start with / and hold no spaces, got ${quotedName(basePath)}`);
  }
  return {
    port: integer('--port', values.port, 0, 65_535),
    pageSize: integer('--page-size', values['page-size'], 1, 10_000),
    latencyMs: integer('--latency', values.latency, 0, 60_000),
    basePath,
  };
}

/** Runs the program: resolves to an exit code when it cannot start, else serves until SIGINT or SIGTERM. */
async function main(argv: readonly string[]): Promise<number | undefined> {
  let command: SimulatorCommand;
  try {
    command = argv.includes('-h') || argv.includes('--help') ? 'help' : parseSimulatorArgs(argv);
  } catch (error) {
    if (!(error instanceof CliUsageError)) throw error;
    process.stderr.write(usageErrorLine(error));
    return 2;
  }
  if (command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const fromEnv = process.env[API_KEY_VARIABLE];
  let simulator: Awaited<ReturnType<typeof startSimulator>>;
  try {
    simulator = await startSimulator({
      apiKeys: fromEnv === undefined || fromEnv === '' ? [DEMO_KEY] : [fromEnv],
      principals: demoPrincipals(),
      ...command,
    });
  } catch (error) {
    process.stderr.write(`error: the simulator could not start: ${displayText(describeError(error))}\n`);
    return 2;
  }
  process.stdout.write(`${simulator.url}\n`);
  process.stderr.write(
    `BigState simulator listening on ${simulator.url}\n` +
      `  principals: ${Object.keys(demoPrincipals()).map(displayName).join(', ')}\n` +
      `  API key: ${fromEnv ? 'the value of BIGSTATE_API_KEY' : `${DEMO_KEY} (demo key; set BIGSTATE_API_KEY to choose one)`}\n` +
      '  Ctrl+C stops it.\n',
  );
  const stop = () => {
    void simulator.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return undefined;
}

// Run when started as a program (`npm run simulator`), not when imported by a test.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const code = await main(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
}
