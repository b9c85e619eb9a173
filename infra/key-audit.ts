/**
 * The `KeyAudit` construct: everything one BigState key audit needs, reusable in any stack.
 *
 * One concern per part, each in its own module or method: the API-key secret, storage
 * (`key-audit-storage.ts`), notifications (`key-audit-notifications.ts`), the function, the schedule, alarms
 * (`key-audit-alarms.ts`) and the dashboard (`key-audit-dashboard.ts`). Every part creates its resources in
 * this construct with the ids they have always had, so their logical ids never change (a new logical id
 * would replace the resource on deploy: for the snapshot bucket, the audit trail).
 */
import { Aws, type CfnResource, Duration, RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import type { Alarm, Dashboard } from 'aws-cdk-lib/aws-cloudwatch';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { ContextAttribute, Schedule, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke, StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SCHEDULE_SOURCE } from '../functions/core/invocation.js';
import { AUDIT_ENTRY, type AuditResourceNames, auditEnvironment, auditFunction } from './audit-function.js';
import { ConfigurationError, type KeyAuditConfig, resolveKeyAuditConfig } from './config.js';
import { type AuditAlarms, createAuditAlarms, createFanOutAlarms } from './key-audit-alarms.js';
import { createAuditDashboard } from './key-audit-dashboard.js';
import { KeyAuditFanOut } from './key-audit-fan-out.js';
import { createNotificationTopic, TOPIC_KEY_REASON } from './key-audit-notifications.js';
import {
  createSnapshotStorage,
  grantSnapshotAccess,
  HISTORY_PREFIX,
  REPORTS_PREFIX,
  SNAPSHOTS_PREFIX,
  snapshotAccessAcknowledgements,
} from './key-audit-storage.js';
import { acknowledge } from './nag.js';
import { type HeartbeatWindow, heartbeatWindow, type ParsedSchedule, parseSchedule } from './schedule.js';

/** Where the function keeps snapshots and change records. */
export { HISTORY_PREFIX, SNAPSHOTS_PREFIX };

/**
 * Properties of a {@link KeyAudit}. `bigstateHost` to `maxKeyAgeDays` are the contract's configuration keys
 * (validated as the CDK context is); the rest are the construct's own.
 */
export interface KeyAuditProps {
  /**
   * BigState base URL, e.g. `https://api.bigstate.dev`. `https` only; plain `http` for loopback hosts alone.
   * The function receives it exactly as given.
   */
  readonly bigstateHost: string;
  /**
   * The principals whose keys are audited: distinct, non-empty names (spaces, `&`, `#`, non-ASCII letters are
   * fine). Required unless `principalPattern` is set.
   * @default - none: only the principals `principalPattern` discovers
   */
  readonly principals?: readonly string[];
  /**
   * Discovery: the glob of the principals to list each run (`x`, `*x`, `x*`, `*x*`, or `*` for every principal
   * the key can see); with `principals`, the union is audited. A principal found missing from a complete
   * listing (and unknown to BigState) is told once as removed and its state moved to `archive/`.
   * @default - no discovery: the listed principals only
   */
  readonly principalPattern?: string;
  /**
   * Glob passed to `apikey/match`: `x`, `*x`, `x*` or `*x*`.
   * @default - no pattern: every key
   */
  readonly pattern?: string;
  /**
   * EventBridge Scheduler expression, `rate(...)` or `cron(...)` (UTC).
   * @default 'rate(1 hour)'
   */
  readonly schedule?: string;
  /**
   * Name of an existing Secrets Manager secret holding the BigState API key (raw, or JSON `{"apiKey": "..."}`).
   * @default - a new secret holding `{"apiKey": ""}`, for you to fill
   */
  readonly apiKeySecretName?: string;
  /**
   * E-mail addresses subscribed to the notification topic (each confirms by mail).
   * @default - no subscriptions
   */
  readonly notificationEmails?: readonly string[];
  /**
   * Run each schedule tick as a Step Functions (Standard) state machine with a Distributed Map over the
   * principals (`key-audit-fan-out.ts`), for more principals than one function invocation covers. The audit
   * function stays for manual runs of a subset of principals.
   * @default false
   */
  readonly fanOut?: boolean;
  /**
   * The most BigState requests open at once across the whole run (a whole number, at least 1): the audit
   * function's connection cap; with `fanOut`, the Map's concurrency × each worker's connection cap.
   * @default 16
   */
  readonly maxRequestsInFlight?: number;
  /**
   * Keys older than this many days are reported once as stale (a whole number, at least 1): the functions'
   * `BIGSTATE_MAX_KEY_AGE_DAYS`.
   * @default - no age check
   */
  readonly maxKeyAgeDays?: number;
  /**
   * The event bus the function publishes change events to.
   * @default 'default'
   */
  readonly eventBusName?: string;
  /**
   * The expected time between runs, for the "no successful run" alarm, which fires after two of them pass
   * without one. A whole number of minutes.
   * @default - the interval of a `rate(...)` schedule; one day for a `cron(...)` schedule
   */
  readonly heartbeatPeriod?: Duration;
  /**
   * How long change records under `history/` are kept. They are small (a few KB), below the 128 KB minimum
   * billable object size of the infrequent-access storage classes, so they expire rather than transition.
   * @default Duration.days(365)
   */
  readonly historyRetention?: Duration;
  /**
   * Retention of the function's log group. The dashboard's key counts per principal come from these logs:
   * it shows nothing older.
   * @default RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: RetentionDays;
  /**
   * Memory of the function, in MB. A principal with hundreds of thousands of keys holds its snapshot and two
   * walks at once: raise it for such inventories (see the README's performance section).
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * The function's entry file (TypeScript), exporting `handler`.
   * @default - `functions/audit.ts` of this project
   */
  readonly entry?: string;
  /**
   * With `fanOut`: the fan-out's entry file (TypeScript), exporting `plan`, `worker` and `finish`.
   * @default - `functions/fan-out.ts` of this project
   */
  readonly fanOutEntry?: string;
  /**
   * Prefix of the alarm names (`<prefix>-audit-errors`, ...). Alarm names are unique per account and region:
   * give each audit its own when a stack holds more than one.
   * @default - the stack name
   */
  readonly alarmNamePrefix?: string;
}

/**
 * A scheduled BigState key audit: the function and its schedule, the snapshot bucket, the API-key secret, the
 * notification topic, permission to put events on a bus, alarms (with actions) and a dashboard.
 *
 * Every resource is granted to the function's own role with `grant*` methods, except the bucket (exactly the
 * S3 actions the function calls, on its two prefixes; no `grant*` method is that narrow); nothing is granted
 * on `*`. The bucket policy makes change records write-once and snapshot writes conditional for everyone.
 * @throws ConfigurationError when a property is missing or invalid, naming it.
 */
export class KeyAudit extends Construct {
  /** The audit function. */
  readonly function: NodejsFunction;
  /** The function's log group: its structured logs, the source of the dashboard's key counts per principal. */
  readonly logGroup: LogGroup;
  /** Snapshots (`snapshots/`) and change records (`history/`). */
  readonly bucket: Bucket;
  /** Server access logs of {@link bucket}. */
  readonly accessLogsBucket: Bucket;
  /** Change notices for people; also the alarms' action. */
  readonly topic: Topic;
  /** The secret holding the BigState API key. */
  readonly secret: ISecret;
  /** The bus the function puts change events on. */
  readonly eventBus: IEventBus;
  /** With `fanOut`: the state machine each schedule tick starts, and its functions; otherwise undefined. */
  readonly fanOut?: KeyAuditFanOut;
  /** The EventBridge Scheduler schedule that runs the audit (the function, or with `fanOut` the state machine). */
  readonly schedule: Schedule;
  /** Where the schedule puts invocations it could not deliver. */
  readonly scheduleDeadLetterQueue: Queue;
  /** Where Lambda puts asynchronous invocations that failed. */
  readonly failureQueue: Queue;
  /** Every alarm; each notifies {@link topic} when it fires and when it clears. */
  readonly alarms: readonly Alarm[];
  /** Key counts per principal (from the logs), run totals, changes, failures, durations and Lambda health. */
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: KeyAuditProps) {
    super(scope, id);
    const config = resolveKeyAuditConfig(props);
    const parsedSchedule = parseSchedule(config.schedule);
    if ('problem' in parsedSchedule) throw new ConfigurationError(`schedule ${parsedSchedule.problem}`);
    const heartbeat = heartbeatOf(props.heartbeatPeriod ?? parsedSchedule.interval ?? Duration.days(1));

    this.secret = this.#apiKeySecret(config);
    const storage = createSnapshotStorage(this, {
      historyRetention: props.historyRetention ?? Duration.days(365),
    });
    this.bucket = storage.bucket;
    this.accessLogsBucket = storage.accessLogsBucket;
    this.topic = createNotificationTopic(this, { notificationEmails: config.notificationEmails });
    this.eventBus = EventBus.fromEventBusName(this, 'Bus', props.eventBusName ?? 'default');

    const { fn, logGroup, failureQueue } = this.#function(config, props);
    this.function = fn;
    this.logGroup = logGroup;
    this.failureQueue = failureQueue;
    this.#grantFunctionAccess(config);

    if (config.fanOut) {
      this.fanOut = new KeyAuditFanOut(this, 'FanOut', {
        config,
        bucket: this.bucket,
        secret: this.secret,
        topic: this.topic,
        eventBus: this.eventBus,
        functionLogGroup: this.logGroup,
        resourceNames: this.#resourceNames(),
        ...(props.logRetention === undefined ? {} : { logRetention: props.logRetention }),
        ...(props.memorySize === undefined ? {} : { memorySize: props.memorySize }),
        ...(props.fanOutEntry === undefined ? {} : { entry: props.fanOutEntry }),
      });
    }

    const schedule = this.#schedule(config.schedule, parsedSchedule);
    this.schedule = schedule.schedule;
    this.scheduleDeadLetterQueue = schedule.deadLetterQueue;

    const namePrefix = props.alarmNamePrefix ?? Stack.of(this).stackName;
    const alarms = this.#alarms(namePrefix, heartbeat);
    this.alarms = [
      ...Object.values(alarms),
      ...(this.fanOut === undefined
        ? []
        : Object.values(
            createFanOutAlarms(this, {
              namePrefix,
              stateMachine: this.fanOut.stateMachine,
              topic: this.topic,
            }),
          )),
    ];

    const listed = config.principals.length > 0 ? `${config.principals.length} principal(s)` : undefined;
    const discovered =
      config.principalPattern === undefined
        ? undefined
        : `the principals matching \`${config.principalPattern}\``;
    const principals = [listed, discovered].filter((part) => part !== undefined).join(' and ');
    this.dashboard = createAuditDashboard(this, {
      function: this.function,
      logGroup: this.logGroup,
      alarms: this.alarms,
      period: heartbeat.period,
      summary: `${principals}, schedule \`${config.schedule}\`.`,
    });
  }

  /** The API-key secret: the one named, or a new one holding the empty template for the user to fill. */
  #apiKeySecret(config: KeyAuditConfig): ISecret {
    if (config.apiKeySecretName !== undefined) {
      return Secret.fromSecretNameV2(this, 'ApiKeySecret', config.apiKeySecretName);
    }
    const secret = new Secret(this, 'ApiKeySecret', {
      description: 'BigState API key for the key audit: {"apiKey": "<key>"} (or the raw key)',
      // Not a leak: this is a fixed, empty template, the same in every deployment, not a credential. The user
      // writes the real key with `put-secret-value`, which CloudFormation never sees; and since this template
      // value never changes, a later deployment never overwrites it. Never a generated random value: a
      // random string would be a "key" that BigState rejects, hiding that the secret was never filled.
      secretStringValue: SecretValue.unsafePlainText(JSON.stringify({ apiKey: '' })),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(secret, {
      'AwsSolutions-SMG4':
        'BigState API keys are issued in BigState, not by an AWS rotation function; rotation is a documented manual step (put-secret-value), and the function re-reads the secret on a 401.',
    });
    return secret;
  }

  /** The function, its own role and log group, and the queue for its failed asynchronous invocations. */
  #function(
    config: KeyAuditConfig,
    props: KeyAuditProps,
  ): { fn: NodejsFunction; logGroup: LogGroup; failureQueue: Queue } {
    const logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // An own role instead of the default one: AWSLambdaBasicExecutionRole would allow writing to any log group.
    const role = new Role(this, 'FunctionRole', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: 'BigState key audit function',
    });
    logGroup.grantWrite(role);
    const bucketArn = `<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnResource)}.Arn>`;
    acknowledge(role, {
      ...snapshotAccessAcknowledgements(bucketArn, { discovery: config.principalPattern !== undefined }),
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${REPORTS_PREFIX}*]`]:
        "The inventory report after a full run: reports/latest.html and .csv, and the day's copy under reports/<date>/, named at run time; PutObject only, under this one prefix of this one bucket.",
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]': TOPIC_KEY_REASON,
    });

    const failureQueue = secureQueue(this, 'FailureQueue');
    const fn = auditFunction(this, 'Function', {
      description: 'Audits the API keys of the configured BigState principals',
      entry: props.entry ?? AUDIT_ENTRY,
      handler: 'handler',
      memorySize: props.memorySize ?? 512,
      // One run at a time (guarantee 5): a second invocation waits in Lambda's queue instead of overlapping.
      reservedConcurrentExecutions: 1,
      role,
      logGroup,
      // No automatic retry: the audit is idempotent and the next scheduled run repeats it anyway, while a retry
      // minutes later would mostly hit the same fault (a bad key, a 403) and publish its failure notices twice.
      retryAttempts: 0,
      // An invocation still queued after an hour (a previous run held the one slot) is superseded by later ones.
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(failureQueue),
      // The whole run is this one invocation: all of the run's BigState requests are its own.
      environment: auditEnvironment(config, this.#resourceNames()),
    });
    acknowledge(fn, {
      'Serverless-LambdaDLQ':
        'Asynchronous failures go to an on-failure destination (the failure queue), which records more than a DLQ (the error and the request); a DLQ as well would duplicate it.',
      'Serverless-LambdaTracing':
        'The function is not instrumented for X-Ray; structured logs and Powertools metrics cover it, without the tracing cost and the "*" permission X-Ray needs.',
    });
    return { fn, logGroup, failureQueue };
  }

  /** The resource names every function's environment carries. */
  #resourceNames(): AuditResourceNames {
    return {
      secretArn: this.secret.secretArn,
      bucketName: this.bucket.bucketName,
      topicArn: this.topic.topicArn,
      eventBusName: this.eventBus.eventBusName,
    };
  }

  /** Least privilege: `grant*` on exactly the function's resources, and the bucket's narrow statements. */
  #grantFunctionAccess(config: KeyAuditConfig): void {
    this.secret.grantRead(this.function);
    // An imported secret is granted as `<name>-??????` (Secrets Manager's six random characters): cdk-nag's IAM5
    // looks for "*" only, so there is no finding to acknowledge.
    grantSnapshotAccess(this.bucket, this.function, { discovery: config.principalPattern !== undefined });
    this.topic.grantPublish(this.function);
    this.eventBus.grantPutEventsTo(this.function);
  }

  /**
   * The schedule that runs the audit, with its own role, retries and dead-letter queue: it invokes the function,
   * or with `fanOut` starts the state machine (the role may do that and nothing else).
   */
  #schedule(expression: string, parsed: ParsedSchedule): { schedule: Schedule; deadLetterQueue: Queue } {
    const deadLetterQueue = secureQueue(this, 'ScheduleDeadLetterQueue');
    const fanOut = this.fanOut;
    // An own role (rather than the stack-wide one the target would create) keeps its grant, trust conditions
    // and acknowledgement inside this construct.
    const scheduleRole = new Role(this, 'ScheduleRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com').withConditions({
        StringEquals: {
          'aws:SourceAccount': Aws.ACCOUNT_ID,
          'aws:SourceArn': Stack.of(this).formatArn({
            service: 'scheduler',
            resource: 'schedule-group',
            resourceName: 'default',
          }),
        },
      }),
      description:
        fanOut === undefined
          ? 'Lets EventBridge Scheduler invoke the BigState key audit function'
          : 'Lets EventBridge Scheduler start the BigState key audit fan-out state machine',
    });
    // What the schedule sends: the function (or the plan step) tells a scheduled run by its `source`.
    const input = ScheduleTargetInput.fromObject({
      source: SCHEDULE_SOURCE,
      scheduledTime: ContextAttribute.scheduledTime,
      executionId: ContextAttribute.executionId,
    });
    // Retries cover failures to hand the run to Lambda or Step Functions; the run's own errors are not retried.
    const delivery = {
      role: scheduleRole,
      input,
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      deadLetterQueue,
    };
    let target: LambdaInvoke | StepFunctionsStartExecution;
    if (fanOut === undefined) {
      acknowledge(scheduleRole, {
        [`AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.function.node.defaultChild as CfnResource)}.Arn>:*]`]:
          'From function.grantInvoke (LambdaInvoke): ":*" covers the versions and aliases of this one function, and nothing else.',
      });
      target = new LambdaInvoke(this.function, delivery);
    } else {
      // states:StartExecution on this one state machine (StepFunctionsStartExecution's grant): nothing to acknowledge.
      target = new StepFunctionsStartExecution(fanOut.stateMachine, delivery);
    }
    const schedule = new Schedule(this, 'Schedule', {
      description: `Runs the BigState key audit, ${expression}`,
      schedule: parsed.expression,
      target,
    });
    return { schedule, deadLetterQueue };
  }

  /** The alarms, each notifying the topic when it fires and when it clears. */
  #alarms(namePrefix: string, heartbeat: HeartbeatWindow): AuditAlarms {
    return createAuditAlarms(this, {
      namePrefix,
      function: this.function,
      scheduleDeadLetterQueue: this.scheduleDeadLetterQueue,
      failureQueue: this.failureQueue,
      heartbeat,
      topic: this.topic,
    });
  }
}

function heartbeatOf(interval: Duration): HeartbeatWindow {
  try {
    return heartbeatWindow(interval);
  } catch (error) {
    throw new ConfigurationError((error as Error).message, { cause: error });
  }
}

/** An SQS queue for failed deliveries: encrypted (SSE-SQS), TLS only, kept for the longest SQS allows. */
function secureQueue(scope: Construct, id: string): Queue {
  const queue = new Queue(scope, id, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  acknowledge(queue, {
    'AwsSolutions-SQS3':
      'This queue is itself a dead-letter/on-failure destination, read by a person after its alarm fires; a DLQ of a DLQ would only move the same messages.',
    'Serverless-SQSRedrivePolicy':
      'This queue is itself a dead-letter/on-failure destination: nothing consumes it automatically, so there is no failed processing to redrive.',
  });
  return queue;
}
