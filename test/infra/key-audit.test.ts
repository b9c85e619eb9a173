import { CfnResource, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { KeyAudit } from '../../infra/key-audit.js';
import { appWith } from './support.js';

describe('KeyAudit in another stack', () => {
  it('keeps all its resources and acknowledgements inside itself, and passes cdk-nag there', () => {
    const app = appWith({});
    const stack = new Stack(app, 'Platform');
    new KeyAudit(stack, 'BigStateAudit', {
      bigstateHost: 'https://bigstate.internal.example.com',
      principals: ['billing', 'Tram & Bus #1'],
      schedule: 'rate(2 days)',
      apiKeySecretName: 'platform/bigstate',
      notificationEmails: ['ops@example.com'],
      eventBusName: 'platform-events',
      historyRetention: Duration.days(30),
      memorySize: 2048,
      alarmNamePrefix: 'platform-bigstate',
    });
    const template = Template.fromStack(stack);

    const paths = stack.node
      .findAll()
      .filter((c) => CfnResource.isCfnResource(c))
      .map((c) => c.node.path);
    expect(paths.length).toBeGreaterThan(20);
    const outside = paths.filter((path) => !path.startsWith('Platform/BigStateAudit/'));
    expect(outside).toEqual([]);

    for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
      expect(pack.validateScope(app).violations.map((v) => v.ruleName)).toEqual([]);
    }

    // rate(2 days): two runs span four one-day periods.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'RunSucceeded',
      Period: 86_400,
      EvaluationPeriods: 4,
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(2 days)' });
    // Its own alarm-name prefix: another audit in the same stack would not collide.
    const alarmNames = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => alarm.Properties.AlarmName,
    );
    expect(alarmNames).toEqual([
      'platform-bigstate-audit-errors',
      'platform-bigstate-audit-throttles',
      'platform-bigstate-no-successful-run',
      'platform-bigstate-schedule-dead-letters',
      'platform-bigstate-async-failures',
    ]);
    template.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 2048 });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          { Id: 'expire-history', Prefix: 'history/', ExpirationInDays: 30, Status: 'Enabled' },
        ]),
      },
    });
  });
});
