import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BadRequestError,
  ConfigurationError,
  DeadlineExceededError,
  HttpStatusError,
  NetworkError,
  RequestTimeoutError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import { parseJson, parseRetryAfter } from '../../functions/bigstate/transport.js';
import { collect, Fixture, failure, recordingSleep } from './support.js';

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
    ['-3', undefined],
    ['3 seconds', undefined],
    ['2026-03-31', undefined],
    ['Tue, 31 Mar 2026 15:49:27 GMT', 10_000],
    ['Tue, 31 Mar 2026 15:49:07 GMT', 0],
  ])('%j is %j ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
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
    { body: `{"error":6,"desc":"${'x'.repeat(600)}"}`, code: 6, desc: 'x'.repeat(500) },
    { body: '{"error":6,"desc":"bad key bigstate-demo-key"}', code: 6, desc: 'bad key REDACTED' },
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
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe(
      "BigState client option 'apiKey': the API key provider returned an empty key or one with characters an " +
        'HTTP header cannot carry',
    );
    expect(server.requests).toEqual([]);
  });

  it('is not read when the signal has already aborted', async () => {
    let reads = 0;
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const client = fixture.client(server.url, {
      apiKey: async () => {
        reads += 1;
        return 'k';
      },
    });
    const error = await failure(collect(client.listApiKeys('p', { signal: AbortSignal.abort() })));
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
    expect((error as Error).cause).toEqual(new Error('no response within 100 ms'));
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
    const error = await failure(collect(client.listApiKeys('p', { deadline: now() + 3_000 })));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(recorder.sleeps).toEqual([]);
  });

  it('fails a request whose deadline is now before reading the key or sending', async () => {
    const server = await fixture.fakeServer(() => ({ body: PAGE }));
    const now = () => 1_000_000;
    for (const deadline of [now(), now() - 5_000]) {
      const error = await failure(fixture.client(server.url, { now }).getPrincipal('p', { deadline }));
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error).toMatchObject({ attempts: 0 });
      expect((error as Error).cause).toMatchObject({ name: 'TimeoutError', message: 'the deadline passed' });
    }
    expect(server.requests).toEqual([]);
  });

  it('stops on the caller signal even with a far deadline', async () => {
    const server = await fixture.fakeServer(() => ({ status: 503 }));
    const controller = new AbortController();
    const client = fixture.client(server.url, {
      sleep: async () => controller.abort(new Error('stop')),
    });
    const error = await failure(
      collect(client.listApiKeys('p', { signal: controller.signal, deadline: Date.now() + 60_000 })),
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
    const waiting = client.getPrincipal('waiting', { signal: controller.signal });
    controller.abort(new Error('gave up'));
    expect(await failure(waiting)).toBeInstanceOf(DeadlineExceededError);
    held[0]?.();
    expect(await first).toEqual({ principal: 'a' });
    expect(await client.getPrincipal('third', { deadline: Date.now() + 2_000 })).toEqual({ principal: 'a' });
  });
});
