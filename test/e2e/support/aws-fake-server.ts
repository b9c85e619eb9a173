/**
 * The common machinery of the local AWS fakes: one `node:http` server on 127.0.0.1 (port 0) per service, a log
 * of every request it understood, a list of every request it did not, and failures injected on demand.
 */
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

/** The services the fakes speak for (the SigV4 signing names). */
export type AwsService = 's3' | 'secretsmanager' | 'sns' | 'events';

/** A request as the fake received it, before it knows which operation it is. */
export interface FakeRequest {
  readonly method: string;
  /** Path and query exactly as sent. */
  readonly url: string;
  /** The path, still percent-encoded. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Header names in lower case; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as received, before any decoding (`aws-chunked` included). */
  readonly body: Buffer;
}

/** What the fake answers. */
export interface FakeResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

/** A request the fake recognised as an operation it serves; what failure predicates are given. */
export interface CallInfo {
  readonly service: AwsService;
  /** The API operation, e.g. `PutObject`, `GetSecretValue`, `Publish`, `PutEvents`. */
  readonly operation: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The operation's parameters as the fake decoded them (S3: bucket, key and query; JSON: the document; SNS: the form). */
  readonly input: Readonly<Record<string, unknown>>;
  /** The region and access key of the SigV4 `Authorization` header, when there is one. */
  readonly signedRegion: string | undefined;
  readonly accessKeyId: string | undefined;
}

/** One understood request and how it was answered. */
export interface RecordedCall extends CallInfo {
  readonly body: Buffer;
  readonly receivedAt: Date;
  readonly status: number;
  /** The error code answered, if the answer was an error. */
  readonly errorCode: string | undefined;
  /** True when the answer came from `fail(...)` rather than from the fake's own behaviour. */
  readonly injected: boolean;
}

/** A request the fake does not serve (unknown operation, target, action, method or feature). */
export interface UnknownCall {
  readonly service: AwsService;
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body as UTF-8 text, cut at 4 KiB. */
  readonly body: string;
  /** Why the fake did not serve it. */
  readonly reason: string;
  /** The status it was answered with (400 or 501). */
  readonly status: number;
}

/**
 * Which calls an injected failure hits: the next `n` calls, every call (`'always'`), every call a predicate
 * picks, or the next `times` calls a predicate picks.
 */
export type FailureTrigger =
  | number
  | 'always'
  | ((call: CallInfo) => boolean)
  | { readonly times: number; readonly when: (call: CallInfo) => boolean };

/** How an injected failure answers. Unset fields take the service's own internal-error defaults. */
export interface FailureSpec {
  readonly status?: number;
  readonly code?: string;
  readonly message?: string;
  /** Destroy the connection without answering (the SDK sees a reset / socket hang-up) instead. */
  readonly reset?: boolean;
  /**
   * Hold the request this long, then serve it normally (the call takes effect) unless the client gave up and
   * closed the connection meanwhile (then it never takes effect). `Infinity`: never answer.
   */
  readonly delayMs?: number;
}

/** Thrown by an operation to answer with a service error; the fake renders it in the service's protocol. */
export class FakeServiceError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra response headers (e.g. `x-amz-delete-marker`). */
  readonly headers: Readonly<Record<string, string>>;
  /** Extra elements of an XML error (e.g. S3's `Key`, `Condition`). */
  readonly fields: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: string,
    message: string,
    extra: { readonly headers?: Record<string, string>; readonly fields?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'FakeServiceError';
    this.status = status;
    this.code = code;
    this.headers = extra.headers ?? {};
    this.fields = extra.fields ?? {};
  }
}

/** What `route` makes of a request: an operation to run, or a call the fake does not serve. */
export type Routed =
  | {
      readonly kind: 'operation';
      readonly operation: string;
      readonly input: Readonly<Record<string, unknown>>;
      readonly run: () => FakeResponse;
    }
  | { readonly kind: 'unknown'; readonly reason: string; readonly status: 400 | 501; readonly code: string };

interface FailureRule {
  remaining: number;
  readonly when: ((call: CallInfo) => boolean) | undefined;
  readonly spec: FailureSpec;
}

const credentialPattern = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/** Base of the fakes: owns the server, the logs and the failure rules; a subclass routes and answers. */
export abstract class AwsFakeServer {
  readonly service: AwsService;
  private readonly server: Server;
  private readonly recorded: RecordedCall[] = [];
  private readonly unknown: UnknownCall[] = [];
  private rules: FailureRule[] = [];
  /** Requests held by a `delayMs` rule, released (never served) when the server closes. */
  private readonly held = new Set<() => void>();
  private port = 0;

