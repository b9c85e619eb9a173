import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient } from '../../functions/bigstate/client.js';
import type { SimulatorFault } from '../../functions/bigstate/simulator.js';
import { collect, Fixture, failure, names, recordingSleep } from './support.js';

const CANARY = 'sk-SECRET-canary-123';
const TOKEN_CANARY = 'tok-SECRET-canary-456';

const fixture = new Fixture();
afterEach(() => fixture.close());

/** Every string reachable from an error: message, stack, own properties (JSON and inspect), the cause chain. */
function renderings(error: unknown): string[] {
  const out: string[] = [inspect(error, { depth: 8, showHidden: true, getters: true })];
  const seen = new WeakSet<object>();
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    if (typeof current !== 'object') {
      out.push(String(current));
      break;
    }
    if (seen.has(current)) break;
    seen.add(current);
    const props: Record<string, unknown> = {};
    for (const name of Object.getOwnPropertyNames(current)) {
      props[name] = (current as Record<string, unknown>)[name];
    }
    out.push(JSON.stringify(props, safeReplacer()));
    if (current instanceof Error) out.push(current.message, current.stack ?? '', String(current));
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

function safeReplacer() {
  const seen = new WeakSet<object>();
  return (_key: string, value: unknown) => {
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
    }
    return typeof value === 'bigint' ? value.toString() : value;
  };
}

describe('the API key never leaks', () => {
  it('appears in no error and no log line, over many failing scenarios', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (message: string, ...extra: unknown[]) => lines.push(message, JSON.stringify(extra)),
      warn: (message: string, ...extra: unknown[]) => lines.push(message, JSON.stringify(extra)),
    };
    const simulator = await fixture.simulator({
      apiKeys: [CANARY],
      pageSize: 2,
      principals: { p: { keys: names(5) }, root: {} },
      access: { [CANARY]: ['p', 'root'] },
    });
    const recorder = recordingSleep();
    const make = (overrides: Partial<ConstructorParameters<typeof BigStateClient>[0]> = {}) =>
      fixture.client(simulator.url, {
        apiKey: async () => CANARY,
        logger,
        sleep: recorder.sleep,
        retry: { maxAttempts: 2 },
        requestTimeoutMs: 250,
        ...overrides,
      });
    const client = make();
    const errors: unknown[] = [];
    const walkFault = async (fault: SimulatorFault, onPage?: number) => {
      simulator.clearFaults();
      simulator.inject('p', fault, { times: Number.POSITIVE_INFINITY, onPage });
      errors.push(await failure(collect(client.listApiKeys('p'))));
    };

    await walkFault({ type: 'status', status: 500 });
    await walkFault({ type: 'status', status: 429, retryAfter: '1' }, 1);
    await walkFault({ type: 'status', status: 400, body: `{"error":6,"desc":"bad key ${CANARY}"}` });
    await walkFault({ type: 'status', status: 403, body: CANARY });
    await walkFault({ type: 'status', status: 404 });
    await walkFault({ type: 'reset' }, 2);
    await walkFault({ type: 'hang' });
    await walkFault({ type: 'truncated' });
    await walkFault({ type: 'malformed' });
    await walkFault({ type: 'loop-cursor' }, 1);
    simulator.clearFaults();
    errors.push(await failure(collect(client.listApiKeys('p', { maxPages: 1 }))));
    errors.push(await failure(collect(client.listApiKeys('p', { pattern: 'a*b' }))));
    errors.push(await failure(collect(client.listApiKeys('elsewhere'))));
    errors.push(await failure(collect(client.listApiKeys('p', { signal: AbortSignal.abort() }))));
    simulator.inject('p', { type: 'hang' });
    errors.push(await failure(collect(client.listApiKeys('p', { signal: AbortSignal.timeout(20) }))));

    // Sessions: the token value is a secret too.
    errors.push(await failure(client.revokeToken(TOKEN_CANARY)));
    errors.push(await failure(client.signIn('nobody')));
    const session = await client.signIn('root');
    await client.revokeToken(session.token);
    const revokedTwice = await failure(client.revokeToken(session.token));
    errors.push(revokedTwice);

    // Rotation: refused, re-read, refused again.
    simulator.setApiKeys(['something-else']);
    errors.push(await failure(collect(client.listApiKeys('p'))));
    errors.push(await failure(client.getPrincipal('p')));

    // A key the provider mangled, and a key pasted where the host belongs.
    errors.push(
      await failure(collect(make({ apiKey: async () => `${CANARY}\r\nx-evil: 1` }).listApiKeys('p'))),
    );
    errors.push(
      await failure(collect(make({ apiKey: async () => `${CANARY}\u00ff\u0100` }).listApiKeys('p'))),
    );
    for (const host of [CANARY, `https://${CANARY}:x@h.example`, `http://${CANARY}.example`]) {
      try {
        new BigStateClient({ host, apiKey: async () => CANARY, logger });
        errors.push(new Error('constructor accepted the host'));
      } catch (error) {
        errors.push(error);
      }
    }
    // Connection refused, after the server is gone.
    await simulator.close();
    errors.push(await failure(collect(client.listApiKeys('p'))));

    expect(errors).toHaveLength(26);
    for (const error of errors) {
      expect(error).toBeInstanceOf(Error);
      for (const text of renderings(error)) {
        expect(text).not.toContain(CANARY);
        expect(text).not.toContain(TOKEN_CANARY);
        expect(text).not.toContain(session.token);
      }
    }
    expect(lines.length).toBeGreaterThan(40);
    for (const line of lines) {
      expect(line).not.toContain(CANARY);
      expect(line).not.toContain(session.token);
      expect(line).not.toContain(TOKEN_CANARY);
    }
    // Not vacuous: the simulator accepted only the canary, and served pages and a sign-in with it.
    expect(simulator.stats.requests).toBeGreaterThan(20);
  });
});
