/**
 * The fan-out (`fanOut=true`) as synthesized: the state machine's definition validated by asl-validator, the
 * Distributed Map's real fields (the local run in test/e2e/fan-out.test.ts cannot execute them), the budget of
 * BigState requests, logging, the schedule, alarms, each role's statements, and cdk-nag.
 */
import { readFileSync } from 'node:fs';
import aslValidator from 'asl-validator';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LEASE_KEY, RUN_STATE_KEY } from '../../functions/core/layout.js';
import { FAN_OUT_ALARMS, fanOutRunbookLink, RUNBOOK_DOCUMENT } from '../../infra/key-audit-alarms.js';
import {
  FAN_OUT_TIMEOUT,
  fanOutConcurrency,
  MAP_LABEL,
  MAX_ITEMS_PER_BATCH,
  PER_WORKER_CONNECTIONS,
} from '../../infra/key-audit-fan-out.js';
import { RUNS_PREFIX } from '../../infra/key-audit-storage.js';
import {
  type AslDefinition,
  type AslState,
  allStates,
  type Reference,
  stateMachineDefinition,
  type TemplateResource,
} from './state-machine-definition.js';
import {
  acknowledgements,
  logicalId,
  ROOT,
  type Synthesized,
  synthesize,
  usedAcknowledgements,
} from './support.js';

const HOST = 'https://api.bigstate.dev';
const PRINCIPALS = ['root', 'svc a&b'];

// Synthesizing bundles the functions with esbuild: once for the whole file.
let s: Synthesized;
let resources: Record<string, TemplateResource>;
let id: ReturnType<typeof idsOf>;
beforeAll(() => {
  s = synthesize({
    bigstateHost: HOST,
    principals: JSON.stringify(PRINCIPALS),
    principalPattern: 'svc-*',
    maxKeyAgeDays: '90',
    fanOut: 'true',
  });
  resources = s.template.toJSON().Resources as Record<string, TemplateResource>;
  id = idsOf(s);
});

function idsOf(synthesized: Synthesized) {
  const { stack } = synthesized;
  const audit = stack.audit;
  const fanOut = audit.fanOut;
  if (fanOut === undefined) throw new Error('fanOut=true synthesized no fan-out');
  const role = (construct: { role?: IConstruct | undefined }) => {
    if (construct.role === undefined) throw new Error('no role');
    return logicalId(stack, construct.role);
  };
  return {
    audit: logicalId(stack, audit.function),
    auditLogGroup: logicalId(stack, audit.logGroup),
    bucket: logicalId(stack, audit.bucket),
    topic: logicalId(stack, audit.topic),
    secret: logicalId(stack, audit.secret),
    plan: logicalId(stack, fanOut.planFunction),
    worker: logicalId(stack, fanOut.workerFunction),
    finish: logicalId(stack, fanOut.finishFunction),
    planRole: role(fanOut.planFunction),
    workerRole: role(fanOut.workerFunction),
    finishRole: role(fanOut.finishFunction),
    stateMachine: logicalId(stack, fanOut.stateMachine),
    stateMachineRole: logicalId(stack, fanOut.stateMachine.role),
    logGroup: logicalId(stack, fanOut.logGroup),
  };
}

/** Placeholders shaped as the real values, so the validator's ARN checks see ARNs. */
function placeholder(reference: Reference): string {
  if (reference.kind === 'ref') {
    if (reference.name === 'AWS::Partition') return 'aws';
    if (reference.name === 'AWS::Region') return 'us-east-1';
    if (reference.name === 'AWS::AccountId') return '123456789012';
    return `bucket-${reference.name.toLowerCase()}`;
  }
  if (reference.attribute === 'Arn') {
    return `arn:aws:lambda:us-east-1:123456789012:function:${reference.name}`;
  }
  throw new Error(`unexpected reference ${JSON.stringify(reference)}`);
}

