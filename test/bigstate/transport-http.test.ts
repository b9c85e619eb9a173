/**
 * The transport over `node:http` / `node:https`, against real servers on loopback: its own keep-alive Agent (idle
 * connections closed at `close()`, a failed connection never reused), a response read to its very end (a body cut
 * off is a failed transfer, never a short page), the content codings `fetch` negotiated, redirects refused, and
 * https with the default certificate verification.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  HttpStatusError,
  isRetryable,
  NetworkError,
  RequestTimeoutError,
} from '../../functions/bigstate/errors.js';
import { collect, DEMO_KEY, Fixture, failure, recordingSleep } from './support.js';

const fixture = new Fixture();
afterEach(() => fixture.close());

const PAGE = '{"next":-1,"apiKeys":[{"name":"a"}]}';

/**
 * A test-only, self-signed certificate for `localhost` and 127.0.0.1 (valid 2000 to 2100) and its key. No CA
 * signed it: a client that verifies certificates refuses it unless told to trust it.
 */
const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIBYzCCAQqgAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMiJVRIlzSooeawv
usVVBE5FuxGLqIlR8VuRKSCM7q42gZJYxEzDn3MuwtVoqp628k9XJzzf2Jl7ukid
NIPG+NKjSzBJMBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAMBgNVHRMBAf8E
AjAAMB0GA1UdDgQWBBSfifCnIbb6ahuf0kMnj+91f7ewezAKBggqhkjOPQQDAgNH
ADBEAiBCmqsMtR6mtDv/rp+M8O2u3EH8/13/NzJE8PdjF0pJzgIgfn2vweHJ7EA/
sTsZN+YOcoBf9+EEe1/orHhsRHTaLgM=
-----END CERTIFICATE-----
`;
const TEST_CERT_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgVAvelxoJ1EukC7U4
+CSlvaCJ3LOeJRUUWJJ9E4Cp4F6hRANCAATIiVUSJc0qKHmsL7rFVQRORbsRi6iJ
UfFbkSkgjO6uNoGSWMRMw59zLsLVaKqetvJPVyc839iZe7pInTSDxvjS
-----END PRIVATE KEY-----
`;

/** A server on loopback that tells which connections are open and every request it saw (method, URL, headers). */
interface Watched {
  readonly url: string;
  readonly requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  /** Connections accepted so far. */
  readonly connections: () => number;
  /** Connections still open. */
  readonly open: () => number;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function watch(
  server: Server,
  handler: (request: IncomingMessage, response: ServerResponse, index: number) => void,
  protocol = 'http',
  address = '127.0.0.1',
): Promise<Watched> {
  const requests: Watched['requests'] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers });
    handler(request, response, requests.length - 1);
  });
  server.on(protocol === 'https' ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${protocol}://${address}:${port}`,
    requests,
    connections: () => connections,
    open: () => sockets.size,
  };
}

const serve = (handler: Parameters<typeof watch>[1]) => watch(createServer({ keepAlive: true }), handler);

describe('keep-alive connections', () => {
  it('closes its idle connections at close(), once the requests under way have ended', async () => {
    const server = await serve((_, response) => response.end(PAGE));
    const client = fixture.client(server.url, { maxConnections: 2 });
    await Promise.all([collect(client.listApiKeys('p')), collect(client.listApiKeys('q'))]);
    expect(server.open()).toBeGreaterThanOrEqual(1);
    await client.close();
    await vi.waitFor(() => expect(server.open()).toBe(0));
    expect(server.requests).toHaveLength(2);
  });

  it('reuses one connection for requests one after the other', async () => {
    const server = await serve((_, response) => response.end(PAGE));
    const client = fixture.client(server.url);
    for (const principal of ['p', 'q', 'r', 's']) await collect(client.listApiKeys(principal));
    expect(server.connections()).toBe(1);
    expect(server.requests.map((request) => request.headers.connection)).toEqual(Array(4).fill('keep-alive'));
  });

  it('never reuses a connection whose response timed out: the next request opens a new one', async () => {
    const server = await serve((request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      // A chunked body that starts and then stalls, for the first principal only.
      if (request.url?.includes('principal=slow')) response.write('{"next":-1,');
      else response.end(PAGE);
    });
    const client = fixture.client(server.url, { requestTimeoutMs: 80, retry: { maxAttempts: 1 } });
    const error = await failure(collect(client.listApiKeys('slow')));
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(server.connections()).toBe(2);
    await vi.waitFor(() => expect(server.open()).toBe(1));
  });

  it('destroys the connection of a request its deadline ended mid-body', async () => {
    const server = await serve((request, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      if (request.url?.includes('principal=slow')) response.write('{"next":-1,');
      else response.end(PAGE.padEnd(100));
    });
    const client = fixture.client(server.url, { requestTimeoutMs: 10_000 });
    const error = await failure(collect(client.listApiKeys('slow', { deadline: fixture.deadlineAfter(60) })));
    expect(error).toMatchObject({ name: 'DeadlineExceededError', attempts: 1 });
    await vi.waitFor(() => expect(server.open()).toBe(0));
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(server.connections()).toBe(2);
  });
});

