/**
 * Runs a bundled Lambda handler the way Lambda's Node.js 24 runtime does: one child `node` process per sandbox,
 * the module imported once and kept warm across invocations, Lambda's environment variables, context object,
 * console format, error responses and timeouts.
 *
 * Module resolution mirrors Lambda: the bundle is copied to `<tmp>/task/` and `<tmp>/node_modules/` holds links
 * to the AWS SDK only (`@aws-sdk/*`, `@smithy/*`, `@aws-crypto/*`, `@aws/*` and their runtime dependencies), so a
 * dependency left out of the bundle fails to import, as it would in Lambda.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';
import type { ChildMessage, LambdaErrorPayload, ParentMessage } from './lambda-protocol.js';

export type { LambdaErrorPayload } from './lambda-protocol.js';

/** Options of a Lambda runner. */
export interface LambdaRunnerOptions {
  /** The folder holding the bundle (e.g. a cdk.out asset folder with `index.mjs`); it is copied whole. */
  readonly bundleDir: string;
  /** @default 'index.handler' */
  readonly handler?: string;
  /**
   * The function's environment, exactly: the child gets this plus what Lambda sets itself (which wins, as
   * Lambda's reserved variables do), and nothing of the test process's environment.
   */
  readonly env?: Readonly<Record<string, string>>;
  /** @default 'bigstate-key-audit' */
  readonly functionName?: string;
  /** @default 512 */
  readonly memorySizeMb?: number;
  /** The function timeout, used when `invoke` is given none. @default 30_000 */
  readonly timeoutMs?: number;
  /** Limit of the init phase (Lambda's is 10 s). @default 10_000 */
  readonly initTimeoutMs?: number;
  /** @default env.AWS_REGION, else 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
  /** The project whose `node_modules` provides the AWS SDK. @default this repository */
  readonly projectRoot?: string;
  /**
   * Where to create the sandbox folder. No folder above it may hold a `node_modules`.
   * @default the first clean one of os.tmpdir(), /var/tmp, /dev/shm
   */
  readonly tempBase?: string;
}

/** Options of one invocation. */
export interface InvokeOptions {
  /** The remaining time the invocation starts with; past it the sandbox is killed. @default the runner's timeoutMs */
  readonly timeoutMs?: number;
}

/** What every invocation reports. */
export interface InvocationReport {
  readonly requestId: string;
  /** Whether this invocation started a new process (its init output is part of `logs`). */
  readonly coldStart: boolean;
  readonly durationMs: number;
  /**
   * stdout and stderr lines in the order they arrived. Lines written between invocations (by timers left running:
   * unlike Lambda, the runner does not freeze the process) are reported with the next invocation.
   */
  readonly logs: readonly string[];
  readonly stdout: readonly string[];
  readonly stderr: readonly string[];
}

/** An invocation's outcome: the handler's value (after Lambda's JSON round trip) or Lambda's error payload. */
export type InvocationResult = InvocationReport &
  (
    | { readonly result: unknown; readonly error?: undefined }
    | { readonly error: LambdaErrorPayload; readonly result?: undefined }
  );

/** Thrown when the runner cannot prepare a sandbox (wrong Node, unsafe temp folder, missing bundle). */
export class LambdaRunnerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LambdaRunnerError';
  }
}

/** The package scopes Lambda's Node.js runtime provides (the AWS SDK for JavaScript v3). */
export const RUNTIME_PROVIDED_SCOPES = ['@aws-sdk', '@smithy', '@aws-crypto', '@aws'] as const;

const defaultProjectRoot = fileURLToPath(new URL('../../../', import.meta.url));
const bootstrapSource = fileURLToPath(new URL('./lambda-bootstrap.ts', import.meta.url));

/** Prepares a runner (temp folder, links, bootstrap); the first `invoke` starts the process. */
export async function startLambdaRunner(options: LambdaRunnerOptions): Promise<LambdaRunner> {
  return LambdaRunner.create(options);
}

