import { afterEach, describe, expect, it } from 'vitest';
import { ProtocolError } from '../../functions/bigstate/errors.js';
import { collect, Fixture, failure, names, queryOf } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

const keyNames = async (iterable: AsyncIterable<{ name: string }>) =>
  (await collect(iterable)).map((k) => k.name);

describe('listApiKeys walks every page', () => {
  it.each([
    { label: 'no keys', count: 0, pageSize: 3, pages: 1 },
    { label: 'one page', count: 2, pageSize: 3, pages: 1 },
    { label: 'a page that is exactly full', count: 3, pageSize: 3, pages: 1 },
    { label: 'an exact multiple of the page size', count: 9, pageSize: 3, pages: 3 },
    { label: 'a last page that carries keys', count: 10, pageSize: 3, pages: 4 },
  ])('$label: $count keys in $pages page(s)', async ({ count, pageSize, pages }) => {
    const simulator = await fixture.simulator({ pageSize, principals: { p: { keys: names(count) } } });
    const client = fixture.client(simulator.url);

    expect(await keyNames(client.listApiKeys('p'))).toEqual(names(count));
    expect(simulator.stats.requestsByPrincipal.p).toBe(pages);
    expect(simulator.stats.requests).toBe(pages);
  });

  it('treats an unknown principal as one with no keys', async () => {
    const simulator = await fixture.simulator();
    const client = fixture.client(simulator.url);
    expect(await collect(client.listApiKeys('nobody'))).toEqual([]);
  });

  it('sends next=0 first, then every cursor exactly as returned, and stops at -1', async () => {
    const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: names(5) } } });
    const client = fixture.client(simulator.url);
    const seen: string[] = [];
    // The simulator rejects any cursor it did not hand out, so a completed walk proves each was sent back intact.
    simulator.onPage((_, index) => seen.push(String(index)));
    expect(await keyNames(client.listApiKeys('p'))).toEqual(names(5));
    expect(seen).toEqual(['0', '1', '2']);
  });

  it('keeps extra fields on each key', async () => {
    const simulator = await fixture.simulator({
      principals: { p: { keys: [{ name: 'a', created: '2025-01-01', scopes: ['read'] }, 'b'] } },
    });
    const client = fixture.client(simulator.url);
    expect(await collect(client.listApiKeys('p'))).toEqual([
      { name: 'a', created: '2025-01-01', scopes: ['read'] },
      { name: 'b' },
    ]);
  });

  it('keeps a field named __proto__ as a field (no prototype set, nothing dropped)', async () => {
    const hostile = JSON.parse('{"name":"a","__proto__":{"polluted":true},"owner":"o"}') as { name: string };
    const simulator = await fixture.simulator({ principals: { p: { keys: [hostile] } } });
    const client = fixture.client(simulator.url);
    const [entry] = await collect(client.listApiKeys('p'));
    expect(entry !== undefined && Object.hasOwn(entry, '__proto__')).toBe(true);
    expect(JSON.stringify(entry)).toBe('{"name":"a","__proto__":{"polluted":true},"owner":"o"}');
    expect((entry as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('yields pages as they arrive: a consumer may stop early', async () => {
    const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: names(10) } } });
    const client = fixture.client(simulator.url);
    for await (const key of client.listApiKeys('p')) {
      expect(key.name).toBe('k000');
      break;
    }
    expect(simulator.stats.requests).toBe(1);
  });
});

