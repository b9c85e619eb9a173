/**
 * The BigState simulator in a process of its own, as a remote BigState would be: the measured client then
 * does not share its event loop with the server. Options arrive as one JSON line on stdin; the URL is printed on
 * stdout; a "stats" line on stdin is answered with the simulator's counters.
 */
import { createInterface } from 'node:readline';
import { type SimulatorOptions, startSimulator } from '../../functions/bigstate/simulator.js';

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const first = await lines.next();
const simulator = await startSimulator(JSON.parse(first.done ? '{}' : first.value) as SimulatorOptions);
process.stdout.write(`${simulator.url}\n`);
for await (const line of { [Symbol.asyncIterator]: () => lines }) {
  if (line === 'stats') process.stdout.write(`${JSON.stringify(simulator.stats)}\n`);
  if (line === 'reset') simulator.resetStats();
}
await simulator.close();