/** One Lambda function's sandbox, replaced by a fresh process on `coldStart()`, a timeout or a crash. */
export class LambdaRunner {
  /** The temp folder holding `task/`, `node_modules/` and `runtime/`. */
  readonly root: string;
  /** `LAMBDA_TASK_ROOT`: the copy of the bundle. */
  readonly taskRoot: string;
  /** The packages linked into `<root>/node_modules`, i.e. what a bundle may import without bundling. */
  readonly linkedPackages: readonly string[];
  private readonly options: Required<Omit<LambdaRunnerOptions, 'env' | 'projectRoot' | 'tempBase'>> & {
    readonly env: Readonly<Record<string, string>>;
  };
  private readonly bootstrap: string;
  private sandbox: Sandbox | undefined;
  private starts = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    root: string,
    linkedPackages: readonly string[],
    options: LambdaRunner['options'],
    bootstrap: string,
  ) {
    this.root = root;
    this.taskRoot = join(root, 'task');
    this.linkedPackages = linkedPackages;
    this.options = options;
    this.bootstrap = bootstrap;
  }

  /**
   * Copies the bundle and links the SDK into a new temp folder.
   * @throws LambdaRunnerError when not on Node 24, when the bundle folder is missing, or when no temp folder is
   * free of a `node_modules` above it (it would let undeclared imports resolve).
   */
  static async create(options: LambdaRunnerOptions): Promise<LambdaRunner> {
    if (process.versions.node.split('.')[0] !== '24') {
      throw new LambdaRunnerError(`the Lambda runner needs Node 24 (nodejs24.x); this is ${process.version}`);
    }
    if (!existsSync(options.bundleDir)) {
      throw new LambdaRunnerError(`bundle folder ${options.bundleDir} does not exist`);
    }
    const base = cleanTempBase(options.tempBase);
    const root = await mkdtemp(join(base, 'lambda-runner-'));
    try {
      await cp(options.bundleDir, join(root, 'task'), { recursive: true });
      const projectModules = join(options.projectRoot ?? defaultProjectRoot, 'node_modules');
      const linked = runtimeProvidedPackages(projectModules);
      for (const name of linked) {
        const link = join(root, 'node_modules', name);
        await mkdir(dirname(link), { recursive: true });
        await symlink(realpathSync(join(projectModules, name)), link, 'dir');
      }
      const runtimeDir = join(root, 'runtime');
      await mkdir(runtimeDir);
      const bootstrap = join(runtimeDir, 'bootstrap.mjs');
      const compiled = await transform(await readFile(bootstrapSource, 'utf8'), {
        loader: 'ts',
        format: 'esm',
        target: 'node24',
        sourcefile: 'lambda-bootstrap.ts',
      });
      await writeFile(bootstrap, compiled.code);
      const env = options.env ?? {};
      return new LambdaRunner(
        root,
        linked,
        {
          bundleDir: options.bundleDir,
          handler: options.handler ?? 'index.handler',
          env,
          functionName: options.functionName ?? 'bigstate-key-audit',
          memorySizeMb: options.memorySizeMb ?? 512,
          timeoutMs: options.timeoutMs ?? 30_000,
          initTimeoutMs: options.initTimeoutMs ?? 10_000,
          region: options.region ?? env.AWS_REGION ?? 'us-east-1',
          accountId: options.accountId ?? '000000000000',
        },
        bootstrap,
      );
    } catch (error) {
      await rm(root, { recursive: true, force: true });
      throw error;
    }
  }

  /** How many processes this runner has started (each is a cold start). */
  get processStarts(): number {
    return this.starts;
  }

  /** The pid of the warm process, if there is one. */
  get pid(): number | undefined {
    return this.sandbox?.child.pid;
  }

  /**
   * Invokes the handler with `event` (passed through JSON, as Lambda does). Invocations run one at a time; a
   * call made while one runs waits for it. Errors of the function are results (`error`), not rejections.
   */
  invoke(event: unknown, options: InvokeOptions = {}): Promise<InvocationResult> {
    const run = this.queue.then(() => this.invokeNow(event, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the warm process: the next invocation starts a fresh one. */
  async coldStart(): Promise<void> {
    await this.queue;
    await this.stopSandbox();
  }

  /** Ends the process and deletes the temp folder. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    this.closed = true;
    await this.queue;
    await this.stopSandbox();
    await rm(this.root, { recursive: true, force: true });
  }

  private async invokeNow(event: unknown, options: InvokeOptions): Promise<InvocationResult> {
    if (this.closed) {
      throw new LambdaRunnerError('the Lambda runner is closed');
    }
    const requestId = randomUUID();
    const started = performance.now();
    // A process that died between invocations (a timer threw after the handler returned) is replaced; its last
    // output is reported with this invocation.
    let carried: LogLine[] = [];
    const dead = this.sandbox?.hasExited === true ? this.sandbox : undefined;
    if (dead !== undefined) {
      await this.stopSandbox();
      carried = dead.takeLines();
    }
    const report = (sandbox: Sandbox | undefined, coldStart: boolean) => {
      const lines = [...carried, ...(sandbox?.takeLines() ?? [])];
      return {
        requestId,
        coldStart,
        durationMs: performance.now() - started,
        logs: lines.map((line) => line.text),
        stdout: lines.filter((line) => line.stream === 'stdout').map((line) => line.text),
        stderr: lines.filter((line) => line.stream === 'stderr').map((line) => line.text),
      };
    };

    let coldStart = false;
    if (this.sandbox === undefined) {
      coldStart = true;
      const init = await this.startSandbox(requestId);
      if (init.error !== undefined) {
        return { ...report(init.sandbox, true), error: init.error };
      }
    }
    const sandbox = this.sandbox as Sandbox;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const marker = newMarker();
    sandbox.send({
      type: 'invoke',
      requestId,
      eventJson: JSON.stringify(event) ?? '{}',
      deadlineMs: Date.now() + timeoutMs,
      invokedFunctionArn: `arn:aws:lambda:${this.options.region}:${this.options.accountId}:function:${this.options.functionName}`,
      traceId: newTraceId(),
      marker,
    });
    const outcome = await sandbox.next(timeoutMs);
    if (outcome.kind === 'message') {
      const { message } = outcome;
      if (message.type !== 'result' || message.requestId !== requestId) {
        await this.stopSandbox();
        throw new LambdaRunnerError(
          `the sandbox answered ${JSON.stringify(message)} to invocation ${requestId}`,
        );
      }
      await sandbox.markers(marker);
      if (message.fatal) {
        await this.stopSandbox();
      }
      if (message.error !== undefined) {
        return { ...report(sandbox, coldStart), error: message.error };
      }
      return { ...report(sandbox, coldStart), result: JSON.parse(message.resultJson ?? 'null') };
    }
    await this.stopSandbox();
    if (outcome.kind === 'timeout') {
      const seconds = (timeoutMs / 1000).toFixed(2);
      return {
        ...report(sandbox, coldStart),
        error: {
          errorType: 'Sandbox.Timedout',
          errorMessage: `RequestId: ${requestId} Error: Task timed out after ${seconds} seconds`,
        },
      };
    }
    return { ...report(sandbox, coldStart), error: exitError(requestId, outcome) };
  }

  private async startSandbox(
    requestId: string,
  ): Promise<{ sandbox: Sandbox; error?: undefined } | { sandbox: Sandbox; error: LambdaErrorPayload }> {
    // Something may have created a node_modules above the sandbox since: it would make undeclared imports resolve.
    const leak = leakingNodeModules(dirname(this.root));
    if (leak !== undefined) {
      throw new LambdaRunnerError(`${leak} appeared above the sandbox ${this.root}: imports would leak`);
    }
    const child = spawn(process.execPath, [...memoryFlags(this.options), this.bootstrap], {
      cwd: this.taskRoot,
      env: this.environment(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    this.starts += 1;
    const sandbox = new Sandbox(child);
    const marker = newMarker();
    sandbox.send({ type: 'init', marker });
    const outcome = await sandbox.next(this.options.initTimeoutMs);
    if (outcome.kind === 'message' && outcome.message.type === 'ready') {
      await sandbox.markers(marker);
      if (outcome.message.nodeVersion !== process.version) {
        await sandbox.kill();
        throw new LambdaRunnerError(
          `the sandbox runs ${outcome.message.nodeVersion}, not ${process.version}`,
        );
      }
      this.sandbox = sandbox;
      return { sandbox };
    }
    if (outcome.kind === 'message' && outcome.message.type === 'init-error') {
      await sandbox.markers(marker);
      await sandbox.kill();
      return { sandbox, error: outcome.message.error };
    }
    await sandbox.kill();
    if (outcome.kind === 'message') {
      throw new LambdaRunnerError(`the sandbox answered ${JSON.stringify(outcome.message)} to init`);
    }
    if (outcome.kind === 'timeout') {
      const seconds = (this.options.initTimeoutMs / 1000).toFixed(2);
      return {
        sandbox,
        error: {
          errorType: 'Sandbox.Timedout',
          errorMessage: `INIT phase timed out after ${seconds} seconds`,
        },
      };
    }
    return { sandbox, error: exitError(requestId, outcome) };
  }

  private async stopSandbox(): Promise<void> {
    const sandbox = this.sandbox;
    this.sandbox = undefined;
    await sandbox?.kill();
  }

  /** The given environment plus what Lambda's nodejs24.x runtime sets (Lambda's values win). */
  private environment(): Record<string, string> {
    const { functionName, memorySizeMb, region, handler } = this.options;
    const today = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
    return {
      ...this.options.env,
      AWS_LAMBDA_FUNCTION_NAME: functionName,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memorySizeMb),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `${today}/[$LATEST]${randomBytes(16).toString('hex')}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      LAMBDA_TASK_ROOT: this.taskRoot,
      LAMBDA_RUNTIME_DIR: join(this.root, 'runtime'),
      _HANDLER: handler,
      TZ: ':UTC',
      LANG: 'en_US.UTF-8',
      PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      NODE_PATH: [join(this.root, 'node_modules'), join(this.root, 'runtime'), this.taskRoot].join(':'),
    };
  }
}

/** The first `node_modules` in `dir` or a folder above it, if any. */
function leakingNodeModules(dir: string): string | undefined {
  for (let current = dir; ; current = dirname(current)) {
    const candidate = join(current, 'node_modules');
    if (existsSync(candidate)) {
      return candidate;
    }
    if (dirname(current) === current) {
      return undefined;
    }
  }
}

/**
 * A temp folder with no `node_modules` in it or above it. Another tool may well have put one in /tmp (a link to
 * a project's modules, to run a loose script): the sandbox must not inherit it.
 */
function cleanTempBase(requested: string | undefined): string {
  const candidates = requested === undefined ? [tmpdir(), '/var/tmp', '/dev/shm'] : [requested];
  const rejected: string[] = [];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) {
      continue;
    }
    const base = realpathSync(candidate);
    const leak = leakingNodeModules(base);
    if (leak === undefined) {
      return base;
    }
    rejected.push(`${base} (${leak})`);
  }
  throw new LambdaRunnerError(
    `no temp folder free of node_modules above it: ${rejected.join(', ') || 'none exists'}`,
  );
}

/** Lambda's bootstrap sizes V8's heap from the function's memory unless NODE_OPTIONS already does. */
function memoryFlags(options: {
  readonly memorySizeMb: number;
  readonly env: Readonly<Record<string, string>>;
}): string[] {
  if (/--max[-_](semi|old)[-_]space[-_]size/.test(options.env.NODE_OPTIONS ?? '')) {
    return [];
  }
  const newSpace = Math.floor(options.memorySizeMb / 10);
  return [
    `--max-semi-space-size=${Math.max(1, Math.floor(newSpace / 2))}`,
    `--max-old-space-size=${options.memorySizeMb - newSpace}`,
  ];
}

function exitError(
  requestId: string,
  outcome: { code: number | null; signal: NodeJS.Signals | null },
): LambdaErrorPayload {
  const how = outcome.signal === null ? `exit status ${outcome.code}` : `signal: ${outcome.signal}`;
  return {
    errorType: 'Runtime.ExitError',
    errorMessage: `RequestId: ${requestId} Error: Runtime exited with error: ${how}`,
  };
}

function newMarker(): string {
  return `@@lambda-runner-marker:${randomUUID()}@@`;
}

function newTraceId(): string {
  const seconds = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${seconds}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0;Lineage=1:${randomBytes(4).toString('hex')}:0`;
}

type NextOutcome =
  | { readonly kind: 'message'; readonly message: ChildMessage }
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'timeout' };

interface LogLine {
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
}

/** One child process: its IPC messages, its output split into lines, and the markers that end each phase. */
class Sandbox {
  readonly child: ChildProcess;
  private readonly messages: ChildMessage[] = [];
  private waiter: ((outcome: NextOutcome) => void) | undefined;
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private lines: LogLine[] = [];
  private readonly seen = new Set<string>();
  private readonly ended = { stdout: false, stderr: false };
  /** Conditions waited on; each returns true once satisfied (and is then dropped). */
  private readonly watchers = new Set<() => boolean>();

  constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (message: ChildMessage) => {
      if (this.waiter !== undefined) {
        const resolve = this.waiter;
        this.waiter = undefined;
        resolve({ kind: 'message', message });
      } else {
        this.messages.push(message);
      }
    });
    this.exited = new Promise((resolve) => {
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.exitInfo !== undefined) {
          return;
        }
        this.exitInfo = { code, signal };
        this.waiter?.({ kind: 'exit', code, signal });
        this.waiter = undefined;
        resolve();
      };
      child.on('exit', onExit);
      // A process that could not be spawned never exits: report it as an exit.
      child.on('error', () => onExit(child.exitCode ?? 127, child.signalCode));
    });
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      let partial = '';
      if (stream === null) {
        this.ended[name] = true;
        continue;
      }
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        partial += chunk;
        let newline = partial.indexOf('\n');
        while (newline !== -1) {
          this.line(name, partial.slice(0, newline));
          partial = partial.slice(newline + 1);
          newline = partial.indexOf('\n');
        }
      });
      stream.on('close', () => {
        if (partial !== '') {
          this.line(name, partial);
          partial = '';
        }
        this.ended[name] = true;
        this.notify();
      });
    }
  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  /** The next message, the process's exit, or a timeout, whichever comes first. */
  next(timeoutMs: number): Promise<NextOutcome> {
    const queued = this.messages.shift();
    if (queued !== undefined) {
      return Promise.resolve({ kind: 'message', message: queued });
    }
    if (this.exitInfo !== undefined) {
      return Promise.resolve({ kind: 'exit', ...this.exitInfo });
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve({ kind: 'timeout' });
      }, timeoutMs);
      this.waiter = (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
    });
  }

  /** Resolves once `marker` has arrived on both streams (or the streams have closed). */
  markers(marker: string): Promise<void> {
    return this.until(
      () =>
        (this.seen.has(`stdout:${marker}`) || this.ended.stdout) &&
        (this.seen.has(`stderr:${marker}`) || this.ended.stderr),
    );
  }

  /** The lines that arrived since the last call. */
  takeLines(): LogLine[] {
    const taken = this.lines;
    this.lines = [];
    return taken;
  }

  /** Kills the process and waits until it has exited and its output has drained. */
  async kill(): Promise<void> {
    if (this.exitInfo === undefined) {
      this.child.kill('SIGKILL');
    }
    await this.exited;
    await this.until(() => this.ended.stdout && this.ended.stderr);
  }

  private until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): boolean => {
        const done = condition();
        if (done) {
          resolve();
        }
        return done;
      };
      if (!check()) {
        this.watchers.add(check);
      }
    });
  }

  private line(stream: 'stdout' | 'stderr', text: string): void {
    if (text.startsWith('@@lambda-runner-marker:')) {
      this.seen.add(`${stream}:${text}`);
      this.notify();
    } else {
      this.lines.push({ stream, text });
    }
  }

  private notify(): void {
    for (const watcher of this.watchers) {
      if (watcher()) {
        this.watchers.delete(watcher);
      }
    }
  }
}

