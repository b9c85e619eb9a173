/**
 * The child side of the Lambda runner: plays Lambda's Node.js 24 runtime for one bundled handler. It loads the
 * handler from `LAMBDA_TASK_ROOT` / `_HANDLER` as the runtime interface client does, patches `console` the way
 * Lambda does, and serves invocations sent over the IPC channel one at a time.
 *
 * The runner compiles this file to plain JavaScript and runs it with `node`: it must import nothing but Node's
 * built-ins (anything else would not resolve from the runtime folder, by design).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format, types } from 'node:util';
import type { ChildMessage, LambdaErrorPayload, ParentMessage } from './lambda-protocol.js';

type Handler = (event: unknown, context: unknown) => unknown;

const requireHere = createRequire(import.meta.url);
const streamingSymbol = Symbol.for('aws.lambda.runtime.handler.streaming');

// Lambda's runtime interface client names its own errors `Runtime.<Class>`.
class RuntimeError extends Error {
  constructor(kind: string, message: string) {
    super(message);
    this.name = `Runtime.${kind}`;
  }
}

// ---- Output: track whether each stream ends a line, so a marker line can be written on a line of its own.

const atLineStart = { stdout: true, stderr: true };

function trackLineStarts(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr'): void {
  const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (typeof chunk === 'string' && chunk.length > 0) {
      atLineStart[name] = chunk.endsWith('\n');
    } else if (chunk instanceof Uint8Array && chunk.length > 0) {
      atLineStart[name] = chunk[chunk.length - 1] === 0x0a;
    }
    return original(chunk, ...rest);
  }) as typeof stream.write;
}

function writeMarker(stream: NodeJS.WriteStream, name: 'stdout' | 'stderr', marker: string): Promise<void> {
  return new Promise((done) => {
    stream.write(`${atLineStart[name] ? '' : '\n'}${marker}\n`, () => done());
  });
}

async function writeMarkers(marker: string): Promise<void> {
  await Promise.all([
    writeMarker(process.stdout, 'stdout', marker),
    writeMarker(process.stderr, 'stderr', marker),
  ]);
}

function send(message: ChildMessage): Promise<void> {
  return new Promise((done, fail) => {
    if (process.send === undefined) {
      fail(new Error('the Lambda bootstrap needs an IPC channel'));
      return;
    }
    process.send(message, undefined, undefined, (error: Error | null) => (error ? fail(error) : done()));
  });
}

// ---- Logging, as Lambda's runtime patches console (LogPatch.js): TEXT or JSON lines on stdout.

let currentRequestId: string | undefined;
const jsonFormat = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON';

function serializeForJson(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return {
      errorType: value.constructor?.name ?? 'UnknownError',
      errorMessage: value.message,
      stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
      ...value,
    };
  }
  return value;
}

function logLine(level: string, message: unknown, params: unknown[]): void {
  const time = new Date().toISOString();
  let line: string;
  if (jsonFormat) {
    const record: Record<string, unknown> = { timestamp: time, level, requestId: currentRequestId };
    if (params.length === 0) {
      record.message = message;
      try {
        line = JSON.stringify(record, serializeForJson);
      } catch {
        record.message = format(message);
        line = JSON.stringify(record);
      }
    } else {
      record.message = format(message, ...params);
      const error = [message, ...params].find((param): param is Error => param instanceof Error);
      if (error !== undefined) {
        record.errorType = error.constructor?.name ?? 'UnknownError';
        record.errorMessage = error.message;
        record.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
      }
      line = JSON.stringify(record);
    }
  } else {
    line = `${time}\t${currentRequestId}\t${level}\t${format(message, ...params)}`;
  }
  // One log event per call: Lambda turns newlines inside a message into carriage returns.
  process.stdout.write(`${line.replace(/\n/g, '\r')}\n`);
}

function patchConsole(): void {
  const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
  const threshold = Math.max(0, levels.indexOf(process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase() ?? 'TRACE'));
  const logger =
    (level: string) =>
    (message?: unknown, ...params: unknown[]): void => {
      if (levels.indexOf(level) >= threshold) {
        logLine(level, message, params);
      }
    };
  console.trace = logger('TRACE');
  console.debug = logger('DEBUG');
  console.info = logger('INFO');
  console.log = console.info;
  console.warn = logger('WARN');
  console.error = logger('ERROR');
  (console as unknown as Record<string, unknown>).fatal = logger('FATAL');
}

function withEnumerableProperties(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return {
      errorType: value.name,
      errorMessage: value.message,
      code: (value as { code?: unknown }).code,
      ...value,
      ...(typeof value.stack === 'string' ? { stack: value.stack.split('\n') } : {}),
    };
  }
  return value;
}

function logError(title: string, error: unknown): void {
  const asError = error instanceof Error ? error : new Error(String(error));
  if (jsonFormat) {
    console.error(asError);
    return;
  }
  let formatted: string;
  try {
    formatted = `\t${JSON.stringify(asError, withEnumerableProperties)}`;
  } catch {
    formatted = `\t${JSON.stringify(toErrorPayload(asError))}`;
  }
  console.error(title, formatted);
}

/** The error response Lambda's runtime builds (Errors.toRapidResponse). */
function toErrorPayload(error: unknown): LambdaErrorPayload {
  try {
    if (types.isNativeError(error) || looksLikeError(error)) {
      const value = error as Error;
      return {
        errorType: value.name.replaceAll('\x7F', '%7F'),
        errorMessage: value.message.replaceAll('\x7F', '%7F'),
        trace: (value.stack ?? '').replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function looksLikeError(value: unknown): boolean {
  const candidate = value as { name?: unknown; message?: unknown; stack?: unknown } | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.name === 'string' &&
    typeof candidate.message === 'string' &&
    typeof candidate.stack === 'string' &&
    candidate.name !== '' &&
    candidate.message !== ''
  );
}

// ---- Loading the handler, as UserFunction.js does.

function hasTypeModule(folder: string): boolean {
  if (folder.endsWith('/node_modules')) {
    return false;
  }
  const manifest = join(folder, 'package.json');
  if (existsSync(manifest)) {
    try {
      return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown }).type === 'module';
    } catch {
      return false;
    }
  }
  const parent = dirname(folder);
  return parent === folder ? false : hasTypeModule(parent);
}

async function loadModule(taskRoot: string, moduleRoot: string, moduleName: string): Promise<unknown> {
  const base = resolve(taskRoot, moduleRoot, moduleName);
  const requireFile = (file: string): unknown => (existsSync(file) ? requireHere(file) : undefined);
  const importFile = async (file: string): Promise<unknown> =>
    existsSync(file) ? await import(pathToFileURL(file).href) : undefined;

  const extensionless = requireFile(base);
  if (extensionless !== undefined) {
    return extensionless;
  }
  const esmJs = existsSync(`${base}.js`) && hasTypeModule(dirname(`${base}.js`));
  if (!esmJs) {
    const loaded = requireFile(`${base}.js`);
    if (loaded !== undefined) {
      return loaded;
    }
  }
  const loaded =
    (esmJs ? await importFile(`${base}.js`) : undefined) ??
    (await importFile(`${base}.mjs`)) ??
    requireFile(`${base}.cjs`);
  if (loaded !== undefined) {
    return loaded;
  }
  return requireHere(requireHere.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadHandler(): Promise<Handler> {
  const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const fullHandler = process.env._HANDLER ?? '';
  if (fullHandler.includes('..')) {
    throw new RuntimeError(
      'MalformedHandlerName',
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const moduleAndHandler = basename(fullHandler);
  const moduleRoot = fullHandler.slice(0, fullHandler.indexOf(moduleAndHandler));
  const match = /^([^.]*)\.(.*)$/.exec(moduleAndHandler);
  if (match?.[1] === undefined || match[2] === undefined) {
    throw new RuntimeError('MalformedHandlerName', 'Bad handler');
  }
  const [, moduleName, handlerPath] = match;

  // Lambda's global, so `awslambda.streamifyResponse(...)` at module scope does not throw.
  (globalThis as Record<string, unknown>).awslambda = {
    streamifyResponse: (handler: Record<symbol, unknown>) => {
      handler[streamingSymbol] = 'response';
      return handler;
    },
  };

  let loaded: unknown;
  try {
    loaded = await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new RuntimeError('UserCodeSyntaxError', String(error));
    }
    if ((error as { code?: unknown }).code === 'MODULE_NOT_FOUND') {
      throw new RuntimeError('ImportModuleError', String(error));
    }
    // An ES module's missing import (ERR_MODULE_NOT_FOUND) is passed through as is, like the runtime does.
    throw error;
  }
  const handler = handlerPath
    .split('.')
    .reduce<unknown>((object, key) => (object as Record<string, unknown> | undefined)?.[key], loaded);
  if (handler === undefined || handler === null) {
    throw new RuntimeError('HandlerNotFound', `${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== 'function') {
    throw new RuntimeError('HandlerNotFound', `${fullHandler} is not a function`);
  }
  if ((handler as unknown as Record<symbol, unknown>)[streamingSymbol] !== undefined) {
    throw new RuntimeError(
      'LambdaRunnerUnsupported',
      'response-streaming handlers are not served by the Lambda runner',
    );
  }
  if (handler.length >= 3) {
    // nodejs24.x removed callback-based handlers: a handler declaring a third parameter fails to initialise.
    throw new RuntimeError(
      'CallbackHandlerDeprecated',
      `${fullHandler} declares ${handler.length} parameters; callback-based function handlers are not supported on Node.js 24. Use an async handler (event, context).`,
    );
  }
  return handler as Handler;
}

// ---- Serving invocations.

let handler: Handler | undefined;
let initMarker: string | undefined;
let current: Extract<ParentMessage, { type: 'invoke' }> | undefined;
let replied = false;

async function initialise(marker: string): Promise<void> {
  initMarker = marker;
  try {
    handler = await loadHandler();
  } catch (error) {
    logError('Uncaught Exception', error);
    await writeMarkers(marker);
    await send({ type: 'init-error', error: toErrorPayload(error) });
    process.exit(1);
  }
  await writeMarkers(marker);
  await send({ type: 'ready', nodeVersion: process.version });
}

async function reply(message: Extract<ChildMessage, { type: 'result' }>, marker: string): Promise<void> {
  if (replied) {
    return;
  }
  replied = true;
  current = undefined;
  await writeMarkers(marker);
  await send(message);
}

async function invoke(message: Extract<ParentMessage, { type: 'invoke' }>): Promise<void> {
  if (handler === undefined) {
    throw new Error('invoke before init');
  }
  current = message;
  replied = false;
  currentRequestId = message.requestId;
  process.env._X_AMZN_TRACE_ID = message.traceId;
  let waitsForEmptyEventLoop = true;
  const context = {
    get callbackWaitsForEmptyEventLoop(): boolean {
      return waitsForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value: boolean) {
      waitsForEmptyEventLoop = value;
    },
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    invokedFunctionArn: message.invokedFunctionArn,
    awsRequestId: message.requestId,
    tenantId: undefined,
    getRemainingTimeInMillis: (): number => message.deadlineMs - Date.now(),
  };
  let outcome: Extract<ChildMessage, { type: 'result' }>;
  try {
    const value = await handler(JSON.parse(message.eventJson), context);
    outcome = {
      type: 'result',
      requestId: message.requestId,
      resultJson: JSON.stringify(value) ?? 'null',
      fatal: false,
    };
  } catch (error) {
    logError('Invoke Error', error);
    outcome = { type: 'result', requestId: message.requestId, error: toErrorPayload(error), fatal: false };
  }
  await reply(outcome, message.marker);
}

/** An uncaught exception or unhandled rejection ends the process, failing the invocation under way. */
function fatal(error: Error, exitCode: number): void {
  const under = current;
  const finish = async (): Promise<void> => {
    if (under !== undefined) {
      await reply(
        { type: 'result', requestId: under.requestId, error: toErrorPayload(error), fatal: true },
        under.marker,
      );
    } else if (handler === undefined && initMarker !== undefined) {
      await writeMarkers(initMarker);
      await send({ type: 'init-error', error: toErrorPayload(error) });
    }
  };
  finish().finally(() => process.exit(exitCode));
}

trackLineStarts(process.stdout, 'stdout');
trackLineStarts(process.stderr, 'stderr');
patchConsole();

process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  fatal(error, 129);
});
process.on('unhandledRejection', (reason) => {
  const error = new RuntimeError('UnhandledPromiseRejection', String(reason));
  logError('Unhandled Promise Rejection', error);
  fatal(error, 128);
});
// The runner went away (its test process died): do not linger.
process.on('disconnect', () => process.exit(0));
process.on('message', (message: ParentMessage) => {
  const work = message.type === 'init' ? initialise(message.marker) : invoke(message);
  work.catch((error: unknown) => {
    process.stderr.write(
      `lambda bootstrap failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exit(70);
  });
});
