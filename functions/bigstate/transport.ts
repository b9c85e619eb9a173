/**
 * One BigState request with everything around it: URL building, headers, a cap on concurrent connections, a
 * per-attempt timeout, retries with backoff and `Retry-After`, one key refresh on 401, the caller's deadline, and
 * the mapping of every failure to a named error. It never logs or stores the API key or a token value. Any text
 * the server sends back (BigState's `desc`, a parser's message) is withheld as a whole when it echoes the key or a
 * token in any form `echoesSecret` recognises, and otherwise redacted and capped before it goes into an error.
 *
 * Requests go through `node:http` (`node:https` for an https host) over one keep-alive Agent per transport, which
 * keeps connections alive and hands idle ones to the next request. Node's global `fetch` costs more per request
 * (its WHATWG streams and headers), and no HTTP package is imported: Node has what is needed.
 */
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Deadline } from '../commons/deadline.js';
import { causeChain } from '../commons/errors.js';
import { echoesSecret, withholdOrRedact } from '../commons/redact.js';
import {
  BadRequestError,
  BigStateConfigurationError,
  type BigStateError,
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
  /** Waits `ms`; rejects when the signal aborts. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly random: () => number;
  /** Clock in epoch milliseconds, for `Retry-After` dates. */
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
  /**
   * Names of query parameters whose values are secret (a token): shown as `REDACTED` in errors and logs, and cut
   * out of any text the server sends back.
   */
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
  /** Ends the request, the wait for a connection and any back-off; see WalkOptions.deadline. */
  readonly deadline?: Deadline | undefined;
}

/** Where a request goes, as errors and logs name it. */
interface RequestAt {
  readonly method: string;
  /** Path and query with secret values redacted. */
  readonly path: string;
}

/** What one attempt needs: the request, the key to send, and what errors must name or must never show. */
interface AttemptOptions<T> {
  readonly spec: RequestSpec<T>;
  /** Path and query as sent (the host's path included). */
  readonly target: string;
  readonly at: RequestAt;
  readonly key: string;
  /** The key and the token values: cut out of any text the server sends back. */
  readonly secrets: readonly string[];
  /** 1 for the first attempt. */
  readonly attempt: number;
}

/** What `#classify` reads of a complete response. */
interface ClassifyOptions<T> {
  readonly spec: RequestSpec<T>;
  readonly at: RequestAt;
  readonly secrets: readonly string[];
  readonly status: number;
  readonly retryAfter: string | null;
  readonly text: string;
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

/** A complete response: its status, its `Retry-After` and its whole body as text. */
interface Exchange {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly text: string;
}

/** What an attempt learnt before it failed: the status, when the head had arrived, and whether it timed out. */
interface Progress {
  status: number | undefined;
  timedOut: boolean;
}

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
]);
/** Failures that happen before the request reached the server. */
const NOT_SENT_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
const NOT_PROCESSED_STATUSES = new Set([408, 429, 503]);

/** Header values must be printable ASCII: a key with anything else is refused before it is sent. */
const VALID_KEY = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Content codings the transport asks for, as `fetch` did (which also decodes br; so does `decoded`). */
const ACCEPT_ENCODING = 'gzip, deflate';

/**
 * How long an idle keep-alive connection is kept (as `fetch`'s pool did); a server's shorter `Keep-Alive: timeout`
 * hint wins. A connection kept longer than the server keeps it would fail the next request sent on it.
 */
const IDLE_CONNECTION_MS = 4_000;

/**
 * Sends BigState requests with `node:http` / `node:https`, at most `maxConnections` at a time.
 *
 * HTTP/1.1 without pipelining carries one request per connection at a time, so capping the requests in flight caps
 * the connections in use; the transport's own keep-alive Agent (never more than `maxConnections` sockets) keeps
 * them alive and hands idle ones to the next request.
 */
export class Transport {
  readonly #settings: TransportSettings;
  readonly #prefix: string;
  readonly #slots: Slots;
  readonly #agent: HttpAgent;
  readonly #send: typeof httpRequest;
  /** The host as `node:http` takes it: an IPv6 address without its brackets. */
  readonly #hostname: string;
  /** The port, or undefined for the protocol's own. */
  readonly #port: number | undefined;
  /** Attempts under way: waiting for a slot, sent, or reading their body. */
  #pending = 0;
  #closed = false;
  readonly #idle: Array<() => void> = [];

