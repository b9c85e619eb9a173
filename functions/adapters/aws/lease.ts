/**
 * The run lease as both handlers use it (single mode in `audit.ts`, the fan-out's plan and finish steps): when it
 * expires, what a skipped run says, and its release. The lease itself lives in {@link S3SnapshotStore}.
 */
import type { AuditLogger, Lease } from '../../core/ports.js';
import type { S3SnapshotStore } from './s3-store.js';

/** How long a lease outlives its run's timeout: a crashed run blocks the next ones at most this long. */
export const LEASE_GRACE_MS = 60_000;

/** When a lease taken at `startedAt` for a run of at most `timeoutMs` expires. */
export function leaseExpiry(startedAt: number, timeoutMs: number): string {
  return new Date(startedAt + timeoutMs + LEASE_GRACE_MS).toISOString();
}

/** What a run that found another run's live lease says (its `skipped`), after logging it. */
export function skippedFor(holder: Lease, logger: AuditLogger): string {
  logger.warn('run skipped: another run is under way', { holder });
  return `another run (${holder.runId}) holds the lease until ${holder.expiresAt}: no audit`;
}

/** Releases the run's lease (best effort, two seconds): one it could not release expires by itself. */
export async function releaseRunLease(
  store: Pick<S3SnapshotStore, 'releaseLease'>,
  runId: string,
  logger: AuditLogger,
): Promise<void> {
  await store
    .releaseLease(runId, { signal: AbortSignal.timeout(2_000) })
    .catch((error: unknown) => logger.warn('could not release the lease; it expires by itself', { error }));
}
