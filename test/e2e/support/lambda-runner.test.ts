import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AwsFakes, startAwsFakes } from './aws-fakes.js';
import {
  jsonLogLines,
  type LambdaRunner,
  type LambdaRunnerOptions,
  startLambdaRunner,
} from './lambda-runner.js';

const projectRoot = fileURLToPath(new URL('../../../', import.meta.url));
let workDir: string;
const runners: LambdaRunner[] = [];

/** Bundles `source` with esbuild into `<dir>/index.mjs`, leaving `external` imports unbundled. */
async function bundle(source: string, external: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(workDir, 'bundle-'));
  await build({
    stdin: { contents: source, loader: 'ts', resolveDir: projectRoot, sourcefile: 'handler.ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    outfile: join(dir, 'index.mjs'),
    external,
    logLevel: 'silent',
  });
  return dir;
}

async function runner(source: string, options: Partial<LambdaRunnerOptions> & { external?: string[] } = {}) {
  const { external, ...rest } = options;
  const started = await startLambdaRunner({ bundleDir: await bundle(source, external), ...rest });
  runners.push(started);
  return started;
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'lambda-runner-test-'));
});

afterAll(async () => {
  await Promise.all(runners.map((started) => started.close()));
  await rm(workDir, { recursive: true, force: true });
});