const definition = (): AslDefinition => stateMachineDefinition(resources, placeholder);
const state = (name: string): AslState => {
  const found = allStates(definition())[name];
  if (found === undefined) throw new Error(`no state ${name}`);
  return found;
};
const lambdaArn = (logical: string) => `arn:aws:lambda:us-east-1:123456789012:function:${logical}`;
const fn = (logical: string) =>
  resources[logical] as TemplateResource & { Properties: Record<string, unknown> };
const variables = (logical: string) =>
  (fn(logical).Properties.Environment as { Variables: Record<string, unknown> }).Variables;

/** A template value as text: `<X>` for Ref, `<X.Y>` for GetAtt, `<name of X>` for a state machine's name. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if (typeof v.Ref === 'string') return `<${v.Ref}>`;
  if (Array.isArray(v['Fn::GetAtt'])) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if (Array.isArray(v['Fn::Join'])) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(separator);
  }
  const select = v['Fn::Select'] as [number, { 'Fn::Split': [string, { Ref: string }] }] | undefined;
  if (Array.isArray(select) && select[0] === 6) return `<name of ${select[1]['Fn::Split'][1].Ref}>`;
  throw new Error(`cannot read ${JSON.stringify(value)}`);
}

/** Each statement of a role's policies as `[actions, resources]`, both sorted. */
function statementsOf(roleId: string): Array<[string[], string[]]> {
  const policies = Object.values(resources).filter(
    (resource) =>
      resource.Type === 'AWS::IAM::Policy' &&
      ((resource.Properties?.Roles as Array<{ Ref: string }>) ?? []).some((role) => role.Ref === roleId),
  );
  const documentOf = (policy: TemplateResource) =>
    policy.Properties?.PolicyDocument as { Statement: Array<Record<string, unknown>> };
  return policies.flatMap((policy) =>
    documentOf(policy).Statement.map((statement) => {
      expect(statement.Effect).toBe('Allow');
      expect(statement.Condition).toBeUndefined();
      const actions = [statement.Action].flat() as string[];
      const targets = [statement.Resource].flat().map(text);
      return [actions.sort(), targets.sort()] as [string[], string[]];
    }),
  );
}

/** Every (action, resource) pair a role may use, as `action on resource`, sorted. */
function grantsOf(roleId: string): string[] {
  return statementsOf(roleId)
    .flatMap(([actions, targets]) => actions.flatMap((action) => targets.map((t) => `${action} on ${t}`)))
    .sort();
}

