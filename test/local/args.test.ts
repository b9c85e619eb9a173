import { describe, expect, it } from 'vitest';
import {
  CliUsageError,
  nearestOption,
  parseCommandLine,
  usageErrorLine,
} from '../../functions/local/args.js';

const OPTIONS = {
  host: { type: 'string' },
  principal: { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

describe('parseCommandLine', () => {
  it('returns the typed values of a good line', () => {
    expect(
      parseCommandLine(['--host', 'h', '--principal', 'a', '--principal=-b', '--dry-run', '-h'], OPTIONS),
    ).toEqual({ host: 'h', principal: ['a', '-b'], 'dry-run': true, help: true });
  });

  it.each<[string[], string]>([
    [['--hots', 'h'], 'unknown option --hots: did you mean --host?'],
    [['--dry'], 'unknown option --dry: did you mean --dry-run?'],
    // Two neighbours swapped is one typo (the configuration's distance): two swaps are two edits.
    [['--rpinicpal'], 'unknown option --rpinicpal: did you mean --principal?'],
    [['--zzz'], 'unknown option --zzz'],
    [['-q'], 'unknown option -q'],
    [['--\u202eevil'], 'unknown option "--\\u202eevil"'],
    [['stray'], 'unexpected argument "stray"'],
    [['--host'], 'option --host needs a value'],
    [
      ['--host', '-x'],
      'option --host needs a value, got "-x" (for a value starting with "-", write --host=VALUE)',
    ],
    [['--dry-run=no'], 'option --dry-run takes no value'],
    [['--host', 'a', '--host=b'], 'option --host is given more than once'],
  ])('refuses %j: %s', (argv, message) => {
    let caught: unknown;
    try {
      parseCommandLine(argv, OPTIONS);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CliUsageError);
    expect((caught as Error).message).toBe(message);
    expect((caught as Error).name).toBe('CliUsageError');
    expect(usageErrorLine(caught as CliUsageError)).toBe(`usage error: ${message} (see --help)\n`);
  });
});

describe('nearestOption', () => {
  it('finds a typo within two edits, or an option the name starts', () => {
    expect(nearestOption('principl', ['host', 'principal'])).toBe('principal');
    expect(nearestOption('pattern', ['pattern', 'principal'])).toBe('pattern');
    expect(nearestOption('sta', ['state', 'host'])).toBe('state');
    expect(nearestOption('x', ['host', 'json'])).toBeUndefined();
    expect(nearestOption('colour', ['no-color', 'json'])).toBeUndefined();
  });
});
