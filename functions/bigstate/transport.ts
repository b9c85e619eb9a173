/**
 * One BigState request with everything around it: URL building, headers, a cap on concurrent connections, a
 * per-attempt timeout, retries with backoff and `Retry-After`, one key refresh on 401, the caller's deadline, and
 * the mapping of every failure to a named error. It never logs or stores the API key or a token value.
 *
 * Requests go through Node's global `fetch` (undici built into Node), whose global dispatcher keeps connections
 * alive and reuses idle ones. The `undici` package is not imported: it would add about 0.5 MB and 100 ms of module
 * loading to the Lambda's cold start for what Node already has.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  BadRequestError,
  type BigStateError,
  ConfigurationError,
  DeadlineExceededError,
  ForbiddenError,
  HttpStatusError,
  isRetryableStatus,
  NetworkError,
  ProtocolError,
  type RequestErrorDetails,
  RequestTimeoutError,
  UnauthorizedError,
} from './errors.js';
import type { ApiKeyProvider } from './types.js';

/** Receives the client's diagnostics. It is never given the API key, a token value or a request header. */
export interface BigStateLogger {
  // Rest parameters (rather than one optional `extra`) so that a Powertools Logger fits as it is.
  debug(message: string, ...extra: Array<Record<string, unknown>>): void;
  warn(message: string, ...extra: Array<Record<string, unknown>>): void;
}

/** Retry policy for transient failures (network errors, timeouts, 408/429/5xx, malformed bodies). */
export interface RetryOptions {
  /** Attempts per request, the first included. @default 5 */
  readonly maxAttempts?: number;
  /** Backoff base: the n-th retry waits `random() * min(maxDelayMs, baseDelayMs * 2^(n-1))`. @default 200 */
  readonly baseDelayMs?: number;
  /** Cap of one backoff wait. @default 5_000 */
  readonly maxDelayMs?: number;
  /** Longest `Retry-After` honoured; a longer one fails the request at once. @default 30_000 */
  readonly maxRetryAfterMs?: number;
}

/** Validated settings of a Transport. */
export interface TransportSettings {
  readonly baseUrl: URL;
  readonly apiKey: ApiKeyProvider;
  readonly maxConnections: number;
  readonly requestTimeoutMs: number;
  readonly retry: Required<RetryOptions>;
  readonly logger: BigStateLogger | undefined;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random: () => number;
  readonly now: () => number;
}

/** The JSON of a response body, and the source text of its top-level `next` when that is a number. */
export interface ParsedBody {
  readonly json: unknown;
  readonly nextSource: string | undefined;
}

/** Thrown by a RequestSpec's `parse` when the body has the wrong shape; becomes a ProtocolError. */
export class MalformedBodyError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'MalformedBodyError';
  }
}

/** One logical request; the transport may send it several times. */
export interface RequestSpec<T> {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** API path below the host's own path, e.g. `/v1/apikey/match`. */
  readonly path: string;
  /** Query parameters in order; values are percent-encoded here. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Names of query parameters whose values are secret (a token): shown as `REDACTED` in errors and logs. */
  readonly secretQuery?: readonly string[];
  /**
   * Whether sending the request twice is harmless. A request that is not (sign-in creates a token) is retried
   * only when the server cannot have acted on it: connection refused, 408, 429, 503.
   */
  readonly idempotent: boolean;
  /** Return `undefined` on 404 instead of failing. */
  readonly notFoundAsUndefined?: boolean;
  /** Parse the body; undefined means the body is ignored (any 2xx succeeds). */
  readonly parse?: (body: ParsedBody) => T;
  readonly signal?: AbortSignal | undefined;
  /** Epoch milliseconds (by `now()`) when the caller's budget ends. */
  readonly deadline?: number | undefined;
}

type Attempt<T> =
  | { readonly kind: 'ok'; readonly value: T | undefined }
  | { readonly kind: 'deadline' }
  | { readonly kind: 'unauthorized' }
  | { readonly kind: 'fatal'; readonly error: (attempts: number) => BigStateError }
  | {
      readonly kind: 'transient';
      readonly error: (attempts: number) => BigStateError;
      /** The server cannot have acted on the request, so even a non-idempotent one may be sent again. */
      readonly notProcessed: boolean;
      readonly retryAfterMs?: number | undefined;
      readonly reason: string;
    };