describe('the state machine definition', () => {
  it('is valid Amazon States Language (asl-validator, paths and ARNs checked)', () => {
    const result = aslValidator(definition(), { checkPaths: true, checkArn: true });
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
  });

  it('is refused by the validator when broken (the check has teeth)', () => {
    const broken = structuredClone(definition()) as { States: Record<string, Record<string, unknown>> };
    delete broken.States.Plan?.Next;
    expect(aslValidator(broken, { checkPaths: true, checkArn: true }).isValid).toBe(false);
    const badPath = structuredClone(definition()) as { States: Record<string, Record<string, unknown>> };
    (badPath.States.Plan as Record<string, unknown>).ResultPath = '$..plan[';
    expect(aslValidator(badPath, { checkPaths: true, checkArn: true }).isValid).toBe(false);
  });

  it('plans, skips when another run holds the lease, maps, then finishes', () => {
    const d = definition();
    expect(d.StartAt).toBe('Plan');
    expect(Object.keys(d.States).sort()).toEqual(
      ['Another run holds the lease', 'Audit principals', 'Finish', 'Plan', 'Skipped?'].sort(),
    );
    // The plan's answer is kept beside the input; the plan gets the execution's input and its name (the run
    // id, the same in every attempt of the task, so a retried plan knows the lease it took as its own).
    expect(state('Plan')).toMatchObject({
      Type: 'Task',
      Resource: lambdaArn(id.plan),
      ResultPath: '$.plan',
      Next: 'Skipped?',
      Parameters: { 'input.$': '$', 'execution.$': '$$.Execution.Name' },
    });
    expect(state('Skipped?')).toEqual(
      expect.objectContaining({
        Type: 'Choice',
        Choices: [
          {
            And: [
              { Variable: '$.plan.skipped', IsPresent: true },
              { Variable: '$.plan.skipped', IsString: true },
            ],
            Next: 'Another run holds the lease',
          },
        ],
        Default: 'Audit principals',
      }),
    );
    // No audit when skipped, and the output says why (the plan's `skipped`).
    expect(state('Another run holds the lease')).toMatchObject({ Type: 'Succeed', OutputPath: '$.plan' });
    expect(state('Audit principals')).toMatchObject({ ResultPath: '$.map', Next: 'Finish' });
    // The Map failing as a whole (its list unreadable, its results unwritable) still ends in the finish step.
    expect(state('Audit principals').Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.map', Next: 'Finish' },
    ]);
    expect(state('Finish')).toMatchObject({
      Type: 'Task',
      Resource: lambdaArn(id.finish),
      Parameters: { 'plan.$': '$.plan', 'map.$': '$.map' },
      End: true,
    });
  });

  it('retries only Lambda service errors, never a step’s own error', () => {
    for (const name of ['Plan', 'Audit batch', 'Finish']) {
      const retries = state(name).Retry as Array<{ ErrorEquals: string[] }>;
      expect(retries.flatMap((retry) => retry.ErrorEquals).length, name).toBeGreaterThan(0);
      expect(
        retries.flatMap((retry) => retry.ErrorEquals).every((error) => error.startsWith('Lambda.')),
      ).toBe(true);
    }
  });

  it('times out with the state machine timeout, which the plan computes the run deadline from', () => {
    expect(definition().TimeoutSeconds).toBe(FAN_OUT_TIMEOUT.toSeconds());
    expect(variables(id.plan).FAN_OUT_TIMEOUT_MS).toBe(String(FAN_OUT_TIMEOUT.toMilliseconds()));
    // Below the default schedule period: a run has ended (or timed out) before the next tick.
    expect(FAN_OUT_TIMEOUT.toMinutes()).toBeLessThan(60);
  });
});

describe('the Distributed Map', () => {
  it('runs each batch as a Standard child execution of the worker', () => {
    const map = state('Audit principals');
    expect(map.Type).toBe('Map');
    expect(map.Label).toBe(MAP_LABEL);
    const processor = map.ItemProcessor as AslDefinition & { ProcessorConfig: unknown };
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(processor.StartAt).toBe('Audit batch');
    expect(processor.States['Audit batch']).toMatchObject({
      Type: 'Task',
      Resource: lambdaArn(id.worker),
      End: true,
    });
    // The batch ({Items, BatchInput}) is the worker's payload as it comes.
    expect(processor.States['Audit batch']).not.toHaveProperty('Parameters');
  });

  it('reads the plan’s list of principals from S3 as a JSON array (ItemReader)', () => {
    expect(state('Audit principals').ItemReader).toEqual({
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { 'Bucket.$': '$.plan.itemsBucket', 'Key.$': '$.plan.itemsKey' },
    });
  });

  it('batches principals with the run id, deadline and dry-run flag in every batch (ItemBatcher)', () => {
    expect(state('Audit principals').ItemBatcher).toEqual({
      MaxItemsPerBatch: MAX_ITEMS_PER_BATCH,
      MaxInputBytesPerBatch: 192 * 1024,
      // JSONPath selections (`.$`): literal "$.plan.runId" strings would reach the worker as they are.
      BatchInput: { 'runId.$': '$.plan.runId', 'deadline.$': '$.plan.deadline', 'dryRun.$': '$.plan.dryRun' },
    });
    // A child's input stays under Step Functions' 256 KiB.
    expect(
      (state('Audit principals').ItemBatcher as { MaxInputBytesPerBatch: number }).MaxInputBytesPerBatch,
    ).toBeLessThan(256 * 1024);
  });

  it('tolerates every failed batch: one never stops the others (the finish step fails the run)', () => {
    expect(state('Audit principals').ToleratedFailurePercentage).toBe(100);
    expect(state('Audit principals')).not.toHaveProperty('ToleratedFailureCount');
  });

  it('writes its results to the snapshot bucket under runs/<runId>/results (ResultWriter)', () => {
    expect(state('Audit principals').ResultWriter).toEqual({
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: {
        Bucket: placeholder({ kind: 'ref', name: id.bucket }),
        'Prefix.$': `States.Format('${RUNS_PREFIX}{}/results', $.plan.runId)`,
      },
    });
    // The run's files expire; snapshots and history are not touched by the rule.
    const bucket = resources[id.bucket]?.Properties as {
      LifecycleConfiguration: { Rules: Array<Record<string, unknown>> };
    };
    expect(bucket.LifecycleConfiguration.Rules).toContainEqual({
      Id: 'expire-run-files',
      Prefix: RUNS_PREFIX,
      ExpirationInDays: 30,
      Status: 'Enabled',
    });
  });
});

