import './support.js';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { S3SnapshotStore } from '../../../functions/adapters/aws/s3-store.js';
import { ConcurrentWriteError, StorageError } from '../../../functions/commons/errors.js';
import { serialize } from '../../../functions/core/records.js';
import { snapshotOf } from '../../core/support/fakes.js';
import { changeRecord, objectBody, s3Error } from './support.js';

const s3 = mockClient(S3Client);
const store = new S3SnapshotStore(new S3Client({ region: 'eu-central-1' }), 'audit-bucket');
const snapshot = snapshotOf('svc a&b', ['a', 'b'], { pattern: 'a*' });

beforeEach(() => {
  s3.reset();
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('S3SnapshotStore locations', () => {
  it('names snapshots and change records with the layout keys', () => {
    expect(store.snapshotLocation('svc a&b')).toBe('s3://audit-bucket/snapshots/svc%20a%26b.json');
    expect(store.changeRecordLocation('../x', 'chg-1')).toBe(
      's3://audit-bucket/history/%2E%2E%2Fx/chg-1.json',
    );
  });
});

describe('S3SnapshotStore.read', () => {
  it('reads the snapshot with its ETag as the version', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshot)), ETag: '"etag-1"' });
    await expect(store.read('svc a&b')).resolves.toStrictEqual({ snapshot, version: '"etag-1"' });
    expect(s3).toReceiveCommandExactlyOnceWith(GetObjectCommand, {
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
    });
  });

  it('returns undefined when there is no snapshot yet (NoSuchKey)', async () => {
    s3.on(GetObjectCommand).rejects(
      new NoSuchKey({ message: 'The specified key does not exist.', $metadata: { httpStatusCode: 404 } }),
    );
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it('returns undefined for any 404', async () => {
    s3.on(GetObjectCommand).rejects(s3Error('NotFound', 404));
    await expect(store.read('root')).resolves.toBeUndefined();
  });

  it.each([
    ['AccessDenied', 403],
    ['InternalError', 500],
    ['SlowDown', 503],
  ])('fails with StorageError on %s (%i), naming the location', async (name, status) => {
    const cause = s3Error(name, status, `${name} happened`);
    s3.on(GetObjectCommand).rejects(cause);
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(`could not read s3://audit-bucket/snapshots/root.json: ${name} happened`);
    expect(error.cause).toBe(cause);
  });

  it('fails with StorageError on a network error', async () => {
    s3.on(GetObjectCommand).rejects(new Error('socket hang up'));
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe('could not read s3://audit-bucket/snapshots/root.json: socket hang up');
  });

  it('fails with StorageError, never undefined, for a corrupt snapshot', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"schemaVersion":1,'), ETag: '"e"' });
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe('snapshot s3://audit-bucket/snapshots/root.json is not valid JSON');
  });

  it('fails with StorageError for a snapshot of another shape or principal, or an empty body', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody('{"keys":[]}'), ETag: '"e"' });
    expect(await failure(store.read('root'))).toBeInstanceOf(StorageError);
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshotOf('other', []))), ETag: '"e"' });
    expect((await failure(store.read('root'))).message).toBe(
      'snapshot s3://audit-bucket/snapshots/root.json belongs to another principal',
    );
    s3.on(GetObjectCommand).resolves({ ETag: '"e"' });
    const empty = await failure(store.read('root'));
    expect(empty).toBeInstanceOf(StorageError);
    expect(empty.message).toBe('snapshot s3://audit-bucket/snapshots/root.json is not valid JSON');
  });

  it('fails with StorageError when S3 returns no ETag (a conditional write needs one)', async () => {
    s3.on(GetObjectCommand).resolves({ Body: objectBody(serialize(snapshotOf('root', []))) });
    const error = await failure(store.read('root'));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      'S3 returned s3://audit-bucket/snapshots/root.json without an ETag: a conditional write needs one',
    );
  });
});

describe('S3SnapshotStore.write', () => {
  it("writes a first snapshot only if there is none (If-None-Match: '*')", async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"new"' });
    await store.write('svc a&b', snapshot, undefined);
    expect(s3).toReceiveCommandTimes(PutObjectCommand, 1);
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
      Body: serialize(snapshot),
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
  });

  it('replaces a snapshot only if it still has the ETag that was read (If-Match)', async () => {
    s3.on(PutObjectCommand).resolves({ ETag: '"new"' });
    await store.write('svc a&b', snapshot, '"etag-1"');
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'snapshots/svc%20a%26b.json',
      Body: serialize(snapshot),
      ContentType: 'application/json',
      IfMatch: '"etag-1"',
    });
  });

  it.each([
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
  ])('turns %s (%i) into ConcurrentWriteError', async (name, status) => {
    const cause = s3Error(name, status);
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.write('root', snapshotOf('root', []), '"etag-1"'));
    expect(error).toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe(
      's3://audit-bucket/snapshots/root.json changed since this run read it (conditional write refused); the next run audits again',
    );
    expect(error.cause).toBe(cause);
  });

  it('turns any other failure into StorageError', async () => {
    const cause = s3Error('AccessDenied', 403, 'Access Denied');
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.write('root', snapshotOf('root', []), undefined));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).not.toBeInstanceOf(ConcurrentWriteError);
    expect(error.message).toBe('could not write s3://audit-bucket/snapshots/root.json: Access Denied');
    expect(error.cause).toBe(cause);
  });

  it('turns a network error into StorageError', async () => {
    s3.on(PutObjectCommand).rejects(new Error('ECONNRESET'));
    expect(await failure(store.write('root', snapshotOf('root', []), undefined))).toBeInstanceOf(
      StorageError,
    );
  });
});

describe('S3SnapshotStore.writeChangeRecord', () => {
  const record = changeRecord({ principal: 'zürich-ops' });

  it('stores the record once under history/<principal>/<changeId>.json', async () => {
    s3.on(PutObjectCommand).resolves({});
    await store.writeChangeRecord(record);
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input).toStrictEqual({
      Bucket: 'audit-bucket',
      Key: 'history/z%C3%BCrich-ops/chg-0123456789abcdef0123456789abcdef.json',
      Body: serialize(record),
      ContentType: 'application/json',
      IfNoneMatch: '*',
    });
  });

  it.each([
    ['PreconditionFailed', 412],
    ['ConditionalRequestConflict', 409],
  ])('treats %s (%i) as "stored already" (the same id is the same change)', async (name, status) => {
    s3.on(PutObjectCommand).rejects(s3Error(name, status));
    await expect(store.writeChangeRecord(record)).resolves.toBeUndefined();
  });

  it('fails with StorageError naming the record location otherwise', async () => {
    const cause = s3Error('ServiceUnavailable', 503, 'Please reduce your request rate.');
    s3.on(PutObjectCommand).rejects(cause);
    const error = await failure(store.writeChangeRecord(record));
    expect(error).toBeInstanceOf(StorageError);
    expect(error.message).toBe(
      `could not write ${record.changeRecordLocation}: Please reduce your request rate.`,
    );
    expect(error.cause).toBe(cause);
  });
});
