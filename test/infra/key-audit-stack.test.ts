import { Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseInvocation } from '../../functions/core/invocation.js';
import { changeRecordKey, snapshotKey } from '../../functions/core/layout.js';
import { HISTORY_PREFIX, SNAPSHOTS_PREFIX } from '../../infra/key-audit.js';
import {
  acknowledgements,
  actionsOf,
  joined,
  logicalId,
  only,
  policyStatements,
  type Synthesized,
  synthesize,
  usedAcknowledgements,
} from './support.js';

const HOST = 'https://api.bigstate.dev';
const HOSTILE = ['tram_client', 'Tram & Bus #1', 'Zürich Straße', 'O\'Brien "quoted"', '日本語 キー'];
const EMAILS = ['ops@example.com', 'on-call@example.org'];

// Synthesizing bundles the function with esbuild: once per configuration, shared by every assertion.
let main: Synthesized;
let custom: Synthesized;
beforeAll(() => {
  main = synthesize({
    bigstateHost: HOST,
    principals: JSON.stringify(HOSTILE),
    notificationEmails: EMAILS.join(', '),
  });
  custom = synthesize(
    {
      bigstateHost: 'http://127.0.0.1:8080/bigstate',
      // Discovery alone: no principal listed.
      principalPattern: 'svc-*',
      pattern: 'ci-*',
      schedule: 'cron(0 6 * * ? *)',
      apiKeySecretName: 'prod/bigstate-key',
    },
    { keyAudit: { eventBusName: 'audit-bus' } },
  );
});

const ids = (s: Synthesized) => {
  const { stack } = s;
  const audit = stack.audit;
  return {
    function: logicalId(stack, audit.function),
    role: logicalId(stack, audit.function.role as IConstruct),
    bucket: logicalId(stack, audit.bucket),
    logsBucket: logicalId(stack, audit.accessLogsBucket),
    topic: logicalId(stack, audit.topic),
    secret: logicalId(stack, audit.secret),
    dlq: logicalId(stack, audit.scheduleDeadLetterQueue),
    failureQueue: logicalId(stack, audit.failureQueue),
  };
};

/** The statements of the snapshot bucket's policy. */
function bucketPolicyStatements(s: Synthesized): Array<Record<string, unknown>> {
  const [, policy] = only(s.template, 'AWS::S3::BucketPolicy', { Bucket: { Ref: ids(s).bucket } });
  return (policy.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement;
}

/** Every cdk-nag acknowledgement (rule or finding id) in an app. */
describe('the function', () => {
  it('runs Node 24 on ARM64, ESM-bundled, with explicit timeout, memory and one run at a time', () => {
    const [, fn] = only(main.template, 'AWS::Lambda::Function');
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      Timeout: 300,
      MemorySize: 512,
      ReservedConcurrentExecutions: 1,
    });
  });

  it('is configured by exactly the contract variables, the host and principals as given', () => {
    const id = ids(main);
    const [, fn] = only(main.template, 'AWS::Lambda::Function');
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables).toEqual({
      BIGSTATE_HOST: HOST,
      BIGSTATE_PRINCIPALS: JSON.stringify(HOSTILE),
      // The whole run is this invocation: the contract's default budget of BigState requests is its own.
      BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '16',
      API_KEY_SECRET_ARN: { Ref: id.secret },
      SNAPSHOT_BUCKET_NAME: { Ref: id.bucket },
      TOPIC_ARN: { Ref: id.topic },
      EVENT_BUS_NAME: 'default',
      POWERTOOLS_SERVICE_NAME: 'bigstate-key-audit',
      POWERTOOLS_METRICS_NAMESPACE: 'BigStateKeyAudit',
      NODE_OPTIONS: '--enable-source-maps',
    });
    expect(JSON.parse(variables.BIGSTATE_PRINCIPALS as string)).toEqual(HOSTILE);
  });

  it('gets the principal pattern (and no list), the pattern, an imported secret ARN and the chosen bus when configured', () => {
    const [, fn] = only(custom.template, 'AWS::Lambda::Function');
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables.BIGSTATE_HOST).toBe('http://127.0.0.1:8080/bigstate');
    expect(variables).not.toHaveProperty('BIGSTATE_PRINCIPALS');
    expect(variables.BIGSTATE_PRINCIPAL_PATTERN).toBe('svc-*');
    expect(variables.BIGSTATE_PATTERN).toBe('ci-*');
    expect(variables.EVENT_BUS_NAME).toBe('audit-bus');
    expect(joined(variables.API_KEY_SECRET_ARN)).toBe(
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:prod/bigstate-key',
    );
    custom.template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it('logs JSON to its own log group, kept three months', () => {
    const [logGroup, resource] = only(main.template, 'AWS::Logs::LogGroup');
    expect(resource.Properties.RetentionInDays).toBe(90);
    const [, fn] = only(main.template, 'AWS::Lambda::Function');
    expect(fn.Properties.LoggingConfig).toMatchObject({ LogFormat: 'JSON', LogGroup: { Ref: logGroup } });
  });

  it('is not retried by Lambda and sends failed invocations to an encrypted, TLS-only queue', () => {
    const id = ids(main);
    main.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: id.function },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [id.failureQueue, 'Arn'] } } },
    });
  });
});

