import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BadRequestError,
  BigStateConfigurationError,
  DeadlineExceededError,
  HttpStatusError,
  NetworkError,
  RequestTimeoutError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import {
  MAX_DISPLAY_PATH,
  MalformedBodyError,
  parseHttpDate,
  parseJson,
  parseRetryAfter,
  Transport,
} from '../../functions/bigstate/transport.js';
import { leakedForms } from './key-forms.js';
import { collect, Fixture, failure, recordingSleep, until } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

/**
 * An HTTP server on loopback whose handler decides when (or whether) each request is answered with a principal.
 */
async function startServer(
  handler: (url: string, respond: () => void) => void,
): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    seen.push(req.url ?? '');
    handler(req.url ?? '', () => res.end('{"principal":"a"}'));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const PAGE = '{"next":-1,"apiKeys":[{"name":"a"}]}';
const TOKEN = '{"token":"t","expirationTime":"2026-03-31T15:49:17Z"}';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-03-31T15:49:17Z');
  it.each<[string | null | undefined, number | undefined]>([
    [null, undefined],
    [undefined, undefined],
    ['3', 3_000],
    [' 3 ', 3_000],
    ['0', 0],
    ['007', 7_000],
    ['-3', undefined],
    ['+3', undefined],
    ['3.5', undefined],
    ['3e2', undefined],
    ['0x10', undefined],
    ['3 seconds', undefined],
    ['soon 10', undefined],
    ['x 5', undefined],
    ['5 x', undefined],
    ['', undefined],
    ['2026-03-31', undefined],
    ['2026-03-31T15:49:27Z', undefined],
    // IMF-fixdate: exactly this format, GMT only.
    ['Tue, 31 Mar 2026 15:49:27 GMT', 10_000],
    ['Tue, 31 Mar 2026 15:49:07 GMT', 0],
    ['Tue, 31 Mar 2026 15:49:27', undefined],
    ['Tue, 31 Mar 2026 15:49:27 UTC', undefined],
    ['Tue, 31 Mar 2026 15:49:27 +0000', undefined],
    ['Tue, 31 Mar 2026 17:49:27 CEST', undefined],
    ['tue, 31 mar 2026 15:49:27 gmt', undefined],
    ['Tue, 31 Mar 2026 15:49:27 GMT x', undefined],
    ['Tue 31 Mar 2026 15:49:27 GMT', undefined],
    ['31 Mar 2026 15:49:27 GMT', undefined],
    // RFC 850 and asctime, the obsolete formats RFC 9110 still has recipients accept, parsed as strictly.
    ['Tuesday, 31-Mar-26 15:49:27 GMT', 10_000],
    ['Tuesday, 31-Mar-26 15:49:27', undefined],
    ['Tue, 31-Mar-26 15:49:27 GMT', undefined],
    ['Tue Mar 31 15:49:27 2026', 10_000],
    ['Tue Mar 31 15:49:27 2026 GMT', undefined],
  ])('%j is %j ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
});

describe('parseHttpDate', () => {
  it.each([
    ['Sun, 06 Nov 1994 08:49:37 GMT', '1994-11-06T08:49:37.000Z'],
    ['Sunday, 06-Nov-94 08:49:37 GMT', '1994-11-06T08:49:37.000Z'],
    ['Sun Nov  6 08:49:37 1994', '1994-11-06T08:49:37.000Z'],
    ['Thu, 01 Jan 1970 00:00:00 GMT', '1970-01-01T00:00:00.000Z'],
    ['Wed, 31 Dec 2025 23:59:59 GMT', '2025-12-31T23:59:59.000Z'],
    ['Thu, 29 Feb 2024 12:00:00 GMT', '2024-02-29T12:00:00.000Z'],
    // A leap second counts as the first second of the next minute.
    ['Wed, 31 Dec 2025 23:59:60 GMT', '2026-01-01T00:00:00.000Z'],
    // A two-digit year more than 50 years ahead is in the past century.
    ['Monday, 01-Jan-90 00:00:00 GMT', '1990-01-01T00:00:00.000Z'],
    ['Friday, 01-Jan-49 00:00:00 GMT', '2049-01-01T00:00:00.000Z'],
  ])('%s is %s', (text, iso) => {
    const now = Date.parse('2026-11-28T00:00:00Z');
    expect(new Date(parseHttpDate(text, now) ?? Number.NaN).toISOString()).toBe(iso);
  });

  it.each([
    'Sun, 06 Nov 1994 08:49:37',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 EST',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Mon, 06 Nov 1994 08:49:37 GMT',
    'Sun, 31 Nov 1994 08:49:37 GMT',
    'Fri, 29 Feb 2026 08:49:37 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 06 Nov 1994 08:49:61 GMT',
    'Sun, 06 nov 1994 08:49:37 GMT',
    'SUN, 06 NOV 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 8:49:37 GMT',
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sun Nov 6 08:49:37 1994',
    'Sun Nov 06 08:49:37 1994 GMT',
    'Sun Nov  6 08:49:37 94',
    '1994-11-06T08:49:37Z',
    'Sun, 06 Nov 1994 08:49:37 GMT\n',
    '',
  ])('rejects %j', (text) => {
    expect(parseHttpDate(text)).toBeUndefined();
  });
});