describe('the budget of BigState requests', () => {
  it('runs MaxConcurrency workers of PER_WORKER_CONNECTIONS each: 4 × 4 = the default 16', () => {
    const maxConcurrency = state('Audit principals').MaxConcurrency as number;
    const perWorker = Number(variables(id.worker).BIGSTATE_MAX_REQUESTS_IN_FLIGHT);
    expect([maxConcurrency, perWorker]).toEqual([4, PER_WORKER_CONNECTIONS]);
    expect(maxConcurrency * perWorker).toBeLessThanOrEqual(16);
    // The plan runs alone (before the Map), the audit function alone (a subset, under the same lease).
    expect(variables(id.plan).BIGSTATE_MAX_REQUESTS_IN_FLIGHT).toBe('16');
    expect(variables(id.audit).BIGSTATE_MAX_REQUESTS_IN_FLIGHT).toBe('16');
  });

  it.each([1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 64, 100, 1000, 100_000])(
    'never exceeds maxRequestsInFlight = %i, and uses most of it',
    (max) => {
      const { maxConcurrency, perWorkerConnections } = fanOutConcurrency(max);
      expect(maxConcurrency).toBeGreaterThanOrEqual(1);
      expect(perWorkerConnections).toBeGreaterThanOrEqual(1);
      expect(maxConcurrency * perWorkerConnections).toBeLessThanOrEqual(max);
      // MaxConcurrency 0 would mean "unlimited" to Step Functions; 10,000 is its highest.
      expect(maxConcurrency).toBeLessThanOrEqual(10_000);
      if (maxConcurrency < 10_000)
        expect(maxConcurrency * perWorkerConnections).toBeGreaterThan(max - perWorkerConnections);
    },
  );

  it('refuses a budget that is not a whole number of at least 1', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => fanOutConcurrency(bad)).toThrow(RangeError);
  });
});

describe('the functions', () => {
  it('are one bundle with three handlers, beside the audit function (kept for subset runs, one at a time)', () => {
    const code = (logical: string) => (fn(logical).Properties.Code as { S3Key: string }).S3Key;
    expect([id.plan, id.worker, id.finish].map((logical) => fn(logical).Properties.Handler)).toEqual([
      'index.plan',
      'index.worker',
      'index.finish',
    ]);
    expect(new Set([id.plan, id.worker, id.finish].map(code)).size).toBe(1);
    expect(fn(id.audit).Properties).toMatchObject({
      Handler: 'index.handler',
      ReservedConcurrentExecutions: 1,
    });
    for (const logical of [id.plan, id.worker, id.finish]) {
      expect(fn(logical).Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Timeout: 300,
        MemorySize: 512,
        // Their lines land beside the audit function's: the dashboard and the runbooks read one log group.
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: id.auditLogGroup } },
      });
      expect(fn(logical).Properties).not.toHaveProperty('ReservedConcurrentExecutions');
    }
    expect(Object.values(resources).filter((r) => r.Type === 'AWS::Lambda::Function')).toHaveLength(4);
  });

  it('get the audit function’s variables, each with its own share of the request budget', () => {
    const audit = variables(id.audit);
    const { BIGSTATE_MAX_REQUESTS_IN_FLIGHT: _audit, ...shared } = audit;
    expect(shared).toMatchObject({
      BIGSTATE_HOST: HOST,
      BIGSTATE_PRINCIPALS: JSON.stringify(PRINCIPALS),
      BIGSTATE_PRINCIPAL_PATTERN: 'svc-*',
      BIGSTATE_MAX_KEY_AGE_DAYS: '90',
    });
    for (const [logical, extra] of [
      [id.plan, { BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '16', FAN_OUT_TIMEOUT_MS: '3300000' }],
      [id.worker, { BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '4' }],
      [id.finish, { BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '16' }],
    ] as const) {
      expect(variables(logical)).toEqual({ ...shared, ...extra });
    }
  });
});

