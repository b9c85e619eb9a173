/**
 * For the CLI, delivered means printed. The real CLI process is killed (SIGKILL: no clean-up of any kind) at
 * several points of a run that finds changes, in both output modes; then it runs again. Across the killed run
 * and the next, every change the audit recorded must have been printed: as a notice in text mode, in a complete
 * JSON document with `--json` (a document cut off by the kill prints nothing).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'bsk_kill-Secret-7171';
const PRINCIPALS = ['p1', 'p2', 'p3', 'p4'];
const names = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly killed: boolean;
}

/** When to kill: a test on what the process printed so far (stdout, stderr). */
type Trigger = (stdout: string, stderr: string) => boolean;

function run(args: readonly string[], trigger?: Trigger): Promise<Run> {
  return new Promise((resolve) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', 'functions/local/cli.ts', ...args],
      { cwd: ROOT, env: { ...process.env, BIGSTATE_API_KEY: KEY }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let killed = false;
    const check = () => {
      if (!killed && trigger?.(stdout, stderr)) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      check();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      check();
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

/** The change ids a run printed for a person: one `Change id:` line per notice. */
function printedInText(stdout: string): string[] {
  return [...stdout.matchAll(/^Change id: (chg-[0-9a-f]{32})$/gm)].map((match) => match[1] as string);
}

/** The change ids of a complete `--json` document; none when the document was cut off. */
function printedInJson(stdout: string): string[] {
  let document: { changes?: Array<{ changeId: string }> };
  try {
    document = JSON.parse(stdout);
  } catch {
    return [];
  }
  return (document.changes ?? []).map((change) => change.changeId);
}

/** Every change id the audit recorded in the state folder's history. */
async function recorded(state: string): Promise<string[]> {
  const ids: string[] = [];
  for (const folder of await readdir(join(state, 'history'))) {
    for (const file of await readdir(join(state, 'history', folder))) {
      // A write cut off by the kill may leave its temp file (`.<uuid>.tmp`): not a record.
      if (/^chg-[0-9a-f]{32}\.json$/.test(file)) ids.push(file.replace(/\.json$/, ''));
    }
  }
  return ids.sort();
}

let simulator: Simulator;
const states: string[] = [];

beforeAll(async () => {
  // Slow pages, so a run lasts long enough to be killed in the middle.
  simulator = await startSimulator({ apiKeys: [KEY], pageSize: 3, latencyMs: 15 });
});

afterAll(async () => {
  await simulator.close();
});

afterEach(async () => {
  for (const state of states.splice(0)) await rm(state, { recursive: true, force: true });
});

/** A fresh state folder with a baseline of every principal, then changes in BigState for the next run. */
async function prepared(json: boolean): Promise<{ args: string[]; state: string }> {
  const state = await mkdtemp(join(tmpdir(), 'cli-kill-'));
  states.push(state);
  // p4 has many pages: it is still walking well after the others are done, so a kill "once two principals
  // were committed" lands before the document, however late a busy machine delivers it.
  for (const principal of PRINCIPALS)
    simulator.setKeys(principal, names(principal, principal === 'p4' ? 90 : 7));
  const args = ['--host', simulator.url, ...PRINCIPALS.flatMap((p) => ['--principal', p]), '--state', state];
  if (json) args.push('--json');
  const baseline = await run(args);
  expect(baseline.code).toBe(0);
  // Every principal changes: one key added, one removed.
  for (const principal of PRINCIPALS) {
    simulator.addKeys(principal, `${principal}-new`);
    simulator.removeKeys(principal, `${principal}-03`);
  }
  return { args, state };
}

/** Kills a run at `trigger`, runs again, and checks that every recorded change was printed by one of them. */
async function killAndRerun(json: boolean, trigger: Trigger): Promise<{ killed: Run; next: Run }> {
  const { args, state } = await prepared(json);
  const baselineIds = await recorded(state);
  const killed = await run(args, trigger);
  const next = await run(args);
  expect(next.code, next.stderr).not.toBe(2);
  const printed = json
    ? [...printedInJson(killed.stdout), ...printedInJson(next.stdout)]
    : [...printedInText(killed.stdout), ...printedInText(next.stdout)];
  const changes = (await recorded(state)).filter((id) => !baselineIds.includes(id));
  // Four principals changed: four change records, each printed at least once.
  expect(changes).toHaveLength(PRINCIPALS.length);
  for (const id of changes) expect(printed, `change ${id} was never printed`).toContain(id);
  // Nothing is left owed, and the inventories caught up with BigState.
  for (const principal of PRINCIPALS) {
    const snapshot = JSON.parse(await readFile(join(state, 'snapshots', `${principal}.json`), 'utf8'));
    expect(snapshot.pending).toEqual([]);
    expect(snapshot.keys.map((key: { name: string }) => key.name)).toEqual(simulator.keys(principal));
  }
  // A run that printed a change found changes: exit code 1, never 0.
  if ((json ? printedInJson(next.stdout) : printedInText(next.stdout)).length > 0) expect(next.code).toBe(1);
  return { killed, next };
}

describe('the CLI killed in the middle of a run with changes, then run again: every change is printed', () => {
  it('text: killed right after the first notice was printed (before it could be marked printed)', async () => {
    const { killed } = await killAndRerun(false, (stdout) => printedInText(stdout).length >= 1);
    expect(killed.killed).toBe(true);
  });

  it('text: killed after the third notice', async () => {
    const { killed } = await killAndRerun(false, (stdout) => printedInText(stdout).length >= 3);
    expect(killed.killed).toBe(true);
  });

  it('text: killed while the walks are under way (before any commit)', async () => {
    const { killed } = await killAndRerun(false, (_stdout, stderr) =>
      stderr.includes('auditing 4 principal'),
    );
    expect(killed.killed).toBe(true);
  });

  it('--json: killed once principals were committed, before the document was printed', async () => {
    const { killed, next } = await killAndRerun(
      true,
      // Two principals reported done on stderr (one progress line each: it is not a terminal).
      (_stdout, stderr) => (stderr.match(/^\[\d\/4\] p\d: ok/gm) ?? []).length >= 2,
    );
    expect(killed.killed).toBe(true);
    expect(printedInJson(killed.stdout)).toEqual([]);
    expect(next.code).toBe(1);
  });

  it('--json: killed as the document started to come out', async () => {
    const { killed } = await killAndRerun(true, (stdout) => stdout.length > 0);
    expect(killed.killed).toBe(true);
  });
});
