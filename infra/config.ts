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
import { nearestName } from './did-you-mean.js';
import { DEFAULT_SCHEDULE, parseSchedule } from './schedule.js';

export { ConfigurationError };

/** The context keys, fixed by the product contract. Any other key (but CDK's own) fails `cdk synth`. */
export const CONTEXT_KEYS = [
  'bigstateHost',
  'principals',
  'principalPattern',
  'pattern',
  'schedule',
  'apiKeySecretName',
  'notificationEmails',
  'fanOut',
  'maxRequestsInFlight',
  'maxKeyAgeDays',
] as const;

/** One of the context keys. */
export type ContextKey = (typeof CONTEXT_KEYS)[number];

/** `maxRequestsInFlight` when none is configured (the contract's default). */
export const DEFAULT_MAX_REQUESTS_IN_FLIGHT = 16;

/** The validated configuration of one audit deployment. */
export interface KeyAuditConfig {
  /** BigState base URL, exactly as configured. */
  readonly bigstateHost: string;
  /** The principals whose keys are audited (distinct, non-empty names); empty only with a principalPattern. */
  readonly principals: readonly string[];
  /** Glob of principals to discover each run; undefined means only the listed principals. */
  readonly principalPattern?: string;
  /** Glob passed to `apikey/match`; undefined means every key. */
  readonly pattern?: string;
  /** `rate(...)` or `cron(...)`. */
  readonly schedule: string;
  /** Name of an existing secret holding the key; undefined means the stack creates one. */
  readonly apiKeySecretName?: string;
  /** E-mail addresses subscribed to the notification topic. */
  readonly notificationEmails: readonly string[];
  /** Run each tick as a Step Functions Distributed Map over the principals. */
  readonly fanOut: boolean;
  /** The most BigState requests open at once across the whole run. */
  readonly maxRequestsInFlight: number;
  /** Keys older than this many days are reported once as stale; undefined means no age check. */
  readonly maxKeyAgeDays?: number;
}

// Lambda allows 4 KB of environment variables in all; the principals must leave room for the others.
const MAX_PRINCIPALS_JSON_BYTES = 2_500;

// Secrets Manager's naming rule; a colon (an ARN) is refused on purpose: the stack imports by name.
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

/** The example every "required" message ends with: a whole command that works once the values are yours. */
export const EXAMPLE_COMMAND =
  'npx cdk deploy -c bigstateHost=https://api.bigstate.dev -c principals=root,svc-ci -c notificationEmails=secops@example.com';

const distinct = (what: string) => (values: readonly string[], ctx: z.RefinementCtx) => {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value))
      ctx.addIssue({ code: 'custom', message: `lists the ${what} ${JSON.stringify(value)} twice` });
    seen.add(value);
  }
};

/** `true` / `false`, as JSON (cdk.json) or as the text `-c key=value` gives. */
const booleanSchema = z.preprocess(
  (value) => (value === 'true' ? true : value === 'false' ? false : value),
  z.boolean({ error: (issue) => `must be true or false; got ${JSON.stringify(issue.input)}` }),
);

/** A whole number of at least 1, as JSON or as text (`-c maxKeyAgeDays=90`). */
const positiveIntegerSchema = z.preprocess(
  (value) => (typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value),
  z
    .number({ error: (issue) => `must be a whole number of at least 1; got ${JSON.stringify(issue.input)}` })
    .refine((value) => Number.isSafeInteger(value) && value >= 1, {
      error: (issue) => `must be a whole number of at least 1; got ${JSON.stringify(issue.input)}`,
    }),
);

const schemas = {
  bigstateHost: hostSchema,
  // The shared schemas use zod's mini API (small Lambda bundle); refine them with its `check`.
  principals: principalsSchema.check(
    zm.refine(
      (names) => Buffer.byteLength(JSON.stringify(names)) <= MAX_PRINCIPALS_JSON_BYTES,
      `must fit in ${MAX_PRINCIPALS_JSON_BYTES} bytes as JSON (the function's environment holds 4 KB in all): for a longer list, set principalPattern to discover the principals each run instead`,
    ),
  ),
  principalPattern: patternSchema,
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
  fanOut: booleanSchema,
  maxRequestsInFlight: positiveIntegerSchema,
  maxKeyAgeDays: positiveIntegerSchema,
} satisfies Record<ContextKey, z.core.$ZodType>;

/** What each required key is, for the message that says it is missing. */
const REQUIRED_MEANING = {
  bigstateHost: 'the BigState base URL, e.g. https://api.bigstate.dev',
  principals:
    'the principals whose keys are audited, as a comma-separated list or a JSON array (required unless principalPattern is set)',
} as const;

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

const isMissing = (value: unknown): boolean => value === undefined || value === null;

interface Checked {
  readonly values: Partial<Record<ContextKey, unknown>>;
  readonly problems: readonly string[];
  /** A required key is missing: the message then shows how to give it. */
  readonly missingRequired: boolean;
}

