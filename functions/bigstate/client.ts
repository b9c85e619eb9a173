/**
 * The BigState HTTP client: sign-in and revocation of session tokens, and complete, deduplicated walks of a
 * principal's API keys and of the principals the key can see.
 */
import { setTimeout as sleep } from 'node:timers/promises';
// zod's mini API: tree-shakeable, so the Lambda bundle carries only the schemas used here.
import * as z from 'zod/mini';
import type { Deadline } from '../commons/deadline.js';
import { isLoopbackHost } from '../commons/validation.js';
import { parseApiKeyPage, parsePrincipal, parsePrincipalPage, parseWith, walk } from './cursor.js';
import { BigStateConfigurationError, type RequestErrorDetails } from './errors.js';
import {
  type BigStateLogger,
  MalformedBodyError,
  type ParsedBody,
  type RetryOptions,
  Transport,
} from './transport.js';
import type { ApiKeyEntry, ApiKeyLister, ApiKeyProvider, PrincipalEntry, WalkOptions } from './types.js';

export type { BigStateLogger, RetryOptions } from './transport.js';

/** Options of a single request. */
export interface RequestOptions {
  /**
   * When the request must end (time budget and caller's signal): it stops then with a DeadlineExceededError, and
   * a back-off wait that would outlast it fails the request at once (see WalkOptions.deadline).
   * @default no deadline
   */
  readonly deadline?: Deadline | undefined;
}

/** How to reach BigState and how hard to try. */
export interface BigStateClientOptions {
  /**
   * Base URL, e.g. `https://api.bigstate.dev` or `https://proxy.example/bigstate` (the path is kept). `https` is
   * required; `http` is accepted for loopback hosts only (127.0.0.0/8, ::1, localhost).
   */
  readonly host: string | URL;
  /** Supplies the API key; asked again with `refresh: true` once per request after a 401. */
  readonly apiKey: ApiKeyProvider;
  /**
   * Most requests in flight at a time, hence most keep-alive connections in use (HTTP/1.1, no pipelining): the
   * client's own `node:http` / `node:https` Agent holds at most this many sockets.
   * @default 8
   */
  readonly maxConnections?: number;
  /** Timeout of one attempt, until the whole body has arrived. @default 10_000 */
  readonly requestTimeoutMs?: number;
  readonly retry?: RetryOptions;
  /** Page limit of one walk, a guard against a server that never ends. @default 10_000 */
  readonly maxPages?: number;
  /** Diagnostics; never receives the API key or a token. */
  readonly logger?: BigStateLogger;
  /**
   * Waits between attempts; rejects when the signal aborts. Injectable for tests.
   * @default `setTimeout` of `node:timers/promises`
   */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  readonly random?: () => number;
  /**
   * Clock in epoch milliseconds, for `Retry-After` dates (a Deadline has its own clock). Injectable for tests.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** A session token from `POST /v1/token`. */
export interface SignInResult {
  token: string;
  expirationTime: Date;
}

const DEFAULTS = {
  maxConnections: 8,
  requestTimeoutMs: 10_000,
  maxPages: 10_000,
  retry: { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 30_000 },
} as const;

/** Every option name, so that a misspelt one fails loudly instead of being ignored. */
const OPTION_NAMES: ReadonlySet<string> = new Set<keyof BigStateClientOptions>([
  'host',
  'apiKey',
  'maxConnections',
  'requestTimeoutMs',
  'retry',
  'maxPages',
  'logger',
  'sleep',
  'random',
  'now',
]);
const RETRY_OPTION_NAMES: ReadonlySet<string> = new Set<keyof RetryOptions>([
  'maxAttempts',
  'baseDelayMs',
  'maxDelayMs',
  'maxRetryAfterMs',
]);

const signInSchema = z.looseObject({ token: z.string().check(z.minLength(1)), expirationTime: z.string() });

/**
 * A client for BigState's REST API.
 *
 * Every request sends `x-api-key`, `Content-Type: application/json` and `Accept: application/json`, is retried on
 * network errors, timeouts, 408/429/5xx and malformed bodies (backoff with full jitter, `Retry-After` honoured), and
 * fails with a named BigStateError otherwise. The API key and token values never appear in errors or logs.
 */
export class BigStateClient implements ApiKeyLister {
  readonly #transport: Transport;
  readonly #maxPages: number;

