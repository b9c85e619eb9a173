import stringWidth from 'string-width';
import { describe, expect, it } from 'vitest';
import type { Palette } from '../../functions/adapters/local/console.js';
import type { ApiKeyEntry, ApiKeyLister, WalkOptions } from '../../functions/bigstate/types.js';
import { quotedName } from '../../functions/commons/text.js';
import type { AuditLogger } from '../../functions/core/ports.js';
import { fitColumns, Progress } from '../../functions/local/progress.js';

const ERASE = '\r\u001b[2K';

/** A lister with a private field, as BigStateClient is: a proxy must not be its `this`. */
class PrivateLister implements ApiKeyLister {
  readonly #keys: Record<string, string[]>;
  constructor(keys: Record<string, string[]>) {
    this.#keys = keys;
  }
  async *listApiKeys(principal: string, _options?: WalkOptions): AsyncGenerator<ApiKeyEntry> {
    for (const name of this.#keys[principal] ?? []) yield { name };
  }
  async close(): Promise<string> {
    return `closed ${Object.keys(this.#keys).length}`;
  }
}

const silent: AuditLogger = { debug() {}, info() {}, warn() {}, error() {} };

async function drain(iterable: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _ of iterable) count += 1;
  return count;
}

describe('Progress, stderr not a terminal', () => {
  it('prints one line per principal as it finishes, names and reasons escaped', () => {
    const out: string[] = [];
    const progress = new Progress({
      write: (t) => out.push(t),
      terminal: { isTTY: false, color: false },
      total: 3,
    });
    const logger = progress.logger(silent);
    logger.info('principal audited', {
      principal: 'root',
      baseline: true,
      keyCount: 1,
      added: 0,
      removed: 0,
    });
    logger.info('principal audited', {
      principal: 'svc a&b',
      baseline: false,
      keyCount: 3,
      added: 1,
      removed: 0,
    });
    logger.error('principal failed', {
      principal: 'bad\nx',
      reason: 'walking the keys: HTTP 400 \u001b[31m',
      errorName: 'BadRequestError',
    });
    // A second report of the same principal is not counted again.
    logger.info('principal audited', {
      principal: 'root',
      baseline: false,
      keyCount: 1,
      added: 0,
      removed: 0,
    });
    expect(out).toEqual([
      '[1/3] root: baseline, 1 key\n',
      '[2/3] svc a&b: ok, 3 keys, +1 -0\n',
      `[3/3] ${quotedName('bad\nx')}: FAILED (BadRequestError) walking the keys: HTTP 400 \\u001b[31m\n`,
    ]);
    expect(progress.done).toBe(3);
  });

  it('says what each principal came to, marking what needs a look, with a total unknown under discovery', () => {
    const out: string[] = [];
    const mark = (tag: string) => (text: string) => `<${tag}>${text}</${tag}>`;
    const palette: Palette = {
      added: mark('added'),
      removed: mark('removed'),
      failed: mark('failed'),
      changed: mark('changed'),
      quiet: mark('quiet'),
      heading: mark('heading'),
    };
    const progress = new Progress({
      write: (t) => out.push(t),
      terminal: { isTTY: false, color: true },
      total: undefined,
      palette,
    });
    const logger = progress.logger(silent);
    logger.info('principal audited', { principal: 'new', baseline: true, keyCount: 2, newPrincipal: true });
    logger.info('principal audited', {
      principal: 'same',
      baseline: false,
      keyCount: 1,
      added: 0,
      removed: 0,
    });
    logger.info('principal audited', {
      principal: 'less',
      baseline: false,
      keyCount: 4,
      added: 0,
      removed: 2,
    });
    logger.info('principal removed', { principal: 'gone', keyCount: 7 });
    logger.error('principal failed', { principal: 'odd' });
    expect(out).toEqual([
      '[1/?] new: <quiet>baseline, 2 keys (new principal)</quiet>\n',
      '[2/?] same: ok, 1 key, +0 -0\n',
      '[3/?] less: ok, 4 keys, <changed>+0 -2</changed>\n',
      '[4/?] gone: <removed>removed from BigState, had 7 keys</removed>\n',
      '[5/?] odd: <failed>FAILED</failed>\n',
    ]);
  });

  it('passes warnings and errors on, info and debug only when verbose', () => {
    const seen: string[] = [];
    const inner: AuditLogger = {
      debug: (m) => seen.push(`debug ${m}`),
      info: (m) => seen.push(`info ${m}`),
      warn: (m) => seen.push(`warn ${m}`),
      error: (m) => seen.push(`error ${m}`),
    };
    const progress = new Progress({ write: () => {}, terminal: { isTTY: false, color: false }, total: 2 });
    const quiet = progress.logger(inner);
    quiet.debug('d');
    quiet.info('audit started');
    quiet.info('principal audited', { principal: 'a' });
    quiet.warn('retrying');
    quiet.error('principal failed', { principal: 'b', reason: 'x' });
    quiet.error('could not publish');
    expect(seen).toEqual(['warn retrying', 'error could not publish']);
    seen.length = 0;
    const verbose = new Progress({
      write: () => {},
      terminal: { isTTY: false, color: false },
      total: 2,
    }).logger(inner, { verbose: true });
    verbose.debug('d');
    verbose.info('principal audited', { principal: 'a' });
    verbose.error('principal failed', { principal: 'b', reason: 'x' });
    expect(seen).toEqual(['debug d', 'info principal audited', 'error principal failed']);
  });
});