  constructor(settings: TransportSettings) {
    this.#settings = settings;
    this.#prefix = settings.baseUrl.pathname.replace(/\/+$/, '');
    this.#slots = new Slots(settings.maxConnections);
    const https = settings.baseUrl.protocol === 'https:';
    const agentOptions = {
      keepAlive: true,
      maxSockets: settings.maxConnections,
      // The most recently used idle connection first: the others age out when fewer are needed.
      scheduling: 'lifo',
      timeout: IDLE_CONNECTION_MS,
    } as const;
    // node:https verifies the server's certificate and name by default; nothing here turns that off.
    this.#agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.#send = https ? httpsRequest : httpRequest;
    const { hostname, port } = settings.baseUrl;
    this.#hostname = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    this.#port = port === '' ? undefined : Number(port);
  }

  /**
   * Resolves once the attempts under way (also those waiting for a connection) have finished, then closes the
   * idle keep-alive connections; later attempts fail with a NetworkError. (Idle connections never hold the process
   * open even before: the Agent unrefs them.)
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#pending > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    this.#agent.destroy();
  }

  /**
   * Sends a request until it succeeds, fails for good, or its retries or the caller's deadline are spent.
   * @throws BigStateError subclasses (see errors.ts), DeadlineExceededError once the deadline has ended;
   * BigStateConfigurationError when the key provider returns an unusable key; whatever the key provider throws.
   */
  async request<T>(spec: RequestSpec<T>): Promise<T | undefined> {
    const target = this.#target(spec);
    const at: RequestAt = {
      method: spec.method,
      path: this.displayPath(spec.path, spec.query, spec.secretQuery),
    };
    const deadline = spec.deadline;
    const deadlineError = (attempts: number) =>
      new DeadlineExceededError({ ...at, attempts, cause: deadline?.signal.reason });
    const tokens = spec.query.filter(([name]) => spec.secretQuery?.includes(name)).map(([, value]) => value);
    if (deadline?.expired) throw deadlineError(0);
    let key = await this.#readKey(false, deadline?.signal);
    let refreshed = false;
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#attempt({ spec, target, at, key, secrets: [key, ...tokens], attempt });
      switch (outcome.kind) {
        case 'ok':
          return outcome.value;
        case 'deadline':
          throw deadlineError(attempt);
        case 'fatal':
          throw outcome.error(attempt);
        case 'unauthorized': {
          if (refreshed)
            throw new UnauthorizedError({ ...at, attempts: attempt }, 'the API key was refused again');
          refreshed = true;
          key = await this.#rotatedKey(key, at, attempt, deadline?.signal);
          continue;
        }
        case 'transient': {
          failures += 1;
          const error = outcome.error(attempt);
          if (!spec.idempotent && !outcome.notProcessed) throw error;
          if (failures >= this.#settings.retry.maxAttempts) throw error;
          if (deadline?.expired) throw deadlineError(attempt);
          const delay = this.#delay(failures, outcome.retryAfterMs);
          const remaining = deadline?.remainingMs() ?? Number.POSITIVE_INFINITY;
          // Fail fast: sleeping into the deadline would only turn this error into a less telling one.
          if (delay === undefined || delay >= remaining) {
            this.#settings.logger?.warn('BigState request failed; the wait before a retry is too long', {
              ...at,
              attempts: attempt,
              reason: outcome.reason,
              retryAfterMs: outcome.retryAfterMs,
              remainingMs: Number.isFinite(remaining) ? remaining : undefined,
            });
            throw error;
          }
          this.#settings.logger?.warn('BigState request failed; retrying', {
            ...at,
            attempts: attempt,
            reason: outcome.reason,
            delayMs: Math.round(delay),
          });
          try {
            await this.#settings.sleep(delay, deadline?.signal);
          } catch (sleepError) {
            if (deadline?.expired) throw deadlineError(attempt);
            throw sleepError;
          }
          if (deadline?.expired) throw deadlineError(attempt);
        }
      }
    }
  }

  /**
   * The key to try after a 401. Requests under way together all meet the same 401 of a rotation: when another one
   * has already re-read the key (the key source now holds a different key), that one is used instead of reading
   * the secret once more per request.
   * @throws UnauthorizedError when a fresh read returns the refused key again.
   */
  async #rotatedKey(
    refused: string,
    at: RequestAt,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const current = await this.#readKey(false, signal);
    if (current !== refused) return current;
    this.#settings.logger?.warn('BigState refused the API key; reading it again', {
      ...at,
      attempts: attempt,
    });
    const fresh = await this.#readKey(true, signal);
    if (fresh === refused) {
      throw new UnauthorizedError(
        { ...at, attempts: attempt },
        'the API key was refused and reading it again returned the same key',
      );
    }
    return fresh;
  }

  /** The wait before retry number `failures`, or undefined when `Retry-After` asks for longer than allowed. */
  #delay(failures: number, retryAfterMs: number | undefined): number | undefined {
    const { baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.#settings.retry;
    if (retryAfterMs !== undefined) return retryAfterMs > maxRetryAfterMs ? undefined : retryAfterMs;
    // Full jitter: spreads the retries of many clients hit by the same outage.
    return this.#settings.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (failures - 1));
  }

  /** The key from the provider, which gets the deadline's signal: a hung secret read ends with the run. */
  async #readKey(refresh: boolean, signal: AbortSignal | undefined): Promise<string> {
    const raw: unknown = await this.#settings.apiKey({ refresh, signal });
    const key = typeof raw === 'string' ? raw.trim() : '';
    if (!VALID_KEY.test(key)) {
      // Never echo the value: it is the secret.
      throw new BigStateConfigurationError(
        'apiKey',
        'the API key provider returned an empty key or one with characters an HTTP header cannot carry',
      );
    }
    return key;
  }

  /** One attempt: waits for a free connection slot (not counted against the timeout), then sends. */
  async #attempt<T>(options: AttemptOptions<T>): Promise<Attempt<T>> {
    const { at } = options;
    if (this.#closed) {
      return {
        kind: 'fatal',
        error: (attempts) => new NetworkError('the client was closed', { ...at, attempts }),
      };
    }
    this.#pending += 1;
    try {
      try {
        await this.#slots.acquire(options.spec.deadline?.signal);
      } catch {
        return { kind: 'deadline' };
      }
      try {
        return await this.#sendOnce(options);
      } finally {
        // A complete exchange settles only once its request has closed, when node:http has already given the socket
        // back to the Agent: the next request that takes this slot reuses it.
        this.#slots.release();
      }
    } finally {
      this.#pending -= 1;
      if (this.#pending === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #sendOnce<T>({ spec, target, at, key, secrets, attempt }: AttemptOptions<T>): Promise<Attempt<T>> {
    const timeoutMs = this.#settings.requestTimeoutMs;
    const deadline = spec.deadline;
    const started = performance.now();
    const progress: Progress = { status: undefined, timedOut: false };
    try {
      const { status, retryAfter, text } = await this.#exchange(spec.method, target, key, deadline, progress);
      this.#settings.logger?.debug('BigState response', {
        ...at,
        status,
        attempt,
        durationMs: Math.round(performance.now() - started),
      });
      return this.#classify({ spec, at, secrets, status, retryAfter, text });
    } catch (error) {
      const { status } = progress;
      if (deadline?.expired) return { kind: 'deadline' };
      if (progress.timedOut) {
        const cause: unknown = error;
        return {
          kind: 'transient',
          notProcessed: false,
          reason: `timeout after ${timeoutMs} ms`,
          error: (attempts) => new RequestTimeoutError(timeoutMs, { ...at, status, attempts, cause }),
        };
      }
      const code = errorCode(error);
      const detail = serverText(
        `${describeCause(error)}${code === undefined ? '' : ` (${code})`}`,
        secrets,
        'the error',
      );
      const cause = redactedCopy(error, secrets);
      const make = (attempts: number) => new NetworkError(detail, { ...at, status, attempts, cause });
      if (code === undefined || !TRANSIENT_NETWORK_CODES.has(code)) return { kind: 'fatal', error: make };
      return {
        kind: 'transient',
        notProcessed: NOT_SENT_NETWORK_CODES.has(code),
        reason: detail,
        error: make,
      };
    }
  }

  /**
   * Sends one request and reads its whole response. Settles once the body has ended and the request has closed
   * (node:http has then given the socket back to the Agent), or at the first failure: an error of the connection
   * or the parser, a connection closed before the body was complete, the attempt's timeout (it starts only now, so
   * the wait for a free slot does not count against it, and runs until the whole body has arrived) or the caller's
   * deadline. The socket of a failed exchange is destroyed, never reused.
   * @throws the socket's or the parser's error; the deadline's reason; a TimeoutError (`progress.timedOut` set).
   */
  #exchange(
    method: RequestSpec<unknown>['method'],
    path: string,
    key: string,
    deadline: Deadline | undefined,
    progress: Progress,
  ): Promise<Exchange> {
    const signal = deadline?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const headers: OutgoingHttpHeaders = {
      'x-api-key': key,
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'Accept-Encoding': ACCEPT_ENCODING,
      'User-Agent': 'node',
    };
    // The empty sign-in body, said as such, as `fetch` sent it.
    if (method === 'POST') headers['Content-Length'] = '0';
    return new Promise<Exchange>((resolve, reject) => {
      let request: ClientRequest | undefined;
      let response: IncomingMessage | undefined;
      let retryAfter: string | null = null;
      let text = '';
      let bodyEnded = false;
      let closed = false;
      let settled = false;
      const settle = (error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) {
          // UTF-8 with a leading byte order mark dropped, as `fetch`'s `text()` read it.
          const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
          resolve({ status: progress.status ?? 0, retryAfter, text: body });
        } else {
          reject(error);
          // A connection that failed or timed out mid-exchange is never given to another request.
          request?.destroy();
        }
      };
      const onAbort = (): void => settle(signal?.reason);
      const timer = setTimeout(() => {
        progress.timedOut = true;
        settle(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
      }, this.#settings.requestTimeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        request = this.#send({
          agent: this.#agent,
          hostname: this.#hostname,
          port: this.#port,
          method,
          path,
          headers,
        });
      } catch (error) {
        settle(error);
        return;
      }
      request.on('response', (incoming) => {
        response = incoming;
        progress.status = incoming.statusCode;
        retryAfter = incoming.headers['retry-after'] ?? null;
        const body = decoded(incoming);
        if (body !== incoming) incoming.on('error', settle);
        body.setEncoding('utf8');
        body.on('data', (chunk: string) => {
          text += chunk;
        });
        body.on('error', settle);
        body.on('end', () => {
          bodyEnded = true;
          if (closed) settle();
        });
      });
      request.on('error', settle);
      request.on('close', () => {
        closed = true;
        if (bodyEnded) settle();
        // The connection ended before the response did (a body shorter than its Content-Length, a chunked body cut
        // off): a truncated transfer, worth another attempt. A complete body still being decoded settles when the
        // decoder ends.
        else if (response?.complete !== true) settle(connectionClosedEarly());
      });
      request.end();
    });
  }

  #classify<T>({ spec, at, secrets, status, retryAfter, text }: ClassifyOptions<T>): Attempt<T> {
    const details = (attempts: number): RequestErrorDetails => ({ ...at, status, attempts });
    if (status >= 200 && status <= 299) {
      if (spec.parse === undefined) return { kind: 'ok', value: undefined };
      try {
        return { kind: 'ok', value: spec.parse(parseJson(text)) };
      } catch (error) {
        // JSON.parse quotes a window of the body in its message, which could hold a fragment of an echoed key that
        // no redaction recognises: that error is not kept at all.
        const syntax = error instanceof SyntaxError;
        const detail = syntax
          ? 'the body is not complete JSON'
          : serverText(messageOf(error), secrets, 'the detail');
        const cause = syntax ? undefined : redactedCopy(error, secrets);
        // A garbled body is usually a cut-off transfer: worth another attempt.
        return {
          kind: 'transient',
          notProcessed: false,
          reason: `malformed body: ${detail}`,
          error: (attempts) => new ProtocolError(detail, { ...details(attempts), cause }),
        };
      }
    }
    if (status === 401) return { kind: 'unauthorized' };
    if (status === 403) return { kind: 'fatal', error: (attempts) => new ForbiddenError(details(attempts)) };
    if (status === 400) {
      const { code, desc } = bigStateErrorBody(text, secrets);
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

  /**
   * The path and query as sent. Query values are percent-encoded as the WHATWG URL parser left them for `fetch`:
   * `encodeURIComponent`, and `'` as `%27`.
   */
  #target(spec: RequestSpec<unknown>): string {
    const query = spec.query.map(([name, value]) => `${name}=${encodeQueryValue(value)}`).join('&');
    return `${this.#prefix}${spec.path}${query === '' ? '' : `?${query}`}`;
  }

  /**
   * The path and query as errors and logs show them: secret query values replaced by `REDACTED`, the whole cut at
   * MAX_DISPLAY_PATH characters with an ellipsis (a 20,000-character principal or key name must not make every
   * error, log line and notice about it 20 KB long: SNS and EventBridge refuse large messages).
   */
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
    return capPath(`${this.#prefix}${path}${shown === '' ? '' : `?${shown}`}`);
  }
}

