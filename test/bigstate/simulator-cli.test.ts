/**
 * `npm run simulator` as a real process (node + tsx): its options, its URL on stdout, one line for a bad option
 * (never a stack trace), and a clean stop on SIGTERM.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSimulatorArgs } from '../../functions/bigstate/simulator-cli.js';
import { CliUsageError } from '../../functions/local/args.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROGRAM = ['--import', 'tsx', 'functions/bigstate/simulator-cli.ts'];

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function environment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.BIGSTATE_API_KEY;
  return env;
}

/** Runs the program to its end. */
function simulatorCli(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...PROGRAM, ...args],
      { cwd: ROOT, env: environment(), timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts the program and resolves with the URL it prints, and the process. */
function started(
  args: string[],
): Promise<{ url: string; child: ChildProcess; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [...PROGRAM, ...args], {
    cwd: ROOT,
    env: environment(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no URL within 15 s: ${stderr}`));
    }, 15_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const line = stdout.split('\n');
      if (line.length > 1) {
        clearTimeout(guard);
        resolve({ url: line[0] as string, child, exit });
      }
    });
    void exit.then((code) => {
      clearTimeout(guard);
      reject(new Error(`exited with ${code} before printing its URL: ${stderr}`));
    });
  });
}

/** A port that is taken, and a function to free it. */
async function takenPort(): Promise<{ port: number; free: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, free: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('npm run simulator (the process)', () => {
  it('prints its options for --help and -h, and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const outcome = await simulatorCli([flag]);
      expect(outcome.code).toBe(0);
      expect(outcome.stdout).toMatch(/^Usage: npm run simulator -- \[options\]/);
      for (const option of ['--port N', '--page-size N', '--latency MS', '--base-path /P', '-h, --help']) {
        expect(outcome.stdout).toContain(option);
      }
      expect(outcome.stderr).toBe('');
    }
  });

  it.each<[string, string[], string]>([
    [
      'an unknown option',
      ['--pagesize', '2'],
      'usage error: unknown option --pagesize: did you mean --page-size? (see --help)',
    ],
    [
      'a value that is no number',
      ['--port', 'abc'],
      'usage error: --port must be a whole number from 0 to 65535, got "abc" (see --help)',
    ],
    [
      'a port out of range',
      ['--port', '70000'],
      'usage error: --port must be a whole number from 0 to 65535, got "70000" (see --help)',
    ],
    [
      'a page size of 0',
      ['--page-size', '0'],
      'usage error: --page-size must be a whole number from 1 to 10000, got "0" (see --help)',
    ],
    [
      'a negative latency',
      ['--latency=-5'],
      'usage error: --latency must be a whole number from 0 to 60000, got "-5" (see --help)',
    ],
    [
      'an option without its value',
      ['--latency'],
      'usage error: option --latency needs a value (see --help)',
    ],
    ['a positional argument', ['8080'], 'usage error: unexpected argument "8080" (see --help)'],
    [
      'a base path without /',
      ['--base-path', 'x'],
      'usage error: --base-path must start with / and hold no spaces, got "x" (see --help)',
    ],
  ])('exits 2 for %s with one line, no stack trace', async (_what, args, line) => {
    const outcome = await simulatorCli(args);
    expect(outcome).toEqual({ code: 2, stdout: '', stderr: `${line}\n` });
  });

  it('exits 2 with one line when its port is taken', async () => {
    const taken = await takenPort();
    try {
      const outcome = await simulatorCli(['--port', String(taken.port)]);
      expect(outcome.code).toBe(2);
      expect(outcome.stdout).toBe('');
      expect(outcome.stderr).toMatch(/^error: the simulator could not start: .*EADDRINUSE.*\n$/);
      expect(outcome.stderr.split('\n')).toHaveLength(2);
    } finally {
      await taken.free();
    }
  });

  it('prints its URL, serves the demo inventory as asked, and stops on SIGTERM with 0', async () => {
    const { url, child, exit } = await started(['--page-size', '2', '--base-path', '/bigstate']);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/bigstate$/);
      const response = await fetch(`${url}/v1/apikey/match?principal=root&next=0`, {
        headers: { 'x-api-key': 'bigstate-demo-key' },
      });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { next: number; apiKeys: unknown[] };
      expect(body.apiKeys).toHaveLength(2);
      expect(body.next).not.toBe(-1);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exit).toBe(0);
  });
});

describe('parseSimulatorArgs', () => {
  it('reads every option, and leaves the defaults to the simulator', () => {
    expect(parseSimulatorArgs([])).toEqual({
      port: undefined,
      pageSize: undefined,
      latencyMs: undefined,
      basePath: undefined,
    });
    expect(
      parseSimulatorArgs(['--port', '0', '--page-size=25', '--latency', '15', '--base-path', '/p']),
    ).toEqual({ port: 0, pageSize: 25, latencyMs: 15, basePath: '/p' });
    expect(parseSimulatorArgs(['--help'])).toBe('help');
  });

  it('throws CliUsageError naming the option', () => {
    expect(() => parseSimulatorArgs(['--port', '1e3'])).toThrow(CliUsageError);
    expect(() => parseSimulatorArgs(['--port', '1e3'])).toThrow(/^--port must be a whole number/);
    expect(() => parseSimulatorArgs(['--port', '1', '--port', '2'])).toThrow(
      'option --port is given more than once',
    );
  });
});