describe('logging', () => {
  it('logs errors only, never execution data (inputs hold principal and key names)', () => {
    const machine = resources[id.stateMachine]?.Properties as Record<string, unknown>;
    expect(machine).toMatchObject({
      StateMachineType: 'STANDARD',
      LoggingConfiguration: {
        Level: 'ERROR',
        IncludeExecutionData: false,
        Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [id.logGroup, 'Arn'] } } }],
      },
      TracingConfiguration: { Enabled: false },
    });
    const logGroup = resources[id.logGroup]?.Properties as { LogGroupName: string; RetentionInDays: number };
    // Under /aws/vendedlogs/: Step Functions' log delivery then stays off the account's Logs resource policy.
    expect(logGroup.LogGroupName).toMatch(/^\/aws\/vendedlogs\/states\/Audit-[0-9a-f]{12}$/);
    expect(logGroup.RetentionInDays).toBe(90);
    // A fixed name: a retained copy would block the next deployment of the stack after a delete.
    expect(resources[id.logGroup]).toMatchObject({ DeletionPolicy: 'Delete' });
  });
});

describe('the schedule', () => {
  it('starts the state machine with the scheduled input, through a role that may do only that', () => {
    const [schedule] = Object.values(resources).filter((r) => r.Type === 'AWS::Scheduler::Schedule');
    const target = schedule?.Properties?.Target as Record<string, unknown>;
    expect(target.Arn).toEqual({ Ref: id.stateMachine });
    expect(JSON.parse(target.Input as string)).toEqual({
      source: 'bigstate.key-audit.schedule',
      scheduledTime: '<aws.scheduler.scheduled-time>',
      executionId: '<aws.scheduler.execution-id>',
    });
    const roleId = (target.RoleArn as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0] as string;
    const deadLetters = (target.DeadLetterConfig as { Arn: unknown }).Arn;
    expect(grantsOf(roleId)).toEqual([
      `sqs:SendMessage on ${text(deadLetters)}`,
      `states:StartExecution on <${id.stateMachine}>`,
    ]);
  });
});