describe('the schedule', () => {
  it('runs the function hourly by default with the fixed input, retries and a dead-letter queue', () => {
    const id = ids(main);
    const [, schedule] = only(main.template, 'AWS::Scheduler::Schedule');
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [id.function, 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [id.dlq, 'Arn'] } },
      },
    });
    const target = schedule.Properties.Target as { Input: string };
    expect(target.Input).toBe(
      '{"source":"bigstate.key-audit.schedule","scheduledTime":"<aws.scheduler.scheduled-time>","executionId":"<aws.scheduler.execution-id>"}',
    );
  });

  it('sends exactly the input the function takes for a scheduled run (and nothing a manual run could carry)', () => {
    const [, schedule] = only(main.template, 'AWS::Scheduler::Schedule');
    const input = (schedule.Properties.Target as { Input: string }).Input;
    // What Scheduler delivers: its context attributes filled in.
    const delivered = JSON.parse(
      input
        .replace('<aws.scheduler.scheduled-time>', '2026-11-28T10:00:00Z')
        .replace('<aws.scheduler.execution-id>', 'c0ffee00-1111-2222-3333-444455556666'),
    );
    expect(parseInvocation(delivered, ['a'])).toMatchObject({
      trigger: 'schedule',
      principals: ['a'],
      dryRun: false,
    });
    expect(() => parseInvocation({ ...delivered, dryRun: true }, ['a'])).toThrow(
      /"source".*it holds "dryRun"/,
    );
  });

  it('takes a cron expression as configured', () => {
    custom.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 6 * * ? *)',
    });
  });

  it('invokes through its own role, trusted by Scheduler for this account only, allowed this function only', () => {
    const id = ids(main);
    const [, schedule] = only(main.template, 'AWS::Scheduler::Schedule');
    const roleId = ((schedule.Properties.Target as { RoleArn: { 'Fn::GetAtt': string[] } }).RoleArn[
      'Fn::GetAtt'
    ] ?? [])[0] as string;
    const role = main.template.toJSON().Resources[roleId];
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: expect.objectContaining({ 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }),
        },
      }),
    ]);
    const statements = policyStatements(main.template).filter((s) =>
      actionsOf(s).includes('lambda:InvokeFunction'),
    );
    expect(statements).toHaveLength(1);
    expect(((statements[0]?.Resource ?? []) as unknown[]).map(joined)).toEqual([
      `<${id.function}.Arn>`,
      `<${id.function}.Arn>:*`,
    ]);
  });

  it('has encrypted, TLS-only queues for the dead letters and failures', () => {
    for (const queue of [ids(main).dlq, ids(main).failureQueue]) {
      const resource = main.template.toJSON().Resources[queue];
      expect(resource.Properties).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1_209_600,
      });
      main.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queue }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });
});

