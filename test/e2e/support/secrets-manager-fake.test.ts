import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  SecretsManagerServiceException,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type SecretsManagerFake, startSecretsManagerFake } from './secrets-manager-fake.js';

let fake: SecretsManagerFake;
let client: SecretsManagerClient;

async function serviceError(promise: Promise<unknown>): Promise<SecretsManagerServiceException> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SecretsManagerServiceException);
  return error as SecretsManagerServiceException;
}

beforeAll(async () => {
  fake = await startSecretsManagerFake();
  client = new SecretsManagerClient({
    endpoint: fake.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client.destroy();
  await fake.close();
});

beforeEach(() => {
  fake.recover();
});

describe('Secrets Manager fake through the real SecretsManagerClient', () => {
  it('returns a secret by name, full ARN and partial ARN, and counts the reads', async () => {
    const arn = fake.setSecret('bigstate/api-key', '{"apiKey":"k-1"}');
    expect(arn).toMatch(
      /^arn:aws:secretsmanager:us-east-1:000000000000:secret:bigstate\/api-key-[A-Za-z0-9]{6}$/,
    );
    const before = fake.getSecretValueCount;

    const byName = await client.send(new GetSecretValueCommand({ SecretId: 'bigstate/api-key' }));
    expect(byName.SecretString).toBe('{"apiKey":"k-1"}');
    expect(byName.ARN).toBe(arn);
    expect(byName.Name).toBe('bigstate/api-key');
    expect(byName.VersionStages).toEqual(['AWSCURRENT']);
    expect(byName.CreatedDate).toBeInstanceOf(Date);
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn }))).VersionId).toBe(
      byName.VersionId,
    );
    expect((await client.send(new GetSecretValueCommand({ SecretId: arn.slice(0, -7) }))).SecretString).toBe(
      '{"apiKey":"k-1"}',
    );
    expect(fake.getSecretValueCount - before).toBe(3);
    const call = fake.calls('GetSecretValue').at(-1);
    expect(call?.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(call?.signedRegion).toBe('us-east-1');
  });

  it('answers ResourceNotFoundException for an unknown secret, and counts that read too', async () => {
    const before = fake.getSecretValueCount;
    const error = await serviceError(client.send(new GetSecretValueCommand({ SecretId: 'missing' })));
    expect(error.name).toBe('ResourceNotFoundException');
    expect(error.message).toBe("Secrets Manager can't find the specified secret.");
    expect(fake.getSecretValueCount - before).toBe(1);
  });

  it('rotates: PutSecretValue makes the new value AWSCURRENT and the old one AWSPREVIOUS', async () => {
    fake.setSecret('rotated', 'old-key');
    const put = await client.send(
      new PutSecretValueCommand({ SecretId: 'rotated', SecretString: 'new-key' }),
    );
    expect(put.VersionStages).toEqual(['AWSCURRENT']);
    expect((await client.send(new GetSecretValueCommand({ SecretId: 'rotated' }))).SecretString).toBe(
      'new-key',
    );
    const previous = await client.send(
      new GetSecretValueCommand({ SecretId: 'rotated', VersionStage: 'AWSPREVIOUS' }),
    );
    expect(previous.SecretString).toBe('old-key');
    expect(fake.currentValue('rotated')).toBe('new-key');

    fake.setSecret('rotated', 'newest-key');
    expect(fake.versions('rotated').map((version) => [version.secretString, version.stages])).toEqual([
      ['old-key', []],
      ['new-key', ['AWSPREVIOUS']],
      ['newest-key', ['AWSCURRENT']],
    ]);
  });

  it('treats a repeated ClientRequestToken as idempotent, and a changed value under it as ResourceExistsException', async () => {
    fake.setSecret('idempotent', 'v1');
    const token = '00000000-0000-4000-8000-000000000001';
    const first = await client.send(
      new PutSecretValueCommand({ SecretId: 'idempotent', SecretString: 'v2', ClientRequestToken: token }),
    );
    const again = await client.send(
      new PutSecretValueCommand({ SecretId: 'idempotent', SecretString: 'v2', ClientRequestToken: token }),
    );
    expect(again.VersionId).toBe(first.VersionId);
    expect(fake.versions('idempotent')).toHaveLength(2);
    const changed = await serviceError(
      client.send(
        new PutSecretValueCommand({ SecretId: 'idempotent', SecretString: 'v3', ClientRequestToken: token }),
      ),
    );
    expect(changed.name).toBe('ResourceExistsException');
  });

  it('records and rejects an operation it does not serve', async () => {
    const error = await serviceError(client.send(new DescribeSecretCommand({ SecretId: 'rotated' })));
    expect(error.name).toBe('UnknownOperationException');
    expect(fake.unknownCalls.at(-1)?.reason).toBe('unknown X-Amz-Target secretsmanager.DescribeSecret');
  });

  it('fails on demand with the code asked for', async () => {
    fake.setSecret('throttled', 'x');
    fake.fail(1, { status: 400, code: 'ThrottlingException', message: 'Rate exceeded' });
    const error = await serviceError(client.send(new GetSecretValueCommand({ SecretId: 'throttled' })));
    expect(error.name).toBe('ThrottlingException');
    expect(fake.calls('GetSecretValue').at(-1)?.injected).toBe(true);
    expect((await client.send(new GetSecretValueCommand({ SecretId: 'throttled' }))).SecretString).toBe('x');
  });

  it('answers ResourceNotFoundException once a secret is removed', async () => {
    fake.setSecret('short-lived', 'x');
    fake.removeSecret('short-lived');
    expect(
      (await serviceError(client.send(new GetSecretValueCommand({ SecretId: 'short-lived' })))).name,
    ).toBe('ResourceNotFoundException');
  });
});
