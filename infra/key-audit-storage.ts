/**
 * The audit's storage: the snapshot bucket (snapshots and change history), its access-log bucket, and the
 * function's narrow access to it.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AnyPrincipal, Effect, Grant, type IGrantable, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import {
  archiveKey,
  changeRecordKey,
  LEASE_KEY,
  REPORT_KEYS,
  RUN_STATE_KEY,
  runItemsKey,
  sideFailureKey,
  snapshotKey,
} from '../functions/core/layout.js';

/** The first path segment of a key, with its slash: the bucket's layout comes from the function's own code. */
const prefixOf = (key: string): string => key.slice(0, key.indexOf('/') + 1);
/** Where the function keeps the latest snapshot per principal (`functions/core/layout.ts`). */
export const SNAPSHOTS_PREFIX = prefixOf(snapshotKey('p'));
/** Where the function keeps its change records, each written once (`functions/core/layout.ts`). */
export const HISTORY_PREFIX = prefixOf(changeRecordKey('p', 'c'));
/** Where discovery moves the state of a principal that no longer exists (`functions/core/layout.ts`). */
export const ARCHIVE_PREFIX = prefixOf(archiveKey('p', 'a'));
/** Where the inventory report is written, the latest and the day's copies (`functions/core/layout.ts`). */
export const REPORTS_PREFIX = prefixOf(REPORT_KEYS.html);
/** Where a principal's failure is kept while its state cannot be read (`functions/core/layout.ts`). */
export const SIDE_FAILURES_PREFIX = prefixOf(sideFailureKey('p'));
/** How long a failure kept aside outlives the last run that audited its principal. */
export const ORPHANED_FAILURE_RETENTION = Duration.days(30);
/** Why a role that audits principals may read, write and delete any object under {@link SIDE_FAILURES_PREFIX}. */
const SIDE_FAILURES_REASON =
  'A principal whose state cannot be read (corrupt, access denied, a newer schema) keeps its failure in failures/<principal>.json, so its notices are rationed (at most once a day) without writing the state; principals are known only at run time. GetObject, conditional PutObject, and DeleteObject once it recovers, under this one prefix of this one bucket.';
/**
 * Where a fanned-out run keeps its own files: the plan's list of principals (the Map's ItemReader) and the Map's
 * results (its ResultWriter), `runs/<runId>/...`. Working files of one run, expired after
 * {@link RUN_FILES_RETENTION}.
 */
export const RUNS_PREFIX = prefixOf(runItemsKey('r'));
/** How long a fanned-out run's working files are kept: long enough to look into a failed run. */
export const RUN_FILES_RETENTION = Duration.days(30);

/** The buckets of one audit. */
export interface SnapshotStorage {
  /** Snapshots (`snapshots/`) and change records (`history/`). */
  readonly bucket: Bucket;
  /** Server access logs of {@link bucket}. */
  readonly accessLogsBucket: Bucket;
}

/**
 * Creates the snapshot bucket and its access-log bucket in `scope` (with the ids `SnapshotBucket` and
 * `AccessLogsBucket`, which must never change: a new logical id would replace the bucket holding the audit
 * trail).
 */
