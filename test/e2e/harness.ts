/**
 * The end-to-end harness: the real stack synthesized in-process (esbuild bundle, cdk-nag), its audit function
 * taken from the cloud assembly exactly as CloudFormation would deploy it, and run by the Lambda runner against
 * the AWS fakes and the BigState simulator.
 */

import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { AuditResult, PrincipalOutcome } from '../../functions/core/result.js';
import { KeyAuditStack } from '../../infra/key-audit-stack.js';
import { appWith } from '../infra/support.js';
import {
  type AwsFakes,
  type InvocationResult,
  type InvokeOptions,
  type LambdaRunner,
  type PublishedMessage,
  type RecordedEvent,
  type S3ObjectVersion,
  startAwsFakes,
  startLambdaRunner,
} from './support/index.js';

/** What the tests need of the synthesized stack. */
export interface SynthesizedAudit {
  /** The cloud assembly's folder. */
  readonly assemblyDir: string;
  /** The audit function's asset folder: the bundle as it would be zipped and deployed. */
  readonly bundleDir: string;
  /** The function's `Handler`. */
  readonly handler: string;
  /** The function's `Environment.Variables`, CloudFormation intrinsics unresolved. */
  readonly environment: Readonly<Record<string, unknown>>;
  /** The function's `LoggingConfig`. */
  readonly loggingConfig: Readonly<Record<string, string>>;
  /** The `Input` the schedule sends the function (with Scheduler's context placeholders). */
  readonly scheduleInput: string;
  /** Every resource of the template, by logical id. */
  readonly resources: Readonly<Record<string, TemplateResource>>;
}

/** One resource of a CloudFormation template. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

/**
 * Synthesizes the stack as `cdk synth` does (the app's feature flags, cdk-nag packs, asset metadata on) with
 * the given context, and reads the audit function out of the assembly.
 * @throws when synthesis fails or the template does not hold exactly one function and one schedule.
 */
export function synthesizeAudit(context: Record<string, unknown>): SynthesizedAudit {
  // As the CDK CLI sets it: resources name their asset folder in `aws:asset:path` metadata.
  const app = appWith({ ...context, 'aws:cdk:enable-asset-metadata': true });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  const stack = new KeyAuditStack(app, 'BigStateKeyAudit');
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, TemplateResource>;
  };
  const single = (type: string): TemplateResource => {
    const found = Object.values(template.Resources).filter((resource) => resource.Type === type);
    if (found.length !== 1) throw new Error(`expected one ${type} in the template, found ${found.length}`);
    return found[0] as TemplateResource;
  };
  const fn = single('AWS::Lambda::Function');
  const props = fn.Properties ?? {};
  const assetPath = fn.Metadata?.['aws:asset:path'];
  if (typeof assetPath !== 'string') throw new Error('the function has no aws:asset:path metadata');
  const target = single('AWS::Scheduler::Schedule').Properties?.Target as { Input?: unknown } | undefined;
  if (typeof target?.Input !== 'string') throw new Error('the schedule has no Input');
  return {
    assemblyDir: assembly.directory,
    bundleDir: join(assembly.directory, assetPath),
    handler: String(props.Handler),
    environment: (props.Environment as { Variables: Record<string, unknown> }).Variables,
    loggingConfig: (props.LoggingConfig ?? {}) as Record<string, string>,
    scheduleInput: target.Input,
    resources: template.Resources,
  };
}

/** The AWS resources the function's CloudFormation references resolve to, in the fakes. */
export interface DeployedResources {
  /** `Ref` of the secret: its ARN. */
  readonly secretArn: string;
  /** `Ref` of the bucket: its name. */
  readonly bucketName: string;
  /** `Ref` of the topic: its ARN. */
  readonly topicArn: string;
}

/**
 * The function's environment as CloudFormation would deploy it: plain strings unchanged, `Ref`s to the secret,
 * the snapshot bucket (the versioned one) and the topic replaced by the fakes' resources.
 * @throws on any other intrinsic, so a new reference in the stack fails the tests instead of passing unresolved.
 */
