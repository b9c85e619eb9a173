import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AwsFakes, startAwsFakes } from './aws-fakes.js';

let fakes: AwsFakes;

beforeAll(async () => {
  fakes = await startAwsFakes({ s3: { buckets: ['audit-bucket'] } });
});

afterAll(async () => {
  await fakes.close();
});

describe('startAwsFakes', () => {
  it('gives an environment through which clients built with no options reach each fake', async () => {
    for (const [name, value] of Object.entries(fakes.env)) {
      vi.stubEnv(name, value);
    }
    // Clients exactly as product code builds them: no endpoint, region or credentials in code.
    const s3 = new S3Client({});
    const secrets = new SecretsManagerClient({});
    const sns = new SNSClient({});
    const events = new EventBridgeClient({});
    try {
      fakes.secretsManager.setSecret('bigstate/api-key', 'k');
      await s3.send(new PutObjectCommand({ Bucket: 'audit-bucket', Key: 'k', Body: 'x' }));
      expect(
        (await secrets.send(new GetSecretValueCommand({ SecretId: 'bigstate/api-key' }))).SecretString,
      ).toBe('k');
      await sns.send(new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:000000000000:t', Message: 'm' }));
      await events.send(new PutEventsCommand({ Entries: [{ Source: 's', DetailType: 'd', Detail: '{}' }] }));
    } finally {
      for (const client of [s3, secrets, sns, events]) {
        client.destroy();
      }
    }
    expect(fakes.s3.get('audit-bucket', 'k')?.text).toBe('x');
    expect(fakes.sns.messages()).toHaveLength(1);
    expect(fakes.eventBridge.events()).toHaveLength(1);
    const calls = [fakes.s3, fakes.secretsManager, fakes.sns, fakes.eventBridge].flatMap(
      (fake) => fake.requests,
    );
    expect(calls.map((call) => [call.service, call.operation, call.signedRegion, call.accessKeyId])).toEqual([
      ['s3', 'PutObject', 'us-east-1', 'test'],
      ['secretsmanager', 'GetSecretValue', 'us-east-1', 'test'],
      ['sns', 'Publish', 'us-east-1', 'test'],
      ['events', 'PutEvents', 'us-east-1', 'test'],
    ]);
    // The session token of the environment is sent, as with Lambda's role credentials.
    expect(calls.every((call) => call.headers['x-amz-security-token'] === 'test')).toBe(true);
    expect(fakes.unknownCalls()).toEqual([]);
  });

  it('points each service at its own fake on 127.0.0.1 and keeps ~/.aws out', () => {
    expect(fakes.env).toMatchObject({
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: fakes.s3.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: fakes.secretsManager.endpoint,
      AWS_ENDPOINT_URL_SNS: fakes.sns.endpoint,
      AWS_ENDPOINT_URL_EVENTBRIDGE: fakes.eventBridge.endpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    expect(
      new Set(Object.values(fakes.env).filter((value) => value.startsWith('http://127.0.0.1:'))).size,
    ).toBe(4);
    expect(fakes.env.AWS_CONFIG_FILE).toMatch(/aws-fakes-no-such-dir/);
  });

  it('collects unknown calls from every fake', async () => {
    const response = await fetch(`${fakes.sns.endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=Subscribe&Version=2010-03-31',
    });
    expect(response.status).toBe(400);
    expect(fakes.unknownCalls().map((call) => [call.service, call.reason])).toEqual([
      ['sns', 'The action Subscribe is not valid for this web service.'],
    ]);
  });
});
