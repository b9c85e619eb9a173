import { afterEach, describe, expect, it } from 'vitest';
import { BigStateClient, type BigStateClientOptions } from '../../functions/bigstate/client.js';
import {
  BigStateConfigurationError,
  CursorLoopError,
  DeadlineExceededError,
  TooManyPagesError,
} from '../../functions/bigstate/errors.js';
import { collect, Fixture, failure, recordingSleep, until } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

const host = 'https://api.bigstate.dev';
const apiKey = async () => 'k';

/** The error a constructor call throws. */
function thrownBy(construct: () => unknown): unknown {
  try {
    construct();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

describe('client options', () => {
  it.each<{ options: Partial<BigStateClientOptions>; option: string; says: string }>([
    { options: { maxConnections: 0 }, option: 'maxConnections', says: 'must be a positive integer; got 0' },
    {
      options: { requestTimeoutMs: 1.5 },
      option: 'requestTimeoutMs',
      says: 'must be a positive integer; got 1.5',
    },
    { options: { maxPages: Number.NaN }, option: 'maxPages', says: 'must be a positive integer; got NaN' },
    {
      options: { retry: { maxAttempts: 2 ** 53 } },
      option: 'retry.maxAttempts',
      says: 'must be a positive integer; got 9007199254740992',
    },
    {
      options: { retry: { baseDelayMs: -1 } },
      option: 'retry.baseDelayMs',
      says: 'must be a non-negative number; got -1',
    },
    {
      options: { retry: { baseDelayMs: Number.NaN } },
      option: 'retry.baseDelayMs',
      says: 'must be a non-negative number; got NaN',
    },
    {
      options: { retry: { maxDelayMs: -0.5 } },
      option: 'retry.maxDelayMs',
      says: 'must be a non-negative number; got -0.5',
    },
    {
      options: { retry: { maxRetryAfterMs: Number.POSITIVE_INFINITY } },
      option: 'retry.maxRetryAfterMs',
      says: 'must be a non-negative number; got Infinity',
    },
  ])('rejects $option: $says', ({ options, option, says }) => {
    const error = thrownBy(() => new BigStateClient({ host, apiKey, ...options }));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect(error).toMatchObject({ name: 'BigStateConfigurationError', option });
    expect((error as Error).message).toBe(`BigState client option '${option}': ${says}`);
  });

  it.each<{ options: Record<string, unknown>; option: string }>([
    { options: { maxConection: 4 }, option: 'maxConection' },
    { options: { timeoutMs: 1_000 }, option: 'timeoutMs' },
    { options: { signal: AbortSignal.abort() }, option: 'signal' },
    { options: { retry: { maxAttempt: 3 } }, option: 'retry.maxAttempt' },
  ])('rejects the unknown option $option instead of ignoring it', ({ options, option }) => {
    const error = thrownBy(() => new BigStateClient({ host, apiKey, ...options } as BigStateClientOptions));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect(error).toMatchObject({ name: 'BigStateConfigurationError', option });
    expect((error as Error).message).toBe(`BigState client option '${option}': is not an option`);
  });

  it('accepts every documented option, also when it is undefined', () => {
    const options: Required<BigStateClientOptions> = {
      host,
      apiKey,
      maxConnections: 2,
      requestTimeoutMs: 1_000,
      retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 3 },
      maxPages: 5,
      logger: { debug: () => {}, warn: () => {} },
      sleep: async () => {},
      random: () => 0,
      now: () => 0,
    };
    expect(() => new BigStateClient(options)).not.toThrow();
    expect(() => new BigStateClient({ host, apiKey, logger: undefined, retry: {} })).not.toThrow();
  });

  it('rejects an apiKey that is not a function, without echoing it', () => {
    const error = thrownBy(() => new BigStateClient({ host, apiKey: 'bigstate-secret' as never }));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect((error as Error).message).toBe(
      "BigState client option 'apiKey': must be a function that returns the API key",
    );
  });

  it('accepts zero back-off delays, and retries without waiting', async () => {
    const server = await fixture.fakeServer((_, index) =>
      index === 0 ? { status: 500 } : { body: '{"next":-1,"apiKeys":[{"name":"a"}]}' },
    );
    const recorder = recordingSleep();
    const client = fixture.client(server.url, {
      sleep: recorder.sleep,
      random: () => 0.9,
      retry: { baseDelayMs: 0, maxDelayMs: 0, maxRetryAfterMs: 0 },
    });
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(recorder.sleeps).toEqual([0]);
  });

  it('rejects a walk page limit that is not a positive integer before sending anything', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"apiKeys":[]}' }));
    const client = fixture.client(server.url);
    for (const walk of [
      () => client.listApiKeys('p', { maxPages: 0 }),
      () => client.listPrincipals({ maxPages: 2.5 }),
    ]) {
      const error = thrownBy(walk);
      expect(error).toBeInstanceOf(BigStateConfigurationError);
      expect(error).toMatchObject({ option: 'maxPages' });
      expect((error as Error).message).toMatch(
        /^BigState client option 'maxPages': must be a positive integer/,
      );
    }
    expect(server.requests).toEqual([]);
  });
});

