import { describe, expect, it } from 'vitest';
import { ChunkedBodyError, checksum, crc32c, crc64Nvme, decodeAwsChunked } from './s3-wire.js';

const check = Buffer.from('123456789');

describe('checksums', () => {
  it('matches the catalogued check values of CRC-32C and CRC-64/NVME', () => {
    expect(crc32c(check)).toBe(0xe3069283);
    expect(crc64Nvme(check)).toBe(0xae8b14860a799888n);
  });

  it('writes digests big-endian in base64, as the x-amz-checksum-* headers carry them', () => {
    expect(checksum('crc32', check)).toBe(Buffer.from('cbf43926', 'hex').toString('base64'));
    expect(checksum('crc32c', check)).toBe(Buffer.from('e3069283', 'hex').toString('base64'));
    expect(checksum('crc64nvme', check)).toBe(Buffer.from('ae8b14860a799888', 'hex').toString('base64'));
    expect(checksum('sha256', Buffer.alloc(0))).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });
});

describe('decodeAwsChunked', () => {
  it('joins unsigned chunks and reads the trailers', () => {
    const body = Buffer.from('3\r\nabc\r\n2\r\nde\r\n0\r\nx-amz-checksum-crc32:ABCD==\r\n\r\n');
    expect(decodeAwsChunked(body)).toEqual({
      payload: Buffer.from('abcde'),
      trailers: { 'x-amz-checksum-crc32': 'ABCD==' },
      signedChunks: false,
    });
  });

  it('accepts signed chunks (chunk-signature extensions)', () => {
    const body = Buffer.from(
      `5;chunk-signature=${'a'.repeat(64)}\r\nhello\r\n0;chunk-signature=${'b'.repeat(64)}\r\n\r\n`,
    );
    const decoded = decodeAwsChunked(body);
    expect(decoded.payload.toString()).toBe('hello');
    expect(decoded.signedChunks).toBe(true);
    expect(decoded.trailers).toEqual({});
  });

  it('rejects broken framing', () => {
    expect(() => decodeAwsChunked(Buffer.from('zz\r\nabc\r\n0\r\n\r\n'))).toThrow(ChunkedBodyError);
    expect(() => decodeAwsChunked(Buffer.from('9\r\nabc\r\n0\r\n\r\n'))).toThrow(/runs past the end/);
    expect(() => decodeAwsChunked(Buffer.from('3\r\nabcX\r\n0\r\n\r\n'))).toThrow(/missing CRLF/);
    expect(() => decodeAwsChunked(Buffer.from('3\r\nabc\r\n0\r\n\r\ntrailing'))).toThrow(/after the end/);
  });
});