describe('the snapshot bucket', () => {
  it('is versioned, encrypted, private, logged and retained', () => {
    const id = ids(main);
    const bucket = main.template.toJSON().Resources[id.bucket];
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LoggingConfiguration: { DestinationBucketName: { Ref: id.logsBucket } },
    });
  });

  it('expires old versions and history, and aborts stale uploads', () => {
    const bucket = main.template.toJSON().Resources[ids(main).bucket];
    const rules = bucket.Properties.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Id: 'expire-noncurrent-versions',
          Status: 'Enabled',
          NoncurrentVersionExpiration: { NoncurrentDays: 90 },
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          ExpiredObjectDeleteMarker: true,
        }),
        expect.objectContaining({ Id: 'expire-history', Prefix: 'history/', ExpirationInDays: 365 }),
      ]),
    );
  });

  it('expires a failure kept aside that no run rewrote for 30 days (its principal is no longer audited)', () => {
    const bucket = main.template.toJSON().Resources[ids(main).bucket];
    const rules = bucket.Properties.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules.filter((rule) => String(rule.Prefix).startsWith('failures'))).toEqual([
      { Id: 'expire-orphaned-failures', Prefix: 'failures/', ExpirationInDays: 30, Status: 'Enabled' },
    ]);
  });

  it.each(['bucket', 'logsBucket'] as const)('%s refuses plain HTTP and old TLS', (which) => {
    const bucket = ids(main)[which];
    main.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Deny', Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
        ]),
      },
    });
  });

  it('keeps change records write-once by policy: every put under history/ must carry If-None-Match', () => {
    const id = ids(main);
    expect(bucketPolicyStatements(main).filter((s) => s.Sid === 'HistoryIsWriteOnce')).toEqual([
      {
        Sid: 'HistoryIsWriteOnce',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObject',
        Resource: expect.anything(),
        Condition: { Null: { 's3:if-none-match': 'true' }, Bool: { 's3:ObjectCreationOperation': 'true' } },
      },
    ]);
    const [history] = bucketPolicyStatements(main).filter((s) => s.Sid === 'HistoryIsWriteOnce');
    expect(joined(history?.Resource)).toBe(`<${id.bucket}.Arn>/history/*`);
  });

  it('allows only conditional snapshot writes: If-Match or If-None-Match (denied when both are missing)', () => {
    const id = ids(main);
    const statements = bucketPolicyStatements(main).filter((s) => s.Sid === 'SnapshotWritesAreConditional');
    expect(statements).toEqual([
      {
        Sid: 'SnapshotWritesAreConditional',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObject',
        Resource: expect.anything(),
        // One Null block: its keys are ANDed, so the deny needs both headers absent (either one satisfies it).
        Condition: {
          Null: { 's3:if-none-match': 'true', 's3:if-match': 'true' },
          Bool: { 's3:ObjectCreationOperation': 'true' },
        },
      },
    ]);
    expect(joined(statements[0]?.Resource)).toBe(`<${id.bucket}.Arn>/snapshots/*`);
  });

  it("takes its prefixes from the function's layout", () => {
    expect(SNAPSHOTS_PREFIX).toBe('snapshots/');
    expect(HISTORY_PREFIX).toBe('history/');
    expect(snapshotKey('x').startsWith(SNAPSHOTS_PREFIX)).toBe(true);
    expect(changeRecordKey('x', 'c').startsWith(HISTORY_PREFIX)).toBe(true);
  });

  it('keeps the access logs private, encrypted and retained too', () => {
    const logs = main.template.toJSON().Resources[ids(main).logsBucket];
    expect(logs.DeletionPolicy).toBe('Retain');
    expect(logs.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, RestrictPublicBuckets: true },
    });
  });
});

describe('the secret', () => {
  it('is created holding the fixed empty template, retained', () => {
    const [, secret] = only(main.template, 'AWS::SecretsManager::Secret');
    expect(secret.Properties.SecretString).toBe('{"apiKey":""}');
    expect(secret.Properties.GenerateSecretString).toBeUndefined();
    expect(secret.DeletionPolicy).toBe('Retain');
  });
});

