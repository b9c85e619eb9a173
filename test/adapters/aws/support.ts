/**
 * Shared fixtures of the AWS adapter tests: registers the aws-sdk-client-mock matchers (imported by every test
 * file here), builds S3 service errors and GetObject bodies, and notices to publish.
 */
import 'aws-sdk-client-mock-vitest/extend';
import { type GetObjectCommandOutput, S3ServiceException } from '@aws-sdk/client-s3';
import type { ChangeRecord, FailureNotice, Notice } from '../../../functions/core/ports.js';

/** An S3 error as the SDK raises it for an HTTP status. */
export function s3Error(name: string, status: number, message = `${name} (${status})`): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'REQ123' },
    message,
  });
}

/** A GetObject body holding `text`. */
export function objectBody(text: string): GetObjectCommandOutput['Body'] {
  return { transformToString: async () => text } as unknown as GetObjectCommandOutput['Body'];
}

/** A change record of principal `root`. */
export function changeRecord(overrides: Partial<ChangeRecord> = {}): ChangeRecord {
  return {
    schemaVersion: 1,
    changeId: 'chg-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal: 'root',
    kind: 'changed',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: '"etag-1"',
    added: ['new-key'],
    removed: ['old-key'],
    counts: { added: 1, removed: 1, total: 7 },
    snapshotLocation: 's3://audit-bucket/snapshots/root.json',
    changeRecordLocation: 's3://audit-bucket/history/root/chg-0123456789abcdef0123456789abcdef.json',
    ...overrides,
  };
}

export const changedNotice = (overrides: Partial<ChangeRecord> = {}): Notice => ({
  kind: 'changed',
  record: changeRecord(overrides),
});

export const baselineNotice = (): Notice => ({
  kind: 'baseline',
  record: changeRecord({
    kind: 'baseline',
    added: [],
    removed: [],
    previousSnapshotVersion: null,
    counts: { added: 0, removed: 0, total: 7 },
  }),
});

export const failedNotice = (overrides: Partial<FailureNotice> = {}): FailureNotice => ({
  kind: 'failed',
  runId: 'run-1',
  principal: 'zürich-ops',
  reason: 'walking the keys: BigState GET /v1/apikey/match?principal=z%C3%BCrich-ops&next=0 -> HTTP 403',
  errorName: 'ForbiddenError',
  failingSince: '2025-06-01T11:00:00.000Z',
  detectedAt: '2025-06-01T12:00:00.000Z',
  ...overrides,
});
