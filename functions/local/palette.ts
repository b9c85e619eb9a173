/**
 * Colour for people, through Node's `util.styleText`. Whether a stream gets colour is Node's own decision for
 * that stream ({@link terminalOf}): a TTY with more than 2 colours, off under `NO_COLOR` or `NODE_DISABLE_COLORS`
 * or with `TERM=dumb`, forced on (or off with `FORCE_COLOR=0`) by `FORCE_COLOR`, which wins over `NO_COLOR`, as in
 * Node. `--no-color` turns it off whatever the environment says.
 */
import { styleText } from 'node:util';
import { type Palette, PLAIN } from '../adapters/local/console.js';

/** What the CLI knows of one of its output streams. */
export interface Terminal {
  /** A terminal (so a progress line can be redrawn in place), not a pipe or a file. */
  readonly isTTY: boolean;
  /** Whether text for people is coloured on it (see {@link terminalOf}). */
  readonly color: boolean;
  /** Its width in characters, when known. @default 80 */
  readonly columns?: number | undefined;
}

/** A pipe or a file: no colour, no progress line. */
export const NOT_A_TERMINAL: Terminal = { isTTY: false, color: false };

/** The stream a {@link terminalOf} looks at: `process.stdout` or `process.stderr`. */
type OutputStream = NodeJS.WriteStream;

/**
 * What a stream is. Colour is exactly what `util.styleText` decides for the stream when it validates it (TTY,
 * colour depth, `NO_COLOR`, `NODE_DISABLE_COLORS`, `FORCE_COLOR`, `TERM`): asked once, so every later call
 * styles without checking again, and tests can inject the answer.
 */
export function terminalOf(stream: OutputStream): Terminal {
  return {
    isTTY: stream.isTTY === true,
    color: styleText('red', '.', { stream }) !== '.',
    columns: stream.isTTY === true ? stream.columns : undefined,
  };
}

/** The palette for a stream: colours when it takes them, none otherwise. */
export function paletteFor(terminal: Terminal): Palette {
  if (!terminal.color) return PLAIN;
  // The decision was made above, for this stream: style without validating process.stdout again.
  const style =
    (format: Parameters<typeof styleText>[0]) =>
    (text: string): string =>
      styleText(format, text, { validateStream: false });
  return {
    added: style('green'),
    removed: style('red'),
    failed: style(['red', 'bold']),
    changed: style('yellow'),
    quiet: style('dim'),
    heading: style('bold'),
  };
}
