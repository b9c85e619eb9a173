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

    const run2 = text.slice(text.indexOf('=== Run 2: changes ==='), text.indexOf('=== Run 3'));
    expect(run2).toContain('  + unknown-laptop\n');
    expect(run2).toContain('  - tram-device-042\n');
    expect(run2).toContain('  + #secondary\n');
    expect(run2).toContain('  - monitoring\n');
    expect(run2).toContain('BigState API keys changed for zurich-ops (+0 -1)');
    expect(run2).toContain('exit code 1 (changes found)');

    expect(text.match(/exit code 0 \(nothing changed\)/g)).toHaveLength(2);
    expect(text).not.toContain('exit code 2');
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
});
