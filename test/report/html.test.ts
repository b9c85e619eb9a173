import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { displayName, hasUnsafeCharacters } from '../../functions/commons/text.js';
import { buildReportModel } from '../../functions/report/build.js';
import {
  CHART_MAX_POINTS,
  CONTENT_SECURITY_POLICY,
  escapeHtml,
  renderHtml,
} from '../../functions/report/html.js';
import type { ReportModel } from '../../functions/report/model.js';
import { dailySeries, daysAgo, HOST, HOSTILE_NAMES, NOW, stateOf } from './fixtures.js';

const model = (
  states: Parameters<typeof buildReportModel>[0],
  maxKeyAgeDays: number | null = 90,
): ReportModel => buildReportModel(states, { generatedAt: NOW, runId: 'run-42', host: HOST, maxKeyAgeDays });

/** The hostile inventory: hostile key names, a hostile principal, a hostile display name and failure reason. */
function hostileModel(): ReportModel {
  return model([
    stateOf('<b>principal</b> & "co"', [...HOSTILE_NAMES], {
      info: { type: 1, displayName: '<img src=x onerror=alert(3)> \u202eevil\u0007' },
      failure: {
        stage: 'walk',
        errorName: 'BadRequestError',
        status: 400,
        reason: '</p><script>alert(4)</script>',
        since: daysAgo(1),
        lastNotifiedAt: null,
        runId: 'r',
      },
      recentRemovals: [{ name: '<svg onload=alert(5)>', removedAt: daysAgo(2) }],
      series: dailySeries(5, (i) => i),
    }),
  ]);
}

/** Text content between `<tag>` and `</tag>`, each. */
const contentsOf = (html: string, tag: string): string[] =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((match) => match[1] as string);

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

describe('renderHtml: names are text, never markup', () => {
  const html = renderHtml(hostileModel());

  it('has exactly its own script and style, and no element a name could have opened', () => {
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html.match(/<style/g)).toHaveLength(1);
    expect(html).not.toMatch(/<(img|svg onload|b>principal)/);
    expect(html).not.toContain('onerror=alert(3)>');
  });

  it('shows every hostile name as text: displayName, then HTML-escaped', () => {
    for (const name of HOSTILE_NAMES) expect(html).toContain(escapeHtml(displayName(name)));
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;\\&quot;&gt;&lt;img src=x onerror=alert(2)&gt;&quot;');
    expect(html).toContain('it&#39;s &amp; &quot;quoted&quot;');
    expect(html).toContain('&lt;b&gt;principal&lt;/b&gt; &amp; &quot;co&quot;');
    expect(html).toContain('&lt;svg onload=alert(5)&gt;');
    expect(html).toContain('&lt;/p&gt;&lt;script&gt;alert(4)&lt;/script&gt;');
  });

  it('shows control and bidi characters visibly, escaped, and lets none through', () => {
    expect(html).toContain('esc\\u001b[31mred');
    expect(html).toContain('bidi\\u202etxt.exe');
    expect(html).toContain('line\\nbreak\\r\\nand\\ttab');
    expect(html).toContain('&lt;img src=x onerror=alert(3)&gt; \\u202eevil\\u0007');
    // The page's own text holds line feeds only: no character that displayText would escape.
    expect(hasUnsafeCharacters(html.replaceAll('\n', ''))).toBe(false);
  });

  it('names the principal with its display name and type', () => {
    const tram = renderHtml(
      model([stateOf('tram_client', ['k'], { info: { type: 1, displayName: 'Client for tram app' } })]),
    );
    expect(tram).toContain(
      '<h2>tram_client <span class="info">— Client for tram app (application)</span></h2>',
    );
    const user = renderHtml(model([stateOf('ann', ['k'], { info: { type: 2, displayName: null } })]));
    expect(user).toContain('<h2>ann <span class="info">— (user)</span></h2>');
    expect(renderHtml(model([stateOf('plain', ['k'])]))).toContain('<h2>plain</h2>');
  });
});

