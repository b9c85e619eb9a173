import { channel } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient, parseExpirationTime } from '../../functions/bigstate/client.js';
import {
  BadRequestError,
  BigStateConfigurationError,
  DeadlineExceededError,
  HttpStatusError,
  NetworkError,
  ProtocolError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import { collect, Fixture, failure, names, recordingSleep, until } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

describe('parseExpirationTime', () => {
  it.each([
    ['2026-03-31T15:49:17.2245429+00:00', '2026-03-31T15:49:17.224Z'],
    // Digits beyond the millisecond are dropped, never rounded up.
    ['2026-03-31T15:49:17.9999999+00:00', '2026-03-31T15:49:17.999Z'],
    ['2026-03-31T15:49:17.2245429+02:00', '2026-03-31T13:49:17.224Z'],
    ['2026-03-31T15:49:17.2245429-05:30', '2026-03-31T21:19:17.224Z'],
    ['2026-12-31T23:30:00.5+00:00', '2026-12-31T23:30:00.500Z'],
    ['2026-12-31T23:30:00-01:00', '2027-01-01T00:30:00.000Z'],
    ['2024-02-29T00:00:00.1234567Z', '2024-02-29T00:00:00.123Z'],
    // The first and last valid value of every field.
    ['2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z'],
    ['2026-12-31T23:59:59.999Z', '2026-12-31T23:59:59.999Z'],
    ['2026-03-31T15:49:17z', '2026-03-31T15:49:17.000Z'],
    ['2026-03-31T15:49:17+23:00', '2026-03-30T16:49:17.000Z'],
    ['2026-03-31T15:49:17-00:59', '2026-03-31T16:48:17.000Z'],
  ])('%s is %s', (text, iso) => {
    expect(parseExpirationTime(text)?.toISOString()).toBe(iso);
  });

  it.each([
    '2026-03-31T15:49:17.2245429',
    '2026-03-31 15:49:17+00:00',
    '2026-13-01T00:00:00+00:00',
    '2026-13-15T00:00:00+00:00',
    '2026-00-15T00:00:00+00:00',
    '2026-03-00T00:00:00+00:00',
    '2026-03-15T24:00:00+00:00',
    '2026-03-15T99:00:00+00:00',
    '2026-03-15T15:49:60+00:00',
    '2026-03-15T15:49:17+00:60',
    'x2026-03-31T15:49:17+00:00',
    ' 2026-03-31T15:49:17Z',
    '2026-03-31T15:49:17+00:00x',
    '2026-03-31T15:49:17Z ',
    '2026-03-31T15:49:17.2245429+00:00:00',
    '2026-02-29T00:00:00+00:00',
    '2026-04-31T00:00:00+00:00',
    '2026-03-31T24:00:00+00:00',
    '2026-03-31T15:60:00+00:00',
    '2026-03-31T15:49:17.+00:00',
    '2026-03-31T15:49:17.2245429+24:00',
    '2026-03-31T15:49:17.2245429+0000',
    'tomorrow',
    '',
  ])('rejects %j', (text) => {
    expect(parseExpirationTime(text)).toBeUndefined();
  });
});

describe('signIn and revokeToken', () => {
  it('signs in, parses the expiry, and revokes the token', async () => {
    const simulator = await fixture.simulator({ principals: { 'svc a&b': { keys: [] } } });
    const client = fixture.client(simulator.url);
    const before = Date.now();
    const session = await client.signIn('svc a&b');
    expect(session.token).toMatch(/^\S{16,}$/);
    expect(session.expirationTime.getTime()).toBeGreaterThanOrEqual(before + 3_600_000 - 1_000);
    expect(session.expirationTime.getTime()).toBeLessThanOrEqual(Date.now() + 3_600_000);

    await client.revokeToken(session.token);
    const again = await failure(client.revokeToken(session.token));
    expect(again).toBeInstanceOf(HttpStatusError);
    expect(again).toMatchObject({ status: 404, path: '/v1/token?token=REDACTED' });
    expect((again as Error).message).not.toContain(session.token);
  });

  it('sends the documented requests', async () => {
    const server = await fixture.fakeServer((request) =>
      request.method === 'POST'
        ? { body: '{"token":"tok-123","expirationTime":"2026-03-31T15:49:17.2245429+00:00","extra":1}' }
        : { status: 204 },
    );
    const client = fixture.client(server.url);
    const session = await client.signIn('root');
    expect(session).toEqual({ token: 'tok-123', expirationTime: new Date('2026-03-31T15:49:17.224Z') });
    await client.revokeToken('tok 1&2');
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'POST /v1/token?principal=root',
      'DELETE /v1/token?token=tok%201%262',
    ]);
    for (const request of server.requests) {
      expect(request.headers).toMatchObject({
        'x-api-key': 'bigstate-demo-key',
        'content-type': 'application/json',
        accept: 'application/json',
      });
    }
  });

  it.each([
    '{"token":"t"}',
    '{"token":"","expirationTime":"2026-03-31T15:49:17.2245429+00:00"}',
    '{"token":"t","expirationTime":"2026-02-30T15:49:17.2245429+00:00"}',
    '{"token":"t","expirationTime":1774972157}',
  ])('rejects the sign-in answer %s', async (body) => {
    const server = await fixture.fakeServer(() => ({ body }));
    const error = await failure(fixture.client(server.url).signIn('root'));
    expect(error).toBeInstanceOf(ProtocolError);
    // Sign-in creates a token: a garbled answer is not sent again.
    expect(server.requests).toHaveLength(1);
  });

  it.each([
    { body: '{"token":"t"}', says: 'expirationTime: expected string, received undefined' },
    { body: '{"token":"","expirationTime":"x"}', says: 'token: expected a string of at least 1 character' },
    {
      body: '{"token":"t","expirationTime":1774972157}',
      says: 'expirationTime: expected string, received number',
    },
    { body: '"t"', says: '(body): expected object, received string' },
    {
      body: '{"token":"t","expirationTime":"2026-02-30T15:49:17.2245429+00:00"}',
      says: 'expirationTime is not an ISO 8601 date-time with an offset',
    },
  ])('says what is wrong with a sign-in answer: $says', async ({ body, says }) => {
    const server = await fixture.fakeServer(() => ({ body }));
    const error = await failure(fixture.client(server.url).signIn('root'));
    expect((error as Error).message).toContain(`malformed response: ${says}`);
  });

  it('retries sign-in only where the server cannot have acted on it', async () => {
    const ok = '{"token":"t","expirationTime":"2026-03-31T15:49:17.2245429+00:00"}';
    const unavailable = await fixture.fakeServer((_, index) =>
      index === 0 ? { status: 503 } : { body: ok },
    );
    const recorder = recordingSleep();
    expect((await fixture.client(unavailable.url, { sleep: recorder.sleep }).signIn('root')).token).toBe('t');
    expect(unavailable.requests).toHaveLength(2);

    const crashed = await fixture.fakeServer((_, index) => (index === 0 ? { status: 500 } : { body: ok }));
    expect(await failure(fixture.client(crashed.url).signIn('root'))).toBeInstanceOf(HttpStatusError);
    expect(crashed.requests).toHaveLength(1);
  });

  it('maps sign-in errors from the simulator', async () => {
    const simulator = await fixture.simulator({ principals: { root: {} } });
    const client = fixture.client(simulator.url);
    expect(await failure(client.signIn('nobody'))).toBeInstanceOf(BadRequestError);
    simulator.setApiKeys(['rotated']);
    expect(await failure(client.signIn('root'))).toBeInstanceOf(UnauthorizedError);
  });
});

