/**
 * The HTML report as a person sees it: opened from disk in a real headless Chromium (Debian's `chromium`, driven
 * by puppeteer-core), one browser launch for the whole file. Asserts on what is shown, not on the markup, and
 * writes screenshots (desktop and phone width) to test/report/.screenshots/ (git-ignored) for people to look at.
 *
 * Without a Chromium the test is skipped with a loud message naming the package to install
 * (`apt-get install -y chromium`); under CI (`CI` set) it fails instead, since `.ci/run` installs it.
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReportModel } from '../../functions/report/build.js';
import { renderHtml } from '../../functions/report/html.js';
import { dailySeries, daysAgo, HOST, HOSTILE_NAMES, NOW, stateOf } from './fixtures.js';

/**
 * The page's DOM, as far as the functions these tests run in the page use it: the project type-checks for Node,
 * without the DOM library (which would make `window` and `document` look defined everywhere).
 */
interface PageElement {
  hidden: boolean;
  value: string;
  readonly offsetParent: unknown;
  readonly textContent: string | null;
  readonly clientWidth: number;
  readonly scrollWidth: number;
  readonly dateTime: string;
  readonly cells: readonly PageElement[];
  readonly dataset: Readonly<Record<string, string | undefined>>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  getBoundingClientRect(): { readonly width: number };
  dispatchEvent(event: unknown): boolean;
}
declare const window: { violations: string[]; readonly innerWidth: number };
declare const document: {
  readonly documentElement: PageElement;
  querySelector(selector: string): PageElement | null;
  addEventListener(
    type: 'securitypolicyviolation',
    listener: (event: { readonly violatedDirective: string; readonly blockedURI: string }) => void,
  ): void;
};
declare function getComputedStyle(element: PageElement): {
  readonly display: string;
  readonly overflowX: string;
};
declare const Event: new (type: string) => unknown;

const SCREENSHOTS = fileURLToPath(new URL('./.screenshots/', import.meta.url));