/** Error codes of connection-level failures worth another attempt. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
/** Failures that happen before the request reached the server. */
const NOT_SENT_NETWORK_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN']);
const NOT_PROCESSED_STATUSES = new Set([408, 429, 503]);

/** Header values must be printable ASCII; anything else would make undici throw with the value in its message. */
const VALID_KEY = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Published by Node's built-in undici for every connection it opens, for any origin and any caller in the process
 * (`{ connectParams: { protocol, host, hostname, port, ... }, socket }`).
 */
const CONNECTED_CHANNEL = 'undici:client:connected';

/**
 * Sends BigState requests with Node's global `fetch`, at most `maxConnections` at a time.
 *
 * HTTP/1.1 without pipelining carries one request per connection at a time, so capping the requests in flight caps
 * the connections in use; the global dispatcher keeps them alive and hands idle ones to the next request.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #prefix: string;
  readonly #slots: Slots;
  #requests = 0;
  #connections = 0;
  /** Attempts under way: waiting for a slot, sent, or reading their body. */
  #pending = 0;
  #closed = false;
  readonly #idle: Array<() => void> = [];

  /**
   * Counts connections to this client's origin (`protocol` and `host`, the port included). Subscribed only while
   * attempts are under way: connections to other hosts, or to this one while the client is idle, are not counted,
   * and a client that is never closed leaves no subscriber behind. The channel cannot tell which caller a
   * connection is for, so another client of the same host busy at the same time is counted too.
   */
  readonly #onConnected = (message: unknown): void => {
    const params = (message as { connectParams?: { protocol?: unknown; host?: unknown } } | null)
      ?.connectParams;
    const { protocol, host } = this.#settings.baseUrl;
    if (params?.protocol === protocol && params.host === host) this.#connections += 1;
  };

  constructor(settings: TransportSettings) {
    this.#settings = settings;
    this.#prefix = settings.baseUrl.pathname.replace(/\/+$/, '');
    this.#slots = new Slots(settings.maxConnections);
  }

  /** HTTP requests sent so far (every attempt counts). */
  get requests(): number {
    return this.#requests;
  }

  /** Connections to the origin opened so far for this transport's requests (see `#onConnected`). */
  get connections(): number {
    return this.#connections;
  }

  /**
   * Resolves once the attempts under way (also those waiting for a connection) have finished; later attempts fail
   * with a NetworkError. There is no pool of our own to close: idle keep-alive sockets belong to Node's global
   * dispatcher, which closes them after its keep-alive timeout and does not let them hold the process open.
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pending === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /**
   * Sends a request until it succeeds, fails for good, or its retries or the caller's deadline are spent.
   * @throws BigStateError subclasses (see errors.ts); ConfigurationError when the key provider returns an unusable
   * key; whatever the key provider itself throws.
   */
  async request<T>(spec: RequestSpec<T>): Promise<T | undefined> {
    const url = this.#url(spec);
    const base = { method: spec.method, path: this.displayPath(spec.path, spec.query, spec.secretQuery) };
    const scope = deadlineScope(spec.signal, spec.deadline, this.#settings.now);
    const deadlineError = (attempts: number) =>
      new DeadlineExceededError({ ...base, attempts, cause: scope.signal?.reason });
    try {
      if (scope.signal?.aborted) throw deadlineError(0);
      let key = await this.#readKey(false);
      let refreshed = false;
      let failures = 0;
      for (let attempts = 1; ; attempts++) {
        const outcome = await this.#attempt(url, spec, key, scope.signal, base, attempts);
        switch (outcome.kind) {
          case 'ok':
            return outcome.value;
          case 'deadline':
            throw deadlineError(attempts);
          case 'fatal':
            throw outcome.error(attempts);
          case 'unauthorized': {
            if (refreshed)
              throw new UnauthorizedError({ ...base, attempts }, 'the API key was refused again');
            refreshed = true;
            // Requests under way together all meet the same 401 of a rotation. When another one has already
            // re-read the key (the key source now holds a different key), retry with that instead of reading
            // the secret once more per request.
            const current = await this.#readKey(false);
            if (current !== key) {
              key = current;
              continue;
            }
            this.#settings.logger?.warn('BigState refused the API key; reading it again', {
              ...base,
              attempts,
            });
            const fresh = await this.#readKey(true);
            if (fresh === key) {
              throw new UnauthorizedError(
                { ...base, attempts },
                'the API key was refused and reading it again returned the same key',
              );
            }
            key = fresh;
            continue;
          }
          case 'transient': {
            failures += 1;
            const error = outcome.error(attempts);
            if (!spec.idempotent && !outcome.notProcessed) throw error;
            if (failures >= this.#settings.retry.maxAttempts) throw error;
            const delay = this.#delay(failures, outcome.retryAfterMs);
            const remaining = scope.remainingMs();
            if (delay === undefined || (remaining !== undefined && delay >= remaining)) {
              this.#settings.logger?.warn('BigState request failed; the wait before a retry is too long', {
                ...base,
                attempts,
                reason: outcome.reason,
                retryAfterMs: outcome.retryAfterMs,
                remainingMs: remaining,
              });
              throw error;
            }
            this.#settings.logger?.warn('BigState request failed; retrying', {
              ...base,
              attempts,
              reason: outcome.reason,
              delayMs: Math.round(delay),
            });
            try {
              await this.#settings.sleep(delay, scope.signal);
            } catch (sleepError) {
              if (scope.signal?.aborted) throw deadlineError(attempts);
              throw sleepError;
            }
            if (scope.signal?.aborted) throw deadlineError(attempts);
          }
        }
      }
    } finally {
      scope.dispose();
    }
  }

  /** The wait before retry number `failures`, or undefined when `Retry-After` asks for longer than allowed. */
  #delay(failures: number, retryAfterMs: number | undefined): number | undefined {
    const { baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.#settings.retry;
    if (retryAfterMs !== undefined) return retryAfterMs > maxRetryAfterMs ? undefined : retryAfterMs;
    // Full jitter: spreads the retries of many clients hit by the same outage.
    return this.#settings.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (failures - 1));
  }

  async #readKey(refresh: boolean): Promise<string> {
    const raw: unknown = await this.#settings.apiKey({ refresh });
    const key = typeof raw === 'string' ? raw.trim() : '';
    if (!VALID_KEY.test(key)) {
      // Never echo the value: it is the secret.
      throw new ConfigurationError(
        'apiKey',
        'the API key provider returned an empty key or one with characters an HTTP header cannot carry',
      );
    }
    return key;
  }

  /** One attempt: waits for a free connection slot (not counted against the timeout), then sends. */
  async #attempt<T>(
    url: string,
    spec: RequestSpec<T>,
    key: string,
    outer: AbortSignal | undefined,
    base: { method: string; path: string },
    attempt: number,
  ): Promise<Attempt<T>> {
    if (this.#closed) {
      return {
        kind: 'fatal',
        error: (attempts) => new NetworkError('the client was closed', { ...base, attempts }),
      };
    }
    if (this.#pending++ === 0) subscribe(CONNECTED_CHANNEL, this.#onConnected);
    try {
      try {
        await this.#slots.acquire(outer);
      } catch {
        return { kind: 'deadline' };
      }
      try {
        return await this.#send(url, spec, key, outer, base, attempt);
      } finally {
        // Node's fetch gives the connection back to its pool in a setImmediate after the response ended: a slot
        // freed earlier would let the next request open a new connection instead of reusing this one.
        await new Promise((resolve) => setImmediate(resolve));
        this.#slots.release();
      }
    } finally {
      if (--this.#pending === 0) {
        unsubscribe(CONNECTED_CHANNEL, this.#onConnected);
        for (const resolve of this.#idle.splice(0)) resolve();
      }
    }
  }

  async #send<T>(
    url: string,
    spec: RequestSpec<T>,
    key: string,
    outer: AbortSignal | undefined,
    base: { method: string; path: string },
    attempt: number,
  ): Promise<Attempt<T>> {
    const timeoutMs = this.#settings.requestTimeoutMs;
    const timer = new AbortController();
    const handle = setTimeout(() => timer.abort(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    const signal = outer === undefined ? timer.signal : AbortSignal.any([outer, timer.signal]);
    const started = performance.now();
    this.#requests += 1;
    let status: number | undefined;
    try {
      const response = await fetch(url, {
        method: spec.method,
        headers: {
          'x-api-key': key,
          'Content-Type': 'application/json',
          Accept: 'application/json',
        },
        ...(spec.method === 'POST' ? { body: '' } : {}),
        // A redirect would carry the x-api-key header to wherever it points: refuse it instead.
        redirect: 'manual',
        signal,
      });
      status = response.status;
      // Read the whole body under the same timeout, also on errors, so the connection goes back to the pool.
      const text = await response.text();
      clearTimeout(handle);
      this.#settings.logger?.debug('BigState response', {
        ...base,
        status,
        attempt,
        durationMs: Math.round(performance.now() - started),
      });
      return this.#classify(spec, status, response.headers.get('retry-after'), text, base, key);
    } catch (error) {
      if (outer?.aborted) return { kind: 'deadline' };
      if (timer.signal.aborted) {
        const cause: unknown = timer.signal.reason;
        return {
          kind: 'transient',
          notProcessed: false,
          reason: `timeout after ${timeoutMs} ms`,
          error: (attempts) => new RequestTimeoutError(timeoutMs, { ...base, status, attempts, cause }),
        };
      }
      const code = errorCode(error);
      const detail = `${describeCause(error)}${code === undefined ? '' : ` (${code})`}`;
      const make = (attempts: number) =>
        new NetworkError(detail, { ...base, status, attempts, cause: error });
      if (code === undefined || !TRANSIENT_NETWORK_CODES.has(code)) return { kind: 'fatal', error: make };
      return {
        kind: 'transient',
        notProcessed: NOT_SENT_NETWORK_CODES.has(code),
        reason: detail,
        error: make,
      };
    } finally {
      clearTimeout(handle);
    }
  }

  #classify<T>(
    spec: RequestSpec<T>,
    status: number,
    retryAfter: string | null,
    text: string,
    base: { method: string; path: string },
    key: string,
  ): Attempt<T> {
    const details = (attempts: number): RequestErrorDetails => ({ ...base, status, attempts });
    if (status >= 200 && status <= 299) {
      if (spec.parse === undefined) return { kind: 'ok', value: undefined };
      try {
        return { kind: 'ok', value: spec.parse(parseJson(text)) };
      } catch (error) {
        const detail = error instanceof SyntaxError ? 'the body is not complete JSON' : messageOf(error);
        // A garbled body is usually a cut-off transfer: worth another attempt.
        return {
          kind: 'transient',
          notProcessed: false,
          reason: `malformed body: ${detail}`,
          error: (attempts) => new ProtocolError(detail, { ...details(attempts), cause: error }),
        };
      }
    }
    if (status === 401) return { kind: 'unauthorized' };
    if (status === 403) return { kind: 'fatal', error: (attempts) => new ForbiddenError(details(attempts)) };
    if (status === 400) {
      const { code, desc } = bigStateErrorBody(text, key);
      return { kind: 'fatal', error: (attempts) => new BadRequestError(details(attempts), code, desc) };
    }
    if (status === 404 && spec.notFoundAsUndefined) return { kind: 'ok', value: undefined };
    if (isRetryableStatus(status)) {
      return {
        kind: 'transient',
        notProcessed: NOT_PROCESSED_STATUSES.has(status),
        retryAfterMs: parseRetryAfter(retryAfter, this.#settings.now()),
        reason: `HTTP ${status}`,
        error: (attempts) => new HttpStatusError({ ...details(attempts), status }),
      };
    }
    return { kind: 'fatal', error: (attempts) => new HttpStatusError({ ...details(attempts), status }) };
  }

  #url(spec: RequestSpec<unknown>): string {
    const query = spec.query.map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&');
    return `${this.#settings.baseUrl.origin}${this.#prefix}${spec.path}${query === '' ? '' : `?${query}`}`;
  }

  /** The path and query as errors and logs show them: secret query values replaced by `REDACTED`. */
  displayPath(
    path: string,
    query: ReadonlyArray<readonly [string, string]>,
    secretQuery: readonly string[] = [],
  ): string {
    const shown = query
      .map(
        ([name, value]) => `${name}=${secretQuery.includes(name) ? 'REDACTED' : encodeURIComponent(value)}`,
      )
      .join('&');
    return `${this.#prefix}${path}${shown === '' ? '' : `?${shown}`}`;
  }
}