describe('listApiKeys with shapes only a scripted server produces', () => {
  const page = (next: string, keys: string[]) =>
    `{"next":${next},"apiKeys":${JSON.stringify(keys.map((name) => ({ name })))}}`;

  it('sends a cursor beyond 2^53 back digit for digit', async () => {
    const huge = '123456789012345678901234567890';
    const alsoHuge = '9007199254740993';
    const server = await fixture.fakeServer((_, index) => ({
      body: [page(huge, ['a']), page(alsoHuge, ['b']), page('-1', ['c'])][index] ?? '',
    }));
    const client = fixture.client(server.url);

    expect(await keyNames(client.listApiKeys('p'))).toEqual(['a', 'b', 'c']);
    expect(server.requests.map((r) => queryOf(r).get('next'))).toEqual(['0', huge, alsoHuge]);
    expect(server.requests[1]?.url).toContain(`next=${huge}`);
  });

  it('does not stop at an empty page in the middle', async () => {
    const server = await fixture.fakeServer((_, index) => ({
      body: [page('11', ['a', 'b']), page('22', []), page('33', []), page('-1', ['c'])][index] ?? '',
    }));
    const client = fixture.client(server.url);
    expect(await keyNames(client.listApiKeys('p'))).toEqual(['a', 'b', 'c']);
    expect(server.requests).toHaveLength(4);
  });

  it('accepts an empty last page', async () => {
    const server = await fixture.fakeServer((_, index) => ({
      body: [page('7', ['a', 'b']), page('-1', [])][index] ?? '',
    }));
    const client = fixture.client(server.url);
    expect(await keyNames(client.listApiKeys('p'))).toEqual(['a', 'b']);
  });

  it('yields a name seen on two pages once (the first occurrence)', async () => {
    const server = await fixture.fakeServer((_, index) => ({
      body: [
        '{"next":5,"apiKeys":[{"name":"a","v":1},{"name":"b"}]}',
        '{"next":-1,"apiKeys":[{"name":"a","v":2},{"name":"c"}]}',
      ][index],
    }));
    const client = fixture.client(server.url);
    expect(await collect(client.listApiKeys('p'))).toEqual([
      { name: 'a', v: 1 },
      { name: 'b' },
      { name: 'c' },
    ]);
  });

  it('sends the JSON headers and the key on every request', async () => {
    const server = await fixture.fakeServer((_, index) => ({
      body: [page('1', ['a']), page('-1', [])][index],
    }));
    const client = fixture.client(server.url);
    await collect(client.listApiKeys('p'));
    for (const request of server.requests) {
      expect(request.method).toBe('GET');
      expect(request.headers['x-api-key']).toBe('bigstate-demo-key');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers.accept).toBe('application/json');
    }
  });

  it.each([
    { label: 'next as a string', body: '{"next":"5","apiKeys":[]}' },
    { label: 'next with a fraction', body: '{"next":1.5,"apiKeys":[]}' },
    { label: 'next with an exponent', body: '{"next":1e3,"apiKeys":[]}' },
    { label: 'next below -1', body: '{"next":-7,"apiKeys":[]}' },
    { label: 'next missing', body: '{"apiKeys":[]}' },
    { label: 'apiKeys missing', body: '{"next":-1}' },
    { label: 'apiKeys not an array', body: '{"next":-1,"apiKeys":{"name":"a"}}' },
    { label: 'a key without a name', body: '{"next":-1,"apiKeys":[{"id":"a"}]}' },
    { label: 'an empty name', body: '{"next":-1,"apiKeys":[{"name":""}]}' },
    { label: 'a numeric name', body: '{"next":-1,"apiKeys":[{"name":7}]}' },
    { label: 'a key that is a string', body: '{"next":-1,"apiKeys":["a"]}' },
    { label: 'an array body', body: '[]' },
    { label: 'an empty body', body: '' },
    { label: 'a cut-off body', body: '{"next":-1,"apiKe' },
  ])('rejects a malformed page: $label', async ({ body }) => {
    const server = await fixture.fakeServer(() => ({ body }));
    const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toContain('GET /v1/apikey/match?principal=p&next=0');
  });

  it.each([
    { body: '{"next":-1}', says: 'apiKeys: expected array, received undefined' },
    { body: '{"next":-1,"apiKeys":{"name":"a"}}', says: 'apiKeys: expected array, received object' },
    { body: '{"next":-1,"apiKeys":[{"name":7}]}', says: 'apiKeys.0.name: expected string, received number' },
    {
      body: '{"next":-1,"apiKeys":[{"name":""}]}',
      says: 'apiKeys.0.name: expected a string of at least 1 character',
    },
    {
      body: '{"next":-1,"apiKeys":["a",null,{"id":"x"}]}',
      says:
        'apiKeys.0: expected object, received string; apiKeys.1: expected object, received null; ' +
        'apiKeys.2.name: expected string, received undefined',
    },
  ])('says where a page differs from the documented shape: $says', async ({ body, says }) => {
    const server = await fixture.fakeServer(() => ({ body }));
    const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).message).toBe(
      `BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 200: malformed response: ${says} (after 1 attempt)`,
    );
  });

  it('names the type of a wrong value in a page, never the value', async () => {
    const body = '{"next":-1,"apiKeys":[{"name":["do-not-echo"]},{"name":{"k":"do-not-echo"}}]}';
    const server = await fixture.fakeServer(() => ({ body }));
    const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect((error as Error).message).toContain(
      'apiKeys.0.name: expected string, received array; apiKeys.1.name: expected string, received object',
    );
    expect((error as Error).message).not.toContain('do-not-echo');
  });
});