export function createSnapshotStorage(
  scope: Construct,
  options: { readonly historyRetention: Duration },
): SnapshotStorage {
  // SSE-S3 rather than KMS: the objects hold key names and counts, never the API key; access is controlled by
  // IAM alone (only the function's role), and SSE-S3 has no per-request KMS charges or key policy to keep.
  // The access-log bucket must use SSE-S3 anyway: S3 server access logging cannot write to SSE-KMS buckets.
  const accessLogsBucket = new Bucket(scope, 'AccessLogsBucket', {
    encryption: BucketEncryption.S3_MANAGED,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    // Object ownership left to CDK: with the serverAccessLogsUseBucketPolicy flag, logs arrive through a bucket
    // policy and S3's default (bucket owner enforced) applies; without it, CDK needs the ObjectWriter ACL setup.
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    removalPolicy: RemovalPolicy.RETAIN,
    lifecycleRules: [
      {
        id: 'expire-access-logs',
        expiration: Duration.days(365),
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
    ],
  });
  // Not logged itself (that would log the log deliveries); cdk-nag's S1 knows a bucket that is another's log
  // target, so there is nothing to acknowledge.

  const bucket = new Bucket(scope, 'SnapshotBucket', {
    versioned: true,
    encryption: BucketEncryption.S3_MANAGED,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    // Snapshots and the change history are the audit trail: deleting the stack must not delete them.
    removalPolicy: RemovalPolicy.RETAIN,
    serverAccessLogsBucket: accessLogsBucket,
    serverAccessLogsPrefix: 'snapshot-bucket/',
    lifecycleRules: [
      {
        // Every run overwrites snapshots: keep replaced versions 90 days for recovery, then let them go.
        id: 'expire-noncurrent-versions',
        noncurrentVersionExpiration: Duration.days(90),
        expiredObjectDeleteMarker: true,
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
      {
        id: 'expire-history',
        prefix: HISTORY_PREFIX,
        expiration: options.historyRetention,
      },
      {
        // A failure kept aside is rewritten by every run that audits its principal and deleted when it recovers:
        // one untouched for 30 days belongs to a principal no run audits any more (dropped from the list).
        id: 'expire-orphaned-failures',
        prefix: SIDE_FAILURES_PREFIX,
        expiration: ORPHANED_FAILURE_RETENTION,
      },
      {
        // The daily copies of the inventory report (`reports/<date>/`) go with the history they summarise; the
        // latest report is rewritten every run.
        id: 'expire-dated-reports',
        prefix: `${REPORTS_PREFIX}2`,
        expiration: options.historyRetention,
      },
    ],
  });
  enforceWriteRules(bucket);
  return { bucket, accessLogsBucket };
}

/**
 * The bucket policy that holds every writer (people included) to the write rules the code keeps: change records
 * are created once and never replaced, snapshot writes are conditional.
 */
function enforceWriteRules(bucket: Bucket): void {
  const snapshots = bucket.arnForObjects(`${SNAPSHOTS_PREFIX}*`);
  const history = bucket.arnForObjects(`${HISTORY_PREFIX}*`);
  // Immutable history by policy, not by code alone: a put under history/ must carry If-None-Match (create
  // only, never replace). `s3:ObjectCreationOperation` keeps the multipart steps that cannot carry the header
  // (CreateMultipartUpload, UploadPart) out of the deny; their CompleteMultipartUpload still needs it.
  const objectCreation = { 's3:ObjectCreationOperation': 'true' };
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: 'HistoryIsWriteOnce',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: [history],
      conditions: { Null: { 's3:if-none-match': 'true' }, Bool: objectCreation },
    }),
  );
  // Snapshots: conditional writes only, If-Match (replace the version read) or If-None-Match (create). Keys
  // within one condition operator are ANDed: the deny applies when both headers are missing, which is "one
  // of them is required" (two deny statements would require both).
  bucket.addToResourcePolicy(
    new PolicyStatement({
      sid: 'SnapshotWritesAreConditional',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['s3:PutObject'],
      resources: [snapshots],
      conditions: { Null: { 's3:if-none-match': 'true', 's3:if-match': 'true' }, Bool: objectCreation },
    }),
  );
}

/**
 * Expires a fanned-out run's working files (`runs/`) after {@link RUN_FILES_RETENTION}: the plan's list of
 * principals and the Map's results, read by the run itself and, for a while, by a person looking into it.
 */
export function expireRunFiles(bucket: Bucket): void {
  bucket.addLifecycleRule({ id: 'expire-run-files', prefix: RUNS_PREFIX, expiration: RUN_FILES_RETENTION });
}

/**
 * A function's S3 access for auditing principals, exactly the calls of `functions/adapters/aws/s3-store.ts`: the
 * single-mode audit function's, and the fan-out worker's (which takes no lease: the plan and the finish step
 * hold it for the whole run).
 *
 * Hand-written statements: `bucket.grantRead` and `grantPut` would add GetObject*, GetBucket*, List*, Abort*,
 * PutObjectLegalHold, PutObjectRetention, PutObjectTagging and PutObjectVersionTagging on the whole bucket,
 * none of which the code calls. No KMS permission: the bucket is SSE-S3, not SSE-KMS.
 */
export function grantSnapshotAccess(
  bucket: Bucket,
  grantee: IGrantable,
  options: { readonly discovery: boolean; readonly lease?: boolean; readonly report?: boolean },
): void {
  const snapshots = bucket.arnForObjects(`${SNAPSHOTS_PREFIX}*`);
  const history = bucket.arnForObjects(`${HISTORY_PREFIX}*`);
  // GetObject: the latest snapshot. PutObject: the snapshot (If-Match / If-None-Match) and the change records
  // (If-None-Match). Without discovery, never a delete, never anything outside these two prefixes.
  Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [snapshots] });
  Grant.addToPrincipal({ grantee, actions: ['s3:PutObject'], resourceArns: [snapshots, history] });
  // A principal's failure kept aside while its state cannot be read: read, written conditionally, deleted when it
  // recovers (the code lists the prefix with the ListBucket below).
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
    resourceArns: [bucket.arnForObjects(`${SIDE_FAILURES_PREFIX}*`)],
  });
  grantListing(bucket, grantee);
  if (options.report ?? options.lease ?? true) {
    // The inventory report after a full run: reports/latest.* and the day's copy, plain puts under this prefix.
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [bucket.arnForObjects(`${REPORTS_PREFIX}*`)],
    });
  }
  if (options.lease ?? true) {
    // The run lease (one run at a time across scheduled, fan-out and manual runs): created with If-None-Match,
    // taken over with If-Match once expired, deleted with If-Match by its holder. This one object only.
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resourceArns: [bucket.arnForObjects(LEASE_KEY)],
    });
  }
  if (options.discovery) {
    // Discovery archives the state of a principal that no longer exists in BigState: a conditional copy to
    // archive/ (PutObject there; GetObject on the source is granted above), then a conditional delete of the
    // state (If-Match: the version it read). The bucket is versioned: the delete leaves the old version, which
    // expires with the other replaced versions.
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject'],
      resourceArns: [bucket.arnForObjects(`${ARCHIVE_PREFIX}*`)],
    });
    Grant.addToPrincipal({ grantee, actions: ['s3:DeleteObject'], resourceArns: [snapshots] });
  }
}

