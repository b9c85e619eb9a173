/**
 * The audit's own error family. BigState's HTTP errors live with the client (`functions/bigstate/errors.ts`);
 * these are the errors of configuration, input, secrets, storage and publishing.
 */
import { displayText, quotedName } from './text.js';

/** Base class of every error the audit raises itself. */
export class KeyAuditError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KeyAuditError';
  }
}

/** A configuration value (environment variable, CLI flag) is missing or invalid; the message names it. */
export class ConfigurationError extends KeyAuditError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConfigurationError';
  }
}

/** An invocation payload has the wrong shape; `field` names the offending field. */
export class InvalidRequestError extends KeyAuditError {
  readonly field: string;
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidRequestError';
    this.field = field;
  }
}

/** The secret could not be read or does not hold a usable key. Names the secret, never its value. */
export class SecretError extends KeyAuditError {
  readonly secretId: string;
  constructor(secretId: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SecretError';
    this.secretId = secretId;
  }
}

/** A conditional snapshot write was refused: someone else wrote the snapshot since this run read it. */
export class ConcurrentWriteError extends KeyAuditError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConcurrentWriteError';
  }
}

/** Reading or writing a snapshot or change record failed. */
export class StorageError extends KeyAuditError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/**
 * A stored record is there but is not one this version reads (corrupt, or a newer release's): unlike S3 failing,
 * the caller knows it exists and at which `version`, and may replace it (only a record that holds no data worth
 * keeping, such as the run-level record).
 */
export class RecordFormatError extends StorageError {
  constructor(
    message: string,
    readonly version: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'RecordFormatError';
  }
}

/** Publishing a notice failed (a rejected call or a failed entry: never silence). */
export class PublishError extends KeyAuditError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PublishError';
  }
}

/** The run finished, but at least one principal failed: raised after everything that could be published was. */
export class AuditRunFailedError extends KeyAuditError {
  readonly failures: ReadonlyArray<{ readonly principal: string; readonly reason: string }>;
  /** Why the run itself failed beyond its principals (a principal listing that broke off), if it did. */
  readonly runFailure: string | undefined;
  constructor(
    runId: string,
    failures: ReadonlyArray<{ readonly principal: string; readonly reason: string }>,
    total: number,
    runFailure?: string,
  ) {
    // Names and reasons come from BigState: escaped, so the message (logged, shown by the CLI) holds one line.
    const list = failures.map((f) => `${quotedName(f.principal)}: ${displayText(f.reason)}`).join('; ');
    const parts = [
      ...(runFailure === undefined ? [] : [`the run failed: ${displayText(runFailure)}`]),
      ...(failures.length === 0 && runFailure !== undefined
        ? []
        : [`${failures.length} of ${total} principal(s) failed: ${list}`]),
    ];
    super(`run ${runId}: ${parts.join('; ')}`);
    this.name = 'AuditRunFailedError';
    this.failures = failures;
    this.runFailure = runFailure;
  }
}

/** What ended a call: the run's signal when it was aborted (the deadline, not the service), else the error. */
export function abortedBy(signal: AbortSignal | undefined, error: unknown): unknown {
  return signal?.aborted ? signal.reason : error;
}

/** A message for any thrown value, without serialising arbitrary objects (which could carry secrets). */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : 'unknown error';
}

/** The run's time budget was spent before this work could start. */
export class TimeBudgetError extends KeyAuditError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TimeBudgetError';
  }
}

/** The caller stopped the run (Ctrl-C in the CLI): not a time budget running out. */
export class InterruptedError extends KeyAuditError {
  constructor(message = 'interrupted', options?: ErrorOptions) {
    super(message, options);
    this.name = 'InterruptedError';
  }
}

/** A principal named in the configuration (or an invocation) that BigState says does not exist (404). */
export class PrincipalNotFoundError extends KeyAuditError {
  readonly principal: string;
  constructor(principal: string, options?: ErrorOptions) {
    super(`principal ${quotedName(principal)} does not exist in BigState`, options);
    this.name = 'PrincipalNotFoundError';
    this.principal = principal;
  }
}

/**
 * An error and its causes, outermost first: each `cause` in turn (and an AggregateError's first error, as node:net
 * gives when every address of a host failed), at most `depth` links, stopping at the first that is no object.
 */
export function* causeChain(error: unknown, depth = 5): Generator<object, void, undefined> {
  let current: unknown = error;
  for (let link = 0; link < depth && typeof current === 'object' && current !== null; link++) {
    yield current;
    current =
      (current as { cause?: unknown }).cause ??
      (current instanceof AggregateError ? (current.errors as unknown[])[0] : undefined);
  }
}
