import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { processStartOf } from '../../functions/adapters/local/state-lock.js';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';
import { quotedName } from '../../functions/commons/text.js';
import type { AuditSummary, PrincipalResult } from '../../functions/core/audit.js';
import type { ChangeRecord } from '../../functions/core/ports.js';
import type { AuditResult } from '../../functions/core/result.js';
import { type CliIo, DEFAULT_STATE_DIR, EXIT, exitCodeOf, runCli } from '../../functions/local/cli.js';
import { auditSummary, principalResult } from '../core/support/fakes.js';

const KEY = 'bsk_cli-Secret-5150';

let simulator: Simulator;
let state: string;
let stdout: string[];
let stderr: string[];

beforeEach(async () => {
  simulator = await startSimulator({
    apiKeys: [KEY],
    pageSize: 2,
    principals: {
      root: { keys: ['ci-deploy', 'grafana-read', 'ops-laptop'] },
      'svc a&b': { keys: ['#primary', 'zürich-backup'] },
    },
  });
  state = await mkdtemp(join(tmpdir(), 'cli-test-'));
  stdout = [];
  stderr = [];
});

afterEach(async () => {
  await simulator.close();
  await rm(state, { recursive: true, force: true });
});

function io(overrides: Partial<CliIo> = {}): CliIo {
  return {
    stdout: (text) => stdout.push(text),
    stderr: (text) => stderr.push(text),
    readApiKey: () => KEY,
    ...overrides,
  };
}

/** Runs the CLI against the simulator with the state folder, plus `args`. */
function cli(args: string[], overrides: Partial<CliIo> = {}): Promise<number> {
  return runCli(
    ['--host', simulator.url, '--principal', 'root', '--principal', 'svc a&b', '--state', state, ...args],
    io(overrides),
  );
}

const out = () => stdout.join('');
const err = () => stderr.join('');

async function files(folder: string): Promise<string[]> {
  try {
    return (await readdir(folder, { recursive: true })).map(String).sort();
  } catch {
    return [];
  }
}

describe('runCli', () => {
  it('exits 0 after a baseline, printing one notice per principal and a summary', async () => {
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(out()).toContain('BigState key audit baseline for root (3 keys)');
    expect(out()).toContain('BigState key audit baseline for svc a&b (2 keys)');
    expect(out()).toMatch(/ {2}root {7}baseline {3}3 key\(s\) recorded/);
    expect(out()).not.toContain('+ ci-deploy');
    expect(err()).toContain(`auditing 2 principal(s) on ${simulator.url}; state in ${state}\n`);
    expect(await files(state)).toEqual(
      expect.arrayContaining([join('snapshots', 'root.json'), join('snapshots', 'svc%20a%26b.json')]),
    );
  });

  it('exits 1 when keys changed, listing them; 0 again once nothing changed', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'unknown-laptop');
    simulator.removeKeys('svc a&b', '#primary');
    expect(await cli([])).toBe(EXIT.changed);
    expect(out()).toContain('BigState API keys changed for root (+1 -0)');
    expect(out()).toContain('  + unknown-laptop\n');
    expect(out()).toContain('  - #primary\n');
    expect(out()).toMatch(/svc a&b {4}changed {4}1 key\(s\), \+0 -1/);

    stdout = [];
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(out()).toMatch(/root {7}no change {2}4 key\(s\), \+0 -0/);
  });

  it('exits 2 for a failed principal, after the others were audited and reported', async () => {
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli([])).toBe(EXIT.error);
    expect(out()).toContain('BigState key audit baseline for root (3 keys)');
    expect(out()).toContain('BigState key audit FAILED for svc a&b');
    expect(out()).toMatch(/svc a&b {4}FAILED {5}walking the keys: BigState GET/);
    // A failed audit, told apart from a usage error, in one line naming the principal.
    expect(err()).toContain('audit failed: 1 of 2 principal(s) failed: svc a&b (ForbiddenError)\n');
    expect(err()).not.toContain('usage error');
    expect(await files(join(state, 'snapshots'))).toContain('root.json');
    // svc a&b recorded no inventory: once it answers, its first complete walk is its baseline.
    simulator.clearFaults();
    stdout = [];
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(out()).toContain('BigState key audit baseline for svc a&b (2 keys)');
  });

  it('prints one JSON document with the result on stdout for --json, progress on stderr', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'new-key');
    expect(await cli(['--json'])).toBe(EXIT.changed);
    expect(stdout).toHaveLength(1);
    const result = JSON.parse(out()) as AuditResult;
    expect(result.runId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(result).toMatchObject({ ok: true, dryRun: false });
    expect(result.principals).toEqual([
      expect.objectContaining({
        principal: 'root',
        status: 'ok',
        baseline: false,
        keyCount: 4,
        added: 1,
        removed: 0,
        addedKeys: ['new-key'],
        removedKeys: [],
        keysTruncated: false,
        changeId: expect.stringMatching(/^chg-[0-9a-f]{32}$/),
      }),
      expect.objectContaining({ principal: 'svc a&b', status: 'ok', keyCount: 2, added: 0, removed: 0 }),
    ]);
    expect(err()).toContain('auditing 2 principal(s)');
  });

  it('prints JSON with the failure for --json when a principal fails, and exits 2', async () => {
    simulator.inject('root', { type: 'status', status: 400 });
    expect(await cli(['--json'])).toBe(EXIT.error);
    const result = JSON.parse(out()) as AuditResult;
    expect(result.ok).toBe(false);
    expect(result.principals[0]).toMatchObject({ principal: 'root', status: 'failed', keyCount: null });
    expect(result.principals[0]?.reason).toMatch(/^walking the keys: .*400/);
  });

  it('writes nothing for --dry-run and still reports the diff', async () => {
    expect(await cli(['--dry-run'])).toBe(EXIT.unchanged);
    expect(await files(state)).toEqual([]);
    expect(out()).toContain('(dry run: nothing written or published)');
    expect(out()).not.toContain('BigState key audit baseline for');

    await cli([]);
    const before = await files(state);
    stdout = [];
    simulator.addKeys('root', 'dry-new');
    expect(await cli(['--dry-run', '--json'])).toBe(EXIT.changed);
    expect(JSON.parse(out()).principals[0].addedKeys).toEqual(['dry-new']);
    expect(await files(state)).toEqual(before);
    stdout = [];
    expect(await cli([])).toBe(EXIT.changed);
  });

  it('passes --pattern to BigState', async () => {
    expect(await cli(['--pattern', '*-read', '--json'])).toBe(EXIT.unchanged);
    expect(JSON.parse(out()).principals.map((p: { keyCount: number }) => p.keyCount)).toEqual([1, 0]);
  });

  it('uses .bigstate-audit in the working folder by default', async () => {
    expect(DEFAULT_STATE_DIR).toBe('.bigstate-audit');
    const code = await runCli(['--host', simulator.url, '--principal', 'root', '--dry-run'], io());
    expect(code).toBe(EXIT.unchanged);
    expect(err()).toContain(`state in ${resolve('.bigstate-audit')}\n`);
  });

  it('exits 2 without calling BigState and without printing a key when BIGSTATE_API_KEY is missing', async () => {
    expect(await cli([], { readApiKey: () => undefined })).toBe(EXIT.error);
    expect(err()).toContain('BIGSTATE_API_KEY');
    expect(err().startsWith('error: ')).toBe(true);
    expect(stdout).toEqual([]);
    expect(simulator.stats.requests).toBe(0);
  });

  it('exits 2 without printing an unusable key', async () => {
    expect(await cli([], { readApiKey: () => 'bsk_has Space-8080' })).toBe(EXIT.error);
    expect(err()).toContain('BIGSTATE_API_KEY');
    expect(err()).not.toContain('Space-8080');
    expect(simulator.stats.requests).toBe(0);
  });

  it('never prints the key, also when BigState refuses it', async () => {
    await cli([]);
    expect(out() + err()).not.toContain(KEY);
    stdout = [];
    stderr = [];
    simulator.setApiKeys(['another-key']);
    expect(await cli([])).toBe(EXIT.error);
    expect(out()).toContain('FAILED');
    expect(out() + err()).not.toContain(KEY);
  });

  it('exits 2 when interrupted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('interrupted (Ctrl-C)'));
    expect(await cli([], { signal: controller.signal })).toBe(EXIT.error);
    expect(out()).toContain('FAILED');
    expect(simulator.stats.requests).toBe(0);
  });
});