describe('permissions', () => {
  const bucket = () => `<${id.bucket}.Arn>`;
  const logs = () => [
    `logs:CreateLogStream on <${id.auditLogGroup}.Arn>`,
    `logs:PutLogEvents on <${id.auditLogGroup}.Arn>`,
  ];
  const notices = () => [
    'events:PutEvents on arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default',
    `kms:Decrypt on <${only('AWS::KMS::Key')}.Arn>`,
    `kms:GenerateDataKey* on <${only('AWS::KMS::Key')}.Arn>`,
    `sns:Publish on <${id.topic}>`,
  ];
  const only = (type: string) => {
    const found = Object.entries(resources).filter(([, r]) => r.Type === type);
    expect(found).toHaveLength(1);
    return (found[0] as [string, TemplateResource])[0];
  };

  it('let the plan read the key, take the lease, read the run record, list, and write the run’s list', () => {
    expect(grantsOf(id.planRole)).toEqual(
      [
        ...logs(),
        `s3:GetObject on ${bucket()}/${LEASE_KEY}`,
        `s3:GetObject on ${bucket()}/${RUN_STATE_KEY}`,
        // Discovery: the state of a principal stored under a hash is read for its name.
        `s3:GetObject on ${bucket()}/snapshots/*`,
        `s3:ListBucket on ${bucket()}`,
        `s3:PutObject on ${bucket()}/${LEASE_KEY}`,
        `s3:PutObject on ${bucket()}/${RUNS_PREFIX}*`,
        `secretsmanager:DescribeSecret on <${id.secret}>`,
        `secretsmanager:GetSecretValue on <${id.secret}>`,
      ].sort(),
    );
  });

  it('let a worker do what a single run does per principal (discovery included), but not touch the lease', () => {
    expect(grantsOf(id.workerRole)).toEqual(
      [
        ...logs(),
        ...notices(),
        `s3:DeleteObject on ${bucket()}/failures/*`,
        `s3:DeleteObject on ${bucket()}/snapshots/*`,
        `s3:GetObject on ${bucket()}/failures/*`,
        `s3:GetObject on ${bucket()}/snapshots/*`,
        `s3:ListBucket on ${bucket()}`,
        `s3:PutObject on ${bucket()}/archive/*`,
        `s3:PutObject on ${bucket()}/failures/*`,
        `s3:PutObject on ${bucket()}/history/*`,
        `s3:PutObject on ${bucket()}/snapshots/*`,
        `secretsmanager:DescribeSecret on <${id.secret}>`,
        `secretsmanager:GetSecretValue on <${id.secret}>`,
      ].sort(),
    );
  });

  it('let finish read the results and the states, keep the run record and the report, release the lease and publish; no key, never a state written', () => {
    expect(grantsOf(id.finishRole)).toEqual(
      [
        ...logs(),
        ...notices(),
        `s3:DeleteObject on ${bucket()}/${LEASE_KEY}`,
        `s3:GetObject on ${bucket()}/${LEASE_KEY}`,
        `s3:GetObject on ${bucket()}/${RUN_STATE_KEY}`,
        `s3:GetObject on ${bucket()}/${RUNS_PREFIX}*`,
        `s3:GetObject on ${bucket()}/reports/*`,
        `s3:GetObject on ${bucket()}/snapshots/*`,
        `s3:ListBucket on ${bucket()}`,
        `s3:PutObject on ${bucket()}/${RUN_STATE_KEY}`,
        `s3:PutObject on ${bucket()}/reports/*`,
      ].sort(),
    );
  });

  it('let the state machine invoke its three functions, read and write run files, and run its Map', () => {
    const invoke = [id.finish, id.plan, id.worker].flatMap((f) => [
      `lambda:InvokeFunction on <${f}.Arn>`,
      `lambda:InvokeFunction on <${f}.Arn>:*`,
    ]);
    const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<name of ${id.stateMachine}>`;
    const logDelivery = [
      'logs:CreateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:DescribeLogGroups',
      'logs:DescribeResourcePolicies',
      'logs:GetLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:UpdateLogDelivery',
    ].map((action) => `${action} on *`);
    expect(grantsOf(id.stateMachineRole)).toEqual(
      [
        ...invoke,
        // ItemReader (GetObject) and ResultWriter (as AWS documents it), on the run files only.
        `s3:AbortMultipartUpload on ${bucket()}/${RUNS_PREFIX}*`,
        `s3:GetObject on ${bucket()}/${RUNS_PREFIX}*`,
        `s3:ListMultipartUploadParts on ${bucket()}/${RUNS_PREFIX}*`,
        `s3:PutObject on ${bucket()}/${RUNS_PREFIX}*`,
        // The Map Run's child executions (CDK's grant).
        `states:DescribeExecution on ${executions}:*`,
        `states:RedriveExecution on ${executions}/${MAP_LABEL}:*`,
        `states:StartExecution on <${id.stateMachine}>`,
        `states:StopExecution on ${executions}:*`,
        // Log delivery has no resource-level permissions.
        ...logDelivery,
      ].sort(),
    );
  });

  it('name a resource for every action but log delivery, and a bucket path for every object action', () => {
    for (const roleId of [id.planRole, id.workerRole, id.finishRole, id.stateMachineRole]) {
      for (const grant of grantsOf(roleId)) {
        if (grant.endsWith(' on *')) expect(grant).toMatch(/^logs:\w+ on \*$/);
        if (/^s3:\w+Object/.test(grant))
          expect(grant).toMatch(/Arn>\/(snapshots|history|archive|leases|runs|reports|failures)\//);
      }
    }
  });
});

describe('alarms', () => {
  const alarms = () =>
    Object.values(resources)
      .filter((r) => r.Type === 'AWS::CloudWatch::Alarm')
      .map((r) => r.Properties as Record<string, unknown>)
      .filter((p) => String(p.AlarmName).includes('fan-out'));

  it('fire on a failed, timed-out or aborted execution, each with its runbook, notifying the topic both ways', () => {
    const found = alarms().map((alarm) => [alarm.AlarmName, alarm.MetricName]);
    expect(found.sort()).toEqual(
      [
        ['Audit-fan-out-aborted', 'ExecutionsAborted'],
        ['Audit-fan-out-failed', 'ExecutionsFailed'],
        ['Audit-fan-out-timed-out', 'ExecutionsTimedOut'],
      ].sort(),
    );
    for (const alarm of alarms()) {
      expect(alarm).toMatchObject({
        Namespace: 'AWS/States',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: id.stateMachine } }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: id.topic }],
        OKActions: [{ Ref: id.topic }],
      });
      expect(String(alarm.AlarmDescription)).toMatch(
        /^What happened: .+ What it means: .+ First thing to do: .+ Runbook: README\.md#alarm-fan-out-[a-z-]+ \(bigstate-key-audit\)\.$/,
      );
    }
  });

  it('link runbooks that the README has, once each', () => {
    const readme = readFileSync(`${ROOT}/${RUNBOOK_DOCUMENT}`, 'utf8');
    for (const [kind, alarm] of Object.entries(FAN_OUT_ALARMS)) {
      expect(fanOutRunbookLink(kind as keyof typeof FAN_OUT_ALARMS)).toBe(`README.md#${alarm.anchor}`);
      expect(readme.split(`\n#### Alarm: ${alarm.suffix}\n`)).toHaveLength(2);
      expect(readme).toContain(`\`<stack>-${alarm.suffix}\``);
    }
  });
});

