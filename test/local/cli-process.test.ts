/**
 * `npm run audit` as a real process (node + tsx), for what only the program entry does: argv, the exit code,
 * the environment variable and the streams.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'bsk_process-Secret-6060';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function audit(args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'functions/local/cli.ts', ...args],
      { cwd: ROOT, env, timeout: 15_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function environment(key: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.BIGSTATE_API_KEY;
  if (key !== undefined) env.BIGSTATE_API_KEY = key;
  return env;
}

let simulator: Simulator;
let state: string;

beforeAll(async () => {
  simulator = await startSimulator({ apiKeys: [KEY], principals: { root: { keys: ['a', 'b'] } } });
  state = await mkdtemp(join(tmpdir(), 'cli-process-test-'));
});

afterAll(async () => {
  await simulator.close();
  await rm(state, { recursive: true, force: true });
});

describe('npm run audit (the process)', () => {
  it('prints the usage and exits 0 for --help', async () => {
    const outcome = await audit(['--help'], environment(undefined));
    expect(outcome.code).toBe(0);
    expect(outcome.stdout).toMatch(/^Usage: npm run audit -- --host URL/);
  });

  it('exits 2 naming BIGSTATE_API_KEY when it is not set', async () => {
    const outcome = await audit(['--host', simulator.url, '--principal', 'root'], environment(undefined));
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toContain('BIGSTATE_API_KEY');
    expect(outcome.stdout).toBe('');
  });

  it('audits with the key from BIGSTATE_API_KEY, prints one JSON document and never the key', async () => {
    const args = ['--host', simulator.url, '--principal', 'root', '--state', state, '--json'];
    const outcome = await audit(args, environment(KEY));
    expect(outcome.code).toBe(0);
    expect(JSON.parse(outcome.stdout).principals[0]).toMatchObject({
      principal: 'root',
      baseline: true,
      keyCount: 2,
    });
    expect(outcome.stderr).toContain('auditing 1 principal(s)');
    expect(outcome.stdout + outcome.stderr).not.toContain(KEY);

    simulator.addKeys('root', 'c');
    expect((await audit(args, environment(KEY))).code).toBe(1);
  });
});
