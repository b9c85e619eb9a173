/**
 * Snapshots and change records in S3 (layout: `functions/core/layout.ts`). Snapshot writes are
 * conditional, so a concurrent writer can never be overwritten silently.
 */
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { abortedBy, ConcurrentWriteError, describeError, StorageError } from '../../commons/errors.js';
import {
  archiveKey,
  changeRecordKey,
  LEASE_KEY,
  principalOfStateKey,
  REPORT_KEYS,
  RUN_STATE_KEY,
  SIDE_FAILURES_PREFIX,
  segmentOfSideFailureKey,
  sideFailureKey,
  snapshotKey,
} from '../../core/layout.js';
import type {
  CallOptions,
  ChangeRecord,
  Lease,
  LeaseStore,
  RunState,
  SideFailure,
  Snapshot,
  SnapshotStore,
  StoredSideFailure,
  StoredSnapshot,
} from '../../core/ports.js';
import {
  parseSnapshot,
  principalNamedIn,
  serialize,
  storedRunState,
  storedSideFailure,
} from '../../core/records.js';

function status(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** S3 refuses a conditional write with 412, or 409 when another conditional write raced it. */
function isPreconditionFailure(error: unknown): boolean {
  const code = status(error);
  return code === 412 || code === 409;
}

/** A lease's text, or `undefined` when it is not one (then it counts as expired). */
function parseLease(text: string): Lease | undefined {
  try {
    const json = JSON.parse(text) as Partial<Lease> | null;
    return typeof json?.runId === 'string' && typeof json.expiresAt === 'string'
      ? { runId: json.runId, expiresAt: json.expiresAt }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The run lease exists (another run may hold it) but could not be read or taken over: a run must not start
 * without it, unlike a lease that cannot be written at all (S3 failing: the conditional writes still refuse a
 * concurrent writer).
 */
export class LeaseHeldError extends StorageError {
  constructor(reason: string, options?: ErrorOptions) {
    super(
      `the run lease exists but could not be read or taken over (${reason}): no audit without it`,
      options,
    );
    this.name = 'LeaseHeldError';
  }
}

/** A SnapshotStore on an S3 bucket (versioned, so every snapshot stays recoverable). */
export class S3SnapshotStore implements SnapshotStore, LeaseStore {
  readonly #client: S3Client;
  readonly #bucket: string;

  constructor(client: S3Client, bucket: string) {
    this.#client = client;
    this.#bucket = bucket;
  }

  snapshotLocation(principal: string): string {
    return this.#location(snapshotKey(principal));
  }

  changeRecordLocation(principal: string, changeId: string): string {
    return this.#location(changeRecordKey(principal, changeId));
  }

  async read(principal: string, options: CallOptions = {}): Promise<StoredSnapshot | undefined> {
    const location = this.snapshotLocation(principal);
    const found = await this.#get(snapshotKey(principal), options);
    return found && { snapshot: parseSnapshot(found.text, principal, location), version: found.version };
  }

  async readRunState(options: CallOptions = {}): Promise<{ state: RunState; version: string } | undefined> {
    const found = await this.#get(RUN_STATE_KEY, options);
    return found && storedRunState(found.text, this.#location(RUN_STATE_KEY), found.version);
  }

  writeRunState(
    state: RunState,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#put(RUN_STATE_KEY, serialize(state), expectedVersion, options);
  }

  async readSideFailure(
    principal: string,
    options: CallOptions = {},
  ): Promise<StoredSideFailure | undefined> {
    const key = sideFailureKey(principal);
    const found = await this.#get(key, options);
    return found && storedSideFailure(found.text, principal, this.#location(key), found.version);
  }

  writeSideFailure(
    principal: string,
    record: SideFailure,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#put(sideFailureKey(principal), serialize(record), expectedVersion, options);
  }

  async deleteSideFailure(principal: string, version: string, options: CallOptions = {}): Promise<void> {
    await this.#delete(sideFailureKey(principal), version, options, true);
  }

  async sideFailureSegments(options: CallOptions = {}): Promise<ReadonlySet<string>> {
    const segments = new Set<string>();
    for await (const key of this.#keys(SIDE_FAILURES_PREFIX, options)) {
      const segment = segmentOfSideFailureKey(key);
      if (segment !== undefined) segments.add(segment);
    }
    return segments;
  }

  /** Where the latest inventory report is (for the notices). */
  reportLocation(): string {
    return this.#location(REPORT_KEYS.html);
  }

  /** Writes a report file (the latest, or a dated copy): a plain put, reports are rewritten every run. */
  async putReport(
    key: string,
    body: string | Uint8Array,
    contentType: string,
    options: CallOptions = {},
  ): Promise<void> {
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#bucket, Key: key, Body: body, ContentType: contentType }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      const cause = abortedBy(options.signal, error);
      throw new StorageError(`could not write ${this.#location(key)}: ${describeError(cause)}`, { cause });
    }
  }

  /** Whether a report file exists (the day's copy: the fan-out writes one a day at least). */
  async hasReport(key: string, options: CallOptions = {}): Promise<boolean> {
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), {
        abortSignal: options.signal,
      });
      return true;
    } catch (error) {
      if (status(error) === 404) return false;
      const cause = abortedBy(options.signal, error);
      throw new StorageError(`could not read ${this.#location(key)}: ${describeError(cause)}`, { cause });
    }
  }

  archiveLocation(principal: string, archiveId: string): string {
    return this.#location(archiveKey(principal, archiveId));
  }

  async *principalsWithState(options: CallOptions = {}): AsyncGenerator<string, void, undefined> {
    for await (const key of this.#keys('snapshots/', options)) {
      const named = principalOfStateKey(key);
      if (named === undefined) continue;
      if (named.principal !== undefined) {
        yield named.principal;
        continue;
      }
      // A hashed segment does not say its name: the state does.
      const found = await this.#get(key, options);
      const principal = found && principalNamedIn(found.text);
      if (principal !== undefined) yield principal;
    }
  }

  /** Every key under `prefix`, page by page. */
  async *#keys(prefix: string, options: CallOptions): AsyncGenerator<string, void, undefined> {
    const abortSignal = options.signal;
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token }),
          { abortSignal },
        );
      } catch (error) {
        const cause = abortedBy(abortSignal, error);
        throw new StorageError(`could not list ${this.#location(prefix)}: ${describeError(cause)}`, {
          cause,
        });
      }
      for (const object of page.Contents ?? []) yield object.Key ?? '';
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async archive(
    principal: string,
    version: string,
    archiveId: string,
    options: CallOptions = {},
  ): Promise<void> {
    const abortSignal = options.signal;
    const source = snapshotKey(principal);
    const target = archiveKey(principal, archiveId);
    try {
      await this.#client.send(
        new CopyObjectCommand({
          Bucket: this.#bucket,
          Key: target,
          CopySource: `${this.#bucket}/${source.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceIfMatch: version,
          IfNoneMatch: '*',
        }),
        { abortSignal },
      );
    } catch (error) {
      // 412: the state changed since it was read (the delete below then refuses too), or an earlier try of this
      // very move copied it already (same archive id, same state version). Either way, the delete decides.
      if (status(error) !== 412) {
        const cause = abortedBy(abortSignal, error);
        throw new StorageError(
          `could not archive ${this.snapshotLocation(principal)}: ${describeError(cause)}`,
          {
            cause,
          },
        );
      }
    }
    await this.#delete(source, version, options);
  }

  /** Deletes an object only if it is still `version`; with `missingIsDone`, one already gone is no error. */
  async #delete(key: string, version: string, options: CallOptions, missingIsDone = false): Promise<void> {
    const location = this.#location(key);
    const abortSignal = options.signal;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key, IfMatch: version }), {
        abortSignal,
      });
    } catch (error) {
      if (missingIsDone && status(error) === 404) return;
      if (isPreconditionFailure(error)) {
        throw new ConcurrentWriteError(
          `${location} changed since this run read it (conditional delete refused)`,
          {
            cause: error,
          },
        );
      }
      const cause = abortedBy(abortSignal, error);
      throw new StorageError(`could not delete ${location}: ${describeError(cause)}`, { cause });
    }
  }

  async acquireLease(
    lease: Lease,
    now: Date,
    options: CallOptions = {},
  ): Promise<{ acquired: true } | { acquired: false; holder: Lease }> {
    const body = serialize(lease);
    try {
      await this.#put(LEASE_KEY, body, undefined, options);
      return { acquired: true };
    } catch (error) {
      if (!(error instanceof ConcurrentWriteError)) throw error;
    }
    // Someone holds it, or held it and crashed: an expired lease is taken over, only if it is still that one;
    // one held by this very run (an earlier attempt of it, whose answer was lost) is its own.
    try {
      const found = await this.#get(LEASE_KEY, options);
      if (found === undefined) return this.acquireLease(lease, now, options);
      const holder = parseLease(found.text);
      const own = holder?.runId === lease.runId;
      if (holder !== undefined && !own && Date.parse(holder.expiresAt) > now.getTime())
        return { acquired: false, holder };
      try {
        await this.#put(LEASE_KEY, body, found.version, options);
        return { acquired: true };
      } catch (error) {
        if (!(error instanceof ConcurrentWriteError)) throw error;
        const winner = await this.#get(LEASE_KEY, options);
        const taken = winner && parseLease(winner.text);
        return { acquired: false, holder: taken ?? { runId: 'unknown', expiresAt: lease.expiresAt } };
      }
    } catch (error) {
      // A lease exists (the conditional create was refused): whatever fails now, this run must not go on as if
      // there were none. The error says so; callers never audit without the lease after it.
      throw new LeaseHeldError(describeError(abortedBy(options.signal, error)), { cause: error });
    }
  }

  async releaseLease(runId: string, options: CallOptions = {}): Promise<void> {
    const found = await this.#get(LEASE_KEY, options);
    if (found === undefined || parseLease(found.text)?.runId !== runId) return;
    try {
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket, Key: LEASE_KEY, IfMatch: found.version }),
        { abortSignal: options.signal },
      );
    } catch (error) {
      // Taken over meanwhile (it had expired): not ours to delete any more.
      if (isPreconditionFailure(error) || status(error) === 404) return;
      const cause = abortedBy(options.signal, error);
      throw new StorageError(`could not release ${this.#location(LEASE_KEY)}: ${describeError(cause)}`, {
        cause,
      });
    }
  }

  #location(key: string): string {
    return `s3://${this.#bucket}/${key}`;
  }

  /** An object's text and ETag, or `undefined` when there is none. */
  async #get(key: string, options: CallOptions): Promise<{ text: string; version: string } | undefined> {
    const location = this.#location(key);
    const abortSignal = options.signal;
    let text: string;
    let etag: string | undefined;
    try {
      const response = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }), {
        abortSignal,
      });
      text = (await response.Body?.transformToString('utf-8')) ?? '';
      etag = response.ETag;
    } catch (error) {
      if (status(error) === 404) return undefined;
      const cause = abortedBy(abortSignal, error);
      throw new StorageError(`could not read ${location}: ${describeError(cause)}`, { cause });
    }
    if (!etag)
      throw new StorageError(`S3 returned ${location} without an ETag: a conditional write needs one`);
    return { text, version: etag };
  }

  write(
    principal: string,
    snapshot: Snapshot,
    expectedVersion: string | undefined,
    options: CallOptions = {},
  ): Promise<string> {
    return this.#put(snapshotKey(principal), serialize(snapshot), expectedVersion, options);
  }

  /** A conditional put (`If-Match` the expected version, or `If-None-Match: *`); returns the new ETag. */
  async #put(
    key: string,
    body: string,
    expectedVersion: string | undefined,
    options: CallOptions,
  ): Promise<string> {
    const location = this.#location(key);
    const abortSignal = options.signal;
    try {
      const response = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: body,
          ContentType: 'application/json',
          ...(expectedVersion === undefined ? { IfNoneMatch: '*' } : { IfMatch: expectedVersion }),
        }),
        { abortSignal },
      );
      if (!response.ETag) {
        throw new StorageError(
          `S3 stored ${location} without returning an ETag: a conditional write needs one`,
        );
      }
      return response.ETag;
    } catch (error) {
      if (error instanceof StorageError) throw error;
      if (isPreconditionFailure(error)) {
        throw new ConcurrentWriteError(
          `${location} changed since this run read it (conditional write refused); the next run audits again`,
          { cause: error },
        );
      }
      const cause = abortedBy(abortSignal, error);
      throw new StorageError(`could not write ${location}: ${describeError(cause)}`, { cause });
    }
  }

  async writeChangeRecord(record: ChangeRecord, options: CallOptions = {}): Promise<void> {
    const abortSignal = options.signal;
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
        { abortSignal },
      );
    } catch (error) {
      // 412: an object is there already, the same change stored by an earlier try. A 409 is not that: another
      // write to the key was under way at the same moment, and nothing says it finished.
      if (status(error) === 412) return;
      const cause = abortedBy(abortSignal, error);
      throw new StorageError(`could not write ${record.changeRecordLocation}: ${describeError(cause)}`, {
        cause,
      });
    }
  }
}

