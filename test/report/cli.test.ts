import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'csv-parse/sync';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSnapshotStore } from '../../functions/adapters/local/fs-store.js';
import type { Snapshot } from '../../functions/core/ports.js';
import { runReportCli, writeLocalReport } from '../../functions/local/report.js';
import { daysAgo, NOW, stateOf } from './fixtures.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let state: string;
let stdout: string[];
let stderr: string[];

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'report-cli-'));
  stdout = [];
  stderr = [];
});

afterEach(async () => {
  await rm(state, { recursive: true, force: true });
});

async function writeStates(...states: Snapshot[]): Promise<void> {
  const store = new FileSnapshotStore(state);
  for (const snapshot of states) await store.write(snapshot.principal, snapshot, undefined);
}

const cli = (args: string[]) =>
  runReportCli(args, { stdout: (text) => stdout.push(text), stderr: (text) => stderr.push(text) });

const SAMPLE = [
  stateOf('root', [{ name: 'ci-deploy', firstSeenDaysAgo: 120 }, 'grafana-read'], {
    series: [{ at: daysAgo(1), count: 2 }],
  }),
  stateOf('svc a&b', ['<script>alert(1)</script>', '=1+1'], {
    info: { type: 1, displayName: 'Service A & B' },
  }),
];

describe('npm run report', () => {
  it('writes reports/latest.html and latest.csv into the state folder and prints their paths', async () => {
    await writeStates(...SAMPLE);
    expect(await cli(['--state', state])).toBe(0);
    const html = join(state, 'reports', 'latest.html');
    const csv = join(state, 'reports', 'latest.csv');
    expect(stdout.join('')).toBe(`HTML report: ${html} (2 principals, 4 keys)\nCSV report:  ${csv}\n`);
    expect(stderr).toEqual([]);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('by run <code>local</code> from <code>https://api.bigstate.dev</code>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('svc a&amp;b <span class="info">— Service A &amp; B (application)</span>');
    const rows = parse(await readFile(csv, 'utf8'), { bom: true, columns: true }) as Array<
      Record<string, string>
    >;
    expect(rows.map((row) => [row.principal, row.key, row.stale])).toEqual([
      ['root', 'ci-deploy', 'no'],
      ['root', 'grafana-read', 'no'],
      ['svc a&b', '<script>alert(1)</script>', 'no'],
      ['svc a&b', "'=1+1", 'no'],
    ]);
    // Written aside and renamed: no temporary file is left behind.
    expect((await readdir(join(state, 'reports'))).sort()).toEqual(['latest.csv', 'latest.html']);
  });

  it('writes to --out and --csv, and marks stale keys with --max-key-age-days', async () => {
    await writeStates(...SAMPLE);
    const out = join(state, 'elsewhere', 'inventory.html');
    const csv = join(state, 'elsewhere', 'inventory.csv');
    expect(await cli(['--state', state, '--out', out, '--csv', csv, '--max-key-age-days', '90'])).toBe(0);
    expect(stdout.join('')).toContain(`HTML report: ${out} `);
    const rows = parse(await readFile(csv, 'utf8'), { bom: true, columns: true }) as Array<
      Record<string, string>
    >;
    expect(rows.filter((row) => row.stale === 'yes').map((row) => row.key)).toEqual(['ci-deploy']);
    expect(await readFile(out, 'utf8')).toContain('keys older than 90 days are stale');
    await expect(readdir(join(state, 'reports'))).rejects.toThrow();
  });

  it('writes an empty report for a state folder with no states yet', async () => {
    expect(await cli(['--state', state])).toBe(0);
    expect(stdout.join('')).toContain('(0 principals, 0 keys)');
    expect(await readFile(join(state, 'reports', 'latest.html'), 'utf8')).toContain(
      'No principal has a state yet',
    );
  });

  it.each([
    [['--state', 'x', '--bogus'], 'usage error: unknown option --bogus (see --help)\n'],
    [['--stat', 'x'], 'usage error: unknown option --stat: did you mean --state? (see --help)\n'],
    [['--out'], 'usage error: option --out needs a value (see --help)\n'],
    [
      ['--max-key-age-days', '0'],
      'usage error: option --max-key-age-days needs a whole number of days >= 1, got "0" (see --help)\n',
    ],
    [
      ['--max-key-age-days', '1.5'],
      'usage error: option --max-key-age-days needs a whole number of days >= 1, got "1.5" (see --help)\n',
    ],
    [['positional'], 'usage error: unexpected argument "positional" (see --help)\n'],
    [['--csv='], 'usage error: option --csv needs a path, got "" (see --help)\n'],
  ])('exits 2 with one line on a bad command line: %j', async (args, line) => {
    expect(await cli(args)).toBe(2);
    expect(stderr.join('')).toBe(line);
    expect(stdout).toEqual([]);
  });

  it('exits 2 naming the folder when there is no state folder, and when a state cannot be read', async () => {
    const missing = join(state, 'nope');
    expect(await cli(['--state', missing])).toBe(2);
    expect(stderr.join('')).toBe(`error: no state folder at ${missing} (run npm run audit first)\n`);
    stderr = [];
    await writeStates(SAMPLE[0] as Snapshot);
    await writeFile(join(state, 'snapshots', 'root.json'), '{not json');
    expect(await cli(['--state', state])).toBe(2);
    expect(stderr.join('')).toMatch(/^error: snapshot .*root\.json is not valid JSON\n$/);
  });

  it('prints its usage with --help', async () => {
    expect(await cli(['--help'])).toBe(0);
    expect(stdout.join('')).toContain('Usage: npm run report -- [--state DIR] [--out FILE.html]');
  });
});

describe('writeLocalReport', () => {
  it('is what the audit CLI calls after a run: it takes the run id, the time and the run’s failures', async () => {
    await writeStates(...SAMPLE);
    const report = await writeLocalReport(state, {
      runId: 'run-9',
      now: NOW,
      maxKeyAgeDays: 100,
      failures: new Map([['root', 'timed out']]),
    });
    expect(report).toEqual({
      html: resolve(state, 'reports', 'latest.html'),
      csv: resolve(state, 'reports', 'latest.csv'),
      principals: 2,
      keys: 4,
      summarised: false,
    });
    const page = await readFile(report.html, 'utf8');
    expect(page).toContain('Made 2026-11-28 12:00 UTC by run <code>run-9</code>');
    expect(page).toContain('<b>Last run failed:</b> timed out.');
    expect(page).toContain('<span class="badge">stale</span>');
  });
});

describe('the report command as a process', () => {
  const run = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'functions/local/report.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
    });

  it('writes the report and exits 0; exits 2 with one line on a bad flag', async () => {
    await writeStates(...SAMPLE);
    const ok = await run(['--state', state]);
    expect(ok.stdout).toContain(
      `HTML report: ${join(state, 'reports', 'latest.html')} (2 principals, 4 keys)`,
    );
    expect(ok.stderr).toBe('');
    const bad = await run(['--state', state, '--max-key-age-days', 'soon']).then(
      () => undefined,
      (error: { code: number; stderr: string; stdout: string }) => error,
    );
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toBe(
      'usage error: option --max-key-age-days needs a whole number of days >= 1, got "soon" (see --help)\n',
    );
    expect(bad?.stdout).toBe('');
  });
});
