/**
 * A local EventBridge that speaks JSON 1.1 (`X-Amz-Target: AWSEvents.PutEvents`): records the entries it
 * accepts, validates them as EventBridge does (1–10 entries, a size limit on the request's entries, required
 * fields, Detail a JSON object) and can fail whole calls or single entries on demand.
 */
import { randomUUID } from 'node:crypto';
import {
  AwsFakeServer,
  type FakeRequest,
  type FakeResponse,
  FakeServiceError,
  jsonErrorResponse,
  jsonResponse,
  type Routed,
  routeJson11,
} from './aws-fake-server.js';

/**
 * EventBridge's limit on the summed size of a PutEvents request's entries until 29 January 2026 (256 KiB), the
 * limit the product contract is written against. AWS has since raised it to 1 MiB
 * (`EVENTBRIDGE_LIMIT_SINCE_2026`); pass `maxEntriesBytes` to use that.
 */
export const EVENTBRIDGE_CONTRACT_LIMIT = 256 * 1024;

/** EventBridge's current limit on the summed size of a PutEvents request's entries. */
export const EVENTBRIDGE_LIMIT_SINCE_2026 = 1024 * 1024;

/** Options of the EventBridge fake. */
export interface EventBridgeFakeOptions {
  /**
   * Largest accepted sum of the entries' sizes (computed as EventBridge documents it: 14 bytes for `Time`, UTF-8
   * bytes of Source, DetailType, Detail and each Resource); a larger request fails whole with ValidationException.
   * @default EVENTBRIDGE_CONTRACT_LIMIT (256 KiB)
   */
  readonly maxEntriesBytes?: number;
}

/** One entry as PutEvents received it. */
export interface PutEventsEntry {
  readonly Source?: string;
  readonly DetailType?: string;
  readonly Detail?: string;
  readonly EventBusName?: string;
  readonly Resources?: readonly string[];
  readonly Time?: number;
  readonly TraceHeader?: string;
}

/** An accepted event. */
export interface RecordedEvent {
  readonly eventId: string;
  readonly source: string;
  readonly detailType: string;
  /** The Detail string as sent. */
  readonly detail: string;
  /** The Detail parsed. */
  readonly detailJson: Record<string, unknown>;
  /** `default` when the entry named no bus. */
  readonly eventBusName: string;
  readonly resources: readonly string[];
  /** Epoch seconds, when the entry set Time. */
  readonly time: number | undefined;
  /** The entry's size as EventBridge counts it. */
  readonly size: number;
}

/** The per-entry error an entry failure answers with. */
export interface EntryFailure {
  /** @default 'InternalFailure' */
  readonly errorCode?: string;
  /** @default 'Internal service error.' */
  readonly errorMessage?: string;
}

/** Which entries fail: the next `n`, all (`'always'`), or those a predicate picks. */
export type EntryFailureTrigger = number | 'always' | ((entry: PutEventsEntry) => boolean);

interface EntryRule {
  remaining: number;
  readonly when: ((entry: PutEventsEntry) => boolean) | undefined;
  readonly failure: Required<EntryFailure>;
}

/** Starts an EventBridge fake on 127.0.0.1. */
export async function startEventBridgeFake(options: EventBridgeFakeOptions = {}): Promise<EventBridgeFake> {
  return new EventBridgeFake(options).listen();
}

/** The EventBridge fake; see the module comment for what it serves. */
export class EventBridgeFake extends AwsFakeServer {
  readonly maxEntriesBytes: number;
  private readonly accepted: RecordedEvent[] = [];
  private readonly rejected: { entry: PutEventsEntry; errorCode: string; errorMessage: string }[] = [];
  private entryRules: EntryRule[] = [];

  constructor(options: EventBridgeFakeOptions = {}) {
    super('events');
    this.maxEntriesBytes = options.maxEntriesBytes ?? EVENTBRIDGE_CONTRACT_LIMIT;
  }

  /** The accepted events, oldest first. */
  events(): RecordedEvent[] {
    return [...this.accepted];
  }

  /** Entries answered with an ErrorCode (by validation or by `failEntries`), oldest first. */
  failedEntries(): { entry: PutEventsEntry; errorCode: string; errorMessage: string }[] {
    return [...this.rejected];
  }

