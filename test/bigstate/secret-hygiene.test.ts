import { type AddressInfo, createServer, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { BadRequestError, NetworkError, ProtocolError } from '../../functions/bigstate/errors.js';
import type { SimulatorFault } from '../../functions/bigstate/simulator.js';
import { redactSecrets } from '../../functions/commons/redact.js';
import { collect, Fixture, failure, names, recordingSleep, until } from './support.js';

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
    errors.push(await failure(collect(client.listApiKeys('p', { deadline: until(AbortSignal.abort()) }))));
    simulator.inject('p', { type: 'hang' });
    errors.push(await failure(collect(client.listApiKeys('p', { deadline: fixture.deadlineAfter(20) }))));

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

/** A key with every character some encoding changes: `+ / = " \` besides letters, digits and dashes. */
const AWKWARD_KEY = 'sk-T3st+/="\\key-0123456789';

/** The base64 (or base64url) of the key inside a longer blob, `before` bytes in: each of the 3 alignments. */
function inBlob(before: number, encoding: 'base64' | 'base64url'): string {
  const bytes = Buffer.concat([
    Buffer.from('user:'.slice(0, before)),
    Buffer.from(AWKWARD_KEY),
    Buffer.from('@x'),
  ]);
  return bytes.toString(encoding);
}

const base64 = Buffer.from(AWKWARD_KEY).toString('base64');
const base64url = Buffer.from(AWKWARD_KEY).toString('base64url');

/** The forms a server could echo the key in. */
const ECHOES: ReadonlyArray<{ label: string; form: string }> = [
  { label: 'raw', form: AWKWARD_KEY },
  { label: 'encodeURIComponent', form: encodeURIComponent(AWKWARD_KEY) },
  {
    label: 'URL-encoded with lower-case hex',
    form: encodeURIComponent(AWKWARD_KEY).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  },
  { label: 'form-encoded', form: new URLSearchParams({ k: AWKWARD_KEY }).toString().slice(2) },
  { label: 'base64', form: base64 },
  { label: 'base64 unpadded', form: base64.replace(/=+$/, '') },
  { label: 'base64url', form: base64url },
  { label: 'upper-cased', form: AWKWARD_KEY.toUpperCase() },
  { label: 'lower-cased', form: AWKWARD_KEY.toLowerCase() },
  { label: 'JSON-escaped', form: JSON.stringify(AWKWARD_KEY).slice(1, -1) },
  { label: 'JSON-escaped with \\/', form: JSON.stringify(AWKWARD_KEY).slice(1, -1).replaceAll('/', '\\/') },
  ...[3, 4, 5].flatMap((before) => [
    { label: `in a base64 blob, ${before} bytes in`, form: inBlob(before, 'base64') },
    { label: `in a base64url blob, ${before} bytes in`, form: inBlob(before, 'base64url') },
  ]),
];

/** Every text an error shows: message, String(), its own fields as JSON, inspect. */
function shown(error: unknown): string[] {
  const fields: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(error))
    fields[name] = (error as Record<string, unknown>)[name];
  return [
    (error as Error).message,
    String(error),
    JSON.stringify(fields, safeReplacer()),
    inspect(error, { depth: 8, showHidden: true }),
  ];
}

/** Fails when a text holds the key in any form: one of the echoes, or anything redactSecrets still finds. */
function expectNoKey(texts: readonly string[]): void {
  for (const text of texts) {
    for (const { form } of ECHOES) expect(text).not.toContain(form);
    // Not even a fragment of the key's raw form.
    expect(text).not.toContain(AWKWARD_KEY.slice(0, 8));
    // Re-encoded: nothing in the text is still recognisable as the key in any form redactSecrets knows.
    expect(redactSecrets(text, [AWKWARD_KEY], { maxLength: Number.POSITIVE_INFINITY })).toBe(text);
  }
}

