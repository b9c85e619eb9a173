/**
 * The fan-out end to end: the stack synthesized with `fanOut=true` (as `cdk synth` does it), its state machine
 * definition taken from the template and run in `aws-local-stepfunctions`, its Task states bound to the plan,
 * worker and finish bundles run as Lambda would (the Lambda runner), against the AWS fakes and the BigState
 * simulator.
 *
 * The interpreter does not support the Distributed Map's ItemReader, ItemBatcher, ResultWriter or tolerated
 * failures: the Map state is replaced by a Task state (same name, ResultPath, Catch, Next) bound to a stand-in
 * that follows AWS's documented formats (support/distributed-map-stand-in.ts) and runs the Map's ItemProcessor
 * in the interpreter, one child execution per batch. The Map's real fields are asserted on the template
 * (test/infra/key-audit-fan-out.test.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Validations } from 'aws-cdk-lib';
import { StateMachine } from 'aws-local-stepfunctions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { KeyAuditStack } from '../../infra/key-audit-stack.js';
import {
  type AslDefinition,
  type Reference,
  stateMachineDefinition,
  stateMachines,
} from '../infra/state-machine-definition.js';
import { appWith } from '../infra/support.js';
import {
  type AuditWorld,
  loggingEnvironment,
  resolveEnvironment,
  secretLeaks,
  type TemplateResource,
} from './harness.js';
import {
  DistributedMapStandIn,
  type LocalHandler,
  replaceWithStandIn,
} from './support/distributed-map-stand-in.js';
import {
  type AwsFakes,
  type InvocationResult,
  type LambdaErrorPayload,
  type LambdaRunner,
  type PublishedMessage,
  type RecordedEvent,
  startAwsFakes,
  startLambdaRunner,
} from './support/index.js';

/** The fan-out's steps, by the handler each function of the template has. */
export const STEPS = { plan: 'index.plan', worker: 'index.worker', finish: 'index.finish' } as const;
export type Step = keyof typeof STEPS;

/** One function of the template, as Lambda would run it. */
export interface SynthesizedFunction {
  readonly logicalId: string;
  /** The asset folder: the bundle as it would be zipped and deployed. */
  readonly bundleDir: string;
  readonly handler: string;
  /** `Environment.Variables`, CloudFormation references unresolved. */
  readonly environment: Readonly<Record<string, unknown>>;
  readonly loggingConfig: Readonly<Record<string, string>>;
}

/** What the tests need of the stack synthesized with `fanOut=true`. */
export interface SynthesizedFanOut {
  readonly assemblyDir: string;
  readonly resources: Readonly<Record<string, TemplateResource>>;
  /** The three steps' functions. */
  readonly steps: Readonly<Record<Step, SynthesizedFunction>>;
  /** The state machine's logical id. */
  readonly stateMachine: string;
  /** The `Input` the schedule sends the state machine (with Scheduler's context placeholders). */
  readonly scheduleInput: string;
}

/**
 * Synthesizes the stack as `cdk synth -c fanOut=true` does (the app's feature flags, cdk-nag packs, asset metadata
 * on) and finds the fan-out's functions by their handlers.
 * @throws when synthesis fails, or the template does not hold one function per step, one state machine and one
 *   schedule targeting it.
 */
export function synthesizeFanOut(context: Record<string, unknown>): SynthesizedFanOut {
  const app = appWith({ ...context, fanOut: 'true', 'aws:cdk:enable-asset-metadata': true });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  const stack = new KeyAuditStack(app, 'BigStateKeyAudit');
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, TemplateResource>;
  };
  const resources = template.Resources;
  const functionOf = (handler: string): SynthesizedFunction => {
    const found = Object.entries(resources).filter(
      ([, r]) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Handler === handler,
    );
    if (found.length !== 1)
      throw new Error(`expected one function with handler ${handler}, found ${found.length}`);
    const [logicalId, fn] = found[0] as [string, TemplateResource];
    const assetPath = fn.Metadata?.['aws:asset:path'];
    if (typeof assetPath !== 'string') throw new Error(`${logicalId} has no aws:asset:path metadata`);
    const props = fn.Properties ?? {};
    return {
      logicalId,
      bundleDir: join(assembly.directory, assetPath),
      handler,
      environment: (props.Environment as { Variables: Record<string, unknown> }).Variables,
      loggingConfig: (props.LoggingConfig ?? {}) as Record<string, string>,
    };
  };
  const machines = stateMachines(resources);
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const [stateMachine] = machines[0] as [string, TemplateResource];
  const schedules = Object.values(resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule');
  const target = schedules[0]?.Properties?.Target as { Arn?: unknown; Input?: unknown } | undefined;
  if (schedules.length !== 1 || (target?.Arn as { Ref?: string } | undefined)?.Ref !== stateMachine) {
    throw new Error('expected one schedule, targeting the state machine');
  }
  return {
    assemblyDir: assembly.directory,
    resources,
    steps: {
      plan: functionOf(STEPS.plan),
      worker: functionOf(STEPS.worker),
      finish: functionOf(STEPS.finish),
    },
    stateMachine,
    scheduleInput: String(target?.Input),
  };
}

