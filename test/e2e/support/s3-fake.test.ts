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
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'ranged', Body: 'abcdef' }));
    const ranged = await s3Error(
      s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'ranged', Range: 'bytes=0-1' })),
    );
    expect(ranged.name).toBe('NotImplemented');
    expect(ranged.$metadata.httpStatusCode).toBe(501);
    await s3Error(s3.send(new ListBucketsCommand({})));
    const unknown = fake.unknownCalls.slice(-2);
    expect(unknown.map((call) => call.reason)).toEqual([
      expect.stringContaining('range'),
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

describe('S3 fake: CopyObject and conditional DeleteObject through the real S3Client (the move of an archive)', () => {
  /** The CopySource the S3 API asks for: bucket and key, URL-encoded. */
  const source = (key: string, versionId?: string): string =>
    `${bucket}/${encodeURIComponent(key)}${versionId === undefined ? '' : `?versionId=${encodeURIComponent(versionId)}`}`;

  it('moves an object: a conditional copy, then a conditional delete that leaves a delete marker', async () => {
    const unknownBefore = fake.unknownCalls.length;
    const from = 'snapshots/svc a&b #1/zürich.json';
    const to = 'archive/svc a&b #1/zürich.json';
    const body = '{"keys":["a"]}';
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: from,
        Body: body,
        ContentType: 'application/json',
        Metadata: { principal: 'svc' },
      }),
    );

    const copy = await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: to,
        CopySource: source(from),
        CopySourceIfMatch: put.ETag,
        IfNoneMatch: '*',
      }),
    );
    expect(copy.CopyObjectResult?.ETag).toBe(put.ETag);
    expect(copy.CopyObjectResult?.LastModified).toBeInstanceOf(Date);
    expect(copy.CopyObjectResult?.ChecksumCRC32).toBe(fake.get(bucket, from)?.checksums.crc32);
    expect(copy.VersionId).toMatch(/^[\w-]{32}$/);
    expect(copy.VersionId).not.toBe(put.VersionId);
    expect(copy.CopySourceVersionId).toBe(put.VersionId);

    // What the SDK sent: the copy source exactly as given, the source and destination conditions as headers.
    const call = fake.calls('CopyObject').at(-1);
    expect(call?.method).toBe('PUT');
    expect(call?.url).toBe(`/${bucket}/archive/svc%20a%26b%20%231/z%C3%BCrich.json?x-id=CopyObject`);
    expect(call?.headers['x-amz-copy-source']).toBe(
      `${bucket}/snapshots%2Fsvc%20a%26b%20%231%2Fz%C3%BCrich.json`,
    );
    expect(call?.headers['x-amz-copy-source-if-match']).toBe(put.ETag);
    expect(call?.headers['if-none-match']).toBe('*');
    expect(call?.input).toMatchObject({ bucket, key: to, copySource: { bucket, key: from } });

    const copied = fake.get(bucket, to);
    expect(copied?.text).toBe(body);
    expect(copied?.contentType).toBe('application/json');
    expect(copied?.metadata).toEqual({ principal: 'svc' });
    expect(copied?.versionId).toBe(copy.VersionId);
    expect(copied?.lastModified.toISOString()).toBe(copy.CopyObjectResult?.LastModified?.toISOString());

    const deleted = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: from, IfMatch: put.ETag }));
    expect(deleted.DeleteMarker).toBe(true);
    expect(fake.calls('DeleteObject').at(-1)?.headers['if-match']).toBe(put.ETag);
    expect(fake.get(bucket, from)).toBeUndefined();
    expect(fake.versions(bucket, from).map((version) => version.isDeleteMarker)).toEqual([false, true]);
    expect(fake.unknownCalls.slice(unknownBefore)).toEqual([]);
  });

  it('answers 412 to x-amz-copy-source-if-match when the source changed, and copies nothing', async () => {
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-changed', Body: 'v1' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-changed', Body: 'v2' }));
    const error = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-changed',
          CopySource: source('src-changed'),
          CopySourceIfMatch: first.ETag,
        }),
      ),
    );
    expect(error.name).toBe('PreconditionFailed');
    expect(error.$metadata.httpStatusCode).toBe(412);
    expect((error as unknown as { Condition?: string }).Condition).toBe('x-amz-copy-source-If-Match');
    expect(fake.versions(bucket, 'dst-changed')).toEqual([]);

    const unchanged = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-changed',
          CopySource: source('src-changed'),
          CopySourceIfNoneMatch: fake.get(bucket, 'src-changed')?.etag,
        }),
      ),
    );
    expect(unchanged.name).toBe('PreconditionFailed');
    expect(fake.versions(bucket, 'dst-changed')).toEqual([]);
  });

  it('answers 412 to If-None-Match: * when the destination exists, and keeps it', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-exists', Body: 'new' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'dst-exists', Body: 'old' }));
    const error = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-exists',
          CopySource: source('src-exists'),
          IfNoneMatch: '*',
        }),
      ),
    );
    expect(error.name).toBe('PreconditionFailed');
    expect(error.$metadata.httpStatusCode).toBe(412);
    expect(fake.get(bucket, 'dst-exists')?.text).toBe('old');

    // A destination under a delete marker does not exist: the copy goes through.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'dst-exists' }));
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'dst-exists',
        CopySource: source('src-exists'),
        IfNoneMatch: '*',
      }),
    );
    expect(fake.get(bucket, 'dst-exists')?.text).toBe('new');
  });

  it('honours If-Match on the destination: 412 when its ETag differs, 404 when it is missing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-cas', Body: 'next' }));
    const dst = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'dst-cas', Body: 'current' }));
    const stale = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-cas',
          CopySource: source('src-cas'),
          IfMatch: '"0123456789abcdef0123456789abcdef"',
        }),
      ),
    );
    expect(stale.name).toBe('PreconditionFailed');
    expect(fake.get(bucket, 'dst-cas')?.text).toBe('current');
    const missing = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-cas-missing',
          CopySource: source('src-cas'),
          IfMatch: dst.ETag,
        }),
      ),
    );
    expect(missing.name).toBe('NoSuchKey');
    expect(missing.$metadata.httpStatusCode).toBe(404);
    await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'dst-cas',
        CopySource: source('src-cas'),
        IfMatch: dst.ETag,
      }),
    );
    expect(fake.get(bucket, 'dst-cas')?.text).toBe('next');
  });

  it('copies an older version by versionId, with a leading slash, and replaces metadata on REPLACE', async () => {
    const v1 = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: 'src-ver', Body: 'one', Metadata: { n: '1' } }),
    );
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-ver', Body: 'two' }));
    const copy = await s3.send(
      new CopyObjectCommand({
        Bucket: bucket,
        Key: 'dst-ver',
        CopySource: `/${source('src-ver', v1.VersionId)}`,
        MetadataDirective: 'REPLACE',
        ContentType: 'text/plain',
        Metadata: { n: 'replaced' },
      }),
    );
    expect(copy.CopySourceVersionId).toBe(v1.VersionId);
    expect(fake.get(bucket, 'dst-ver')?.text).toBe('one');
    expect(fake.get(bucket, 'dst-ver')?.metadata).toEqual({ n: 'replaced' });
    expect(fake.get(bucket, 'dst-ver')?.contentType).toBe('text/plain');

    // Restoring an older version onto its own key is allowed; copying the current one onto itself is not.
    await s3.send(
      new CopyObjectCommand({ Bucket: bucket, Key: 'src-ver', CopySource: source('src-ver', v1.VersionId) }),
    );
    expect(fake.get(bucket, 'src-ver')?.text).toBe('one');
    expect(fake.versions(bucket, 'src-ver')).toHaveLength(3);
    const itself = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'src-ver', CopySource: source('src-ver') })),
    );
    expect(itself.name).toBe('InvalidRequest');
    expect(itself.$metadata.httpStatusCode).toBe(400);
  });

  it('answers NoSuchKey for a missing or deleted source, NoSuchVersion for an unknown version', async () => {
    const missing = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-none', CopySource: source('never-there') })),
    );
    expect(missing.name).toBe('NoSuchKey');
    expect(missing.$metadata.httpStatusCode).toBe(404);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-gone', Body: 'x' }));
    const marker = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'src-gone' }));
    const gone = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-none', CopySource: source('src-gone') })),
    );
    expect(gone.name).toBe('NoSuchKey');
    const byMarker = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-none',
          CopySource: source('src-gone', marker.VersionId),
        }),
      ),
    );
    expect(byMarker.name).toBe('InvalidRequest');
    const noVersion = await s3Error(
      s3.send(
        new CopyObjectCommand({ Bucket: bucket, Key: 'dst-none', CopySource: source('src-gone', 'nope') }),
      ),
    );
    expect(noVersion.name).toBe('NoSuchVersion');
    expect(fake.versions(bucket, 'dst-none')).toEqual([]);
  });

  it('treats a copy source that is not URL-encoded, or names no key, as a call it does not serve', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a b', Body: 'x' }));
    const raw = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-raw', CopySource: `${bucket}/a b` })),
    );
    expect(raw.$metadata.httpStatusCode).toBe(400);
    const noKey = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-raw', CopySource: bucket })),
    );
    expect(noKey.$metadata.httpStatusCode).toBe(400);
    const since = await s3Error(
      s3.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: 'dst-raw',
          CopySource: source('a b'),
          CopySourceIfModifiedSince: new Date(0),
        }),
      ),
    );
    expect(since.name).toBe('NotImplemented');
    expect(fake.unknownCalls.slice(-3).map((call) => call.reason)).toEqual([
      expect.stringContaining('not URL-encoded'),
      expect.stringContaining('bucket/key'),
      expect.stringContaining('x-amz-copy-source-if-modified-since'),
    ]);
    expect(fake.versions(bucket, 'dst-raw')).toEqual([]);
  });

  it('deletes on If-Match only when the ETag matches (412 otherwise), and If-Match: * when it exists', async () => {
    const unknownBefore = fake.unknownCalls.length;
    const first = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'del-cas', Body: 'v1' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'del-cas', Body: 'v2' }));
    const stale = await s3Error(
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-cas', IfMatch: first.ETag })),
    );
    expect(stale.name).toBe('PreconditionFailed');
    expect(stale.$metadata.httpStatusCode).toBe(412);
    expect(fake.get(bucket, 'del-cas')?.text).toBe('v2');
    expect(fake.calls('DeleteObject').at(-1)?.input).toMatchObject({ key: 'del-cas', ifMatch: first.ETag });

    const any = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-cas', IfMatch: '*' }));
    expect(any.DeleteMarker).toBe(true);
    expect(fake.get(bucket, 'del-cas')).toBeUndefined();
    expect(fake.unknownCalls.slice(unknownBefore)).toEqual([]);
  });

  it('answers 404 NoSuchKey to If-Match when there is no current object (missing, or a delete marker)', async () => {
    for (const ifMatch of ['*', '"0123456789abcdef0123456789abcdef"']) {
      const missing = await s3Error(
        s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-never', IfMatch: ifMatch })),
      );
      expect(missing.name).toBe('NoSuchKey');
      expect(missing.$metadata.httpStatusCode).toBe(404);
    }
    expect(fake.versions(bucket, 'del-never')).toEqual([]);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'del-marked', Body: 'x' }));
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-marked' }));
    const marked = await s3Error(
      s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-marked', IfMatch: put.ETag })),
    );
    expect(marked.name).toBe('NoSuchKey');
    expect(fake.versions(bucket, 'del-marked').map((version) => version.isDeleteMarker)).toEqual([
      false,
      true,
    ]);
    // An unconditional delete of a missing key is still a success, as in S3.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'del-never' }));
  });

  it('does not serve If-Match with a versionId (S3 answers 501) nor If-None-Match on a delete', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'del-version', Body: 'x' }));
    const versioned = await s3Error(
      s3.send(
        new DeleteObjectCommand({
          Bucket: bucket,
          Key: 'del-version',
          VersionId: put.VersionId,
          IfMatch: put.ETag,
        }),
      ),
    );
    expect(versioned.name).toBe('NotImplemented');
    expect(versioned.$metadata.httpStatusCode).toBe(501);
    const response = await fetch(`${fake.endpoint}/${bucket}/del-version`, {
      method: 'DELETE',
      headers: { 'if-none-match': '*' },
    });
    expect(response.status).toBe(501);
    expect(fake.unknownCalls.slice(-2).map((call) => call.reason)).toEqual([
      expect.stringContaining('versionId and If-Match'),
      expect.stringContaining('If-None-Match'),
    ]);
    expect(fake.get(bucket, 'del-version')?.text).toBe('x');
  });

  it('copies and deletes conditionally in an unversioned bucket too', async () => {
    const plain = await startS3Fake({ versioned: false });
    const plainClient = new S3Client({
      endpoint: plain.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
    try {
      const put = await plainClient.send(new PutObjectCommand({ Bucket: 'b', Key: 'from', Body: 'x' }));
      const copy = await plainClient.send(
        new CopyObjectCommand({ Bucket: 'b', Key: 'to', CopySource: 'b/from', CopySourceIfMatch: put.ETag }),
      );
      expect(copy.VersionId).toBeUndefined();
      expect(copy.CopySourceVersionId).toBeUndefined();
      expect(copy.CopyObjectResult?.ETag).toBe(put.ETag);
      const deleted = await plainClient.send(
        new DeleteObjectCommand({ Bucket: 'b', Key: 'from', IfMatch: put.ETag }),
      );
      expect(deleted.DeleteMarker).toBeUndefined();
      expect(plain.versions('b', 'from')).toEqual([]);
      expect(plain.get('b', 'to')?.text).toBe('x');
      expect(plain.unknownCalls).toEqual([]);
    } finally {
      plainClient.destroy();
      await plain.close();
    }
  });

  it('fails a copy on demand like any call: a predicate on the CopyObject operation', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'src-fail', Body: 'x' }));
    fake.fail((call) => call.operation === 'CopyObject', { status: 503, code: 'SlowDown', message: 'slow' });
    const slow = await s3Error(
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'dst-fail', CopySource: source('src-fail') })),
    );
    expect(slow.name).toBe('SlowDown');
    expect(fake.versions(bucket, 'dst-fail')).toEqual([]);
    fake.recover();
  });
});