describe('runCli usage errors', () => {
  it.each<[string, string[], string]>([
    ['no arguments', [], 'usage error: --host is required (see --help)'],
    [
      'no principal',
      ['--host', 'https://api.bigstate.dev'],
      'usage error: --principal or --principal-pattern is required (see --help)',
    ],
    [
      'a bad principal pattern',
      ['--host', 'https://h.example', '--principal-pattern', 'a*b'],
      'usage error: --principal-pattern must be one of the forms x, *x, x*, *x* (a * only at the start or end) (see --help)',
    ],
    [
      'an unknown flag, with the nearest known one',
      ['--host', 'https://h.example', '--principl', 'p'],
      'usage error: unknown option --principl: did you mean --principal? (see --help)',
    ],
    [
      'an unknown flag with nothing near',
      ['--host', 'https://h.example', '--principal', 'p', '--frobnicate'],
      'usage error: unknown option --frobnicate (see --help)',
    ],
    [
      'an unknown short flag',
      ['--host', 'https://h.example', '--principal', 'p', '-x'],
      'usage error: unknown option -x (see --help)',
    ],
    [
      'an unknown flag holding control characters',
      ['--host', 'https://h.example', '--principal', 'p', '--a\u001b[31m'],
      'usage error: unknown option "--a\\u001b[31m" (see --help)',
    ],
    [
      'a positional argument',
      ['--host', 'https://h.example', '--principal', 'p', 'extra'],
      'usage error: unexpected argument "extra" (see --help)',
    ],
    [
      'an argument after --',
      ['--host', 'https://h.example', '--principal', 'p', '--', '--json'],
      'usage error: unexpected argument "--json" (see --help)',
    ],
    ['a flag without its value', ['--host'], 'usage error: option --host needs a value (see --help)'],
    [
      'a flag whose value is the next flag',
      ['--host', '--principal', 'p'],
      'usage error: option --host needs a value, got "--principal" (for a value starting with "-", write --host=VALUE) (see --help)',
    ],
    [
      'a value given to a flag',
      ['--host', 'https://h.example', '--principal', 'p', '--json=yes'],
      'usage error: option --json takes no value (see --help)',
    ],
    [
      'a single-valued flag given twice',
      ['--host', 'https://h.example', '--host', 'https://g.example', '--principal', 'p'],
      'usage error: option --host is given more than once (see --help)',
    ],
    [
      'plain http on a remote host',
      ['--host', 'http://api.bigstate.dev', '--principal', 'p'],
      'usage error: --host must use https (plain http is accepted for loopback hosts only) (see --help)',
    ],
    [
      'a host that is no URL',
      ['--host', 'api.bigstate.dev', '--principal', 'p'],
      'usage error: --host must be an absolute URL such as https://api.bigstate.dev (see --help)',
    ],
    [
      'a bad pattern',
      ['--host', 'https://h.example', '--principal', 'p', '--pattern', 'a*b'],
      'usage error: --pattern must be one of the forms x, *x, x*, *x* (a * only at the start or end) (see --help)',
    ],
    [
      'a principal named twice',
      ['--host', 'https://h.example', '--principal', 'p', '--principal', 'p'],
      'usage error: --principal lists "p" twice (see --help)',
    ],
    [
      'an empty principal',
      ['--host', 'https://h.example', '--principal', ''],
      'usage error: --principal[0] a principal name must not be empty (see --help)',
    ],
    [
      'an empty state folder (the working folder, otherwise)',
      ['--host', 'https://h.example', '--principal', 'p', '--state='],
      'usage error: option --state needs a path, got "" (see --help)',
    ],
  ])('exits 2 for %s, in one line naming it, without the usage', async (_what, argv, message) => {
    expect(await runCli(argv, io())).toBe(EXIT.error);
    expect(err()).toBe(`${message}\n`);
    expect(stdout).toEqual([]);
    expect(simulator.stats.requests).toBe(0);
  });

  it('takes a value starting with "-" written with =', async () => {
    simulator.setKeys('-dash', ['k']);
    expect(await cli(['--principal=-dash', '--json'])).toBe(EXIT.unchanged);
    expect(JSON.parse(out()).principals.map((p: { principal: string }) => p.principal)).toEqual([
      'root',
      'svc a&b',
      '-dash',
    ]);
  });

  it('prints the usage for -h and --help wherever they are, even on an otherwise bad line', async () => {
    for (const argv of [['-h'], ['--help'], ['--principl', 'x', '--help'], ['--host', 'x', '-h']]) {
      stdout = [];
      expect(await runCli(argv, io())).toBe(EXIT.unchanged);
      expect(out()).toMatch(/^Usage: npm run audit -- --host URL --principal P/);
      for (const flag of ['--dry-run', '--json', '--no-color', '--verbose', '-h, --help', '--version']) {
        expect(out()).toContain(flag);
      }
    }
    expect(stderr).toEqual([]);
  });

  it('prints the version of package.json for --version', async () => {
    const { version } = JSON.parse(await readFile(resolve('package.json'), 'utf8'));
    expect(await runCli(['--version'], io())).toBe(EXIT.unchanged);
    expect(out()).toBe(`bigstate-key-audit ${version}\n`);
    expect(stderr).toEqual([]);
  });
});

