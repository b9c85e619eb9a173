import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEMO_HELP, demoMain, runDemo } from '../../functions/local/demo.js';

let state: string;

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'demo-test-'));
});

afterEach(async () => {
  await rm(state, { recursive: true, force: true });
});

describe('runDemo', () => {
  it('runs a baseline, finds the changes, a new principal and a removed one, then none', async () => {
    const out: string[] = [];
    await expect(runDemo((text) => out.push(text), state)).resolves.toBe(0);
    const text = out.join('');

    // Discovery, not a hand list: every run lists the principals BigState has.
    expect(text.match(/^\$ npm run audit -- .*--principal-pattern '\*' /gm)).toHaveLength(5);
    expect(text).not.toContain('--principal ');

    const run1 = text.slice(text.indexOf('=== Run 1: baseline ==='), text.indexOf('=== Dry run'));
    expect(run1).toContain('BigState key audit: new principal tram_client (121 keys)');
    expect(run1).toContain(
      'New principal "tram_client" — Client for tram app (application), found by discovery',
    );
    expect(run1).not.toContain('+ tram-device-001');
    expect(run1).toContain('exit code 0 (nothing changed)');

    // Once, before run 2: the plan of what it publishes, and nothing published.
    expect(text.match(/=== Dry run/g)).toHaveLength(1);
    const plan = text.slice(text.indexOf('=== Dry run: the plan for run 2 ==='), text.indexOf('=== Run 2'));
    expect(plan).toContain('--dry-run\n');
    expect(plan).toContain('root: 1 added, 0 removed (4 keys after)\n  + unknown-laptop\n');
    expect(plan).toContain('tram_client: 0 added, 1 removed (120 keys after)\n  - tram-device-042\n');
    expect(plan).toContain('svc a&b: 1 added, 0 removed (3 keys after)\n  + #secondary\n');
    expect(plan).toContain('zürich-ops: 0 added, 1 removed (0 keys after)\n  - monitoring\n');
    expect(plan).toContain('Plan: 4 principals changed (+2 -2), 0 baselines, 1 unchanged, 0 failed.');
    expect(plan).not.toContain('BigState API keys changed for');
    expect(plan).toContain('exit code 1 (changes found)');

    const run2 = text.slice(
      text.indexOf('=== Run 2: changes ==='),
      text.indexOf('Meanwhile in BigState: a new'),
    );
    expect(run2).toContain('  + unknown-laptop\n');
    expect(run2).toContain('  - tram-device-042\n');
    expect(run2).toContain('  + #secondary\n');
    expect(run2).toContain('  - monitoring\n');
    expect(run2).toContain('BigState API keys changed for zurich-ops (+0 -1)');
    expect(run2).toContain('exit code 1 (changes found)');
    expect(run2).not.toContain('billing_export');

    // Between runs 2 and 3 an application appears and "svc a&b" is deleted in BigState.
    const run3 = text.slice(
      text.indexOf('=== Run 3: a new principal, and one removed ==='),
      text.indexOf('=== Run 4'),
    );
    expect(run3).toContain('BigState key audit: new principal billing_export (2 keys)');
    expect(run3).toContain(
      'New principal "billing_export" — Nightly billing export (application), found by discovery',
    );
    expect(run3).toContain('BigState principal removed: svc a&b (3 keys)');
    expect(run3).toContain('Keys it had (3):\n  - #primary\n  - #secondary\n  - zürich-backup\n');
    expect(run3).not.toContain('BigState API keys changed for');
    expect(run3).toContain('exit code 1 (changes found)');

    // Told once: the last run says nothing more about either, and nothing changed.
    const run4 = text.slice(
      text.indexOf('=== Run 4: nothing changed since ==='),
      text.indexOf('Snapshots are in'),
    );
    expect(run4).not.toContain('svc a&b');
    expect(run4).not.toContain('new principal');
    expect(run4).toContain('  billing_export  no change  2 key(s), +0 -0\n');
    expect(run4).toContain('exit code 0 (nothing changed)');

    expect(text.match(/exit code 0 \(nothing changed\)/g)).toHaveLength(2);
    expect(text).not.toContain('exit code 2');
    // Not a terminal: no colour, no progress line.
    expect(text).not.toContain('\u001b');
    expect(text).not.toMatch(/^\[\d+\/5\]/m);
    expect(text).not.toContain('[error]');
    expect(text).toContain(`State folder: ${state}`);
    expect((await readdir(join(state, 'snapshots'))).sort()).toEqual([
      'billing_export.json',
      'empty.json',
      'root.json',
      'tram_client.json',
      'z%C3%BCrich-ops.json',
    ]);
    const archived = await readdir(join(state, 'archive', 'svc%20a%26b'));
    expect(archived).toHaveLength(1);
    expect(archived[0]).toMatch(/^prm-[0-9a-f]+\.json$/);
    expect(run3).toContain(`Archived state: ${join(state, 'archive', 'svc%20a%26b', archived[0] ?? '')}\n`);
    // It ends with the inventory report, written after every real run, and says where it is.
    const report = join(state, 'reports', 'latest.html');
    expect(text.trimEnd().split('\n').slice(-3)[1]).toBe(`  ${report}`);
    const html = await readFile(report, 'utf8');
    expect(html).toContain('billing_export');
    expect(html).not.toContain('svc a&amp;b</');
  });

  it('is in colour on a terminal that takes colour', async () => {
    const out: string[] = [];
    await expect(
      runDemo((text) => out.push(text), state, { terminal: { isTTY: true, color: true } }),
    ).resolves.toBe(0);
    const text = out.join('');
    expect(text).toContain('\u001b[32m  + unknown-laptop\u001b[39m');
    expect(text).toContain('\u001b[31m  - tram-device-042\u001b[39m');
  });
});

describe('demoMain (npm start)', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { out, err, stdout: (text: string) => out.push(text), stderr: (text: string) => err.push(text) };
  };

  it('prints what it does and where the real commands are on --help or -h, and runs nothing', async () => {
    for (const flag of ['--help', '-h']) {
      const streams = io();
      await expect(demoMain([flag], streams)).resolves.toBe(0);
      expect(streams.out.join('')).toBe(DEMO_HELP);
      expect(DEMO_HELP).toContain('npm run audit -- --help');
      expect(streams.err).toEqual([]);
    }
  });

  it('refuses any other argument in one line, naming it (exit 2), instead of running the demo without it', async () => {
    for (const args of [
      ['--principal', 'root'],
      ['--help', '--json'],
      ['-h', 'x\u001b[31m'],
    ]) {
      const streams = io();
      await expect(demoMain(args, streams)).resolves.toBe(2);
      expect(streams.out).toEqual([]);
      expect(streams.err).toHaveLength(1);
      expect(streams.err[0]).toMatch(
        /^usage error: npm start takes no options, got ".*": the audit itself is npm run audit \(see --help\)\n$/,
      );
      // The name is quoted and escaped: no terminal control character gets through.
      expect(streams.err[0]).not.toContain('\u001b');
      // It names what it refuses, not the --help beside it.
      expect(streams.err[0]).not.toContain('got "--help"');
      expect(streams.err[0]).not.toContain('got "-h"');
    }
  });
});
