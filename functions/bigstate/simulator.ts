/**
 * A BigState simulator: a real HTTP server on loopback that implements the endpoints this project uses, as the
 * seed pages describe them, plus fault injection. The demo (`npm start`), the tests and the benchmark run
 * against it.
 *
 * Behaviour where the seeds are silent (assumptions, mirrored in the README):
 * - An unknown principal has no keys: `apikey/match` answers 200 with an empty last page (not 404).
 * - Cursors are opaque random integers above 2^53 that the server maps to an offset into the sorted, filtered
 *   list as it is when the page is served. So, like any offset-based server, a list that changes between pages
 *   can show a name twice or skip one that moved across a page boundary.
 * - A cursor is valid only for the principal and pattern of the walk that produced it; anything else is 400.
 * - `DELETE /v1/token?token=T` revokes (204; 404 for an unknown token); sign-in for an unknown principal is 400.
 * - `access` restricts an API key to the principals listed for it; a key without an entry reads every principal.
 * - `principal/match` pages principals (sorted ids) with the same offset cursors, so a principal added or removed
 *   between pages can shift the listing too. A removed principal is gone: the listing no longer has it,
 *   `GET /v1/principal` answers 404 and `apikey/match` answers the empty list of any unknown principal.
 * - A pattern is one of the seed's forms (`x`, `*x`, `x*`, `*x*`): only a leading or trailing `*` is special, any
 *   other character (`?`, `[`) is literal, and a `*` anywhere else is 400. A key whose name holds a `*` can only
 *   be found by a wildcard pattern around a part of its name without one.
 */

import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { matchesPattern } from '../commons/glob.js';
import type { ApiKeyEntry, PrincipalEntry } from './types.js';

/** A principal of the simulated inventory. */
export interface SimulatorPrincipal {
  keys?: Array<string | ApiKeyEntry>;
  /** 1 = application, 2 = user. @default 1 */
  type?: 1 | 2;
  name?: string;
}

/** How to start a simulator. */
export interface SimulatorOptions {
  /** Accepted `x-api-key` values. @default ['bigstate-demo-key'] */
  apiKeys?: string[];
  principals?: Record<string, SimulatorPrincipal>;
  /** Per API key, the principals it may read; a key without an entry reads all, others get 403. */
  access?: Record<string, string[]>;
  /** Entries per page. @default 50 */
  pageSize?: number;
  /** Delay added to every response, in milliseconds. @default 0 */
  latencyMs?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Path prefix the API is served under, as behind a proxy, e.g. `/bigstate`. @default '' */
  basePath?: string;
}

/**
 * A fault the simulator plays instead of (or on top of) a normal answer of `apikey/match` (`inject`),
 * `principal/match` (`injectListing`) or `GET /v1/principal` (`injectLookup`). `status`, `reset` and `hang`
 * replace the answer; `truncated`, `loop-cursor` and `malformed` alter a 200 answer (a request answered otherwise,
 * e.g. 401 or 404, still uses the fault up).
 */
export type SimulatorFault =
  | { type: 'status'; status: number; retryAfter?: string; body?: string }
  | { type: 'reset' }
  | { type: 'hang' }
  | { type: 'truncated' }
  | { type: 'loop-cursor' }
  | { type: 'malformed' };

/** Options of `churn`. */
export interface ChurnOptions {
  /**
   * Name of the short-lived key. It must sort (by UTF-16 code units) before every key of the principal, or the
   * churn shifts nothing. @default '!churn'
   */
  name?: string;
}

/** Options of `inject` and `injectListing`. */
export interface InjectOptions {
  /** How many matching requests get the fault (Infinity allowed). @default 1 */
  times?: number;
  /** Only the page with this index (0 = the first page of a walk). */
  onPage?: number;
}

/** Options of `injectLookup`: a lookup has no pages. */
export interface LookupInjectOptions {
  /** How many matching requests get the fault (Infinity allowed). @default 1 */
  times?: number;
}

/** What the simulator counted since it started or since `resetStats()`. */
export interface SimulatorStats {
  /** Every HTTP request, whatever its endpoint. */
  requests: number;
  connections: number;
  /** `apikey/match` requests per `principal` parameter (whatever their answer); no other endpoint counts here. */
  requestsByPrincipal: Record<string, number>;
  /** `principal/match` requests (listing pages, whatever their answer). */
  listingRequests: number;
  /** `GET /v1/principal` requests (lookups, whatever their answer). */
  lookupRequests: number;
  /** `GET /v1/principal` requests per `principal` parameter. */
  lookupsByPrincipal: Record<string, number>;
}