describe('exitCodeOf', () => {
  const result = (overrides: Partial<PrincipalResult>): PrincipalResult =>
    principalResult({ principal: 'p', keyCount: 1, ...overrides });
  const summary = (principals: PrincipalResult[]): AuditSummary =>
    auditSummary(principals, { runId: 'r', startedAt: '', finishedAt: '', durationMs: 0 });

  it('is 0 when nothing changed, a baseline included', () => {
    expect(EXIT).toEqual({ unchanged: 0, changed: 1, error: 2 });
    expect(exitCodeOf(summary([result({}), result({ baseline: true, keyCount: 5 })]))).toBe(0);
  });

  it('is 1 when a key was added or removed', () => {
    expect(exitCodeOf(summary([result({}), result({ added: ['a'] })]))).toBe(1);
    expect(exitCodeOf(summary([result({ removed: ['r'] })]))).toBe(1);
  });

  it('is 1 when a change of an earlier run is printed only now (its run was killed before it printed it)', () => {
    const record = (kind: 'baseline' | 'changed') => ({ kind }) as ChangeRecord;
    expect(exitCodeOf(summary([result({ redelivered: [record('changed')] })]))).toBe(1);
    expect(exitCodeOf(summary([result({})]), [record('changed')])).toBe(1);
    // A baseline printed late is still not a change.
    expect(exitCodeOf(summary([result({ redelivered: [record('baseline')] })]))).toBe(0);
    expect(exitCodeOf(summary([result({})]), [record('baseline')])).toBe(0);
  });

  it('is 2 when a principal failed, changes elsewhere notwithstanding', () => {
    expect(
      exitCodeOf(summary([result({ added: ['a'] }), result({ status: 'failed', keyCount: null })])),
    ).toBe(2);
  });
});

