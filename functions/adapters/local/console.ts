/**
 * The local channels: notices printed for a person (the same text the e-mail would carry) and progress
 * lines on stderr. Names are data (product contract, guarantee 10): every name, reason and value shown here
 * goes through `commons/text.ts`, so none can forge a line, drive the terminal or reorder the text.
 */
import { displayName, displayText, quotedName } from '../../commons/text.js';
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

/**
 * One attribute value: a string quoted and escaped (`JSON.stringify` would leave C1, bidi controls and
 * U+2028/U+2029 raw), an error by its message, a list or object as JSON, anything else as `String` gives it;
 * always on one line.
 */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return quotedName(value);
  if (value instanceof Error) return quotedName(`${value.name}: ${value.message}`);
  if (value !== null && typeof value === 'object') {
    try {
      return displayText(JSON.stringify(value) ?? String(value));
    } catch {
      return '[unserializable]'; // a cycle or a BigInt: never worth failing a log line for
    }
  }
  return displayText(String(value));
}

function formatExtra(extra: Record<string, unknown>[]): string {
  const parts: string[] = [];
  for (const attributes of extra) {
    for (const [key, value] of Object.entries(attributes)) {
      parts.push(`${displayText(key)}=${formatValue(value)}`);
    }
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

/** A logger writing one readable line per entry; debug lines only when `verbose`. */
export function lineLogger(write: Write, options: { readonly verbose?: boolean } = {}): AuditLogger {
  const line =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      write(`[${level}] ${displayText(message)}${formatExtra(extra)}\n`);
  return {
    debug: options.verbose ? line('debug') : () => {},
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  };
}

/**
 * A short table of a run, one line per principal. Names are shown by `displayName` (as they are, or
 * quoted and escaped), and the column is as wide as the names as shown (9 to 40 characters).
 */
export function formatSummary(summary: import('../../core/audit.js').AuditSummary): string {
  const names = summary.principals.map((result) => displayName(result.principal));
  const width = Math.min(40, Math.max(9, ...names.map((name) => name.length)));
  const lines = [
    `Run ${displayText(summary.runId)}${summary.dryRun ? ' (dry run: nothing written or published)' : ''} took ${(summary.durationMs / 1000).toFixed(2)} s`,
  ];
  for (const [index, result] of summary.principals.entries()) {
    const name = (names[index] ?? '').padEnd(width);
    if (result.status === 'failed') {
      lines.push(`  ${name}  FAILED     ${displayText(result.reason ?? '')}`);
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
