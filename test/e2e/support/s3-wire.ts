/**
 * The parts of S3's wire format the SDK's flexible checksums bring: the checksum algorithms S3 accepts and the
 * `aws-chunked` content encoding (with trailing checksums) the SDK uses for streaming bodies.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** The flexible-checksum algorithms of S3, by their header suffix (`x-amz-checksum-<name>`). */
export type ChecksumName = 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256';

/** Every checksum algorithm S3 accepts. */
export const checksumNames: readonly ChecksumName[] = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'];

const crc32cTable = makeCrc32Table(0x82f63b78);
const crc64NvmeTable = makeCrc64Table(0x9a6c9329ac4bc9b5n);

/** The checksum of `body` as S3 writes it: the big-endian digest, base64. */
export function checksum(name: ChecksumName, body: Uint8Array): string {
  switch (name) {
    case 'crc32':
      return uint32Base64(crc32(body));
    case 'crc32c':
      return uint32Base64(crc32c(body));
    case 'crc64nvme': {
      const digest = Buffer.alloc(8);
      digest.writeBigUInt64BE(crc64Nvme(body));
      return digest.toString('base64');
    }
    case 'sha1':
      return createHash('sha1').update(body).digest('base64');
    case 'sha256':
      return createHash('sha256').update(body).digest('base64');
  }
}

/** CRC-32C (Castagnoli), as an unsigned 32-bit number. */
export function crc32c(body: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of body) {
    crc = (crc >>> 8) ^ (crc32cTable[(crc ^ byte) & 0xff] ?? 0);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-64/NVME, the algorithm S3 uses by default for full-object checksums. */
export function crc64Nvme(body: Uint8Array): bigint {
  let crc = 0xffffffffffffffffn;
  for (const byte of body) {
    crc = (crc >> 8n) ^ (crc64NvmeTable[Number((crc ^ BigInt(byte)) & 0xffn)] ?? 0n);
  }
  return crc ^ 0xffffffffffffffffn;
}

function uint32Base64(value: number): string {
  const digest = Buffer.alloc(4);
  digest.writeUInt32BE(value >>> 0);
  return digest.toString('base64');
}

function makeCrc32Table(reflectedPolynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let bit = 0; bit < 8; bit += 1) {
      c = c & 1 ? (c >>> 1) ^ reflectedPolynomial : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
}

function makeCrc64Table(reflectedPolynomial: bigint): bigint[] {
  const table: bigint[] = [];
  for (let n = 0n; n < 256n; n += 1n) {
    let c = n;
    for (let bit = 0; bit < 8; bit += 1) {
      c = c & 1n ? (c >> 1n) ^ reflectedPolynomial : c >> 1n;
    }
    table.push(c);
  }
  return table;
}

/** The payload and trailing headers of an `aws-chunked` body. */
export interface DecodedChunkedBody {
  readonly payload: Buffer;
  /** Trailer names in lower case (e.g. `x-amz-checksum-crc32`). */
  readonly trailers: Readonly<Record<string, string>>;
  /** Whether chunks carried `chunk-signature` extensions (signed streaming). */
  readonly signedChunks: boolean;
}

/** Thrown when an `aws-chunked` body does not follow the format. */
export class ChunkedBodyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkedBodyError';
  }
}

/**
 * Decodes an `aws-chunked` body: `<hex size>[;chunk-signature=...]\r\n<data>\r\n` repeated, a zero-size chunk,
 * then trailer lines `name:value\r\n` and an empty line.
 * @throws ChunkedBodyError when the framing is broken.
 */
export function decodeAwsChunked(body: Buffer): DecodedChunkedBody {
  const parts: Buffer[] = [];
  let offset = 0;
  let signedChunks = false;
  const readLine = (): string => {
    const end = body.indexOf('\r\n', offset, 'latin1');
    if (end === -1) {
      throw new ChunkedBodyError(`missing CRLF after byte ${offset}`);
    }
    const line = body.subarray(offset, end).toString('latin1');
    offset = end + 2;
    return line;
  };
  for (;;) {
    const header = readLine();
    const [sizeText = '', ...extensions] = header.split(';');
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) {
      throw new ChunkedBodyError(`bad chunk size line ${JSON.stringify(header)}`);
    }
    signedChunks ||= extensions.some((extension) => extension.startsWith('chunk-signature='));
    const size = Number.parseInt(sizeText, 16);
    if (size === 0) {
      break;
    }
    if (offset + size + 2 > body.length) {
      throw new ChunkedBodyError(`chunk of ${size} bytes runs past the end of the body`);
    }
    parts.push(body.subarray(offset, offset + size));
    offset += size;
    if (body.subarray(offset, offset + 2).toString('latin1') !== '\r\n') {
      throw new ChunkedBodyError(`missing CRLF after a chunk of ${size} bytes`);
    }
    offset += 2;
  }
  const trailers: Record<string, string> = {};
  // The trailer section ends with an empty line; some encoders omit it when there are no trailers.
  while (offset < body.length) {
    const line = readLine();
    if (line === '') {
      break;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      throw new ChunkedBodyError(`bad trailer line ${JSON.stringify(line)}`);
    }
    trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  if (offset !== body.length) {
    throw new ChunkedBodyError(`${body.length - offset} bytes after the end of the chunked body`);
  }
  return { payload: Buffer.concat(parts), trailers, signedChunks };
}