describe('connections', () => {
  it('reuses keep-alive connections across many pages', async () => {
    const simulator = await fixture.simulator({ pageSize: 5, principals: { p: { keys: names(200) } } });
    const connections = fixture.connectionsTo(simulator.url);
    const client = fixture.client(simulator.url);
    expect(await collect(client.listApiKeys('p'))).toHaveLength(200);
    expect(simulator.stats.requests).toBe(40);
    expect(simulator.stats.connections).toBeLessThanOrEqual(2);
    expect(connections()).toBe(simulator.stats.connections);
  });

  it('never opens more than maxConnections, with walks in parallel', async () => {
    const principals = Object.fromEntries(names(6, 'p').map((p) => [p, { keys: names(30) }]));
    const simulator = await fixture.simulator({ pageSize: 3, latencyMs: 2, principals });
    const connections = fixture.connectionsTo(simulator.url);
    const client = fixture.client(simulator.url, { maxConnections: 3 });
    const results = await Promise.all(Object.keys(principals).map((p) => collect(client.listApiKeys(p))));
    expect(results.map((r) => r.length)).toEqual([30, 30, 30, 30, 30, 30]);
    expect(simulator.stats.requests).toBe(60);
    expect(connections()).toBeGreaterThanOrEqual(1);
    expect(connections()).toBeLessThanOrEqual(3);
    expect(simulator.stats.connections).toBe(connections());
  });

  it('runs parallel walks over one connection when maxConnections is 1', async () => {
    const principals = Object.fromEntries(names(4, 'p').map((p) => [p, { keys: names(12) }]));
    const simulator = await fixture.simulator({ pageSize: 3, latencyMs: 1, principals });
    const connections = fixture.connectionsTo(simulator.url);
    const client = fixture.client(simulator.url, { maxConnections: 1 });
    const results = await Promise.all(Object.keys(principals).map((p) => collect(client.listApiKeys(p))));
    expect(results.map((r) => r.length)).toEqual([12, 12, 12, 12]);
    expect(simulator.stats.requests).toBe(16);
    expect(connections()).toBe(1);
    expect(simulator.stats.connections).toBe(1);
  });

  it('keeps each client within its own cap, with a client of another host busy at the same time', async () => {
    const one = await fixture.simulator({
      pageSize: 2,
      latencyMs: 1,
      principals: { p: { keys: names(20) } },
    });
    const two = await fixture.simulator({
      pageSize: 2,
      latencyMs: 1,
      principals: { p: { keys: names(20) } },
    });
    const toOne = fixture.connectionsTo(one.url);
    const toTwo = fixture.connectionsTo(two.url);
    const first = fixture.client(one.url, { maxConnections: 2 });
    const second = fixture.client(two.url, { maxConnections: 3 });
    const walks = [first, second, first, second, second].map((client) => collect(client.listApiKeys('p')));
    expect((await Promise.all(walks)).map((keys) => keys.length)).toEqual([20, 20, 20, 20, 20]);
    expect(toOne()).toBe(one.stats.connections);
    expect(toTwo()).toBe(two.stats.connections);
    expect(toOne()).toBeGreaterThanOrEqual(1);
    expect(toOne()).toBeLessThanOrEqual(2);
    expect(toTwo()).toBeGreaterThanOrEqual(1);
    expect(toTwo()).toBeLessThanOrEqual(3);
  });

  it('asks for keep-alive, never Connection: close', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"apiKeys":[]}' }));
    await collect(fixture.client(server.url).listApiKeys('p'));
    expect(server.requests[0]?.headers.connection).toBe('keep-alive');
  });

  it('does not count the wait for a free connection against the request timeout', async () => {
    const principals = Object.fromEntries(names(6, 'p').map((p) => [p, { keys: ['a'] }]));
    const simulator = await fixture.simulator({ latencyMs: 20, principals });
    // Served one at a time, the six requests take about 120 ms: longer than the 80 ms timeout of each.
    const client = fixture.client(simulator.url, {
      maxConnections: 1,
      requestTimeoutMs: 80,
      retry: { maxAttempts: 1 },
    });
    const results = await Promise.all(Object.keys(principals).map((p) => collect(client.listApiKeys(p))));
    expect(results.flat()).toHaveLength(6);
    expect(simulator.stats.requests).toBe(6);
  });

  it('ends a request still waiting for a free connection when its deadline passes', async () => {
    const simulator = await fixture.simulator({ principals: { slow: { keys: ['a'] }, p: { keys: ['b'] } } });
    simulator.inject('slow', { type: 'hang' });
    const client = fixture.client(simulator.url, { maxConnections: 1 });
    const stop = new AbortController();
    const hung = failure(collect(client.listApiKeys('slow', { deadline: until(stop.signal) })));
    const error = await failure(collect(client.listApiKeys('p', { deadline: fixture.deadlineAfter(30) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ attempts: 1, interrupted: false });
    expect(simulator.stats.requests).toBe(1);
    stop.abort();
    expect(await hung).toBeInstanceOf(DeadlineExceededError);
  });

  it('close() waits for requests under way; later requests fail without being sent', async () => {
    // A server that answers only when the test says so.
    let answer = () => {};
    let arrived = () => {};
    const arrival = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let seen = 0;
    const server = createServer((request, response) => {
      request.resume();
      seen += 1;
      answer = () => response.end('{"next":-1,"apiKeys":[{"name":"a"}]}');
      arrived();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const client = fixture.client(`http://127.0.0.1:${port}`);
      const walk = collect(client.listApiKeys('p'));
      await arrival;
      let closed = false;
      const closing = client.close().then(() => {
        closed = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closed).toBe(false);
      answer();
      await closing;
      expect(await walk).toEqual([{ name: 'a' }]);
      const error = await failure(client.getPrincipal('p'));
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as Error).message).toContain('the client was closed');
      expect(seen).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('listens to no diagnostics channel: tests count connections themselves', async () => {
    const channels = [
      'undici:client:connected',
      'net.client.socket',
      'http.client.request.created',
      'http.client.request.start',
      'http.client.response.finish',
    ].map((name) => channel(name));
    const simulator = await fixture.simulator({ principals: { p: { keys: ['a'] } } });
    const client = new BigStateClient({ host: simulator.url, apiKey: async () => 'bigstate-demo-key' });
    const walk = collect(client.listApiKeys('p'));
    expect(channels.filter((c) => c.hasSubscribers)).toEqual([]);
    expect(await walk).toEqual([{ name: 'a' }]);
    expect(simulator.stats.connections).toBe(1);
    expect(channels.filter((c) => c.hasSubscribers)).toEqual([]);
    await client.close();
  });
});

describe('host validation', () => {
  const apiKey = async () => 'k';

  it.each([
    'https://api.bigstate.dev',
    'https://bigstate.example.com:8443/bigstate/',
    'http://127.0.0.1:8080',
    'http://127.1.2.3',
    'http://localhost:3000',
    'http://LOCALHOST',
    'http://[::1]:8080',
  ])('accepts %s', (host) => {
    expect(() => new BigStateClient({ host, apiKey })).not.toThrow();
  });

  it('accepts a URL object', () => {
    expect(() => new BigStateClient({ host: new URL('https://api.bigstate.dev'), apiKey })).not.toThrow();
  });

  it.each([
    'http://api.bigstate.dev',
    'http://10.0.0.1',
    'http://128.0.0.1',
    'http://localhost.evil.example',
    'http://[::2]',
    'ftp://api.bigstate.dev',
    'api.bigstate.dev',
    '',
    'https://user:pass@api.bigstate.dev',
    'https://api.bigstate.dev/?x=1',
  ])('rejects %j, naming host', (host) => {
    let error: unknown;
    try {
      new BigStateClient({ host, apiKey });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect(error).toMatchObject({ option: 'host' });
    expect((error as Error).message).toContain("'host'");
  });

  it('rejects other invalid options, naming them', () => {
    const host = 'https://api.bigstate.dev';
    expect(() => new BigStateClient({ host, apiKey, maxConnections: 0 })).toThrow(/'maxConnections'/);
    expect(() => new BigStateClient({ host, apiKey, requestTimeoutMs: 1.5 })).toThrow(/'requestTimeoutMs'/);
    expect(() => new BigStateClient({ host, apiKey, retry: { maxAttempts: 0 } })).toThrow(
      /'retry.maxAttempts'/,
    );
    expect(() => new BigStateClient({ host, apiKey, maxPages: -1 })).toThrow(/'maxPages'/);
  });

  it('talks to a loopback http host', async () => {
    const simulator = await fixture.simulator({ principals: { p: { keys: ['a'] } } });
    const client = fixture.client(simulator.url.replace('127.0.0.1', 'localhost'));
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
  });
});
