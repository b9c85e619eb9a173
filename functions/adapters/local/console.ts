/**
 * The local channels: notices printed for a person (the same text the e-mail would carry) and progress
 * lines on stderr. Names are data (product contract, guarantee 10): every name, reason and value shown here
 * goes through `commons/text.ts`, so none can forge a line, drive the terminal or reorder the text.
 */
import { displayName, displayText, quotedName } from '../../commons/text.js';
import type { AuditSummary } from '../../core/audit.js';
import { snsBody, snsSubject } from '../../core/messages.js';
import type { AuditLogger, ChangePublisher, Notice } from '../../core/ports.js';

/** Where text goes (a stream's `write`, or a test's array). */
export type Write = (text: string) => void;

/**
 * Colours for people, by meaning. Each takes text already escaped (`commons/text.ts`) and returns it as it is,
 * or wrapped in terminal styles (`local/palette.ts` builds one on `util.styleText`). Colour never carries
 * meaning alone: the `+`, `-` and words stay.
 */
export interface Palette {
  /** A key added. */
  readonly added: (text: string) => string;
  /** A key removed. */
  readonly removed: (text: string) => string;
  /** A principal (or run) that failed. */
  readonly failed: (text: string) => string;
  /** Keys changed. */
  readonly changed: (text: string) => string;
  /** A baseline, no change, or a detail: what needs no action. */
  readonly quiet: (text: string) => string;
  /** A title. */
  readonly heading: (text: string) => string;
}

const same = (text: string): string => text;

/** No colour at all. */
export const PLAIN: Palette = {
  added: same,
  removed: same,
  failed: same,
  changed: same,
  quiet: same,
  heading: same,
};

/**
 * A notice as the terminal shows it: the subject, an underline and the e-mail body; in colour, the subject
 * bold (a failure red and bold, a principal removed red), the `+` lines green, the `-` lines red. The body's name lines start with `  + ` or
 * `  - ` and a name can never start a line (it is escaped), so styling by line start cannot be fooled.
 */
export function formatNotice(notice: Notice, palette: Palette = PLAIN): string {
  const subject = snsSubject(notice);
  const title =
    notice.kind === 'failed'
      ? palette.failed(subject)
      : notice.kind === 'principal-removed'
        ? palette.removed(subject)
        : palette.heading(subject);
  const body = snsBody(notice)
    .split('\n')
    .map((line) => {
      if (line.startsWith('  + ')) return palette.added(line);
      if (line.startsWith('  - ')) return palette.removed(line);
      if (line.startsWith('  ... and ')) return palette.quiet(line);
      return line;
    })
    .join('\n');
  return `\n${title}\n${'-'.repeat(subject.length)}\n${body}\n`;
}

/** A publisher that prints each notice as a titled block ({@link formatNotice}). */
export function consolePublisher(write: Write, palette: Palette = PLAIN): ChangePublisher {
  return {
    async publish(notice: Notice): Promise<void> {
      write(formatNotice(notice, palette));
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
 * A short table of a run, one line per principal, and a line for a failure of the run itself (a principal
 * listing that broke off). Names are shown by `displayName` (as they are, or quoted and escaped), and the column
 * is as wide as the names as shown (9 to 40 characters). In colour: FAILED red and bold, REMOVED red, a change
 * yellow with its counts green and red, a baseline or no change dim.
 */
export function formatSummary(summary: AuditSummary, palette: Palette = PLAIN): string {
  const names = summary.principals.map((result) => displayName(result.principal));
  const width = Math.min(40, Math.max(9, ...names.map((name) => name.length)));
  const lines = [
    `Run ${displayText(summary.runId)}${summary.dryRun ? ' (dry run: nothing written or published)' : ''} took ${(summary.durationMs / 1000).toFixed(2)} s`,
  ];
  for (const [index, result] of summary.principals.entries()) {
    const name = (names[index] ?? '').padEnd(width);
    // One column width for every status word (padded before it is styled), so the counts line up.
    if (result.status === 'failed') {
      lines.push(`  ${name}  ${palette.failed('FAILED')}     ${displayText(result.reason ?? '')}`);
    } else if (result.principalRemoved !== undefined) {
      const had = result.principalRemoved.keys.length;
      lines.push(
        `  ${name}  ${palette.removed('REMOVED  ')}  no longer in BigState; had ${had} key(s); its state ${summary.dryRun ? 'would be' : 'was'} archived`,
      );
    } else if (result.baseline) {
      const found = result.newPrincipal === true ? ' (new principal)' : '';
      lines.push(`  ${name}  ${palette.quiet(`baseline   ${result.keyCount} key(s) recorded${found}`)}`);
    } else if (result.added.length + result.removed.length > 0) {
      const added = `+${result.added.length}`;
      const removed = `-${result.removed.length}`;
      lines.push(
        `  ${name}  ${palette.changed('changed  ')}  ${result.keyCount} key(s), ${result.added.length > 0 ? palette.added(added) : added} ${result.removed.length > 0 ? palette.removed(removed) : removed}`,
      );
    } else {
      lines.push(`  ${name}  ${palette.quiet(`no change  ${result.keyCount} key(s), +0 -0`)}`);
    }
  }
  if (summary.runFailure !== undefined) {
    lines.push(
      `  ${palette.failed('RUN FAILED')}  ${displayText(summary.runFailure.reason)} (${displayText(summary.runFailure.errorName)})`,
    );
  }
  return `${lines.join('\n')}\n`;
}