describe('runCli: the state folder lock', () => {
  const lockPath = () => join(state, '.lock');
  const holder = (pid: number) => ({
    pid,
    hostname: hostname(),
    startedAt: '2026-11-28T09:00:00.000Z',
    runId: 'a-run-elsewhere',
  });

  /** A pid no process has any more: a node process that has already exited. */
  async function deadPid(): Promise<number> {
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', 'console.log(process.pid)']);
    return Number(stdout.trim());
  }

  /** The lock of a run that is alive: the test runner, our parent process, recorded as it really is. */
  async function liveHolder() {
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const processStart = await processStartOf(process.ppid);
    return { ...holder(process.ppid), startedAt, ...(processStart === undefined ? {} : { processStart }) };
  }

  it('exits 2 at once while another run holds the folder, naming it and the file to delete', async () => {
    const live = await liveHolder();
    const text = `${JSON.stringify(live)}\n`;
    await writeFile(lockPath(), text);
    for (const extra of [[], ['--json']]) {
      stdout = [];
      stderr = [];
      expect(await cli(extra)).toBe(EXIT.error);
      expect(err()).toBe(
        `error: the state folder ${state} is in use by another audit run: pid ${process.ppid} on this host (${hostname()}), since ${live.startedAt} (run a-run-elsewhere). If you are sure no audit run is using it (e.g. that process was killed), delete ${lockPath()} and run again.\n`,
      );
      expect(stdout).toEqual([]);
    }
    expect(simulator.stats.requests).toBe(0);
    expect(await files(state)).toEqual(['.lock']);
    expect(await readFile(lockPath(), 'utf8')).toBe(text);
  });

  it('refuses a second run of this same process while the first holds the folder', async () => {
    const error: string[] = [];
    let second: Promise<number> | undefined;
    simulator.onPage(() => {
      second ??= cli([], { stderr: (text) => error.push(text) });
    });
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(await second).toBe(EXIT.error);
    expect(error.join('')).toContain(`is in use by another audit run: pid ${process.pid} on this host`);
  });

  it('takes over the lock a killed run left naming our own pid (as PID 1 of a container), saying so', async () => {
    // The killed run was this pid with this hostname (a container), but it is not us: no run of ours holds it.
    const killed = { ...holder(process.pid), startedAt: '2024-01-01T00:00:00.000Z', runId: 'killed-run' };
    await writeFile(lockPath(), JSON.stringify(killed));
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(err()).toContain(
      `took over the stale lock of pid ${process.pid} on ${hostname()} (since 2024-01-01T00:00:00.000Z): that pid is now this process's own, so the run that wrote the lock is gone\n`,
    );
    expect(out()).toContain('BigState key audit baseline for root');
    expect(await files(state)).not.toContain('.lock');
  });

  it('never takes over the lock of another host', async () => {
    await writeFile(lockPath(), JSON.stringify({ ...holder(await deadPid()), hostname: 'ci-runner-3' }));
    expect(await cli([])).toBe(EXIT.error);
    expect(err()).toContain('on another host, ci-runner-3');
    expect(simulator.stats.requests).toBe(0);
  });

  it('takes over the lock of a run whose process is gone, saying so', async () => {
    const pid = await deadPid();
    await writeFile(lockPath(), JSON.stringify(holder(pid)));
    expect(await cli([])).toBe(EXIT.unchanged);
    expect(err()).toContain(
      `took over the stale lock of pid ${pid} on ${hostname()} (since 2026-11-28T09:00:00.000Z): that process is gone\n`,
    );
    expect(out()).toContain('BigState key audit baseline for root');
    expect(await files(state)).not.toContain('.lock');
  });

  it('holds the lock, with its own run id, for the whole run', async () => {
    const during: unknown[] = [];
    simulator.onPage(() => {
      during.push(readFile(lockPath(), 'utf8').then((text) => JSON.parse(text)));
    });
    expect(await cli(['--json'])).toBe(EXIT.unchanged);
    const runId = JSON.parse(out()).runId;
    const locks = await Promise.all(during);
    expect(locks.length).toBeGreaterThan(2);
    for (const lock of locks) {
      expect(lock).toEqual({
        pid: process.pid,
        hostname: hostname(),
        startedAt: expect.any(String),
        runId,
        ...(process.platform === 'linux' ? { processStart: await processStartOf(process.pid) } : {}),
      });
    }
  });

  it('releases the lock on every way out: changes, a failed principal, an interruption', async () => {
    const unlocked = async () => expect(await files(state)).not.toContain('.lock');
    expect(await cli([])).toBe(EXIT.unchanged);
    await unlocked();
    simulator.addKeys('root', 'new');
    expect(await cli([])).toBe(EXIT.changed);
    await unlocked();
    simulator.inject('root', { type: 'status', status: 403 });
    expect(await cli([])).toBe(EXIT.error);
    await unlocked();
    expect(await cli([], { signal: AbortSignal.abort(new Error('interrupted (Ctrl-C)')) })).toBe(EXIT.error);
    await unlocked();
    expect(await cli(['--dry-run'])).toBe(EXIT.unchanged);
    await unlocked();
  });

  it('releases the lock when the run throws (stdout is gone)', async () => {
    const broken = () => {
      throw new Error('write EPIPE');
    };
    expect(await cli(['--json'], { stdout: broken })).toBe(EXIT.error);
    expect(err()).toContain('audit failed: write EPIPE\n');
    expect(await files(state)).not.toContain('.lock');
    expect(await cli([], { stdout: broken })).toBe(EXIT.error);
    expect(await files(state)).not.toContain('.lock');
  });

  it('exits 2 naming the problem when the state folder cannot be created', async () => {
    const blocked = join(state, 'file');
    await writeFile(blocked, '');
    const code = await runCli(
      ['--host', simulator.url, '--principal', 'root', '--state', join(blocked, 'state')],
      io(),
    );
    expect(code).toBe(EXIT.error);
    expect(err()).toMatch(/^error: .*(ENOTDIR|EEXIST)/);
    expect(simulator.stats.requests).toBe(0);
  });
});

describe('runCli --dry-run: writes nothing, takes no lock', () => {
  const lockPath = () => join(state, '.lock');

  /** Every entry below `folder` (the folder too) with its kind, size, mtime and content: any write shows. */
  async function fingerprint(folder: string): Promise<string[]> {
    const self = await stat(folder).then(
      (info) => `. dir ${info.mtimeMs}`,
      () => 'missing',
    );
    const names = (await readdir(folder, { recursive: true }).catch(() => [])).map(String).sort();
    const entries = await Promise.all(
      names.map(async (name) => {
        const path = join(folder, name);
        const info = await stat(path);
        if (info.isDirectory()) return `${name} dir ${info.mtimeMs}`;
        return `${name} file ${info.size} ${info.mtimeMs} ${await readFile(path, 'base64')}`;
      }),
    );
    return [self, ...entries];
  }

  /** A state folder with snapshots, history and a report, and a change in BigState a dry run would plan. */
  async function lived(): Promise<void> {
    expect(await cli([])).toBe(EXIT.unchanged);
    simulator.addKeys('root', 'planned');
    simulator.removeKeys('svc a&b', '#primary');
    stdout = [];
    stderr = [];
  }

  it('leaves a state folder byte for byte as it was (entries, contents, mtimes), text and --json', async () => {
    await lived();
    const before = await fingerprint(state);
    expect(before.length).toBeGreaterThan(4);
    for (const extra of [[], ['--json']]) {
      expect(await cli(['--dry-run', ...extra])).toBe(EXIT.changed);
      expect(await fingerprint(state)).toEqual(before);
    }
    expect(err()).not.toContain('warning');
  });

  it('creates nothing when the state folder does not exist', async () => {
    const missing = join(state, 'not', 'yet');
    const before = await fingerprint(state);
    const code = await runCli(
      ['--host', simulator.url, '--principal', 'root', '--state', missing, '--dry-run'],
      io(),
    );
    expect(code).toBe(EXIT.unchanged);
    expect(out()).toContain('root: baseline, 3 keys recorded');
    expect(await fingerprint(state)).toEqual(before);
  });

  it('runs under the live lock of another run, warning that the state may change under it; exits as any dry run', async () => {
    await lived();
    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    const unlocked = out();
    stdout = [];
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const processStart = await processStartOf(process.ppid);
    const live = {
      pid: process.ppid,
      hostname: hostname(),
      startedAt,
      runId: 'scheduled-run',
      ...(processStart === undefined ? {} : { processStart }),
    };
    await writeFile(lockPath(), `${JSON.stringify(live)}\n`);
    const before = await fingerprint(state);

    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    expect(err()).toContain(
      `warning: the state folder ${state} is in use by another audit run: pid ${process.ppid} on this host (${hostname()}), since ${startedAt} (run scheduled-run); this dry run takes no lock and goes on, reading the state as it is now; that run may change it meanwhile, so run again once it is done for a plan that holds\n`,
    );
    // The same plan as without the lock, and nothing touched: the other run's lock stays as it was.
    const plan = (text: string) => text.replace(/\nRun [^\n]*/, '\nRun (id, time)');
    expect(plan(out())).toBe(plan(unlocked));
    expect(await fingerprint(state)).toEqual(before);

    stdout = [];
    expect(await cli(['--dry-run', '--json'])).toBe(EXIT.changed);
    expect(JSON.parse(out()).dryRun).toBe(true);
    expect(await fingerprint(state)).toEqual(before);
    // A real run is still refused, and leaves the lock as it was.
    expect(await cli([])).toBe(EXIT.error);
    expect(await readFile(lockPath(), 'utf8')).toBe(`${JSON.stringify(live)}\n`);
  });

  it('leaves a stale lock for a real run to take over, with a note', async () => {
    await lived();
    const { stdout: pid } = await promisify(execFile)(process.execPath, ['-e', 'console.log(process.pid)']);
    const gone = {
      pid: Number(pid.trim()),
      hostname: hostname(),
      startedAt: '2026-01-01T00:00:00.000Z',
      runId: 'killed',
    };
    await writeFile(lockPath(), JSON.stringify(gone));
    const before = await fingerprint(state);
    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    expect(err()).toContain(
      `note: the state folder's lock is stale (pid ${gone.pid} on this host (${hostname()}), since 2026-01-01T00:00:00.000Z (run killed): that process is gone); a real run would take it over\n`,
    );
    expect(await fingerprint(state)).toEqual(before);
  });

  it('warns about a lock file it cannot read as a lock, and goes on', async () => {
    await lived();
    await writeFile(lockPath(), 'locked by bob');
    const before = await fingerprint(state);
    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    expect(err()).toContain(
      `warning: the state folder's lock ${lockPath()} is not a lock this tool wrote: a real run would be refused until it is deleted; this dry run takes no lock and goes on\n`,
    );
    expect(await fingerprint(state)).toEqual(before);
  });
});