export function resolveEnvironment(
  environment: Readonly<Record<string, unknown>>,
  resources: Readonly<Record<string, TemplateResource>>,
  deployed: DeployedResources,
): Record<string, string> {
  const refs = new Map<string, string>();
  for (const [id, resource] of Object.entries(resources)) {
    const props = resource.Properties ?? {};
    const versioned =
      (props.VersioningConfiguration as { Status?: unknown } | undefined)?.Status === 'Enabled';
    if (resource.Type === 'AWS::SecretsManager::Secret') refs.set(id, deployed.secretArn);
    if (resource.Type === 'AWS::SNS::Topic') refs.set(id, deployed.topicArn);
    if (resource.Type === 'AWS::S3::Bucket' && versioned) refs.set(id, deployed.bucketName);
  }
  const resolved: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) {
    if (typeof value === 'string') {
      resolved[name] = value;
      continue;
    }
    const ref = (value as { Ref?: unknown } | null)?.Ref;
    const replacement = typeof ref === 'string' ? refs.get(ref) : undefined;
    if (replacement === undefined) {
      throw new Error(`cannot resolve ${name} = ${JSON.stringify(value)} to a fake resource`);
    }
    resolved[name] = replacement;
  }
  return resolved;
}

/** The variables Lambda sets from a function's `LoggingConfig` (advanced logging controls). */
export function loggingEnvironment(loggingConfig: Readonly<Record<string, unknown>>): Record<string, string> {
  const env: Record<string, string> = {};
  if (typeof loggingConfig.LogFormat === 'string') env.AWS_LAMBDA_LOG_FORMAT = loggingConfig.LogFormat;
  if (typeof loggingConfig.ApplicationLogLevel === 'string') {
    env.AWS_LAMBDA_LOG_LEVEL = loggingConfig.ApplicationLogLevel;
  }
  return env;
}

/** Options of {@link startAuditWorld}. */
export interface AuditWorldOptions {
  /** The SecretString of the API-key secret (the raw key or `{"apiKey": "..."}`). */
  readonly secretString: string;
  /** The invocation timeout the runner gives (the template's 300 s would let a hung test run for minutes). */
  readonly timeoutMs?: number;
  /** Variables that override the function's own, e.g. `AWS_LAMBDA_LOG_LEVEL`. */
  readonly envOverrides?: Readonly<Record<string, string>>;
}

/** A snapshot of how much each fake had recorded, to read what happened after it. */
export interface Mark {
  readonly sns: number;
  readonly events: number;
  readonly s3: number;
  readonly secrets: number;
}

/** One deployment of the audit function against fresh AWS fakes: what a test invokes and inspects. */
export interface AuditWorld {
  readonly fakes: AwsFakes;
  /** The sandbox of the deployed function (replaced by `redeploy`). */
  readonly runner: LambdaRunner;
  readonly resources: DeployedResources;
  readonly secretName: string;
  /** The deployed function's environment after resolution (without the fakes' endpoint variables). */
  readonly functionEnv: Readonly<Record<string, string>>;
  /** Every invocation so far, oldest first, across deployments. */
  readonly invocations: readonly InvocationResult[];
  invoke(event: unknown, options?: InvokeOptions): Promise<InvocationResult>;
  /**
   * Deploys another synthesis of the stack over the same resources (a stack update: new code and configuration,
   * the same bucket, secret and topic); the next invocation is a cold start.
   */
  redeploy(audit: SynthesizedAudit): Promise<void>;
  mark(): Mark;
  /** SNS messages accepted since `mark` (all when omitted). */
  sns(since?: Mark): PublishedMessage[];
  /** EventBridge events accepted since `mark` (all when omitted). */
  events(since?: Mark): RecordedEvent[];
  /** S3 calls (of one operation) since `mark`, the run lease's aside. */
  s3Calls(operation?: string, since?: Mark): ReturnType<AwsFakes['s3']['calls']>;
  /** The calls on the run lease (`leases/run.json`) since `mark`. */
  leaseCalls(since?: Mark): ReturnType<AwsFakes['s3']['calls']>;
  /** The calls on the inventory report (`reports/`) since `mark`. */
  reportCalls(since?: Mark): ReturnType<AwsFakes['s3']['calls']>;
  /** GetSecretValue calls since `mark`. */
  secretReads(since?: Mark): number;
  /** Every version of an object of the snapshot bucket, oldest first. */
  versions(key: string): S3ObjectVersion[];
  /** The current object of the snapshot bucket, parsed as JSON. */
  json(key: string): Record<string, unknown> | undefined;
  close(): Promise<void>;
}

/**
 * Starts fresh AWS fakes (a snapshot bucket, a topic, the API-key secret) and a Lambda runner for the synthesized
 * bundle, with the function's environment resolved against them.
 */
