/**
 * A local S3 that speaks the REST/XML protocol as the AWS SDK v3 sends it to an IP endpoint (path style:
 * `/<bucket>/<key>`): PutObject (with `If-None-Match: *` and `If-Match`), CopyObject (source conditions
 * `x-amz-copy-source-if-match` / `-if-none-match`, destination conditions `If-None-Match: *` / `If-Match`, a
 * source version), GetObject, HeadObject, DeleteObject (with `If-Match`, as general purpose buckets have served it
 * since 2025) and ListObjectsV2, versioned buckets, ETags (quoted MD5), flexible checksums and `aws-chunked` bodies.
 *
 * Conditional answers follow what S3 answers: a condition that does not hold is `412 PreconditionFailed` (its
 * `Condition` names the header); `If-Match` on a key with no current object (none, or a delete marker) is
 * `404 NoSuchKey`, for a put, a copy's destination and a delete alike.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AwsFakeServer,
  type FakeRequest,
  type FakeResponse,
  FakeServiceError,
  newRequestId,
  type Routed,
  xmlEscape,
} from './aws-fake-server.js';
import { type ChecksumName, ChunkedBodyError, checksum, checksumNames, decodeAwsChunked } from './s3-wire.js';

/** Options of the S3 fake. */
export interface S3FakeOptions {
  /**
   * The buckets that exist; any other answers `NoSuchBucket`, as S3 does.
   * @default every bucket name exists
   */
  readonly buckets?: readonly string[];
  /**
   * Whether buckets keep versions: every put gets a new `x-amz-version-id` and a delete leaves a delete marker.
   * @default true
   */
  readonly versioned?: boolean;
}

/** One stored version of an object (or a delete marker). */
export interface S3ObjectVersion {
  readonly bucket: string;
  readonly key: string;
  /** `undefined` in an unversioned bucket. */
  readonly versionId: string | undefined;
  readonly isDeleteMarker: boolean;
  readonly body: Buffer;
  /** The body as UTF-8. */
  readonly text: string;
  /** Quoted, as S3 sends it: `"<md5 hex>"`. */
  readonly etag: string;
  readonly contentType: string;
  /** `x-amz-meta-*` headers, names in lower case without the prefix. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Flexible checksums the writer sent (and the fake verified), base64. */
  readonly checksums: Readonly<Partial<Record<ChecksumName, string>>>;
  /** Other stored headers: cache-control, content-disposition, content-encoding, content-language, expires. */
  readonly storedHeaders: Readonly<Record<string, string>>;
  readonly lastModified: Date;
}

/** Options of a seeded object. */
export interface S3PutOptions {
  readonly contentType?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

const storedHeaderNames = [
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'expires',
];

/** Headers that ask for features the fake does not implement; their presence makes the call unknown. */
const unsupportedHeaders = [
  'x-amz-copy-source-if-modified-since',
  'x-amz-copy-source-if-unmodified-since',
  'x-amz-copy-source-range',
  'x-amz-copy-source-server-side-encryption-customer-algorithm',
  'range',
  'if-modified-since',
  'if-unmodified-since',
  'x-amz-server-side-encryption-customer-algorithm',
  'x-amz-object-lock-mode',
  'x-amz-object-lock-retain-until-date',
  'x-amz-object-lock-legal-hold',
  'x-amz-write-offset-bytes',
  'x-amz-if-match-size',
  'x-amz-if-match-last-modified-time',
];

const listQueryKeys = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'max-keys',
  'continuation-token',
  'start-after',
  'x-id',
]);
const objectQueryKeys = new Set(['x-id', 'versionId']);

/** The request headers of CopyObject that name or condition its source. */
const copySourceHeaders = [
  'x-amz-copy-source',
  'x-amz-copy-source-if-match',
  'x-amz-copy-source-if-none-match',
];

/** The source of a CopyObject, from its `x-amz-copy-source` header. */
interface CopySource {
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string | undefined;
}

/** Starts an S3 fake on 127.0.0.1. */
export async function startS3Fake(options: S3FakeOptions = {}): Promise<S3Fake> {
  return new S3Fake(options).listen();
}

/** The S3 fake; see the module comment for what it serves. */
export class S3Fake extends AwsFakeServer {
  private readonly versioned: boolean;
  private readonly strictBuckets: boolean;
  private readonly buckets = new Map<string, Map<string, S3ObjectVersion[]>>();

