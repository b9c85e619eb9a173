import { describe, expect, it } from 'vitest';
import { PublishError } from '../../functions/commons/errors.js';
import { fanOut } from '../../functions/core/fan-out.js';
import type { ChangePublisher, Notice } from '../../functions/core/ports.js';

const notice: Notice = {
  kind: 'failed',
  runId: 'r',
  principal: 'p',
  reason: 'x',
  errorName: 'Error',
  detectedAt: '2025-06-01T12:00:00.000Z',
};

function channel(outcome: 'ok' | Error, seen: Notice[]): ChangePublisher {
  return {
    publish: async (published) => {
      seen.push(published);
      if (outcome !== 'ok') throw outcome;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<PublishError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(PublishError);
    return error as PublishError;
  }
  throw new Error('expected a rejection');
}

describe('fanOut', () => {
  it('publishes the notice on every channel', async () => {
    const a: Notice[] = [];
    const b: Notice[] = [];
    await fanOut([channel('ok', a), channel('ok', b)]).publish(notice);
    expect(a).toEqual([notice]);
    expect(b).toEqual([notice]);
  });

  it('fails when one channel fails, after offering the notice to every channel', async () => {
    const a: Notice[] = [];
    const b: Notice[] = [];
    const cause = new Error('SNS down');
    const error = await rejection(fanOut([channel(cause, a), channel('ok', b)]).publish(notice));
    expect(error.message).toBe('SNS down');
    expect(error.cause).toBe(cause);
    expect(b).toEqual([notice]);
  });

  it('fails when the second channel fails', async () => {
    const error = await rejection(
      fanOut([channel('ok', []), channel(new Error('EventBridge down'), [])]).publish(notice),
    );
    expect(error.message).toBe('EventBridge down');
  });

  it('names every failure, and keeps the first as the cause', async () => {
    const first = new Error('SNS down');
    const error = await rejection(
      fanOut([channel(first, []), channel(new Error('EventBridge down'), [])]).publish(notice),
    );
    expect(error.message).toBe('SNS down; EventBridge down');
    expect(error.cause).toBe(first);
    expect(error.name).toBe('PublishError');
  });

  it('succeeds with no channel at all', async () => {
    await expect(fanOut([]).publish(notice)).resolves.toBeUndefined();
  });
});