describe('a response read to its end', () => {
  it.each([
    { label: 'shorter than its Content-Length', head: { 'Content-Length': '100' } },
    { label: 'chunked, cut off', head: {} },
  ])('a body $label is a failed transfer: retried, never taken as a short page', async ({ head }) => {
    const server = await serve((_, response, index) => {
      if (index > 0) {
        response.end(PAGE);
        return;
      }
      response.writeHead(200, { 'Content-Type': 'application/json', ...head });
      response.write('{"next":-1,"apiKeys":[]}');
      setTimeout(() => response.socket?.destroy(), 10);
    });
    const recorder = recordingSleep();
    const client = fixture.client(server.url, { sleep: recorder.sleep });
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(server.requests).toHaveLength(2);
    expect(recorder.sleeps).toHaveLength(1);
  });

  it('a body always cut off fails as a retryable network error once the retries are spent', async () => {
    const server = await serve((_, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': '100' });
      response.write('{"next":-1,');
      setTimeout(() => response.socket?.destroy(), 10);
    });
    const client = fixture.client(server.url, { retry: { maxAttempts: 3 } });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ status: 200, attempts: 3 });
    expect((error as Error).message).toMatch(/: network error: .+ \(ECONNRESET\) \(after 3 attempts\)$/);
    expect(isRetryable(error)).toBe(true);
    expect(server.requests).toHaveLength(3);
  });

  it('drops a leading byte order mark, as fetch did', async () => {
    const server = await serve((_, response) => response.end(`\uFEFF${PAGE}`));
    expect(await collect(fixture.client(server.url).listApiKeys('p'))).toEqual([{ name: 'a' }]);
  });

  it('reads a body in many small chunks, multi-byte characters split between them', async () => {
    const body = Buffer.from('{"next":-1,"apiKeys":[{"name":"clé-é-€-𝄞"}]}');
    const server = await serve((_, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      let at = 0;
      const next = () => {
        if (at >= body.length) {
          response.end();
          return;
        }
        response.write(body.subarray(at, at + 3));
        at += 3;
        setImmediate(next);
      };
      next();
    });
    expect(await collect(fixture.client(server.url).listApiKeys('p'))).toEqual([{ name: 'clé-é-€-𝄞' }]);
  });
});

describe('content codings', () => {
  it.each([
    { coding: 'gzip', encode: gzipSync },
    { coding: 'x-gzip', encode: gzipSync },
    { coding: 'deflate', encode: deflateSync },
    { coding: 'br', encode: brotliCompressSync },
  ])('asks for gzip and deflate, as fetch did, and reads a $coding body', async ({ coding, encode }) => {
    const server = await serve((_, response) => {
      const body = encode(Buffer.from(PAGE));
      response.writeHead(200, {
        'Content-Type': 'application/json',
        'Content-Encoding': coding,
        'Content-Length': body.length,
      });
      response.end(body);
    });
    const client = fixture.client(server.url);
    expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
    expect(await collect(client.listApiKeys('q'))).toEqual([{ name: 'a' }]);
    expect(server.requests[0]?.headers['accept-encoding']).toBe('gzip, deflate');
    expect(server.connections()).toBe(1);
  });

  it('fails a body that does not decode, naming the decoder error, as fetch did', async () => {
    const server = await serve((_, response) => {
      response.writeHead(200, { 'Content-Encoding': 'gzip', 'Content-Length': '10' });
      response.end('0123456789');
    });
    const error = await failure(collect(fixture.client(server.url).listApiKeys('p')));
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as Error).message).toMatch(/: network error: .+ \(Z_DATA_ERROR\) \(after 1 attempt\)$/);
  });
});

