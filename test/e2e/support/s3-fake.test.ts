import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type S3Fake, startS3Fake } from './s3-fake.js';

let fake: S3Fake;
let s3: S3Client;
const bucket = 'audit-bucket';

function client(options: { maxAttempts?: number } = {}): S3Client {
  return new S3Client({
    endpoint: fake.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: options.maxAttempts ?? 1,
  });
}

async function s3Error(promise: Promise<unknown>): Promise<S3ServiceException> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(S3ServiceException);
  return error as S3ServiceException;
}

beforeAll(async () => {
  fake = await startS3Fake();
  s3 = client();
});

afterAll(async () => {
  s3.destroy();
  await fake.close();
});

beforeEach(() => {
  fake.recover();
});

describe('S3 fake through the real S3Client', () => {
  it('stores and returns an object; the SDK uses path style and a CRC32 header for an IP endpoint', async () => {
    const body = '{"keys":["a"]}';
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'snapshots/p 1/latest.json',
        Body: body,
        ContentType: 'application/json',
        Metadata: { principal: 'p1' },
      }),
    );
    expect(put.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(put.VersionId).toMatch(/^[\w-]{32}$/);

    const call = fake.calls('PutObject').at(-1);
    expect(call?.url).toBe('/audit-bucket/snapshots/p%201/latest.json?x-id=PutObject');
    expect(call?.headers['x-amz-checksum-crc32']).toBeDefined();
    expect(call?.headers['content-encoding']).toBeUndefined();
    expect(call?.signedRegion).toBe('us-east-1');

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'snapshots/p 1/latest.json' }));
    // The SDK validates the CRC32 the fake returns in checksum mode while reading the body.
    expect(await got.Body?.transformToString()).toBe(body);
    expect(got.ETag).toBe(put.ETag);
    expect(got.VersionId).toBe(put.VersionId);
    expect(got.ContentType).toBe('application/json');
    expect(got.Metadata).toEqual({ principal: 'p1' });
    expect(fake.calls('GetObject').at(-1)?.headers['x-amz-checksum-mode']).toBe('ENABLED');

    const stored = fake.get(bucket, 'snapshots/p 1/latest.json');
    expect(stored?.text).toBe(body);
    expect(stored?.checksums.crc32).toBe(call?.headers['x-amz-checksum-crc32']);
    expect(fake.unknownCalls).toEqual([]);
  });

  it('gives every put a new version and serves old versions by id', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'versions.txt', Body: 'one' }));
    const second = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'versions.txt', Body: 'two' }));
    expect(second.VersionId).not.toBe(first.VersionId);
    expect(fake.versions(bucket, 'versions.txt').map((version) => version.text)).toEqual(['one', 'two']);

    const old = await s3.send(
      new GetObjectCommand({ Bucket: bucket, Key: 'versions.txt', VersionId: first.VersionId }),
    );
    expect(await old.Body?.transformToString()).toBe('one');
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'versions.txt' }));
    expect(head.VersionId).toBe(second.VersionId);
    expect(head.ContentLength).toBe(3);
  });

  it('answers 412 PreconditionFailed to If-None-Match: * when the key exists, and keeps the object', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'first', IfNoneMatch: '*' }),
    );
    const error = await s3Error(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'create-only', Body: 'second', IfNoneMatch: '*' })),
    );
    expect(error.name).toBe('PreconditionFailed');
    expect(error.$metadata.httpStatusCode).toBe(412);
    expect(fake.get(bucket, 'create-only')?.text).toBe('first');
  });

  it('answers 412 to If-Match with a stale ETag, 404 NoSuchKey when the key is missing, and writes on a match', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cas', Body: 'v1' }));
    const second = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'cas', Body: 'v2', IfMatch: first.ETag }),
    );
    expect(fake.get(bucket, 'cas')?.text).toBe('v2');

    const stale = await s3Error(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'cas', Body: 'v3', IfMatch: first.ETag })),
    );
    expect(stale.name).toBe('PreconditionFailed');
    expect(stale.$metadata.httpStatusCode).toBe(412);
    expect(fake.get(bucket, 'cas')?.etag).toBe(second.ETag);

    const missing = await s3Error(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'never-written', Body: 'x', IfMatch: first.ETag })),
    );
    expect(missing.name).toBe('NoSuchKey');
    expect(missing.$metadata.httpStatusCode).toBe(404);
    expect(fake.get(bucket, 'never-written')).toBeUndefined();
  });

  it('leaves a delete marker: reads answer NoSuchKey / NotFound, If-None-Match: * may create again', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'deleted', Body: 'x' }));
    const deleted = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'deleted' }));
    expect(deleted.DeleteMarker).toBe(true);
    expect((await s3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'deleted' })))).name).toBe(
      'NoSuchKey',
    );
    expect((await s3Error(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'deleted' })))).name).toBe(
      'NotFound',
    );
    const ifMatch = await s3Error(
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'deleted', Body: 'y', IfMatch: '"abc"' })),
    );
    expect(ifMatch.name).toBe('NoSuchKey');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'deleted', Body: 'again', IfNoneMatch: '*' }));
    expect(fake.get(bucket, 'deleted')?.text).toBe('again');
    expect(fake.versions(bucket, 'deleted').map((version) => version.isDeleteMarker)).toEqual([
      false,
      true,
      false,
    ]);
  });

  it('lists by prefix in UTF-8 order, pages with continuation tokens and folds common prefixes', async () => {
    const keys = [
      'list/a&b #1.json',
      'list/b.json',
      'list/sub/x.json',
      'list/sub/y.json',
      'list/ü.json',
      'other.json',
    ];
    for (const key of keys) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    }
    const listed: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/', MaxKeys: 2, ContinuationToken: token }),
      );
      listed.push(...(page.Contents ?? []).map((object) => object.Key ?? ''));
      token = page.NextContinuationToken;
    } while (token !== undefined);
    expect(listed).toEqual([
      'list/a&b #1.json',
      'list/b.json',
      'list/sub/x.json',
      'list/sub/y.json',
      'list/ü.json',
    ]);

    const folded = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'list/', Delimiter: '/' }),
    );
    expect(folded.Contents?.map((object) => object.Key)).toEqual([
      'list/a&b #1.json',
      'list/b.json',
      'list/ü.json',
    ]);
    expect(folded.CommonPrefixes?.map((prefix) => prefix.Prefix)).toEqual(['list/sub/']);
    expect(folded.KeyCount).toBe(4);
    expect(folded.Contents?.[0]?.ETag).toMatch(/^"[0-9a-f]{32}"$/);
  });

  it('decodes an aws-chunked streaming upload and verifies its trailing checksum', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'streamed',
        Body: Readable.from([Buffer.from('stream'), Buffer.from('ed!')]),
        ContentLength: 9,
      }),
    );
    const call = fake.calls('PutObject').at(-1);
    expect(call?.headers['content-encoding']).toBe('aws-chunked');
    expect(call?.headers['x-amz-trailer']).toBe('x-amz-checksum-crc32');
    const stored = fake.get(bucket, 'streamed');
    expect(stored?.text).toBe('streamed!');
    expect(stored?.storedHeaders['content-encoding']).toBeUndefined();
    expect(stored?.checksums.crc32).toBeDefined();
  });

  it('rejects a body whose checksum does not match with BadDigest', async () => {
    const response = await fetch(`${fake.endpoint}/${bucket}/tampered`, {
      method: 'PUT',
      headers: { 'x-amz-checksum-crc32': 'AAAAAA==' },
      body: 'not empty',
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('<Code>BadDigest</Code>');
    expect(fake.get(bucket, 'tampered')).toBeUndefined();
  });

  it('records and rejects calls it does not serve', async () => {
    const copy = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy', CopySource: `${bucket}/versions.txt` })),
    );
    expect(copy.name).toBe('NotImplemented');
    expect(copy.$metadata.httpStatusCode).toBe(501);
    await s3Error(s3.send(new ListBucketsCommand({})));
    const unknown = fake.unknownCalls.slice(-2);
    expect(unknown.map((call) => call.reason)).toEqual([
      expect.stringContaining('x-amz-copy-source'),
      expect.stringContaining('service-level'),
    ]);
  });

  it('fails on demand: a single 500 is absorbed by the SDK retry, "always" reaches the caller', async () => {
    const retrying = client({ maxAttempts: 3 });
    const before = fake.calls('PutObject').length;
    fake.fail(1);
    await retrying.send(new PutObjectCommand({ Bucket: bucket, Key: 'retried', Body: 'x' }));
    expect(
      fake
        .calls('PutObject')
        .slice(before)
        .map((call) => [call.status, call.injected]),
    ).toEqual([
      [500, true],
      [200, false],
    ]);

    fake.fail((call) => call.operation === 'GetObject', {
      status: 503,
      code: 'SlowDown',
      message: 'Please reduce your request rate.',
    });
    const slow = await s3Error(s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'retried' })));
    expect(slow.name).toBe('SlowDown');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'still-writable', Body: 'x' }));

    fake.recover().fail('always', { reset: true });
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'retried' }))).rejects.toThrow();
    fake.recover();
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'retried' }));
    retrying.destroy();
  });

  it('answers NoSuchBucket for a bucket it was not told about', async () => {
    const strict = await startS3Fake({ buckets: ['known'] });
    const strictClient = new S3Client({
      endpoint: strict.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    try {
      await strictClient.send(new PutObjectCommand({ Bucket: 'known', Key: 'k', Body: 'x' }));
      const error = await s3Error(
        strictClient.send(new PutObjectCommand({ Bucket: 'unknown', Key: 'k', Body: 'x' })),
      );
      expect(error.name).toBe('NoSuchBucket');
      expect(strict.objects().map((object) => `${object.bucket}/${object.key}`)).toEqual(['known/k']);
    } finally {
      strictClient.destroy();
      await strict.close();
    }
  });

  it('keeps only the latest write in an unversioned bucket', async () => {
    const plain = await startS3Fake({ versioned: false });
    const plainClient = new S3Client({
      endpoint: plain.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    try {
      const put = await plainClient.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'one' }));
      await plainClient.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: 'two' }));
      expect(put.VersionId).toBeUndefined();
      expect(plain.versions('b', 'k').map((version) => version.text)).toEqual(['two']);
      await plainClient.send(new DeleteObjectCommand({ Bucket: 'b', Key: 'k' }));
      expect(plain.versions('b', 'k')).toEqual([]);
    } finally {
      plainClient.destroy();
      await plain.close();
    }
  });
});