describe('the topic', () => {
  it('is encrypted with a rotating customer managed key that CloudWatch alarms may use', () => {
    const id = ids(main);
    const [keyId, key] = only(main.template, 'AWS::KMS::Key');
    expect(key.Properties.EnableKeyRotation).toBe(true);
    main.template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
    });
    expect((key.Properties.KeyPolicy as { Statement: unknown[] }).Statement).toContainEqual(
      expect.objectContaining({
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      }),
    );
    main.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: id.topic }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('lets CloudWatch use the key and publish only for alarms of this account and region', () => {
    const id = ids(main);
    const [, key] = only(main.template, 'AWS::KMS::Key');
    const statements = (key.Properties.KeyPolicy as { Statement: Array<Record<string, unknown>> }).Statement;
    const forCloudWatch = statements.filter(
      (s) => JSON.stringify(s.Principal) === JSON.stringify({ Service: 'cloudwatch.amazonaws.com' }),
    );
    const alarmsHere = {
      StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
      ArnLike: { 'aws:SourceArn': expect.anything() },
    };
    expect(forCloudWatch).toEqual([
      expect.objectContaining({
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Condition: alarmsHere,
      }),
    ]);
    const sourceArn = (c: unknown) =>
      joined((c as { ArnLike: { 'aws:SourceArn': unknown } }).ArnLike['aws:SourceArn']);
    expect(sourceArn(forCloudWatch[0]?.Condition)).toBe(
      'arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*',
    );
    // The topic's own policy (from enforceSSL) replaces SNS's default one: it must let the alarms publish.
    const [, topicPolicy] = only(main.template, 'AWS::SNS::TopicPolicy');
    const publish = (
      topicPolicy.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }
    ).Statement.filter((s) => s.Effect === 'Allow');
    expect(publish).toEqual([
      expect.objectContaining({
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: { Ref: id.topic },
        Condition: alarmsHere,
      }),
    ]);
    expect(sourceArn(publish[0]?.Condition)).toBe(sourceArn(forCloudWatch[0]?.Condition));
  });

  it('subscribes exactly the configured e-mail addresses', () => {
    const id = ids(main);
    const subscriptions = Object.values(main.template.findResources('AWS::SNS::Subscription')).map(
      (s) => s.Properties,
    );
    expect(subscriptions).toEqual(
      EMAILS.map((email) => ({ Protocol: 'email', Endpoint: email, TopicArn: { Ref: id.topic } })),
    );
    custom.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('permissions', () => {
  it('name their resources: never "*" for the secret, bucket, topic, key or bus', () => {
    for (const s of [main, custom]) {
      for (const statement of policyStatements(s.template)) {
        const services = actionsOf(statement).map((action) => action.split(':')[0]);
        if (
          services.some((service) =>
            ['secretsmanager', 's3', 'sns', 'events', 'kms', 'sqs'].includes(service ?? ''),
          )
        ) {
          const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
          expect(resources).not.toContain('*');
        }
      }
    }
  });

  it('grant the function exactly what it uses, and no delete but of its own run lease and failures kept aside', () => {
    const id = ids(main);
    const statements = policyStatements(main.template).filter((s) =>
      s.policy.startsWith(id.role.replace(/[A-F0-9]{8}$/, '')),
    );
    const byAction = (action: string) => statements.filter((s) => actionsOf(s).includes(action));
    const resources = (action: string) =>
      byAction(action).flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map(joined));
    expect(resources('secretsmanager:GetSecretValue')).toEqual([`<${id.secret}>`]);
    // Exactly the S3 calls of the function's code, each on its prefix: no legal hold, retention, tagging,
    // multipart abort, delete or bucket metadata; ListBucket only so a missing snapshot reads as 404.
    const s3Actions = statements.flatMap(actionsOf).filter((action) => action.startsWith('s3:'));
    expect([...new Set(s3Actions)].sort()).toEqual([
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    expect(resources('s3:GetObject').sort()).toEqual([
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
      `<${id.bucket}.Arn>/snapshots/*`,
    ]);
    expect(resources('s3:PutObject').sort()).toEqual([
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/history/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
      `<${id.bucket}.Arn>/reports/*`,
      `<${id.bucket}.Arn>/snapshots/*`,
    ]);
    // The deletes: the run lease, by its holder (If-Match), and a principal's failure kept aside once it
    // recovered (If-Match). Never a state or a record.
    expect(resources('s3:DeleteObject').sort()).toEqual([
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
    ]);
    expect(resources('s3:ListBucket')).toEqual([`<${id.bucket}.Arn>`]);
    for (const statement of statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')))) {
      expect(statement.Effect).toBe('Allow');
      expect((statement as { Condition?: unknown }).Condition).toBeUndefined();
    }
    // The bucket is SSE-S3: no KMS permission for it (the only key granted is the topic's).
    const [topicKey] = only(main.template, 'AWS::KMS::Key');
    expect(resources('kms:Decrypt')).toEqual([`<${topicKey}.Arn>`]);
    expect(resources('sns:Publish')).toEqual([`<${id.topic}>`]);
    expect(resources('events:PutEvents')).toEqual([
      'arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/default',
    ]);
    expect(statements.flatMap(actionsOf).filter((a) => /delete/i.test(a))).toEqual(['s3:DeleteObject']);
    expect(statements.flatMap(actionsOf)).not.toContain('s3:*');
  });

  it('grant discovery the archive: a put under archive/ and a delete of a state, nothing more', () => {
    const id = ids(custom);
    const statements = policyStatements(custom.template).filter((s) =>
      s.policy.startsWith(id.role.replace(/[A-F0-9]{8}$/, '')),
    );
    const resources = (action: string) =>
      statements
        .filter((s) => actionsOf(s).includes(action))
        .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map(joined));
    const s3Actions = statements.flatMap(actionsOf).filter((action) => action.startsWith('s3:'));
    expect([...new Set(s3Actions)].sort()).toEqual([
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    expect(resources('s3:PutObject').sort()).toEqual([
      `<${id.bucket}.Arn>/archive/*`,
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/history/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
      `<${id.bucket}.Arn>/reports/*`,
      `<${id.bucket}.Arn>/snapshots/*`,
    ]);
    expect(resources('s3:DeleteObject').sort()).toEqual([
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
      `<${id.bucket}.Arn>/snapshots/*`,
    ]);
    expect(resources('s3:GetObject').sort()).toEqual([
      `<${id.bucket}.Arn>/failures/*`,
      `<${id.bucket}.Arn>/leases/run.json`,
      `<${id.bucket}.Arn>/snapshots/*`,
    ]);
  });

  it('grant an imported secret by its name and a custom bus by its name', () => {
    const statements = policyStatements(custom.template);
    const resources = (action: string) =>
      statements
        .filter((s) => actionsOf(s).includes(action))
        .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]).map(joined));
    expect(resources('secretsmanager:GetSecretValue')).toEqual([
      'arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:prod/bigstate-key-??????',
    ]);
    expect(resources('events:PutEvents')).toEqual([
      'arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:event-bus/audit-bus',
    ]);
  });
});

describe('alarms', () => {
  const alarms = (s: Synthesized) =>
    Object.values(s.template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Record<string, unknown>,
    );
  const alarm = (s: Synthesized, name: string) => {
    const found = alarms(s).filter((a) => a.AlarmName === name);
    if (found.length !== 1) throw new Error(`expected one alarm named ${name}, found ${found.length}`);
    return found[0] as Record<string, unknown>;
  };
  const NAMES = [
    'Audit-audit-errors',
    'Audit-audit-throttles',
    'Audit-no-successful-run',
    'Audit-schedule-dead-letters',
    'Audit-async-failures',
  ];

  it('have readable names prefixed by the stack', () => {
    expect(alarms(main).map((a) => a.AlarmName)).toEqual(NAMES);
  });

  it('all notify the topic when they fire and when they clear', () => {
    const id = ids(main);
    expect(alarms(main)).toHaveLength(5);
    for (const a of alarms(main)) {
      expect(a.AlarmActions, String(a.AlarmName)).toEqual([{ Ref: id.topic }]);
      expect(a.OKActions, String(a.AlarmName)).toEqual([{ Ref: id.topic }]);
      expect(a.InsufficientDataActions).toBeUndefined();
    }
  });

  it.each([
    ['Audit-audit-errors', 'alarm-audit-errors'],
    ['Audit-audit-throttles', 'alarm-audit-throttles'],
    ['Audit-no-successful-run', 'alarm-no-successful-run'],
    ['Audit-schedule-dead-letters', 'alarm-schedule-dead-letters'],
    ['Audit-async-failures', 'alarm-async-failures'],
  ])('%s says what happened, what it means and what to do first, and links its runbook', (name, anchor) => {
    const description = alarm(main, name).AlarmDescription as string;
    expect(description).toMatch(
      /^What happened: .+ What it means: .+ First thing to do: .+ Runbook: README\.md#[a-z-]+ \(bigstate-key-audit\)\.$/,
    );
    expect(description).toContain(`Runbook: README.md#${anchor} `);
    expect(description.length).toBeLessThanOrEqual(1024); // CloudWatch's limit
  });

  it('fire on any function error, and stay on until an invocation ends without error', () => {
    const id = ids(main);
    expect(alarm(main, 'Audit-audit-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: id.function } }],
      Statistic: 'Sum',
      Period: 300,
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
      // Between runs Lambda reports nothing: that keeps the state; the next good run's Errors 0 clears it.
      TreatMissingData: 'ignore',
    });
  });

  it('fire on any throttle, and clear by themselves', () => {
    const id = ids(main);
    expect(alarm(main, 'Audit-audit-throttles')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: id.function } }],
      Statistic: 'Sum',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      EvaluationPeriods: 1,
      TreatMissingData: 'notBreaching',
    });
  });

  it('fire when no run succeeded within two schedule periods (rate: the rate)', () => {
    expect(alarm(main, 'Audit-no-successful-run')).toMatchObject({
      Namespace: 'BigStateKeyAudit',
      MetricName: 'RunSucceeded',
      Dimensions: [{ Name: 'service', Value: 'bigstate-key-audit' }],
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    expect(alarm(main, 'Audit-no-successful-run').AlarmDescription).toContain('within 2 × 1 hour');
  });

  it('fire when no run succeeded within two heartbeat periods (cron: one day by default)', () => {
    expect(alarm(custom, 'Audit-no-successful-run')).toMatchObject({
      MetricName: 'RunSucceeded',
      Period: 86_400,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
    });
  });

  it.each([
    ['Audit-schedule-dead-letters', 'dlq'],
    ['Audit-async-failures', 'failureQueue'],
  ] as const)('%s fires on a message arriving in its queue, not on messages kept there', (name, queue) => {
    expect(alarm(main, name)).toStrictEqual(
      expect.objectContaining({
        Namespace: 'AWS/SQS',
        // Scheduler and Lambda deliver with SendMessage, which NumberOfMessagesSent counts.
        MetricName: 'NumberOfMessagesSent',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [ids(main)[queue], 'QueueName'] } }],
        Statistic: 'Sum',
        Period: 300,
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        EvaluationPeriods: 1,
        // No message in the period: the alarm clears by itself, although the message stays for 14 days.
        TreatMissingData: 'notBreaching',
      }),
    );
  });

  it('never watch the messages visible in a queue (that would hold them in ALARM for 14 days)', () => {
    for (const a of alarms(main)) expect(a.MetricName).not.toBe('ApproximateNumberOfMessagesVisible');
  });
});

