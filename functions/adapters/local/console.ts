/**
 * The local channels: notices printed for a person (the same text the e-mail would carry) and progress
 * lines on stderr.
 */
import { snsBody, snsSubject } from '../../core/messages.js';
import type { AuditLogger, ChangePublisher, Notice } from '../../core/ports.js';

/** Where text goes (a stream's `write`, or a test's array). */
export type Write = (text: string) => void;

/** A publisher that prints each notice as a titled block. */
export function consolePublisher(write: Write): ChangePublisher {
  return {
    async publish(notice: Notice): Promise<void> {
      const subject = snsSubject(notice);
      write(`\n${subject}\n${'-'.repeat(subject.length)}\n${snsBody(notice)}\n`);
    },
  };
}

function formatExtra(extra: Record<string, unknown>[]): string {
  const parts: string[] = [];
  for (const attributes of extra) {
    for (const [key, value] of Object.entries(attributes)) {
      parts.push(`${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
    }
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

/** A logger writing one readable line per entry; debug lines only when `verbose`. */
export function lineLogger(write: Write, options: { readonly verbose?: boolean } = {}): AuditLogger {
  const line =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      write(`[${level}] ${message}${formatExtra(extra)}\n`);
  return {
    debug: options.verbose ? line('debug') : () => {},
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
}

/** A short table of a run, one line per principal. */
export function formatSummary(summary: import('../../core/audit.js').AuditSummary): string {
  const width = Math.min(40, Math.max(9, ...summary.principals.map((result) => result.principal.length)));
  const lines = [
    `Run ${summary.runId}${summary.dryRun ? ' (dry run: nothing written or published)' : ''} took ${(summary.durationMs / 1000).toFixed(2)} s`,
  ];
  for (const result of summary.principals) {
    const name = result.principal.padEnd(width);
    if (result.status === 'failed') {
      lines.push(`  ${name}  FAILED     ${result.reason ?? ''}`);
    } else if (result.baseline) {
      lines.push(`  ${name}  baseline   ${result.keyCount} key(s) recorded`);
    } else {
      // One column width for every status word, so the counts line up.
      const change = result.added.length + result.removed.length > 0 ? 'changed  ' : 'no change';
      lines.push(
        `  ${name}  ${change}  ${result.keyCount} key(s), +${result.added.length} -${result.removed.length}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
