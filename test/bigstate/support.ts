/**
 * Shared helpers of the BigState tests: real servers on loopback, a recording sleep, a key provider, deadlines
 * and a client-side connection count.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { BigStateClient, type BigStateClientOptions } from '../../functions/bigstate/client.js';
import {
  DEMO_API_KEY,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from '../../functions/bigstate/simulator.js';
import { Deadline, type DeadlineOptions } from '../../functions/commons/deadline.js';

export const DEMO_KEY = DEMO_API_KEY;

/** A sleep that records each wait and returns at once (still honouring an aborted signal). */
export function recordingSleep(): {
  sleeps: number[];
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
} {
  const sleeps: number[] = [];
  return {
    sleeps,
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      signal?.throwIfAborted();
    },
  };
}

/** A key provider that behaves like a cached secret: `refresh` re-reads `store.current`. */
export function rotatingKey(initial: string): {
  provider: BigStateClientOptions['apiKey'];
  store: { current: string };
  calls: { plain: number; refresh: number };
} {
  const store = { current: initial };
  const calls = { plain: 0, refresh: 0 };
  let cached = initial;
  return {
    store,
    calls,
    provider: async ({ refresh }) => {
      if (refresh) {
        calls.refresh += 1;
        cached = store.current;
      } else {
        calls.plain += 1;
      }
      return cached;
    },
  };
}

/** Collects a walk into an array. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** A deadline with no time limit that ends when `signal` aborts (Ctrl-C, a test's own controller). */
export function until(signal: AbortSignal): Deadline {
  return Deadline.none({ signal });
}

/** Runs a promise that must reject and returns its error. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got a result');
}

/**
 * Published by node:net for every client socket it creates (node:http's Agents create theirs with it), for any
 * caller in the process (`{ socket }`, before the socket has connected).
 */
const CLIENT_SOCKET_CHANNEL = 'net.client.socket';

/** Keeps track of clients, simulators, deadlines and listeners so one `afterEach` ends them all. */
export class Fixture {
  readonly #closers: Array<() => Promise<void>> = [];

  /** A deadline `ms` from now (by `options.now` when given), disposed when the test ends. */
  deadlineAfter(ms: number, options: DeadlineOptions = {}): Deadline {
    return this.#track(Deadline.after(ms, options));
  }

  /** A deadline at an epoch time (by `options.now` when given), disposed when the test ends. */
  deadlineAt(epochMs: number, options: DeadlineOptions = {}): Deadline {
    return this.#track(Deadline.at(epochMs, options));
  }

  /**
   * Counts the connections opened to the loopback `http` origin of `url` (its address and port) from now until the
   * test ends, for any caller in this process: the client-side view of connection reuse.
   */
  connectionsTo(url: string): () => number {
    const { hostname, port } = new URL(url);
    const address = hostname.replace(/^\[(.*)\]$/, '$1');
    let count = 0;
    const onSocket = (message: unknown): void => {
      const socket = (message as { socket?: Socket } | null)?.socket;
      socket?.once('connect', () => {
        if (socket.remoteAddress === address && socket.remotePort === Number(port)) count += 1;
      });
    };
    subscribe(CLIENT_SOCKET_CHANNEL, onSocket);
    this.#closers.push(async () => {
      unsubscribe(CLIENT_SOCKET_CHANNEL, onSocket);
    });
    return () => count;
  }

  #track(deadline: Deadline): Deadline {
    this.#closers.push(async () => deadline.dispose());
    return deadline;
  }

  async simulator(options: SimulatorOptions = {}): Promise<Simulator> {
    const simulator = await startSimulator(options);
    this.#closers.push(() => simulator.close());
    return simulator;
  }

  client(host: string, options: Partial<BigStateClientOptions> = {}): BigStateClient {
    const client = new BigStateClient({
      host,
      apiKey: async () => DEMO_KEY,
      sleep: recordingSleep().sleep,
      ...options,
    });
    this.#closers.push(() => client.close());
    return client;
  }

  async fakeServer(handler: FakeHandler): Promise<FakeServer> {
    const server = await startFakeServer(handler);
    this.#closers.push(() => server.close());
    return server;
  }

  async close(): Promise<void> {
    const closers = this.#closers.splice(0).reverse();
    for (const close of closers) await close();
  }
}

/** One request as a fake server saw it. */
export interface SeenRequest {
  readonly method: string;
  /** Raw request target: path and query exactly as sent. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

export interface FakeReply {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
}

export type FakeHandler = (request: SeenRequest, index: number) => FakeReply;

export interface FakeServer {
  readonly url: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** A tiny scripted HTTP server, for response shapes the simulator does not produce. */
export async function startFakeServer(handler: FakeHandler): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    req.resume();
    const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers };
    requests.push(seen);
    const reply = handler(seen, requests.length - 1);
    const body = reply.body ?? '';
    res.writeHead(reply.status ?? 200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      ...reply.headers,
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The decoded query parameters of a seen request. */
export function queryOf(request: SeenRequest | undefined): URLSearchParams {
  return new URL(request?.url ?? '/', 'http://x').searchParams;
}

/** `count` key names `k000`, `k001`...: sorted order equals creation order. */
export function names(count: number, prefix = 'k'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(3, '0')}`);
}

/**
 * The simulator (pages of two) and a client of it with the given key, quick retries and no real sleeps, for the
 * tests that audit through real HTTP; both are pushed onto `closers`, to close after the test.
 */
export async function simulatedClient(
  key: string,
  options: SimulatorOptions,
  closers: Array<() => Promise<void>>,
): Promise<{ readonly simulator: Simulator; readonly client: BigStateClient }> {
  const simulator = await startSimulator({ apiKeys: [key], pageSize: 2, ...options });
  closers.push(() => simulator.close());
  const client = new BigStateClient({
    host: simulator.url,
    apiKey: async () => key,
    sleep: async (_ms, signal) => signal?.throwIfAborted(),
    retry: { maxAttempts: 2 },
  });
  closers.push(() => client.close());
  return { simulator, client };
}