  constructor(options: S3FakeOptions = {}) {
    super('s3');
    this.versioned = options.versioned ?? true;
    this.strictBuckets = options.buckets !== undefined;
    for (const bucket of options.buckets ?? []) {
      this.createBucket(bucket);
    }
  }

  /** Makes a bucket exist (needed only when the fake was started with a `buckets` list). */
  createBucket(bucket: string): this {
    if (!this.buckets.has(bucket)) {
      this.buckets.set(bucket, new Map());
    }
    return this;
  }

  /** Stores an object as a PutObject would (to seed state); returns the new version. */
  put(bucket: string, key: string, body: string | Uint8Array, options: S3PutOptions = {}): S3ObjectVersion {
    return this.store(this.bucketOrThrow(bucket), {
      bucket,
      key,
      body: Buffer.from(body),
      contentType: options.contentType ?? 'binary/octet-stream',
      metadata: options.metadata ?? {},
      checksums: {},
      storedHeaders: {},
    });
  }

  /** The current version of an object, or `undefined` when there is none or it is deleted. */
  get(bucket: string, key: string): S3ObjectVersion | undefined {
    const current = this.buckets.get(bucket)?.get(key)?.at(-1);
    return current === undefined || current.isDeleteMarker ? undefined : current;
  }

  /** Every version of an object, delete markers included, oldest first. */
  versions(bucket: string, key: string): S3ObjectVersion[] {
    return [...(this.buckets.get(bucket)?.get(key) ?? [])];
  }

  /** The current objects (of one bucket, or all), ordered by bucket then key (UTF-8 byte order, as S3 lists). */
  objects(bucket?: string): S3ObjectVersion[] {
    const found: S3ObjectVersion[] = [];
    for (const [name, keys] of [...this.buckets.entries()].sort(([a], [b]) => compareKeys(a, b))) {
      if (bucket !== undefined && name !== bucket) {
        continue;
      }
      for (const key of [...keys.keys()].sort(compareKeys)) {
        const current = this.get(name, key);
        if (current !== undefined) {
          found.push(current);
        }
      }
    }
    return found;
  }

  protected override defaultFailure(): { status: number; code: string; message: string } {
    return {
      status: 500,
      code: 'InternalError',
      message: 'We encountered an internal error. Please try again.',
    };
  }

