import { afterEach, describe, expect, it } from 'vitest';
import {
  BadRequestError,
  BigStateConfigurationError,
  type BigStateError,
  CursorLoopError,
  DeadlineExceededError,
  ForbiddenError,
  HttpStatusError,
  isRetryable,
  NetworkError,
  ProtocolError,
  RequestTimeoutError,
  TooManyPagesError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import type { SimulatorFault } from '../../functions/bigstate/simulator.js';
import { InterruptedError } from '../../functions/commons/errors.js';
import { collect, Fixture, failure, names, recordingSleep, rotatingKey, until } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

/** A simulator with principal `p` holding five keys over three pages, and a client with a recording sleep. */
async function setup(clientOptions: Parameters<Fixture['client']>[1] = {}) {
  const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: names(5) } } });
  const recorder = recordingSleep();
  const client = fixture.client(simulator.url, {
    sleep: recorder.sleep,
    random: () => 0.5,
    ...clientOptions,
  });
  return { simulator, client, sleeps: recorder.sleeps };
}

const walkNames = async (iterable: AsyncIterable<{ name: string }>) =>
  (await collect(iterable)).map((k) => k.name);

describe('transient faults are retried', () => {
  it.each<{ label: string; fault: SimulatorFault }>([
    { label: '500', fault: { type: 'status', status: 500 } },
    { label: '502', fault: { type: 'status', status: 502 } },
    { label: '503', fault: { type: 'status', status: 503 } },
    { label: '408', fault: { type: 'status', status: 408 } },
    { label: '429 without Retry-After', fault: { type: 'status', status: 429 } },
    { label: 'a connection reset', fault: { type: 'reset' } },
    { label: 'a truncated body', fault: { type: 'truncated' } },
    { label: 'a malformed body', fault: { type: 'malformed' } },
  ])('$label on a middle page, twice: the walk completes', async ({ fault }) => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', fault, { times: 2, onPage: 1 });

    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(simulator.stats.requests).toBe(5);
    // Full jitter with random() = 0.5 and the default base of 200 ms: 0.5 * 200, then 0.5 * 400.
    expect(sleeps).toEqual([100, 200]);
  });

  it('honours Retry-After in seconds', async () => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', { type: 'status', status: 429, retryAfter: '3' });
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(sleeps).toEqual([3000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const { simulator, client, sleeps } = await setup({ now: () => now });
    simulator.inject('p', { type: 'status', status: 503, retryAfter: new Date(now + 7000).toUTCString() });
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(sleeps).toEqual([7000]);
  });

  it('falls back to backoff when Retry-After is unreadable', async () => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', { type: 'status', status: 429, retryAfter: 'soon-ish' });
    await collect(client.listApiKeys('p'));
    expect(sleeps).toEqual([100]);
  });

  it('fails at once, without sleeping, when Retry-After is beyond maxRetryAfterMs', async () => {
    const { simulator, client, sleeps } = await setup({ retry: { maxRetryAfterMs: 10_000 } });
    simulator.inject('p', { type: 'status', status: 429, retryAfter: '60' });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 429, attempts: 1 });
    expect(sleeps).toEqual([]);
  });

  it('fails at once when Retry-After runs past the walk deadline', async () => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', { type: 'status', status: 503, retryAfter: '5' });
    const error = await failure(collect(client.listApiKeys('p', { deadline: fixture.deadlineAfter(2_000) })));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 503, attempts: 1 });
    expect(sleeps).toEqual([]);
  });

  it('grows the backoff exponentially up to maxDelayMs, and caps the attempts', async () => {
    const { simulator, client, sleeps } = await setup({
      random: () => 1,
      retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000 },
    });
    simulator.inject('p', { type: 'status', status: 503 }, { times: Number.POSITIVE_INFINITY });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status: 503, attempts: 6 });
    expect((error as Error).message).toContain('after 6 attempts');
    expect(simulator.stats.requests).toBe(6);
    expect(sleeps).toEqual([100, 200, 400, 800, 1000]);
  });

  it('spreads the backoff with the random source (full jitter)', async () => {
    const values = [0, 0.25, 0.999];
    const { simulator, client, sleeps } = await setup({ random: () => values.shift() ?? 0 });
    simulator.inject('p', { type: 'status', status: 500 }, { times: 3 });
    await collect(client.listApiKeys('p'));
    expect(sleeps).toEqual([0, 100, 799.2]);
  });

  it.each<{ label: string; fault: SimulatorFault; error: new (...args: never[]) => BigStateError }>([
    { label: '500', fault: { type: 'status', status: 500 }, error: HttpStatusError },
    { label: 'reset', fault: { type: 'reset' }, error: NetworkError },
    { label: 'truncated', fault: { type: 'truncated' }, error: ProtocolError },
    { label: 'malformed', fault: { type: 'malformed' }, error: ProtocolError },
  ])(
    'a persistent $label fails with its named error once the retries are spent',
    async ({ fault, error }) => {
      const { simulator, client, sleeps } = await setup({ retry: { maxAttempts: 3 } });
      simulator.inject('p', fault, { times: Number.POSITIVE_INFINITY });
      const thrown = await failure(collect(client.listApiKeys('p')));
      expect(thrown).toBeInstanceOf(error);
      expect(thrown).toMatchObject({
        attempts: 3,
        method: 'GET',
        path: '/v1/apikey/match?principal=p&next=0',
      });
      expect(isRetryable(thrown)).toBe(true);
      expect(sleeps).toHaveLength(2);
      expect(simulator.stats.requests).toBe(3);
    },
  );

  it('names the cause of a network error', async () => {
    const { simulator, client } = await setup({ retry: { maxAttempts: 1 } });
    simulator.inject('p', { type: 'reset' });
    const error = (await failure(collect(client.listApiKeys('p')))) as NetworkError;
    expect(error.message).toMatch(/^BigState GET \/v1\/apikey\/match\?principal=p&next=0: network error: .+/);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('retries a refused connection', async () => {
    const simulator = await fixture.simulator();
    const url = simulator.url;
    await simulator.close();
    const recorder = recordingSleep();
    const client = fixture.client(url, { sleep: recorder.sleep, retry: { maxAttempts: 2 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(recorder.sleeps).toHaveLength(1);
  });
});

describe('errors that are not retried', () => {
  it('400 with BigState code and desc', async () => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', { type: 'status', status: 400, body: '{"error":6,"desc":"Invalid request"}' });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, code: 6, desc: 'Invalid request', attempts: 1 });
    expect((error as Error).message).toBe(
      'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 400: bad request (400): BigState error 6 ' +
        '"Invalid request" (after 1 attempt)',
    );
    expect(sleeps).toEqual([]);
    expect(isRetryable(error)).toBe(false);
  });

  it('400 from the simulator for a pattern it does not accept', async () => {
    const { client } = await setup();
    const error = await failure(collect(client.listApiKeys('p', { pattern: 'a*b' })));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: 6, desc: 'Invalid request' });
  });

  it('400 without a BigState body', async () => {
    const { simulator, client } = await setup();
    simulator.inject('p', { type: 'status', status: 400, body: 'nope' });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ code: undefined, desc: undefined });
  });

  it('403 for a principal the key may not read', async () => {
    const simulator = await fixture.simulator({
      apiKeys: ['limited'],
      access: { limited: ['mine'] },
      principals: { mine: { keys: ['a'] }, theirs: { keys: ['b'] } },
    });
    const client = fixture.client(simulator.url, { apiKey: async () => 'limited' });
    expect((await collect(client.listApiKeys('mine'))).map((k) => k.name)).toEqual(['a']);
    const error = await failure(collect(client.listApiKeys('theirs')));
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toMatchObject({ status: 403, attempts: 1 });
    expect(await failure(client.getPrincipal('theirs'))).toBeInstanceOf(ForbiddenError);
    expect(simulator.stats.requests).toBe(3);
  });

  it.each([404, 405, 409, 302])('%i where it is not expected', async (status) => {
    const { simulator, client, sleeps } = await setup();
    simulator.inject('p', { type: 'status', status });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(HttpStatusError);
    expect(error).toMatchObject({ status, attempts: 1 });
    expect(sleeps).toEqual([]);
  });

  it('a repeated cursor (first page)', async () => {
    const { simulator, client } = await setup();
    simulator.inject('p', { type: 'loop-cursor' });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(CursorLoopError);
    expect(error).toMatchObject({ cursor: '0' });
    expect(simulator.stats.requests).toBe(1);
  });

  it('a repeated cursor (later page), after yielding the earlier pages', async () => {
    const { simulator, client } = await setup();
    simulator.inject('p', { type: 'loop-cursor' }, { onPage: 2 });
    const seen: string[] = [];
    const error = await failure(
      (async () => {
        for await (const key of client.listApiKeys('p')) seen.push(key.name);
      })(),
    );
    expect(error).toBeInstanceOf(CursorLoopError);
    expect((error as CursorLoopError).message).toContain('a second time in one walk');
    expect(seen).toEqual(names(5).slice(0, 5));
    expect(simulator.stats.requests).toBe(3);
  });

  it('too many pages', async () => {
    const { simulator, client } = await setup({ maxPages: 2 });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(TooManyPagesError);
    expect(error).toMatchObject({ maxPages: 2 });
    expect(simulator.stats.requests).toBe(2);
    // The per-walk override wins over the client's limit.
    expect((await collect(client.listApiKeys('p', { maxPages: 3 }))).length).toBe(5);
  });
});