describe('renderHtml: a self-contained page', () => {
  const html = renderHtml(hostileModel());

  it('allows only its own inline script and style, by hash, under default-src none', () => {
    const [meta] = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/) ?? [];
    expect(meta).toBeDefined();
    expect(CONTENT_SECURITY_POLICY).toMatch(/^default-src 'none'; /);
    const [script] = contentsOf(html, 'script');
    const [style] = contentsOf(html, 'style');
    expect(CONTENT_SECURITY_POLICY).toContain(`script-src ${sha256(script as string)}`);
    expect(CONTENT_SECURITY_POLICY).toContain(`style-src ${sha256(style as string)}`);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe|https?:|\*/);
    // The policy comes before the style and the script it governs.
    expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('<style>'));
  });

  it('loads nothing from anywhere: no external font, script, style or image', () => {
    expect(html).not.toMatch(/<[^>]*\s(src|srcset|data|action)=|@import|url\(|<link|<img|<iframe|<object/i);
    expect(html).not.toMatch(/href="(?!#)/);
  });

  it('is for phones and print: a viewport, scrolling tables, print CSS', () => {
    expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    expect(html).toContain('<div class="scroll"><table class="keys sortable"');
    expect(html).toMatch(/\.scroll\{overflow-x:auto/);
    expect(html).toContain('@media print{');
  });

  it('keeps the filter box hidden until the script shows it: without script the page is the whole table', () => {
    expect(html).toContain('<div class="filter" hidden><input id="filter"');
  });
});

describe('renderHtml: what it shows', () => {
  it('puts the totals at the top, and when, by which run and from which host it was made', () => {
    const html = renderHtml(
      model([
        stateOf('a', [{ name: 'old', firstSeenDaysAgo: 100 }, 'new'], {
          recentRemovals: [
            { name: 'x', removedAt: daysAgo(1) },
            { name: 'y', removedAt: daysAgo(40) },
          ],
        }),
        stateOf('b', ['k'], {
          failure: {
            stage: 's',
            errorName: 'E',
            status: null,
            reason: 'boom',
            since: daysAgo(1),
            lastNotifiedAt: null,
            runId: 'r',
          },
        }),
        stateOf('c', []),
      ]),
    );
    const totals = html.slice(html.indexOf('<dl class="totals">'), html.indexOf('</dl>'));
    expect(totals).toContain('<dt>Principals</dt><dd>3</dd>');
    expect(totals).toContain('<dt>Keys</dt><dd>3</dd>');
    expect(totals).toContain('<dt>Stale keys</dt><dd>1</dd>');
    expect(totals).toContain('<dt>Removed, last 30 days</dt><dd>1</dd>');
    expect(totals).toContain('<dt>Failing principals</dt><dd>1</dd>');
    expect(html).toContain(
      'Made 2026-11-28 12:00 UTC by run <code>run-42</code> from <code>https://api.bigstate.dev</code>',
    );
    expect(html).toContain('keys older than 90 days are stale');
    expect(html.indexOf('class="totals"')).toBeLessThan(html.indexOf('<section'));
    expect(html).toContain('<b>Last run failed:</b> boom.');
    expect(html).toContain('<p class="muted">No keys.</p>');
  });

  it('lists every key with first seen, last seen, its age (≥ from first seen) and stale marked', () => {
    const html = renderHtml(
      model([
        stateOf('root', [
          { name: 'made', firstSeenDaysAgo: 5, attributes: { createdAt: '2025-01-02T03:04:05Z' } },
          { name: 'seen', firstSeenDaysAgo: 12 },
        ]),
      ]),
    );
    const rows = html.match(/<tr[^>]*><td class="name">[\s\S]*?<\/tr>/g) ?? [];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('<tr class="stale"><td class="name">made</td>');
    expect(rows[0]).toContain('<td class="num" data-v="695">695</td>');
    expect(rows[0]).toContain('<span class="badge">stale</span>');
    expect(rows[0]).toMatch(
      /^<tr class="stale"><td class="name">made<\/td><td class="num" data-v="695">695<\/td><td><span class="badge">stale<\/span><\/td><td><time datetime="2025-01-02T03:04:05.000Z">2025-01-02<\/time><\/td>/,
    );
    expect(rows[1]).toContain(
      '<tr><td class="name">seen</td><td class="num" data-v="12">≥ 12<small>from first seen</small></td><td></td><td data-v="" class="muted">—</td>',
    );
    expect(rows[1]).toContain(`<td><time datetime="${daysAgo(12)}">2026-11-16</time></td>`);
    expect(rows[1]).toContain('≥ 12<small>from first seen</small>');
    expect(html).toContain('a lower bound');
  });

  it('lists the keys removed in the last 30 days with when', () => {
    const html = renderHtml(
      model([stateOf('root', ['a'], { recentRemovals: [{ name: 'gone', removedAt: daysAgo(2) }] })]),
    );
    expect(html).toContain('<h3>Removed in the last 30 days</h3>');
    expect(html).toContain(
      `<td class="name">gone</td><td><time datetime="${daysAgo(2)}">2026-11-26 12:00 UTC</time>`,
    );
  });

  it('says so when there is no principal at all', () => {
    const html = renderHtml(model([]));
    expect(html).toContain('No principal has a state yet');
    expect(html).toContain('<dt>Principals</dt><dd>0</dd>');
    expect(html).not.toContain('<section');
  });
});

describe('renderHtml: the key-count chart', () => {
  const chartOf = (series: unknown) => {
    const html = renderHtml(model([stateOf('root', ['a'], { series })]));
    return html.slice(html.indexOf('<figure class="chart">'), html.indexOf('</figure>') + 9);
  };

  it('draws a polyline with the counts and the first and last dates as axis labels', () => {
    const chart = chartOf(dailySeries(30, (day) => 10 + day));
    expect(chart).toMatch(/<svg viewBox="0 0 360 132" role="img"/);
    const points = chart.match(/<polyline points="([^"]+)"/)?.[1]?.split(' ') ?? [];
    expect(points).toHaveLength(30);
    for (const point of points) expect(point).toMatch(/^\d+(\.\d)?,\d+(\.\d)?$/);
    expect(chart).toContain('>39</text>');
    expect(chart).toContain('>0</text>');
    expect(chart).toContain('>2026-10-30</text>');
    expect(chart).toContain('>2026-11-28</text>');
    expect(chart).toContain(
      '<title id="c-0">Key count over time: 10 on 2026-10-30, 39 on 2026-11-28</title>',
    );
  });

  it('draws a single point as a dot with its date', () => {
    const chart = chartOf([{ at: daysAgo(0), count: 7 }]);
    expect(chart).not.toContain('<polyline');
    expect(chart).toMatch(/<circle cx="196" cy="\d+(\.\d)?" r="3.5"\/>/);
    expect(chart).toContain('>2026-11-28</text>');
    expect(chart).toContain('Key count: 7 on 2026-11-28');
  });

  it('says there is no history yet when the state has no series', () => {
    const chart = chartOf(undefined);
    expect(chart).not.toContain('<svg');
    expect(chart).toContain('No key-count history yet.');
  });

  it('thins a long series to a bounded number of points, the first and last kept', () => {
    const chart = chartOf(dailySeries(1000, (day) => day));
    const points = chart.match(/<polyline points="([^"]+)"/)?.[1]?.split(' ') ?? [];
    expect(points).toHaveLength(CHART_MAX_POINTS);
    expect(points[0]).toBe('44,104');
    expect(points.at(-1)).toBe('348,12');
  });
});