  protected constructor(service: AwsService) {
    this.service = service;
    this.server = createServer((req, res) => {
      this.onRequest(req, res).catch((error: unknown) => {
        // A fault of the fake itself must fail the test that met it: it is reported as an unknown call.
        this.unknown.push({
          service: this.service,
          method: req.method ?? '',
          url: req.url ?? '',
          headers: flattenHeaders(req.headers),
          body: '',
          reason: `fake failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
          status: 500,
        });
        if (!res.headersSent) {
          res.writeHead(500).end();
        } else {
          res.destroy();
        }
      });
    });
  }

  /** Starts listening on 127.0.0.1 on a free port. */
  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** The base URL to give the SDK (`endpoint` option or `AWS_ENDPOINT_URL_<SERVICE>`). */
  get endpoint(): string {
    if (this.port === 0) {
      throw new Error(`the ${this.service} fake is not listening yet`);
    }
    return `http://127.0.0.1:${this.port}`;
  }

  /** Every understood request, oldest first (each SDK attempt, retries included, is one call). */
  get requests(): readonly RecordedCall[] {
    return [...this.recorded];
  }

  /** The understood requests of one operation (or all), oldest first. */
  calls(operation?: string): RecordedCall[] {
    return this.recorded.filter((call) => operation === undefined || call.operation === operation);
  }

  /** Requests the fake did not serve; a test asserts this is empty. */
  get unknownCalls(): readonly UnknownCall[] {
    return [...this.unknown];
  }

  /**
   * Makes the calls picked by `trigger` fail with `spec` (default: the service's 500 internal error). Rules add
   * up and are checked in order. Remember that the SDK retries 5xx, throttling errors and resets (3 attempts by
   * default): `fail(1)` is absorbed by a retry, `fail('always')` reaches the caller.
   */
  fail(trigger: FailureTrigger = 'always', spec: FailureSpec = {}): this {
    if (typeof trigger === 'number') {
      this.rules.push({ remaining: trigger, when: undefined, spec });
    } else if (trigger === 'always') {
      this.rules.push({ remaining: Number.POSITIVE_INFINITY, when: undefined, spec });
    } else if (typeof trigger === 'function') {
      this.rules.push({ remaining: Number.POSITIVE_INFINITY, when: trigger, spec });
    } else {
      this.rules.push({ remaining: trigger.times, when: trigger.when, spec });
    }
    return this;
  }

  /** Drops every failure rule. */
  recover(): this {
    this.rules = [];
    return this;
  }

  /** Stops the server and drops its connections. */
  async close(): Promise<void> {
    for (const release of [...this.held]) release();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Decides which operation a request is, or that the fake does not serve it. */
  protected abstract route(request: FakeRequest): Routed;

  /** Renders a service error in the service's protocol. */
  protected abstract errorResponse(request: FakeRequest, error: FakeServiceError): FakeResponse;

  /** The error an injected failure answers with when its spec leaves fields unset. */
  protected abstract defaultFailure(): { status: number; code: string; message: string };

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) {
      chunks.push(chunk as Buffer);
    }
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      url,
      path: queryAt === -1 ? url : url.slice(0, queryAt),
      query: new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1)),
      headers: flattenHeaders(req.headers),
      body: Buffer.concat(chunks),
    };

    const routed = this.route(request);
    if (routed.kind === 'unknown') {
      this.unknown.push({
        service: this.service,
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body.subarray(0, 4096).toString('utf8'),
        reason: routed.reason,
        status: routed.status,
      });
      send(
        res,
        request,
        this.errorResponse(request, new FakeServiceError(routed.status, routed.code, routed.reason)),
      );
      return;
    }

    const credential = credentialPattern.exec(request.headers.authorization ?? '');
    const info: CallInfo = {
      service: this.service,
      operation: routed.operation,
      method: request.method,
      url: request.url,
      headers: request.headers,
      input: routed.input,
      accessKeyId: credential?.[1],
      signedRegion: credential?.[2],
    };
    const record = (status: number, errorCode: string | undefined, injected: boolean): void => {
      this.recorded.push({
        ...info,
        body: request.body,
        receivedAt: new Date(),
        status,
        errorCode,
        injected,
      });
    };

    const rule = this.takeRule(info);
    if (rule !== undefined && rule.spec.delayMs !== undefined) {
      const served = await this.hold(req, rule.spec.delayMs);
      if (!served) {
        record(0, 'ClientGaveUp', true);
        return;
      }
    } else if (rule !== undefined) {
      if (rule.spec.reset === true) {
        record(0, 'ConnectionReset', true);
        req.socket.destroy();
        return;
      }
      const fallback = this.defaultFailure();
      const error = new FakeServiceError(
        rule.spec.status ?? fallback.status,
        rule.spec.code ?? fallback.code,
        rule.spec.message ?? fallback.message,
      );
      record(error.status, error.code, true);
      send(res, request, this.errorResponse(request, error));
      return;
    }

    let response: FakeResponse;
    let errorCode: string | undefined;
    try {
      response = routed.run();
    } catch (error) {
      if (!(error instanceof FakeServiceError)) {
        throw error;
      }
      errorCode = error.code;
      response = this.errorResponse(request, error);
    }
    record(response.status, errorCode, false);
    send(res, request, response);
  }

  /** Waits `ms` or until the client closes the connection; true when the request should still be served. */
  private hold(req: IncomingMessage, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done(true), ms) : undefined;
      const done = (served: boolean) => {
        if (timer !== undefined) clearTimeout(timer);
        req.socket.off('close', onClose);
        this.held.delete(onClose);
        resolve(served);
      };
      const onClose = () => done(false);
      this.held.add(onClose);
      req.socket.once('close', onClose);
    });
  }

  private takeRule(info: CallInfo): FailureRule | undefined {
    const rule = this.rules.find((candidate) => candidate.remaining > 0 && (candidate.when?.(info) ?? true));
    if (rule !== undefined) {
      rule.remaining -= 1;
    }
    return rule;
  }
}