function encodeQueryValue(value: string): string {
  const encoded = encodeURIComponent(value);
  return encoded.includes("'") ? encoded.replaceAll("'", '%27') : encoded;
}

/** The body as its content coding says: gzip, deflate or br decoded; any other coding as it arrived. */
function decoded(response: IncomingMessage): Readable {
  const coding = response.headers['content-encoding']?.trim().toLowerCase();
  const decoder =
    coding === 'gzip' || coding === 'x-gzip'
      ? createGunzip()
      : coding === 'deflate'
        ? createInflate()
        : coding === 'br'
          ? createBrotliDecompress()
          : undefined;
  if (decoder === undefined) return response;
  response.pipe(decoder);
  return decoder;
}

/** The connection closed before the whole response arrived: reset, as far as a retry is concerned. */
function connectionClosedEarly(): Error {
  return Object.assign(new Error('the connection closed before the response was complete'), {
    code: 'ECONNRESET',
  });
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
 * Reads `Retry-After` (RFC 9110 §10.2.3) as milliseconds from `now`: delta-seconds (digits only) or an HTTP-date
 * (see parseHttpDate). Undefined when absent or unreadable, which falls back to the normal backoff: a value
 * guessed at (`soon 10`, a date without its zone) could make the client wait far too long, or not at all.
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = parseHttpDate(trimmed, now);
  return at === undefined ? undefined : Math.max(0, at - now);
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const LONG_DAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY = `(?<day>${DAY_NAMES.join('|')})`;
const MONTH = `(?<month>${MONTH_NAMES.join('|')})`;
const TIME = String.raw`(?<hour>\d{2}):(?<minute>\d{2}):(?<second>\d{2})`;
/** `Sun, 06 Nov 1994 08:49:37 GMT`, the format senders must use. */
const IMF_FIXDATE = new RegExp(String.raw`^${DAY}, (?<date>\d{2}) ${MONTH} (?<year>\d{4}) ${TIME} GMT$`);
/** `Sunday, 06-Nov-94 08:49:37 GMT` (obsolete RFC 850 format). */
const RFC850_DATE = new RegExp(
  String.raw`^(?<day>${LONG_DAY_NAMES.join('|')}), (?<date>\d{2})-${MONTH}-(?<year>\d{2}) ${TIME} GMT$`,
);
/** `Sun Nov  6 08:49:37 1994` (obsolete asctime format, always GMT). */
const ASCTIME_DATE = new RegExp(String.raw`^${DAY} ${MONTH} (?<date>\d{2}| \d) ${TIME} (?<year>\d{4})$`);

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7) strictly, as epoch milliseconds: the IMF-fixdate, and the two obsolete
 * formats recipients must still accept, exactly as written there (names case-sensitive, GMT only, the day name
 * matching the date). Undefined for anything else, e.g. a date without `GMT` or with another zone. `now` (epoch
 * milliseconds) places an RFC 850 two-digit year in its century.
 */
