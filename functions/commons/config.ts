/**
 * The one place that reads the environment. The Lambda's configuration is validated once, at cold start,
 * and a bad value fails with the variable's name.
 */
import * as z from 'zod/mini';
import { ConfigurationError } from './errors.js';
import { formatIssue, hostSchema, patternSchema, principalsSchema } from './validation.js';

/** The Lambda's configuration, as the stack sets it. */
export interface LambdaConfig {
  /** BigState base URL, exactly as configured. */
  readonly host: string;
  /** The configured principals; empty when only a principal pattern is set. */
  readonly principals: readonly string[];
  /** Discovery: the glob of the principals to list each run (`*`: every principal the key can see). */
  readonly principalPattern: string | undefined;
  readonly pattern: string | undefined;
  /** The most BigState requests this function keeps open at once (the contract's maxRequestsInFlight). */
  readonly maxRequestsInFlight: number | undefined;
  /** Keys older than this many days are told once as stale (the contract's maxKeyAgeDays). */
  readonly maxKeyAgeDays: number | undefined;
  readonly secretId: string;
  readonly bucketName: string;
  readonly topicArn: string;
  readonly eventBusName: string;
}

const required = z.string({ error: 'must be a string' }).check(z.trim(), z.minLength(1, 'is required'));

/** A whole number ≥ 1, as text (the variable is optional). */
const positiveWholeNumber = z.optional(
  z.pipe(
    z.string(),
    z.pipe(
      z.transform((value: string) => Number(value)),
      z.int({ error: 'must be a whole number' }).check(z.positive('must be at least 1')),
    ),
  ),
);

/** Environment variables of the function, with the schema each must satisfy. */
const lambdaVariables = {
  BIGSTATE_HOST: hostSchema,
  BIGSTATE_PRINCIPALS: z.optional(principalsSchema),
  BIGSTATE_PRINCIPAL_PATTERN: z.optional(patternSchema),
  BIGSTATE_PATTERN: z.optional(patternSchema),
  BIGSTATE_MAX_KEY_AGE_DAYS: positiveWholeNumber,
  BIGSTATE_MAX_REQUESTS_IN_FLIGHT: positiveWholeNumber,
  API_KEY_SECRET_ARN: required,
  SNAPSHOT_BUCKET_NAME: required,
  TOPIC_ARN: required,
  EVENT_BUS_NAME: required,
} as const;

function read<S extends z.ZodMiniType>(env: NodeJS.ProcessEnv, name: string, schema: S): z.output<S> {
  const raw = env[name];
  // An empty variable is an unset one: "is required", not zod's "expected string, received undefined".
  const value = raw === '' ? undefined : raw;
  const result = schema.safeParse(value);
  if (!result.success) {
    const message = value === undefined ? `${name} is required` : formatIssue(name, result.error);
    throw new ConfigurationError(`invalid environment: ${message}`);
  }
  return result.data;
}

/**
 * Reads and validates the Lambda's environment.
 * @throws ConfigurationError naming the first variable that is missing or invalid.
 */
export function loadLambdaConfig(env: NodeJS.ProcessEnv = process.env): LambdaConfig {
  // One at a time: the first bad one read is the one named.
  const host = read(env, 'BIGSTATE_HOST', lambdaVariables.BIGSTATE_HOST);
  const principalPattern = read(
    env,
    'BIGSTATE_PRINCIPAL_PATTERN',
    lambdaVariables.BIGSTATE_PRINCIPAL_PATTERN,
  );
  const principals = read(env, 'BIGSTATE_PRINCIPALS', lambdaVariables.BIGSTATE_PRINCIPALS);
  if (principals === undefined && principalPattern === undefined) {
    throw new ConfigurationError(
      'invalid environment: BIGSTATE_PRINCIPALS is required (unless BIGSTATE_PRINCIPAL_PATTERN is set)',
    );
  }
  return {
    host,
    principals: principals ?? [],
    principalPattern,
    pattern: read(env, 'BIGSTATE_PATTERN', lambdaVariables.BIGSTATE_PATTERN),
    maxKeyAgeDays: read(env, 'BIGSTATE_MAX_KEY_AGE_DAYS', lambdaVariables.BIGSTATE_MAX_KEY_AGE_DAYS),
    maxRequestsInFlight: read(
      env,
      'BIGSTATE_MAX_REQUESTS_IN_FLIGHT',
      lambdaVariables.BIGSTATE_MAX_REQUESTS_IN_FLIGHT,
    ),
    secretId: read(env, 'API_KEY_SECRET_ARN', lambdaVariables.API_KEY_SECRET_ARN),
    bucketName: read(env, 'SNAPSHOT_BUCKET_NAME', lambdaVariables.SNAPSHOT_BUCKET_NAME),
    topicArn: read(env, 'TOPIC_ARN', lambdaVariables.TOPIC_ARN),
    eventBusName: read(env, 'EVENT_BUS_NAME', lambdaVariables.EVENT_BUS_NAME),
  };
}

/** The environment variable the CLI reads the BigState API key from. */
export const API_KEY_VARIABLE = 'BIGSTATE_API_KEY';

/** The CLI's key source: the variable's value, read afresh each time so a re-read after a 401 sees changes. */
export function environmentApiKey(env: NodeJS.ProcessEnv = process.env): () => string | undefined {
  return () => env[API_KEY_VARIABLE];
}
