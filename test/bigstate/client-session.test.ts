import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient, parseExpirationTime } from '../../functions/bigstate/client.js';
import {
  BadRequestError,
  ConfigurationError,
  HttpStatusError,
  ProtocolError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import { collect, Fixture, failure, names, recordingSleep } from './support.js';

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
  ])('%s is %s', (text, iso) => {
    expect(parseExpirationTime(text)?.toISOString()).toBe(iso);
  });

  it.each([
    '2026-03-31T15:49:17.2245429',
    '2026-03-31 15:49:17+00:00',
    '2026-13-01T00:00:00+00:00',
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
    const client = fixture.client(simulator.url);
    expect(await collect(client.listApiKeys('p'))).toHaveLength(200);
    expect(client.stats.requests).toBe(40);
    expect(client.stats.connections).toBeLessThanOrEqual(2);
    expect(simulator.stats.connections).toBe(client.stats.connections);
  });

  it('never opens more than maxConnections, with walks in parallel', async () => {
    const principals = Object.fromEntries(names(6, 'p').map((p) => [p, { keys: names(30) }]));
    const simulator = await fixture.simulator({ pageSize: 3, latencyMs: 2, principals });
    const client = fixture.client(simulator.url, { maxConnections: 3 });
    const results = await Promise.all(Object.keys(principals).map((p) => collect(client.listApiKeys(p))));
    expect(results.map((r) => r.length)).toEqual([30, 30, 30, 30, 30, 30]);
    expect(client.stats.requests).toBe(60);
    expect(client.stats.connections).toBeGreaterThanOrEqual(1);
    expect(client.stats.connections).toBeLessThanOrEqual(3);
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
    expect(error).toBeInstanceOf(ConfigurationError);
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