/**
 * Parses JSON keeping the source text of the top-level `next`: a cursor may exceed Number.MAX_SAFE_INTEGER and
 * must go back to the server digit for digit (Node 24's reviver receives each primitive's source text).
 * @throws SyntaxError when the text is not JSON.
 */
export function parseJson(text: string): ParsedBody {
  const sources = new WeakMap<object, string>();
  const reviver = function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (key === 'next' && typeof value === 'number' && typeof this === 'object' && this !== null) {
      if (context?.source !== undefined) sources.set(this, context.source);
    }
    return value;
  };
  const json: unknown = JSON.parse(text, reviver);
  const nextSource = typeof json === 'object' && json !== null ? sources.get(json) : undefined;
  return { json, nextSource };
}

/**
 * Reads `Retry-After` (delta-seconds or an HTTP date) as milliseconds from `now`; undefined when absent or
 * unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** BigState's `{ error, desc }`; a server that echoes the request could put the key in `desc`, so it is cut out. */
function bigStateErrorBody(
  text: string,
  key: string,
): { code: number | undefined; desc: string | undefined } {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null) return { code: undefined, desc: undefined };
    const { error, desc } = body as Record<string, unknown>;
    return {
      code: typeof error === 'number' && Number.isFinite(error) ? error : undefined,
      desc: typeof desc === 'string' ? desc.replaceAll(key, 'REDACTED').slice(0, 500) : undefined,
    };
  } catch {
    return { code: undefined, desc: undefined };
  }
}