function send(res: ServerResponse, request: FakeRequest, response: FakeResponse): void {
  const body =
    request.method === 'HEAD' || response.body === undefined ? undefined : Buffer.from(response.body);
  const headers: Record<string, string> = { ...response.headers };
  if (request.method === 'HEAD') {
    // HEAD answers carry the length of the body a GET would have sent, and no body.
    headers['content-length'] ??= '0';
  } else {
    headers['content-length'] = String(body?.length ?? 0);
  }
  res.writeHead(response.status, headers);
  res.end(body);
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) {
      flat[name] = Array.isArray(value) ? value.join(', ') : value;
    }
  }
  return flat;
}

/** A fresh request id, as AWS puts in `x-amz-request-id` / `x-amzn-RequestId`. */
export function newRequestId(): string {
  return randomUUID();
}

/** Escapes text for an XML element or attribute. */
export function xmlEscape(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/** Answers a JSON 1.1 error (`{"__type": code, "message": ...}`), the shape Secrets Manager and EventBridge use. */
export function jsonErrorResponse(error: FakeServiceError): FakeResponse {
  return {
    status: error.status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-requestid': newRequestId(),
      'x-amzn-errortype': error.code,
      ...error.headers,
    },
    body: JSON.stringify({ __type: error.code, message: error.message }),
  };
}

/** Answers a JSON 1.1 success document. */
export function jsonResponse(document: unknown): FakeResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': newRequestId() },
    body: JSON.stringify(document),
  };
}

/**
 * Routes a JSON 1.1 request (`POST /`, `X-Amz-Target: <prefix>.<Operation>`) to one of `operations`; anything
 * else is an unknown call answered like AWS answers an unknown target.
 */
export function routeJson11(
  request: FakeRequest,
  targetPrefix: string,
  operations: Readonly<Record<string, (input: Record<string, unknown>) => FakeResponse>>,
): Routed {
  const target = request.headers['x-amz-target'] ?? '';
  if (request.method !== 'POST' || request.path !== '/') {
    return {
      kind: 'unknown',
      reason: `${request.method} ${request.path} is not a JSON 1.1 call`,
      status: 400,
      code: 'UnknownOperationException',
    };
  }
  if (!(request.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.1')) {
    return {
      kind: 'unknown',
      reason: `content-type ${request.headers['content-type'] ?? '(none)'} is not application/x-amz-json-1.1`,
      status: 400,
      code: 'UnknownOperationException',
    };
  }
  const operation = target.startsWith(`${targetPrefix}.`) ? target.slice(targetPrefix.length + 1) : undefined;
  const handler = operation === undefined ? undefined : operations[operation];
  if (operation === undefined || handler === undefined) {
    return {
      kind: 'unknown',
      reason: `unknown X-Amz-Target ${target || '(none)'}`,
      status: 400,
      code: 'UnknownOperationException',
    };
  }
  let input: unknown;
  try {
    input = request.body.length === 0 ? {} : JSON.parse(request.body.toString('utf8'));
  } catch {
    return {
      kind: 'unknown',
      reason: `${operation}: body is not JSON`,
      status: 400,
      code: 'SerializationException',
    };
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return {
      kind: 'unknown',
      reason: `${operation}: body is not a JSON object`,
      status: 400,
      code: 'SerializationException',
    };
  }
  const document = input as Record<string, unknown>;
  return { kind: 'operation', operation, input: document, run: () => handler(document) };
}