describe('Progress, stderr a terminal', () => {
  function terminalProgress(columns = 80) {
    const out: string[] = [];
    let now = 0;
    const progress = new Progress({
      write: (t) => out.push(t),
      terminal: { isTTY: true, color: false, columns },
      total: 2,
      now: () => now,
    });
    return { out, progress, advance: (ms: number) => (now += ms) };
  }

  it('counts the keys each walk reads through the lister, which keeps its own members', async () => {
    const { out, progress, advance } = terminalProgress();
    const lister = progress.count(new PrivateLister({ root: ['a', 'b', 'c'], 'svc a&b': ['x'] }));
    await expect(lister.close()).resolves.toBe('closed 2');
    const iterator = lister.listApiKeys('root')[Symbol.asyncIterator]();
    await iterator.next();
    advance(150);
    await iterator.next();
    expect(out.at(-1)).toBe(`${ERASE}0/2 principals done · root 2 keys read`);
    // Within the redraw interval: no redraw for a key.
    await iterator.next();
    expect(out.at(-1)).toBe(`${ERASE}0/2 principals done · root 2 keys read`);
    expect(await drain(lister.listApiKeys('svc a&b'))).toBe(1);
    expect(out.at(-1)).toBe(`${ERASE}0/2 principals done · root 3 keys read · svc a&b 0 keys read`);
    progress.logger(silent).info('principal audited', { principal: 'root' });
    expect(out.at(-1)).toBe(`${ERASE}1/2 principals done · svc a&b 1 key read`);
  });

  it('shows the pages each principal has read when the client reports them, and passes them on to the caller', async () => {
    const { out, progress, advance } = terminalProgress();
    /** Two keys a page, reported as the client reports pages (onPage after each page). */
    const paged: ApiKeyLister = {
      async *listApiKeys(principal, options) {
        const names = principal === 'root' ? ['a', 'b', 'c'] : [];
        for (let page = 0; page * 2 < Math.max(1, names.length); page++) {
          for (const name of names.slice(page * 2, page * 2 + 2)) yield { name };
          options?.onPage?.(page);
        }
      },
    };
    const seen: number[] = [];
    const iterator = progress
      .count(paged)
      .listApiKeys('root', { onPage: (index) => seen.push(index) })
      [Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    advance(150);
    await iterator.next();
    // The first page was done (two keys) when the third key came: the redraw is for the page.
    expect(out.at(-1)).toBe(`${ERASE}0/2 principals done · root 2 keys read (1 page)`);
    advance(150);
    await iterator.next();
    expect(seen).toEqual([0, 1]);
    advance(150);
    await drain(progress.count(paged).listApiKeys('empty'));
    expect(out.at(-1)).toBe(
      `${ERASE}0/2 principals done · root 3 keys read (2 pages) · empty 0 keys read (1 page)`,
    );
  });

  it('takes the line down around other output, and for good at the end', async () => {
    const { out, progress } = terminalProgress();
    const stdout: string[] = [];
    const wrapped = progress.wrap((t) => {
      stdout.push(t);
      out.push(`<stdout ${t}>`);
    });
    wrapped('before\n');
    expect(out).toEqual(['<stdout before\n>']);
    await drain(progress.count(new PrivateLister({ root: ['a'] })).listApiKeys('root'));
    out.length = 0;
    wrapped('notice\n');
    progress.print('[warn] slow\n');
    expect(out).toEqual([
      ERASE,
      '<stdout notice\n>',
      `${ERASE}0/2 principals done · root 1 key read`,
      ERASE,
      '[warn] slow\n',
      `${ERASE}0/2 principals done · root 1 key read`,
    ]);
    out.length = 0;
    progress.stop();
    progress.print('after\n');
    expect(out).toEqual([ERASE, 'after\n']);
    expect(stdout).toEqual(['before\n', 'notice\n']);
  });

  it('cuts the line to the terminal width and escapes names', async () => {
    const { out, progress } = terminalProgress(40);
    await drain(
      progress
        .count(new PrivateLister({ 'a\u001b[31mlong-principal-name': ['k'] }))
        .listApiKeys('a\u001b[31mlong-principal-name'),
    );
    const line = (out.at(-1) ?? '').slice(ERASE.length);
    expect([...line]).toHaveLength(39);
    expect(line.endsWith('…')).toBe(true);
    expect(line).toContain('"a\\u001b[31m');
    expect(line.slice(1)).not.toContain('\u001b');
  });
});

describe('fitColumns', () => {
  it('counts terminal columns, not characters: CJK and emoji take two', () => {
    expect(fitColumns('abc', 3)).toBe('abc');
    expect(fitColumns('abcd', 3)).toBe('ab…');
    expect(fitColumns('日本日本', 8)).toBe('日本日本');
    expect(fitColumns('日本日本', 7)).toBe('日本日…');
    expect(fitColumns('日本日本', 6)).toBe('日本…');
    expect(fitColumns('key 😀😀', 7)).toBe('key 😀…');
  });

  it('never splits a character of several code points, and always fits a narrow terminal', () => {
    const family = '\u{1f469}\u200d\u{1f4bb}';
    expect(fitColumns(`${family}${family}x`, 4)).toBe(`${family}…`);
    for (const columns of [1, 2, 5, 9]) {
      const fitted = fitColumns('2/5 principals done · 日本 340 keys read', columns);
      expect(stringWidth(fitted), String(columns)).toBeLessThanOrEqual(columns);
    }
  });
});