describe('the dashboard', () => {
  const body = (s: Synthesized) => {
    const [, dashboard] = only(s.template, 'AWS::CloudWatch::Dashboard');
    return JSON.parse(joined(dashboard.Properties.DashboardBody)) as {
      widgets: Array<{ type: string; properties: Record<string, unknown> }>;
    };
  };

  it('shows the latest key count per principal from the logs, real runs only (Logs Insights)', () => {
    const logs = body(main).widgets.filter((w) => w.type === 'log');
    expect(logs).toHaveLength(1);
    const [logGroup] = only(main.template, 'AWS::Logs::LogGroup');
    expect(logs[0]?.properties).toMatchObject({ view: 'table' });
    expect(logs[0]?.properties.query).toBe(
      [
        `SOURCE '<${logGroup}>' | fields @timestamp, principal, keyCount`,
        'filter message = "principal audited" and dryRun = 0',
        'stats latest(keyCount) as keys, latest(@timestamp) as lastAudited by principal',
        'sort principal asc',
        'limit 10000',
      ].join('\n| '),
    );
  });

  it('has no metric per principal: no KeyCount, no principal dimension, no SEARCH expression', () => {
    const text = JSON.stringify(body(main));
    expect(text).not.toContain('KeyCount');
    expect(text).not.toContain('"principal"');
    expect(text).not.toContain('SEARCH(');
    for (const widget of body(main).widgets.filter((w) => w.type === 'metric')) {
      for (const metric of widget.properties.metrics as unknown[][]) {
        const dimensions = metric.filter((part) => typeof part === 'string').slice(2);
        expect(['AWS/Lambda', 'BigStateKeyAudit']).toContain(metric[0]);
        if (metric[0] === 'BigStateKeyAudit') expect(dimensions).toEqual(['service', 'bigstate-key-audit']);
      }
    }
  });

  it('shows the run-level metrics, the totals included, the alarms and Lambda health', () => {
    const text = JSON.stringify(body(main));
    for (const metric of [
      'KeysTotal',
      'KeysAdded',
      'KeysRemoved',
      'PrincipalsFailed',
      'RunDuration',
      'RunSucceeded',
    ]) {
      expect(text).toContain(`"BigStateKeyAudit","${metric}","service","bigstate-key-audit"`);
    }
    for (const metric of ['Errors', 'Duration', 'Throttles', 'Invocations']) {
      expect(text).toContain(`"AWS/Lambda","${metric}","FunctionName"`);
    }
    const alarmWidget = body(main).widgets.find((w) => w.type === 'alarm');
    expect(alarmWidget?.properties.alarms).toHaveLength(5);
  });
});