  /**
   * @throws BigStateConfigurationError naming the option when one is invalid (e.g. `host` not https on a remote
   * host) or unknown (a misspelt name).
   */
  constructor(options: BigStateClientOptions) {
    rejectUnknown('', options, OPTION_NAMES);
    rejectUnknown('retry.', options.retry ?? {}, RETRY_OPTION_NAMES);
    const baseUrl = validateHost(options.host);
    if (typeof options.apiKey !== 'function') {
      throw new BigStateConfigurationError('apiKey', 'must be a function that returns the API key');
    }
    const retry = {
      maxAttempts: positiveInteger(
        'retry.maxAttempts',
        options.retry?.maxAttempts,
        DEFAULTS.retry.maxAttempts,
      ),
      baseDelayMs: nonNegative('retry.baseDelayMs', options.retry?.baseDelayMs, DEFAULTS.retry.baseDelayMs),
      maxDelayMs: nonNegative('retry.maxDelayMs', options.retry?.maxDelayMs, DEFAULTS.retry.maxDelayMs),
      maxRetryAfterMs: nonNegative(
        'retry.maxRetryAfterMs',
        options.retry?.maxRetryAfterMs,
        DEFAULTS.retry.maxRetryAfterMs,
      ),
    };
    this.#maxPages = positiveInteger('maxPages', options.maxPages, DEFAULTS.maxPages);
    this.#transport = new Transport({
      baseUrl,
      apiKey: options.apiKey,
      maxConnections: positiveInteger('maxConnections', options.maxConnections, DEFAULTS.maxConnections),
      requestTimeoutMs: positiveInteger(
        'requestTimeoutMs',
        options.requestTimeoutMs,
        DEFAULTS.requestTimeoutMs,
      ),
      retry,
      logger: options.logger,
      sleep: options.sleep ?? wait,
      random: options.random ?? Math.random,
      now: options.now ?? Date.now,
    });
  }

  /**
   * Signs in as a principal: `POST /v1/token?principal=P`. Sign-in creates a token, so it is retried only when
   * the server cannot have acted on it (connection refused, 408, 429, 503).
   * @throws BigStateError subclasses; ProtocolError when the token or expirationTime is missing or invalid.
   */
  async signIn(principal: string, options?: RequestOptions): Promise<SignInResult> {
    const result = await this.#transport.request({
      method: 'POST',
      path: '/v1/token',
      query: [['principal', principal]],
      idempotent: false,
      deadline: options?.deadline,
      parse: (body) => {
        const parsed = parseWith(signInSchema, body.json);
        const expirationTime = parseExpirationTime(parsed.expirationTime);
        if (expirationTime === undefined) {
          throw new MalformedBodyError('expirationTime is not an ISO 8601 date-time with an offset');
        }
        return { token: parsed.token, expirationTime };
      },
    });
    if (result === undefined) throw new Error('unreachable: sign-in has a parser');
    return result;
  }

  /**
   * Revokes a session token: `DELETE /v1/token?token=T`.
   *
   * Assumption: the seed says only "call DELETE /v1/token with this value"; we send the value as the `token` query
   * parameter, mirroring how sign-in takes `principal`. The value is redacted from every error and log line.
   * @throws BigStateError subclasses (404 as HttpStatusError when the server does not know the token).
   */
  async revokeToken(token: string, options?: RequestOptions): Promise<void> {
    await this.#transport.request({
      method: 'DELETE',
      path: '/v1/token',
      query: [['token', token]],
      secretQuery: ['token'],
      idempotent: true,
      deadline: options?.deadline,
    });
  }

  /**
   * Walks every page of `GET /v1/apikey/match` for a principal, yielding each key name once.
   * @throws BigStateError subclasses: CursorLoopError, TooManyPagesError, ProtocolError, DeadlineExceededError...
   */
  listApiKeys(principal: string, options?: WalkOptions): AsyncGenerator<ApiKeyEntry, void, undefined> {
    const maxPages = this.#walkLimit(options);
    return walk<ApiKeyEntry>({
      maxPages,
      onPage: options?.onPage,
      identity: (entry) => entry.name,
      fetchPage: (cursor) =>
        this.#page(
          '/v1/apikey/match',
          [['principal', principal], ...walkQuery(cursor, options)],
          options,
          parseApiKeyPage,
        ),
    });
  }

  /**
   * Walks every page of `GET /v1/principal/match`, yielding each principal once.
   * @throws BigStateError subclasses, as listApiKeys.
   */
  listPrincipals(options?: WalkOptions): AsyncGenerator<PrincipalEntry, void, undefined> {
    const maxPages = this.#walkLimit(options);
    return walk<PrincipalEntry>({
      maxPages,
      identity: (entry) => entry.principal,
      fetchPage: (cursor) =>
        this.#page('/v1/principal/match', walkQuery(cursor, options), options, parsePrincipalPage),
    });
  }

  /**
   * Reads one principal: `GET /v1/principal?principal=P`; undefined when BigState answers 404.
   * @throws BigStateError subclasses.
   */
  async getPrincipal(principal: string, options?: RequestOptions): Promise<PrincipalEntry | undefined> {
    return this.#transport.request({
      method: 'GET',
      path: '/v1/principal',
      query: [['principal', principal]],
      idempotent: true,
      notFoundAsUndefined: true,
      deadline: options?.deadline,
      parse: parsePrincipal,
    });
  }

  /**
   * Resolves once requests under way have finished; requests after it fail with a NetworkError. Its idle
   * keep-alive connections are closed then, so they never keep the process alive.
   */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  #walkLimit(options: WalkOptions | undefined): number {
    return positiveInteger('maxPages', options?.maxPages, this.#maxPages);
  }

  async #page<T>(
    path: string,
    query: Array<readonly [string, string]>,
    options: WalkOptions | undefined,
    parse: (body: ParsedBody) => { next: string; items: T[] },
  ): Promise<{ next: string; items: T[]; request: RequestErrorDetails }> {
    const page = await this.#transport.request({
      method: 'GET',
      path,
      query,
      idempotent: true,
      deadline: options?.deadline,
      parse,
    });
    if (page === undefined) throw new Error('unreachable: a page has a parser');
    return { ...page, request: { method: 'GET', path: this.#transport.displayPath(path, query) } };
  }
}

