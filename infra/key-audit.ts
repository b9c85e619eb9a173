/**
 * The `KeyAudit` construct: everything one BigState key audit needs, reusable in any stack.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ArnFormat,
  Aws,
  type CfnResource,
  Duration,
  RemovalPolicy,
  SecretValue,
  Stack,
  Validations,
} from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  SearchExpression,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { EventBus, type IEventBus } from 'aws-cdk-lib/aws-events';
import { AnyPrincipal, Effect, Grant, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { ContextAttribute, Schedule, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC } from '../functions/adapters/aws/metrics.js';
import { SCHEDULE_SOURCE } from '../functions/core/invocation.js';
import { changeRecordKey, snapshotKey } from '../functions/core/layout.js';
import { ConfigurationError, resolveKeyAuditConfig } from './config.js';
import { heartbeatWindow, parseSchedule } from './schedule.js';

/** Names the Lambda code relies on: the Powertools service and the metrics it emits. */
export const SERVICE_NAME = 'bigstate-key-audit';
/** CloudWatch namespace of the function's metrics (Powertools `POWERTOOLS_METRICS_NAMESPACE`). */
export const METRICS_NAMESPACE = 'BigStateKeyAudit';
/** `source` of the input the schedule sends to the function. */
export { SCHEDULE_SOURCE };

/** The first path segment of a key, with its slash: the bucket's layout comes from the function's own code. */
const prefixOf = (key: string): string => key.slice(0, key.indexOf('/') + 1);
/** Where the function keeps the latest snapshot per principal (`functions/core/layout.ts`). */
export const SNAPSHOTS_PREFIX = prefixOf(snapshotKey('p'));
/** Where the function keeps its change records, each written once (`functions/core/layout.ts`). */
export const HISTORY_PREFIX = prefixOf(changeRecordKey('p', 'c'));

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEFAULT_ENTRY = join(PROJECT_ROOT, 'functions', 'audit.ts');
const FUNCTION_TIMEOUT = Duration.minutes(5);

