/**
 * `npm run audit` as a real process (node + tsx), for what only the program entry does: argv, the exit code,
 * the environment variable and the streams.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** The test's environment without the key and colour settings, plus `extra`. */
function environment(key: string | undefined, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['BIGSTATE_API_KEY', 'FORCE_COLOR', 'NO_COLOR', 'NODE_DISABLE_COLORS']) delete env[name];
  if (key !== undefined) env.BIGSTATE_API_KEY = key;
  return { ...env, ...extra };
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
  it('prints the usage and exits 0 for --help and -h', async () => {
    for (const flag of ['--help', '-h']) {
      const outcome = await audit([flag], environment(undefined));
      expect(outcome.code).toBe(0);
      expect(outcome.stdout).toMatch(/^Usage: npm run audit -- --host URL/);
      expect(outcome.stderr).toBe('');
    }
  });

  it('prints the version of package.json for --version', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const outcome = await audit(['--version'], environment(undefined));
    expect(outcome).toEqual({ code: 0, stdout: `bigstate-key-audit ${version}\n`, stderr: '' });
  });

  it('exits 2 with one line naming a bad argument, no usage and no stack trace', async () => {
    const outcome = await audit(['--host', simulator.url, '--principl', 'root'], environment(KEY));
    expect(outcome).toEqual({
      code: 2,
      stdout: '',
      stderr: 'usage error: unknown option --principl: did you mean --principal? (see --help)\n',
    });
    const bad = await audit(['--host', 'ftp://x', '--principal', 'root'], environment(KEY));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^usage error: --host .+ \(see --help\)\n$/);
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

  it('prints the plan for --dry-run, exits 1 when a real run would publish a change, and writes nothing', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'cli-process-dry-'));
    try {
      const args = ['--host', simulator.url, '--principal', 'root', '--state', folder, '--no-color'];
      expect((await audit(args, environment(KEY))).code).toBe(0);
      simulator.addKeys('root', 'planned');
      const before = await fingerprint(folder);
      const outcome = await audit([...args, '--dry-run'], environment(KEY));
      expect(outcome.code, outcome.stderr).toBe(1);
      expect(outcome.stdout).toContain('root: 1 added, 0 removed');
      expect(outcome.stdout).toContain('\n  + planned\n');
      expect(await fingerprint(folder)).toEqual(before);
      // Nor does a dry run on a folder that does not exist create it.
      const missing = join(folder, 'missing');
      expect(
        (await audit([...args.slice(0, -3), '--state', missing, '--dry-run'], environment(KEY))).code,
      ).toBe(0);
      expect(await fingerprint(folder)).toEqual(before);
    } finally {
      simulator.removeKeys('root', 'planned');
      await rm(folder, { recursive: true, force: true });
    }
  });

  describe('colour and progress', () => {
    let folder: string;
    const ESC = '\u001b';

    beforeAll(async () => {
      folder = await mkdtemp(join(tmpdir(), 'cli-process-colour-'));
    });

    afterAll(async () => {
      await rm(folder, { recursive: true, force: true });
    });

    /** A dry run against a principal with an added key: a plan with a `+` line. */
    async function dryRun(extraArgs: string[], extraEnv: NodeJS.ProcessEnv): Promise<Outcome> {
      const args = ['--host', simulator.url, '--principal', 'root', '--state', folder];
      await audit(args, environment(KEY));
      simulator.addKeys('root', 'colourful');
      try {
        return await audit([...args, '--dry-run', ...extraArgs], environment(KEY, extraEnv));
      } finally {
        simulator.removeKeys('root', 'colourful');
      }
    }

    it('has no colour when stdout is a pipe', async () => {
      const outcome = await dryRun([], {});
      expect(outcome.stdout).toContain('\n  + colourful\n');
      expect(outcome.stdout + outcome.stderr).not.toContain(ESC);
    });

    it('colours under FORCE_COLOR (Node decides for the stream), and never the --json document', async () => {
      const outcome = await dryRun([], { FORCE_COLOR: '1' });
      expect(outcome.stdout).toContain(`${ESC}[32m  + colourful${ESC}[39m\n`);
      const json = await dryRun(['--json'], { FORCE_COLOR: '1' });
      expect(json.stdout).not.toContain(ESC);
      expect(JSON.parse(json.stdout).principals[0].addedKeys).toEqual(['colourful']);
    });

    it('has no colour with --no-color, even under FORCE_COLOR', async () => {
      const outcome = await dryRun(['--no-color'], { FORCE_COLOR: '1' });
      expect(outcome.stdout).toContain('\n  + colourful\n');
      expect(outcome.stdout + outcome.stderr).not.toContain(ESC);
    });

    it('has no colour under NO_COLOR or FORCE_COLOR=0', async () => {
      for (const env of [{ NO_COLOR: '1' }, { FORCE_COLOR: '0' }]) {
        const outcome = await dryRun([], env);
        expect(outcome.stdout).toContain('\n  + colourful\n');
        expect(outcome.stdout).not.toContain(ESC);
      }
    });

    it('prints one progress line per principal on a stderr that is not a terminal', async () => {
      const outcome = await dryRun([], {});
      expect(outcome.stderr).toMatch(/^\[1\/1\] root: ok, \d+ keys, \+1 -0$/m);
      expect(outcome.stderr).not.toContain('\r');
    });
  });
});

