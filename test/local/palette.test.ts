import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { formatNotice, formatSummary, PLAIN } from '../../functions/adapters/local/console.js';
import type { AuditSummary } from '../../functions/core/audit.js';
import type { ChangeRecord } from '../../functions/core/ports.js';
import { NOT_A_TERMINAL, paletteFor, terminalOf } from '../../functions/local/palette.js';

/** A stream as Node's styleText sees one: a Writable with `isTTY` and `getColorDepth`. */
function stream(isTTY: boolean, depth: number, columns?: number): NodeJS.WriteStream {
  const writable = new Writable({ write: (_chunk, _encoding, done) => done() });
  return Object.assign(writable, {
    isTTY,
    getColorDepth: () => depth,
    columns,
  }) as unknown as NodeJS.WriteStream;
}

const ESC = '\u001b';

describe('terminalOf', () => {
  it('takes Node’s decision for the stream: a TTY with colours, not a pipe nor a 2-colour terminal', () => {
    vi.stubEnv('FORCE_COLOR', undefined);
    expect(terminalOf(stream(true, 8, 120))).toEqual({ isTTY: true, color: true, columns: 120 });
    // NO_COLOR, NODE_DISABLE_COLORS and TERM=dumb make Node's getColorDepth answer 2 (or 1).
    expect(terminalOf(stream(true, 2))).toEqual({ isTTY: true, color: false, columns: undefined });
    expect(terminalOf(stream(false, 8))).toEqual({ isTTY: false, color: false, columns: undefined });
  });

  it('follows FORCE_COLOR as Node does: colour even in a pipe, none for FORCE_COLOR=0', () => {
    vi.stubEnv('FORCE_COLOR', '1');
    expect(terminalOf(stream(false, 1)).color).toBe(true);
    vi.stubEnv('FORCE_COLOR', '0');
    expect(terminalOf(stream(true, 8)).color).toBe(false);
  });
});

describe('paletteFor', () => {
  it('is plain for a stream that takes no colour', () => {
    expect(paletteFor(NOT_A_TERMINAL)).toBe(PLAIN);
    expect(paletteFor({ isTTY: true, color: false })).toBe(PLAIN);
  });

  it('styles through util.styleText for one that does', () => {
    const palette = paletteFor({ isTTY: true, color: true });
    expect(palette.added('+ a')).toBe(`${ESC}[32m+ a${ESC}[39m`);
    expect(palette.removed('- a')).toBe(`${ESC}[31m- a${ESC}[39m`);
    expect(palette.failed('FAILED')).toBe(`${ESC}[31m${ESC}[1mFAILED${ESC}[22m${ESC}[39m`);
    expect(palette.changed('changed')).toBe(`${ESC}[33mchanged${ESC}[39m`);
    expect(palette.quiet('baseline')).toBe(`${ESC}[2mbaseline${ESC}[22m`);
    expect(palette.heading('Title')).toBe(`${ESC}[1mTitle${ESC}[22m`);
  });
});

describe('the console adapter in colour', () => {
  const palette = paletteFor({ isTTY: true, color: true });
  const record = (added: string[], removed: string[]): ChangeRecord => ({
    schemaVersion: 1,
    changeId: 'chg-0123456789abcdef0123456789abcdef',
    runId: 'run-1',
    principal: 'root',
    kind: 'changed',
    pattern: null,
    detectedAt: '2025-06-01T12:00:00.000Z',
    previousSnapshotVersion: '"etag"',
    added,
    removed,
    counts: { added: added.length, removed: removed.length, total: 3 },
    snapshotLocation: '/state/snapshots/root.json',
    changeRecordLocation: '/state/history/root/chg-0123456789abcdef0123456789abcdef.json',
  });

  it('prints the same text as without colour, with + green, - red and the subject bold', () => {
    const notice = { kind: 'changed', record: record(['new\u001b[31m'], ['old']) } as const;
    const coloured = formatNotice(notice, palette);
    expect(coloured).toContain(`${ESC}[1mBigState API keys changed for root (+1 -1)${ESC}[22m\n`);
    expect(coloured).toContain(`${ESC}[32m  + "new\\u001b[31m"${ESC}[39m\n`);
    expect(coloured).toContain(`${ESC}[31m  - old${ESC}[39m\n`);
    expect(coloured.replace(new RegExp(`${ESC}\\[\\d+m`, 'g'), '')).toBe(formatNotice(notice));
    expect(formatNotice(notice, PLAIN)).not.toContain(ESC);
  });

  it('prints a principal removed from BigState with its subject red', () => {
    const notice = {
      kind: 'principal-removed',
      removalId: 'prm-1',
      runId: 'run-1',
      principal: 'gone',
      keys: ['a'],
      detectedAt: '2025-06-01T12:00:00.000Z',
      archiveLocation: '/state/archive/gone.json',
    } as const;
    const coloured = formatNotice(notice, palette);
    expect(coloured.startsWith(`\n${ESC}[31mBigState principal removed: gone (1 key)${ESC}[39m\n`)).toBe(
      true,
    );
    expect(coloured.replace(new RegExp(`${ESC}\\[\\d+m`, 'g'), '')).toBe(formatNotice(notice));
  });

  it('keeps the summary table aligned in colour', () => {
    const summary: AuditSummary = {
      runId: 'run-1',
      dryRun: false,
      startedAt: '',
      finishedAt: '',
      durationMs: 0,
      ok: false,
      principals: [
        {
          principal: 'a',
          status: 'ok',
          baseline: false,
          keyCount: 2,
          added: ['x'],
          removed: [],
          redelivered: [],
          pending: [],
        },
        {
          principal: 'b',
          status: 'failed',
          reason: 'r',
          baseline: false,
          keyCount: null,
          added: [],
          removed: [],
          redelivered: [],
          pending: [],
        },
      ],
    };
    const plain = formatSummary(summary);
    const coloured = formatSummary(summary, palette);
    expect(coloured).not.toBe(plain);
    expect(coloured.replace(new RegExp(`${ESC}\\[\\d+m`, 'g'), '')).toBe(plain);
    expect(coloured).toContain(`${ESC}[32m+1${ESC}[39m -0`);
  });
});