describe('logical ids', () => {
  // Every resource's logical id, in this file's main configuration, as synthesized before the construct was
  // split by concern (git 59b71e4). A
  // changed id replaces the resource on the next deploy: for the retained snapshot bucket, that would orphan
  // the audit trail and start every principal over with a baseline.
  const BEFORE_THE_SPLIT: ReadonlyArray<readonly [string, string]> = [
    ['KeyAuditApiKeySecret48B51B18', 'AWS::SecretsManager::Secret'],
    ['KeyAuditAccessLogsBucketF6962A1A', 'AWS::S3::Bucket'],
    ['KeyAuditAccessLogsBucketPolicy2660723D', 'AWS::S3::BucketPolicy'],
    ['KeyAuditSnapshotBucket2587E7F0', 'AWS::S3::Bucket'],
    ['KeyAuditSnapshotBucketPolicy5D7CCEE3', 'AWS::S3::BucketPolicy'],
    ['KeyAuditTopicKey9F42D3B3', 'AWS::KMS::Key'],
    ['KeyAuditTopicB972563A', 'AWS::SNS::Topic'],
    ['KeyAuditTopicPolicy76FA7A07', 'AWS::SNS::TopicPolicy'],
    ['KeyAuditTopicopsexamplecomAF400818', 'AWS::SNS::Subscription'],
    ['KeyAuditTopiconcallexampleorg9CFE03A1', 'AWS::SNS::Subscription'],
    ['KeyAuditLogGroup65725D94', 'AWS::Logs::LogGroup'],
    ['KeyAuditFunctionRoleFC6791AC', 'AWS::IAM::Role'],
    ['KeyAuditFunctionRoleDefaultPolicyC4461202', 'AWS::IAM::Policy'],
    ['KeyAuditFailureQueue95A8B2C2', 'AWS::SQS::Queue'],
    ['KeyAuditFailureQueuePolicyF501DE2F', 'AWS::SQS::QueuePolicy'],
    ['KeyAuditFunction847A2A10', 'AWS::Lambda::Function'],
    ['KeyAuditFunctionEventInvokeConfig03139B08', 'AWS::Lambda::EventInvokeConfig'],
    ['KeyAuditScheduleDeadLetterQueue261D6E24', 'AWS::SQS::Queue'],
    ['KeyAuditScheduleDeadLetterQueuePolicy53705653', 'AWS::SQS::QueuePolicy'],
    ['KeyAuditScheduleRole1612222E', 'AWS::IAM::Role'],
    ['KeyAuditScheduleRoleDefaultPolicyB66A726C', 'AWS::IAM::Policy'],
    ['KeyAuditSchedule382C3AFB', 'AWS::Scheduler::Schedule'],
    ['KeyAuditErrorsAlarm9CC4B987', 'AWS::CloudWatch::Alarm'],
    ['KeyAuditThrottlesAlarm193E659D', 'AWS::CloudWatch::Alarm'],
    ['KeyAuditNoSuccessfulRunAlarmE61233FC', 'AWS::CloudWatch::Alarm'],
    ['KeyAuditScheduleDeadLetterQueueAlarmE4FB11FB', 'AWS::CloudWatch::Alarm'],
    ['KeyAuditFailureQueueAlarm812F4927', 'AWS::CloudWatch::Alarm'],
    ['KeyAuditDashboard98A4EDBE', 'AWS::CloudWatch::Dashboard'],
  ];

  it('keep the snapshot bucket (and its access-log bucket) where they were', () => {
    expect(ids(main).bucket).toBe('KeyAuditSnapshotBucket2587E7F0');
    expect(ids(main).logsBucket).toBe('KeyAuditAccessLogsBucketF6962A1A');
  });

  it('are those of every resource before the split, with their types', () => {
    const resources = main.template.toJSON().Resources as Record<string, { Type: string }>;
    expect(Object.entries(resources).map(([id, resource]) => [id, resource.Type])).toEqual(BEFORE_THE_SPLIT);
  });
});

