/**
 * Publishing on several channels at once: a notice counts as published only when every channel took it.
 */
import { describeError, PublishError } from '../commons/errors.js';
import type { ChangePublisher, Notice } from './ports.js';

/** A publisher that publishes on all of `channels` and fails if any of them failed. */
export function fanOut(channels: readonly ChangePublisher[]): ChangePublisher {
  return {
    async publish(notice: Notice): Promise<void> {
      const outcomes = await Promise.allSettled(channels.map((channel) => channel.publish(notice)));
      const failures = outcomes.filter(
        (outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected',
      );
      if (failures.length === 0) return;
      const [first] = failures;
      throw new PublishError(failures.map((failure) => describeError(failure.reason)).join('; '), {
        cause: first?.reason,
      });
    },
  };
}