describe('renderHtml: at fan-out scale', () => {
  const states = [
    stateOf('small', ['a']),
    stateOf('<big>', ['a', 'b', 'c', { name: 'old', firstSeenDaysAgo: 120 }], {
      recentRemovals: [{ name: 'gone', removedAt: daysAgo(3) }],
    }),
    stateOf('mid', ['a', 'b']),
  ];

  it('shows per-principal totals, largest first, and says the CSV lists every key', () => {
    const html = renderHtml(model(states), { maxRows: 5, csvName: 'latest.csv' });
    expect(html).not.toContain('table class="keys');
    expect(html).toContain('This inventory holds 7 keys, more than the 5');
    expect(html).toContain('<b>latest.csv</b>');
    const names = [...html.matchAll(/<tr(?: class="stale")?><td class="name">([^<]*)/g)].map((m) => m[1]);
    expect(names).toEqual(['&lt;big&gt;', 'mid', 'small', '&lt;big&gt;']);
    expect(html).toContain(
      '<td class="num">4</td><td class="num">1</td><td class="num">1</td><td data-v="120">≥ 120 days</td><td>ok</td>',
    );
    expect(html).toContain('<td class="name">gone</td>');
  });

  it('lists every key up to the threshold', () => {
    expect(renderHtml(model(states), { maxRows: 7 })).toContain('table class="keys');
  });
});