export function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  const groups = (IMF_FIXDATE.exec(text) ?? RFC850_DATE.exec(text) ?? ASCTIME_DATE.exec(text))?.groups;
  if (groups === undefined) return undefined;
  const { day = '', month = '', year = '' } = groups;
  const [date, hour, minute, second] = [groups.date, groups.hour, groups.minute, groups.second].map(Number);
  if (date === undefined || hour === undefined || minute === undefined || second === undefined)
    return undefined;
  let fullYear = Number(year);
  if (year.length === 2) {
    // RFC 9110: a two-digit year more than 50 years ahead is the latest past year with those digits.
    const thisYear = new Date(now).getUTCFullYear();
    fullYear += thisYear - (thisYear % 100);
    if (fullYear > thisYear + 50) fullYear -= 100;
  }
  // Second 60 is a leap second, which RFC 9110 allows: it counts as the start of the next minute.
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const monthIndex = MONTH_NAMES.indexOf(month);
  const time = new Date(0);
  // setUTCFullYear rather than Date.UTC, which reads the years 0 to 99 as 1900 to 1999.
  time.setUTCFullYear(fullYear, monthIndex, date);
  time.setUTCHours(hour, minute, 0, 0);
  // An out-of-range day rolls over into the next month (31 Nov is 1 Dec): it shows as a different day.
  const dayNames = day.length === 3 ? DAY_NAMES : LONG_DAY_NAMES;
  if (time.getUTCDate() !== date || time.getUTCMonth() !== monthIndex || dayNames[time.getUTCDay()] !== day) {
    return undefined;
  }
  return time.getTime() + second * 1000;
}

