/**
 * Snapshots and change records in S3 (layout: `functions/core/layout.ts`). Snapshot writes are
 * conditional, so a concurrent writer can never be overwritten silently.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ConcurrentWriteError, describeError, StorageError } from '../../commons/errors.js';
import { changeRecordKey, snapshotKey } from '../../core/layout.js';
import type { ChangeRecord, Snapshot, SnapshotStore, StoredSnapshot } from '../../core/ports.js';
import { parseSnapshot, serialize } from '../../core/records.js';

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** S3 refuses a conditional write with 412, or 409 when another conditional write raced it. */
function isPreconditionFailure(error: unknown): boolean {
  const code = status(error);
  return code === 412 || code === 409;
}

/** A SnapshotStore on an S3 bucket (versioned, so every snapshot stays recoverable). */
export class S3SnapshotStore implements SnapshotStore {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(client: S3Client, bucket: string) {
    this.#client = client;
    this.#bucket = bucket;
  }

  snapshotLocation(principal: string): string {
    return `s3://${this.#bucket}/${snapshotKey(principal)}`;
  }

  changeRecordLocation(principal: string, changeId: string): string {
    return `s3://${this.#bucket}/${changeRecordKey(principal, changeId)}`;
  }

  async read(principal: string): Promise<StoredSnapshot | undefined> {
    const location = this.snapshotLocation(principal);
    let text: string;
    let etag: string | undefined;
    try {
      const response = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: snapshotKey(principal) }),
      );
      text = (await response.Body?.transformToString('utf-8')) ?? '';
      etag = response.ETag;
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw new StorageError(`could not read ${location}: ${describeError(error)}`, { cause: error });
    }
    if (!etag)
      throw new StorageError(`S3 returned ${location} without an ETag: a conditional write needs one`);
    return { snapshot: parseSnapshot(text, principal, location), version: etag };
  }

  async write(principal: string, snapshot: Snapshot, expectedVersion: string | undefined): Promise<void> {
    const location = this.snapshotLocation(principal);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: snapshotKey(principal),
          Body: serialize(snapshot),
          ContentType: 'application/json',
          ...(expectedVersion === undefined ? { IfNoneMatch: '*' } : { IfMatch: expectedVersion }),
        }),
      );
    } catch (error) {
      if (isPreconditionFailure(error)) {
        throw new ConcurrentWriteError(
          `${location} changed since this run read it (conditional write refused); the next run audits again`,
          { cause: error },
        );
      }
      throw new StorageError(`could not write ${location}: ${describeError(error)}`, { cause: error });
    }
  }

  async writeChangeRecord(record: ChangeRecord): Promise<void> {
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: changeRecordKey(record.principal, record.changeId),
          Body: serialize(record),
          ContentType: 'application/json',
          // Records are immutable: the same id means the same change, already stored by an earlier try.
          IfNoneMatch: '*',
        }),
      );
    } catch (error) {
      if (isPreconditionFailure(error)) return;
      throw new StorageError(`could not write ${record.changeRecordLocation}: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
}