/** How an execution ended: its output, or its error and cause (as `DescribeExecution` gives them). */
export type ExecutionOutcome = { readonly executionName: string } & (
  | { readonly status: 'SUCCEEDED'; readonly output: Record<string, unknown> }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string }
);

/** One invocation of a step, in the order they ended. */
export interface StepInvocation {
  readonly step: Step;
  readonly event: unknown;
  readonly result: InvocationResult;
  readonly startedAt: number;
  readonly endedAt: number;
}

/** Options of {@link startFanOutWorld}. */
export interface FanOutWorldOptions {
  /** The SecretString of the API-key secret. */
  readonly secretString: string;
  /**
   * Principals per batch in the Map stand-in (the template's MaxItemsPerBatch is asserted in the infra tests): a
   * small value gives several batches with a few principals.
   */
  readonly maxItemsPerBatch?: number;
  /**
   * Lambda's answer for a worker invocation instead of running the worker (its sandbox crashed or timed out), or
   * undefined to run it.
   */
  readonly workerFault?: (batch: { Items: Array<{ principal: string }> }) => LambdaErrorPayload | undefined;
  /** Called with the finish step's input just before it runs (to break what it reads). */
  readonly beforeFinish?: (input: { plan: { runId: string }; map: Record<string, unknown> }) => void;
}