describe('parseJson', () => {
  it('keeps the source text of a top-level numeric next only', () => {
    expect(parseJson('{"next":12345678901234567890}').nextSource).toBe('12345678901234567890');
    expect(parseJson('{"next":"5"}').nextSource).toBeUndefined();
    expect(parseJson('{"other":5}').nextSource).toBeUndefined();
    expect(parseJson('{"page":{"next":5}}').nextSource).toBeUndefined();
  });
});

describe('BigState error bodies', () => {
  it.each([
    { body: '{"error":"6","desc":"Invalid request"}', code: undefined, desc: 'Invalid request' },
    { body: '{"error":1e999}', code: undefined, desc: undefined },
    { body: '{"error":6,"desc":7}', code: 6, desc: undefined },
    { body: 'null', code: undefined, desc: undefined },
    { body: `{"error":6,"desc":"${'x'.repeat(600)}"}`, code: 6, desc: `${'x'.repeat(299)}…` },
    {
      body: '{"error":6,"desc":"bad key bigstate-demo-key"}',
      code: 6,
      desc: '(description withheld: it echoed the API key)',
    },
    {
      body: '{"error":6,"desc":"bad key 62696773746174652d64656d6f2d6b6579"}',
      code: 6,
      desc: '(description withheld: it echoed the API key)',
    },
  ])('$body', async ({ body, code, desc }) => {
    const server = await fixture.fakeServer(() => ({ status: 400, body }));
    const error = await failure(fixture.client(server.url).getPrincipal('p'));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code, desc });
  });
});

describe('the API key', () => {
  it('may be a single character', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    await collect(fixture.client(server.url, { apiKey: async () => 'k' }).listApiKeys('p'));
    expect(server.requests[0]?.headers['x-api-key']).toBe('k');
  });

  it('must be a string', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const client = fixture.client(server.url, { apiKey: async () => 42 as unknown as string });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect((error as Error).message).toBe(
      "BigState client option 'apiKey': the API key provider returned an empty key or one with characters an " +
        'HTTP header cannot carry',
    );
    expect(server.requests).toEqual([]);
  });

  it('is not read when the deadline has already ended', async () => {
    let reads = 0;
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const client = fixture.client(server.url, {
      apiKey: async () => {
        reads += 1;
        return 'k';
      },
    });
    const error = await failure(collect(client.listApiKeys('p', { deadline: until(AbortSignal.abort()) })));
    expect(error).toMatchObject({ name: 'DeadlineExceededError', attempts: 0 });
    expect(reads).toBe(0);
  });

  it('takes a key another request already rotated in, without reading the secret again', async () => {
    const server = await fixture.fakeServer((request) =>
      request.headers['x-api-key'] === 'new' ? { body: PAGE } : { status: 401 },
    );
    const reads: boolean[] = [];
    const client = fixture.client(server.url, {
      apiKey: async ({ refresh }) => {
        reads.push(refresh);
        return reads.length === 1 ? 'old' : 'new';
      },
    });
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(reads).toEqual([false, false]);
  });

  it.each([
    {
      fresh: 'old',
      says: 'the API key was refused and reading it again returned the same key',
      after: ' (after 1 attempt)',
    },
    { fresh: 'other', says: 'the API key was refused again', after: ' (after 2 attempts)' },
  ])('names why it was refused: $says', async ({ fresh, says, after }) => {
    const server = await fixture.fakeServer(() => ({ status: 401 }));
    const warnings: string[] = [];
    const client = fixture.client(server.url, {
      apiKey: async ({ refresh }) => (refresh ? fresh : 'old'),
      logger: { debug: () => {}, warn: (message) => warnings.push(message) },
    });
    const error = await failure(client.getPrincipal('p'));
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect((error as Error).message).toBe(
      `BigState GET /v1/principal?principal=p -> HTTP 401: ${says}${after}`,
    );
    expect(warnings).toEqual(['BigState refused the API key; reading it again']);
  });
});

