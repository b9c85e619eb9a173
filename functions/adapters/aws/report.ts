/**
 * The inventory report after a real run, in S3 next to the states: `reports/latest.html` and `latest.csv`, and
 * one dated copy a day under `reports/<date>/report.*` (each run of the day replaces it; expired with the history). Built from the states the run holds,
 * never from the history, and written within the run's hard stop or skipped with a log line: the report never
 * delays or fails the audit.
 */
import type { AuditSummary, PrincipalResult } from '../../core/audit.js';
import { datedReportKey, REPORT_KEYS } from '../../core/layout.js';
import type { AuditLogger, Snapshot } from '../../core/ports.js';
import { buildReportModel } from '../../report/build.js';
import { renderCsvBytes } from '../../report/csv.js';
import { renderHtml } from '../../report/html.js';
import type { S3SnapshotStore } from './s3-store.js';

/** Below this much time left before the hard stop, the report is skipped (a log line says so). */
export const REPORT_MIN_TIME_MS = 3_000;

/** What a report is built from: the run's results and each principal's state after it. */
export interface ReportSource extends Pick<AuditSummary, 'runId' | 'dryRun' | 'states'> {
  readonly principals: readonly Pick<PrincipalResult, 'principal' | 'status' | 'reason'>[];
}

/** What writing a report needs besides the run's summary. */
export interface ReportRequest {
  readonly store: Pick<S3SnapshotStore, 'putReport'>;
  readonly logger: AuditLogger;
  readonly host: string;
  readonly maxKeyAgeDays: number | undefined;
  /** Milliseconds left before the hard stop. */
  readonly remainingMs: number;
  readonly now?: Date;
}

/** Writes the report of a run; resolves to what was written, or `undefined` when skipped or failed (logged). */
export async function writeReport(
  summary: ReportSource,
  request: ReportRequest,
): Promise<{ readonly keys: readonly string[] } | undefined> {
  if (summary.dryRun) return undefined;
  if (request.remainingMs < REPORT_MIN_TIME_MS) {
    request.logger.warn('report skipped: no time left before the hard stop', {
      remainingMs: request.remainingMs,
    });
    return undefined;
  }
  // A report must show every principal: one whose state the run could not read (S3 failing, the key unusable
  // before any principal) would be missing from it, so the last complete report is kept instead.
  const unread = summary.principals.filter(
    (result) => result.status === 'failed' && !(summary.states?.has(result.principal) ?? false),
  );
  if (unread.length > 0) {
    request.logger.warn('report skipped: the state of some principals could not be read', {
      principals: unread.length,
    });
    return undefined;
  }
  const now = request.now ?? new Date();
  const signal = AbortSignal.timeout(Math.max(1, request.remainingMs - 1_000));
  try {
    const failures = new Map(
      summary.principals
        .filter((result) => result.status === 'failed')
        .map((result) => [result.principal, result.reason ?? 'failed'] as const),
    );
    const states = [...(summary.states?.values() ?? [])].filter((state) => state !== null);
    const model = buildReportModel(states, {
      generatedAt: now,
      runId: summary.runId,
      host: request.host,
      maxKeyAgeDays: request.maxKeyAgeDays ?? null,
      failures,
    });
    const html = renderHtml(model, { csvName: 'latest.csv' });
    const csv = renderCsvBytes(model);
    const files: Array<[string, string | Uint8Array, string]> = [
      [REPORT_KEYS.html, html, 'text/html; charset=utf-8'],
      [REPORT_KEYS.csv, csv, 'text/csv; charset=utf-8'],
      [datedReportKey(now, 'html'), html, 'text/html; charset=utf-8'],
      [datedReportKey(now, 'csv'), csv, 'text/csv; charset=utf-8'],
    ];
    await Promise.all(files.map(([key, body, type]) => request.store.putReport(key, body, type, { signal })));
    request.logger.info('report written', {
      principals: model.principals.length,
      keys: files.map(([key]) => key),
    });
    return { keys: files.map(([key]) => key) };
  } catch (error) {
    request.logger.warn('report skipped: it could not be written', { error });
    return undefined;
  }
}

/** How many states the fan-out finish step reads at once to build the report. */
export const REPORT_READ_CONCURRENCY = 16;

/**
 * The states of a fanned-out run's principals, read back for the report (the finish step holds only the rows of
 * the workers): every principal's state, `null` for one without any (a failed baseline). Throws when one could
 * not be read, so the caller keeps the last complete report.
 */
export async function readStatesForReport(
  store: Pick<S3SnapshotStore, 'read'>,
  principals: readonly string[],
  options: { readonly signal: AbortSignal; readonly concurrency?: number },
): Promise<Map<string, Snapshot | null>> {
  const states = new Map<string, Snapshot | null>();
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < principals.length) {
      options.signal.throwIfAborted();
      const principal = principals[next++] as string;
      const found = await store.read(principal, { signal: options.signal });
      states.set(principal, found?.snapshot ?? null);
    }
  };
  const readers = Math.max(1, Math.min(options.concurrency ?? REPORT_READ_CONCURRENCY, principals.length));
  await Promise.all(Array.from({ length: readers }, reader));
  // In the order of the run, whatever order the reads ended in.
  return new Map(principals.map((principal) => [principal, states.get(principal) ?? null]));
}
