import { afterEach, describe, expect, it } from 'vitest';
import {
  bigStateTime,
  demoPrincipals,
  isValidPattern,
  matchesGlob,
  type Simulator,
  type SimulatorOptions,
} from '../../functions/bigstate/simulator.js';
import { collect, DEMO_KEY, Fixture, names } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

interface Raw {
  status: number;
  text: string;
  headers: Headers;
}

/** A plain HTTP request to the simulator, with the demo key unless told otherwise. */
async function raw(
  simulator: Simulator,
  pathAndQuery: string,
  init: { method?: string; key?: string | null } = {},
): Promise<Raw> {
  const headers: Record<string, string> = { Accept: 'application/json', 'Content-Type': 'application/json' };
  if (init.key !== null) headers['x-api-key'] = init.key ?? DEMO_KEY;
  const response = await fetch(`${simulator.url}${pathAndQuery}`, { method: init.method ?? 'GET', headers });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/** The raw `next` of a page: read from the text, since JSON.parse would round a large one. */
function nextOf(text: string): string {
  const match = /^\{"next":(-?\d+),/.exec(text);
  if (match?.[1] === undefined) throw new Error(`no next in ${text}`);
  return match[1];
}

const INVALID = { error: 6, desc: 'Invalid request' };

async function start(options: SimulatorOptions = {}) {
  return fixture.simulator({ pageSize: 2, principals: { p: { keys: names(5) } }, ...options });
}

describe('simulator: authentication and validation', () => {
  it('answers 401 without a key or with an unknown key', async () => {
    const simulator = await start();
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0', { key: null })).status).toBe(401);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0', { key: 'nope' })).status).toBe(401);
    expect((await raw(simulator, '/v1/principal/match?next=0', { key: 'nope' })).status).toBe(401);
    expect((await raw(simulator, '/v1/token?principal=p', { method: 'POST', key: null })).status).toBe(401);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(200);
  });

  it('accepts the keys set by setApiKeys only (rotation)', async () => {
    const simulator = await start();
    simulator.setApiKeys(['new']);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(401);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0', { key: 'new' })).status).toBe(200);
  });

  it('answers 403 for a principal outside the key’s access list', async () => {
    const simulator = await start({
      apiKeys: ['limited', 'full'],
      access: { limited: ['p'] },
      principals: { p: { keys: ['a'] }, q: { keys: ['b'] } },
    });
    expect((await raw(simulator, '/v1/apikey/match?principal=q&next=0', { key: 'limited' })).status).toBe(
      403,
    );
    expect((await raw(simulator, '/v1/principal?principal=q', { key: 'limited' })).status).toBe(403);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0', { key: 'limited' })).status).toBe(
      200,
    );
    expect((await raw(simulator, '/v1/apikey/match?principal=q&next=0', { key: 'full' })).status).toBe(200);
  });

  it.each([
    ['missing principal', '/v1/apikey/match?next=0'],
    ['empty principal', '/v1/apikey/match?principal=&next=0'],
    ['missing next', '/v1/apikey/match?principal=p'],
    ['non-integer next', '/v1/apikey/match?principal=p&next=abc'],
    ['fractional next', '/v1/apikey/match?principal=p&next=1.5'],
    ['a next rounded through a double', '/v1/apikey/match?principal=p&next=4.611686018427388e%2B18'],
    ['unknown next', '/v1/apikey/match?principal=p&next=12345678901234567890'],
    ['next = -1', '/v1/apikey/match?principal=p&next=-1'],
    ['a pattern with an inner star', '/v1/apikey/match?principal=p&next=0&pattern=a*b'],
    ['an empty pattern', '/v1/apikey/match?principal=p&next=0&pattern='],
    ['principal/match with a bad next', '/v1/principal/match?next=x'],
    ['principal without principal', '/v1/principal'],
  ])('answers 400 {error: 6} for %s', async (_, path) => {
    const simulator = await start();
    const response = await raw(simulator, path);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toEqual(INVALID);
  });

  it('answers 400 for a cursor of another principal or pattern', async () => {
    const simulator = await start({ principals: { p: { keys: names(5) }, q: { keys: names(5) } } });
    const cursor = nextOf((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    expect((await raw(simulator, `/v1/apikey/match?principal=p&next=${cursor}`)).status).toBe(200);
    expect((await raw(simulator, `/v1/apikey/match?principal=q&next=${cursor}`)).status).toBe(400);
    expect((await raw(simulator, `/v1/apikey/match?principal=p&next=${cursor}&pattern=*`)).status).toBe(400);
  });

  it('answers 200 with an empty last page for an unknown principal', async () => {
    const simulator = await start();
    const response = await raw(simulator, '/v1/apikey/match?principal=nobody&next=0');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toEqual({ next: -1, apiKeys: [] });
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('answers 404 for unknown paths and 405 for wrong methods', async () => {
    const simulator = await start();
    expect((await raw(simulator, '/v2/apikey/match?principal=p&next=0')).status).toBe(404);
    const wrong = await raw(simulator, '/v1/apikey/match?principal=p&next=0', { method: 'POST' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET');
  });
});

describe('simulator: pages and cursors', () => {
  it('pages in sorted order with opaque cursors beyond 2^53', async () => {
    const simulator = await start({ principals: { p: { keys: ['e', 'c', 'a', 'd', 'b'] } } });
    const pages: unknown[] = [];
    const cursors: string[] = [];
    let next = '0';
    while (next !== '-1') {
      const response = await raw(simulator, `/v1/apikey/match?principal=p&next=${next}`);
      next = nextOf(response.text);
      cursors.push(next);
      pages.push(JSON.parse(response.text).apiKeys);
    }
    expect(pages).toEqual([[{ name: 'a' }, { name: 'b' }], [{ name: 'c' }, { name: 'd' }], [{ name: 'e' }]]);
    expect(cursors).toHaveLength(3);
    for (const cursor of cursors.slice(0, -1)) {
      expect(BigInt(cursor)).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));
      // Beyond 2^53 a double cannot hold it: a client that parses it as a number sends another value.
      expect(String(Number(cursor))).not.toBe(cursor);
    }
  });

  it('answers a repeated page request with the same page and cursor', async () => {
    const simulator = await start();
    const first = nextOf((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    const a = await raw(simulator, `/v1/apikey/match?principal=p&next=${first}`);
    const b = await raw(simulator, `/v1/apikey/match?principal=p&next=${first}`);
    expect(a.text).toBe(b.text);
    // Each first page starts a new walk with new cursors.
    const again = nextOf((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    expect(again).not.toBe(first);
  });

  it.each([
    ['*', ['alpha', 'alphabet', 'beta', 'gamma-alpha', 'x*y']],
    ['alpha', ['alpha']],
    ['alpha*', ['alpha', 'alphabet']],
    ['*alpha', ['alpha', 'gamma-alpha']],
    ['*lph*', ['alpha', 'alphabet', 'gamma-alpha']],
    ['*a*', ['alpha', 'alphabet', 'beta', 'gamma-alpha']],
    ['nothing', []],
  ])('matches pattern %s', async (pattern, expected) => {
    const simulator = await start({
      pageSize: 10,
      principals: { p: { keys: ['beta', 'alpha', 'alphabet', 'gamma-alpha', 'x*y'] } },
    });
    const response = await raw(
      simulator,
      `/v1/apikey/match?principal=p&next=0&pattern=${encodeURIComponent(pattern)}`,
    );
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text).apiKeys.map((k: { name: string }) => k.name)).toEqual(expected);
  });

  it('validates and matches globs as pure functions', () => {
    expect(['x', '*x', 'x*', '*x*', '*', '**'].every(isValidPattern)).toBe(true);
    expect(['', 'a*b', '***', '*a*b*'].some(isValidPattern)).toBe(false);
    expect(matchesGlob('abc', undefined)).toBe(true);
    expect(matchesGlob('abc', '**')).toBe(true);
    expect(matchesGlob('abc', 'b')).toBe(false);
  });

  it('treats only a leading or trailing * of a pattern as special: ?, [ and ] are literal', () => {
    expect(['a?b', '[ab]', '*?*', '[*', '*]', '?', '*[a-z]*', 'a\\b'].every(isValidPattern)).toBe(true);
    expect(['a*b', '?*?*', '*[*]*', '**a*'].some(isValidPattern)).toBe(false);
    // `?` matches a `?`, never any one character.
    expect(matchesGlob('a?b', 'a?b')).toBe(true);
    expect(matchesGlob('axb', 'a?b')).toBe(false);
    // `[ab]` is a name, not a character class.
    expect(matchesGlob('[ab]', '[ab]')).toBe(true);
    expect(matchesGlob('a', '[ab]')).toBe(false);
    expect(matchesGlob('x[a-z]y', '*[a-z]*')).toBe(true);
    expect(matchesGlob('xqy', '*[a-z]*')).toBe(false);
  });

  it.each<[string, string, boolean]>([
    // A `*` inside a name is an ordinary character, found by wildcards around a part without one.
    ['a*b', '*a*', true],
    ['a*b', 'a*', true],
    ['a*b', '*b', true],
    ['a*b', '*', true],
    ['a*b', '**', true],
    ['a*b', '*b*', true],
    ['a*b', 'b*', false],
    ['a*b', '*a', false],
    // The pattern `*b*` looks for `b`, not for `*b`: a leading star is always the wildcard.
    ['*b', '*b', true],
    ['xb', '*b', true],
    ['b*', 'b*', true],
    ['bx', 'b*', true],
    ['*', '*', true],
    ['**', '**', true],
  ])('name %j and pattern %j: %s', (name, pattern, matches) => {
    expect(isValidPattern(pattern)).toBe(true);
    expect(matchesGlob(name, pattern)).toBe(matches);
  });

  it('lists names holding *, ? and [ over HTTP, and refuses a pattern with an inner *', async () => {
    const keys = ['a*b', 'a?b', 'axb', '[ab]', 'a', 'b'];
    const simulator = await start({ pageSize: 10, principals: { p: { keys } } });
    const listed = async (pattern: string) => {
      const response = await raw(
        simulator,
        `/v1/apikey/match?principal=p&next=0&pattern=${encodeURIComponent(pattern)}`,
      );
      return {
        status: response.status,
        names: JSON.parse(response.text).apiKeys?.map((k: { name: string }) => k.name),
      };
    };
    expect(await listed('*a*')).toEqual({ status: 200, names: ['[ab]', 'a', 'a*b', 'a?b', 'axb'] });
    expect(await listed('a?b')).toEqual({ status: 200, names: ['a?b'] });
    expect(await listed('[ab]')).toEqual({ status: 200, names: ['[ab]'] });
    expect(await listed('*?*')).toEqual({ status: 200, names: ['a?b'] });
    expect(await listed('a*')).toEqual({ status: 200, names: ['a', 'a*b', 'a?b', 'axb'] });
    // The exact name `a*b` cannot be asked for: a `*` inside a pattern is not one of the seed's forms.
    expect(await listed('a*b')).toEqual({ status: 400, names: undefined });
  });

  it('keeps extra fields and reflects inventory changes', async () => {
    const simulator = await start({ principals: { p: { keys: [{ name: 'a', created: '2025-01-01' }] } } });
    simulator.addKeys('p', 'b', 'a');
    simulator.addKeys('new', 'z');
    expect(simulator.keys('p')).toEqual(['a', 'b']);
    expect(simulator.keys('new')).toEqual(['z']);
    const page = JSON.parse((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    expect(page).toEqual({ next: -1, apiKeys: [{ name: 'a', created: '2025-01-01' }, { name: 'b' }] });
    simulator.removeKeys('p', 'a', 'unknown');
    simulator.setKeys('q', ['y', { name: 'x', note: 1 }]);
    expect(simulator.keys('p')).toEqual(['b']);
    expect(simulator.keys('q')).toEqual(['x', 'y']);
    expect(simulator.keys('nobody')).toEqual([]);
  });

  it('lists principals with the same cursor rules, and reads one', async () => {
    const simulator = await start({
      principals: { b: { type: 2, name: 'Bee' }, a: {}, c: { keys: ['k'] } },
    });
    const first = await raw(simulator, '/v1/principal/match?next=0');
    const cursor = nextOf(first.text);
    expect(JSON.parse(first.text).principals).toEqual([
      { principal: 'a', type: 1 },
      { principal: 'b', type: 2, name: 'Bee' },
    ]);
    const second = await raw(simulator, `/v1/principal/match?next=${cursor}`);
    expect(JSON.parse(second.text)).toEqual({ next: -1, principals: [{ principal: 'c', type: 1 }] });
    expect(
      JSON.parse((await raw(simulator, '/v1/principal/match?next=0&pattern=b')).text).principals,
    ).toEqual([{ principal: 'b', type: 2, name: 'Bee' }]);
    expect(JSON.parse((await raw(simulator, '/v1/principal?principal=b')).text)).toEqual({
      principal: 'b',
      type: 2,
      name: 'Bee',
    });
    expect((await raw(simulator, '/v1/principal?principal=zzz')).status).toBe(404);
  });

  it('issues tokens in the seed format and revokes them', async () => {
    const simulator = await start();
    const signIn = await raw(simulator, '/v1/token?principal=p', { method: 'POST' });
    expect(signIn.status).toBe(200);
    const body = JSON.parse(signIn.text) as { token: string; expirationTime: string };
    expect(body.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(body.expirationTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}\+00:00$/);
    expect((await raw(simulator, '/v1/token?principal=unknown', { method: 'POST' })).status).toBe(400);
    const token = encodeURIComponent(body.token);
    expect((await raw(simulator, `/v1/token?token=${token}`, { method: 'DELETE' })).status).toBe(204);
    expect((await raw(simulator, `/v1/token?token=${token}`, { method: 'DELETE' })).status).toBe(404);
    expect((await raw(simulator, '/v1/token', { method: 'DELETE' })).status).toBe(400);
    expect(bigStateTime(Date.UTC(2026, 2, 31, 15, 49, 17, 224))).toMatch(
      /^2026-03-31T15:49:17\.224\d{4}\+00:00$/,
    );
  });

  it('serves under a base path', async () => {
    const simulator = await start({ basePath: '/bigstate/' });
    expect(simulator.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/bigstate$/);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(200);
    const outside = await fetch(`${new URL(simulator.url).origin}/v1/apikey/match?principal=p&next=0`, {
      headers: { 'x-api-key': DEMO_KEY },
    });
    expect(outside.status).toBe(404);
  });

  it('has a demo inventory with paging, an empty principal and awkward names', () => {
    const demo = demoPrincipals();
    expect(Object.keys(demo)).toEqual(expect.arrayContaining(['root', 'svc a&b', 'zürich-ops', 'empty']));
    expect(Math.max(...Object.values(demo).map((p) => p.keys?.length ?? 0))).toBeGreaterThan(50);
  });
});

describe('simulator: offset-cursor churn', () => {
  /** Six keys over three pages of two: k001 is the last key of page 0. */
  async function churning() {
    const simulator = await start({ principals: { p: { keys: names(6) }, q: { keys: names(6) } } });
    const client = fixture.client(simulator.url);
    const walk = async (pattern?: string) =>
      (await collect(client.listApiKeys('p', { pattern }))).map((key) => key.name);
    return { simulator, walk };
  }

  it('makes every complete walk miss the real key at the page-0/page-1 boundary', async () => {
    const { simulator, walk } = await churning();
    expect(await walk()).toEqual(names(6));
    simulator.churn('p');
    for (let run = 0; run < 3; run++) {
      // The short-lived key pushed k001 onto page 1, then vanished: page 1 starts at k002.
      expect(await walk()).toEqual(['!churn', 'k000', 'k002', 'k003', 'k004', 'k005']);
      expect(simulator.keys('p')).toEqual(names(6));
    }
    // The walks are complete (no error, every page read), yet k001 exists all along.
    expect(simulator.keys('p')).toContain('k001');
  });

  it('does not affect an exact check: a walk with a key name as its pattern sees the truth', async () => {
    const { simulator, walk } = await churning();
    simulator.churn('p');
    expect(await walk('k001')).toEqual(['k001']);
    expect(await walk('k005')).toEqual(['k005']);
    expect(await walk('nothing')).toEqual([]);
    // An exact check does not touch the churn key: the inventory stays as it was.
    expect(simulator.keys('p')).toEqual(names(6));
    // A pattern the churn key matches is churned like a complete walk.
    expect(await walk('*')).toEqual(['!churn', 'k000', 'k002', 'k003', 'k004', 'k005']);
    expect(await walk('k*')).toEqual(names(6));
  });

  it('churns only its principal, takes a name, and stops', async () => {
    const { simulator, walk } = await churning();
    const client = fixture.client(simulator.url);
    simulator.churn('p', { name: '#tmp' });
    expect(await walk()).toEqual(['#tmp', 'k000', 'k002', 'k003', 'k004', 'k005']);
    expect((await collect(client.listApiKeys('q'))).map((key) => key.name)).toEqual(names(6));
    simulator.stopChurn('p');
    expect(await walk()).toEqual(names(6));
    simulator.churn('p');
    simulator.stopChurn();
    expect(await walk()).toEqual(names(6));
  });

  it('never leaves its key behind, even after a walk of one page or one abandoned after page 0', async () => {
    const simulator = await start({ principals: { small: { keys: ['a'] }, p: { keys: names(6) } } });
    const client = fixture.client(simulator.url);
    simulator.churn('small');
    expect((await collect(client.listApiKeys('small'))).map((key) => key.name)).toEqual(['!churn', 'a']);
    expect(simulator.keys('small')).toEqual(['a']);
    simulator.churn('p');
    for await (const key of client.listApiKeys('p')) {
      expect(key.name).toBe('!churn');
      break;
    }
    expect(simulator.keys('p')).toContain('!churn');
    // Churning again is still allowed, and stopping removes the key an abandoned walk left.
    expect(() => simulator.churn('p')).not.toThrow();
    simulator.stopChurn('p');
    expect(simulator.keys('p')).toEqual(names(6));
  });

  it('refuses a churn key that would not sort before every key, or is one of them', async () => {
    const simulator = await start({ principals: { p: { keys: ['!a', 'k'] } } });
    expect(() => simulator.churn('p')).toThrow(RangeError);
    expect(() => simulator.churn('p', { name: '!a' })).toThrow(/sort before every key/);
    expect(() => simulator.churn('p', { name: 'a' })).toThrow(RangeError);
    expect(() => simulator.churn('p', { name: '' })).toThrow(RangeError);
    expect(() => simulator.churn('p', { name: ' tmp' })).not.toThrow();
  });
});

describe('simulator: faults, hooks and stats', () => {
  it('plays a status fault with Retry-After and a body, the given number of times', async () => {
    const simulator = await start();
    simulator.inject('p', { type: 'status', status: 429, retryAfter: '7', body: '{"x":1}' }, { times: 2 });
    const first = await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');
    expect(first.text).toBe('{"x":1}');
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(429);
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(200);
  });

  it('plays a fault only for its principal, or for any with *, and only on its page', async () => {
    const simulator = await start({ principals: { p: { keys: names(5) }, q: { keys: names(5) } } });
    simulator.inject('q', { type: 'status', status: 500 });
    expect((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).status).toBe(200);
    expect((await raw(simulator, '/v1/apikey/match?principal=q&next=0')).status).toBe(500);

    simulator.inject('*', { type: 'status', status: 503 }, { onPage: 1 });
    const cursor = nextOf((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    expect((await raw(simulator, `/v1/apikey/match?principal=p&next=${cursor}`)).status).toBe(503);
    expect((await raw(simulator, `/v1/apikey/match?principal=p&next=${cursor}`)).status).toBe(200);

    simulator.inject('*', { type: 'status', status: 503 }, { times: Number.POSITIVE_INFINITY });
    simulator.clearFaults();
    expect((await raw(simulator, '/v1/apikey/match?principal=q&next=0')).status).toBe(200);
  });

  it('resets the connection', async () => {
    const simulator = await start();
    simulator.inject('p', { type: 'reset' });
    await expect(raw(simulator, '/v1/apikey/match?principal=p&next=0')).rejects.toThrow();
  });

  it('truncates the body, and sends a malformed one', async () => {
    const simulator = await start();
    simulator.inject('p', { type: 'truncated' });
    const truncated = await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    expect(truncated.status).toBe(200);
    expect(() => JSON.parse(truncated.text)).toThrow(SyntaxError);
    expect(truncated.text.startsWith('{"next":')).toBe(true);

    simulator.inject('p', { type: 'malformed' });
    const malformed = await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    expect(malformed.status).toBe(200);
    const body = JSON.parse(malformed.text);
    expect(typeof body.next).not.toBe('number');
    expect(body.apiKeys).toBeUndefined();
  });

  it('returns an already returned cursor on loop-cursor', async () => {
    const simulator = await start();
    simulator.inject('p', { type: 'loop-cursor' }, { onPage: 1 });
    const first = nextOf((await raw(simulator, '/v1/apikey/match?principal=p&next=0')).text);
    const looped = await raw(simulator, `/v1/apikey/match?principal=p&next=${first}`);
    expect(nextOf(looped.text)).toBe(first);
    expect(JSON.parse(looped.text).apiKeys).toEqual([{ name: 'k002' }, { name: 'k003' }]);
  });

  it('hangs until close(), which ends the hung request', async () => {
    const simulator = await start();
    simulator.inject('p', { type: 'hang' });
    const pending = raw(simulator, '/v1/apikey/match?principal=p&next=0');
    const outcome = await Promise.race([
      pending.then(
        () => 'answered',
        () => 'failed',
      ),
      new Promise((resolve) => setTimeout(() => resolve('still hanging'), 100)),
    ]);
    expect(outcome).toBe('still hanging');
    await simulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('calls the page hook before each page, with the page index', async () => {
    const simulator = await start();
    const calls: Array<[string, number]> = [];
    simulator.onPage((principal, index) => calls.push([principal, index]));
    let next = '0';
    while (next !== '-1')
      next = nextOf((await raw(simulator, `/v1/apikey/match?principal=p&next=${next}`)).text);
    simulator.onPage(undefined);
    await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    expect(calls).toEqual([
      ['p', 0],
      ['p', 1],
      ['p', 2],
    ]);
  });

  it('counts requests, connections, apikey/match requests per principal, listings and lookups', async () => {
    const simulator = await start();
    await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    await raw(simulator, '/v1/apikey/match?principal=svc%20a%26b&next=0');
    await raw(simulator, '/v1/principal/match?next=0');
    await raw(simulator, '/v1/principal/match?next=0', { key: 'wrong' });
    await raw(simulator, '/v1/principal?principal=p');
    await raw(simulator, '/v1/principal?principal=nobody');
    await raw(simulator, '/v1/principal?principal=p');
    await raw(simulator, '/v1/token?principal=p', { method: 'POST' });
    expect(simulator.stats.requests).toBe(8);
    expect(simulator.stats.connections).toBeGreaterThanOrEqual(1);
    // Only apikey/match counts per principal: lookups and sign-ins have their own counts, or none.
    expect(simulator.stats.requestsByPrincipal).toEqual({ p: 1, 'svc a&b': 1 });
    expect(simulator.stats.listingRequests).toBe(2);
    expect(simulator.stats.lookupRequests).toBe(3);
    expect(simulator.stats.lookupsByPrincipal).toEqual({ p: 2, nobody: 1 });
    simulator.resetStats();
    expect(simulator.stats).toEqual({
      requests: 0,
      connections: 0,
      requestsByPrincipal: {},
      listingRequests: 0,
      lookupRequests: 0,
      lookupsByPrincipal: {},
    });
  });

  it('adds the configured latency to every response', async () => {
    const simulator = await start({ latencyMs: 60 });
    const started = performance.now();
    await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    await raw(simulator, '/v1/apikey/match?principal=p&next=0', { key: 'wrong' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('rejects invalid options', async () => {
    await expect(start({ pageSize: 0 })).rejects.toThrow(/pageSize/);
    await expect(start({ latencyMs: -1 })).rejects.toThrow(/latencyMs/);
    const simulator = await start();
    expect(() => simulator.inject('p', { type: 'reset' }, { times: 0 })).toThrow(/times/);
  });
});

/** The principal ids of one listing page. */
function idsOf(text: string): string[] {
  return (JSON.parse(text) as { principals: Array<{ principal: string }> }).principals.map(
    (p) => p.principal,
  );
}

/** Every principal id of a listing walk over raw HTTP, page by page. */
async function listingPages(simulator: Simulator, pattern?: string): Promise<string[][]> {
  const query = pattern === undefined ? '' : `&pattern=${encodeURIComponent(pattern)}`;
  const pages: string[][] = [];
  let next = '0';
  while (next !== '-1') {
    const response = await raw(simulator, `/v1/principal/match?next=${next}${query}`);
    expect(response.status).toBe(200);
    next = nextOf(response.text);
    pages.push(idsOf(response.text));
  }
  return pages;
}

describe('simulator: principals added and removed while it runs', () => {
  it('adds a principal that the listing, the lookup and apikey/match then serve', async () => {
    const simulator = await start({ principals: { p: { keys: ['a'] } } });
    expect(simulator.principals()).toEqual(['p']);
    simulator.addPrincipal('svc a&b', { type: 2, name: 'Zoë & co', keys: ['k2', { name: 'k1', note: 1 }] });
    simulator.addPrincipal('bare');
    expect(simulator.principals()).toEqual(['bare', 'p', 'svc a&b']);
    expect(simulator.keys('svc a&b')).toEqual(['k1', 'k2']);
    expect(JSON.parse((await raw(simulator, '/v1/principal/match?next=0&pattern=*a*')).text)).toEqual({
      next: -1,
      principals: [
        { principal: 'bare', type: 1 },
        { principal: 'svc a&b', type: 2, name: 'Zoë & co' },
      ],
    });
    const lookup = await raw(simulator, `/v1/principal?principal=${encodeURIComponent('svc a&b')}`);
    expect(lookup.status).toBe(200);
    expect(JSON.parse(lookup.text)).toEqual({ principal: 'svc a&b', type: 2, name: 'Zoë & co' });
    const keys = await raw(simulator, `/v1/apikey/match?principal=${encodeURIComponent('svc a&b')}&next=0`);
    expect(JSON.parse(keys.text)).toEqual({ next: -1, apiKeys: [{ name: 'k1', note: 1 }, { name: 'k2' }] });
    expect(JSON.parse((await raw(simulator, '/v1/principal?principal=bare')).text)).toEqual({
      principal: 'bare',
      type: 1,
    });
  });

  it('updates only the given fields of an existing principal', async () => {
    const simulator = await start({ principals: { p: { type: 2, name: 'Pat', keys: ['a', 'b'] } } });
    simulator.addPrincipal('p');
    expect(JSON.parse((await raw(simulator, '/v1/principal?principal=p')).text)).toEqual({
      principal: 'p',
      type: 2,
      name: 'Pat',
    });
    expect(simulator.keys('p')).toEqual(['a', 'b']);
    simulator.addPrincipal('p', { name: 'Patricia', keys: ['c'] });
    expect(JSON.parse((await raw(simulator, '/v1/principal?principal=p')).text)).toEqual({
      principal: 'p',
      type: 2,
      name: 'Patricia',
    });
    expect(simulator.keys('p')).toEqual(['c']);
    simulator.addPrincipal('p', { type: 1 });
    expect(JSON.parse((await raw(simulator, '/v1/principal?principal=p')).text).type).toBe(1);
    expect(() => simulator.addPrincipal('')).toThrow(RangeError);
  });

  it('removes a principal: not listed, 404 on lookup, an empty key list, no sign-in', async () => {
    const simulator = await start({ principals: { p: { keys: names(5) }, q: { keys: ['x'] } } });
    const signIn = JSON.parse((await raw(simulator, '/v1/token?principal=p', { method: 'POST' })).text);
    expect(simulator.removePrincipal('p')).toBe(true);
    expect(simulator.removePrincipal('p')).toBe(false);
    expect(simulator.removePrincipal('never')).toBe(false);
    expect(simulator.principals()).toEqual(['q']);
    expect(simulator.keys('p')).toEqual([]);
    expect(await listingPages(simulator)).toEqual([['q']]);
    expect((await raw(simulator, '/v1/principal?principal=p')).status).toBe(404);
    const keys = await raw(simulator, '/v1/apikey/match?principal=p&next=0');
    expect(keys.status).toBe(200);
    expect(JSON.parse(keys.text)).toEqual({ next: -1, apiKeys: [] });
    expect((await raw(simulator, '/v1/token?principal=p', { method: 'POST' })).status).toBe(400);
    // Its session tokens went with it.
    const token = encodeURIComponent(signIn.token);
    expect((await raw(simulator, `/v1/token?token=${token}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('never resurrects a removed principal: not by apikey/match, its churn, or a listing', async () => {
    const simulator = await start({ principals: { p: { keys: names(6) }, q: { keys: ['x'] } } });
    const client = fixture.client(simulator.url);
    simulator.churn('p');
    simulator.removePrincipal('p');
    expect(await collect(client.listApiKeys('p'))).toEqual([]);
    expect(await collect(client.listApiKeys('nobody'))).toEqual([]);
    await listingPages(simulator);
    expect(simulator.principals()).toEqual(['q']);
    expect((await raw(simulator, '/v1/principal?principal=p')).status).toBe(404);
    expect((await raw(simulator, '/v1/principal?principal=nobody')).status).toBe(404);
    // Coming back is explicit, with the keys it is given and no churn left over.
    simulator.addPrincipal('p', { keys: ['k009'] });
    expect((await collect(client.listApiKeys('p'))).map((key) => key.name)).toEqual(['k009']);
    // setKeys and addKeys still create a principal, as before.
    simulator.addKeys('new', 'z');
    simulator.setKeys('other', ['y']);
    expect(simulator.principals()).toEqual(['new', 'other', 'p', 'q']);
  });

  it('lets a key walk go on after its principal is removed between pages: the rest is empty', async () => {
    const simulator = await start({ principals: { p: { keys: names(5) } } });
    const client = fixture.client(simulator.url);
    simulator.onPage((principal, index) => {
      if (principal === 'p' && index === 1) simulator.removePrincipal('p');
    });
    expect((await collect(client.listApiKeys('p'))).map((key) => key.name)).toEqual(['k000', 'k001']);
    expect(simulator.principals()).toEqual([]);
  });

  it('calls the listing hook before each listing page, with the index and pattern, and only for listings', async () => {
    const simulator = await start({
      principals: { a: {}, b: {}, c: {}, d: {}, e: {} },
    });
    const listing: Array<[number, string | undefined]> = [];
    const pages: Array<[string, number]> = [];
    simulator.onListingPage((index, pattern) => listing.push([index, pattern]));
    simulator.onPage((principal, index) => pages.push([principal, index]));
    expect(await listingPages(simulator)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    await listingPages(simulator, '*');
    await raw(simulator, '/v1/apikey/match?principal=a&next=0');
    expect(listing).toEqual([
      [0, undefined],
      [1, undefined],
      [2, undefined],
      [0, '*'],
      [1, '*'],
      [2, '*'],
    ]);
    expect(pages).toEqual([['a', 0]]);
    simulator.onListingPage(undefined);
    await listingPages(simulator);
    expect(listing).toHaveLength(6);
  });

  it('adds and removes principals between listing pages, with offset cursors: shifts, skips and repeats', async () => {
    const simulator = await start({ principals: { b: {}, d: {}, f: {}, h: {} } });
    // A principal added before the cursor shifts the rest: the one at the boundary comes twice.
    simulator.onListingPage((index) => {
      if (index === 1) simulator.addPrincipal('a', { keys: ['new-key'] });
    });
    expect(await listingPages(simulator)).toEqual([['b', 'd'], ['d', 'f'], ['h']]);
    // One added after the cursor is listed; one removed after it is not.
    simulator.onListingPage((index) => {
      if (index === 1) {
        simulator.addPrincipal('z');
        simulator.removePrincipal('h');
      }
    });
    expect((await listingPages(simulator)).flat()).toEqual(['a', 'b', 'd', 'f', 'z']);
    // One removed before the cursor shifts the rest back: the one at the boundary is never listed.
    simulator.onListingPage((index) => {
      if (index === 1) simulator.removePrincipal('a');
    });
    expect((await listingPages(simulator)).flat()).toEqual(['a', 'b', 'f', 'z']);
    expect(simulator.principals()).toEqual(['b', 'd', 'f', 'z']);
  });

  it('lists through the client, which walks every page of the changed listing', async () => {
    const simulator = await start({ principals: { p1: {}, p2: {}, p3: {} } });
    const client = fixture.client(simulator.url);
    simulator.onListingPage((index) => {
      if (index === 1) simulator.addPrincipal('p4', { type: 2, name: 'Fourth' });
    });
    expect(await collect(client.listPrincipals())).toEqual([
      { principal: 'p1', type: 1 },
      { principal: 'p2', type: 1 },
      { principal: 'p3', type: 1 },
      { principal: 'p4', type: 2, name: 'Fourth' },
    ]);
    expect(await client.getPrincipal('p4')).toEqual({ principal: 'p4', type: 2, name: 'Fourth' });
    simulator.removePrincipal('p4');
    expect(await client.getPrincipal('p4')).toBeUndefined();
  });
});

describe('simulator: faults of the listing and of the lookup', () => {
  async function three() {
    return start({ principals: { a: {}, b: {}, c: { type: 2, name: 'Cee' } } });
  }

  it('plays a status fault with Retry-After and a body on the listing, the given number of times', async () => {
    const simulator = await three();
    simulator.injectListing({ type: 'status', status: 429, retryAfter: '3', body: '{"x":1}' }, { times: 2 });
    const first = await raw(simulator, '/v1/principal/match?next=0');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('3');
    expect(first.text).toBe('{"x":1}');
    expect((await raw(simulator, '/v1/principal/match?next=0')).status).toBe(429);
    expect((await raw(simulator, '/v1/principal/match?next=0')).status).toBe(200);
    simulator.injectListing({ type: 'status', status: 400 });
    const invalid = await raw(simulator, '/v1/principal/match?next=0');
    expect(invalid.status).toBe(400);
    expect(JSON.parse(invalid.text)).toEqual(INVALID);
  });

  it('keeps listing faults, key faults and lookup faults apart', async () => {
    const simulator = await three();
    simulator.injectListing({ type: 'status', status: 503 });
    expect((await raw(simulator, '/v1/apikey/match?principal=a&next=0')).status).toBe(200);
    expect((await raw(simulator, '/v1/principal?principal=a')).status).toBe(200);
    expect((await raw(simulator, '/v1/principal/match?next=0')).status).toBe(503);

    simulator.inject('*', { type: 'status', status: 500 });
    simulator.injectLookup('*', { type: 'status', status: 502 });
    expect((await raw(simulator, '/v1/principal/match?next=0')).status).toBe(200);
    expect((await raw(simulator, '/v1/principal?principal=a')).status).toBe(502);
    expect((await raw(simulator, '/v1/principal?principal=a')).status).toBe(200);
    expect((await raw(simulator, '/v1/apikey/match?principal=a&next=0')).status).toBe(500);
  });

  it('plays a listing fault only on its page', async () => {
    const simulator = await three();
    simulator.injectListing({ type: 'status', status: 503 }, { onPage: 1 });
    const first = await raw(simulator, '/v1/principal/match?next=0');
    expect(first.status).toBe(200);
    const cursor = nextOf(first.text);
    expect((await raw(simulator, `/v1/principal/match?next=${cursor}`)).status).toBe(503);
    expect((await raw(simulator, `/v1/principal/match?next=${cursor}`)).status).toBe(200);
    // A key walk's page 1 is not the listing's page 1.
    simulator.setKeys('a', names(5));
    simulator.injectListing({ type: 'status', status: 503 }, { onPage: 1 });
    const keys = nextOf((await raw(simulator, '/v1/apikey/match?principal=a&next=0')).text);
    expect((await raw(simulator, `/v1/apikey/match?principal=a&next=${keys}`)).status).toBe(200);
    expect((await raw(simulator, `/v1/principal/match?next=${cursor}`)).status).toBe(503);
  });

  it('resets, truncates, sends a malformed listing, and loops its cursor', async () => {
    const simulator = await three();
    const client = fixture.client(simulator.url);
    simulator.injectListing({ type: 'reset' });
    await expect(raw(simulator, '/v1/principal/match?next=0')).rejects.toThrow();

    simulator.injectListing({ type: 'truncated' });
    const truncated = await raw(simulator, '/v1/principal/match?next=0');
    expect(truncated.status).toBe(200);
    expect(truncated.text.startsWith('{"next":')).toBe(true);
    expect(() => JSON.parse(truncated.text)).toThrow(SyntaxError);

    simulator.injectListing({ type: 'malformed' });
    const malformed = JSON.parse((await raw(simulator, '/v1/principal/match?next=0')).text);
    expect(typeof malformed.next).not.toBe('number');
    expect(malformed.principals).toBeUndefined();

    simulator.injectListing({ type: 'loop-cursor' }, { onPage: 1 });
    const first = nextOf((await raw(simulator, '/v1/principal/match?next=0')).text);
    const looped = await raw(simulator, `/v1/principal/match?next=${first}`);
    expect(nextOf(looped.text)).toBe(first);
    expect(idsOf(looped.text)).toEqual(['c']);
    simulator.injectListing({ type: 'loop-cursor' }, { onPage: 1 });
    await expect(collect(client.listPrincipals())).rejects.toMatchObject({ name: 'CursorLoopError' });
  });

  it('hangs a listing page until close()', async () => {
    const simulator = await three();
    simulator.injectListing({ type: 'hang' });
    const pending = raw(simulator, '/v1/principal/match?next=0');
    const outcome = await Promise.race([
      pending.then(
        () => 'answered',
        () => 'failed',
      ),
      new Promise((resolve) => setTimeout(() => resolve('still hanging'), 100)),
    ]);
    expect(outcome).toBe('still hanging');
    await simulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('plays lookup faults for one principal or any, and refuses loop-cursor', async () => {
    const simulator = await three();
    simulator.injectLookup('c', { type: 'status', status: 429, retryAfter: '1' }, { times: 2 });
    expect((await raw(simulator, '/v1/principal?principal=a')).status).toBe(200);
    const limited = await raw(simulator, '/v1/principal?principal=c');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((await raw(simulator, '/v1/principal?principal=c')).status).toBe(429);
    expect((await raw(simulator, '/v1/principal?principal=c')).status).toBe(200);

    simulator.injectLookup('c', { type: 'reset' });
    await expect(raw(simulator, '/v1/principal?principal=c')).rejects.toThrow();

    simulator.injectLookup('*', { type: 'truncated' });
    const truncated = await raw(simulator, '/v1/principal?principal=c');
    expect(truncated.status).toBe(200);
    expect(() => JSON.parse(truncated.text)).toThrow(SyntaxError);

    simulator.injectLookup('c', { type: 'malformed' });
    const malformed = JSON.parse((await raw(simulator, '/v1/principal?principal=c')).text);
    expect(malformed.principal).toBeUndefined();

    // A fault that replaces the answer hides a 404 too: a glitch during the check of a removed principal.
    simulator.removePrincipal('b');
    simulator.injectLookup('b', { type: 'status', status: 500 });
    expect((await raw(simulator, '/v1/principal?principal=b')).status).toBe(500);
    expect((await raw(simulator, '/v1/principal?principal=b')).status).toBe(404);

    expect(() => simulator.injectLookup('c', { type: 'loop-cursor' })).toThrow(RangeError);
    expect(() => simulator.injectLookup('c', { type: 'reset' }, { times: 0 })).toThrow(/times/);
    expect(() => simulator.injectListing({ type: 'reset' }, { times: 0 })).toThrow(/times/);
  });

  it('hangs a lookup until close()', async () => {
    const simulator = await three();
    simulator.injectLookup('a', { type: 'hang' });
    const pending = raw(simulator, '/v1/principal?principal=a');
    expect(
      await Promise.race([
        pending.then(
          () => 'answered',
          () => 'failed',
        ),
        new Promise((resolve) => setTimeout(() => resolve('still hanging'), 100)),
      ]),
    ).toBe('still hanging');
    await simulator.close();
    await expect(pending).rejects.toThrow();
  });

  it('clears listing and lookup faults with clearFaults()', async () => {
    const simulator = await three();
    simulator.injectListing({ type: 'status', status: 503 }, { times: Number.POSITIVE_INFINITY });
    simulator.injectLookup('*', { type: 'status', status: 503 }, { times: Number.POSITIVE_INFINITY });
    simulator.inject('*', { type: 'status', status: 503 }, { times: Number.POSITIVE_INFINITY });
    simulator.clearFaults();
    expect((await raw(simulator, '/v1/principal/match?next=0')).status).toBe(200);
    expect((await raw(simulator, '/v1/principal?principal=a')).status).toBe(200);
    expect((await raw(simulator, '/v1/apikey/match?principal=a&next=0')).status).toBe(200);
  });
});
