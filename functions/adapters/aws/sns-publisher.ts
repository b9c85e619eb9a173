/**
 * Notices for people: one SNS message per notice, with a short subject, a readable body and the
 * attributes subscription filter policies match on.
 */
// A type import only: the SDK module is loaded by the first notice (see wiring.ts), not at cold start.
import type { SNSClient } from '@aws-sdk/client-sns';
import { abortedBy, describeError, PublishError } from '../../commons/errors.js';
import { snsAttributes, snsBody, snsSubject } from '../../core/messages.js';
import type { CallOptions, Notice, NoticeChannel } from '../../core/ports.js';

/** Publishes notices to one SNS topic. */
export class SnsPublisher implements NoticeChannel {
  readonly name = 'sns';
  readonly #client: SNSClient;
  readonly #topicArn: string;

  constructor(client: SNSClient, topicArn: string) {
    this.#client = client;
    this.#topicArn = topicArn;
  }

  /** @throws PublishError when SNS refuses the message. */
  async publish(notice: Notice, options: CallOptions = {}): Promise<void> {
    const abortSignal = options.signal;
    const { PublishCommand } = await import('@aws-sdk/client-sns');
    try {
      await this.#client.send(
        new PublishCommand({
          TopicArn: this.#topicArn,
          Subject: snsSubject(notice),
          Message: snsBody(notice),
          MessageAttributes: snsAttributes(notice),
        }),
        { abortSignal },
      );
    } catch (error) {
      const cause = abortedBy(abortSignal, error);
      throw new PublishError(`SNS publish to ${this.#topicArn} failed: ${describeError(cause)}`, {
        cause,
      });
    }
  }
}