describe('retries', () => {
  it('does not send a sign-in again after a timeout: the server may have created the token', async () => {
    const silent = await startServer(() => {});
    const client = fixture.client(silent.url, { requestTimeoutMs: 100 });
    const error = await failure(client.signIn('root'));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error).toMatchObject({ attempts: 1 });
    expect((error as Error).message).toBe(
      'BigState POST /v1/token?principal=root: no complete response within 100 ms (after 1 attempt)',
    );
    expect((error as Error).cause).toMatchObject({ name: 'TimeoutError' });
    expect(silent.seen).toHaveLength(1);
  });

  it('sends a sign-in again after a refused connection: the server never saw it', async () => {
    const closed = await fixture.fakeServer(() => ({ body: TOKEN }));
    await closed.close();
    const recorder = recordingSleep();
    const client = fixture.client(closed.url, { sleep: recorder.sleep, retry: { maxAttempts: 3 } });
    const error = await failure(client.signIn('root'));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ attempts: 3 });
    expect((error as Error).message).toMatch(/: network error: .*\(ECONNREFUSED\) \(after 3 attempts\)$/);
  });

  it('does not retry a response that is not HTTP', async () => {
    const sockets = new Set<Socket>();
    const garbage = createServer((socket) => {
      sockets.add(socket);
      socket.end('NOT HTTP\r\n\r\n');
    });
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = garbage.address() as AddressInfo;
      const client = fixture.client(`http://127.0.0.1:${port}`);
      const error = await failure(client.getPrincipal('p'));
      expect(error).toBeInstanceOf(NetworkError);
      expect(error).toMatchObject({ attempts: 1 });
    } finally {
      for (const socket of sockets) socket.destroy();
      garbage.close();
    }
  });

  it('honours a Retry-After of exactly maxRetryAfterMs', async () => {
    const server = await fixture.fakeServer((_, index) =>
      index === 0 ? { status: 429, headers: { 'Retry-After': '3' } } : { body: PAGE },
    );
    const recorder = recordingSleep();
    const client = fixture.client(server.url, { sleep: recorder.sleep, retry: { maxRetryAfterMs: 3_000 } });
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(recorder.sleeps).toEqual([3_000]);
  });

  it('does not start a wait that would end exactly at the deadline', async () => {
    const server = await fixture.fakeServer((_, index) =>
      index === 0 ? { status: 429, headers: { 'Retry-After': '3' } } : { body: PAGE },
    );
    const recorder = recordingSleep();
    const now = () => 1_000_000;
    const client = fixture.client(server.url, { sleep: recorder.sleep, now });
    const deadline = fixture.deadlineAt(now() + 3_000, { now });
    const error = await failure(collect(client.listApiKeys('p', { deadline })));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(recorder.sleeps).toEqual([]);
  });

  it('fails a request whose deadline is now before reading the key or sending', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const now = () => 1_000_000;
    for (const at of [now(), now() - 5_000]) {
      const deadline = fixture.deadlineAt(at, { now });
      const error = await failure(fixture.client(server.url, { now }).getPrincipal('p', { deadline }));
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error).toMatchObject({ attempts: 0, interrupted: false });
      expect((error as Error).message).toBe(
        "BigState GET /v1/principal?principal=p: deadline exceeded: the caller's deadline ended the request " +
          '(after 0 attempts)',
      );
      expect((error as Error).cause).toMatchObject({
        name: 'TimeBudgetError',
        message: 'the time budget ended',
      });
    }
    expect(server.requests).toEqual([]);
  });

  it('stops when the caller aborts, even with a far deadline', async () => {
    const server = await fixture.fakeServer(() => ({ status: 503 }));
    const controller = new AbortController();
    const client = fixture.client(server.url, {
      sleep: async () => controller.abort(new Error('stop')),
    });
    const error = await failure(
      collect(
        client.listApiKeys('p', { deadline: fixture.deadlineAfter(60_000, { signal: controller.signal }) }),
      ),
    );
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(server.requests).toHaveLength(1);
  });

  it('passes on a failure of the injected sleep', async () => {
    const server = await fixture.fakeServer(() => ({ status: 503 }));
    const broken = new Error('sleep broke');
    const client = fixture.client(server.url, {
      sleep: async () => {
        throw broken;
      },
    });
    expect(await failure(collect(client.listApiKeys('p')))).toBe(broken);
  });
});