describe('runCli --dry-run: the plan of what a real run would publish', () => {
  it('shows the baselines a first run would record, writes nothing, exits 0', async () => {
    expect(await cli(['--dry-run'])).toBe(EXIT.unchanged);
    expect(out()).toContain(
      [
        'Dry run: a real run would publish the following (nothing was written or published).',
        '',
        'root: baseline, 3 keys recorded (no key is reported added)',
        '',
        'svc a&b: baseline, 2 keys recorded (no key is reported added)',
        '',
        'Plan: 0 principals changed (+0 -0), 2 baselines, 0 unchanged, 0 failed.',
        '',
      ].join('\n'),
    );
    expect(out()).not.toContain('+ ci-deploy');
    expect(await files(state)).toEqual([]);
  });

  it('lists the names a real run would report added and removed, then the summary, and exits 1', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'unknown-laptop', 'new\u001b[31mred');
    simulator.removeKeys('root', 'grafana-read');
    const before = await files(state);
    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    const text = out();
    expect(text).toContain(
      [
        'Dry run: a real run would publish the following (nothing was written or published).',
        '',
        'root: 2 added, 1 removed (4 keys after)',
        `  + ${quotedName('new\u001b[31mred')}`,
        '  + unknown-laptop',
        '  - grafana-read',
        '',
        'Plan: 1 principal changed (+2 -1), 0 baselines, 1 unchanged, 0 failed.',
        '',
      ].join('\n'),
    );
    expect(text).not.toContain('\u001b');
    // Then the summary table, and no notice: nothing was published.
    expect(text.indexOf('Plan: ')).toBeLessThan(text.indexOf('(dry run: nothing written or published)'));
    expect(text).toMatch(/ {2}root {7}changed {4}4 key\(s\), \+2 -1/);
    expect(text).not.toContain('BigState API keys changed for');
    expect(await files(state)).toEqual(before);
    // A real run then publishes exactly that.
    stdout = [];
    expect(await cli([])).toBe(EXIT.changed);
    expect(out()).toContain('  + unknown-laptop\n');
    expect(out()).toContain('  - grafana-read\n');
  });

  it('says when a real run would publish nothing, and exits 0', async () => {
    await cli([]);
    stdout = [];
    expect(await cli(['--dry-run'])).toBe(EXIT.unchanged);
    expect(out()).toContain(
      'Dry run: a real run would publish nothing (nothing was written or published).\n\nPlan: 0 principals changed (+0 -0), 0 baselines, 2 unchanged, 0 failed.\n',
    );
  });

  it('shows a failed principal with its reason and exits 2, after the others', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'new-key');
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli(['--dry-run'])).toBe(EXIT.error);
    expect(out()).toContain('root: 1 added, 0 removed (4 keys after)\n  + new-key\n');
    expect(out()).toMatch(/\nsvc a&b: FAILED walking the keys: BigState GET .*403/);
    expect(out()).toContain('Plan: 1 principal changed (+1 -0), 0 baselines, 0 unchanged, 1 failed.');
    expect(err()).toContain('audit failed: 1 of 2 principal(s) failed: svc a&b (ForbiddenError)\n');
  });

  it('counts a change of an earlier run that a real run would print first (exit 1)', async () => {
    await cli([]);
    simulator.addKeys('root', 'late-key');
    // A --json run whose document never got out: the change stays owed to the terminal.
    const broken = () => {
      throw new Error('write EPIPE');
    };
    expect(await cli(['--json'], { stdout: broken })).toBe(EXIT.error);
    stdout = [];
    stderr = [];
    expect(await cli(['--dry-run'])).toBe(EXIT.changed);
    expect(out()).toMatch(
      /\nroot: no change\n {2}first, a change of an earlier run not printed yet: chg-[0-9a-f]{32} \(\+1 -0\)\n/,
    );
    expect(out()).toContain(
      'Plan: 0 principals changed (+0 -0), 0 baselines, 2 unchanged, 0 failed, 1 earlier change to print.',
    );
    // The real run prints it, and exits 1 as the dry run said.
    stdout = [];
    expect(await cli([])).toBe(EXIT.changed);
    expect(out()).toContain('  + late-key\n');
  });

  it('has the names in the --json document, exactly', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('svc a&b', 'new\u001b[31mred');
    simulator.removeKeys('svc a&b', '#primary');
    expect(await cli(['--dry-run', '--json'])).toBe(EXIT.changed);
    const document = JSON.parse(out());
    expect(document.dryRun).toBe(true);
    expect(document.changes).toEqual([]);
    expect(document.principals[1]).toMatchObject({
      principal: 'svc a&b',
      addedKeys: ['new\u001b[31mred'],
      removedKeys: ['#primary'],
      changeId: expect.stringMatching(/^chg-/),
      changeRecordLocation: null,
    });
  });
});

