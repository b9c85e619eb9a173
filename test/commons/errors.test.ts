import { describe, expect, it } from 'vitest';
import {
  AuditRunFailedError,
  ConcurrentWriteError,
  ConfigurationError,
  causeChain,
  describeError,
  InvalidRequestError,
  KeyAuditError,
  PublishError,
  SecretError,
  StorageError,
  TimeBudgetError,
} from '../../functions/commons/errors.js';

describe('the error family', () => {
  const cause = new Error('root cause');

  it.each([
    ['KeyAuditError', new KeyAuditError('m', { cause })],
    ['ConfigurationError', new ConfigurationError('m', { cause })],
    ['ConcurrentWriteError', new ConcurrentWriteError('m', { cause })],
    ['StorageError', new StorageError('m', { cause })],
    ['PublishError', new PublishError('m', { cause })],
    ['TimeBudgetError', new TimeBudgetError('m', { cause })],
    ['InvalidRequestError', new InvalidRequestError('field', 'm', { cause })],
    ['SecretError', new SecretError('secret-id', 'm', { cause })],
  ])('%s is a named KeyAuditError that keeps its cause', (name, error) => {
    expect(error).toBeInstanceOf(KeyAuditError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.message).toBe('m');
    expect(error.cause).toBe(cause);
  });

  it('InvalidRequestError names the field, SecretError the secret', () => {
    expect(new InvalidRequestError('principals', 'm').field).toBe('principals');
    expect(new SecretError('arn:x', 'm').secretId).toBe('arn:x');
  });

  it('AuditRunFailedError lists the failures', () => {
    const error = new AuditRunFailedError(
      'run-7',
      [
        { principal: 'a', reason: 'r1' },
        { principal: 'b "c"', reason: 'r2' },
      ],
      5,
    );
    expect(error).toBeInstanceOf(KeyAuditError);
    expect(error.name).toBe('AuditRunFailedError');
    expect(error.message).toBe('run run-7: 2 of 5 principal(s) failed: "a": r1; "b \\"c\\"": r2');
    expect(error.failures).toEqual([
      { principal: 'a', reason: 'r1' },
      { principal: 'b "c"', reason: 'r2' },
    ]);
  });

  it('AuditRunFailedError keeps names and reasons from BigState on one line (escaped), and exact in `failures`', () => {
    const principal = 'p\u2028\u202eq\r\n';
    const reason = 'walking the keys: BigState said "x\nChange id: chg-forged\u001b[2J"';
    const error = new AuditRunFailedError('run-8', [{ principal, reason }], 1);
    expect(error.message).toBe(
      'run run-8: 1 of 1 principal(s) failed: "p\\u2028\\u202eq\\r\\n": walking the keys: BigState said "x\\nChange id: chg-forged\\u001b[2J"',
    );
    for (const raw of ['\r', '\n', '\u2028', '\u202e', '\u001b']) expect(error.message).not.toContain(raw);
    expect(error.failures).toEqual([{ principal, reason }]);
  });
});

describe('describeError', () => {
  it('is the message of an Error, the text of a string, and nothing of anything else', () => {
    expect(describeError(new TypeError('bad'))).toBe('bad');
    expect(describeError('plain')).toBe('plain');
    expect(describeError({ apiKey: 'sk-do-not-show' })).toBe('unknown error');
    expect(describeError(undefined)).toBe('unknown error');
    expect(describeError(42)).toBe('unknown error');
  });
});

describe('causeChain', () => {
  it('walks the causes outermost first, into an AggregateError’s first error, at most five links', () => {
    const inner = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    const chain = [
      ...causeChain(new Error('outer', { cause: new AggregateError([inner, new Error('other')]) })),
    ];
    expect(chain.map((link) => (link as Error).message)).toEqual(['outer', '', 'refused']);
    let deep: Error = new Error('0');
    for (let level = 1; level < 8; level++) deep = new Error(String(level), { cause: deep });
    expect([...causeChain(deep)].map((link) => (link as Error).message)).toEqual(['7', '6', '5', '4', '3']);
    expect([...causeChain('text')]).toEqual([]);
    expect([...causeChain(null)]).toEqual([]);
  });
});