describe('the API key echoed back by the server', () => {
  it.each(ECHOES)('never shows in a 400 error when desc holds it $label', async ({ form }) => {
    const simulator = await fixture.simulator({ apiKeys: [AWKWARD_KEY], principals: { p: { keys: ['a'] } } });
    const client = fixture.client(simulator.url, { apiKey: async () => AWKWARD_KEY });
    // The key works: the echo below is the only way it could come back.
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    const desc = `Invalid request: x-api-key ${form} may not list p`;
    simulator.inject('p', { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc }) });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: 6 });
    // The whole description is withheld: what is left of it around the key could hold more of the key.
    expect((error as BadRequestError).desc).toBe('(description withheld: it echoed the API key)');
    expectNoKey([...shown(error), (error as BadRequestError).desc ?? '']);
  });

  it('withholds a long desc whose echo of the key straddles the 300-character cut', async () => {
    const simulator = await fixture.simulator({ apiKeys: [AWKWARD_KEY], principals: { p: { keys: ['a'] } } });
    const client = fixture.client(simulator.url, { apiKey: async () => AWKWARD_KEY });
    const desc = `${'x'.repeat(280)}${AWKWARD_KEY}${'y'.repeat(5_000)}`;
    simulator.inject('p', { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc }) });
    const error = (await failure(collect(client.listApiKeys('p')))) as BadRequestError;
    expect(error.desc).toBe('(description withheld: it echoed the API key)');
    expect(error.message.length).toBeLessThan(450);
    expectNoKey(shown(error));
  });

  it('never shows a token value the server echoes when refusing its revocation', async () => {
    const token = 'tok-9f8e7d6c5b4a+/=';
    const server = await fixture.fakeServer((request) => ({
      status: 400,
      body: JSON.stringify({
        error: 6,
        desc: `no token ${request.url} (${Buffer.from(token).toString('base64url')}, ${token.toUpperCase()})`,
      }),
    }));
    const error = await failure(fixture.client(server.url).revokeToken(token));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ path: '/v1/token?token=REDACTED' });
    expect((error as BadRequestError).desc).toBe('(description withheld: it echoed a token)');
    for (const text of shown(error)) {
      expect(redactSecrets(text, [token], { maxLength: Number.POSITIVE_INFINITY })).toBe(text);
      expect(text).not.toContain(encodeURIComponent(token));
    }
  });

  it('never shows, not even a fragment, when a page that is not JSON echoes it', async () => {
    const server = await fixture.fakeServer(() => ({ body: `{"next":-1,"apiKeys":[${AWKWARD_KEY}` }));
    const client = fixture.client(server.url, { apiKey: async () => AWKWARD_KEY, retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toBe(
      'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 200: malformed response: the body is not ' +
        'complete JSON (after 1 attempt)',
    );
    // JSON.parse's own message quotes `"apiKeys":[sk-T3st+/="`: it is not kept as the cause.
    expect((error as Error).cause).toBeUndefined();
    expectNoKey(renderings(error));
  });

  it('never shows in a network error when a malformed response echoes it (the parser keeps the raw bytes)', async () => {
    const sockets = new Set<Socket>();
    // A header without a colon: node:http's parser fails and keeps the response in the error's `rawPacket`.
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('data', () =>
        socket.end(`HTTP/1.1 200 OK\r\nX-Echo ${AWKWARD_KEY}\r\nContent-Length: 0\r\n\r\n`),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = fixture.client(`http://127.0.0.1:${port}`, { apiKey: async () => AWKWARD_KEY });
      const error = await failure(client.getPrincipal('p'));
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as Error).message).toMatch(
        /network error: Parse Error: .+ \(HPE_[A-Z_]+\) \(after 1 attempt\)$/,
      );
      // The diagnosis survives: the cause still names the parser error, without the raw bytes it carried.
      const cause = (error as Error).cause as Error & { code?: string; rawPacket?: unknown };
      expect(cause.code).toMatch(/^HPE_/);
      expect(cause.rawPacket).toBeUndefined();
      expectNoKey(renderings(error));
    } finally {
      for (const socket of sockets) socket.destroy();
      server.close();
    }
  });
});