describe('runCli --json: schema 2', () => {
  const PRINCIPAL_FIELDS = [
    'principal',
    'status',
    'reason',
    'errorName',
    'baseline',
    'keyCount',
    'added',
    'removed',
    'addedKeys',
    'removedKeys',
    'keysTruncated',
    'changeId',
    'changeRecordLocation',
    'redeliveredChangeIds',
    'pendingChangeIds',
    'newPrincipal',
    'principalRemoved',
    'info',
    'staleKeys',
  ];

  it('has every field on every row, null where it does not apply, and errorName on failed rows', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'new-key');
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli(['--json', '--pattern', '*'])).toBe(EXIT.error);
    const document = JSON.parse(out());
    expect(Object.keys(document)).toEqual([
      'schemaVersion',
      'runId',
      'ok',
      'dryRun',
      'host',
      'pattern',
      'principalPattern',
      'stateDir',
      'startedAt',
      'finishedAt',
      'durationMs',
      'runFailure',
      'principals',
      'changes',
    ]);
    expect(document).toMatchObject({
      schemaVersion: 2,
      ok: false,
      dryRun: false,
      host: simulator.url,
      pattern: '*',
      principalPattern: null,
      stateDir: state,
      runFailure: null,
    });
    for (const row of document.principals) expect(Object.keys(row)).toEqual(PRINCIPAL_FIELDS);
    const [root, failed] = document.principals;
    // A new pattern starts a new baseline.
    expect(root).toMatchObject({ status: 'ok', reason: null, errorName: null, baseline: true, keyCount: 4 });
    expect(root.changeId).toMatch(/^chg-[0-9a-f]{32}$/);
    expect(root.changeRecordLocation).toContain(join(state, 'history'));
    expect(failed).toMatchObject({
      principal: 'svc a&b',
      status: 'failed',
      errorName: 'ForbiddenError',
      keyCount: null,
      changeId: null,
      changeRecordLocation: null,
      addedKeys: [],
      removedKeys: [],
    });
    expect(failed.reason).toMatch(/^walking the keys: .*403/);
    expect(document.changes).toHaveLength(1);
    expect(Object.keys(document.changes[0])).toEqual([
      'schemaVersion',
      'changeId',
      'runId',
      'principal',
      'kind',
      'pattern',
      'detectedAt',
      'previousSnapshotVersion',
      'added',
      'removed',
      'counts',
      'snapshotLocation',
      'changeRecordLocation',
      'newPrincipal',
      'info',
      'stale',
      'maxKeyAgeDays',
    ]);
    expect(err()).toContain('audit failed: 1 of 2 principal(s) failed: svc a&b (ForbiddenError)\n');
  });

  it('has pattern null without --pattern, and carries names exactly', async () => {
    simulator.setKeys('root', ['tab\there', 'bidi\u202eevil', 'zürich']);
    expect(await cli(['--json'])).toBe(EXIT.unchanged);
    const document = JSON.parse(out());
    expect(document.pattern).toBeNull();
    expect(document.changes.find((c: { principal: string }) => c.principal === 'root').counts.total).toBe(3);
    simulator.addKeys('root', 'new\u2028line');
    stdout = [];
    expect(await cli(['--json'])).toBe(EXIT.changed);
    expect(JSON.parse(out()).principals[0].addedKeys).toEqual(['new\u2028line']);
  });

  it('is never coloured, also on a terminal that takes colour', async () => {
    const terminal = { isTTY: true, color: true };
    simulator.setKeys('root', ['a']);
    expect(await cli(['--json'], { stdoutTerminal: terminal })).toBe(EXIT.unchanged);
    expect(out()).not.toContain('\u001b');
    expect(JSON.parse(out()).schemaVersion).toBe(2);
  });
});