export async function startAuditWorld(
  audit: SynthesizedAudit,
  options: AuditWorldOptions,
): Promise<AuditWorld> {
  // Only the bucket the stack made exists: a write anywhere else is a NoSuchBucket, as in AWS.
  const fakes = await startAwsFakes({ s3: { buckets: [] } });
  const suffix = randomBytes(6).toString('hex');
  const bucketName = `bigstatekeyaudit-snapshotbucket-${suffix}`;
  fakes.s3.createBucket(bucketName);
  const secretName = `KeyAuditApiKeySecret-${suffix}`;
  const secretArn = fakes.secretsManager.setSecret(secretName, options.secretString);
  const topicArn = `arn:aws:sns:${fakes.env.AWS_REGION}:000000000000:BigStateKeyAudit-KeyAuditTopic-${suffix}`;
  const resources = { secretArn, bucketName, topicArn };

  const deploy = async (deployed: SynthesizedAudit) => {
    const functionEnv = resolveEnvironment(deployed.environment, deployed.resources, resources);
    const runner = await startLambdaRunner({
      bundleDir: deployed.bundleDir,
      handler: deployed.handler,
      env: {
        ...functionEnv,
        ...loggingEnvironment(deployed.loggingConfig),
        ...fakes.env,
        ...options.envOverrides,
      },
      timeoutMs: options.timeoutMs ?? 30_000,
      functionName: 'BigStateKeyAudit-KeyAuditFunction',
    });
    return { functionEnv, runner };
  };
  let current: Awaited<ReturnType<typeof deploy>>;
  try {
    current = await deploy(audit);
  } catch (error) {
    await fakes.close();
    throw error;
  }
  const invocations: InvocationResult[] = [];
  const zero: Mark = { sns: 0, events: 0, s3: 0, secrets: 0 };
  return {
    fakes,
    get runner() {
      return current.runner;
    },
    resources,
    secretName,
    get functionEnv() {
      return current.functionEnv;
    },
    invocations,
    async invoke(event, invokeOptions) {
      const result = await current.runner.invoke(event, invokeOptions);
      invocations.push(result);
      return result;
    },
    async redeploy(next) {
      const replaced = await deploy(next);
      await current.runner.close();
      current = replaced;
    },
    mark: () => ({
      sns: fakes.sns.messages().length,
      events: fakes.eventBridge.events().length,
      s3: fakes.s3.calls().length,
      secrets: fakes.secretsManager.getSecretValueCount,
    }),
    sns: (since = zero) => fakes.sns.messages().slice(since.sns),
    events: (since = zero) => fakes.eventBridge.events().slice(since.events),
    s3Calls: (operation, since = zero) =>
      fakes.s3
        .calls()
        .slice(since.s3)
        .filter((call) => operation === undefined || call.operation === operation)
        // Every real run takes and releases the run lease and writes the report: their calls are asserted on
        // their own (leaseCalls, reportCalls).
        .filter((call) => !/^(leases|reports)\//.test(String(call.input.key ?? ''))),
    reportCalls: (since = zero) =>
      fakes.s3
        .calls()
        .slice(since.s3)
        .filter((call) => String(call.input.key ?? '').startsWith('reports/')),
    leaseCalls: (since = zero) =>
      fakes.s3
        .calls()
        .slice(since.s3)
        .filter((call) => String(call.input.key ?? '').startsWith('leases/')),
    secretReads: (since = zero) => fakes.secretsManager.getSecretValueCount - since.secrets,
    versions: (key) => fakes.s3.versions(bucketName, key),
    json: (key) => {
      const object = fakes.s3.get(bucketName, key);
      return object === undefined ? undefined : (JSON.parse(object.text) as Record<string, unknown>);
    },
    async close() {
      await current.runner.close();
      await fakes.close();
    },
  };
}

/**
 * The event EventBridge Scheduler sends for the schedule's `Input`: its context placeholders filled in, as the
 * scheduler does at each run.
 */
export function scheduledInvocation(input: string, at: Date = new Date()): unknown {
  const filled = input
    .replaceAll('<aws.scheduler.scheduled-time>', at.toISOString().replace(/\.\d{3}Z$/, 'Z'))
    .replaceAll('<aws.scheduler.execution-id>', randomUUID())
    .replaceAll('<aws.scheduler.schedule-arn>', 'arn:aws:scheduler:us-east-1:000000000000:schedule/default/x')
    .replaceAll('<aws.scheduler.attempt-number>', '0');
  if (/<aws\.scheduler\.[^>]+>/.test(filled)) throw new Error(`unfilled placeholder in ${filled}`);
  return JSON.parse(filled);
}

/** The classic EventBridge scheduled-rule event. */
export function classicScheduledEvent(at: Date = new Date()): Record<string, unknown> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:rule/bigstate-key-audit-hourly'],
    detail: {},
  };
}

/** The JSON summary an invocation returns (its values are checked by the tests, field by field). */
export type AuditResultJson = AuditResult;
export type { PrincipalOutcome };