/** A running simulator. */
export interface Simulator {
  /** Base URL, e.g. `http://127.0.0.1:43123` (with the base path when one was given). */
  readonly url: string;
  /** Replaces a principal's keys; creates the principal (type 1, no name) when it does not exist. */
  setKeys(principal: string, keys: Array<string | ApiKeyEntry>): void;
  /** Adds keys to a principal; creates the principal (type 1, no name) when it does not exist. */
  addKeys(principal: string, ...names: string[]): void;
  removeKeys(principal: string, ...names: string[]): void;
  /** The principal's key names, sorted. */
  keys(principal: string): string[];
  /**
   * Creates a principal (type 1, no name, no keys unless given), or updates an existing one: each given field
   * replaces its value (`keys` replaces every key), the others stay. Usable at any time, between pages too.
   * @throws RangeError when the id is empty.
   */
  addPrincipal(id: string, principal?: SimulatorPrincipal): void;
  /**
   * Removes a principal with its keys, its churn and its session tokens: `principal/match` no longer lists it,
   * `GET /v1/principal` answers 404, `apikey/match` answers an empty list. Only `addPrincipal`, `setKeys` or
   * `addKeys` bring it back. Returns whether it existed.
   */
  removePrincipal(id: string): boolean;
  /** The ids of every principal, sorted (by UTF-16 code units, as the listing pages them). */
  principals(): string[];
  /** Replaces the accepted API keys (rotation). */
  setApiKeys(keys: string[]): void;
  /** Queues a fault for the next `apikey/match` requests of a principal (`'*'`: of any principal). */
  inject(principal: string, fault: SimulatorFault, options?: InjectOptions): void;
  /** Queues a fault for the next `principal/match` requests (`onPage`: the page index of the listing walk). */
  injectListing(fault: SimulatorFault, options?: InjectOptions): void;
  /**
   * Queues a fault for the next `GET /v1/principal` requests of a principal (`'*'`: of any principal).
   * @throws RangeError for `loop-cursor`, which has no meaning without a cursor.
   */
  injectLookup(principal: string, fault: SimulatorFault, options?: LookupInjectOptions): void;
  /** Drops every queued fault: of `inject`, `injectListing` and `injectLookup`. */
  clearFaults(): void;
  /**
   * Offset-cursor churn. In every walk of `principal` whose pattern matches the churn key, a short-lived key that
   * sorts before every other key is created just before page 0 is served and deleted just before page 1 (or right
   * after page 0 when that is the last). Cursors map to offsets, so the real key at the page-0/page-1 boundary
   * slides back onto the page already read: every complete walk misses it, while a walk with an exact pattern
   * (the key's name) still finds it.
   * @throws RangeError when the name does not sort before every key of the principal, or is one of its keys.
   */
  churn(principal: string, options?: ChurnOptions): void;
  /** Ends the churn of one principal, or of every principal when none is given. */
  stopChurn(principal?: string): void;
  /** Called before each apikey/match page is served: lets a test change the inventory mid-walk. */
  onPage(hook: ((principal: string, pageIndex: number) => void) | undefined): void;
  /**
   * Called before each principal/match page is served (after its cursor is checked, before the principals are
   * read): lets a test add or remove principals between the pages of a listing.
   */
  onListingPage(hook: ((pageIndex: number, pattern: string | undefined) => void) | undefined): void;
  readonly stats: SimulatorStats;
  resetStats(): void;
  /** Stops the server, ending hung requests and open sockets. */
  close(): Promise<void>;
}

/** BigState's answer to a bad parameter, as in the seed pages. */
const INVALID_REQUEST = JSON.stringify({ error: 6, desc: 'Invalid request' });
/** The simulator's public demo key, accepted when no key is given (never a real one). */
export const DEMO_API_KEY = 'bigstate-demo-key';
const DEFAULT_API_KEY = DEMO_API_KEY;
/** Bound on remembered cursors, so a long benchmark cannot grow the map without limit. */
const MAX_CURSORS = 200_000;

interface StoredPrincipal {
  type: 1 | 2;
  name: string | undefined;
  keys: Map<string, ApiKeyEntry>;
}

