/**
 * The fan-out (`fanOut`): each schedule tick runs a Step Functions (Standard) state machine instead of the audit
 * function, so a run covers more principals than one function invocation can.
 *
 *   Plan ──► skipped? ──yes──► Another run holds the lease (Succeed, output: the plan)
 *               │ no
 *               ▼
 *   Audit principals (Distributed Map: the plan's list from S3, batches of principals, one worker per batch,
 *               │      ToleratedFailurePercentage 100, results to S3)
 *               ▼
 *   Finish (reads the results, run-level record, metrics, lease released; fails when a principal failed)
 *
 * The three steps are one bundle (`functions/fan-out.ts`) with three handlers, each function with its own role and
 * exactly the access its step needs. They log to the audit function's log group, so the dashboard's key counts
 * and the runbooks' log lines work the same in both modes.
 */
import { type CfnElement, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type ILogGroup, LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket, IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  type IChainable,
  ItemBatcher,
  JsonPath,
  LogLevel,
  ResultWriterV2,
  type ResultWriterV2Props,
  S3JsonItemReader,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2 } from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { type AuditResourceNames, auditEnvironment, auditFunction, FAN_OUT_ENTRY } from './audit-function.js';
import type { KeyAuditConfig } from './config.js';
import { TOPIC_KEY_REASON } from './key-audit-notifications.js';
import {
  expireRunFiles,
  grantFinishAccess,
  grantPlanAccess,
  grantSnapshotAccess,
  REPORTS_PREFIX,
  RUNS_PREFIX,
  SNAPSHOTS_PREFIX,
  snapshotAccessAcknowledgements,
} from './key-audit-storage.js';
import { acknowledge } from './nag.js';

/**
 * The most BigState requests one worker keeps open at once (its `BIGSTATE_MAX_REQUESTS_IN_FLIGHT`): as many as
 * the principals a worker audits at a time, so each principal's walk has its connection.
 */
export const PER_WORKER_CONNECTIONS = 4;
/**
 * Principals per batch, i.e. per worker invocation. Each child execution costs state transitions (Standard: per
 * transition, about 3 a child): 200 keeps 10,000 principals at 50 children a run, about $2.90 a month hourly (see
 * the README's cost section). 200 principals at 4 at a time are 50 rounds, within a worker's 5 minutes at real
 * latencies (two pages of 100-200 ms and the state's read: about 25 s).
 */
export const MAX_ITEMS_PER_BATCH = 200;
/**
 * A batch's most bytes: a child execution's input is limited to 256 KiB; names are data (any length), so a
 * batch of long names is cut before it reaches that.
 */
export const MAX_INPUT_BYTES_PER_BATCH = 192 * 1024;
/** Step Functions' highest MaxConcurrency for a Distributed Map. */
const DISTRIBUTED_MAP_MAX_CONCURRENCY = 10_000;
/**
 * How long a fanned-out run may take: below the default schedule period (one hour), so a run has ended, or
 * timed out, before the next tick. The plan computes the run's deadline from it (`FAN_OUT_TIMEOUT_MS`).
 */
export const FAN_OUT_TIMEOUT = Duration.minutes(55);
/** The Map's label: it names the child executions (`<state machine>/<label>:<id>`). */
export const MAP_LABEL = 'AuditPrincipals';

/** How the run's BigState budget is shared: each worker's connection cap and the Map's concurrency. */
export interface FanOutConcurrency {
  /** The most BigState requests one worker keeps open (its `BIGSTATE_MAX_REQUESTS_IN_FLIGHT`). */
  readonly perWorkerConnections: number;
  /** The Map's MaxConcurrency: the most workers (batches) running at once. */
  readonly maxConcurrency: number;
}

/**
 * Splits `maxRequestsInFlight` (the most BigState requests open at once across the whole run) between the Map and
 * its workers: each worker gets `min(4, maxRequestsInFlight)` connections and the Map runs
 * `floor(maxRequestsInFlight / that)` workers at once (at least 1), so `maxConcurrency × perWorkerConnections`
 * never exceeds `maxRequestsInFlight`. The default 16 gives 4 workers × 4 connections.
 * @throws RangeError when `maxRequestsInFlight` is not a whole number of at least 1.
 */