describe('diagnostics', () => {
  it('logs each response and the reason of each retry, never the key', async () => {
    const server = await fixture.fakeServer(
      (_, index) => [{ status: 503 }, { body: '{"next":-1' }, { body: PAGE }][index] ?? { status: 500 },
    );
    const lines: Array<[string, Record<string, unknown>]> = [];
    const client = fixture.client(server.url, {
      logger: {
        debug: (message, extra = {}) => lines.push([message, extra]),
        warn: (message, extra = {}) => lines.push([message, extra]),
      },
    });
    await collect(client.listApiKeys('p'));
    const at = { method: 'GET', path: '/v1/apikey/match?principal=p&next=0' };
    expect(
      lines.map(([message, extra]) => [message, { ...extra, delayMs: undefined, durationMs: undefined }]),
    ).toEqual([
      ['BigState response', { ...at, status: 503, attempt: 1 }],
      ['BigState request failed; retrying', { ...at, attempts: 1, reason: 'HTTP 503' }],
      ['BigState response', { ...at, status: 200, attempt: 2 }],
      [
        'BigState request failed; retrying',
        { ...at, attempts: 2, reason: 'malformed body: the body is not complete JSON' },
      ],
      ['BigState response', { ...at, status: 200, attempt: 3 }],
    ]);
    for (const [, extra] of lines.filter(([message]) => message === 'BigState response')) {
      expect(extra.durationMs).toBeGreaterThanOrEqual(0);
      expect(extra.durationMs).toBeLessThan(10_000);
    }
    expect(JSON.stringify(lines)).not.toContain('bigstate-demo-key');
  });

  it('says why it gave up without waiting', async () => {
    const server = await fixture.fakeServer(() => ({ status: 429, headers: { 'Retry-After': '120' } }));
    const warnings: Array<[string, Record<string, unknown>]> = [];
    const client = fixture.client(server.url, {
      logger: { debug: () => {}, warn: (message, extra = {}) => warnings.push([message, extra]) },
    });
    expect(await failure(client.getPrincipal('p'))).toBeInstanceOf(HttpStatusError);
    expect(warnings).toEqual([
      [
        'BigState request failed; the wait before a retry is too long',
        {
          method: 'GET',
          path: '/v1/principal?principal=p',
          attempts: 1,
          reason: 'HTTP 429',
          retryAfterMs: 120_000,
          remainingMs: undefined,
        },
      ],
    ]);
  });
});

describe('requests', () => {
  it('accepts any 2xx status, 299 included', async () => {
    const server = await fixture.fakeServer(() => ({ status: 299, body: PAGE }));
    expect(await collect(fixture.client(server.url).listApiKeys('p'))).toEqual([{ name: 'a' }]);
  });

  it('treats only 404 as an unknown principal', async () => {
    const server = await fixture.fakeServer(() => ({ status: 410 }));
    expect(await failure(fixture.client(server.url).getPrincipal('p'))).toMatchObject({
      name: 'HttpStatusError',
      status: 410,
    });
  });

  it('sends an empty sign-in body', async () => {
    const server = await fixture.fakeServer(() => ({ body: TOKEN }));
    await fixture.client(server.url).signIn('root');
    expect(server.requests[0]?.headers['content-length']).toBe('0');
  });

  it('drops every trailing slash of the host path', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    await collect(fixture.client(`${server.url}/proxy//`).listApiKeys('p'));
    expect(server.requests[0]?.url).toBe('/proxy/v1/apikey/match?principal=p&next=0');
  });

  it('fails a request after close() naming it, without sending it', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const client = fixture.client(server.url);
    await client.close();
    const error = await failure(collect(client.listApiKeys('p')));
    expect((error as Error).message).toBe(
      'BigState GET /v1/apikey/match?principal=p&next=0: network error: the client was closed (after 1 attempt)',
    );
    expect(server.requests).toEqual([]);
  });

  it('gives the connection slot of a caller that gave up while waiting to the next request', async () => {
    const held: Array<() => void> = [];
    const server = await startServer((url, respond) => {
      if (url.includes('first')) held.push(respond);
      else respond();
    });
    const client = fixture.client(server.url, { maxConnections: 1 });
    const first = client.getPrincipal('first');
    await vi.waitFor(() => expect(held).toHaveLength(1));
    const controller = new AbortController();
    const waiting = client.getPrincipal('waiting', { deadline: until(controller.signal) });
    controller.abort(new Error('gave up'));
    expect(await failure(waiting)).toBeInstanceOf(DeadlineExceededError);
    held[0]?.();
    expect(await first).toEqual({ principal: 'a' });
    expect(await client.getPrincipal('third', { deadline: fixture.deadlineAfter(2_000) })).toEqual({
      principal: 'a',
    });
  });
});