/** Debian's Chromium: `CHROMIUM_PATH` when set (only it), else /usr/bin/chromium, or `chromium` / `chromium-browser` on PATH. */
function findChromium(): string | undefined {
  const override = process.env.CHROMIUM_PATH;
  const candidates =
    override !== undefined && override !== ''
      ? [override]
      : [
          '/usr/bin/chromium',
          ...(process.env.PATH ?? '')
            .split(delimiter)
            .filter((folder) => folder !== '')
            .flatMap((folder) => [join(folder, 'chromium'), join(folder, 'chromium-browser')]),
        ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

const chromium = findChromium();
const MISSING =
  'No Chromium found ($CHROMIUM_PATH, or /usr/bin/chromium, or chromium on PATH): the browser test of the ' +
  "HTML report needs Debian's chromium package: apt-get install -y chromium";
if (chromium === undefined) {
  console.warn(`\n${'!'.repeat(100)}\n!!! SKIPPED: ${MISSING}\n${'!'.repeat(100)}\n`);
}
const skip = chromium === undefined && process.env.CI === undefined;

const KEYS_BIG = 40;
const states = [
  stateOf(
    'tram_client',
    [
      { name: 'ci-deploy', firstSeenDaysAgo: 30, attributes: { createdAt: '2025-01-02T03:04:05Z' } },
      { name: 'grafana-read', firstSeenDaysAgo: 200 },
      ...Array.from({ length: KEYS_BIG }, (_, i) => ({
        name: `svc-${String(i).padStart(2, '0')}`,
        firstSeenDaysAgo: (i * 7) % 120,
      })),
    ],
    {
      info: { type: 1, displayName: 'Client for tram app' },
      series: dailySeries(90, (day) => 20 + Math.floor(day / 4) - (day > 60 ? 3 : 0)),
      recentRemovals: [
        { name: 'old-laptop', removedAt: daysAgo(3) },
        { name: 'tmp-debug', removedAt: daysAgo(17) },
      ],
    },
  ),
  stateOf('<img src=x onerror=alert(9)> ops', [...HOSTILE_NAMES], {
    info: { type: 2, displayName: '<script>alert("display")</script>' },
    series: [{ at: daysAgo(0), count: HOSTILE_NAMES.length }],
  }),
  stateOf('broken', [], {
    awaitingBaseline: true,
    failure: {
      stage: 'walking the keys',
      errorName: 'ForbiddenError',
      status: 403,
      reason: 'BigState answered 403 Forbidden',
      since: daysAgo(1),
      lastNotifiedAt: null,
      runId: 'run-1',
    },
  }),
];
const TOTAL_KEYS = 2 + KEYS_BIG + HOSTILE_NAMES.length;
/** ci-deploy (created in 2025), grafana-read (first seen 200 days ago), and the svc keys first seen > 90 days ago. */
const STALE_KEYS =
  2 + Array.from({ length: KEYS_BIG }, (_, i) => (i * 7) % 120).filter((days) => days > 90).length;

describe.skipIf(skip)('the HTML report in a real browser', () => {
  let browser: Browser;
  let folder: string;
  let url: string;
  let page: Page;
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (chromium === undefined) throw new Error(`CI=${process.env.CI}: ${MISSING}`);
    folder = await mkdtemp(join(tmpdir(), 'report-browser-'));
    const model = buildReportModel(states, {
      generatedAt: NOW,
      runId: 'run-42',
      host: HOST,
      maxKeyAgeDays: 90,
    });
    const file = join(folder, 'latest.html');
    await writeFile(file, renderHtml(model));
    url = pathToFileURL(file).href;
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await puppeteer.launch({
      executablePath: chromium,
      headless: true,
      // As root in a container; no network, no background services (the machine has no network to offer).
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run',
      ],
    });
    page = await browser.newPage();
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
    page.on('pageerror', (error) => consoleErrors.push(String(error)));
    // Every Content-Security-Policy violation, recorded by the page itself.
    await page.evaluateOnNewDocument(() => {
      const seen: string[] = [];
      window.violations = seen;
      document.addEventListener('securitypolicyviolation', (event) =>
        seen.push(`${event.violatedDirective} ${event.blockedURI}`),
      );
    });
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(url, { waitUntil: 'load' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
  });

  const visibleKeyRows = () =>
    page.$$eval(
      'table.keys tbody tr',
      (rows) => rows.filter((row) => (row as PageElement).offsetParent !== null).length,
    );

  it('shows every key, hostile names as text, runs no script but its own, breaks no policy', async () => {
    expect(await page.$$eval('table.keys tbody tr', (rows) => rows.length)).toBe(TOTAL_KEYS);
    expect(await visibleKeyRows()).toBe(TOTAL_KEYS);
    const cells = await page.$$eval('td.name', (tds) => tds.map((td) => td.textContent));
    expect(cells).toContain('<script>alert(1)</script>');
    expect(cells).toContain('"\\"><img src=x onerror=alert(2)>"');
    expect(cells).toContain('"bidi\\u202etxt.exe"');
    const headings = await page.$$eval('h2', (h2s) => h2s.map((h2) => h2.textContent));
    expect(headings).toContain('<img src=x onerror=alert(9)> ops — <script>alert("display")</script> (user)');
    expect(headings).toContain('tram_client — Client for tram app (application)');
    // Only the page's own script and no image exists: no name became an element.
    expect(await page.$$eval('script', (scripts) => scripts.length)).toBe(1);
    expect(await page.$$eval('img', (images) => images.length)).toBe(0);
    expect(dialogs).toEqual([]);
    expect(await page.evaluate(() => window.violations)).toEqual([]);
    expect(consoleErrors).toEqual([]);
    // The totals at the top, as read.
    const totals = await page.$$eval('.totals div', (cards) => cards.map((card) => card.textContent));
    expect(totals).toEqual([
      'Principals3',
      `Keys${TOTAL_KEYS}`,
      `Stale keys${STALE_KEYS}`,
      'Removed, last 30 days2',
      'Failing principals1',
    ]);
    expect(await page.$eval('#p-1 .failure', (p) => p.textContent)).toContain('403 Forbidden');
  });

  it('draws the key-count charts', async () => {
    const charts = await page.$$eval('figure.chart svg', (svgs) =>
      svgs.map((svg) => ({
        points: svg.querySelector('polyline')?.getAttribute('points')?.split(' ').length ?? 0,
        dots: svg.querySelectorAll('circle').length,
        width: svg.getBoundingClientRect().width,
        labels: [...svg.querySelectorAll('text')].map((text) => text.textContent),
      })),
    );
    expect(charts).toHaveLength(2);
    const [hostile, tram] = charts;
    expect(hostile).toMatchObject({ points: 0, dots: 1, labels: ['14', '0', '2026-11-28'] });
    expect(tram?.points).toBe(90);
    expect(tram?.labels).toEqual(['39', '0', '2026-08-31', '2026-11-28']);
    expect(tram?.width).toBeGreaterThan(200);
  });

  it('narrows the rows as one types in the filter box, and says how many are shown', async () => {
    expect(await page.$eval('.filter', (div) => (div as PageElement).hidden)).toBe(false);
    await page.type('#filter', 'grafana');
    expect(await visibleKeyRows()).toBe(1);
    expect(await page.$eval('#shown', (span) => span.textContent)).toBe(`1 of ${TOTAL_KEYS} keys shown`);
    // Sections without a match are hidden; a principal's name matches all its keys.
    expect(await page.$$eval('section', (all) => all.filter((s) => !(s as PageElement).hidden).length)).toBe(
      1,
    );
    await page.$eval('#filter', (input) => {
      (input as PageElement).value = '';
    });
    await page.type('#filter', 'TRAM_c');
    expect(await visibleKeyRows()).toBe(2 + KEYS_BIG);
    await page.$eval('#filter', (input) => {
      (input as PageElement).value = '';
      (input as PageElement).dispatchEvent(new Event('input'));
    });
    expect(await visibleKeyRows()).toBe(TOTAL_KEYS);
  });

  it('sorts a table by the column whose header is clicked, then the other way', async () => {
    const table = 'section:nth-of-type(3) table.keys';
    const ages = () =>
      page.$$eval(`${table} tbody tr`, (rows) =>
        rows.map((row) => Number((row as PageElement).cells[1]?.dataset.v)),
      );
    const names = () =>
      page.$$eval(`${table} tbody tr`, (rows) =>
        rows.map((row) => (row as PageElement).cells[0]?.textContent),
      );
    expect((await names()).slice(0, 2)).toEqual(['ci-deploy', 'grafana-read']);
    await page.click(`${table} th:nth-child(2) button`);
    const ascending = await ages();
    expect(ascending).toEqual([...ascending].sort((a, b) => a - b));
    expect(await page.$eval(`${table} th:nth-child(2)`, (th) => th.getAttribute('aria-sort'))).toBe(
      'ascending',
    );
    await page.click(`${table} th:nth-child(2) button`);
    const descending = await ages();
    expect(descending).toEqual([...ascending].sort((a, b) => b - a));
    expect(descending[0]).toBe(695);
    // Dates sort by their exact time (the <time> element's datetime), not by the day shown.
    await page.click(`${table} th:nth-child(5) button`);
    const firstSeen = await page.$$eval(`${table} tbody tr`, (rows) =>
      rows.map((row) => (row as PageElement).cells[4]?.querySelector('time')?.dateTime ?? ''),
    );
    expect(firstSeen).toEqual([...firstSeen].sort());
    expect(firstSeen[0]).toBe(daysAgo(200));
    await page.click(`${table} th:nth-child(1) button`);
    expect((await names()).slice(0, 3)).toEqual(['ci-deploy', 'grafana-read', 'svc-00']);
  });

  it('reads on a phone: the page fits the width, the table scrolls sideways in its box', async () => {
    await page.screenshot({ path: join(SCREENSHOTS, 'report-desktop.png'), fullPage: true });
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
    await page.reload({ waitUntil: 'load' });
    const layout = await page.evaluate(() => {
      const box = document.querySelector('section:nth-of-type(3) .scroll') as PageElement;
      return {
        page: document.documentElement.scrollWidth,
        viewport: window.innerWidth,
        box: box.clientWidth,
        table: box.scrollWidth,
      };
    });
    expect(layout.page).toBeLessThanOrEqual(layout.viewport);
    expect(layout.table).toBeGreaterThan(layout.box);
    await page.screenshot({ path: join(SCREENSHOTS, 'report-phone.png'), fullPage: true });
  });

  it('prints without the filter box and without clipped tables', async () => {
    await page.emulateMediaType('print');
    const print = await page.evaluate(() => ({
      filter: getComputedStyle(document.querySelector('.filter') as PageElement).display,
      overflow: getComputedStyle(document.querySelector('.scroll') as PageElement).overflowX,
    }));
    expect(print).toEqual({ filter: 'none', overflow: 'visible' });
    await page.emulateMediaType('screen');
  });

  it('is complete and readable without script', async () => {
    const bare = await browser.newPage();
    try {
      await bare.setJavaScriptEnabled(false);
      await bare.goto(url, { waitUntil: 'load' });
      expect(await bare.$$eval('table.keys tbody tr', (rows) => rows.length)).toBe(TOTAL_KEYS);
      expect(await bare.$eval('.filter', (div) => getComputedStyle(div as PageElement).display)).toBe('none');
      expect(await bare.$$eval('th button', (buttons) => buttons.length)).toBe(0);
    } finally {
      await bare.close();
    }
  });
});