/**
 * The cdk-nag acknowledgements of what {@link grantSnapshotAccess} grants (with the same options), one by one: the
 * wildcard resources under `snapshots/`, `history/`, `failures/` and (with discovery) `archive/`. `bucketArn` is the
 * bucket's ARN as cdk-nag writes it (`<LogicalId.Arn>`).
 */
export function snapshotAccessAcknowledgements(
  bucketArn: string,
  options: { readonly discovery: boolean },
): Record<string, string> {
  return {
    [`AwsSolutions-IAM5[Resource::${bucketArn}/${SNAPSHOTS_PREFIX}*]`]: `One state per principal (snapshots/<principal>.json): one resource per principal would outgrow the role policy for long principal lists, and principals discovered at run time (principalPattern, in the contract) are unknown at deploy time; GetObject and conditional PutObject (the bucket policy refuses a put there without If-Match or If-None-Match)${options.discovery ? ', and the conditional DeleteObject that archives a principal BigState no longer knows' : ''}, under this one prefix of this one bucket.`,
    [`AwsSolutions-IAM5[Resource::${bucketArn}/${HISTORY_PREFIX}*]`]:
      'Change records are named per principal and change id (history/<principal>/<changeId>.json), known only at run time; PutObject only, under this one prefix of this one bucket, and the bucket policy refuses any put there without If-None-Match.',
    [`AwsSolutions-IAM5[Resource::${bucketArn}/${SIDE_FAILURES_PREFIX}*]`]: SIDE_FAILURES_REASON,
    ...(options.discovery
      ? {
          [`AwsSolutions-IAM5[Resource::${bucketArn}/${ARCHIVE_PREFIX}*]`]:
            'Discovery moves the state of a principal that no longer exists in BigState to archive/<principal>/<archiveId>.json, named at run time; PutObject only (a conditional copy), under this one prefix of this one bucket.',
        }
      : {}),
  };
}

/**
 * S3 consults ListBucket when a GetObject names a missing key, answering 404 with it and 403 without: a
 * principal's first (baseline) run and a first run-level record depend on that 404. With discovery the code also
 * lists `snapshots/` (the principals with a state). It lets the role list key names (principal names, change
 * ids, run ids) of this one bucket, never read a body.
 */
function grantListing(bucket: Bucket, grantee: IGrantable): void {
  Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [bucket.bucketArn] });
}

/**
 * The fan-out plan step's S3 access: the run lease (taken: created with If-None-Match or taken over with
 * If-Match; read to see who holds it), the run-level record (read, for where the last run ran out of time), the
 * listing (principals with a state, for discovery) and the run's list of principals (`runs/<runId>/...`, written
 * once for the Map's ItemReader). With discovery the listing also reads the state of a principal whose long name
 * the key does not say (a hashed segment): GetObject on `snapshots/*`, never a write there.
 */
export function grantPlanAccess(
  bucket: Bucket,
  grantee: IGrantable,
  options: { readonly discovery: boolean },
): void {
  if (options.discovery) {
    Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject'],
      resourceArns: [bucket.arnForObjects(`${SNAPSHOTS_PREFIX}*`)],
    });
  }
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject', 's3:PutObject'],
    resourceArns: [bucket.arnForObjects(LEASE_KEY)],
  });
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject'],
    resourceArns: [bucket.arnForObjects(RUN_STATE_KEY)],
  });
  grantListing(bucket, grantee);
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:PutObject'],
    resourceArns: [bucket.arnForObjects(`${RUNS_PREFIX}*`)],
  });
}

/**
 * The fan-out finish step's S3 access: the Map's results (`runs/<runId>/results/...`: the manifest and the
 * result files), the run-level record (read and written, conditionally), the run lease (read, then released
 * with If-Match by its holder), and the inventory report (the states read, `reports/*` written).
 */
export function grantFinishAccess(bucket: Bucket, grantee: IGrantable): void {
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject'],
    resourceArns: [bucket.arnForObjects(`${RUNS_PREFIX}*`)],
  });
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject', 's3:PutObject'],
    resourceArns: [bucket.arnForObjects(RUN_STATE_KEY)],
  });
  grantListing(bucket, grantee);
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject', 's3:DeleteObject'],
    resourceArns: [bucket.arnForObjects(LEASE_KEY)],
  });
  // The inventory report: the principals' states read back (never written here), the report's files written,
  // and the day's copy looked up (HeadObject needs s3:GetObject).
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject'],
    resourceArns: [bucket.arnForObjects(`${SNAPSHOTS_PREFIX}*`)],
  });
  Grant.addToPrincipal({
    grantee,
    actions: ['s3:GetObject', 's3:PutObject'],
    resourceArns: [bucket.arnForObjects(`${REPORTS_PREFIX}*`)],
  });
}