describe('host option', () => {
  it.each([['http://localhost.:8080'], ['http://127.100.200.254'], ['http://127.0.0.1.']])(
    'accepts the loopback host %s over http',
    (value) => {
      expect(() => new BigStateClient({ host: value, apiKey })).not.toThrow();
    },
  );

  it.each([
    {
      value: 'https://user@api.bigstate.dev',
      says: 'must not carry credentials; the API key is sent as x-api-key',
    },
    {
      value: 'https://:pw@api.bigstate.dev',
      says: 'must not carry credentials; the API key is sent as x-api-key',
    },
    { value: 'https://api.bigstate.dev/?x=1', says: 'must not have a query or a fragment' },
    { value: 'https://api.bigstate.dev/#top', says: 'must not have a query or a fragment' },
    {
      value: 'http://api.bigstate.dev:8080/base',
      says: 'must be an https URL (http is accepted only for loopback hosts); got http://api.bigstate.dev:8080',
    },
    {
      value: 'ftp://127.0.0.1',
      says: 'must be an https URL (http is accepted only for loopback hosts); got ftp://127.0.0.1',
    },
    {
      value: 'http://127.0.0.1.evil.example',
      says: 'must be an https URL (http is accepted only for loopback hosts); got http://127.0.0.1.evil.example',
    },
  ])('rejects $value: $says', ({ value, says }) => {
    const error = thrownBy(() => new BigStateClient({ host: value, apiKey }));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect((error as Error).message).toBe(`BigState client option 'host': ${says}`);
  });

  it('rejects a host that is not a URL, naming only the kind of parse failure', () => {
    const error = thrownBy(() => new BigStateClient({ host: 'bigstate-secret-typed-here', apiKey }));
    expect(error).toBeInstanceOf(BigStateConfigurationError);
    expect((error as Error).message).toBe(
      "BigState client option 'host': is not a valid absolute URL (e.g. https://api.bigstate.dev)",
    );
    expect((error as Error).cause).toEqual(new Error('TypeError'));
    expect(JSON.stringify(error)).not.toContain('bigstate-secret');
  });
});

describe('which requests are retried', () => {
  it('sends a revocation again after a 500 (revoking twice is harmless)', async () => {
    const server = await fixture.fakeServer((_, index) => ({ status: index === 0 ? 500 : 204 }));
    await fixture.client(server.url).revokeToken('tok');
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'DELETE /v1/token?token=tok',
      'DELETE /v1/token?token=tok',
    ]);
  });

  it('reads a principal again after a 500', async () => {
    const server = await fixture.fakeServer((_, index) =>
      index === 0 ? { status: 500 } : { body: '{"principal":"root","type":2}' },
    );
    expect(await fixture.client(server.url).getPrincipal('root')).toEqual({ principal: 'root', type: 2 });
    expect(server.requests).toHaveLength(2);
  });
});

describe('walk errors name the page request', () => {
  it('a cursor loop names the request that returned the repeated cursor', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":5,"apiKeys":[{"name":"a"}]}' }));
    const error = await failure(collect(fixture.client(server.url).listApiKeys('p q')));
    expect(error).toBeInstanceOf(CursorLoopError);
    expect(error).toMatchObject({
      method: 'GET',
      path: '/v1/apikey/match?principal=p%20q&next=5',
      cursor: '5',
    });
    expect((error as Error).message).toBe(
      'BigState GET /v1/apikey/match?principal=p%20q&next=5: the server returned cursor 5 a second time in one ' +
        'walk (a pagination loop)',
    );
  });

  it('a page limit names the last request of the walk', async () => {
    const server = await fixture.fakeServer((_, index) => ({
      body: `{"next":${index + 1},"principals":[{"principal":"p${index}"}]}`,
    }));
    const client = fixture.client(server.url);
    const error = await failure(collect(client.listPrincipals({ pattern: 'p*', maxPages: 2 })));
    expect(error).toBeInstanceOf(TooManyPagesError);
    expect(error).toMatchObject({
      method: 'GET',
      path: '/v1/principal/match?next=1&pattern=p*',
      maxPages: 2,
    });
    expect((error as Error).message).toBe(
      'BigState GET /v1/principal/match?next=1&pattern=p*: the walk read 2 pages (the limit) and the server ' +
        'still returned a next cursor',
    );
  });
});

describe('the built-in back-off wait', () => {
  const failingThenOk = (_: unknown, index: number) =>
    index === 0 ? { status: 503 } : { body: '{"next":-1,"apiKeys":[{"name":"a"}]}' };

  it('waits and retries without a deadline', async () => {
    const server = await fixture.fakeServer(failingThenOk);
    const client = fixture.client(server.url, {
      sleep: undefined,
      random: () => 1,
      retry: { baseDelayMs: 5 },
    });
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(server.requests).toHaveLength(2);
  });

  it('ends a long wait as soon as the caller aborts', async () => {
    const server = await fixture.fakeServer(failingThenOk);
    const client = fixture.client(server.url, {
      sleep: undefined,
      random: () => 0.99,
      retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 50);
    const started = Date.now();
    const error = await failure(collect(client.listApiKeys('p', { deadline: until(controller.signal) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(server.requests).toHaveLength(1);
  });

  it('does not start a wait for a caller that aborted just before it', async () => {
    const server = await fixture.fakeServer(failingThenOk);
    const controller = new AbortController();
    const client = fixture.client(server.url, {
      sleep: undefined,
      random: () => 0.99,
      retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      // The caller gives up while the client reports the failure, right before the back-off starts.
      logger: { debug: () => {}, warn: () => controller.abort(new Error('stop')) },
    });
    const started = Date.now();
    const error = await failure(collect(client.listApiKeys('p', { deadline: until(controller.signal) })));
    expect(error).toBeInstanceOf(DeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