  /**
   * Makes entries fail one by one (`FailedEntryCount > 0`, `ErrorCode` on the entry) while the call succeeds.
   * Rules add up; `recover()` clears them with the call-level ones.
   */
  failEntries(trigger: EntryFailureTrigger = 'always', failure: EntryFailure = {}): this {
    const resolved = {
      errorCode: failure.errorCode ?? 'InternalFailure',
      errorMessage: failure.errorMessage ?? 'Internal service error.',
    };
    if (typeof trigger === 'number') {
      this.entryRules.push({ remaining: trigger, when: undefined, failure: resolved });
    } else if (trigger === 'always') {
      this.entryRules.push({ remaining: Number.POSITIVE_INFINITY, when: undefined, failure: resolved });
    } else {
      this.entryRules.push({ remaining: Number.POSITIVE_INFINITY, when: trigger, failure: resolved });
    }
    return this;
  }

  override recover(): this {
    this.entryRules = [];
    return super.recover();
  }

  protected override defaultFailure(): { status: number; code: string; message: string } {
    return { status: 500, code: 'InternalException', message: 'Internal service error.' };
  }

  protected override errorResponse(_request: FakeRequest, error: FakeServiceError): FakeResponse {
    return jsonErrorResponse(error);
  }

  protected override route(request: FakeRequest): Routed {
    return routeJson11(request, 'AWSEvents', { PutEvents: (input) => this.putEvents(input) });
  }

  private putEvents(input: Record<string, unknown>): FakeResponse {
    const entries = input.Entries;
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
      throw new FakeServiceError(
        400,
        'ValidationException',
        `1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1`,
      );
    }
    const typed = entries as PutEventsEntry[];
    const total = typed.reduce((sum, entry) => sum + entrySize(entry), 0);
    if (total > this.maxEntriesBytes) {
      throw new FakeServiceError(
        400,
        'ValidationException',
        'Total size of the entries in the request is over the limit.',
      );
    }
    const results = typed.map((entry) => {
      const failure = validationFailure(entry) ?? this.takeEntryRule(entry);
      if (failure !== undefined) {
        this.rejected.push({ entry, ...failure });
        return { ErrorCode: failure.errorCode, ErrorMessage: failure.errorMessage };
      }
      const eventId = randomUUID();
      this.accepted.push({
        eventId,
        source: entry.Source as string,
        detailType: entry.DetailType as string,
        detail: entry.Detail as string,
        detailJson: JSON.parse(entry.Detail as string) as Record<string, unknown>,
        eventBusName: entry.EventBusName ?? 'default',
        resources: entry.Resources ?? [],
        time: entry.Time,
        size: entrySize(entry),
      });
      return { EventId: eventId };
    });
    return jsonResponse({
      FailedEntryCount: results.filter((result) => 'ErrorCode' in result).length,
      Entries: results,
    });
  }

  private takeEntryRule(entry: PutEventsEntry): { errorCode: string; errorMessage: string } | undefined {
    const rule = this.entryRules.find(
      (candidate) => candidate.remaining > 0 && (candidate.when?.(entry) ?? true),
    );
    if (rule === undefined) {
      return undefined;
    }
    rule.remaining -= 1;
    return rule.failure;
  }
}

/** The size of an entry as EventBridge computes it for its limit. */
export function entrySize(entry: PutEventsEntry): number {
  const bytes = (text: string | undefined): number =>
    text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
  return (
    (entry.Time === undefined ? 0 : 14) +
    bytes(entry.Source) +
    bytes(entry.DetailType) +
    bytes(entry.Detail) +
    (entry.Resources ?? []).reduce((sum, resource) => sum + bytes(resource), 0)
  );
}

function validationFailure(entry: PutEventsEntry): { errorCode: string; errorMessage: string } | undefined {
  for (const field of ['Source', 'DetailType', 'Detail'] as const) {
    const value = entry[field];
    if (typeof value !== 'string' || value === '') {
      return {
        errorCode: 'InvalidArgument',
        errorMessage: `Parameter ${field} is not valid. Reason: ${field} is a required argument.`,
      };
    }
  }
  let detail: unknown;
  try {
    detail = JSON.parse(entry.Detail as string);
  } catch {
    detail = undefined;
  }
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    return { errorCode: 'MalformedDetail', errorMessage: 'Detail is malformed.' };
  }
  return undefined;
}
