/**
 * What an invocation asks for. Scheduled events run everything; a manual payload may pick principals and
 * ask for a dry run; anything else is refused before any BigState call, naming the field.
 */
import * as z from 'zod/mini';
import { InvalidRequestError } from '../commons/errors.js';

/** The `source` of the input the stack's schedule sends. */
export const SCHEDULE_SOURCE = 'bigstate.key-audit.schedule';

/** A parsed invocation. */
export interface Invocation {
  readonly trigger: 'schedule' | 'manual';
  /** The principals to audit: all configured ones unless a manual payload picked a subset. */
  readonly principals: readonly string[];
  readonly dryRun: boolean;
}

const manualSchema = z.strictObject({
  principals: z.optional(
    z
      .array(z.string({ error: 'must hold strings' }).check(z.minLength(1, 'must not hold an empty name')), {
        error: 'must be a list of principal names',
      })
      .check(z.minLength(1, 'must list at least one principal')),
  ),
  dryRun: z.optional(z.boolean({ error: 'must be true or false' })),
});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The stack's own schedule input, or the classic EventBridge scheduled-rule event. */
function isScheduled(event: Record<string, unknown>): boolean {
  return (
    event.source === SCHEDULE_SOURCE ||
    (event['detail-type'] === 'Scheduled Event' && event.source === 'aws.events')
  );
}

/**
 * Parses an invocation against the configured principals.
 * @throws InvalidRequestError naming the field: a wrong type, an empty list, an unknown field, or a principal
 *   that is not configured.
 */
export function parseInvocation(event: unknown, configured: readonly string[]): Invocation {
  if (!isRecord(event)) {
    throw new InvalidRequestError('(payload)', 'invalid invocation: the payload must be a JSON object');
  }
  if (isScheduled(event)) return { trigger: 'schedule', principals: configured, dryRun: false };
  const parsed = manualSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field =
      issue?.code === 'unrecognized_keys'
        ? (issue.keys[0] ?? '(payload)')
        : (issue?.path.map(String).join('.') ?? '');
    const message =
      issue?.code === 'unrecognized_keys'
        ? 'is not a known field (known: principals, dryRun)'
        : issue?.message;
    throw new InvalidRequestError(field || '(payload)', `invalid invocation: field "${field}" ${message}`);
  }
  const principals = parsed.data.principals ?? configured;
  const unknown = principals.filter((principal) => !configured.includes(principal));
  if (unknown.length > 0) {
    throw new InvalidRequestError(
      'principals',
      `invalid invocation: field "principals" names ${unknown.map((p) => JSON.stringify(p)).join(', ')}, not configured for this audit`,
    );
  }
  return { trigger: 'manual', principals: [...new Set(principals)], dryRun: parsed.data.dryRun ?? false };
}