describe('listApiKeys patterns and names', () => {
  const inventory = ['alpha-1', 'alpha-2', 'beta-1', 'gamma-alpha', 'x*y'];

  it.each([
    { pattern: '*', expected: inventory },
    { pattern: 'alpha*', expected: ['alpha-1', 'alpha-2'] },
    { pattern: '*-1', expected: ['alpha-1', 'beta-1'] },
    { pattern: '*alpha*', expected: ['alpha-1', 'alpha-2', 'gamma-alpha'] },
    { pattern: 'beta-1', expected: ['beta-1'] },
    { pattern: 'beta', expected: [] },
  ])('passes pattern $pattern through', async ({ pattern, expected }) => {
    const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: inventory } } });
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"apiKeys":[]}' }));
    const client = fixture.client(simulator.url);

    expect(await keyNames(client.listApiKeys('p', { pattern }))).toEqual(expected);
    await collect(fixture.client(server.url).listApiKeys('p', { pattern }));
    expect(queryOf(server.requests[0]).get('pattern')).toBe(pattern);
  });

  it('omits pattern when none is given', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"apiKeys":[]}' }));
    await collect(fixture.client(server.url).listApiKeys('p'));
    expect(server.requests[0]?.url).toBe('/v1/apikey/match?principal=p&next=0');
  });

  it.each(['svc a&b', '#x', 'ü', 'a/b', 'a+b', '100%', 'x=y?z'])(
    'round-trips the principal name %j',
    async (name) => {
      const simulator = await fixture.simulator({
        pageSize: 1,
        principals: { [name]: { keys: ['k1', 'k2'] }, other: { keys: ['wrong'] } },
      });
      const client = fixture.client(simulator.url);
      expect(await keyNames(client.listApiKeys(name))).toEqual(['k1', 'k2']);
      expect(simulator.stats.requestsByPrincipal[name]).toBe(2);
    },
  );

  it('percent-encodes names and patterns on the wire', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"apiKeys":[]}' }));
    await collect(fixture.client(server.url).listApiKeys('svc a&b#ü', { pattern: '#x*' }));
    expect(server.requests[0]?.url).toBe(
      '/v1/apikey/match?principal=svc%20a%26b%23%C3%BC&next=0&pattern=%23x*',
    );
  });

  it('keeps the path of a host behind a proxy', async () => {
    const simulator = await fixture.simulator({ basePath: '/bigstate', principals: { p: { keys: ['a'] } } });
    expect(simulator.url).toMatch(/\/bigstate$/);
    for (const host of [simulator.url, `${simulator.url}/`]) {
      expect(await keyNames(fixture.client(host).listApiKeys('p'))).toEqual(['a']);
    }
  });
});