/** Longest request path (with its query) errors and logs show; a longer one ends with `…`. */
export const MAX_DISPLAY_PATH = 500;

/** The path cut to MAX_DISPLAY_PATH characters, the last an ellipsis, never inside a `%XX` escape. */
function capPath(path: string): string {
  if (path.length <= MAX_DISPLAY_PATH) return path;
  let end = MAX_DISPLAY_PATH - 1;
  const percent = path.lastIndexOf('%', end - 1);
  if (percent >= end - 2) end = percent;
  const last = path.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${path.slice(0, end)}…`;
}

/**
 * A text the server supplied, as an error may show it: withheld as a whole when it echoes the key (always the
 * first secret) or a token in any form `echoesSecret` recognises, e.g. `(description withheld: it echoed the API
 * key)` for `what` = `description`; otherwise redacted and capped at `maxLength` characters.
 */
function serverText(text: string, secrets: readonly string[], what: string, maxLength = 300): string {
  return withholdOrRedact(text, secrets, {
    maxLength,
    withheld: (window) =>
      `(${what} withheld: it echoed ${echoesSecret(window, secrets.slice(0, 1)) ? 'the API key' : 'a token'})`,
  });
}

/**
 * BigState's `{ error, desc }`. A server that echoes the request could put the key or a token in `desc`, in any
 * encoding: such a `desc` is withheld as a whole (`(description withheld: it echoed the API key)`); any other is
 * redacted as a safety net and capped (it is evidence, not a payload to pass on).
 */
function bigStateErrorBody(
  text: string,
  secrets: readonly string[],
): { code: number | undefined; desc: string | undefined } {
  try {
    const body: unknown = JSON.parse(text);
    if (typeof body !== 'object' || body === null) return { code: undefined, desc: undefined };
    const { error, desc } = body as Record<string, unknown>;
    return {
      code: typeof error === 'number' && Number.isFinite(error) ? error : undefined,
      desc: typeof desc === 'string' ? serverText(desc, secrets, 'description') : undefined,
    };
  } catch {
    return { code: undefined, desc: undefined };
  }
}

/**
 * A copy of an error chain that keeps what diagnoses a failure (name, message, `code`), each message withheld when
 * it echoes a secret and redacted otherwise, and drops everything else: node:http's parser errors carry the raw
 * response bytes (`rawPacket`), which a server that echoes the request could fill with the key. An AggregateError
 * (every address of a host refused) keeps its first error as its cause.
 */
function redactedCopy(error: unknown, secrets: readonly string[], depth = 0): Error {
  const message = messageOf(error);
  const copy = new Error(serverText(message, secrets, 'the message', 1_000));
  if (!(error instanceof Error)) return copy;
  copy.name = error.name;
  if (error.stack !== undefined) {
    // V8's stack starts with `name: message`, shown again below as the copy's own; the frames are checked alone.
    const header = message === '' ? error.name : `${error.name}: ${message}`;
    const frames = error.stack.startsWith(header) ? error.stack.slice(header.length) : `\n${error.stack}`;
    const shownFrames = withholdOrRedact(frames, secrets, {
      maxLength: 4_000,
      withheld: '\n    (the rest of the stack withheld: it echoed a secret)',
    });
    copy.stack = `${copy.name}: ${copy.message}${shownFrames}`;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') Object.assign(copy, { code });
  const inner = error.cause ?? firstAggregated(error);
  if (inner !== undefined && depth < 4) copy.cause = redactedCopy(inner, secrets, depth + 1);
  return copy;
}

/** The first error of an AggregateError (node:net's when every address of a host failed), else undefined. */
function firstAggregated(error: unknown): unknown {
  return error instanceof AggregateError ? (error.errors as unknown[])[0] : undefined;
}

/** The first `code` on the error or its causes (node:http gives it on the error itself: `ECONNRESET`). */
function errorCode(error: unknown): string | undefined {
  for (const link of causeChain(error)) {
    const code = (link as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The innermost message (an AggregateError has none of its own: its first error's is taken). */
function describeCause(error: unknown): string {
  let current: unknown = error;
  let message = messageOf(error);
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    message = current.message || message;
    current = current.cause ?? firstAggregated(current);
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