export function fanOutConcurrency(
  maxRequestsInFlight: number,
  perWorkerCap: number = PER_WORKER_CONNECTIONS,
): FanOutConcurrency {
  if (!Number.isSafeInteger(maxRequestsInFlight) || maxRequestsInFlight < 1) {
    throw new RangeError(
      `maxRequestsInFlight must be a whole number of at least 1; got ${maxRequestsInFlight}`,
    );
  }
  const perWorkerConnections = Math.min(perWorkerCap, maxRequestsInFlight);
  const maxConcurrency = Math.min(
    DISTRIBUTED_MAP_MAX_CONCURRENCY,
    Math.max(1, Math.floor(maxRequestsInFlight / perWorkerConnections)),
  );
  return { perWorkerConnections, maxConcurrency };
}

/** Properties of a {@link KeyAuditFanOut}. */
export interface KeyAuditFanOutProps {
  /** The validated configuration of the audit. */
  readonly config: KeyAuditConfig;
  /** The snapshot bucket: states, history, the run lease, and the run's files under `runs/`. */
  readonly bucket: Bucket;
  /** The secret holding the BigState API key. */
  readonly secret: ISecret;
  /** The notification topic. */
  readonly topic: ITopic;
  /** The bus change events go to. */
  readonly eventBus: IEventBus;
  /** The log group the three functions write to: the audit function's. */
  readonly functionLogGroup: ILogGroup;
  /** The resource names of the functions' environment. */
  readonly resourceNames: AuditResourceNames;
  /**
   * Retention of the state machine's log group.
   * @default RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: RetentionDays;
  /**
   * Memory of the worker function, in MB (it holds a batch's snapshots and walks).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * The entry file (TypeScript) exporting `plan`, `worker` and `finish`.
   * @default - `functions/fan-out.ts` of this project
   */
  readonly entry?: string;
}

/**
 * The fan-out of one audit: the state machine, its plan, worker and finish functions, and its log group.
 * @throws RangeError when `config.maxRequestsInFlight` is invalid (the configuration has checked it already).
 */