describe('Lambda runner', () => {
  it('runs on Node 24 with the test process own node binary', async () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
    const lambda = await runner('export const handler = async () => process.version;');
    expect((await lambda.invoke({})).result).toBe(process.version);
  });

  it('keeps the module warm across invocations; coldStart() gives a fresh process', async () => {
    const lambda = await runner(`
      let count = 0;
      console.log('init ran');
      export const handler = async (event: { add: number }) => { count += event.add; return { count }; };
    `);
    const first = await lambda.invoke({ add: 1 });
    const second = await lambda.invoke({ add: 2 });
    expect([first.result, second.result]).toEqual([{ count: 1 }, { count: 3 }]);
    expect([first.coldStart, second.coldStart]).toEqual([true, false]);
    expect(first.logs.some((line) => line.endsWith('\tINFO\tinit ran'))).toBe(true);
    expect(second.logs).toEqual([]);

    await lambda.coldStart();
    const third = await lambda.invoke({ add: 5 });
    expect(third).toMatchObject({ result: { count: 5 }, coldStart: true });
    expect(lambda.processStarts).toBe(2);
  });

  it('reports a thrown error with errorType and errorMessage, and logs it as Lambda does', async () => {
    const lambda = await runner(`
      class AuditFailedError extends Error {
        constructor(message: string) { super(message); this.name = 'AuditFailedError'; }
      }
      export const handler = async (event: { kind: string }) => {
        if (event.kind === 'string') throw 'plain string';
        throw new AuditFailedError('principal p1 failed');
      };
    `);
    const failed = await lambda.invoke({ kind: 'error' });
    expect(failed.error).toMatchObject({
      errorType: 'AuditFailedError',
      errorMessage: 'principal p1 failed',
    });
    expect(failed.error?.trace?.[0]).toBe('AuditFailedError: principal p1 failed');
    expect(failed.result).toBeUndefined();
    expect(
      failed.logs.some((line) => line.includes('\tERROR\tInvoke Error \t{"errorType":"AuditFailedError"')),
    ).toBe(true);

    const thrownString = await lambda.invoke({ kind: 'string' });
    expect(thrownString.error).toMatchObject({ errorType: 'string', errorMessage: 'plain string' });
    expect(thrownString.coldStart).toBe(false);
  });

  it('gives a context whose getRemainingTimeInMillis counts down from the timeout', async () => {
    const lambda = await runner(
      `
      import type { Context } from 'aws-lambda';
      export const handler = async (_event: unknown, context: Context) => {
        const before = context.getRemainingTimeInMillis();
        await new Promise((resolve) => setTimeout(resolve, 60));
        return {
          before,
          after: context.getRemainingTimeInMillis(),
          awsRequestId: context.awsRequestId,
          functionName: context.functionName,
          memoryLimitInMB: context.memoryLimitInMB,
          invokedFunctionArn: context.invokedFunctionArn,
          waits: context.callbackWaitsForEmptyEventLoop,
        };
      };
    `,
      { functionName: 'audit-fn', memorySizeMb: 256, env: { AWS_REGION: 'eu-west-1' } },
    );
    const first = await lambda.invoke({}, { timeoutMs: 2_000 });
    const second = await lambda.invoke({}, { timeoutMs: 2_000 });
    const result = first.result as Record<string, number | string | boolean>;
    expect(result.before).toBeLessThanOrEqual(2_000);
    expect(result.before).toBeGreaterThan(1_500);
    expect(Number(result.before) - Number(result.after)).toBeGreaterThanOrEqual(50);
    expect(result).toMatchObject({
      awsRequestId: first.requestId,
      functionName: 'audit-fn',
      memoryLimitInMB: '256',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:audit-fn',
      waits: true,
    });
    expect((second.result as Record<string, string>).awsRequestId).toBe(second.requestId);
    expect(second.requestId).not.toBe(first.requestId);
  });

  it('captures stdout and stderr per invocation in Lambda TEXT format, or JSON when configured', async () => {
    const source = `
      export const handler = async (event: { n: number }) => {
        console.log('hello', { n: event.n });
        console.warn('first\\nsecond');
        process.stderr.write('raw stderr ' + event.n + '\\n');
        process.stdout.write('no newline at the end');
        return null;
      };
    `;
    const text = await runner(source);
    const first = await text.invoke({ n: 1 });
    const second = await text.invoke({ n: 2 });
    expect(first.stdout).toEqual([
      expect.stringMatching(
        new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\t${first.requestId}\\tINFO\\thello { n: 1 }$`),
      ),
      expect.stringMatching(/\tWARN\tfirst\rsecond$/),
      'no newline at the end',
    ]);
    expect(first.stderr).toEqual(['raw stderr 1']);
    expect(second.stderr).toEqual(['raw stderr 2']);
    expect(second.stdout[0]).toContain(`\t${second.requestId}\tINFO\thello { n: 2 }`);

    const json = await runner(source, { env: { AWS_LAMBDA_LOG_FORMAT: 'JSON' } });
    const structured = jsonLogLines((await json.invoke({ n: 3 })).stdout);
    expect(structured.map((line) => [line.level, line.message])).toEqual([
      ['INFO', 'hello { n: 3 }'],
      ['WARN', 'first\nsecond'],
    ]);
  });

  it('gives the function exactly its environment plus what Lambda sets', async () => {
    vi.stubEnv('LEAKED_FROM_TEST_PROCESS', 'leak');
    const lambda = await runner(
      `
      import http from 'node:http';
      export const handler = async () => ({
        env: process.env,
        cwd: process.cwd(),
        offset: new Date(2026, 0, 1).getTimezoneOffset(),
        maxHeaderSize: http.maxHeaderSize,
      });
    `,
      { env: { AUDIT_BUCKET: 'b', NODE_OPTIONS: '--max-http-header-size=12345', AWS_REGION: 'eu-west-1' } },
    );
    const { result } = await lambda.invoke({});
    const { env, cwd, offset, maxHeaderSize } = result as {
      env: Record<string, string>;
      cwd: string;
      offset: number;
      maxHeaderSize: number;
    };
    expect(env).toMatchObject({
      AUDIT_BUCKET: 'b',
      AWS_REGION: 'eu-west-1',
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_NAME: 'bigstate-key-audit',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      LAMBDA_TASK_ROOT: lambda.taskRoot,
      _HANDLER: 'index.handler',
      TZ: ':UTC',
    });
    expect(env._X_AMZN_TRACE_ID).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};/);
    expect(env.LEAKED_FROM_TEST_PROCESS).toBeUndefined();
    expect(env.HOME).toBeUndefined();
    expect(cwd).toBe(lambda.taskRoot);
    expect(offset).toBe(0);
    expect(maxHeaderSize).toBe(12345);
  });

  it('kills a sandbox that runs past its timeout and starts cold next time', async () => {
    const lambda = await runner(`
      let calls = 0;
      export const handler = async (event: { hang: boolean }) => {
        calls += 1;
        console.log('started', calls);
        if (event.hang) await new Promise(() => {});
        return calls;
      };
    `);
    const timedOut = await lambda.invoke({ hang: true }, { timeoutMs: 300 });
    expect(timedOut.error).toEqual({
      errorType: 'Sandbox.Timedout',
      errorMessage: `RequestId: ${timedOut.requestId} Error: Task timed out after 0.30 seconds`,
    });
    expect(timedOut.logs.some((line) => line.endsWith('\tINFO\tstarted 1'))).toBe(true);
    expect(lambda.pid).toBeUndefined();
    const next = await lambda.invoke({ hang: false });
    expect(next).toMatchObject({ result: 1, coldStart: true });
  });

  it('fails an invocation whose process dies, and recovers on the next one', async () => {
    const lambda = await runner(`
      export const handler = async (event: { how: string }) => {
        if (event.how === 'exit') process.exit(3);
        if (event.how === 'uncaught') setTimeout(() => { throw new TypeError('late failure'); }, 0);
        if (event.how === 'rejection') void Promise.reject(new Error('nobody waits'));
        if (event.how !== 'ok') await new Promise((resolve) => setTimeout(resolve, 1_000));
        return 'ok';
      };
    `);
    const exited = await lambda.invoke({ how: 'exit' });
    expect(exited.error).toEqual({
      errorType: 'Runtime.ExitError',
      errorMessage: `RequestId: ${exited.requestId} Error: Runtime exited with error: exit status 3`,
    });
    const uncaught = await lambda.invoke({ how: 'uncaught' });
    expect(uncaught).toMatchObject({
      coldStart: true,
      error: { errorType: 'TypeError', errorMessage: 'late failure' },
    });
    const rejected = await lambda.invoke({ how: 'rejection' });
    expect(rejected).toMatchObject({
      coldStart: true,
      error: { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody waits' },
    });
    expect(await lambda.invoke({ how: 'ok' })).toMatchObject({ coldStart: true, result: 'ok' });
  });

  it('replaces a process that died between invocations and reports its last words with the next one', async () => {
    const lambda = await runner(`
      export const handler = async (event: { late: boolean }) => {
        if (event.late) setTimeout(() => { throw new Error('after the response'); }, 20);
        return 'answered';
      };
    `);
    expect((await lambda.invoke({ late: true })).result).toBe('answered');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const next = await lambda.invoke({ late: false });
    expect(next).toMatchObject({ coldStart: true, result: 'answered' });
    expect(
      next.logs.some(
        (line) => line.includes('\tERROR\tUncaught Exception') && line.includes('after the response'),
      ),
    ).toBe(true);
  });

  it('rejects what nodejs24.x rejects at init: callback handlers and missing exports', async () => {
    const callback = await runner(
      'export const handler = (_e: unknown, _c: unknown, cb: (e: null, r: number) => void) => cb(null, 1);',
    );
    expect((await callback.invoke({})).error?.errorType).toBe('Runtime.CallbackHandlerDeprecated');
    const missing = await runner('export const other = async () => 1;');
    expect((await missing.invoke({})).error).toMatchObject({
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'index.handler is undefined or not exported',
    });
    expect(missing.processStarts).toBe(1);
    await missing.invoke({});
    // An init failure leaves no warm process: every invocation tries init again, as Lambda does.
    expect(missing.processStarts).toBe(2);
  });
});

describe('Lambda runner module resolution', () => {
  let fakes: AwsFakes;

  beforeAll(async () => {
    fakes = await startAwsFakes();
  });

  afterAll(async () => {
    await fakes.close();
  });

  it('refuses a temp folder with a node_modules above it, which would let undeclared imports resolve', async () => {
    const polluted = join(workDir, 'polluted');
    await mkdir(join(polluted, 'node_modules'), { recursive: true });
    await mkdir(join(polluted, 'inner'));
    await expect(
      startLambdaRunner({
        bundleDir: await bundle('export const handler = async () => 1;'),
        tempBase: join(polluted, 'inner'),
      }),
    ).rejects.toThrow(/node_modules.*imports would leak|free of node_modules/);
  });

  it('links only the AWS SDK and its dependencies next to the task', async () => {
    const lambda = await runner('export const handler = async () => 1;');
    expect(lambda.linkedPackages).toEqual(
      expect.arrayContaining(['@aws-sdk/client-s3', '@smithy/core', 'tslib']),
    );
    expect(lambda.linkedPackages).not.toContain('zod');
    expect(lambda.linkedPackages.some((name) => name.startsWith('@aws-lambda-powertools/'))).toBe(false);
    expect(existsSync(join(lambda.root, 'node_modules', 'zod'))).toBe(false);
  });

  it('fails to import a dependency left out of the bundle', async () => {
    const lambda = await runner(
      `import { z } from 'zod';
       export const handler = async () => z.string().parse('ok');`,
      { external: ['zod'] },
    );
    const outcome = await lambda.invoke({});
    expect(outcome.error?.errorType).toBe('Error');
    expect(outcome.error?.errorMessage).toMatch(
      /^Cannot find package 'zod' imported from .*\/task\/index\.mjs$/,
    );
    expect(outcome.logs.some((line) => line.includes('\tERROR\tUncaught Exception'))).toBe(true);

    const bundled = await runner(`import { z } from 'zod';
       export const handler = async () => z.string().parse('ok');`);
    expect((await bundled.invoke({})).result).toBe('ok');
  });

  it('imports the AWS SDK the runtime provides and reaches the fakes through the environment', async () => {
    await fakes.s3.put('audit-bucket', 'snapshots/p1.json', '{"keys":[]}');
    const lambda = await runner(
      `import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
       const s3 = new S3Client({});
       export const handler = async () => {
         const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'audit-bucket', Prefix: 'snapshots/' }));
         return listed.Contents?.map((object) => object.Key);
       };`,
      { external: ['@aws-sdk/*'], env: fakes.env },
    );
    expect((await lambda.invoke({})).result).toEqual(['snapshots/p1.json']);
    expect(fakes.s3.calls('ListObjectsV2').at(-1)?.headers['x-amzn-trace-id']).toMatch(/^Root=1-/);
    expect(fakes.unknownCalls()).toEqual([]);
  });
});
