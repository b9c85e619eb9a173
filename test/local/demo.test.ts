import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDemo } from '../../functions/local/demo.js';

let state: string;

beforeEach(async () => {
  state = await mkdtemp(join(tmpdir(), 'demo-test-'));
});

afterEach(async () => {
  await rm(state, { recursive: true, force: true });
});

describe('runDemo', () => {
  it('runs a baseline, finds the changes, then none, and shows the keys added and removed', async () => {
    const out: string[] = [];
    await expect(runDemo((text) => out.push(text), state)).resolves.toBe(0);
    const text = out.join('');

    expect(text).toContain('=== Run 1: baseline ===');
    expect(text).toContain('BigState key audit baseline for tram_client (121 keys)');
    expect(text).not.toContain('+ tram-device-001');

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

    const run2 = text.slice(text.indexOf('=== Run 2: changes ==='), text.indexOf('=== Run 3'));
    expect(run2).toContain('  + unknown-laptop\n');
    expect(run2).toContain('  - tram-device-042\n');
    expect(run2).toContain('  + #secondary\n');
    expect(run2).toContain('  - monitoring\n');
    expect(run2).toContain('BigState API keys changed for zurich-ops (+0 -1)');
    expect(run2).toContain('exit code 1 (changes found)');

    expect(text.match(/exit code 0 \(nothing changed\)/g)).toHaveLength(2);
    expect(text).not.toContain('exit code 2');
    // Not a terminal: no colour, no progress line.
    expect(text).not.toContain('\u001b');
    expect(text).not.toMatch(/^\[\d+\/5\]/m);
    expect(text).not.toContain('[error]');
    expect(text).toContain(`State folder: ${state}`);
    expect((await readdir(join(state, 'snapshots'))).sort()).toEqual([
      'empty.json',
      'root.json',
      'svc%20a%26b.json',
      'tram_client.json',
      'z%C3%BCrich-ops.json',
    ]);
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
