/**
 * Starts test/bench/simulator-process.ts as a child process and talks to it.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SimulatorOptions } from '../../functions/bigstate/simulator.js';

export interface RemoteSimulator {
  readonly url: string;
  stats(): Promise<{ requests: number; connections: number }>;
  resetStats(): void;
  close(): Promise<void>;
}

export async function startRemoteSimulator(options: SimulatorOptions): Promise<RemoteSimulator> {
  const script = fileURLToPath(new URL('./simulator-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.write(`${JSON.stringify(options)}\n`);
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error('simulator process ended');
    return value;
  };
  const url = await nextLine();
  return {
    url,
    async stats() {
      child.stdin.write('stats\n');
      return JSON.parse(await nextLine()) as { requests: number; connections: number };
    },
    resetStats() {
      child.stdin.write('reset\n');
    },
    async close() {
      const ended = new Promise((resolve) => child.once('exit', resolve));
      child.stdin.end();
      await ended;
    },
  };
}
