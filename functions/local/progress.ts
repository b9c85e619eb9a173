/**
 * Progress of a CLI run, on stderr. On a terminal: one line redrawn in place (principals done / total, and the
 * keys and pages read so far for each principal under way), taken down before anything else is printed and at the
 * end. Otherwise (a pipe, a file, CI logs): one plain line per principal as it finishes,
 * `[3/5] svc a&b: ok, 3 keys, +1 -0`.
 *
 * Keys are counted as the walks yield them and pages as the client reads them (`onPage`), by a wrapper around the
 * client's `listApiKeys`; a principal is done when the core logs `principal audited`, `principal removed` or
 * `principal failed`. With discovery the total is unknown until the end: `[3/?]`.
 */

import stringWidth from 'string-width';
import { type Palette, PLAIN, type Write } from '../adapters/local/console.js';
import type { ApiKeyEntry, ApiKeyLister } from '../bigstate/types.js';
import { displayName, displayText } from '../commons/text.js';
import type { AuditLogger } from '../core/ports.js';
import type { Terminal } from './palette.js';

/** Erases the terminal's current line and returns to its start. */
const ERASE_LINE = '\r\u001b[2K';
/** Redraws for keys read come at most this often (a walk yields thousands of keys a second). */
const REDRAW_MS = 100;

/** How a progress reporter is set up. */
export interface ProgressOptions {
  /** stderr. */
  readonly write: Write;
  /** What stderr is: a terminal gets the redrawn line. */
  readonly terminal: Terminal;
  /** Principals in the run; `undefined` while unknown (discovery lists them as the run goes). */
  readonly total: number | undefined;
  /** @default no colour */
  readonly palette?: Palette;
  /** Milliseconds, for the redraw rate. @default Date.now */
  readonly now?: () => number;
}