/** A transport as the client builds one, with one attempt per request. */
function transportTo(host: string, key: string): Transport {
  return new Transport({
    baseUrl: new URL(host),
    apiKey: async () => key,
    maxConnections: 2,
    requestTimeoutMs: 2_000,
    retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 },
    logger: undefined,
    sleep: recordingSleep().sleep,
    random: () => 0,
    now: Date.now,
  });
}

describe('displayPath', () => {
  const transport = transportTo('https://bigstate.example/base/', 'k3y-abcdef');

  it('shows a short path whole, the host path as prefix and secret values redacted', () => {
    expect(transport.displayPath('/v1/token', [['token', 'tok-1']], ['token'])).toBe(
      '/base/v1/token?token=REDACTED',
    );
    expect(transport.displayPath('/v1/apikey/match', [['principal', 'svc a&b']])).toBe(
      '/base/v1/apikey/match?principal=svc%20a%26b',
    );
  });

  it(`caps a path of a 20,000-character name at ${MAX_DISPLAY_PATH} characters, never inside a %XX escape`, () => {
    for (const name of ['x'.repeat(20_000), 'é'.repeat(20_000), `${'x'.repeat(460)}${'é'.repeat(100)}`]) {
      for (const shift of [0, 1, 2]) {
        const path = transport.displayPath('/v1/apikey/match', [
          ['principal', `${'y'.repeat(shift)}${name}`],
        ]);
        expect(path.length).toBeLessThanOrEqual(MAX_DISPLAY_PATH);
        expect(path.length).toBeGreaterThan(MAX_DISPLAY_PATH - 4);
        expect(path.startsWith('/base/v1/apikey/match?principal=')).toBe(true);
        expect(path).toMatch(/(?:[^%]|%[0-9A-F]{2})…$/);
        expect(path).not.toMatch(/%[0-9A-F]?…$/);
      }
    }
    const exact = transport.displayPath('/v', [['p', 'x'.repeat(MAX_DISPLAY_PATH - '/base/v?p='.length)]]);
    expect(exact).toHaveLength(MAX_DISPLAY_PATH);
    expect(exact.endsWith('x')).toBe(true);
  });
});

describe('server text that echoes the key, besides desc', () => {
  const KEY = 'sk-T3st+/="\\key-0123456789';

  it('withholds a parse error detail that quotes the key (hex), in the message and the cause chain', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{}' }));
    const transport = transportTo(server.url, KEY);
    const hex = Buffer.from(KEY).toString('hex');
    const error = await failure(
      transport.request({
        method: 'GET',
        path: '/v1/principal',
        query: [],
        idempotent: true,
        parse: () => {
          throw new MalformedBodyError(`unexpected value ${hex} in "principal"`);
        },
      }),
    );
    await transport.close();
    expect((error as Error).message).toBe(
      'BigState GET /v1/principal -> HTTP 200: malformed response: (the detail withheld: it echoed the API key) ' +
        '(after 1 attempt)',
    );
    const cause = (error as Error).cause as Error;
    expect(cause.message).toBe('(the message withheld: it echoed the API key)');
    expect(cause.name).toBe('MalformedBodyError');
    expect(
      cause.stack?.startsWith('MalformedBodyError: (the message withheld: it echoed the API key)\n'),
    ).toBe(true);
    for (const text of [
      String(error),
      (error as Error).stack ?? '',
      cause.stack ?? '',
      JSON.stringify(error),
    ]) {
      expect(leakedForms(text, KEY)).toEqual([]);
    }
  });

  it('keeps a parse error detail that does not echo the key', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{}' }));
    const transport = transportTo(server.url, KEY);
    const error = await failure(
      transport.request({
        method: 'GET',
        path: '/v1/principal',
        query: [],
        idempotent: true,
        parse: () => {
          throw new MalformedBodyError('principal is not a string');
        },
      }),
    );
    await transport.close();
    expect((error as Error).message).toContain(
      'malformed response: principal is not a string (after 1 attempt)',
    );
    expect(((error as Error).cause as Error).stack).toMatch(
      /^MalformedBodyError: principal is not a string\n +at /,
    );
  });
});
