/**
 * The BigState client's error family. Every request error names the method, the path with its query (principal
 * names are data, not secrets; a token value is redacted) and the HTTP status when there is one, and keeps the
 * underlying `cause`. None of them ever holds the API key.
 *
 * Every name starts with the package's (`BigState...`) or is unique in the project: error names reach
 * EventBridge events and logs, where two different `ConfigurationError`s could not be told apart.
 */
import { isInterruption } from '../commons/deadline.js';

/** Where a request error happened: what was sent, what came back, how often it was tried. */
export interface RequestErrorDetails {
  readonly method: string;
  /** Path and query as sent, relative to the host (token values redacted). */
  readonly path: string;
  readonly status?: number | undefined;
  /** How many times the request was sent before giving up. */
  readonly attempts?: number | undefined;
  readonly cause?: unknown;
}

/**
 * A client option (or the API key the provider returned) is unusable; raised before any request is sent. Not the
 * audit's own `ConfigurationError` (functions/commons/errors.ts), which names an environment variable or a flag.
 */
export class BigStateConfigurationError extends Error {
  /** The option at fault, e.g. `host` or `apiKey`. */
  readonly option: string;

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(`BigState client option '${option}': ${message}`, options);
    this.name = 'BigStateConfigurationError';
    this.option = option;
  }
}

/** Base class of every error a BigState request or walk raises. */
export class BigStateError extends Error {
  readonly method: string;
  readonly path: string;
  readonly status: number | undefined;
  readonly attempts: number | undefined;

  constructor(detail: string, details: RequestErrorDetails) {
    super(formatMessage(detail, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'BigStateError';
    this.method = details.method;
    this.path = details.path;
    this.status = details.status;
    this.attempts = details.attempts;
  }
}

/** 401: the API key was refused, also after one fresh read of the key. */
export class UnauthorizedError extends BigStateError {
  constructor(details: RequestErrorDetails, detail = 'the API key was refused (401 Unauthorized)') {
    super(detail, { ...details, status: 401 });
    this.name = 'UnauthorizedError';
  }
}

/** 403: the key may not read this principal or resource. */
export class ForbiddenError extends BigStateError {
  constructor(details: RequestErrorDetails) {
    super('access denied (403 Forbidden): the API key may not perform this operation', {
      ...details,
      status: 403,
    });
    this.name = 'ForbiddenError';
  }
}

/** 400: BigState rejected the request; `code` and `desc` are BigState's `{ error, desc }` when the body had them. */
export class BadRequestError extends BigStateError {
  /** BigState's numeric error code (`error` in the body), e.g. 6 for "Invalid request". */
  readonly code: number | undefined;
  /**
   * BigState's description of the error (`desc` in the body), capped at 300 characters; or, when it echoed the
   * API key or a token in any recognisable form, `(description withheld: it echoed the API key)` (or `a token`).
   */
  readonly desc: string | undefined;

  constructor(details: RequestErrorDetails, code: number | undefined, desc: string | undefined) {
    const what =
      code === undefined && desc === undefined
        ? 'bad request (400)'
        : `bad request (400): BigState error ${code ?? '?'}${desc === undefined ? '' : ` "${desc}"`}`;
    super(what, { ...details, status: 400 });
    this.name = 'BadRequestError';
    this.code = code;
    this.desc = desc;
  }
}

/** Any other unexpected HTTP status (429/5xx once retries are spent, 404 where a resource must exist, 3xx...). */
export class HttpStatusError extends BigStateError {
  constructor(details: RequestErrorDetails & { readonly status: number }) {
    super(`unexpected HTTP status ${details.status}`, details);
    this.name = 'HttpStatusError';
  }
}

/** The response body is not what the API documents (not JSON, truncated, or the wrong shape). */
export class ProtocolError extends BigStateError {
  constructor(detail: string, details: RequestErrorDetails) {
    super(`malformed response: ${detail}`, details);
    this.name = 'ProtocolError';
  }
}

/** The connection failed (refused, reset, closed early) on every attempt. */
export class NetworkError extends BigStateError {
  constructor(detail: string, details: RequestErrorDetails) {
    super(`network error: ${detail}`, details);
    this.name = 'NetworkError';
  }
}

/** No complete response arrived within the per-attempt timeout, on every attempt. */
export class RequestTimeoutError extends BigStateError {
  /** The per-attempt timeout that was exceeded. */
  readonly timeoutMs: number;

  constructor(timeoutMs: number, details: RequestErrorDetails) {
    super(`no complete response within ${timeoutMs} ms`, details);
    this.name = 'RequestTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** The server returned a cursor it had already returned in the same walk: following it would loop forever. */
export class CursorLoopError extends BigStateError {
  /** The repeated cursor, as its decimal text. */
  readonly cursor: string;

  constructor(cursor: string, details: RequestErrorDetails) {
    super(`the server returned cursor ${cursor} a second time in one walk (a pagination loop)`, details);
    this.name = 'CursorLoopError';
    this.cursor = cursor;
  }
}

/** A walk read its page limit and the server still announced another page. */
export class TooManyPagesError extends BigStateError {
  readonly maxPages: number;

  constructor(maxPages: number, details: RequestErrorDetails) {
    super(`the walk read ${maxPages} pages (the limit) and the server still returned a next cursor`, details);
    this.name = 'TooManyPagesError';
    this.maxPages = maxPages;
  }
}

/**
 * The caller's deadline ended the request, the wait for a connection or the back-off wait: its time ran out, or
 * the caller interrupted (Ctrl-C). `cause` is the deadline's abort reason, which tells the two apart.
 */
export class DeadlineExceededError extends BigStateError {
  /** True when the caller interrupted (the reason is an InterruptedError) rather than the time running out. */
  readonly interrupted: boolean;

  constructor(details: RequestErrorDetails) {
    const interrupted = isInterruption(details.cause);
    super(
      interrupted
        ? 'interrupted: the caller stopped the request'
        : "deadline exceeded: the caller's deadline ended the request",
      details,
    );
    this.name = 'DeadlineExceededError';
    this.interrupted = interrupted;
  }
}

/** Whether an HTTP status is transient (408, 429, 5xx) and worth retrying. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

/**
 * Whether an error is transient, i.e. the same request may succeed later: network failures, timeouts, malformed
 * bodies and 408/429/5xx. 400/401/403/404, cursor loops, page limits and deadlines are not.
 */
export function isRetryable(error: unknown): boolean {
  if (
    error instanceof NetworkError ||
    error instanceof RequestTimeoutError ||
    error instanceof ProtocolError
  ) {
    return true;
  }
  return error instanceof HttpStatusError && error.status !== undefined && isRetryableStatus(error.status);
}

function formatMessage(detail: string, details: RequestErrorDetails): string {
  const status = details.status === undefined ? '' : ` -> HTTP ${details.status}`;
  const attempts =
    details.attempts === undefined
      ? ''
      : ` (after ${details.attempts} attempt${details.attempts === 1 ? '' : 's'})`;
  return `BigState ${details.method} ${details.path}${status}: ${detail}${attempts}`;
}