describe('requests as sent', () => {
  it('sends the key, the JSON headers and the user agent fetch sent', async () => {
    const server = await serve((_, response) => response.end(PAGE));
    await collect(fixture.client(server.url).listApiKeys('p'));
    expect(server.requests[0]?.headers).toMatchObject({
      'x-api-key': DEMO_KEY,
      'content-type': 'application/json',
      accept: 'application/json',
      'user-agent': 'node',
      host: new URL(server.url).host,
    });
  });

  it("percent-encodes a quote in a query value as fetch's URL parser did", async () => {
    const server = await serve((_, response) => response.end(PAGE));
    await collect(fixture.client(server.url).listApiKeys("o'brien (ops)!"));
    expect(server.requests[0]?.url).toBe('/v1/apikey/match?principal=o%27brien%20(ops)!&next=0');
  });

  it('talks to an IPv6 loopback host', async () => {
    const server = createServer((request, response) => {
      request.resume();
      response.end(PAGE);
    });
    servers.push(server);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '::1', resolve);
      });
    } catch {
      // No IPv6 on this machine: nothing to check.
      return;
    }
    const { port } = server.address() as AddressInfo;
    expect(await collect(fixture.client(`http://[::1]:${port}`).listApiKeys('p'))).toEqual([{ name: 'a' }]);
  });
});

describe('redirects', () => {
  it.each([301, 302, 303, 307, 308])(
    'a %i is an HttpStatusError, never followed: the key goes nowhere else',
    async (status) => {
      const elsewhere = await serve((_, response) => response.end(PAGE));
      const server = await serve((_, response) => {
        response.writeHead(status, { Location: `${elsewhere.url}/v1/apikey/match?principal=p&next=0` });
        response.end();
      });
      const recorder = recordingSleep();
      const error = await failure(
        collect(fixture.client(server.url, { sleep: recorder.sleep }).listApiKeys('p')),
      );
      expect(error).toBeInstanceOf(HttpStatusError);
      expect(error).toMatchObject({ status, attempts: 1 });
      expect(elsewhere.requests).toEqual([]);
      expect(recorder.sleeps).toEqual([]);
    },
  );
});

describe('https', () => {
  const https = (address = '127.0.0.1') =>
    watch(
      createHttpsServer({ cert: TEST_CERT, key: TEST_CERT_KEY, keepAlive: true }),
      (_, response) => response.end(PAGE),
      'https',
      address,
    );

  it('refuses a server whose certificate no trusted CA signed, without retrying or sending the key', async () => {
    const server = await https();
    const recorder = recordingSleep();
    const client = fixture.client(server.url, { sleep: recorder.sleep });
    const error = await failure(collect(client.listApiKeys('p')));
    expect(error).toBeInstanceOf(NetworkError);
    expect(error).toMatchObject({ attempts: 1 });
    expect((error as Error).message).toMatch(
      /: network error: .+ \(DEPTH_ZERO_SELF_SIGNED_CERT\) \(after 1 attempt\)$/,
    );
    expect(recorder.sleeps).toEqual([]);
    expect(server.requests).toEqual([]);
  });

  it('talks https over one keep-alive connection to a server whose certificate it trusts', async () => {
    const server = await https();
    const defaults = getCACertificates('default');
    setDefaultCACertificates([...defaults, TEST_CERT]);
    try {
      const client = fixture.client(server.url);
      expect(await collect(client.listApiKeys('p'))).toEqual([{ name: 'a' }]);
      expect(await collect(client.listApiKeys('q'))).toEqual([{ name: 'a' }]);
      expect(server.connections()).toBe(1);
      expect(server.requests[0]?.headers['x-api-key']).toBe(DEMO_KEY);
      await client.close();
      await vi.waitFor(() => expect(server.open()).toBe(0));
    } finally {
      setDefaultCACertificates(defaults);
    }
  });

  it('checks the name: a trusted certificate for another host is refused', async () => {
    // The certificate names localhost and 127.0.0.1, not 127.0.0.2 (a loopback address too, on Linux).
    const server = await https('127.0.0.2');
    const defaults = getCACertificates('default');
    setDefaultCACertificates([...defaults, TEST_CERT]);
    try {
      const error = await failure(collect(fixture.client(server.url).listApiKeys('p')));
      expect(error).toBeInstanceOf(NetworkError);
      expect((error as Error).message).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
      expect(server.requests).toEqual([]);
    } finally {
      setDefaultCACertificates(defaults);
    }
  });
});