/** A CLI process that has started, with its pid, and its outcome once it ends. */
interface Started {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly done: Promise<Outcome & { signal: NodeJS.Signals | null }>;
}

function start(args: string[], env: NodeJS.ProcessEnv): Started {
  let resolveDone: (outcome: Outcome & { signal: NodeJS.Signals | null }) => void = () => {};
  const done = new Promise<Outcome & { signal: NodeJS.Signals | null }>((resolve) => {
    resolveDone = resolve;
  });
  const child = execFile(
    process.execPath,
    ['--import', 'tsx', 'functions/local/cli.ts', ...args],
    { cwd: ROOT, env, timeout: 15_000 },
    (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolveDone({ code, stdout, stderr, signal: child.signalCode });
    },
  );
  return { child, pid: child.pid ?? -1, done };
}

/** Waits until `path` exists (the lock file of a run that reached its audit) and returns its text. */
async function whenExists(path: string, limitMs = 10_000): Promise<string> {
  const until = Date.now() + limitMs;
  for (;;) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined && text !== '') return text;
    if (Date.now() > until) throw new Error(`${path} did not appear within ${limitMs} ms`);
    await sleep(20);
  }
}

/** Every entry below `folder` (the folder too) with its kind, size, mtime and content: any write shows. */
async function fingerprint(folder: string): Promise<string[]> {
  const self = await stat(folder).then(
    (info) => `. dir ${info.mtimeMs}`,
    () => 'missing',
  );
  const entries = await Promise.all(
    (await list(folder)).map(async (name) => {
      const path = join(folder, name);
      const info = await stat(path);
      if (info.isDirectory()) return `${name} dir ${info.mtimeMs}`;
      return `${name} file ${info.size} ${info.mtimeMs} ${await readFile(path, 'base64')}`;
    }),
  );
  return [self, ...entries];
}

async function list(folder: string): Promise<string[]> {
  return (await readdir(folder, { recursive: true }).catch(() => [])).map(String).sort();
}