  protected override errorResponse(request: FakeRequest, error: FakeServiceError): FakeResponse {
    const requestId = newRequestId();
    const fields = Object.entries(error.fields)
      .map(([name, value]) => `<${name}>${xmlEscape(value)}</${name}>`)
      .join('');
    return {
      status: error.status,
      headers: {
        ...(request.method === 'HEAD' ? {} : { 'content-type': 'application/xml' }),
        'x-amz-request-id': requestId,
        'x-amz-id-2': hostId(),
        ...error.headers,
      },
      body:
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Error><Code>${xmlEscape(error.code)}</Code><Message>${xmlEscape(error.message)}</Message>${fields}` +
        `<RequestId>${requestId}</RequestId><HostId>${hostId()}</HostId></Error>`,
    };
  }

  protected override route(request: FakeRequest): Routed {
    const unknown = (reason: string, status: 400 | 501 = 501): Routed => ({
      kind: 'unknown',
      reason,
      status,
      code: status === 501 ? 'NotImplemented' : 'InvalidRequest',
    });
    const rest = request.path.slice(1);
    const slash = rest.indexOf('/');
    let bucket: string;
    let key: string;
    try {
      bucket = decodeURIComponent(slash === -1 ? rest : rest.slice(0, slash));
      key = slash === -1 ? '' : decodeURIComponent(rest.slice(slash + 1));
    } catch {
      return unknown(`path ${request.path} is not valid percent-encoding`, 400);
    }
    if (bucket === '') {
      return unknown(`${request.method} / (service-level call) is not served`);
    }
    const queryKeys = [...request.query.keys()];

    if (key === '') {
      if (request.method === 'GET' && request.query.get('list-type') === '2') {
        const extra = queryKeys.filter((name) => !listQueryKeys.has(name));
        if (extra.length > 0) {
          return unknown(`ListObjectsV2 with unsupported parameter(s) ${extra.join(', ')}`);
        }
        const input = { bucket, ...Object.fromEntries(request.query) };
        return {
          kind: 'operation',
          operation: 'ListObjectsV2',
          input,
          run: () => this.listObjectsV2(bucket, request),
        };
      }
      return unknown(`bucket-level ${request.method} ${request.url} is not served`);
    }

    const extra = queryKeys.filter((name) => !objectQueryKeys.has(name));
    if (extra.length > 0) {
      return unknown(`${request.method} on an object with unsupported parameter(s) ${extra.join(', ')}`);
    }
    const unsupported = unsupportedHeaders.filter((name) => request.headers[name] !== undefined);
    if (unsupported.length > 0) {
      return unknown(`${request.method} on an object with unsupported header(s) ${unsupported.join(', ')}`);
    }
    const versionId = request.query.get('versionId') ?? undefined;
    const input = { bucket, key, ...(versionId === undefined ? {} : { versionId }) };
    const copyHeaders = copySourceHeaders.filter((name) => request.headers[name] !== undefined);
    if (
      copyHeaders.length > 0 &&
      (request.method !== 'PUT' || request.headers['x-amz-copy-source'] === undefined)
    ) {
      return unknown(
        `${request.method} with ${copyHeaders.join(', ')} but no copy (PUT with x-amz-copy-source)`,
      );
    }
    switch (request.method) {
      case 'PUT': {
        const copying = request.headers['x-amz-copy-source'] !== undefined;
        const operation = copying ? 'CopyObject' : 'PutObject';
        const ifNoneMatch = request.headers['if-none-match'];
        const ifMatch = request.headers['if-match'];
        if (versionId !== undefined) {
          return unknown(`${operation} with a versionId is not an S3 call`, 400);
        }
        if (ifNoneMatch !== undefined && ifNoneMatch !== '*') {
          // S3 accepts only `*` here; an entity tag would ask for semantics S3 does not offer on writes.
          return unknown(`${operation} with If-None-Match: ${ifNoneMatch} (only * is served)`);
        }
        if (ifMatch !== undefined && ifNoneMatch !== undefined) {
          return unknown(`${operation} with both If-Match and If-None-Match`);
        }
        if (ifMatch?.trim() === '*') {
          return unknown(`${operation} with If-Match: * (only an entity tag is served)`);
        }
        if (copying) {
          const source = parseCopySource(request.headers['x-amz-copy-source'] ?? '');
          if (typeof source === 'string') {
            return unknown(`CopyObject with x-amz-copy-source ${source}`, 400);
          }
          return {
            kind: 'operation',
            operation: 'CopyObject',
            input: { ...input, copySource: source },
            run: () => this.copyObject(bucket, key, source, request),
          };
        }
        return {
          kind: 'operation',
          operation: 'PutObject',
          input,
          run: () => this.putObject(bucket, key, request),
        };
      }
      case 'GET':
        return {
          kind: 'operation',
          operation: 'GetObject',
          input,
          run: () => this.readObject(bucket, key, versionId, request, true),
        };
      case 'HEAD':
        return {
          kind: 'operation',
          operation: 'HeadObject',
          input,
          run: () => this.readObject(bucket, key, versionId, request, false),
        };
      case 'DELETE': {
        const ifMatch = request.headers['if-match'];
        if (request.headers['if-none-match'] !== undefined) {
          return unknown('DeleteObject with If-None-Match (S3 conditions a delete with If-Match only)');
        }
        if (ifMatch !== undefined && versionId !== undefined) {
          // As measured on S3 (and reported by LocalStack): a versionId with If-Match is 501 NotImplemented.
          return unknown('DeleteObject with both a versionId and If-Match (S3 answers 501 NotImplemented)');
        }
        return {
          kind: 'operation',
          operation: 'DeleteObject',
          input: { ...input, ...(ifMatch === undefined ? {} : { ifMatch }) },
          run: () => this.deleteObject(bucket, key, versionId, ifMatch),
        };
      }
      default:
        return unknown(`${request.method} on an object is not served`);
    }
  }

  private putObject(bucket: string, key: string, request: FakeRequest): FakeResponse {
    const keys = this.bucketOrThrow(bucket);
    const { payload, trailers, encodings } = decodeBody(request);
    const checksums = verifyChecksums(request, payload, trailers);

    checkWritePreconditions(keys, key, request);

    const storedHeaders: Record<string, string> = {};
    for (const name of storedHeaderNames) {
      const value = name === 'content-encoding' ? encodings : request.headers[name];
      if (value !== undefined && value !== '') {
        storedHeaders[name] = value;
      }
    }
    const version = this.store(keys, {
      bucket,
      key,
      body: payload,
      contentType: request.headers['content-type'] ?? 'binary/octet-stream',
      metadata: metadataOf(request.headers),
      checksums,
      storedHeaders,
    });
    return {
      status: 200,
      headers: {
        ...commonHeaders(),
        etag: version.etag,
        ...(version.versionId === undefined ? {} : { 'x-amz-version-id': version.versionId }),
        ...checksumHeaders(version),
      },
    };
  }

  private copyObject(bucket: string, key: string, source: CopySource, request: FakeRequest): FakeResponse {
    const keys = this.bucketOrThrow(bucket);
    if (request.body.length > 0) {
      throw new FakeServiceError(
        400,
        'InvalidRequest',
        'The request included a body. Requests of this type must not include a non-empty body.',
      );
    }
    const directive = (request.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
    if (directive !== 'COPY' && directive !== 'REPLACE') {
      throw new FakeServiceError(400, 'InvalidArgument', 'Unknown metadata directive.', {
        fields: { ArgumentName: 'x-amz-metadata-directive', ArgumentValue: directive },
      });
    }
    const history = this.bucketOrThrow(source.bucket).get(source.key) ?? [];
    let from: S3ObjectVersion | undefined;
    if (source.versionId === undefined) {
      from = history.at(-1);
      if (from === undefined || from.isDeleteMarker) {
        throw noSuchKey(source.key);
      }
    } else {
      from = history.find((candidate) => (candidate.versionId ?? 'null') === source.versionId);
      if (from === undefined) {
        throw new FakeServiceError(404, 'NoSuchVersion', 'The specified version does not exist.', {
          fields: { Key: source.key, VersionId: source.versionId },
        });
      }
      if (from.isDeleteMarker) {
        throw new FakeServiceError(
          400,
          'InvalidRequest',
          'The source of a copy request may not specifically refer to a delete marker by version id.',
        );
      }
    }

    // The source's conditions, then the destination's, as S3 names them in the error's Condition.
    const sourceIfMatch = request.headers['x-amz-copy-source-if-match'];
    if (sourceIfMatch !== undefined && !etagMatches(sourceIfMatch, from.etag)) {
      throw preconditionFailed('x-amz-copy-source-If-Match');
    }
    const sourceIfNoneMatch = request.headers['x-amz-copy-source-if-none-match'];
    if (sourceIfNoneMatch !== undefined && etagMatches(sourceIfNoneMatch, from.etag)) {
      throw preconditionFailed('x-amz-copy-source-If-None-Match');
    }
    checkWritePreconditions(keys, key, request);
    if (
      source.bucket === bucket &&
      source.key === key &&
      source.versionId === undefined &&
      directive === 'COPY'
    ) {
      throw new FakeServiceError(
        400,
        'InvalidRequest',
        "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
      );
    }

    const algorithm = request.headers['x-amz-checksum-algorithm']?.toLowerCase();
    let checksums: Partial<Record<ChecksumName, string>> = from.checksums;
    if (algorithm !== undefined) {
      if (!(checksumNames as readonly string[]).includes(algorithm)) {
        throw new FakeServiceError(
          400,
          'InvalidRequest',
          `Checksum algorithm ${algorithm} is not supported.`,
        );
      }
      checksums = { [algorithm]: checksum(algorithm as ChecksumName, from.body) };
    }
    const replaced: Record<string, string> = {};
    for (const name of storedHeaderNames) {
      const value = request.headers[name];
      if (value !== undefined && value !== '') {
        replaced[name] = value;
      }
    }
    const version = this.store(keys, {
      bucket,
      key,
      body: from.body,
      checksums,
      ...(directive === 'REPLACE'
        ? {
            contentType: request.headers['content-type'] ?? 'binary/octet-stream',
            metadata: metadataOf(request.headers),
            storedHeaders: replaced,
          }
        : { contentType: from.contentType, metadata: from.metadata, storedHeaders: from.storedHeaders }),
    });
    const checksumElements = Object.keys(version.checksums).map((name) => {
      const element = `Checksum${name.toUpperCase()}`;
      return `<${element}>${xmlEscape(version.checksums[name as ChecksumName] ?? '')}</${element}>`;
    });
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<LastModified>${version.lastModified.toISOString()}</LastModified>` +
      `<ETag>${xmlEscape(version.etag)}</ETag>` +
      checksumElements.join('') +
      (checksumElements.length > 0 ? '<ChecksumType>FULL_OBJECT</ChecksumType>' : '') +
      '</CopyObjectResult>';
    return {
      status: 200,
      headers: {
        ...commonHeaders(),
        'content-type': 'application/xml',
        ...(version.versionId === undefined ? {} : { 'x-amz-version-id': version.versionId }),
        ...(from.versionId === undefined ? {} : { 'x-amz-copy-source-version-id': from.versionId }),
      },
      body,
    };
  }

  private readObject(
    bucket: string,
    key: string,
    versionId: string | undefined,
    request: FakeRequest,
    withBody: boolean,
  ): FakeResponse {
    const history = this.bucketOrThrow(bucket).get(key) ?? [];
    let version: S3ObjectVersion | undefined;
    if (versionId === undefined) {
      version = history.at(-1);
      if (version === undefined) {
        throw noSuchKey(key);
      }
      if (version.isDeleteMarker) {
        throw noSuchKey(key, deleteMarkerHeaders(version));
      }
    } else {
      version = history.find((candidate) => (candidate.versionId ?? 'null') === versionId);
      if (version === undefined) {
        throw new FakeServiceError(404, 'NoSuchVersion', 'The specified version does not exist.', {
          fields: { Key: key, VersionId: versionId },
        });
      }
      if (version.isDeleteMarker) {
        throw new FakeServiceError(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
          {
            headers: deleteMarkerHeaders(version),
          },
        );
      }
    }

    const ifMatch = request.headers['if-match'];
    if (ifMatch !== undefined && !etagMatches(ifMatch, version.etag)) {
      throw preconditionFailed('If-Match');
    }
    const headers: Record<string, string> = {
      ...commonHeaders(),
      'content-type': version.contentType,
      'content-length': String(version.body.length),
      etag: version.etag,
      'last-modified': version.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
      ...(version.versionId === undefined ? {} : { 'x-amz-version-id': version.versionId }),
      ...version.storedHeaders,
      ...Object.fromEntries(
        Object.entries(version.metadata).map(([name, value]) => [`x-amz-meta-${name}`, value]),
      ),
      ...(request.headers['x-amz-checksum-mode']?.toUpperCase() === 'ENABLED'
        ? checksumHeaders(version)
        : {}),
    };
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, version.etag)) {
      const { 'content-length': _length, 'content-type': _type, ...rest } = headers;
      return { status: 304, headers: rest };
    }
    return withBody ? { status: 200, headers, body: version.body } : { status: 200, headers };
  }

  private deleteObject(
    bucket: string,
    key: string,
    versionId: string | undefined,
    ifMatch: string | undefined,
  ): FakeResponse {
    const keys = this.bucketOrThrow(bucket);
    const history = keys.get(key) ?? [];
    if (ifMatch !== undefined) {
      // As measured on S3: If-Match (an entity tag or `*`) on a key with no current object (none, or a delete marker
      // over older versions) is 404 NoSuchKey; on a current object whose ETag differs, 412.
      const current = history.at(-1);
      if (current === undefined || current.isDeleteMarker) {
        throw noSuchKey(key);
      }
      if (ifMatch.trim() !== '*' && !etagMatches(ifMatch, current.etag)) {
        throw preconditionFailed('If-Match');
      }
    }
    if (versionId !== undefined) {
      const index = history.findIndex((candidate) => (candidate.versionId ?? 'null') === versionId);
      const removed = index === -1 ? undefined : history.splice(index, 1)[0];
      if (history.length === 0) {
        keys.delete(key);
      }
      return {
        status: 204,
        headers: {
          ...commonHeaders(),
          'x-amz-version-id': versionId,
          ...(removed?.isDeleteMarker === true ? { 'x-amz-delete-marker': 'true' } : {}),
        },
      };
    }
    if (!this.versioned) {
      keys.delete(key);
      return { status: 204, headers: commonHeaders() };
    }
    const marker: S3ObjectVersion = {
      bucket,
      key,
      versionId: newVersionId(),
      isDeleteMarker: true,
      body: Buffer.alloc(0),
      text: '',
      etag: '',
      contentType: '',
      metadata: {},
      checksums: {},
      storedHeaders: {},
      lastModified: new Date(),
    };
    keys.set(key, [...history, marker]);
    return { status: 204, headers: { ...commonHeaders(), ...deleteMarkerHeaders(marker) } };
  }

  private listObjectsV2(bucket: string, request: FakeRequest): FakeResponse {
    const keys = this.bucketOrThrow(bucket);
    const prefix = request.query.get('prefix') ?? '';
    const delimiter = request.query.get('delimiter') ?? '';
    const startAfter = request.query.get('start-after') ?? undefined;
    const token = request.query.get('continuation-token') ?? undefined;
    const maxKeysText = request.query.get('max-keys') ?? '1000';
    if (!/^\d+$/.test(maxKeysText)) {
      throw new FakeServiceError(
        400,
        'InvalidArgument',
        'Provided max-keys not an integer or within integer range',
        {
          fields: { ArgumentName: 'max-keys', ArgumentValue: maxKeysText },
        },
      );
    }
    const maxKeys = Math.min(Number(maxKeysText), 1000);
    let after = startAfter;
    if (token !== undefined) {
      after = Buffer.from(token, 'base64url').toString('utf8');
      if (token === '' || Buffer.from(after, 'utf8').toString('base64url') !== token) {
        throw new FakeServiceError(400, 'InvalidArgument', 'The continuation token provided is incorrect', {
          fields: { ArgumentName: 'continuation-token' },
        });
      }
    }

    // Entries are keys, or common prefixes folding every key under them; both count toward max-keys.
    const entries: { kind: 'key' | 'prefix'; value: string }[] = [];
    const seenPrefixes = new Set<string>();
    for (const key of [...keys.keys()].sort(compareKeys)) {
      if (!key.startsWith(prefix) || this.get(bucket, key) === undefined) {
        continue;
      }
      const rest = key.slice(prefix.length);
      const at = delimiter === '' ? -1 : rest.indexOf(delimiter);
      if (at === -1) {
        entries.push({ kind: 'key', value: key });
      } else {
        const common = prefix + rest.slice(0, at + delimiter.length);
        if (!seenPrefixes.has(common)) {
          seenPrefixes.add(common);
          entries.push({ kind: 'prefix', value: common });
        }
      }
    }
    const remaining =
      after === undefined ? entries : entries.filter((entry) => compareKeys(entry.value, after) > 0);
    const page = remaining.slice(0, maxKeys);
    const truncated = remaining.length > page.length;
    const last = page.at(-1);

    const contents = page
      .filter((entry) => entry.kind === 'key')
      .map((entry) => {
        const version = this.get(bucket, entry.value) as S3ObjectVersion;
        const algorithms = Object.keys(version.checksums).map(
          (name) => `<ChecksumAlgorithm>${name.toUpperCase()}</ChecksumAlgorithm>`,
        );
        return (
          `<Contents><Key>${xmlEscape(version.key)}</Key>` +
          `<LastModified>${version.lastModified.toISOString()}</LastModified>` +
          `<ETag>${xmlEscape(version.etag)}</ETag>${algorithms.join('')}` +
          `${algorithms.length > 0 ? '<ChecksumType>FULL_OBJECT</ChecksumType>' : ''}` +
          `<Size>${version.body.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`
        );
      });
    const commonPrefixes = page
      .filter((entry) => entry.kind === 'prefix')
      .map((entry) => `<CommonPrefixes><Prefix>${xmlEscape(entry.value)}</Prefix></CommonPrefixes>`);
    const optional = (name: string, value: string | undefined): string =>
      value === undefined ? '' : `<${name}>${xmlEscape(value)}</${name}>`;
    const body =
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix>` +
      optional('Delimiter', delimiter === '' ? undefined : delimiter) +
      `<MaxKeys>${maxKeys}</MaxKeys><KeyCount>${page.length}</KeyCount><IsTruncated>${truncated}</IsTruncated>` +
      optional('ContinuationToken', token) +
      optional(
        'NextContinuationToken',
        truncated && last !== undefined ? Buffer.from(last.value).toString('base64url') : undefined,
      ) +
      optional('StartAfter', startAfter) +
      contents.join('') +
      commonPrefixes.join('') +
      '</ListBucketResult>';
    return { status: 200, headers: { ...commonHeaders(), 'content-type': 'application/xml' }, body };
  }

  private bucketOrThrow(bucket: string): Map<string, S3ObjectVersion[]> {
    let keys = this.buckets.get(bucket);
    if (keys === undefined) {
      if (this.strictBuckets) {
        throw new FakeServiceError(404, 'NoSuchBucket', 'The specified bucket does not exist', {
          fields: { BucketName: bucket },
        });
      }
      keys = new Map();
      this.buckets.set(bucket, keys);
    }
    return keys;
  }

  private store(
    keys: Map<string, S3ObjectVersion[]>,
    fields: Omit<S3ObjectVersion, 'versionId' | 'isDeleteMarker' | 'etag' | 'lastModified' | 'text'>,
  ): S3ObjectVersion {
    const version: S3ObjectVersion = {
      ...fields,
      text: fields.body.toString('utf8'),
      versionId: this.versioned ? newVersionId() : undefined,
      isDeleteMarker: false,
      etag: `"${createHash('md5').update(fields.body).digest('hex')}"`,
      lastModified: new Date(),
    };
    // An unversioned bucket keeps only the latest write.
    keys.set(fields.key, this.versioned ? [...(keys.get(fields.key) ?? []), version] : [version]);
    return version;
  }
}

/** Undoes `aws-chunked` framing when the request uses it. */
function decodeBody(request: FakeRequest): {
  payload: Buffer;
  trailers: Readonly<Record<string, string>>;
  encodings: string | undefined;
} {
  const encodings = (request.headers['content-encoding'] ?? '')
    .split(',')
    .map((encoding) => encoding.trim())
    .filter((encoding) => encoding !== '');
  const sha256Header = request.headers['x-amz-content-sha256'] ?? '';
  if (!encodings.includes('aws-chunked')) {
    if (sha256Header.startsWith('STREAMING-')) {
      throw new FakeServiceError(
        400,
        'InvalidRequest',
        `x-amz-content-sha256 ${sha256Header} without aws-chunked`,
      );
    }
    if (/^[0-9a-f]{64}$/.test(sha256Header)) {
      const actual = createHash('sha256').update(request.body).digest('hex');
      if (actual !== sha256Header) {
        throw new FakeServiceError(
          400,
          'XAmzContentSHA256Mismatch',
          "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
      }
    }
    return { payload: request.body, trailers: {}, encodings: encodings.join(',') || undefined };
  }
  let decoded: ReturnType<typeof decodeAwsChunked>;
  try {
    decoded = decodeAwsChunked(request.body);
  } catch (error) {
    if (error instanceof ChunkedBodyError) {
      throw new FakeServiceError(400, 'IncompleteBody', `aws-chunked body is malformed: ${error.message}`);
    }
    throw error;
  }
  const declared = request.headers['x-amz-decoded-content-length'];
  if (declared === undefined || Number(declared) !== decoded.payload.length) {
    throw new FakeServiceError(
      400,
      'IncompleteBody',
      `x-amz-decoded-content-length ${declared ?? '(none)'} but the chunks hold ${decoded.payload.length} bytes`,
    );
  }
  const declaredTrailers = (request.headers['x-amz-trailer'] ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== '');
  const missing = declaredTrailers.filter((name) => decoded.trailers[name] === undefined);
  if (missing.length > 0) {
    throw new FakeServiceError(
      400,
      'MalformedTrailerError',
      `The request contained trailing data that was not well-formed: missing ${missing.join(', ')}`,
    );
  }
  const rest = encodings.filter((encoding) => encoding !== 'aws-chunked');
  return { payload: decoded.payload, trailers: decoded.trailers, encodings: rest.join(',') || undefined };
}

/** Checks Content-MD5 and every `x-amz-checksum-*` header or trailer against the payload; returns the checksums. */
function verifyChecksums(
  request: FakeRequest,
  payload: Buffer,
  trailers: Readonly<Record<string, string>>,
): Partial<Record<ChecksumName, string>> {
  const md5 = request.headers['content-md5'];
  if (md5 !== undefined && md5 !== createHash('md5').update(payload).digest('base64')) {
    throw new FakeServiceError(
      400,
      'BadDigest',
      'The Content-MD5 you specified did not match what we received.',
    );
  }
  const verified: Partial<Record<ChecksumName, string>> = {};
  for (const name of checksumNames) {
    const claimed = request.headers[`x-amz-checksum-${name}`] ?? trailers[`x-amz-checksum-${name}`];
    if (claimed === undefined) {
      continue;
    }
    if (claimed !== checksum(name, payload)) {
      throw new FakeServiceError(
        400,
        'BadDigest',
        `The ${name.toUpperCase()} you specified did not match the calculated checksum.`,
      );
    }
    verified[name] = claimed;
  }
  const announced = request.headers['x-amz-sdk-checksum-algorithm']?.toLowerCase();
  if (announced !== undefined && verified[announced as ChecksumName] === undefined) {
    throw new FakeServiceError(
      400,
      'InvalidRequest',
      `x-amz-sdk-checksum-algorithm ${announced} but no x-amz-checksum-${announced} header or trailer`,
    );
  }
  return verified;
}

/**
 * Reads `x-amz-copy-source`: `[/]<bucket>/<key>[?versionId=<id>]`, URL-encoded as the S3 API asks. Returns why
 * it cannot when it cannot (an access point ARN, no key, a value that is not URL-encoded, another parameter).
 */
function parseCopySource(value: string): CopySource | string {
  if (!/^[\x21-\x7e]+$/.test(value)) {
    return `${JSON.stringify(value)}: not URL-encoded (spaces and non-ASCII characters must be percent-encoded)`;
  }
  const question = value.indexOf('?');
  const path = (question === -1 ? value : value.slice(0, question)).replace(/^\//, '');
  const query = new URLSearchParams(question === -1 ? '' : value.slice(question + 1));
  const extra = [...query.keys()].filter((name) => name !== 'versionId');
  if (extra.length > 0) {
    return `${value}: unsupported parameter(s) ${extra.join(', ')}`;
  }
  if (path.startsWith('arn:') || path.startsWith('arn%3A') || path.startsWith('arn%3a')) {
    return `${value}: access point and Outposts ARNs are not served`;
  }
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) {
    return `${value}: it must name the source bucket and key, bucket/key`;
  }
  try {
    return {
      bucket: decodeURIComponent(path.slice(0, slash)),
      key: decodeURIComponent(path.slice(slash + 1)),
      versionId: query.get('versionId') ?? undefined,
    };
  } catch {
    return `${value}: not valid percent-encoding`;
  }
}

/**
 * The write conditions of PutObject and of CopyObject's destination: `If-None-Match: *` fails (412) when a current
 * object exists; `If-Match` fails with 404 when there is none (or a delete marker), with 412 when its ETag differs.
 */
function checkWritePreconditions(
  keys: ReadonlyMap<string, readonly S3ObjectVersion[]>,
  key: string,
  request: FakeRequest,
): void {
  const current = keys.get(key)?.at(-1);
  const exists = current !== undefined && !current.isDeleteMarker;
  if (request.headers['if-none-match'] === '*' && exists) {
    throw preconditionFailed('If-None-Match');
  }
  const ifMatch = request.headers['if-match'];
  if (ifMatch !== undefined) {
    // S3: "If there's no current object version with the same name, or if the current object version is a
    // delete marker, the operation fails with a 404 Not Found error."
    if (!exists) {
      throw noSuchKey(key);
    }
    if (!etagMatches(ifMatch, current.etag)) {
      throw preconditionFailed('If-Match');
    }
  }
}

function checksumHeaders(version: S3ObjectVersion): Record<string, string> {
  const entries = Object.entries(version.checksums).map(([name, value]) => [`x-amz-checksum-${name}`, value]);
  return entries.length === 0 ? {} : { ...Object.fromEntries(entries), 'x-amz-checksum-type': 'FULL_OBJECT' };
}

function metadataOf(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter(([name]) => name.startsWith('x-amz-meta-'))
      .map(([name, value]) => [name.slice('x-amz-meta-'.length), value]),
  );
}

function deleteMarkerHeaders(marker: S3ObjectVersion): Record<string, string> {
  return {
    'x-amz-delete-marker': 'true',
    ...(marker.versionId === undefined ? {} : { 'x-amz-version-id': marker.versionId }),
  };
}

function commonHeaders(): Record<string, string> {
  return {
    'x-amz-request-id': newRequestId(),
    'x-amz-id-2': hostId(),
    'x-amz-server-side-encryption': 'AES256',
  };
}

function preconditionFailed(condition: string): FakeServiceError {
  return new FakeServiceError(
    412,
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
    {
      fields: { Condition: condition },
    },
  );
}

function noSuchKey(key: string, headers: Record<string, string> = {}): FakeServiceError {
  return new FakeServiceError(404, 'NoSuchKey', 'The specified key does not exist.', {
    headers,
    fields: { Key: key },
  });
}

function etagMatches(condition: string, etag: string): boolean {
  const normalize = (value: string): string =>
    value
      .trim()
      .replace(/^W\//, '')
      .replace(/^"(.*)"$/, '$1');
  return condition.split(',').some((candidate) => normalize(candidate) === normalize(etag));
}

/** S3 lists keys in UTF-8 byte order, which differs from JavaScript's UTF-16 order above U+FFFF. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function newVersionId(): string {
  return randomBytes(24).toString('base64url');
}

function hostId(): string {
  return randomBytes(32).toString('base64');
}