describe('outputs', () => {
  it('name the function, bucket, topic, secret, log group and queues, and give the invoke commands', () => {
    const id = ids(main);
    const outputs = main.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const value = (name: string) => joined(outputs[name]?.Value);
    expect(value('FunctionName')).toBe(`<${id.function}>`);
    expect(value('BucketName')).toBe(`<${id.bucket}>`);
    expect(value('TopicArn')).toBe(`<${id.topic}>`);
    expect(value('SecretArn')).toBe(`<${id.secret}>`);
    const [logGroup] = only(main.template, 'AWS::Logs::LogGroup');
    expect(value('LogGroupName')).toBe(`<${logGroup}>`);
    expect(value('ScheduleDeadLetterQueueUrl')).toBe(`<${id.dlq}>`);
    expect(value('FailureQueueUrl')).toBe(`<${id.failureQueue}>`);
    expect(value('ManualRunCommand')).toBe(
      `aws lambda invoke --region <AWS::Region> --function-name <${id.function}> --cli-binary-format raw-in-base64-out --payload '{}' audit-result.json`,
    );
    expect(value('DryRunCommand')).toBe(
      `aws lambda invoke --region <AWS::Region> --function-name <${id.function}> --cli-binary-format raw-in-base64-out --payload '{"dryRun":true}' audit-dry-run.json`,
    );
  });
});