function walkQuery(cursor: string, options: WalkOptions | undefined): Array<readonly [string, string]> {
  return options?.pattern === undefined
    ? [['next', cursor]]
    : [
        ['next', cursor],
        ['pattern', options.pattern],
      ];
}

/**
 * Parses BigState's `expirationTime`, e.g. `2026-03-31T15:49:17.2245429+00:00`: any number of fractional digits
 * (milliseconds kept, the rest dropped, never rounded), `Z` or a `±hh:mm` offset. Undefined when it is not such a
 * time or names a day that does not exist.
 */
export function parseExpirationTime(text: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(
    text,
  );
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second, fraction = '', offset = 'Z'] = match;
  const y = Number(year);
  const mo = Number(month);
  const d = Number(day);
  const h = Number(hour);
  const mi = Number(minute);
  const s = Number(second);
  const ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
  // A month, day or hour out of range moves the date to another day (see below); minutes and seconds past 59 may
  // stay within the day, so they are checked here.
  if (mi > 59 || s > 59) return undefined;
  let offsetMinutes = 0;
  if (offset.toUpperCase() !== 'Z') {
    const oh = Number(offset.slice(1, 3));
    const om = Number(offset.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, ms);
  // setUTCFullYear and setUTCHours roll 31 April over to 1 May, month 13 to January and 24:00 to the next day: a
  // field out of range shows as a different day or month.
  if (date.getUTCDate() !== d || date.getUTCMonth() !== mo - 1) return undefined;
  return new Date(date.getTime() - offsetMinutes * 60_000);
}

function validateHost(host: string | URL): URL {
  let url: URL;
  try {
    url = new URL(host instanceof URL ? host.href : String(host));
  } catch (error) {
    // The value is not echoed: a mistyped setting could hold anything, even the key.
    throw new BigStateConfigurationError(
      'host',
      'is not a valid absolute URL (e.g. https://api.bigstate.dev)',
      {
        cause: error instanceof Error ? new Error(error.name) : undefined,
      },
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw new BigStateConfigurationError(
      'host',
      'must not carry credentials; the API key is sent as x-api-key',
    );
  }
  if (url.search !== '' || url.hash !== '') {
    throw new BigStateConfigurationError('host', 'must not have a query or a fragment');
  }
  if (url.protocol === 'https:') return url;
  // Loopback hosts may use plain http: the traffic never leaves the machine.
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return url;
  throw new BigStateConfigurationError(
    'host',
    `must be an https URL (http is accepted only for loopback hosts); got ${url.protocol}//${url.host}`,
  );
}

function positiveInteger(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new BigStateConfigurationError(option, `must be a positive integer; got ${String(value)}`);
  }
  return value;
}

function nonNegative(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new BigStateConfigurationError(option, `must be a non-negative number; got ${String(value)}`);
  }
  return value;
}

/** Resolves after `ms`; rejects (with an AbortError) as soon as the signal aborts. */
async function wait(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal });
}

/** Throws for the first name in `options` that is not in `known` (a typo would otherwise be ignored silently). */
function rejectUnknown(prefix: string, options: object, known: ReadonlySet<string>): void {
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new BigStateConfigurationError(`${prefix}${name}`, 'is not an option');
  }
}
