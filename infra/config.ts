/**
 * The stack's configuration: the CDK context keys of the product contract, validated with the same schemas
 * the Lambda and the CLI use, so a value `cdk synth` accepts is one the function accepts too.
 */
import type { Node } from 'constructs';
import { z } from 'zod';
import * as zm from 'zod/mini';
import { ConfigurationError } from '../functions/commons/errors.js';
import {
  formatIssue,
  hostSchema,
  parseList,
  patternSchema,
  principalsSchema,
} from '../functions/commons/validation.js';
import { DEFAULT_SCHEDULE, parseSchedule } from './schedule.js';

export { ConfigurationError };

/** The context keys, fixed by the product contract. */
export const CONTEXT_KEYS = [
  'bigstateHost',
  'principals',
  'pattern',
  'schedule',
  'apiKeySecretName',
  'notificationEmails',
] as const;

/** One of the context keys. */
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** The validated configuration of one audit deployment. */
export interface KeyAuditConfig {
  /** BigState base URL, exactly as configured. */
  readonly bigstateHost: string;
  /** The principals whose keys are audited (distinct, non-empty names). */
  readonly principals: readonly string[];
  /** Glob passed to `apikey/match`; undefined means every key. */
  readonly pattern?: string;
  /** `rate(...)` or `cron(...)`. */
  readonly schedule: string;
  /** Name of an existing secret holding the key; undefined means the stack creates one. */
  readonly apiKeySecretName?: string;
  /** E-mail addresses subscribed to the notification topic. */
  readonly notificationEmails: readonly string[];
}

// Lambda allows 4 KB of environment variables in all; the principals must leave room for the others.
const MAX_PRINCIPALS_JSON_BYTES = 2_500;

// Secrets Manager's naming rule; a colon (an ARN) is refused on purpose: the stack imports by name.
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

const distinct = (what: string) => (values: readonly string[], ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value))
      ctx.addIssue({ code: 'custom', message: `lists the ${what} ${JSON.stringify(value)} twice` });
    seen.add(value);
  }
};

const schemas = {
  bigstateHost: hostSchema,
  // The shared schemas use zod's mini API (small Lambda bundle); refine them with its `check`.
  principals: principalsSchema.check(
    zm.refine(
      (names) => Buffer.byteLength(JSON.stringify(names)) <= MAX_PRINCIPALS_JSON_BYTES,
      `must fit in ${MAX_PRINCIPALS_JSON_BYTES} bytes as JSON (Lambda limits the size of its environment)`,
    ),
  ),
  pattern: patternSchema,
  schedule: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .superRefine((value, ctx) => {
      const parsed = parseSchedule(value);
      if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem });
    }),
  apiKeySecretName: z
    .string()
    .regex(
      SECRET_NAME,
      'must be the name (not the ARN) of a Secrets Manager secret: letters, digits and /_+=.@-',
    ),
  notificationEmails: z.preprocess(
    parseList,
    z
      .array(
        z.email({ error: (issue) => `holds ${JSON.stringify(issue.input)}, which is not an e-mail address` }),
      )
      .superRefine(distinct('address')),
  ),
} satisfies Record<ContextKey, z.core.$ZodType>;

const REQUIRED: ReadonlySet<ContextKey> = new Set(['bigstateHost', 'principals']);

/** A list written as JSON that does not parse: say so, rather than "expected an array". */
function jsonListProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value.trim().startsWith('[')) return undefined;
  try {
    JSON.parse(value);
    return undefined;
  } catch (error) {
    return `is not a valid JSON array (${(error as Error).message}): write ["a","b"] or a comma-separated list`;
  }
}

/** A host that is no URL at all: said here, as the shared schema's later checks would throw on it. */
function hostProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || URL.canParse(value.trim())) return undefined;
  return 'must be an absolute URL such as https://api.bigstate.dev';
}

/**
 * Validates raw configuration values (CDK context, or a construct's props) against the contract.
 *
 * Strings (as `-c key=value` gives them) and JSON values (as `cdk.json` gives them) are both accepted;
 * lists may be JSON arrays or comma-separated strings. Every problem is reported, each naming its key.
 * @throws ConfigurationError naming each missing or invalid key.
 */
export function resolveKeyAuditConfig(raw: Readonly<Partial<Record<ContextKey, unknown>>>): KeyAuditConfig {
  const problems: string[] = [];
  const values: Partial<Record<ContextKey, unknown>> = {};
  for (const key of CONTEXT_KEYS) {
    const value = raw[key];
    if (value === undefined || value === null) {
      if (REQUIRED.has(key)) problems.push(`${key} is required`);
      continue;
    }
    const early =
      key === 'bigstateHost'
        ? hostProblem(value)
        : key === 'principals' || key === 'notificationEmails'
          ? jsonListProblem(value)
          : undefined;
    if (early) {
      problems.push(`${key} ${early}`);
      continue;
    }
    const result = z.safeParse(schemas[key], value);
    if (result.success) values[key] = result.data;
    else problems.push(formatIssue(key, result.error));
  }
  if (problems.length > 0) {
    throw new ConfigurationError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
  return {
    bigstateHost: values.bigstateHost as string,
    principals: values.principals as string[],
    ...(values.pattern === undefined ? {} : { pattern: values.pattern as string }),
    schedule: (values.schedule as string | undefined) ?? DEFAULT_SCHEDULE,
    ...(values.apiKeySecretName === undefined ? {} : { apiKeySecretName: values.apiKeySecretName as string }),
    notificationEmails: (values.notificationEmails as string[] | undefined) ?? [],
  };
}

/**
 * Reads the configuration from the CDK context (`cdk.json` or `-c key=value`).
 * @throws ConfigurationError naming each missing or invalid key.
 */
export function readKeyAuditContext(node: Node): KeyAuditConfig {
  const raw: Partial<Record<ContextKey, unknown>> = {};
  for (const key of CONTEXT_KEYS) raw[key] = node.tryGetContext(key);
  return resolveKeyAuditConfig(raw);
}