export class KeyAuditFanOut extends Construct {
  /** The Standard state machine a schedule tick (or a full manual run) starts. */
  readonly stateMachine: StateMachine;
  /** The plan step: lease, principals, the list for the Map. */
  readonly planFunction: NodejsFunction;
  /** The Map's worker: one batch of principals. */
  readonly workerFunction: NodejsFunction;
  /** The finish step: results, run-level record, metrics, lease released. */
  readonly finishFunction: NodejsFunction;
  /** The state machine's log group (ERROR level, no execution data). */
  readonly logGroup: LogGroup;
  /** The run's BigState budget, split between the Map and its workers. */
  readonly concurrency: FanOutConcurrency;
  /** The state machine's timeout, which the plan's run deadline follows. */
  readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: KeyAuditFanOutProps) {
    super(scope, id);
    // The Map's ResultWriter is `resultWriterV2` (the current ASL form); without this flag CDK would render the
    // deprecated `resultWriter` property instead, which is unset, and the Map would write no results at all. Set
    // here, before any child exists, so an app without cdk.json's flag still gets it.
    this.node.setContext(STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2, true);
    const { config, bucket } = props;
    this.concurrency = fanOutConcurrency(config.maxRequestsInFlight);
    this.timeout = FAN_OUT_TIMEOUT;
    expireRunFiles(bucket);

    const step = (name: string, handler: string, description: string, extra: Record<string, string>) => {
      const role = new Role(this, `${name}Role`, {
        assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
        description: `BigState key audit fan-out: ${handler} step`,
      });
      props.functionLogGroup.grantWrite(role);
      const fn = auditFunction(this, `${name}Function`, {
        description,
        entry: props.entry ?? FAN_OUT_ENTRY,
        handler,
        role,
        logGroup: props.functionLogGroup,
        ...(handler === 'worker' && props.memorySize !== undefined ? { memorySize: props.memorySize } : {}),
        environment: {
          ...auditEnvironment(config, props.resourceNames),
          ...extra,
        },
      });
      acknowledge(fn, {
        'Serverless-LambdaDLQ':
          "Only the state machine invokes this function, synchronously (a Task state): a failure is the Task state's error, handled by the state machine (retries, the Map's tolerated failures, the execution failing and its alarm); there is no asynchronous invocation whose event a DLQ could keep.",
        'Serverless-LambdaTracing':
          'The function is not instrumented for X-Ray; structured logs and Powertools metrics cover it, without the tracing cost and the "*" permission X-Ray needs.',
      });
      return fn;
    };

    this.planFunction = step(
      'Plan',
      'plan',
      'BigState key audit fan-out: takes the run lease, resolves the principals, writes their list for the Map',
      // The plan computes the run's deadline from the state machine's timeout: the two always agree.
      { FAN_OUT_TIMEOUT_MS: String(this.timeout.toMilliseconds()) },
    );
    this.workerFunction = step(
      'Worker',
      'worker',
      'BigState key audit fan-out: audits one batch of principals',
      // Each worker's share of the run's BigState budget; the Map runs `maxConcurrency` workers at once.
      { BIGSTATE_MAX_REQUESTS_IN_FLIGHT: String(this.concurrency.perWorkerConnections) },
    );
    this.finishFunction = step(
      'Finish',
      'finish',
      'BigState key audit fan-out: reads the results, keeps the run-level record, releases the lease',
      {},
    );
    this.#grantStepAccess(props);

    this.logGroup = new LogGroup(this, 'LogGroup', {
      // The /aws/vendedlogs/ prefix keeps Step Functions' log delivery off the account's CloudWatch Logs resource
      // policy, whose size is limited (AWS's advice for state machine log groups).
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-${this.node.addr.slice(0, 12)}`,
      retention: props.logRetention ?? RetentionDays.THREE_MONTHS,
      // It has a fixed name, which a retained copy would block when the stack is deployed again; and it holds
      // no execution data (names included), only which state failed with which error.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'BigState key audit: plan, audit the principals in batches (Distributed Map), finish',
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(this.#definition(bucket)),
      timeout: this.timeout,
      // ERROR only, and never the execution data: inputs and outputs hold principal and key names. Standard
      // executions keep their full history in Step Functions (90 days) for looking into a run.
      logs: { destination: this.logGroup, level: LogLevel.ERROR, includeExecutionData: false },
      tracingEnabled: false,
    });
    // The Map's ItemReader reads the plan's list of principals (`runs/<runId>/principals.json`); its bucket is a
    // path into the plan's output, so CDK grants nothing for it.
    this.stateMachine.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [bucket.arnForObjects(`${RUNS_PREFIX}*`)],
      }),
    );
    this.#acknowledgeStateMachine(bucket);
  }

  /**
   * Plan ─► skipped? ─► Succeed | Audit principals (Distributed Map) ─► Finish. The plan's output is kept at
   * `$.plan` and the Map's at `$.map`; the execution's output is the finish step's summary (or, when another run
   * holds the lease, the plan's output saying so).
   */
  #definition(bucket: Bucket): IChainable {
    const plan = new LambdaInvoke(this, 'Plan', {
      comment: 'Takes the run lease, resolves the principals and writes their list to S3',
      lambdaFunction: this.planFunction,
      payloadResponseOnly: true,
      // The execution's name is the run id: the same in every attempt of the Plan task, so a retried attempt
      // whose first one took the lease (its answer lost) recognises the lease as its own.
      payload: TaskInput.fromObject({ input: JsonPath.entirePayload, execution: JsonPath.executionName }),
      resultPath: '$.plan',
    });
    const skipped = new Succeed(this, 'Another run holds the lease', {
      comment: 'Another run is under way: no audit; the output says which run holds the lease',
      outputPath: '$.plan',
    });
    const batch = new LambdaInvoke(this, 'Audit batch', {
      comment: 'Audits one batch of principals, never past the run deadline it carries',
      lambdaFunction: this.workerFunction,
      payloadResponseOnly: true,
    });
    const map = new DistributedMap(this, 'Audit principals', {
      comment: 'Every principal of the plan, in batches, each batch by one worker',
      mapExecutionType: StateMachineType.STANDARD,
      label: MAP_LABEL,
      itemReader: new S3JsonItemReader({
        bucketNamePath: JsonPath.stringAt('$.plan.itemsBucket'),
        key: JsonPath.stringAt('$.plan.itemsKey'),
      }),
      itemBatcher: new ItemBatcher({
        maxItemsPerBatch: MAX_ITEMS_PER_BATCH,
        maxInputBytesPerBatch: MAX_INPUT_BYTES_PER_BATCH,
        // The run deadline travels with every batch: no worker outlives the run. CDK writes BatchInput as given
        // (no JsonPath tokens): the `.$` keys are the ASL's own way to take a value from the Map's input.
        batchInput: {
          'runId.$': '$.plan.runId',
          'deadline.$': '$.plan.deadline',
          'dryRun.$': '$.plan.dryRun',
        },
      }),
      // maxConcurrency workers × perWorkerConnections each ≤ maxRequestsInFlight (fanOutConcurrency).
      maxConcurrency: this.concurrency.maxConcurrency,
      // A failed batch never stops the others: its principals are reported failed by the finish step, which
      // then fails the execution, after every batch finished.
      toleratedFailurePercentage: 100,
      resultWriterV2: new RunResultsWriter({
        bucket,
        prefix: JsonPath.format(`${RUNS_PREFIX}{}/results`, JsonPath.stringAt('$.plan.runId')),
      }),
      resultPath: '$.map',
    });
    map.itemProcessor(batch);
    const finish = new LambdaInvoke(this, 'Finish', {
      comment: 'Reads the Map results, keeps the run-level record, emits the metrics, releases the lease',
      lambdaFunction: this.finishFunction,
      payloadResponseOnly: true,
      payload: TaskInput.fromObject({ plan: JsonPath.objectAt('$.plan'), map: JsonPath.objectAt('$.map') }),
    });
    // The Map itself failing (its list unreadable, its results unwritable) still ends in the finish step, which
    // gets the error as `map` ({Error, Cause}) and fails the execution.
    map.addCatch(finish, { resultPath: '$.map' });
    map.next(finish);
    return plan.next(
      new Choice(this, 'Skipped?', { comment: 'Did the plan find another run holding the lease?' })
        .when(
          // `skipped` is the reason (a string) when another run holds the lease, else null.
          Condition.and(Condition.isPresent('$.plan.skipped'), Condition.isString('$.plan.skipped')),
          skipped,
        )
        .otherwise(map),
    );
  }

  /** Each step's own access; nothing on `*`. */
  #grantStepAccess(props: KeyAuditFanOutProps): void {
    const { bucket, secret, topic, eventBus, config } = props;
    const discovery = config.principalPattern !== undefined;
    // Plan: the key (read before the listing), the lease, the run-level record, the listing, the run's list.
    secret.grantRead(this.planFunction);
    grantPlanAccess(bucket, this.planFunction, { discovery });
    // Worker: exactly what a single run needs per principal, but no lease (the run holds it).
    secret.grantRead(this.workerFunction);
    grantSnapshotAccess(bucket, this.workerFunction, { discovery, lease: false });
    topic.grantPublish(this.workerFunction);
    eventBus.grantPutEventsTo(this.workerFunction);
    // Finish: the results, the run-level record, the lease; run-level notices (failed, recovered).
    grantFinishAccess(bucket, this.finishFunction);
    topic.grantPublish(this.finishFunction);
    eventBus.grantPutEventsTo(this.finishFunction);
    this.#acknowledgeRoles(bucket, discovery);
  }

  #acknowledgeRoles(bucket: Bucket, discovery: boolean): void {
    const bucketArn = arnToken(bucket);
    const runs = {
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${RUNS_PREFIX}*]`]:
        'A fanned-out run keeps its working files under runs/<runId>/ (the list of principals, the Map results), named by a run id known only at run time; this one prefix of this one bucket, expired after 30 days.',
    };
    const kms = { 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]': TOPIC_KEY_REASON };
    acknowledge(roleOf(this.planFunction), {
      ...runs,
      ...(discovery
        ? {
            [`AwsSolutions-IAM5[Resource::${bucketArn}/${SNAPSHOTS_PREFIX}*]`]:
              'Discovery lists the principals that have a state; a principal whose encoded name is too long for a key is stored under a hash, and its state is read (GetObject only, under this one prefix of this one bucket) for its name. The plan step never writes a state.',
          }
        : {}),
    });
    acknowledge(roleOf(this.finishFunction), {
      ...runs,
      ...kms,
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${SNAPSHOTS_PREFIX}*]`]:
        'The inventory report reads back the state of every principal of the run (snapshots/<principal>.json, principals known only at run time); GetObject only, under this one prefix of this one bucket: the finish step never writes a state.',
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${REPORTS_PREFIX}*]`]:
        "The inventory report: reports/latest.html and .csv, and the day's copy under reports/<date>/ (looked up with HeadObject, hence GetObject), named at run time; under this one prefix of this one bucket.",
    });
    acknowledge(roleOf(this.workerFunction), {
      ...snapshotAccessAcknowledgements(bucketArn, { discovery }),
      ...kms,
    });
  }

  #acknowledgeStateMachine(bucket: Bucket): void {
    const invoke = (fn: NodejsFunction) => `AwsSolutions-IAM5[Resource::<${logicalIdOf(fn)}.Arn>:*]`;
    // The state machine's name as CDK takes it out of its ARN (the 7th part), as cdk-nag writes it.
    const stateMachineName = JSON.stringify({
      'Fn::Select': [6, { 'Fn::Split': [':', { Ref: logicalIdOf(this.stateMachine) }] }],
    });
    const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${stateMachineName}`;
    const fnReason =
      'From LambdaInvoke (grantInvoke): ":*" covers the versions and aliases of this one function, and nothing else.';
    acknowledge(this.stateMachine, {
      [invoke(this.planFunction)]: fnReason,
      [invoke(this.workerFunction)]: fnReason,
      [invoke(this.finishFunction)]: fnReason,
      [`AwsSolutions-IAM5[Resource::${arnToken(bucket)}/${RUNS_PREFIX}*]`]:
        "The Map reads the run's list of principals (ItemReader: GetObject) and writes its results (ResultWriter: the PutObject, GetObject, ListMultipartUploadParts and AbortMultipartUpload AWS documents for it) under runs/<runId>/, named by a run id known only at run time; this one prefix of this one bucket.",
      'AwsSolutions-IAM5[Resource::*]':
        "From the state machine's logging configuration (CDK's fixed grant, as AWS documents it): the CloudWatch Logs log-delivery actions (CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) do not support resource-level permissions.",
      [`AwsSolutions-IAM5[Resource::${executions}:*]`]:
        "From the Distributed Map (CDK's grant for its Map Runs): DescribeExecution and StopExecution on this state machine's own executions, whose ids are made at run time; nothing of any other state machine.",
      [`AwsSolutions-IAM5[Resource::${executions}/${MAP_LABEL}:*]`]:
        "From the Distributed Map (CDK's grant for its Map Runs): RedriveExecution of this Map's own child executions, whose ids are made at run time.",
      'AwsSolutions-SF1':
        'Logs at ERROR level: ALL would log every state transition of every child execution (thousands per run), which costs per GB ingested and tells nothing an operator acts on; failures are at ERROR, and Standard executions keep their full history in Step Functions for 90 days.',
      'AwsSolutions-SF2':
        'No X-Ray: the functions are not instrumented for it; the execution history, the function logs and the run-level metrics cover a run without the tracing cost.',
      'Serverless-StepFunctionStateMachineXray':
        'No X-Ray: the functions are not instrumented for it; the execution history, the function logs and the run-level metrics cover a run without the tracing cost.',
    });
  }
}

/**
 * The Map's ResultWriter, its access narrowed to the run files: CDK's own grants the ResultWriter actions on the
 * whole bucket (`<bucket>/*`), snapshots and history included.
 */
class RunResultsWriter extends ResultWriterV2 {
  readonly #bucket: IBucket;

  constructor(props: ResultWriterV2Props & { readonly bucket: IBucket }) {
    super(props);
    this.#bucket = props.bucket;
  }

  /** The actions AWS documents for a ResultWriter, on `runs/*` of the bucket only. */
  override providePolicyStatements(): PolicyStatement[] {
    return [
      new PolicyStatement({
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.#bucket.arnForObjects(`${RUNS_PREFIX}*`)],
      }),
    ];
  }
}

function roleOf(fn: NodejsFunction): Construct {
  const role = fn.role;
  if (role === undefined) throw new Error(`${fn.node.path} has no role`);
  return role;
}

function logicalIdOf(construct: Construct): string {
  const child = construct.node.defaultChild ?? construct;
  return Stack.of(construct).getLogicalId(child as CfnElement);
}

/** `<LogicalId.Arn>`, as cdk-nag writes a bucket's ARN in a finding. */
function arnToken(bucket: Bucket): string {
  return `<${logicalIdOf(bucket)}.Arn>`;
}