/**
 * Checks that an S3 client sends `If-Match` and `If-None-Match` on PutObject, without sending anything: the
 * Lambda uses the runtime's SDK (not bundled), and an SDK too old to know those fields would drop them silently,
 * turning every conditional write into an unconditional one. The request is built by the client's own
 * middleware stack and stopped at the HTTP handler.
 * @throws StorageError when either header is missing.
 */
export async function assertConditionalWrites(): Promise<void> {
  // A client of the same module as the store's, with placeholder credentials: nothing is signed or sent, and
  // the check resolves no credentials and reads no configuration (no network call at cold start).
  const client = new S3Client({
    region: 'us-east-1',
    credentials: { accessKeyId: 'probe', secretAccessKey: 'probe' },
  });
  const seen: Record<string, string | undefined> = {};
  const probe = new PutObjectCommand({
    Bucket: 'probe',
    Key: 'probe',
    Body: '',
    IfMatch: '"e"',
    IfNoneMatch: '*',
  });
  const stop = new Error('conditional-write probe: stopped before sending');
  probe.middlewareStack.add(
    () => async (args) => {
      const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
      for (const [name, value] of Object.entries(headers)) seen[name.toLowerCase()] = value;
      throw stop;
    },
    { step: 'build', priority: 'low', name: 'conditionalWriteProbe' },
  );
  try {
    // What `client.send` does, without the client's `send` (which tests replace with mocks).
    const handler = probe.resolveMiddleware(client.middlewareStack, client.config, {});
    await handler({ input: probe.input });
  } catch (error) {
    if (error !== stop) {
      client.destroy();
      throw new StorageError(`could not check the S3 client's conditional writes: ${describeError(error)}`, {
        cause: error,
      });
    }
  }
  client.destroy();
  if (seen['if-match'] !== '"e"' || seen['if-none-match'] !== '*') {
    throw new StorageError(
      'the S3 client in use does not send If-Match / If-None-Match on PutObject: conditional writes would be ' +
        'silently unconditional; bundle a newer @aws-sdk/client-s3',
    );
  }
}