/** What the core logs when a principal is done (`principal audited`, `principal removed`, `principal failed`). */
interface Outcome {
  readonly kind: 'audited' | 'removed' | 'failed';
  readonly baseline?: unknown;
  readonly keyCount?: unknown;
  readonly added?: unknown;
  readonly removed?: unknown;
  readonly reason?: unknown;
  readonly errorName?: unknown;
  readonly newPrincipal?: unknown;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * `text` cut to `columns` terminal columns, whole characters (graphemes) only, ending with `…` when cut: so the
 * progress line never wraps and `\r` still reaches its start. Columns, not characters: a CJK character or an
 * emoji takes two (string-width, the terminal's East Asian width rules; the CLI only, never in the Lambda bundle).
 */
export function fitColumns(text: string, columns: number): string {
  const room = Math.max(1, columns);
  if (stringWidth(text) <= room) return text;
  let fitted = '';
  let width = 0;
  for (const { segment } of graphemes.segment(text)) {
    const next = stringWidth(segment);
    if (width + next > room - 1) break;
    fitted += segment;
    width += next;
  }
  return `${fitted}…`;
}

/** Progress of one run; see the module's comment. */
export class Progress {
  readonly #write: Write;
  readonly #terminal: Terminal;
  readonly #total: number | undefined;
  readonly #palette: Palette;
  readonly #now: () => number;
  /** Keys and pages read per principal under way, in the order their walks started. */
  readonly #reading = new Map<string, { keys: number; pages: number }>();
  readonly #finished = new Set<string>();
  #shown = false;
  #drawnAt = Number.NEGATIVE_INFINITY;
  #stopped = false;

  constructor(options: ProgressOptions) {
    this.#write = options.write;
    this.#terminal = options.terminal;
    this.#total = options.total;
    this.#palette = options.palette ?? PLAIN;
    this.#now = options.now ?? Date.now;
  }

  /** Principals done so far. */
  get done(): number {
    return this.#finished.size;
  }

  /** Prints a line that is not progress (a warning, an error) on stderr, above the progress line. */
  readonly print: Write = (text) => {
    this.#around(() => this.#write(text));
  };

  /** A writer for another stream on the same terminal (stdout): the progress line is taken down around it. */
  wrap(write: Write): Write {
    return (text) => this.#around(() => write(text));
  }

  /** `lister`, its walks counted: every other member is the lister's own. */
  count<T extends ApiKeyLister>(lister: T): T {
    const listApiKeys: ApiKeyLister['listApiKeys'] = (principal, options) =>
      this.#counted(lister, principal, options);
    return new Proxy(lister, {
      get(target, property) {
        if (property === 'listApiKeys') return listApiKeys;
        const value: unknown = Reflect.get(target, property, target);
        // Bound to the lister itself: a class with private fields refuses a proxy as `this`.
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  async *#counted(
    lister: ApiKeyLister,
    principal: string,
    options: Parameters<ApiKeyLister['listApiKeys']>[1],
  ): AsyncGenerator<ApiKeyEntry, void, undefined> {
    if (!this.#reading.has(principal) && !this.#finished.has(principal)) {
      this.#reading.set(principal, { keys: 0, pages: 0 });
      this.#draw(true);
    }
    // The pages as the client reads them (a walk that re-reads, or a second walk, counts on).
    const onPage = (pageIndex: number): void => {
      options?.onPage?.(pageIndex);
      const reading = this.#reading.get(principal);
      if (reading === undefined) return;
      reading.pages += 1;
      // A page is worth a redraw (one per page, not one per key).
      this.#draw(true);
    };
    for await (const entry of lister.listApiKeys(principal, { ...options, onPage })) {
      const reading = this.#reading.get(principal);
      if (reading !== undefined) {
        reading.keys += 1;
        this.#draw(false);
      }
      yield entry;
    }
  }

  /**
   * `logger` with the principals' outcomes turned into progress: `principal audited` and `principal failed` are
   * progress (passed on too when `verbose`); warnings and errors are printed; info and debug only when `verbose`.
   */
  logger(logger: AuditLogger, options: { readonly verbose?: boolean } = {}): AuditLogger {
    const verbose = options.verbose === true;
    return {
      debug: (message, ...extra) => {
        if (verbose) logger.debug(message, ...extra);
      },
      info: (message, ...extra) => {
        if (message === 'principal audited') this.#principalDone(extra, 'audited');
        if (message === 'principal removed') this.#principalDone(extra, 'removed');
        if (verbose) logger.info(message, ...extra);
      },
      warn: (message, ...extra) => logger.warn(message, ...extra),
      error: (message, ...extra) => {
        if (message === 'principal failed') {
          this.#principalDone(extra, 'failed');
          if (!verbose) return;
        }
        logger.error(message, ...extra);
      },
    };
  }

  /** Takes the progress line down for good; later lines are printed as they come. */
  stop(): void {
    if (this.#shown) this.#write(ERASE_LINE);
    this.#shown = false;
    this.#stopped = true;
  }

  #principalDone(extra: Record<string, unknown>[], kind: Outcome['kind']): void {
    const attributes: Record<string, unknown> = Object.assign({}, ...extra);
    const principal = attributes.principal;
    if (typeof principal !== 'string' || this.#finished.has(principal)) return;
    this.#reading.delete(principal);
    this.#finished.add(principal);
    if (this.#terminal.isTTY) {
      this.#draw(true);
      return;
    }
    const outcome: Outcome = { ...attributes, kind };
    this.#write(
      `[${this.done}/${this.#total ?? '?'}] ${displayName(principal)}: ${this.#describe(outcome)}\n`,
    );
  }

  #describe(outcome: Outcome): string {
    const p = this.#palette;
    if (outcome.kind === 'failed') {
      const name = typeof outcome.errorName === 'string' ? ` (${displayText(outcome.errorName)})` : '';
      const reason = typeof outcome.reason === 'string' ? ` ${displayText(outcome.reason)}` : '';
      return `${p.failed('FAILED')}${name}${reason}`;
    }
    const keys = typeof outcome.keyCount === 'number' ? outcome.keyCount : 0;
    const keyText = `${keys} ${keys === 1 ? 'key' : 'keys'}`;
    if (outcome.kind === 'removed') return p.removed(`removed from BigState, had ${keyText}`);
    if (outcome.baseline === true) {
      return p.quiet(`baseline, ${keyText}${outcome.newPrincipal === true ? ' (new principal)' : ''}`);
    }
    const added = typeof outcome.added === 'number' ? outcome.added : 0;
    const removed = typeof outcome.removed === 'number' ? outcome.removed : 0;
    const counts = `+${added} -${removed}`;
    return `ok, ${keyText}, ${added + removed > 0 ? p.changed(counts) : counts}`;
  }

  /** The progress line: done / total, then each walk under way with the keys it has read. */
  #line(): string {
    const walks = [...this.#reading].map(
      ([principal, { keys, pages }]) =>
        `${displayName(principal)} ${keys} ${keys === 1 ? 'key' : 'keys'} read${pages > 0 ? ` (${pages} ${pages === 1 ? 'page' : 'pages'})` : ''}`,
    );
    const done =
      this.#total === undefined
        ? `${this.done} principals done`
        : `${this.done}/${this.#total} principals done`;
    const text = [done, ...walks].join(' · ');
    return fitColumns(text, (this.#terminal.columns ?? 80) - 1);
  }

  #draw(now: boolean): void {
    if (!this.#terminal.isTTY || this.#stopped) return;
    const at = this.#now();
    if (!now && at - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = at;
    this.#write(`${ERASE_LINE}${this.#palette.quiet(this.#line())}`);
    this.#shown = true;
  }

  #around(write: () => void): void {
    if (!this.#shown) {
      write();
      return;
    }
    this.#write(ERASE_LINE);
    this.#shown = false;
    write();
    this.#draw(true);
  }
}
