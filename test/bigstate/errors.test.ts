import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  BadRequestError,
  BigStateConfigurationError,
  BigStateError,
  CursorLoopError,
  DeadlineExceededError,
  ForbiddenError,
  HttpStatusError,
  isRetryable,
  isRetryableStatus,
  NetworkError,
  ProtocolError,
  RequestTimeoutError,
  TooManyPagesError,
  UnauthorizedError,
} from '../../functions/bigstate/errors.js';
import { InterruptedError, TimeBudgetError } from '../../functions/commons/errors.js';

const at = { method: 'GET', path: '/v1/apikey/match?principal=p&next=0' };

describe('error messages', () => {
  it.each<{ error: Error; name: string; message: string }>([
    {
      error: new BigStateConfigurationError('retry.baseDelayMs', 'must be a non-negative number; got -1'),
      name: 'BigStateConfigurationError',
      message: "BigState client option 'retry.baseDelayMs': must be a non-negative number; got -1",
    },
    {
      error: new BigStateError('something odd', at),
      name: 'BigStateError',
      message: 'BigState GET /v1/apikey/match?principal=p&next=0: something odd',
    },
    {
      error: new UnauthorizedError({ ...at, attempts: 2 }),
      name: 'UnauthorizedError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 401: the API key was refused ' +
        '(401 Unauthorized) (after 2 attempts)',
    },
    {
      error: new ForbiddenError({ ...at, attempts: 1 }),
      name: 'ForbiddenError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 403: access denied (403 Forbidden): ' +
        'the API key may not perform this operation (after 1 attempt)',
    },
    {
      error: new BadRequestError(at, undefined, undefined),
      name: 'BadRequestError',
      message: 'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 400: bad request (400)',
    },
    {
      error: new BadRequestError(at, 6, undefined),
      name: 'BadRequestError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 400: bad request (400): BigState error 6',
    },
    {
      error: new BadRequestError(at, undefined, 'Invalid request'),
      name: 'BadRequestError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 400: bad request (400): ' +
        'BigState error ? "Invalid request"',
    },
    {
      error: new HttpStatusError({ ...at, status: 502, attempts: 5 }),
      name: 'HttpStatusError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 502: unexpected HTTP status 502 (after 5 attempts)',
    },
    {
      error: new ProtocolError('the body is not complete JSON', { ...at, status: 200 }),
      name: 'ProtocolError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0 -> HTTP 200: malformed response: ' +
        'the body is not complete JSON',
    },
    {
      error: new NetworkError('other side closed', at),
      name: 'NetworkError',
      message: 'BigState GET /v1/apikey/match?principal=p&next=0: network error: other side closed',
    },
    {
      error: new RequestTimeoutError(250, { ...at, attempts: 3 }),
      name: 'RequestTimeoutError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0: no complete response within 250 ms (after 3 attempts)',
    },
    {
      error: new CursorLoopError('7', at),
      name: 'CursorLoopError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0: the server returned cursor 7 a second time in one ' +
        'walk (a pagination loop)',
    },
    {
      error: new TooManyPagesError(3, at),
      name: 'TooManyPagesError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0: the walk read 3 pages (the limit) and the server ' +
        'still returned a next cursor',
    },
    {
      error: new DeadlineExceededError({ ...at, attempts: 0 }),
      name: 'DeadlineExceededError',
      message:
        "BigState GET /v1/apikey/match?principal=p&next=0: deadline exceeded: the caller's deadline ended the " +
        'request (after 0 attempts)',
    },
    {
      error: new DeadlineExceededError({
        ...at,
        attempts: 2,
        cause: new TimeBudgetError('the time budget ended'),
      }),
      name: 'DeadlineExceededError',
      message:
        "BigState GET /v1/apikey/match?principal=p&next=0: deadline exceeded: the caller's deadline ended the " +
        'request (after 2 attempts)',
    },
    {
      error: new DeadlineExceededError({ ...at, attempts: 1, cause: new InterruptedError() }),
      name: 'DeadlineExceededError',
      message:
        'BigState GET /v1/apikey/match?principal=p&next=0: interrupted: the caller stopped the request ' +
        '(after 1 attempt)',
    },
  ])('$name: $message', ({ error, name, message }) => {
    expect(error.name).toBe(name);
    expect(error.message).toBe(message);
    expect(String(error)).toBe(`${name}: ${message}`);
  });

  it('tells an interruption from a deadline by the abort reason, also one wrapped in another error', () => {
    const interrupted = new InterruptedError('interrupted (Ctrl-C)');
    expect(new DeadlineExceededError({ ...at, cause: interrupted })).toMatchObject({
      interrupted: true,
      cause: interrupted,
    });
    const wrapped = new Error('stopped', { cause: interrupted });
    expect(new DeadlineExceededError({ ...at, cause: wrapped }).interrupted).toBe(true);
    for (const cause of [undefined, new TimeBudgetError('spent'), new Error('interrupted'), 'interrupted']) {
      const error = new DeadlineExceededError({ ...at, cause });
      expect(error.interrupted).toBe(false);
      expect(error.message).toContain('deadline exceeded');
    }
  });

  it('keeps the cause when there is one, and shows none when there is not', () => {
    const cause = new Error('socket hang up');
    expect(new NetworkError('reset', { ...at, cause }).cause).toBe(cause);
    const plain = new HttpStatusError({ ...at, status: 500 });
    expect(inspect(plain)).not.toContain('[cause]');
  });
});

describe('retryable statuses and errors', () => {
  it.each([
    [408, true],
    [429, true],
    [500, true],
    [599, true],
    [400, false],
    [404, false],
    [499, false],
    [600, false],
  ])('status %i is retryable: %s', (status, retryable) => {
    expect(isRetryableStatus(status)).toBe(retryable);
  });

  it('classifies only BigState errors, whatever status another error carries', () => {
    expect(isRetryable(new HttpStatusError({ ...at, status: 599 }))).toBe(true);
    expect(isRetryable(new HttpStatusError({ ...at, status: 600 }))).toBe(false);
    expect(isRetryable(new NetworkError('reset', at))).toBe(true);
    expect(isRetryable(new ProtocolError('cut off', at))).toBe(true);
    expect(isRetryable(new BadRequestError(at, 6, 'Invalid request'))).toBe(false);
    expect(isRetryable(new ForbiddenError(at))).toBe(false);
    expect(isRetryable(new TooManyPagesError(3, at))).toBe(false);
    expect(isRetryable(new DeadlineExceededError(at))).toBe(false);
    expect(isRetryable(new BigStateError('odd', { ...at, status: 503 }))).toBe(false);
    expect(isRetryable(Object.assign(new Error('from another SDK'), { status: 503 }))).toBe(false);
    expect(isRetryable({ status: 503 })).toBe(false);
    expect(isRetryable(undefined)).toBe(false);
  });
});
