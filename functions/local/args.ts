/**
 * The command lines of the local programs (`npm run audit`, `npm run simulator`): Node's `util.parseArgs`, with
 * every mistake told in one line that names the argument and points at `--help`, never the whole usage text.
 */

import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';
import { editDistance } from '../commons/did-you-mean.js';
import { quotedName } from '../commons/text.js';

/** The default state folder of the CLIs (`npm run audit`, `npm run report`), in the working folder. */
export const DEFAULT_STATE_DIR = '.bigstate-audit';

/** A command line that cannot be run: the message names the argument (one line, escaped). */
export class CliUsageError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliUsageError';
  }
}

/** The one line a program prints for a usage error: `usage error: unknown option --x (see --help)`. */
export function usageErrorLine(error: CliUsageError): string {
  return `usage error: ${error.message} (see --help)\n`;
}

/**
 * Parses `argv` against `options` (long names; `short` aliases allowed), no positional arguments.
 * @throws CliUsageError for the first of: an unknown option (with the nearest known one when there is one), a
 *   positional argument, a string option without its value (or with a value that looks like an option), a value
 *   given to a flag, an option that takes one value given twice.
 */
export function parseCommandLine<const T extends ParseArgsOptionsConfig>(
  argv: readonly string[],
  options: T,
) {
  // First pass, lenient, to see every token; the second, strict one only types the values.
  const { tokens } = parseArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional')
      throw new CliUsageError(`unexpected argument ${quotedName(token.value)}`);
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    const raw = token.rawName;
    if (option === undefined) {
      const near = nearestOption(token.name, Object.keys(options));
      throw new CliUsageError(
        `unknown option ${quotedOrPlain(raw)}${near === undefined ? '' : `: did you mean --${near}?`}`,
      );
    }
    const flag = `--${token.name}`;
    if (option.type === 'string') {
      if (token.value === undefined) throw new CliUsageError(`option ${flag} needs a value`);
      if (!token.inlineValue && token.value.startsWith('-')) {
        throw new CliUsageError(
          `option ${flag} needs a value, got ${quotedName(token.value)} (for a value starting with "-", write ${flag}=VALUE)`,
        );
      }
    } else if (token.value !== undefined) {
      throw new CliUsageError(`option ${flag} takes no value`);
    }
    if (seen.has(token.name) && option.multiple !== true) {
      throw new CliUsageError(`option ${flag} is given more than once`);
    }
    seen.add(token.name);
  }
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // Not expected after the checks above; still one line, never a stack trace.
    throw new CliUsageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
}

/**
 * Refuses an empty path (`--state=`): `resolve('')` is the working folder, where a run would then write its
 * states and reports. Every CLI checks its path options through this.
 * @throws CliUsageError naming the option.
 */
export function requirePaths(values: Readonly<Record<string, unknown>>, flags: readonly string[]): void {
  for (const flag of flags) {
    if (values[flag] === '') throw new CliUsageError(`option --${flag} needs a path, got ""`);
  }
}

/** An option as typed, escaped when it holds anything a terminal could act on. */
function quotedOrPlain(raw: string): string {
  return /^[\x21-\x7e]+$/.test(raw) ? raw : quotedName(raw);
}

/**
 * The known option nearest to `name`: one it starts, or within two edits (a typo, a swap of two neighbours), by
 * the distance the configuration's "did you mean" uses.
 */
export function nearestOption(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = candidate.startsWith(name) && name.length >= 3 ? 1 : editDistance(name, candidate);
    if (distance <= 2 && (best === undefined || distance < best.distance))
      best = { name: candidate, distance };
  }
  return best?.name;
}