describe('npm run audit: one writer per state folder (real processes)', () => {
  let slow: Simulator;
  let folders: string;

  beforeAll(async () => {
    // Slow enough (about half a second per run) that two processes started together overlap.
    slow = await startSimulator({
      apiKeys: [KEY],
      pageSize: 2,
      latencyMs: 60,
      principals: { root: { keys: ['a', 'b', 'c', 'd', 'e'] }, stuck: { keys: ['x'] } },
    });
    folders = await mkdtemp(join(tmpdir(), 'cli-process-lock-'));
  });

  afterAll(async () => {
    await slow.close();
    await rm(folders, { recursive: true, force: true });
  });

  it('lets exactly one of two concurrent runs write the baseline, round after round', {
    timeout: 60_000,
  }, async () => {
    const seen = new Set<string>();
    for (let round = 0; round < 8; round++) {
      const folder = join(folders, `round-${round}`);
      const lockPath = join(folder, '.lock');
      const args = ['--host', slow.url, '--principal', 'root', '--state', folder, '--json'];
      const runs = [start(args, environment(KEY)), start(args, environment(KEY))];
      const outcomes = await Promise.all(runs.map((run) => run.done));
      const kinds = outcomes.map((outcome) => {
        if (outcome.code === 0)
          return JSON.parse(outcome.stdout).principals[0].baseline ? 'baseline' : 'no change';
        return outcome.code === 2 && outcome.stderr.includes('is in use by another audit run')
          ? 'locked'
          : 'other';
      });
      const writer = kinds.indexOf('baseline');
      expect(writer, JSON.stringify(outcomes)).not.toBe(-1);
      expect(kinds.filter((kind) => kind === 'baseline')).toHaveLength(1);
      const other = outcomes[1 - writer] as Outcome;
      const otherKind = kinds[1 - writer] as string;
      expect(['locked', 'no change'], JSON.stringify(other)).toContain(otherKind);
      seen.add(otherKind);
      if (otherKind === 'locked') {
        // Refused at once: the message names the writer and the file to delete, and nothing else was printed.
        const holder = runs[writer]?.pid;
        expect(other.stderr).toMatch(
          new RegExp(
            `in use by another audit run: pid ${holder} on this host \\(.+\\), since \\d{4}-\\d\\d-\\d\\dT[^ ]+Z \\(run [0-9a-f-]{36}\\)`,
          ),
        );
        expect(other.stderr).toContain(`delete ${lockPath} and run again`);
        expect(other.stderr).not.toContain('auditing');
        expect(other.stdout).toBe('');
      }
      // One baseline record, and the lock is gone with both runs.
      expect(await list(join(folder, 'history'))).toEqual([
        'root',
        expect.stringMatching(/^root\/chg-[0-9a-f]{32}\.json$/),
      ]);
      expect(await list(folder)).not.toContain('.lock');
    }
    // Mostly the second run is refused; when it starts late it finds no change. Either is right.
    expect(seen.size).toBeGreaterThan(0);
  });

  it('takes over the stale lock a SIGKILLed run left behind', { timeout: 30_000 }, async () => {
    const folder = join(folders, 'killed');
    const lockPath = join(folder, '.lock');
    slow.inject('stuck', { type: 'hang' }, { times: Number.POSITIVE_INFINITY });
    const holder = start(['--host', slow.url, '--principal', 'stuck', '--state', folder], environment(KEY));
    const lock = JSON.parse(await whenExists(lockPath));
    expect(lock.pid).toBe(holder.pid);
    holder.child.kill('SIGKILL');
    expect((await holder.done).signal).toBe('SIGKILL');
    expect(JSON.parse(await readFile(lockPath, 'utf8'))).toEqual(lock);
    slow.clearFaults();

    const next = await audit(
      ['--host', slow.url, '--principal', 'stuck', '--state', folder],
      environment(KEY),
    );
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`took over the stale lock of pid ${holder.pid} on ${lock.hostname}`);
    expect(next.stdout).toContain('baseline');
    expect(await list(folder)).not.toContain('.lock');
  });

  it('stops on Ctrl-C saying "interrupted", exits 2 and releases the lock', { timeout: 30_000 }, async () => {
    const folder = join(folders, 'interrupted');
    slow.inject('stuck', { type: 'hang' }, { times: Number.POSITIVE_INFINITY });
    const run = start(['--host', slow.url, '--principal', 'stuck', '--state', folder], environment(KEY));
    await whenExists(join(folder, '.lock'));
    await sleep(200); // into the walk's first (hanging) request
    run.child.kill('SIGINT');
    const outcome = await run.done;
    slow.clearFaults();
    expect(outcome.code, outcome.stderr).toBe(2);
    expect(outcome.stderr).toContain('interrupted (Ctrl-C)');
    expect(await list(folder)).not.toContain('.lock');
  });

  it('runs a dry run beside a live run that holds the folder: a warning, its usual exit code, nothing written', {
    timeout: 30_000,
  }, async () => {
    const folder = join(folders, 'dry-beside');
    const args = ['--host', slow.url, '--principal', 'root', '--state', folder, '--no-color'];
    expect((await audit(args, environment(KEY))).code).toBe(0);
    slow.addKeys('root', 'planned');
    slow.inject('stuck', { type: 'hang' }, { times: Number.POSITIVE_INFINITY });
    const holder = start(['--host', slow.url, '--principal', 'stuck', '--state', folder], environment(KEY));
    try {
      const lock = JSON.parse(await whenExists(join(folder, '.lock')));
      expect(lock.pid).toBe(holder.pid);
      await sleep(200); // into the holder's first (hanging) request
      const before = await fingerprint(folder);
      const outcome = await audit([...args, '--dry-run'], environment(KEY));
      expect(outcome.code, outcome.stderr).toBe(1);
      expect(outcome.stderr).toContain(
        `warning: the state folder ${folder} is in use by another audit run: pid ${holder.pid} on this host`,
      );
      expect(outcome.stderr).toContain('this dry run takes no lock and goes on');
      expect(outcome.stdout).toContain('\n  + planned\n');
      expect(await fingerprint(folder)).toEqual(before);
    } finally {
      holder.child.kill('SIGINT');
      await holder.done;
      slow.clearFaults();
      slow.removeKeys('root', 'planned');
    }
    expect(await list(folder)).not.toContain('.lock');
  });
});