describe('cdk-nag', () => {
  it.each([
    ['AwsSolutions', () => new AwsSolutionsChecks()],
    ['Serverless', () => new ServerlessChecks()],
  ])('%s reports nothing unacknowledged, in either configuration', (_pack, pack) => {
    for (const s of [main, custom]) {
      const report = pack().validateScope(s.app);
      expect(
        report.violations.map((v) => `${v.ruleName} at ${v.violatingResources[0]?.constructPath}`),
      ).toEqual([]);
      expect(report.success).toBe(true);
    }
  });

  it('acknowledges nothing that is not found: every acknowledgement silences a finding of this stack', () => {
    for (const s of [main, custom]) {
      const acknowledged = acknowledgements(s.app).map(([id]) => id);
      const used = usedAcknowledgements(s.app);
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(used.size).toBeGreaterThan(0);
      expect(acknowledged.filter((ack) => !used.has(ack))).toEqual([]);
    }
  });

  it('acknowledges each finding by its own id, with a reason', () => {
    const acknowledged = acknowledgements(main.app);
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const [id, reason] of acknowledged) {
      expect(reason.length, id).toBeGreaterThan(60);
      // A wildcard finding is acknowledged one by one, never the rule as a whole.
      if (id.includes('IAM5')) expect(id).toMatch(/IAM5\[(Action|Resource)::.+\]$/);
    }
  });
});
