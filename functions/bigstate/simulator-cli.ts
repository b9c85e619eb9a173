/**
 * `npm run simulator [-- --port N --page-size N --latency MS]`: starts the BigState simulator with the demo
 * inventory and prints its URL on stdout (one line, for scripts); details go to stderr. It accepts the key in
 * BIGSTATE_API_KEY when set (never printed), otherwise the public demo key.
 */
import { parseArgs } from 'node:util';
import { demoPrincipals, startSimulator } from './simulator.js';

const DEMO_KEY = 'bigstate-demo-key';

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    console.error(`--${name} must be a non-negative integer`);
    process.exit(2);
  }
  return Number(value);
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'page-size': { type: 'string' },
    latency: { type: 'string' },
  },
});

const fromEnv = process.env.BIGSTATE_API_KEY;
const simulator = await startSimulator({
  apiKeys: fromEnv === undefined || fromEnv === '' ? [DEMO_KEY] : [fromEnv],
  principals: demoPrincipals(),
  port: integer('port', values.port),
  pageSize: integer('page-size', values['page-size']),
  latencyMs: integer('latency', values.latency),
});

console.log(simulator.url);
console.error(
  `BigState simulator listening on ${simulator.url}\n` +
    `  principals: ${Object.keys(demoPrincipals()).join(', ')}\n` +
    `  API key: ${fromEnv ? 'the value of BIGSTATE_API_KEY' : `${DEMO_KEY} (demo key; set BIGSTATE_API_KEY to choose one)`}\n` +
    '  Ctrl+C stops it.',
);

const stop = () => {
  void simulator.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