describe('timeouts and deadlines', () => {
  it('stops a hung request with the per-attempt timeout, then retries', async () => {
    const { simulator, client, sleeps } = await setup({ requestTimeoutMs: 200 });
    simulator.inject('p', { type: 'hang' }, { onPage: 1 });
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(sleeps).toHaveLength(1);
  });

  it('fails with RequestTimeoutError when every attempt hangs', async () => {
    const { simulator, client } = await setup({ requestTimeoutMs: 40, retry: { maxAttempts: 2 } });
    simulator.inject('p', { type: 'hang' }, { times: Number.POSITIVE_INFINITY });
    const started = performance.now();
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(error).toMatchObject({ attempts: 2, timeoutMs: 40 });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('applies the timeout to a body that stalls after the headers', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      res.write('{"next":-1,');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const client = fixture.client(`http://127.0.0.1:${port}`, {
        requestTimeoutMs: 50,
        retry: { maxAttempts: 1 },
      });
      expect(await failure(collect(client.listApiKeys('p')))).toBeInstanceOf(RequestTimeoutError);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('stops a hung request at once when the caller aborts (deadline signal)', async () => {
    const { simulator, client } = await setup({ requestTimeoutMs: 10_000 });
    simulator.inject('p', { type: 'hang' });
    const signal = AbortSignal.timeout(80);
    const started = performance.now();
    const error = await failure(collect(client.listApiKeys('p', { deadline: until(signal) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect((error as Error).cause).toBe(signal.reason);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('stops a back-off wait at once when the caller aborts', async () => {
    const { simulator } = await setup();
    // The real sleep this time, with a long backoff the abort must cut short.
    const client = fixture.client(simulator.url, {
      sleep: undefined,
      random: () => 1,
      retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    simulator.inject('p', { type: 'status', status: 503 });
    const controller = new AbortController();
    const reason = new Error('budget spent');
    setTimeout(() => controller.abort(reason), 50);
    const started = performance.now();
    const error = await failure(collect(client.listApiKeys('p', { deadline: until(controller.signal) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ attempts: 1, cause: reason });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('fails before sending anything when the deadline has already ended', async () => {
    const { simulator, client } = await setup();
    const error = await failure(
      collect(client.listApiKeys('p', { deadline: until(AbortSignal.abort('stop')) })),
    );
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(simulator.stats.requests).toBe(0);
  });

  it('ends a walk at its deadline, saying the deadline was exceeded', async () => {
    const { simulator, client } = await setup({ requestTimeoutMs: 10_000 });
    simulator.inject('p', { type: 'hang' }, { onPage: 1 });
    const error = await failure(collect(client.listApiKeys('p', { deadline: fixture.deadlineAfter(80) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ interrupted: false, cause: { name: 'TimeBudgetError' } });
    expect((error as Error).message).toMatch(
      /^BigState GET \/v1\/apikey\/match\?principal=p&next=\d+: deadline exceeded: the caller's deadline ended the request \(after 1 attempt\)$/,
    );
  });

  it('says "interrupted" when the caller stopped the walk (Ctrl-C), not that a deadline passed', async () => {
    const { simulator, client } = await setup({ requestTimeoutMs: 10_000 });
    simulator.inject('p', { type: 'hang' }, { onPage: 1 });
    const controller = new AbortController();
    const reason = new InterruptedError('interrupted (Ctrl-C)');
    const deadline = fixture.deadlineAfter(60_000, { signal: controller.signal });
    // Page 0 arrives at once; page 1 hangs until the caller gives up.
    setTimeout(() => controller.abort(reason), 80);
    const started = performance.now();
    const error = await failure(collect(client.listApiKeys('p', { deadline })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(error).toMatchObject({ interrupted: true, attempts: 1, cause: reason });
    expect((error as Error).message).toMatch(
      /: interrupted: the caller stopped the request \(after 1 attempt\)$/,
    );
    expect((error as Error).message).not.toContain('deadline');
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('401 and key rotation', () => {
  it('re-reads the key once after a 401 and goes on with the rotated key', async () => {
    const { simulator } = await setup();
    const key = rotatingKey('old-key');
    simulator.setApiKeys(['old-key']);
    const client = fixture.client(simulator.url, { apiKey: key.provider });
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(key.calls.refresh).toBe(0);

    simulator.setApiKeys(['new-key']);
    key.store.current = 'new-key';
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(key.calls.refresh).toBe(1);
    // Three pages and the one refused attempt.
    expect(simulator.stats.requests).toBe(3 + 4);
  });

  it('fails with UnauthorizedError when the re-read key is the same', async () => {
    const { simulator } = await setup();
    const key = rotatingKey('stale');
    simulator.setApiKeys(['other']);
    const client = fixture.client(simulator.url, { apiKey: key.provider });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ status: 401, attempts: 1 });
    expect(key.calls.refresh).toBe(1);
    expect(simulator.stats.requests).toBe(1);
  });

  it('fails with UnauthorizedError when the re-read key is refused too', async () => {
    const { simulator } = await setup();
    const key = rotatingKey('stale');
    key.store.current = 'also-wrong';
    simulator.setApiKeys(['other']);
    const client = fixture.client(simulator.url, { apiKey: key.provider });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toMatchObject({ attempts: 2 });
    expect(key.calls.refresh).toBe(1);
    expect(simulator.stats.requests).toBe(2);
  });

  it('rejects an unusable key from the provider before sending it', async () => {
    const empty = await setup({ apiKey: async () => '  ' });
    const control = await setup({ apiKey: async () => 'a\u0000b' });
    for (const { client, simulator } of [empty, control]) {
      const error = await failure(collect(client.listApiKeys('p')));
      expect(error).toBeInstanceOf(BigStateConfigurationError);
      expect(error).toMatchObject({ name: 'BigStateConfigurationError', option: 'apiKey' });
      expect(simulator.stats.requests).toBe(0);
    }
  });

  it('trims the whitespace a pasted secret often carries', async () => {
    const { client } = await setup({ apiKey: async () => 'bigstate-demo-key\n' });
    expect(await walkNames(client.listApiKeys('p'))).toEqual(names(5));
  });
});

describe('isRetryable', () => {
  it('classifies errors by whether the same request may succeed later', () => {
    const at = { method: 'GET', path: '/v1/x' };
    expect(isRetryable(new HttpStatusError({ ...at, status: 503 }))).toBe(true);
    expect(isRetryable(new HttpStatusError({ ...at, status: 429 }))).toBe(true);
    expect(isRetryable(new HttpStatusError({ ...at, status: 404 }))).toBe(false);
    expect(isRetryable(new UnauthorizedError(at))).toBe(false);
    expect(isRetryable(new CursorLoopError('5', at))).toBe(false);
    expect(isRetryable(new RequestTimeoutError(10, at))).toBe(true);
    expect(isRetryable(new Error('other'))).toBe(false);
  });
});