/** Properties of a {@link KeyAudit}. The first six are the contract's configuration keys. */
export interface KeyAuditProps {
  /**
   * BigState base URL, e.g. `https://api.bigstate.dev`. `https` only; plain `http` for loopback hosts alone.
   * The function receives it exactly as given.
   */
  readonly bigstateHost: string;
  /**
   * The principals whose keys are audited: distinct, non-empty names (spaces, `&`, `#`, non-ASCII letters are
   * fine).
   */
  readonly principals: readonly string[];
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
   * Retention of the function's log group.
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
  /** The EventBridge Scheduler schedule that runs the audit. */
  readonly schedule: Schedule;
  /** Where the schedule puts invocations it could not deliver. */
  readonly scheduleDeadLetterQueue: Queue;
  /** Where Lambda puts asynchronous invocations that failed. */
  readonly failureQueue: Queue;
  /** Every alarm; each notifies {@link topic}. */
  readonly alarms: readonly Alarm[];
  /** Keys per principal, changes, failures, durations and Lambda health. */
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: KeyAuditProps) {
    super(scope, id);
    const config = resolveKeyAuditConfig(props);
    const parsedSchedule = parseSchedule(config.schedule);
    if ('problem' in parsedSchedule) throw new ConfigurationError(`schedule ${parsedSchedule.problem}`);
    const heartbeat = heartbeatOf(props.heartbeatPeriod ?? parsedSchedule.interval ?? Duration.days(1));

    // --- The API key -------------------------------------------------------------------------------------
    if (config.apiKeySecretName !== undefined) {
      this.secret = Secret.fromSecretNameV2(this, 'ApiKeySecret', config.apiKeySecretName);
    } else {
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
      this.secret = secret;
    }

    // --- Storage -----------------------------------------------------------------------------------------
    // SSE-S3 rather than KMS: the objects hold key names and counts, never the API key; access is controlled by
    // IAM alone (only the function's role), and SSE-S3 has no per-request KMS charges or key policy to keep.
    // The access-log bucket must use SSE-S3 anyway: S3 server access logging cannot write to SSE-KMS buckets.
    this.accessLogsBucket = new Bucket(this, 'AccessLogsBucket', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      // Object ownership left to CDK: with the serverAccessLogsUseBucketPolicy flag, logs arrive through a bucket
      // policy and S3's default (bucket owner enforced) applies; without it, CDK needs the ObjectWriter ACL setup.
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'expire-access-logs',
          expiration: Duration.days(365),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    // Not logged itself (that would log the log deliveries); cdk-nag's S1 knows a bucket that is another's log
    // target, so there is nothing to acknowledge.

    this.bucket = new Bucket(this, 'SnapshotBucket', {
      versioned: true,
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      // Snapshots and the change history are the audit trail: deleting the stack must not delete them.
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'snapshot-bucket/',
      lifecycleRules: [
        {
          // Every run overwrites snapshots: keep replaced versions 90 days for recovery, then let them go.
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(90),
          expiredObjectDeleteMarker: true,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          id: 'expire-history',
          prefix: HISTORY_PREFIX,
          expiration: props.historyRetention ?? Duration.days(365),
        },
      ],
    });

    // --- Notifications -----------------------------------------------------------------------------------
    // A customer managed key, not alias/aws/sns: the AWS managed key's policy cannot be changed, so CloudWatch
    // alarms (which notify this topic) could not publish to a topic encrypted with it.
    const topicKey = new Key(this, 'TopicKey', {
      description: 'Encrypts the BigState key audit topic',
      enableKeyRotation: true,
      // The key protects messages in flight only (SNS keeps nothing after delivery): nothing to keep it for.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // CloudWatch calls KMS itself when an alarm notifies the topic. Only for alarms of this account and region
    // (confused-deputy protection): not for an alarm elsewhere that names this topic. `alarm:*` rather than
    // the alarms' own ARNs, which would make the key depend on the alarms, which depend on the topic, which
    // depends on the key.
    const alarmsHere = {
      StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
      ArnLike: {
        'aws:SourceArn': Stack.of(this).formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    };
    topicKey.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountNotifyTheTopic',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'], // in a key policy, "*" is this key
        conditions: alarmsHere,
      }),
    );
    this.topic = new Topic(this, 'Topic', {
      displayName: 'BigState key audit',
      masterKey: topicKey,
      enforceSSL: true,
    });
    // enforceSSL gives the topic its own policy, which replaces SNS's default one (that let this account's
    // CloudWatch publish): without this statement an alarm fails with "no resource-based policy allows the
    // SNS:Publish action", and nobody hears of it.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: alarmsHere,
      }),
    );
    for (const email of config.notificationEmails) {
      this.topic.addSubscription(new EmailSubscription(email));
    }
    if (config.notificationEmails.length > 0) {
      acknowledge(this.topic, {
        'Serverless-SNSRedrivePolicy':
          'The only subscriptions are e-mail addresses of people. An e-mail SNS cannot deliver is not the only copy: every baseline and key change is also kept in S3 (history/) and put on EventBridge, a failed principal is put on EventBridge and fails the invocation, and an alarm keeps its state and history in CloudWatch.',
      });
    }
    this.eventBus = EventBus.fromEventBusName(this, 'Bus', props.eventBusName ?? 'default');

    // --- The function ------------------------------------------------------------------------------------
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
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${SNAPSHOTS_PREFIX}*]`]:
        'One snapshot per principal (snapshots/<principal>.json): one resource per principal would outgrow the role policy for long principal lists, and principals discovered at run time (principalPattern, in the contract) are unknown at deploy time; GetObject and PutObject only, under this one prefix of this one bucket.',
      [`AwsSolutions-IAM5[Resource::${bucketArn}/${HISTORY_PREFIX}*]`]:
        'Change records are named per principal and change id (history/<principal>/<changeId>.json), known only at run time; PutObject only, under this one prefix of this one bucket, and the bucket policy refuses any put there without If-None-Match.',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]':
        "From topic.grantPublish (CDK's fixed grant for a KMS-encrypted topic, as AWS documents it): SNS needs a data key from the topic's key for each published message. The * also matches GenerateDataKeyWithoutPlaintext and the GenerateDataKeyPair variants; the resource is that one key, which encrypts nothing but this topic's messages.",
    });

    this.failureQueue = secureQueue(this, 'FailureQueue');
    this.function = new NodejsFunction(this, 'Function', {
      description: 'Audits the API keys of the configured BigState principals',
      entry: props.entry ?? DEFAULT_ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: FUNCTION_TIMEOUT,
      // One run at a time (guarantee 5): a second invocation waits in Lambda's queue instead of overlapping.
      reservedConcurrentExecutions: 1,
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      // No automatic retry: the audit is idempotent and the next scheduled run repeats it anyway, while a retry
      // minutes later would mostly hit the same fault (a bad key, a 403) and publish its failure notices twice.
      retryAttempts: 0,
      // An invocation still queued after an hour (a previous run held the one slot) is superseded by later ones.
      maxEventAge: Duration.hours(1),
      onFailure: new SqsDestination(this.failureQueue),
      environment: {
        BIGSTATE_HOST: config.bigstateHost,
        BIGSTATE_PRINCIPALS: JSON.stringify(config.principals),
        ...(config.pattern === undefined ? {} : { BIGSTATE_PATTERN: config.pattern }),
        API_KEY_SECRET_ARN: this.secret.secretArn,
        SNAPSHOT_BUCKET_NAME: this.bucket.bucketName,
        TOPIC_ARN: this.topic.topicArn,
        EVENT_BUS_NAME: this.eventBus.eventBusName,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        // Some bundled dependencies are CommonJS and call `require`, which ES modules do not have.
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
        minify: true,
        keepNames: true,
        sourceMap: true,
        sourcesContent: false,
        // The nodejs24.x runtime provides the AWS SDK v3.
        externalModules: ['@aws-sdk/*'],
      },
    });
    acknowledge(this.function, {
      'Serverless-LambdaDLQ':
        'Asynchronous failures go to an on-failure destination (the failure queue), which records more than a DLQ (the error and the request); a DLQ as well would duplicate it.',
      'Serverless-LambdaTracing':
        'The function is not instrumented for X-Ray; structured logs and Powertools metrics cover it, without the tracing cost and the "*" permission X-Ray needs.',
    });

    // --- Least privilege ---------------------------------------------------------------------------------
    this.secret.grantRead(this.function);
    // An imported secret is granted as `<name>-??????` (Secrets Manager's six random characters): cdk-nag's IAM5
    // looks for "*" only, so there is no finding to acknowledge.
    this.#grantBucketAccess();
    this.topic.grantPublish(this.function);
    this.eventBus.grantPutEventsTo(this.function);

    // --- The schedule ------------------------------------------------------------------------------------
    this.scheduleDeadLetterQueue = secureQueue(this, 'ScheduleDeadLetterQueue');
    // An own role (rather than the stack-wide one LambdaInvoke would create) keeps its grant, trust conditions
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
      description: 'Lets EventBridge Scheduler invoke the BigState key audit function',
    });
    acknowledge(scheduleRole, {
      [`AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.function.node.defaultChild as CfnResource)}.Arn>:*]`]:
        'From function.grantInvoke (LambdaInvoke): ":*" covers the versions and aliases of this one function, and nothing else.',
    });
    this.schedule = new Schedule(this, 'Schedule', {
      description: `Runs the BigState key audit, ${config.schedule}`,
      schedule: parsedSchedule.expression,
      target: new LambdaInvoke(this.function, {
        role: scheduleRole,
        input: ScheduleTargetInput.fromObject({
          source: SCHEDULE_SOURCE,
          scheduledTime: ContextAttribute.scheduledTime,
          executionId: ContextAttribute.executionId,
        }),
        // Retries cover failures to hand the invocation to Lambda; the function's own errors are not retried.
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        deadLetterQueue: this.scheduleDeadLetterQueue,
      }),
    });

    // --- Alarms ------------------------------------------------------------------------------------------
    const fiveMinutes = Duration.minutes(5);
    const runSucceeded = auditMetric(METRIC.runSucceeded, Stats.SUM, heartbeat.period);
    const alarms = [
      this.#anyAlarm(
        'ErrorsAlarm',
        'The audit function failed (a principal failed, or the run itself). See its logs.',
        this.function.metricErrors({ statistic: Stats.SUM, period: fiveMinutes }),
      ),
      this.#anyAlarm(
        'ThrottlesAlarm',
        'An audit invocation was throttled: runs overlap (schedule shorter than a run?).',
        this.function.metricThrottles({ statistic: Stats.SUM, period: fiveMinutes }),
      ),
      new Alarm(this, 'NoSuccessfulRunAlarm', {
        alarmDescription: `No successful audit run within ${heartbeat.evaluationPeriods} × ${heartbeat.period.toHumanString()}.`,
        metric: runSucceeded,
        threshold: 1,
        comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: heartbeat.evaluationPeriods,
        datapointsToAlarm: heartbeat.evaluationPeriods,
        // No data means no run reported success: that is exactly what this alarm is for.
        treatMissingData: TreatMissingData.BREACHING,
      }),
      this.#anyAlarm(
        'ScheduleDeadLetterQueueAlarm',
        'The schedule could not invoke the audit function; see the dead-letter queue.',
        this.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          statistic: Stats.MAXIMUM,
          period: fiveMinutes,
        }),
      ),
      this.#anyAlarm(
        'FailureQueueAlarm',
        'An audit invocation failed or expired; see the on-failure queue.',
        this.failureQueue.metricApproximateNumberOfMessagesVisible({
          statistic: Stats.MAXIMUM,
          period: fiveMinutes,
        }),
      ),
    ];
    // The notification topic is where people already listen; alarm messages carry no `changeType` attribute,
    // so subscriptions filtering on it (machines) do not receive them.
    const action = new SnsAction(this.topic);
    for (const alarm of alarms) alarm.addAlarmAction(action);
    this.alarms = alarms;

    // --- Dashboard ---------------------------------------------------------------------------------------
    const period = heartbeat.period;
    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(7) });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# BigState key audit\n${config.principals.length} principal(s), schedule \`${config.schedule}\`.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Keys per principal',
        left: [
          new SearchExpression({
            // Every principal's KeyCount series, including principals added later, without one widget each.
            expression: `SEARCH('{${METRICS_NAMESPACE},principal,service} MetricName="${METRIC.keyCount}" service="${SERVICE_NAME}"', 'Maximum', ${period.toSeconds()})`,
            label: '',
            period,
          }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Keys added / removed',
        left: [
          auditMetric(METRIC.keysAdded, Stats.SUM, period),
          auditMetric(METRIC.keysRemoved, Stats.SUM, period),
        ],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Runs: succeeded / principals failed',
        left: [runSucceeded.with({ period }), auditMetric(METRIC.principalsFailed, Stats.SUM, period)],
        width: 8,
      }),
      new GraphWidget({
        title: 'Run duration (ms)',
        left: [
          auditMetric(METRIC.runDuration, Stats.MAXIMUM, period),
          auditMetric(METRIC.runDuration, Stats.AVERAGE, period),
        ],
        width: 8,
      }),
      new AlarmStatusWidget({ title: 'Alarms', alarms, width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Lambda invocations, errors, throttles',
        left: [
          this.function.metricInvocations({ statistic: Stats.SUM, period: fiveMinutes }),
          this.function.metricErrors({ statistic: Stats.SUM, period: fiveMinutes }),
          this.function.metricThrottles({ statistic: Stats.SUM, period: fiveMinutes }),
        ],
        width: 12,
      }),
      new GraphWidget({
        title: 'Lambda duration (ms)',
        left: [
          this.function.metricDuration({ statistic: Stats.MAXIMUM, period: fiveMinutes }),
          this.function.metricDuration({ statistic: Stats.p(50), period: fiveMinutes }),
        ],
        width: 12,
      }),
    );
  }

  /**
   * The function's S3 access, exactly the calls of `functions/adapters/aws/s3-store.ts`, and the bucket policy
   * that holds every writer (people included) to the write rules the function keeps by code.
   *
   * Hand-written statements: `bucket.grantRead` and `grantPut` would add GetObject*, GetBucket*, List*, Abort*,
   * PutObjectLegalHold, PutObjectRetention, PutObjectTagging and PutObjectVersionTagging on the whole bucket,
   * none of which the function calls. No KMS permission: the bucket is SSE-S3, not SSE-KMS.
   */
  #grantBucketAccess(): void {
    const snapshots = this.bucket.arnForObjects(`${SNAPSHOTS_PREFIX}*`);
    const history = this.bucket.arnForObjects(`${HISTORY_PREFIX}*`);
    // GetObject: the latest snapshot. PutObject: the snapshot (If-Match / If-None-Match) and the change records
    // (If-None-Match). Never a delete, never anything outside these two prefixes.
    Grant.addToPrincipal({ grantee: this.function, actions: ['s3:GetObject'], resourceArns: [snapshots] });
    Grant.addToPrincipal({
      grantee: this.function,
      actions: ['s3:PutObject'],
      resourceArns: [snapshots, history],
    });
    // Not an API the function calls: S3 consults it when a GetObject names a missing key, answering 404 with it
    // and 403 without. A principal's first (baseline) run depends on that 404. It lets the role list key names
    // (principal names and change ids) of this one bucket, never read a body.
    Grant.addToPrincipal({
      grantee: this.function,
      actions: ['s3:ListBucket'],
      resourceArns: [this.bucket.bucketArn],
    });

    // Immutable history by policy, not by code alone: a put under history/ must carry If-None-Match (create
    // only, never replace). `s3:ObjectCreationOperation` keeps the multipart steps that cannot carry the header
    // (CreateMultipartUpload, UploadPart) out of the deny; their CompleteMultipartUpload still needs it.
    const objectCreation = { 's3:ObjectCreationOperation': 'true' };
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'HistoryIsWriteOnce',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [history],
        conditions: { Null: { 's3:if-none-match': 'true' }, Bool: objectCreation },
      }),
    );
    // Snapshots: conditional writes only, If-Match (replace the version read) or If-None-Match (create). Keys
    // within one condition operator are ANDed: the deny applies when both headers are missing, which is "one
    // of them is required" (two deny statements would require both).
    this.bucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'SnapshotWritesAreConditional',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['s3:PutObject'],
        resources: [snapshots],
        conditions: { Null: { 's3:if-none-match': 'true', 's3:if-match': 'true' }, Bool: objectCreation },
      }),
    );
  }

  /** An alarm on anything at all: one error, throttle or message in a failure queue is one too many. */
  #anyAlarm(id: string, alarmDescription: string, metric: IMetric): Alarm {
    return new Alarm(this, id, {
      alarmDescription,
      metric,
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No data means nothing went wrong.
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}

/** A metric the function emits through Powertools, with its default `service` dimension. */
function auditMetric(metricName: string, statistic: string, period: Duration): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic,
    period,
  });
}

function heartbeatOf(interval: Duration): ReturnType<typeof heartbeatWindow> {
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

/** cdk-nag acknowledgements, each a rule (or finding) id with its own reason, on the narrowest scope. */
function acknowledge(scope: Construct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons)) Validations.of(scope).acknowledge({ id, reason });
}
