import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSnapshotStore } from '../../functions/adapters/local/fs-store.js';
import { readLocalStates } from '../../functions/local/report.js';
import { snapshotOf } from '../core/support/fakes.js';

const folders: string[] = [];
afterEach(async () => {
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

describe('readLocalStates', () => {
  it('takes the states a run already holds instead of reading them again, and reads the folder’s others', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'local-states-'));
    folders.push(folder);
    const store = new FileSnapshotStore(folder);
    await store.write('other', snapshotOf('other', ['o']), undefined);
    // The file of `audited` is unreadable: only a read of it would fail.
    await mkdir(join(folder, 'snapshots'), { recursive: true });
    await writeFile(join(folder, 'snapshots', 'audited.json'), '{ not json');
    await writeFile(join(folder, 'snapshots', 'empty.json'), '{ not json');
    const known = new Map([
      ['audited', snapshotOf('audited', ['a', 'b'])],
      ['empty', null],
    ]);
    const states = await readLocalStates(folder, known);
    expect(states.map((state) => [state.principal, state.keys.map((key) => key.name)]).sort()).toEqual([
      ['audited', ['a', 'b']],
      ['other', ['o']],
    ]);
    // Without them, the folder is read whole (and the unreadable file says so).
    await expect(readLocalStates(folder)).rejects.toThrow(/not valid JSON/);
  });
});
