import { describe, expect, it } from 'vitest';
import { StorageError } from '../../functions/commons/errors.js';
import { parseSnapshot, serialize } from '../../functions/core/records.js';
import { snapshotOf } from './support/fakes.js';

/** The StorageError parsing `text` fails with. */
function refusal(text: string, principal = 'p'): StorageError {
  try {
    parseSnapshot(text, principal, 's3://b/snapshots/p.json');
  } catch (error) {
    expect(error).toBeInstanceOf(StorageError);
    return error as StorageError;
  }
  throw new Error('expected parseSnapshot to throw');
}

describe('parseSnapshot', () => {
  it('reads back what serialize wrote', () => {
    const snapshot = snapshotOf('p', ['a', 'b'], {
      keys: [
        { name: 'a', firstSeen: 't0', lastSeen: 't1', attributes: { created: 'x' } },
        { name: 'b', firstSeen: 't0', lastSeen: 't1' },
      ],
      pattern: 'a*',
    });
    expect(parseSnapshot(serialize(snapshot), 'p', 'loc')).toStrictEqual(snapshot);
  });

  it('refuses text that is not JSON, keeping the cause', () => {
    const error = refusal('{"schemaVersion":1,');
    expect(error.message).toBe('snapshot s3://b/snapshots/p.json is not valid JSON');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  it('refuses JSON that is not a snapshot, naming the problem and the field', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    const where = 'snapshot s3://b/snapshots/p.json is not a snapshot:';
    expect(refusal(JSON.stringify({ ...valid, schemaVersion: 2 })).message).toBe(
      `${where} invalid_value at schemaVersion`,
    );
    expect(refusal(JSON.stringify({ ...valid, keys: [{ name: '' }] })).message).toBe(
      `${where} too_small at keys.0.name`,
    );
    expect(refusal(JSON.stringify({ ...valid, keyCount: -1 })).message).toBe(
      `${where} too_small at keyCount`,
    );
    expect(refusal(JSON.stringify({ ...valid, pattern: undefined })).message).toBe(
      `${where} invalid_type at pattern`,
    );
    expect(refusal('null').message).toBe(`${where} invalid_type at (root)`);
    expect(refusal('[]').message).toBe(`${where} invalid_type at (root)`);
  });

  it('never echoes values from the file in its message', () => {
    const valid = JSON.parse(serialize(snapshotOf('p', ['a'])));
    const message = refusal(JSON.stringify({ ...valid, runId: { apiKey: 'sk-Leaked-777' } })).message;
    expect(message).not.toContain('sk-Leaked-777');
  });

  it("refuses another principal's snapshot", () => {
    expect(refusal(serialize(snapshotOf('q', ['a']))).message).toBe(
      'snapshot s3://b/snapshots/p.json belongs to another principal',
    );
  });
});

describe('serialize', () => {
  it('writes compact JSON with a final newline', () => {
    expect(serialize({ a: 1, b: ['x'] })).toBe('{"a":1,"b":["x"]}\n');
  });
});