/**
 * The successful result of an invocation.
 * @throws with the function's error (and its logs) when the invocation failed.
 */
export function succeeded(invocation: InvocationResult): AuditResultJson {
  if (invocation.error !== undefined) {
    throw new Error(
      `the invocation failed: ${invocation.error.errorType}: ${invocation.error.errorMessage}\n${invocation.logs.join('\n')}`,
    );
  }
  return invocation.result as AuditResultJson;
}

/** The outcome of one principal in a result. */
export function outcomeOf(result: AuditResultJson, principal: string): PrincipalOutcome {
  const found = result.principals.find((outcome) => outcome.principal === principal);
  if (found === undefined) throw new Error(`no outcome for ${principal} in ${JSON.stringify(result)}`);
  return found;
}

/** The SNS attributes of a message as plain values (`String.Array` parsed). */
export function snsAttributes(message: PublishedMessage): Record<string, { type: string; value: unknown }> {
  return Object.fromEntries(
    Object.entries(message.attributes).map(([name, attribute]) => [
      name,
      {
        type: attribute.dataType,
        value:
          attribute.dataType === 'String.Array'
            ? JSON.parse(attribute.stringValue ?? 'null')
            : attribute.stringValue,
      },
    ]),
  );
}

/** The message for a principal (by its `principal` attribute). */
export function snsFor(messages: readonly PublishedMessage[], principal: string): PublishedMessage[] {
  return messages.filter((message) => message.attributes.principal?.stringValue === principal);
}

/** The events for a principal (by `detail.principal`). */
export function eventsFor(events: readonly RecordedEvent[], principal: string): RecordedEvent[] {
  return events.filter((event) => event.detailJson.principal === principal);
}

/** The change id an SNS body carries. */
export function changeIdInBody(message: PublishedMessage): string | undefined {
  return /^Change id: (chg-[0-9a-f]{32})$/m.exec(message.message)?.[1];
}

/**
 * Where any of `secrets` shows up in what the function left behind: every invocation's output, result and error;
 * every SNS message and EventBridge event; every version of every stored object; every request the S3, SNS and
 * EventBridge fakes received. An empty list means none.
 */
export function secretLeaks(world: AuditWorld, secrets: readonly string[]): string[] {
  const places: Array<[string, string]> = [];
  world.invocations.forEach((invocation, index) => {
    const name = `invocation ${index + 1}`;
    invocation.logs.forEach((line, at) => {
      places.push([`${name} log line ${at + 1}`, line]);
    });
    places.push([`${name} result`, JSON.stringify(invocation.result) ?? '']);
    places.push([`${name} error`, JSON.stringify(invocation.error) ?? '']);
  });
  for (const message of world.fakes.sns.messages()) {
    places.push([`SNS message ${message.messageId}`, JSON.stringify(message)]);
  }
  for (const event of world.fakes.eventBridge.events()) {
    places.push([`EventBridge event ${event.eventId}`, JSON.stringify(event)]);
  }
  for (const object of world.fakes.s3.objects()) {
    for (const version of world.fakes.s3.versions(object.bucket, object.key)) {
      places.push([
        `s3://${object.bucket}/${object.key} (${version.versionId})`,
        `${object.key}\n${version.text}`,
      ]);
    }
  }
  for (const fake of [world.fakes.s3, world.fakes.sns, world.fakes.eventBridge]) {
    for (const call of fake.requests) {
      const text = `${call.url}\n${JSON.stringify(call.headers)}\n${call.body.toString('utf8')}`;
      places.push([`${fake.service} ${call.operation} request`, text]);
    }
  }
  const forms = secrets.flatMap(encodedForms).map((form) => form.toLowerCase());
  return places
    .filter(([, text]) => {
      const lower = text.toLowerCase();
      return forms.some((form) => lower.includes(form));
    })
    .map(([where]) => where);
}

/**
 * The ways a server or a library could echo a secret: raw, URL-encoded (both ways), base64 and base64url (with
 * and without padding), JSON-escaped. Compared case-insensitively, which also covers the case-changed forms.
 */
export function encodedForms(secret: string): string[] {
  const base64 = Buffer.from(secret, 'utf8').toString('base64');
  const forms = [
    secret,
    encodeURIComponent(secret),
    new URLSearchParams({ k: secret }).toString().slice(2),
    base64,
    base64.replace(/=+$/, ''),
    Buffer.from(secret, 'utf8').toString('base64url'),
    JSON.stringify(secret).slice(1, -1),
  ];
  return [...new Set(forms)];
}
