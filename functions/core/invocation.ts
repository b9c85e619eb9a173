/**
 * What an invocation asks for. Scheduled events run everything; a manual payload may pick principals and
 * ask for a dry run; anything else is refused before any BigState call, naming the field.
 *
 * A payload is taken for a schedule only in one of two exact shapes: the input the stack's schedule sends
 * (`infra/key-audit.ts`) and the classic EventBridge "Scheduled Event". Anything else, a payload that carries
 * the schedule's `source` plus `dryRun` or `principals` included, is validated as a manual invocation, and so
 * refused, naming the field: never a live full run that silently ignores what the caller asked for.
 */
import * as z from 'zod/mini';
import { InvalidRequestError } from '../commons/errors.js';
import { matchesPattern } from '../commons/glob.js';
import { quotedName } from '../commons/text.js';
import { principalNameChecks } from '../commons/validation.js';

/** The `source` of the input the stack's schedule sends. */
export const SCHEDULE_SOURCE = 'bigstate.key-audit.schedule';

/** A parsed invocation. */
export interface Invocation {
  readonly trigger: 'schedule' | 'manual';
  /** The principals to audit: all configured ones unless a manual payload picked a subset. */
  readonly principals: readonly string[];
  readonly dryRun: boolean;
  /** A full run (no subset picked): with a principal pattern, it also discovers principals. */
  readonly full: boolean;
}

const manualSchema = z.strictObject({
  principals: z.optional(
    z
      .array(
        // The names a configuration may hold (no control, bidi or separator character, no lone surrogate): a
        // payload reaches BigState, the states and every notice just as a configured name does.
        z
          .string({ error: 'must hold strings' })
          .check(z.minLength(1, 'must not hold an empty name'), ...principalNameChecks),
        { error: 'must be a list of principal names' },
      )
      .check(z.minLength(1, 'must list at least one principal')),
  ),
  dryRun: z.optional(z.boolean({ error: 'must be true or false' })),
});

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Exactly what the stack's schedule sends: its `source`, and Scheduler's `<aws.scheduler.scheduled-time>` and
 * `<aws.scheduler.execution-id>` filled in.
 */
const scheduleInputSchema = z.strictObject({
  source: z.literal(SCHEDULE_SOURCE),
  scheduledTime: z.string(),
  executionId: z.string(),
});

/** The classic EventBridge scheduled-rule event: the standard envelope, an empty `detail`, nothing else. */
const scheduledEventSchema = z.strictObject({
  version: z.string(),
  id: z.string(),
  'detail-type': z.literal('Scheduled Event'),
  source: z.literal('aws.events'),
  account: z.string(),
  time: z.string(),
  region: z.string(),
  resources: z.array(z.string()),
  // Strictly empty: a `detail: { dryRun: true }` must not run live while looking like a dry run.
  detail: z.strictObject({}),
});

/**
 * For a payload that looks scheduled but is not exactly a scheduled shape: the shape it resembles and what
 * breaks it, to add to the manual refusal (whoever sent it may have meant either).
 */
function nearSchedule(event: Record<string, unknown>): string | undefined {
  const [schema, shape] =
    event.source === SCHEDULE_SOURCE
      ? [
          scheduleInputSchema,
          "the schedule's input (exactly source, scheduledTime and executionId, each a string)",
        ]
      : event.source === 'aws.events' || event['detail-type'] === 'Scheduled Event'
        ? [
            scheduledEventSchema,
            'an EventBridge "Scheduled Event" (exactly its standard fields, with an empty detail)',
          ]
        : [undefined, ''];
  const issues = schema?.safeParse(event).error?.issues ?? [];
  if (issues.length === 0) return undefined;
  const quoted = (keys: readonly PropertyKey[]) => keys.map((key) => quotedName(String(key))).join(', ');
  // Unknown keys at the top; every other issue (a nested one included) is about the top-level field it is in.
  const extra = issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0 ? issue.keys : [],
  );
  const fields = [
    ...new Set(
      issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys' && issue.path.length === 0 ? [] : [String(issue.path[0])],
      ),
    ),
  ];
  const missing = fields.filter((key) => !(key in event));
  const wrong = fields.filter((key) => key in event);
  const problems = [
    extra.length > 0 ? `it holds ${quoted(extra)}` : '',
    missing.length > 0 ? `it lacks ${quoted(missing)}` : '',
    wrong.length > 0 ? `${quoted(wrong)} has the wrong type or value` : '',
  ].filter((problem) => problem !== '');
  return `nor is it ${shape}: ${problems.join('; ')}`;
}

/** The stack's own schedule input, or the classic EventBridge scheduled-rule event, each in its exact shape. */
function isScheduled(event: Record<string, unknown>): boolean {
  return scheduleInputSchema.safeParse(event).success || scheduledEventSchema.safeParse(event).success;
}

/**
 * Parses an invocation against the configured principals.
 * @throws InvalidRequestError naming the field: a wrong type, an empty list, an unknown field, or a principal
 *   that is not configured.
 */
export function parseInvocation(
  event: unknown,
  configured: readonly string[],
  principalPattern?: string,
): Invocation {
  if (!isRecord(event)) {
    throw new InvalidRequestError('(payload)', 'invalid invocation: the payload must be a JSON object');
  }
  if (isScheduled(event)) return { trigger: 'schedule', principals: configured, dryRun: false, full: true };
  const parsed = manualSchema.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field =
      issue?.code === 'unrecognized_keys'
        ? (issue.keys[0] ?? '(payload)')
        : (issue?.path.map(String).join('.') ?? '');
    const message =
      issue?.code === 'unrecognized_keys'
        ? issue.keys.length > 1
          ? `fields ${issue.keys.map((key) => quotedName(key)).join(', ')} are not known fields (known: principals, dryRun)`
          : `field ${quotedName(field)} is not a known field (known: principals, dryRun)`
        : `field "${field}" ${issue?.message}`;
    const near = nearSchedule(event);
    throw new InvalidRequestError(
      field || '(payload)',
      `invalid invocation: ${message}${near === undefined ? '' : `; ${near}`}`,
    );
  }
  const principals = parsed.data.principals ?? configured;
  // A subset may name configured principals, or principals the principal pattern covers (discovered ones).
  const unknown = principals.filter(
    (principal) =>
      !configured.includes(principal) &&
      (principalPattern === undefined || !matchesPattern(principal, principalPattern)),
  );
  if (unknown.length > 0) {
    const scope =
      principalPattern === undefined
        ? ''
        : ` nor matched by the principal pattern ${quotedName(principalPattern)}`;
    throw new InvalidRequestError(
      'principals',
      `invalid invocation: field "principals" names ${unknown.map((p) => quotedName(p)).join(', ')}, not configured for this audit${scope}`,
    );
  }
  return {
    trigger: 'manual',
    principals: [...new Set(principals)],
    dryRun: parsed.data.dryRun ?? false,
    full: parsed.data.principals === undefined,
  };
}