interface CursorState {
  readonly kind: 'apikey' | 'principal';
  readonly principal: string;
  readonly pattern: string | undefined;
  readonly offset: number;
  readonly pageIndex: number;
  /** The cursor handed out for the following page, so a repeated request gets the same answer. */
  next?: string;
}

interface QueuedFault {
  readonly endpoint: 'apikey' | 'listing' | 'lookup';
  /** `'*'` for any (always for the listing). */
  readonly principal: string;
  readonly fault: SimulatorFault;
  readonly onPage: number | undefined;
  remaining: number;
}

class HttpReply {
  constructor(
    readonly status: number,
    readonly body: string = '',
    readonly headers: Record<string, string> = {},
  ) {}
}

/**
 * Starts a simulator on loopback.
 * @throws when the port cannot be bound or an option is invalid.
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const pageSize = options.pageSize ?? 50;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new RangeError('pageSize must be a positive integer');
  const latencyMs = options.latencyMs ?? 0;
  if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new RangeError('latencyMs must be >= 0');
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  if (basePath !== '' && !basePath.startsWith('/')) throw new RangeError('basePath must start with /');

  let apiKeys = new Set(options.apiKeys ?? [DEFAULT_API_KEY]);
  const access = new Map(Object.entries(options.access ?? {}).map(([key, list]) => [key, new Set(list)]));
  const principals = new Map<string, StoredPrincipal>();
  for (const [id, principal] of Object.entries(options.principals ?? {})) {
    principals.set(id, {
      type: principal.type ?? 1,
      name: principal.name,
      keys: toEntries(principal.keys ?? []),
    });
  }
  const cursors = new Map<string, CursorState>();
  const tokens = new Map<string, string>();
  let faults: QueuedFault[] = [];
  /** Per churning principal, the name of its short-lived key. */
  const churning = new Map<string, string>();
  let pageHook: ((principal: string, pageIndex: number) => void) | undefined;
  let listingHook: ((pageIndex: number, pattern: string | undefined) => void) | undefined;
  const stats: SimulatorStats = {
    requests: 0,
    connections: 0,
    requestsByPrincipal: {},
    listingRequests: 0,
    lookupRequests: 0,
    lookupsByPrincipal: {},
  };
  const sockets = new Set<Socket>();
  const hung = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let closing = false;

  /** Only for `setKeys` and `addKeys`, which create a principal on purpose; nothing else may resurrect one. */
  const ensure = (id: string): StoredPrincipal => {
    let principal = principals.get(id);
    if (principal === undefined) {
      principal = { type: 1, name: undefined, keys: new Map() };
      principals.set(id, principal);
    }
    return principal;
  };

  const newCursor = (state: CursorState): string => {
    let cursor: string;
    do {
      // 2^62 <= cursor < 2^63: always beyond Number.MAX_SAFE_INTEGER, never an offset or a page number; and odd,
      // so a double never holds it exactly (above 2^53 doubles are even): a client that parses it as a number
      // always sends another value back, not only 1,023 times in 1,024.
      cursor = (BigInt.asUintN(62, randomBytes(8).readBigUInt64BE()) | (1n << 62n) | 1n).toString();
    } while (cursors.has(cursor));
    if (cursors.size >= MAX_CURSORS) {
      const oldest = cursors.keys().next();
      if (oldest.done !== true) cursors.delete(oldest.value);
    }
    cursors.set(cursor, state);
    return cursor;
  };

  const mayRead = (key: string, principal: string): boolean => access.get(key)?.has(principal) ?? true;

  /** Reads `next` and `pattern`; a 400 reply when either is invalid or the cursor belongs to another walk. */
  const readCursor = (
    params: URLSearchParams,
    kind: CursorState['kind'],
    principal: string,
  ): CursorState | HttpReply => {
    const next = params.get('next');
    const pattern = params.get('pattern') ?? undefined;
    if (next === null || !/^-?\d+$/.test(next)) return new HttpReply(400, INVALID_REQUEST);
    if (pattern !== undefined && !isValidPattern(pattern)) return new HttpReply(400, INVALID_REQUEST);
    if (next === '0') return { kind, principal, pattern, offset: 0, pageIndex: 0 };
    const state = cursors.get(next);
    if (
      state === undefined ||
      state.kind !== kind ||
      state.principal !== principal ||
      state.pattern !== pattern
    ) {
      return new HttpReply(400, INVALID_REQUEST);
    }
    return state;
  };

  /** The page of `names` at the cursor's offset, and the cursor of the following page. */
  const page = (state: CursorState, names: readonly string[]): { next: string; slice: string[] } => {
    const slice = names.slice(state.offset, state.offset + pageSize);
    if (state.offset + pageSize >= names.length) return { next: '-1', slice };
    if (state.next === undefined || state.pageIndex === 0) {
      const following: CursorState = {
        ...state,
        offset: state.offset + pageSize,
        pageIndex: state.pageIndex + 1,
      };
      delete following.next;
      const cursor = newCursor(following);
      // A first page is a new walk each time; later pages hand out the same cursor when asked again.
      if (state.pageIndex !== 0) state.next = cursor;
      return { next: cursor, slice };
    }
    return { next: state.next, slice };
  };

  const takeFault = (
    endpoint: QueuedFault['endpoint'],
    principal: string,
    pageIndex: number | undefined,
  ): SimulatorFault | undefined => {
    const queued = faults.find(
      (f) =>
        f.remaining > 0 &&
        f.endpoint === endpoint &&
        (f.principal === '*' || f.principal === principal) &&
        (f.onPage === undefined || f.onPage === pageIndex),
    );
    if (queued === undefined) return undefined;
    queued.remaining -= 1;
    if (queued.remaining <= 0) faults = faults.filter((f) => f !== queued);
    return queued.fault;
  };

  const apiKeyMatch = (
    req: IncomingMessage,
    res: ServerResponse,
    params: URLSearchParams,
  ): HttpReply | 'done' => {
    const principal = params.get('principal');
    const requested = params.get('next');
    const pageIndex = pageIndexOf(requested, 'apikey');
    const fault = principal === null ? undefined : takeFault('apikey', principal, pageIndex);
    if (fault !== undefined && playFault(fault, req, res)) return 'done';

    const key = apiKeyOf(req);
    if (key === undefined || !apiKeys.has(key)) return new HttpReply(401);
    if (principal === null || principal === '') return new HttpReply(400, INVALID_REQUEST);
    if (!mayRead(key, principal)) return new HttpReply(403);
    const state = readCursor(params, 'apikey', principal);
    if (state instanceof HttpReply) return state;

    const churnKey = churning.get(principal);
    const churns = churnKey !== undefined && matchesGlob(churnKey, state.pattern);
    // Never `ensure`: a walk of an unknown (or removed) principal must not create it.
    if (churns && state.pageIndex === 0) principals.get(principal)?.keys.set(churnKey, { name: churnKey });
    if (churns && state.pageIndex > 0) principals.get(principal)?.keys.delete(churnKey);
    pageHook?.(principal, state.pageIndex);
    const names = [...(principals.get(principal)?.keys.keys() ?? [])]
      .filter((name) => matchesGlob(name, state.pattern))
      .sort(compareNames);
    const { next, slice } = page(state, names);
    // A walk of one page has no page 1: the key is gone once the walk is, and never outlives it.
    if (churns && next === '-1') principals.get(principal)?.keys.delete(churnKey);
    const entries = slice.map((name) => principals.get(principal)?.keys.get(name) ?? { name });
    return pageReply(fault, requested, next, 'apiKeys', entries, () =>
      JSON.stringify({ next: 'soon', keys: entries.map((e) => ({ id: e.name })) }),
    );
  };

  /** The page index a request's `next` points at, when known (a cursor of another kind is not). */
  const pageIndexOf = (requested: string | null, kind: CursorState['kind']): number | undefined => {
    if (requested === '0') return 0;
    const known = requested === null ? undefined : cursors.get(requested);
    return known?.kind === kind ? known.pageIndex : undefined;
  };

  /** A 200 page, altered by a fault that alters a page (`loop-cursor`, `truncated`, `malformed`). */
  const pageReply = (
    fault: SimulatorFault | undefined,
    requested: string | null,
    next: string,
    field: 'apiKeys' | 'principals',
    entries: readonly unknown[],
    malformed: () => string,
  ): HttpReply => {
    let nextText = next;
    if (fault?.type === 'loop-cursor') {
      // The cursor this request came with was returned by the previous page; on page 0 it is the `0` sent.
      nextText = requested ?? '0';
    }
    // Written by hand: `next` must reach the client with all its digits, beyond what a JSON number keeps.
    const body = `{"next":${nextText},"${field}":${JSON.stringify(entries)}}`;
    if (fault?.type === 'truncated') return new HttpReply(200, truncate(body));
    if (fault?.type === 'malformed') return new HttpReply(200, malformed());
    return new HttpReply(200, body);
  };

  /** Plays faults that replace the answer; returns false for those that alter a normal page instead. */
  const playFault = (fault: SimulatorFault, req: IncomingMessage, res: ServerResponse): boolean => {
    switch (fault.type) {
      case 'status': {
        const headers: Record<string, string> =
          fault.retryAfter === undefined ? {} : { 'Retry-After': fault.retryAfter };
        const body = fault.body ?? (fault.status === 400 ? INVALID_REQUEST : '');
        send(res, new HttpReply(fault.status, body, headers));
        return true;
      }
      case 'reset':
        req.socket.resetAndDestroy();
        return true;
      case 'hang':
        hung.add(res);
        res.on('close', () => hung.delete(res));
        return true;
      default:
        return false;
    }
  };

  const principalMatch = (
    req: IncomingMessage,
    res: ServerResponse,
    params: URLSearchParams,
  ): HttpReply | 'done' => {
    const requested = params.get('next');
    const fault = takeFault('listing', '*', pageIndexOf(requested, 'principal'));
    if (fault !== undefined && playFault(fault, req, res)) return 'done';

    const key = apiKeyOf(req);
    if (key === undefined || !apiKeys.has(key)) return new HttpReply(401);
    const state = readCursor(params, 'principal', '');
    if (state instanceof HttpReply) return state;
    listingHook?.(state.pageIndex, state.pattern);
    const ids = [...principals.keys()]
      .filter((id) => mayRead(key, id) && matchesGlob(id, state.pattern))
      .sort(compareNames);
    const { next, slice } = page(state, ids);
    const entries = slice.flatMap((id) => {
      const stored = principals.get(id);
      return stored === undefined ? [] : [principalEntry(id, stored)];
    });
    return pageReply(fault, requested, next, 'principals', entries, () =>
      JSON.stringify({ next: 'soon', items: entries.map((e) => ({ id: e.principal })) }),
    );
  };

  const getPrincipal = (
    req: IncomingMessage,
    res: ServerResponse,
    params: URLSearchParams,
  ): HttpReply | 'done' => {
    const id = params.get('principal');
    const fault = id === null ? undefined : takeFault('lookup', id, undefined);
    if (fault !== undefined && playFault(fault, req, res)) return 'done';

    const key = apiKeyOf(req);
    if (key === undefined || !apiKeys.has(key)) return new HttpReply(401);
    if (id === null || id === '') return new HttpReply(400, INVALID_REQUEST);
    if (!mayRead(key, id)) return new HttpReply(403);
    const principal = principals.get(id);
    if (principal === undefined) return new HttpReply(404);
    const body = JSON.stringify(principalEntry(id, principal));
    if (fault?.type === 'truncated') return new HttpReply(200, truncate(body));
    if (fault?.type === 'malformed') return new HttpReply(200, JSON.stringify({ id, kind: principal.type }));
    return new HttpReply(200, body);
  };

  const signIn = (req: IncomingMessage, params: URLSearchParams): HttpReply => {
    const key = apiKeyOf(req);
    if (key === undefined || !apiKeys.has(key)) return new HttpReply(401);
    const id = params.get('principal');
    if (id === null || id === '' || !principals.has(id)) return new HttpReply(400, INVALID_REQUEST);
    if (!mayRead(key, id)) return new HttpReply(403);
    const token = randomBytes(24).toString('base64url').slice(0, 32);
    tokens.set(token, id);
    return new HttpReply(
      200,
      JSON.stringify({ token, expirationTime: bigStateTime(Date.now() + 3_600_000) }),
    );
  };

  const revoke = (req: IncomingMessage, params: URLSearchParams): HttpReply => {
    const key = apiKeyOf(req);
    if (key === undefined || !apiKeys.has(key)) return new HttpReply(401);
    const token = params.get('token');
    if (token === null || token === '') return new HttpReply(400, INVALID_REQUEST);
    if (!tokens.delete(token)) return new HttpReply(404);
    return new HttpReply(204);
  };

  const send = (res: ServerResponse, reply: HttpReply): void => {
    if (res.destroyed || res.headersSent) return;
    const headers: Record<string, string | number> = { ...reply.headers };
    if (reply.body !== '') {
      headers['Content-Type'] = 'application/json; charset=utf-8';
    }
    headers['Content-Length'] = Buffer.byteLength(reply.body);
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  };

  const count = (path: string, principal: string | null): void => {
    if (path === '/v1/apikey/match' && principal !== null) {
      stats.requestsByPrincipal[principal] = (stats.requestsByPrincipal[principal] ?? 0) + 1;
    } else if (path === '/v1/principal/match') {
      stats.listingRequests += 1;
    } else if (path === '/v1/principal') {
      stats.lookupRequests += 1;
      if (principal !== null) {
        stats.lookupsByPrincipal[principal] = (stats.lookupsByPrincipal[principal] ?? 0) + 1;
      }
    }
  };

  const queue = (
    endpoint: QueuedFault['endpoint'],
    principal: string,
    fault: SimulatorFault,
    times: number | undefined,
    onPage: number | undefined,
  ): void => {
    const remaining = times ?? 1;
    if (!(remaining >= 1)) throw new RangeError('times must be >= 1');
    faults.push({ endpoint, principal, fault, onPage, remaining });
  };

  const route = (req: IncomingMessage, res: ServerResponse): HttpReply | 'done' => {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const params = url.searchParams;
    if (basePath !== '' && !url.pathname.startsWith(`${basePath}/`)) return new HttpReply(404);
    const path = url.pathname.slice(basePath.length);
    count(path, params.get('principal'));
    const method = req.method ?? 'GET';
    const endpoints: Record<string, Record<string, () => HttpReply | 'done'>> = {
      '/v1/apikey/match': { GET: () => apiKeyMatch(req, res, params) },
      '/v1/principal/match': { GET: () => principalMatch(req, res, params) },
      '/v1/principal': { GET: () => getPrincipal(req, res, params) },
      '/v1/token': { POST: () => signIn(req, params), DELETE: () => revoke(req, params) },
    };
    const endpoint = endpoints[path];
    if (endpoint === undefined) return new HttpReply(404);
    const handler = endpoint[method];
    if (handler === undefined) return new HttpReply(405, '', { Allow: Object.keys(endpoint).join(', ') });
    return handler();
  };

  const server = createServer({ keepAlive: true }, (req, res) => {
    stats.requests += 1;
    req.resume();
    const answer = () => {
      if (closing) return;
      try {
        const reply = route(req, res);
        if (reply !== 'done') send(res, reply);
      } catch (error) {
        send(res, new HttpReply(500, JSON.stringify({ error: 0, desc: String(error) })));
      }
    };
    if (latencyMs === 0) {
      answer();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer();
    }, latencyMs);
    timers.add(timer);
  });
  server.on('connection', (socket: Socket) => {
    stats.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostText = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostText}:${address.port}${basePath}`;
  let closed: Promise<void> | undefined;

  return {
    url,
    setKeys: (principal, keys) => {
      ensure(principal).keys = toEntries(keys);
    },
    addKeys: (principal, ...names) => {
      const stored = ensure(principal);
      for (const name of names) if (!stored.keys.has(name)) stored.keys.set(name, { name });
    },
    removeKeys: (principal, ...names) => {
      const stored = principals.get(principal);
      for (const name of names) stored?.keys.delete(name);
    },
    keys: (principal) => [...(principals.get(principal)?.keys.keys() ?? [])].sort(compareNames),
    addPrincipal: (id, principal = {}) => {
      if (id === '') throw new RangeError('a principal id must not be empty');
      const existing = principals.get(id);
      if (existing === undefined) {
        principals.set(id, {
          type: principal.type ?? 1,
          name: principal.name,
          keys: toEntries(principal.keys ?? []),
        });
        return;
      }
      if (principal.type !== undefined) existing.type = principal.type;
      if (principal.name !== undefined) existing.name = principal.name;
      if (principal.keys !== undefined) existing.keys = toEntries(principal.keys);
    },
    removePrincipal: (id) => {
      churning.delete(id);
      for (const [token, owner] of tokens) if (owner === id) tokens.delete(token);
      return principals.delete(id);
    },
    principals: () => [...principals.keys()].sort(compareNames),
    setApiKeys: (keys) => {
      apiKeys = new Set(keys);
    },
    inject: (principal, fault, injectOptions = {}) => {
      queue('apikey', principal, fault, injectOptions.times, injectOptions.onPage);
    },
    injectListing: (fault, injectOptions = {}) => {
      queue('listing', '*', fault, injectOptions.times, injectOptions.onPage);
    },
    injectLookup: (principal, fault, injectOptions = {}) => {
      if (fault.type === 'loop-cursor')
        throw new RangeError('a lookup has no cursor: loop-cursor does not apply');
      queue('lookup', principal, fault, injectOptions.times, undefined);
    },
    clearFaults: () => {
      faults = [];
    },
    churn: (principal, churnOptions = {}) => {
      const name = churnOptions.name ?? '!churn';
      // A walk left after its first page leaves its churn key behind: that one is not a real key.
      const existing = [...(principals.get(principal)?.keys.keys() ?? [])].filter(
        (key) => key !== churning.get(principal),
      );
      if (name === '' || existing.some((key) => compareNames(key, name) <= 0)) {
        throw new RangeError(
          'the churn key must sort before every key of the principal, and be none of them',
        );
      }
      churning.set(principal, name);
    },
    stopChurn: (principal) => {
      for (const [id, name] of churning) {
        if (principal !== undefined && id !== principal) continue;
        principals.get(id)?.keys.delete(name);
        churning.delete(id);
      }
    },
    onPage: (hook) => {
      pageHook = hook;
    },
    onListingPage: (hook) => {
      listingHook = hook;
    },
    get stats() {
      return stats;
    },
    resetStats: () => {
      stats.requests = 0;
      stats.connections = 0;
      stats.requestsByPrincipal = {};
      stats.listingRequests = 0;
      stats.lookupRequests = 0;
      stats.lookupsByPrincipal = {};
    },
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        for (const res of hung) res.destroy();
        hung.clear();
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

/** Demo inventory of the simulator CLI and `npm start`: paged, empty, and awkwardly named principals. */
export function demoPrincipals(): Record<string, SimulatorPrincipal> {
  const many = Array.from({ length: 120 }, (_, i) => `tram-device-${String(i + 1).padStart(3, '0')}`);
  return {
    root: { type: 2, name: 'Administrator', keys: ['ci-deploy', 'grafana-read', 'ops-laptop'] },
    tram_client: {
      type: 1,
      name: 'Client for tram app',
      keys: [{ name: 'tram-backend', created: '2025-11-02T08:00:00Z' }, ...many],
    },
    'svc a&b': { type: 1, name: 'Service with an awkward name', keys: ['#primary', 'zürich-backup'] },
    'zürich-ops': { type: 2, name: 'Zürich operations', keys: ['monitoring'] },
    empty: { type: 1, name: 'No keys yet', keys: [] },
  };
}

/**
 * Whether a pattern has one of the seed's forms: `x`, `*x`, `x*`, `*x*` (`*` and `**` match all). `x` holds no
 * `*`; any other character, `?` and `[` included, is literal.
 */
export function isValidPattern(pattern: string): boolean {
  return pattern !== '' && /^\*?[^*]*\*?$/.test(pattern);
}

/**
 * Matches a name against a seed-form glob (see isValidPattern); undefined matches all. Only the pattern's leading
 * and trailing `*` are wildcards: a `*`, `?` or `[` in the name is an ordinary character. The audit's own matcher:
 * the simulator answers exactly as the audit expects BigState to.
 */
export const matchesGlob: (name: string, pattern: string | undefined) => boolean = matchesPattern;

/** Formats a time as BigState does: seven fractional digits and an explicit offset. */
export function bigStateTime(epochMs: number): string {
  const ticks = String(Math.floor(Math.random() * 10_000)).padStart(4, '0');
  return new Date(epochMs).toISOString().replace('Z', `${ticks}+00:00`);
}

function toEntries(keys: ReadonlyArray<string | ApiKeyEntry>): Map<string, ApiKeyEntry> {
  return new Map(
    keys.map((key): [string, ApiKeyEntry] =>
      typeof key === 'string' ? [key, { name: key }] : [key.name, { ...key }],
    ),
  );
}

/** The first half of a body (at least one character): a connection cut mid-answer. */
function truncate(body: string): string {
  return body.slice(0, Math.max(1, Math.floor(body.length / 2)));
}

function principalEntry(id: string, principal: StoredPrincipal): PrincipalEntry {
  return principal.name === undefined
    ? { principal: id, type: principal.type }
    : { principal: id, type: principal.type, name: principal.name };
}

function apiKeyOf(req: IncomingMessage): string | undefined {
  const value = req.headers['x-api-key'];
  return typeof value === 'string' ? value : undefined;
}

/** Stable order by UTF-16 code units, as a server sorting by name would page. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
