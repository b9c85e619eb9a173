import './support.js';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher } from '../../../functions/adapters/aws/eventbridge-publisher.js';
import { SnsPublisher } from '../../../functions/adapters/aws/sns-publisher.js';
import { PublishError } from '../../../functions/commons/errors.js';
import { fanOut } from '../../../functions/core/fan-out.js';
import { changedNotice } from './support.js';

const sns = mockClient(SNSClient);
const events = mockClient(EventBridgeClient);
const publisher = fanOut([
  new SnsPublisher(new SNSClient({ region: 'eu-central-1' }), 'arn:aws:sns:eu-central-1:1:topic'),
  new EventBridgePublisher(new EventBridgeClient({ region: 'eu-central-1' }), 'bus'),
]);

beforeEach(() => {
  sns.reset();
  events.reset();
});

describe('SNS and EventBridge fanned out', () => {
  it('publishes every notice on both channels', async () => {
    sns.on(PublishCommand).resolves({});
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    await publisher.publish(changedNotice());
    expect(sns).toReceiveCommandTimes(PublishCommand, 1);
    expect(events).toReceiveCommandTimes(PutEventsCommand, 1);
  });

  it('fails when EventBridge refuses the entry, although SNS took it', async () => {
    sns.on(PublishCommand).resolves({});
    events
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });
    await expect(publisher.publish(changedNotice())).rejects.toThrow(PublishError);
    expect(sns).toReceiveCommandTimes(PublishCommand, 1);
  });

  it('fails when SNS refuses, and still offers the notice to EventBridge', async () => {
    sns.on(PublishCommand).rejects(new Error('KMS key disabled'));
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    await expect(publisher.publish(changedNotice())).rejects.toThrow(/KMS key disabled/);
    expect(events).toReceiveCommandTimes(PutEventsCommand, 1);
  });
});