describe('outputs', () => {
  it('give the state machine and the start-execution commands, and keep a subset run in the function', () => {
    const outputs = s.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.StateMachineArn?.Value).toEqual({ Ref: id.stateMachine });
    expect(text(outputs.ManualRunCommand?.Value)).toBe(
      `aws stepfunctions start-execution --region <AWS::Region> --state-machine-arn <${id.stateMachine}> --input '{}'`,
    );
    // The plan refuses a dry run (it writes its plan to S3): a dry run is an invocation of the function.
    expect(text(outputs.DryRunCommand?.Value)).toBe(
      `aws lambda invoke --region <AWS::Region> --function-name <${id.audit}> --cli-binary-format raw-in-base64-out --payload '{"dryRun":true}' audit-dry-run.json`,
    );
    expect(text(outputs.SubsetRunCommand?.Value)).toBe(
      `aws lambda invoke --region <AWS::Region> --function-name <${id.audit}> --cli-binary-format raw-in-base64-out --payload '{"principals":["<principal>"]}' audit-result.json`,
    );
  });
});

describe('cdk-nag', () => {
  it.each([
    ['AwsSolutions', () => new AwsSolutionsChecks()],
    ['Serverless', () => new ServerlessChecks()],
  ])('%s reports nothing unacknowledged', (_pack, pack) => {
    const report = pack().validateScope(s.app);
    expect(
      report.violations.map((v) => `${v.ruleName} at ${v.violatingResources[0]?.constructPath}`),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('acknowledges nothing that is not found, each with a reason', () => {
    const acknowledged = acknowledgements(s.app);
    const used = usedAcknowledgements(s.app);
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(used.size).toBeGreaterThan(0);
    expect(acknowledged.map(([ack]) => ack).filter((ack) => !used.has(ack))).toEqual([]);
    for (const [ack, reason] of acknowledged) {
      expect(reason.length, ack).toBeGreaterThan(60);
      if (ack.includes('IAM5')) expect(ack).toMatch(/IAM5\[(Action|Resource)::.+\]$/);
    }
  });
});
