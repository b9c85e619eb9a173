/**
 * Notices for machines: one EventBridge event per notice. A failed entry is a failed publish, not silence.
 */
// Type imports only: the SDK module is loaded by the first notice (see wiring.ts), not at cold start.
import type { EventBridgeClient, PutEventsCommandOutput } from '@aws-sdk/client-eventbridge';
import { abortedBy, describeError, PublishError } from '../../commons/errors.js';
import { EVENT_SOURCE, eventParts } from '../../core/messages.js';
import type { CallOptions, Notice, NoticeChannel } from '../../core/ports.js';

/** Publishes notices to one event bus. */
export class EventBridgePublisher implements NoticeChannel {
  readonly name = 'events';
  readonly #client: EventBridgeClient;
  readonly #eventBusName: string;

  constructor(client: EventBridgeClient, eventBusName: string) {
    this.#client = client;
    this.#eventBusName = eventBusName;
  }

  /** @throws PublishError when the call fails or EventBridge refuses the entry. */
  async publish(notice: Notice, options: CallOptions = {}): Promise<void> {
    const abortSignal = options.signal;
    const { detailType, detail } = eventParts(notice);
    const { PutEventsCommand } = await import('@aws-sdk/client-eventbridge');
    let response: PutEventsCommandOutput;
    try {
      response = await this.#client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.#eventBusName,
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: detail,
            },
          ],
        }),
        { abortSignal },
      );
    } catch (error) {
      const cause = abortedBy(abortSignal, error);
      throw new PublishError(
        `EventBridge PutEvents to ${this.#eventBusName} failed: ${describeError(cause)}`,
        {
          cause,
        },
      );
    }
    if ((response.FailedEntryCount ?? 0) > 0) {
      const entry = (
        response.Entries as Array<{ ErrorCode?: string; ErrorMessage?: string }> | undefined
      )?.[0];
      throw new PublishError(
        `EventBridge refused the ${detailType} event on ${this.#eventBusName}: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim(),
      );
    }
  }
}