/** The first `code` on the error or its causes (undici wraps socket errors in `TypeError: fetch failed`). */
function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The innermost message: `fetch failed` says nothing, its cause says `other side closed`. */
function describeCause(error: unknown): string {
  let current: unknown = error;
  let message = messageOf(error);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    message = current.message || message;
    current = current.cause;
  }
  return message;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A counting semaphore: at most `size` holders at a time, waiters served in arrival order; a waiter whose signal
 * aborts leaves the queue and rejects with the signal's reason.
 */
class Slots {
  #free: number;
  // A Set keeps insertion order and lets an aborted waiter leave from the middle.
  readonly #waiting = new Set<() => void>();

  constructor(size: number) {
    this.#free = size;
  }

  acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#free > 0) {
      this.#free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiting.delete(grant);
        reject(signal?.reason);
      };
      this.#waiting.add(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  release(): void {
    const next = this.#waiting.values().next();
    if (next.done) {
      this.#free += 1;
      return;
    }
    this.#waiting.delete(next.value);
    next.value();
  }
}

interface DeadlineScope {
  readonly signal: AbortSignal | undefined;
  remainingMs(): number | undefined;
  dispose(): void;
}

/** Joins the caller's signal and absolute deadline into one signal, and tells how much time is left. */
function deadlineScope(
  signal: AbortSignal | undefined,
  deadline: number | undefined,
  now: () => number,
): DeadlineScope {
  if (deadline === undefined) return { signal, remainingMs: () => undefined, dispose: () => {} };
  const controller = new AbortController();
  const handle = setTimeout(
    () => controller.abort(new DOMException('the deadline passed', 'TimeoutError')),
    Math.max(0, deadline - now()),
  );
  if (deadline - now() <= 0) controller.abort(new DOMException('the deadline passed', 'TimeoutError'));
  return {
    signal: signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]),
    remainingMs: () => deadline - now(),
    dispose: () => clearTimeout(handle),
  };
}