describe('listApiKeys while the inventory changes', () => {
  it('skips a name that moved back across a page boundary (as an offset-based server does)', async () => {
    const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: names(6) } } });
    simulator.onPage((principal, index) => {
      if (index === 1) simulator.removeKeys(principal, 'k000');
    });
    const client = fixture.client(simulator.url);
    // k002 slid onto the page already read: the audit confirms each removal with an exact query for this reason.
    expect(await keyNames(client.listApiKeys('p'))).toEqual(['k000', 'k001', 'k003', 'k004', 'k005']);
  });

  it('yields a name that slid forward onto the next page once', async () => {
    const simulator = await fixture.simulator({ pageSize: 2, principals: { p: { keys: names(4) } } });
    simulator.onPage((principal, index) => {
      if (index === 1) simulator.addKeys(principal, 'a-first');
    });
    const client = fixture.client(simulator.url);
    // Page 1 now starts with k001 again; the client counts it once.
    expect(await keyNames(client.listApiKeys('p'))).toEqual(['k000', 'k001', 'k002', 'k003']);
    expect(simulator.stats.requests).toBe(3);
  });
});

describe('listPrincipals and getPrincipal', () => {
  const principals = {
    root: { type: 2 as const, name: 'Administrator' },
    tram_client: { type: 1 as const, name: 'Client for tram app' },
    'svc a&b': { type: 1 as const },
    'zürich-ops': { type: 2 as const, name: 'Zürich' },
    empty: {},
  };

  it('walks every page of principals', async () => {
    const simulator = await fixture.simulator({ pageSize: 2, principals });
    const client = fixture.client(simulator.url);
    expect(await collect(client.listPrincipals())).toEqual([
      { principal: 'empty', type: 1 },
      { principal: 'root', type: 2, name: 'Administrator' },
      { principal: 'svc a&b', type: 1 },
      { principal: 'tram_client', type: 1, name: 'Client for tram app' },
      { principal: 'zürich-ops', type: 2, name: 'Zürich' },
    ]);
    expect(simulator.stats.requests).toBe(3);
  });

  it('filters principals by pattern and by what the key may read', async () => {
    const simulator = await fixture.simulator({
      principals,
      apiKeys: ['all', 'some'],
      access: { some: ['root', 'tram_client'] },
    });
    const all = fixture.client(simulator.url, { apiKey: async () => 'all' });
    const some = fixture.client(simulator.url, { apiKey: async () => 'some' });
    const ids = async (iterable: AsyncIterable<{ principal: string }>) =>
      (await collect(iterable)).map((p) => p.principal);
    expect(await ids(all.listPrincipals({ pattern: '*o*' }))).toEqual(['root', 'zürich-ops']);
    expect(await ids(some.listPrincipals())).toEqual(['root', 'tram_client']);
  });

  it('reads one principal, and undefined for an unknown one (404)', async () => {
    const simulator = await fixture.simulator({ principals });
    const client = fixture.client(simulator.url);
    expect(await client.getPrincipal('zürich-ops')).toEqual({
      principal: 'zürich-ops',
      type: 2,
      name: 'Zürich',
    });
    expect(await client.getPrincipal('svc a&b')).toEqual({ principal: 'svc a&b', type: 1 });
    expect(await client.getPrincipal('nobody')).toBeUndefined();
    expect(simulator.stats.requests).toBe(3);
  });

  it('rejects a malformed principal list', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"next":-1,"principals":[{"principal":5}]}' }));
    const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listPrincipals()));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toContain('principals.0.principal: expected string, received number');
  });

  it('rejects a principal whose optional fields have the wrong type', async () => {
    const server = await fixture.fakeServer(() => ({ body: '{"principal":"p","type":"1","name":2}' }));
    const client = fixture.client(server.url, { retry: { maxAttempts: 1 } });
    const error = await failure(client.getPrincipal('p'));
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as Error).message).toContain(
      'malformed response: type: expected number, received string; name: expected string, received number',
    );
  });
});