/**
 * The packages Lambda's runtime provides, found in `nodeModules`: every package of the SDK scopes and, following
 * `dependencies` and `optionalDependencies` as Node resolves them, every top-level package they need.
 */
export function runtimeProvidedPackages(nodeModules: string): string[] {
  const provided = new Set<string>();
  const queue: string[] = [];
  for (const scope of RUNTIME_PROVIDED_SCOPES) {
    const scopeDir = join(nodeModules, scope);
    if (!existsSync(scopeDir)) {
      continue;
    }
    for (const entry of readdirSync(scopeDir)) {
      if (existsSync(join(scopeDir, entry, 'package.json'))) {
        provided.add(`${scope}/${entry}`);
        queue.push(join(scopeDir, entry));
      }
    }
  }
  const visited = new Set<string>(queue);
  while (queue.length > 0) {
    const packageDir = queue.shift() as string;
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const optional = new Set(Object.keys(manifest.optionalDependencies ?? {}));
    for (const name of new Set([...Object.keys(manifest.dependencies ?? {}), ...optional])) {
      const resolved = resolvePackageDir(name, packageDir);
      if (resolved === undefined) {
        if (optional.has(name)) {
          continue;
        }
        throw new LambdaRunnerError(`${name}, a dependency of ${packageDir}, is not installed`);
      }
      if (resolved === join(nodeModules, name)) {
        provided.add(name);
      }
      if (!visited.has(resolved)) {
        visited.add(resolved);
        queue.push(resolved);
      }
    }
  }
  return [...provided].sort();
}

/** Where Node finds package `name` from `fromDir`: the nearest `node_modules/<name>` walking up. */
function resolvePackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    if (!dir.endsWith('/node_modules')) {
      const candidate = join(dir, 'node_modules', name);
      if (existsSync(join(candidate, 'package.json'))) {
        return candidate;
      }
    }
    if (dirname(dir) === dir) {
      return undefined;
    }
  }
}

/**
 * The structured lines of an invocation's logs: JSON lines (Powertools, or Lambda's JSON log format) and TEXT
 * format lines whose message is JSON (`<time>\t<requestId>\t<LEVEL>\t{...}`).
 */
export function jsonLogLines(lines: readonly string[]): Record<string, unknown>[] {
  const parsed: Record<string, unknown>[] = [];
  for (const line of lines) {
    for (const candidate of [line, line.split('\t').slice(3).join('\t')]) {
      try {
        const value: unknown = JSON.parse(candidate);
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
          parsed.push(value as Record<string, unknown>);
          break;
        }
      } catch {
        // not JSON: a plain text line
      }
    }
  }
  return parsed;
}
