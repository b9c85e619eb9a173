/**
 * The audit's notification topic: change notices for people, and the alarms' action.
 */
import { ArnFormat, Aws, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { acknowledge } from './nag.js';

/**
 * Creates the topic (id `Topic`) and its customer managed key (id `TopicKey`) in `scope`, lets this account's
 * CloudWatch alarms publish to it, and subscribes the e-mail addresses.
 */
export function createNotificationTopic(
  scope: Construct,
  options: { readonly notificationEmails: readonly string[] },
): Topic {
  // A customer managed key, not alias/aws/sns: the AWS managed key's policy cannot be changed, so CloudWatch
  // alarms (which notify this topic) could not publish to a topic encrypted with it.
  const topicKey = new Key(scope, 'TopicKey', {
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
      'aws:SourceArn': Stack.of(scope).formatArn({
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
  const topic = new Topic(scope, 'Topic', {
    displayName: 'BigState key audit',
    masterKey: topicKey,
    enforceSSL: true,
  });
  // enforceSSL gives the topic its own policy, which replaces SNS's default one (that let this account's
  // CloudWatch publish): without this statement an alarm fails with "no resource-based policy allows the
  // SNS:Publish action", and nobody hears of it.
  topic.addToResourcePolicy(
    new PolicyStatement({
      sid: 'CloudWatchAlarmsOfThisAccountPublish',
      principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: alarmsHere,
    }),
  );
  for (const email of options.notificationEmails) {
    topic.addSubscription(new EmailSubscription(email));
  }
  if (options.notificationEmails.length > 0) {
    acknowledge(topic, {
      'Serverless-SNSRedrivePolicy':
        'The only subscriptions are e-mail addresses of people. An e-mail SNS cannot deliver is not the only copy: every baseline and key change is also kept in S3 (history/) and put on EventBridge, a failed principal is put on EventBridge and fails the invocation, and an alarm keeps its state and history in CloudWatch.',
    });
  }
  return topic;
}

/** Why a role that publishes to the topic may use `kms:GenerateDataKey*` on the topic's key (cdk-nag IAM5). */
export const TOPIC_KEY_REASON =
  "From topic.grantPublish (CDK's fixed grant for a KMS-encrypted topic, as AWS documents it): SNS needs a data key from the topic's key for each published message. The * also matches GenerateDataKeyWithoutPlaintext and the GenerateDataKeyPair variants; the resource is that one key, which encrypts nothing but this topic's messages.";