describe('runCli colour and progress', () => {
  const colour = { isTTY: true, color: true };
  const ESC = '\u001b';

  it('colours for a terminal that takes colour: added green, removed red, FAILED red and bold', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'new-key');
    simulator.removeKeys('root', 'ops-laptop');
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli([], { stdoutTerminal: colour })).toBe(EXIT.error);
    const text = out();
    expect(text).toContain(`${ESC}[32m  + new-key${ESC}[39m\n`);
    expect(text).toContain(`${ESC}[31m  - ops-laptop${ESC}[39m\n`);
    expect(text).toContain(`${ESC}[31m${ESC}[1mBigState key audit FAILED for svc a&b${ESC}[22m${ESC}[39m\n`);
    expect(text).toContain(`${ESC}[31m${ESC}[1mFAILED${ESC}[22m${ESC}[39m     walking the keys`);
    // The change id line stays plain, for whoever greps it.
    expect(text).toMatch(/^Change id: chg-[0-9a-f]{32}$/m);
  });

  it('colours the dry-run plan, and dims what needs no action', async () => {
    await cli([]);
    stdout = [];
    simulator.addKeys('root', 'new-key');
    expect(await cli(['--dry-run'], { stdoutTerminal: colour })).toBe(EXIT.changed);
    expect(out()).toContain(`${ESC}[32m  + new-key${ESC}[39m`);
    expect(out()).toContain(`${ESC}[2mno change  2 key(s), +0 -0${ESC}[22m`);
  });

  it('prints no colour for --no-color, nor when the stream takes none (a pipe, NO_COLOR)', async () => {
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli(['--no-color'], { stdoutTerminal: colour, stderrTerminal: colour })).toBe(EXIT.error);
    expect(await cli([], { stdoutTerminal: { isTTY: true, color: false } })).toBe(EXIT.unchanged);
    expect(await cli(['--dry-run'], { stdoutTerminal: { isTTY: false, color: false } })).toBe(EXIT.unchanged);
    // No style at all: the progress line's erase (on a terminal stderr) is no colour.
    expect(out()).not.toContain(ESC);
    expect(err().replaceAll(`\r${ESC}[2K`, '')).not.toContain(ESC);
    expect(out()).toContain('FAILED');
  });

  it('prints one plain line per principal on stderr when it is not a terminal', async () => {
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    expect(await cli([])).toBe(EXIT.error);
    const lines = err().split('\n');
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\[[12]\/2\] svc a&b: FAILED \(ForbiddenError\) walking the keys: BigState GET \S+ -> HTTP 403: .+$/,
      ),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^\[[12]\/2\] root: baseline, 3 keys$/));
    simulator.addKeys('root', 'new-key');
    stderr = [];
    expect(await cli([])).toBe(EXIT.changed);
    expect(
      err()
        .split('\n')
        .filter((line) => line.startsWith('[')),
    ).toEqual([
      expect.stringMatching(/^\[[12]\/2\] (root: ok, 4 keys, \+1 -0|svc a&b: baseline, 2 keys)$/),
      expect.stringMatching(/^\[[12]\/2\] (root: ok, 4 keys, \+1 -0|svc a&b: baseline, 2 keys)$/),
    ]);
    expect(err()).not.toContain('\r');
    expect(err()).not.toContain('principal audited');
  });

  it('redraws one progress line on a terminal, taken down before any other output and at the end', async () => {
    // Slow pages, so the line is redrawn while the walks are under way.
    const slow = await startSimulator({
      apiKeys: [KEY],
      pageSize: 5,
      latencyMs: 40,
      principals: {
        root: { keys: Array.from({ length: 40 }, (_, i) => `k-${i}`) },
        'svc a&b': { keys: ['x'] },
      },
    });
    const terminal = { isTTY: true, color: false, columns: 50 };
    const events: string[] = [];
    const args = ['--host', slow.url, '--principal', 'root', '--principal', 'svc a&b', '--state', state];
    const code = await runCli(
      args,
      io({
        stdoutTerminal: terminal,
        stderrTerminal: terminal,
        stdout: (text) => events.push(`out:${text}`),
        stderr: (text) => events.push(`err:${text}`),
      }),
    ).finally(() => slow.close());
    expect(code).toBe(EXIT.unchanged);
    const erase = 'err:\r\u001b[2K';
    const progress = events
      .filter((event) => event.startsWith(erase) && event.length > erase.length)
      .map((event) => event.slice(erase.length));
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.some((line) => /^[012]\/2 principals done · /.test(line))).toBe(true);
    expect(progress.some((line) => /root [1-9]\d* keys read/.test(line))).toBe(true);
    // Never wider than the terminal.
    for (const line of progress) expect([...line].length).toBeLessThan(50);
    // Nothing else is written while the line is up (stdout or stderr), and it is taken down at the end.
    let shown = false;
    for (const event of events) {
      if (event.startsWith(erase)) shown = event.length > erase.length;
      else expect(shown, JSON.stringify(event)).toBe(false);
    }
    expect(shown).toBe(false);
    expect(events.at(-1)?.startsWith('out:')).toBe(true);
    expect(events.filter((event) => event.startsWith('err:[')).length).toBe(0);
  });

  it('prints the audit log lines on stderr for --verbose', async () => {
    expect(await cli(['--verbose'])).toBe(EXIT.unchanged);
    expect(err()).toContain('[info] principal audited principal="root"');
    expect(err()).toContain('[debug] BigState response');
    expect(err()).toContain('[2/2]');
  });
});

describe('runCli --principal-pattern (discovery)', () => {
  /** Runs the CLI with discovery of every principal (no --principal). */
  function discover(args: string[], overrides: Partial<CliIo> = {}): Promise<number> {
    return runCli(
      ['--host', simulator.url, '--principal-pattern', '*', '--state', state, ...args],
      io(overrides),
    );
  }

  it('audits every principal found, marking new ones, with progress out of an unknown total', async () => {
    expect(await discover(['--json'])).toBe(EXIT.unchanged);
    const document = JSON.parse(out());
    expect(document.principalPattern).toBe('*');
    expect(document.principals.map((p: { principal: string }) => p.principal).sort()).toEqual([
      'root',
      'svc a&b',
    ]);
    for (const row of document.principals) expect(row).toMatchObject({ baseline: true, newPrincipal: true });
    expect(err()).toContain('auditing the principals matching "*" on ');
    expect(err()).toMatch(/^\[1\/\?\] (root|svc a&b): baseline, \d keys/m);
    expect(err()).toMatch(/^\[2\/\?\] (root|svc a&b): baseline, \d keys/m);
  });

  it('reports a principal gone from BigState once, as a change (exit 1), in the plan, the table and --json', async () => {
    expect(await discover([])).toBe(EXIT.unchanged);
    simulator.removePrincipal('svc a&b');
    stdout = [];
    // The dry run shows it, with the keys it had, and keeps the state.
    expect(await discover(['--dry-run'])).toBe(EXIT.changed);
    expect(out()).toContain(
      'svc a&b: principal removed from BigState, with the 2 keys it had\n  told once as one removal (no key is reported removed one by one); its state is archived\n  - #primary\n  - zürich-backup\n',
    );
    expect(out()).toContain('1 principal removed');
    expect(out()).toMatch(
      / {2}svc a&b {4}REMOVED {4}no longer in BigState; had 2 key\(s\); its state would be archived/,
    );
    expect(await files(join(state, 'snapshots'))).toContain('svc%20a%26b.json');
    // The real run tells it and archives the state.
    stdout = [];
    expect(await discover(['--json'])).toBe(EXIT.changed);
    const removed = JSON.parse(out()).principals.find(
      (p: { principal: string }) => p.principal === 'svc a&b',
    );
    expect(removed).toMatchObject({
      status: 'ok',
      keyCount: null,
      principalRemoved: {
        removalId: expect.stringMatching(/^prm-/),
        keys: ['#primary', 'zürich-backup'],
        archiveLocation: expect.any(String),
      },
    });
    expect(await files(join(state, 'snapshots'))).not.toContain('svc%20a%26b.json');
    // Once: the next run no longer knows it.
    stdout = [];
    expect(await discover([])).toBe(EXIT.unchanged);
    expect(out()).not.toContain('svc a&b');
  });
});

