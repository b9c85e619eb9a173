/**
 * The deployable stack: configuration from the CDK context, one {@link KeyAudit}, and outputs for operating it.
 */
import { Aws, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { readKeyAuditContext } from './config.js';
import { KeyAudit, type KeyAuditProps } from './key-audit.js';

/** Construct properties that are not context keys: for tests and for stacks that embed the audit. */
export type KeyAuditOptions = Pick<
  KeyAuditProps,
  'eventBusName' | 'heartbeatPeriod' | 'historyRetention' | 'logRetention' | 'entry' | 'fanOutEntry'
>;

/** Properties of a {@link KeyAuditStack}. */
export interface KeyAuditStackProps extends StackProps {
  /**
   * Settings of the audit beyond the context keys.
   * @default - the construct's defaults
   */
  readonly keyAudit?: KeyAuditOptions;
}

/**
 * The BigState key audit stack. Reads the contract's context keys (`bigstateHost`, `principals`, `pattern`,
 * `schedule`, `apiKeySecretName`, `notificationEmails`, ...; see `CONTEXT_KEYS`) from the CDK context, and
 * refuses any other key but CDK's own.
 * @throws ConfigurationError when a context key is unknown, or a value missing or invalid, naming the key.
 */
export class KeyAuditStack extends Stack {
  /** The audit itself. */
  readonly audit: KeyAudit;

  constructor(scope: Construct, id: string, props: KeyAuditStackProps = {}) {
    super(scope, id, {
      description: 'BigState key audit: scheduled inventory of BigState API keys, with change notifications',
      ...props,
    });
    const { principals, ...config } = readKeyAuditContext(this.node);
    this.audit = new KeyAudit(this, 'KeyAudit', {
      ...config,
      // None listed (only a principalPattern): left out, so the construct says what it needs.
      ...(principals.length > 0 ? { principals } : {}),
      ...props.keyAudit,
    });

    const functionName = this.audit.function.functionName;
    const invoke = (payload: string, outfile: string) =>
      `aws lambda invoke --region ${Aws.REGION} --function-name ${functionName} --cli-binary-format raw-in-base64-out --payload '${payload}' ${outfile}`;
    new CfnOutput(this, 'FunctionName', { value: functionName, description: 'The audit function' });
    new CfnOutput(this, 'BucketName', {
      value: this.audit.bucket.bucketName,
      description: 'Snapshots (snapshots/) and change records (history/)',
    });
    new CfnOutput(this, 'TopicArn', {
      value: this.audit.topic.topicArn,
      description: 'Change notices and alarms',
    });
    new CfnOutput(this, 'SecretArn', {
      value: this.audit.secret.secretArn,
      description: 'Put the BigState API key here: {"apiKey": "..."}',
    });
    new CfnOutput(this, 'DashboardName', { value: this.audit.dashboard.dashboardName });
    new CfnOutput(this, 'LogGroupName', {
      value: this.audit.logGroup.logGroupName,
      description:
        'The function\'s JSON logs (one "principal audited" or "principal failed" line per principal and run)',
    });
    new CfnOutput(this, 'ScheduleDeadLetterQueueUrl', {
      value: this.audit.scheduleDeadLetterQueue.queueUrl,
      description:
        'Scheduled invocations the schedule could not deliver (alarm <stack>-schedule-dead-letters)',
    });
    new CfnOutput(this, 'FailureQueueUrl', {
      value: this.audit.failureQueue.queueUrl,
      description: 'Asynchronous invocations that failed or expired (alarm <stack>-async-failures)',
    });
    const fanOut = this.audit.fanOut;
    if (fanOut === undefined) {
      new CfnOutput(this, 'ManualRunCommand', {
        value: invoke('{}', 'audit-result.json'),
        description: 'A full run now; the JSON summary lands in audit-result.json',
      });
      new CfnOutput(this, 'DryRunCommand', {
        value: invoke('{"dryRun":true}', 'audit-dry-run.json'),
        description: 'Walks and diffs, publishes and writes nothing',
      });
      return;
    }
    // With fanOut a full run is an execution of the state machine; a subset still runs in the function.
    const stateMachineArn = fanOut.stateMachine.stateMachineArn;
    const start = (input: string) =>
      `aws stepfunctions start-execution --region ${Aws.REGION} --state-machine-arn ${stateMachineArn} --input '${input}'`;
    new CfnOutput(this, 'StateMachineArn', {
      value: stateMachineArn,
      description: 'The fan-out state machine each schedule tick starts (alarms <stack>-fan-out-*)',
    });
    new CfnOutput(this, 'ManualRunCommand', {
      value: start('{}'),
      description:
        'A full run now, as a Step Functions execution; its output (aws stepfunctions describe-execution) is the summary',
    });
    // A dry run writes nothing, and a fanned-out run writes its plan to S3: the plan refuses one, so a dry run is
    // an invocation of the audit function (in-process, as far as its timeout allows).
    new CfnOutput(this, 'DryRunCommand', {
      value: invoke('{"dryRun":true}', 'audit-dry-run.json'),
      description:
        'Walks and diffs every principal in the audit function, publishes and writes nothing; the summary lands in audit-dry-run.json',
    });
    new CfnOutput(this, 'SubsetRunCommand', {
      value: invoke('{"principals":["<principal>"]}', 'audit-result.json'),
      description:
        'Audits the principals named, in the function (in-process); the JSON summary lands in audit-result.json',
    });
  }
}
