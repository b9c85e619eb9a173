import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';
import type { AuditSummary, PrincipalResult } from '../../functions/core/audit.js';
import type { ChangeRecord } from '../../functions/core/ports.js';
import type { AuditResult } from '../../functions/core/result.js';
import { type CliIo, DEFAULT_STATE_DIR, EXIT, exitCodeOf, runCli } from '../../functions/local/cli.js';

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
    expect(await files(join(state, 'snapshots'))).toEqual(['root.json']);
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

  it('prints the usage on stdout for --help and exits 0', async () => {
    expect(await runCli(['--help'], io())).toBe(EXIT.unchanged);
    expect(out()).toMatch(/^Usage: npm run audit -- --host URL --principal P/);
    expect(out()).toContain('--dry-run');
    expect(stderr).toEqual([]);
  });
});

describe('runCli usage errors', () => {
  it.each<[string, string[], string]>([
    ['no arguments', [], 'error: --host is required'],
    ['no principal', ['--host', 'https://api.bigstate.dev'], 'error: --principal is required'],
    ['an unknown flag', ['--host', 'https://h.example', '--principal', 'p', '--verbose'], "'--verbose'"],
    ['a positional argument', ['--host', 'https://h.example', '--principal', 'p', 'extra'], "'extra'"],
    ['a flag without its value', ['--host'], "'--host"],
    [
      'plain http on a remote host',
      ['--host', 'http://api.bigstate.dev', '--principal', 'p'],
      'error: --host must use https (plain http is accepted for loopback hosts only)',
    ],
    [
      'a host that is no URL',
      ['--host', 'api.bigstate.dev', '--principal', 'p'],
      'error: --host must be an absolute URL such as https://api.bigstate.dev',
    ],
    [
      'a bad pattern',
      ['--host', 'https://h.example', '--principal', 'p', '--pattern', 'a*b'],
      'error: --pattern must be one of the forms x, *x, x*, *x* (a * only at the start or end)',
    ],
    [
      'a principal named twice',
      ['--host', 'https://h.example', '--principal', 'p', '--principal', 'p'],
      'error: --principal lists "p" twice',
    ],
    [
      'an empty principal',
      ['--host', 'https://h.example', '--principal', ''],
      'error: --principal[0] a principal name must not be empty',
    ],
  ])('exits 2 for %s, naming the flag, with the usage', async (_what, argv, message) => {
    expect(await runCli(argv, io())).toBe(EXIT.error);
    expect(err()).toContain(message);
    expect(err()).toContain('Usage: npm run audit --');
    expect(stdout).toEqual([]);
    expect(simulator.stats.requests).toBe(0);
  });
});

describe('exitCodeOf', () => {
  const result = (overrides: Partial<PrincipalResult>): PrincipalResult => ({
    principal: 'p',
    status: 'ok',
    baseline: false,
    keyCount: 1,
    added: [],
    removed: [],
    redelivered: [],
    pending: [],
    ...overrides,
  });
  const summary = (principals: PrincipalResult[]): AuditSummary => ({
    runId: 'r',
    dryRun: false,
    startedAt: '',
    finishedAt: '',
    durationMs: 0,
    principals,
    ok: principals.every((p) => p.status === 'ok'),
  });

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

  it('exits 2 at once while another run holds the folder, naming it and the file to delete', async () => {
    const text = `${JSON.stringify(holder(process.pid))}\n`;
    await writeFile(lockPath(), text);
    for (const extra of [[], ['--dry-run'], ['--json']]) {
      stdout = [];
      stderr = [];
      expect(await cli(extra)).toBe(EXIT.error);
      expect(err()).toBe(
        `error: the state folder ${state} is in use by another audit run: pid ${process.pid} on this host (${hostname()}), since 2026-11-28T09:00:00.000Z (run a-run-elsewhere). If you are sure no audit run is using it (e.g. that process was killed), delete ${lockPath()} and run again.\n`,
      );
      expect(stdout).toEqual([]);
    }
    expect(simulator.stats.requests).toBe(0);
    expect(await files(state)).toEqual(['.lock']);
    expect(await readFile(lockPath(), 'utf8')).toBe(text);
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
      expect(lock).toEqual({ pid: process.pid, hostname: hostname(), startedAt: expect.any(String), runId });
    }
  });

  it('releases the lock on every way out: changes, a failed principal, an interruption, a dry run', async () => {
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
    expect(err()).toContain('error: write EPIPE');
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