function check(raw: Readonly<Partial<Record<ContextKey, unknown>>>): Checked {
  const problems: string[] = [];
  const values: Partial<Record<ContextKey, unknown>> = {};
  let missingRequired = false;
  for (const key of CONTEXT_KEYS) {
    const value = raw[key];
    if (isMissing(value)) {
      const required = key === 'bigstateHost' || (key === 'principals' && isMissing(raw.principalPattern));
      if (required) {
        problems.push(`${key} is required: ${REQUIRED_MEANING[key]}`);
        missingRequired = true;
      }
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
  return { values, problems, missingRequired };
}

function configOf(values: Partial<Record<ContextKey, unknown>>): KeyAuditConfig {
  const { principalPattern, pattern, apiKeySecretName, maxKeyAgeDays } = values as Partial<KeyAuditConfig>;
  return {
    bigstateHost: values.bigstateHost as string,
    principals: (values.principals as string[] | undefined) ?? [],
    ...(principalPattern === undefined ? {} : { principalPattern }),
    ...(pattern === undefined ? {} : { pattern }),
    schedule: (values.schedule as string | undefined) ?? DEFAULT_SCHEDULE,
    ...(apiKeySecretName === undefined ? {} : { apiKeySecretName }),
    notificationEmails: (values.notificationEmails as string[] | undefined) ?? [],
    fanOut: (values.fanOut as boolean | undefined) ?? false,
    maxRequestsInFlight: (values.maxRequestsInFlight as number | undefined) ?? DEFAULT_MAX_REQUESTS_IN_FLIGHT,
    ...(maxKeyAgeDays === undefined ? {} : { maxKeyAgeDays }),
  };
}

function fail(problems: readonly string[], hint?: string): never {
  const list = `invalid configuration:\n  - ${problems.join('\n  - ')}`;
  throw new ConfigurationError(hint === undefined ? list : `${list}\n${hint}`);
}

/**
 * Validates raw configuration values (CDK context, or a construct's props) against the contract.
 *
 * Strings (as `-c key=value` gives them) and JSON values (as `cdk.json` gives them) are both accepted;
 * lists may be JSON arrays or comma-separated strings. Every problem is reported, each naming its key.
 * @throws ConfigurationError naming each missing or invalid key.
 */
export function resolveKeyAuditConfig(raw: Readonly<Partial<Record<ContextKey, unknown>>>): KeyAuditConfig {
  const { values, problems } = check(raw);
  if (problems.length > 0) fail(problems);
  return configOf(values);
}

/**
 * CDK's own context keys, which are not ours to judge: feature flags (`@aws-cdk/...`), keys holding `:`
 * (`aws:cdk:*`, and cached lookups such as `availability-zones:account=...:region=...`), and the keys the
 * CDK CLI keeps in `cdk.context.json` (`acknowledged-issue-numbers`, `cli-telemetry`).
 */
export function isCdkContextKey(key: string): boolean {
  return (
    key.startsWith('@') ||
    key.includes(':') ||
    key === 'acknowledged-issue-numbers' ||
    key === 'cli-telemetry'
  );
}

const KNOWN: ReadonlySet<string> = new Set(CONTEXT_KEYS);

/** "unknown context key principal: did you mean principals?", or the list of valid keys. */
function unknownKeyProblem(key: string): string {
  const near = nearestName(key, CONTEXT_KEYS);
  return near === undefined
    ? `unknown context key ${key}: the valid keys are ${CONTEXT_KEYS.join(', ')}`
    : `unknown context key ${key}: did you mean ${near}?`;
}

/**
 * Reads the configuration from the CDK context (`cdk.json` or `-c key=value`).
 *
 * Every key of the context is checked, not only the known ones: a key the contract does not name (a typo
 * such as `principal`) fails, with the nearest valid key, rather than being ignored. CDK's own keys
 * ({@link isCdkContextKey}) pass untouched.
 * @throws ConfigurationError naming each unknown, missing or invalid key; when a required key is missing,
 *   the message ends with an example command.
 */
export function readKeyAuditContext(node: Node): KeyAuditConfig {
  const context = node.getAllContext() as Record<string, unknown>;
  const unknown = Object.keys(context)
    .filter((key) => !KNOWN.has(key) && !isCdkContextKey(key))
    .sort()
    .map(unknownKeyProblem);
  const raw: Partial<Record<ContextKey, unknown>> = {};
  for (const key of CONTEXT_KEYS) raw[key] = node.tryGetContext(key);
  const { values, problems, missingRequired } = check(raw);
  const all = [...unknown, ...problems];
  if (all.length > 0) {
    fail(
      all,
      missingRequired
        ? `Give them with -c (or in the "context" of cdk.json), for example:\n  ${EXAMPLE_COMMAND}`
        : undefined,
    );
  }
  return configOf(values);
}