/** A deployment of the fan-out against fresh AWS fakes: executions to start and what they left. */
export interface FanOutWorld {
  readonly fakes: AwsFakes;
  readonly bucketName: string;
  /** The definition as it runs here: references resolved, the Distributed Map replaced by its stand-in. */
  readonly definition: AslDefinition;
  /** The Map stand-in: its runs (items, batches, children, result files). */
  readonly map: DistributedMapStandIn;
  /** Every step invocation so far, in the order they ended. */
  readonly invocations: readonly StepInvocation[];
  /** Starts an execution with `input` and waits for its end. */
  execute(input: unknown): Promise<ExecutionOutcome>;
  /** SNS messages and EventBridge events so far (from `since`: counts of an earlier call). */
  sns(since?: number): PublishedMessage[];
  events(since?: number): RecordedEvent[];
  /** The current object of the snapshot bucket, parsed as JSON. */
  json(key: string): unknown;
  /** Where any of `secrets` shows up in what the run left behind (empty: nowhere). */
  leaks(secrets: readonly string[]): string[];
  close(): Promise<void>;
}

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const lambdaArn = (logicalId: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${logicalId}`;

/**
 * Starts fresh AWS fakes (the snapshot bucket, the topic, the API-key secret), a Lambda runner for the plan and
 * the finish step and a pool of worker sandboxes (as many as the Map runs at once, made when needed, as Lambda
 * scales out), and the definition bound to them.
 */
export async function startFanOutWorld(
  synth: SynthesizedFanOut,
  options: FanOutWorldOptions,
): Promise<FanOutWorld> {
  const fakes = await startAwsFakes({ s3: { buckets: [] } });
  const runners: LambdaRunner[] = [];
  try {
    const suffix = randomBytes(6).toString('hex');
    const bucketName = `bigstatekeyaudit-snapshotbucket-${suffix}`;
    fakes.s3.createBucket(bucketName);
    const secretArn = fakes.secretsManager.setSecret(`KeyAuditApiKeySecret-${suffix}`, options.secretString);
    const topicArn = `arn:aws:sns:${REGION}:${ACCOUNT}:BigStateKeyAudit-KeyAuditTopic-${suffix}`;
    const deployed = { secretArn, bucketName, topicArn };
    const runnerOf = (step: Step) => async () => {
      const fn = synth.steps[step];
      const runner = await startLambdaRunner({
        bundleDir: fn.bundleDir,
        handler: fn.handler,
        env: {
          ...resolveEnvironment(fn.environment, synth.resources, deployed),
          ...loggingEnvironment(fn.loggingConfig),
          ...fakes.env,
        },
        timeoutMs: 30_000,
        functionName: `BigStateKeyAudit-${fn.logicalId}`,
      });
      runners.push(runner);
      return runner;
    };
    const plan = await runnerOf('plan')();
    const finish = await runnerOf('finish')();
    const workers = sandboxPool(runnerOf('worker'));

    const invocations: StepInvocation[] = [];
    const asLambda =
      (step: Step, invoke: (event: unknown) => Promise<InvocationResult>): LocalHandler =>
      async (event) => {
        const startedAt = Date.now();
        const result = await invoke(event);
        invocations.push({ step, event, result, startedAt, endedAt: Date.now() });
        // As Step Functions reports a function error: the error type as the error, Lambda's payload as the cause.
        if (result.error !== undefined) {
          throw Object.assign(new Error(JSON.stringify(result.error)), { name: result.error.errorType });
        }
        return result.result as never;
      };
    const handlerOf: Record<string, LocalHandler> = {
      [lambdaArn(synth.steps.plan.logicalId)]: asLambda('plan', (event) => plan.invoke(event)),
      [lambdaArn(synth.steps.worker.logicalId)]: asLambda('worker', async (event) => {
        const fault = options.workerFault?.(event as { Items: Array<{ principal: string }> });
        if (fault === undefined) return workers.invoke(event);
        const report = {
          requestId: randomUUID(),
          coldStart: false,
          durationMs: 0,
          logs: [],
          stdout: [],
          stderr: [],
        };
        return { ...report, error: fault };
      }),
      [lambdaArn(synth.steps.finish.logicalId)]: asLambda('finish', (event) => {
        options.beforeFinish?.(event as { plan: { runId: string }; map: Record<string, unknown> });
        return finish.invoke(event);
      }),
    };

    const resolve = (reference: Reference): string => {
      if (reference.kind === 'ref' && reference.name === 'AWS::Partition') return 'aws';
      const resource = synth.resources[reference.name];
      if (reference.kind === 'ref' && resource?.Type === 'AWS::S3::Bucket') return bucketName;
      if (
        reference.kind === 'getAtt' &&
        reference.attribute === 'Arn' &&
        resource?.Type === 'AWS::Lambda::Function'
      ) {
        return lambdaArn(reference.name);
      }
      throw new Error(
        `the definition references ${JSON.stringify(reference)}, which this world does not have`,
      );
    };
    const synthesized = stateMachineDefinition(synth.resources, resolve);
    const [mapName, mapState] = Object.entries(synthesized.States).find(
      ([, state]) =>
        state.Type === 'Map' &&
        (state.ItemProcessor as { ProcessorConfig?: { Mode?: string } })?.ProcessorConfig?.Mode ===
          'DISTRIBUTED',
    ) ?? [undefined, undefined];
    if (mapName === undefined || mapState === undefined)
      throw new Error('the definition has no Distributed Map');
    const stateMachineArn = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:BigStateKeyAudit-${synth.stateMachine}`;
    const s3 = new S3Client({
      region: REGION,
      endpoint: fakes.env.AWS_ENDPOINT_URL_S3,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test', sessionToken: 'test' },
    });
    const map = new DistributedMapStandIn({
      state: mapState,
      s3,
      handlers: tasksOf(mapState.ItemProcessor as AslDefinition, handlerOf),
      stateMachineArn,
      ...(options.maxItemsPerBatch === undefined ? {} : { maxItemsPerBatch: options.maxItemsPerBatch }),
    });
    const standInArn = 'arn:aws:states:::distributed-map-stand-in';
    const definition = replaceWithStandIn(synthesized, mapName, standInArn);
    const machine = new StateMachine(definition as never, {
      validationOptions: { checkPaths: true, checkArn: true },
    });
    const handlers = { ...tasksOf(definition, handlerOf), [mapName]: map.run };

    const world: FanOutWorld = {
      fakes,
      bucketName,
      definition,
      map,
      invocations,
      async execute(input) {
        // The context object as Step Functions fills it: the Plan task takes the execution's name as run id.
        const name = randomUUID();
        try {
          const output = await machine.run(input as never, {
            overrides: { taskResourceLocalHandlers: handlers as never },
            context: {
              Execution: {
                Name: name,
                Id: `arn:aws:states:${REGION}:123456789012:execution:audit:${name}`,
                Input: input as never,
                StartTime: new Date().toISOString(),
              },
            },
          }).result;
          return { executionName: name, status: 'SUCCEEDED', output: output as Record<string, unknown> };
        } catch (error) {
          const cause = ((error as { cause?: unknown }).cause ?? error) as Error;
          return { executionName: name, status: 'FAILED', error: cause.name, cause: cause.message };
        }
      },
      sns: (since = 0) => fakes.sns.messages().slice(since),
      events: (since = 0) => fakes.eventBridge.events().slice(since),
      json: (key) => {
        const object = fakes.s3.get(bucketName, key);
        return object === undefined ? undefined : JSON.parse(object.text);
      },
      leaks: (secrets) =>
        // The audit world's scan, over this world's invocations and fakes (all it reads of a world).
        secretLeaks(
          { fakes, invocations: invocations.map((i) => i.result) } as unknown as AuditWorld,
          secrets,
        ),
      async close() {
        s3.destroy();
        await Promise.all(runners.map((runner) => runner.close()));
        await fakes.close();
      },
    };
    return world;
  } catch (error) {
    await Promise.all(runners.map((runner) => runner.close()));
    await fakes.close();
    throw error;
  }
}

/** The local handler of each Task state of a definition (not of nested ones), by its `Resource`. */
function tasksOf(
  definition: AslDefinition,
  handlerOf: Record<string, LocalHandler>,
): Record<string, LocalHandler> {
  const handlers: Record<string, LocalHandler> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    const handler = handlerOf[String(state.Resource)];
    if (handler !== undefined) handlers[name] = handler;
  }
  return handlers;
}

/** Lambda's scale-out: a warm sandbox when one is free, a new one otherwise. */
function sandboxPool(create: () => Promise<LambdaRunner>) {
  const idle: LambdaRunner[] = [];
  return {
    async invoke(event: unknown): Promise<InvocationResult> {
      const runner = idle.pop() ?? (await create());
      try {
        return await runner.invoke(event);
      } finally {
        idle.push(runner);
      }
    },
  };
}