describe('runCli: discovery with --json, where delivered means printed', () => {
  const discover = (overrides: Partial<CliIo> = {}) =>
    runCli(['--host', simulator.url, '--principal-pattern', '*', '--state', state, '--json'], io(overrides));
  const removedIn = (text: string) =>
    (JSON.parse(text) as { principals: Array<{ principal: string; principalRemoved: unknown }> }).principals
      .filter((row) => row.principalRemoved !== null)
      .map((row) => row.principal);

  it('keeps the state of a removed principal until the document that shows its removal is printed', async () => {
    expect(await discover()).toBe(EXIT.unchanged);
    simulator.removePrincipal('svc a&b');
    stdout = [];
    // The document never makes it out (a broken pipe, a crash while printing): the removal is not shown.
    const broken = await discover({
      stdout: () => {
        throw new Error('EPIPE: the reader went away');
      },
    });
    expect(broken).toBe(EXIT.error);
    expect(await files(join(state, 'snapshots'))).toContain('svc%20a%26b.json');

    // The next run shows it, and only then is the state archived.
    stdout = [];
    expect(await discover()).toBe(EXIT.changed);
    expect(removedIn(out())).toEqual(['svc a&b']);
    expect(await files(join(state, 'snapshots'))).not.toContain('svc%20a%26b.json');
    expect((await files(join(state, 'archive'))).some((file) => file.startsWith('svc%20a%26b'))).toBe(true);

    // Told once: nothing more about it afterwards.
    stdout = [];
    expect(await discover()).toBe(EXIT.unchanged);
    expect(removedIn(out())).toEqual([]);
  });
});

describe('runCli: --max-key-age-days', () => {
  it('a dry run shows the stale notice a real run would publish, names included, and publishes nothing', async () => {
    // Only a key past the limit, no key change: without it the plan would say "nothing".
    simulator.setKeys('root', [
      { name: 'ancient', createdAt: '2020-01-01T00:00:00Z' },
      'ci-deploy',
      'grafana-read',
      'ops-laptop',
    ]);
    await cli([]);
    stdout = [];
    expect(await cli(['--dry-run', '--max-key-age-days', '90'])).toBe(EXIT.unchanged);
    expect(out()).toContain('Dry run: a real run would publish the following');
    expect(out()).toMatch(
      /root: no change\n {2}a stale notice: 1 key past the key-age limit\n {2}! ancient {2}\d+ days old/,
    );
    expect(out()).toMatch(/Plan: .*1 stale key\./);
    // The same names in the --json document of a dry run (its changes are empty: a dry run delivers nothing).
    stdout = [];
    expect(await cli(['--dry-run', '--json', '--max-key-age-days', '90'])).toBe(EXIT.unchanged);
    const document = JSON.parse(out());
    expect(document.principals[0].staleKeys).toEqual([
      {
        name: 'ancient',
        ageDays: expect.any(Number),
        ageFrom: 'created',
        createdAt: '2020-01-01T00:00:00.000Z',
      },
    ]);
    expect(document.principals[1].staleKeys).toEqual([]);
    expect(document.changes).toEqual([]);
    // Nothing was recorded: the real run still tells it, once.
    stdout = [];
    await cli(['--max-key-age-days', '90']);
    expect(out()).toContain('BigState API keys stale for root (1 key)');
  });

  it('tells keys past the limit once as stale, and refuses a limit that is no whole number of days', async () => {
    simulator.setKeys('root', [{ name: 'ancient', createdAt: '2020-01-01T00:00:00Z' }, 'fresh']);
    expect(await cli(['--max-key-age-days', '90'])).toBe(EXIT.unchanged);
    expect(out()).toContain('BigState API keys stale for root (1 key)');
    expect(out()).toMatch(/ {2}! ancient {2}\d+ days old \(created 2020-01-01T00:00:00\.000Z\)/);
    stdout = [];
    expect(await cli(['--max-key-age-days', '90'])).toBe(EXIT.unchanged);
    expect(out()).not.toContain('stale for root');
    // With --json, the one stale notice carries its names: printed once means told once.
    simulator.setKeys('root', [{ name: 'ancient', createdAt: '2020-01-01T00:00:00Z' }, 'fresh', 'old-too']);
    await rm(state, { recursive: true, force: true });
    stdout = [];
    await cli(['--json', '--max-key-age-days', '90']);
    const document = JSON.parse(out()) as { changes: Array<Record<string, unknown>> };
    const stale = document.changes.filter((change) => change.kind === 'stale');
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({
      principal: 'root',
      maxKeyAgeDays: 90,
      stale: [
        {
          name: 'ancient',
          ageDays: expect.any(Number),
          ageFrom: 'created',
          createdAt: '2020-01-01T00:00:00.000Z',
        },
      ],
    });
    expect(document.changes.find((change) => change.kind === 'baseline')).toMatchObject({
      stale: null,
      maxKeyAgeDays: null,
    });
    for (const bad of ['0', '1.5', 'many', '-3']) {
      stderr = [];
      expect(await cli([`--max-key-age-days=${bad}`])).toBe(EXIT.error);
      expect(err()).toMatch(/^usage error: --max-key-age-days/);
    }
  });
});
