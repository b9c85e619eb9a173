/**
 * The key inventory report as one self-contained HTML file: inline CSS, one small inline script, inline SVG
 * charts; no external font, script, style or image, so it opens the same from S3, a mail attachment or a disk.
 *
 * - **Safe with any name.** Every name comes from BigState. Names go through `displayName` (a name with a control
 *   character, a bidi control, white space at an end or a leading `"` is shown as a quoted, escaped literal) and free
 *   text (display names, failure reasons) through `displayText`, then through {@link escapeHtml}; nothing from the
 *   model is ever placed in the script or the style. A Content-Security-Policy meta tag (`default-src 'none'`)
 *   allows only the one inline script and the one inline style, by their SHA-256 hashes: even an injected
 *   `<script>` would not run.
 * - **Readable without script.** Every table is complete in the markup; the script only adds the filter box
 *   (hidden until the script shows it) and sortable column headers.
 * - **Phone and print.** A fluid layout, tables that scroll sideways on narrow screens, print CSS (no filter, no
 *   scrolling, rows kept whole, headers repeated on each page).
 * - **Large inventories.** Above {@link HTML_MAX_ROWS} keys the page shows per-principal totals (largest first)
 *   instead of every key, and says that the CSV lists them all.
 */
import { createHash } from 'node:crypto';
import { displayName, displayText } from '../commons/text.js';
import type { ReportKey, ReportModel, ReportPrincipal } from './model.js';
import { reportTotals, typeLabel } from './totals.js';

/** Above this many keys the HTML summarises (per-principal totals); the CSV always lists every key. */
export const HTML_MAX_ROWS = 20_000;

/** Options of {@link renderHtml}. */
export interface RenderHtmlOptions {
  /** @default {@link HTML_MAX_ROWS} */
  readonly maxRows?: number;
  /** The CSV's file name, to point to from a summarised page. @default `latest.csv` */
  readonly csvName?: string;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for HTML content or a double-quoted attribute value: `&`, `<`, `>`, `"` and `'` as entities. */
export function escapeHtml(text: string): string {
  return /[&<>"']/.test(text) ? text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string) : text;
}

/** A name for the page: escaped for people (`displayName`), then for HTML. */
const nameHtml = (name: string): string => escapeHtml(displayName(name));
/** Free text for the page: escaped for people (`displayText`), then for HTML. */
const textHtml = (text: string): string => escapeHtml(displayText(text));

const pad = (n: number): string => String(n).padStart(2, '0');

/** `2026-11-28` (UTC); a time that does not parse is shown as the text it is, escaped. */
function dayOf(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return textHtml(iso);
  return `${at.getUTCFullYear()}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}`;
}

/** `2026-11-28 07:05 UTC`. */
function minuteOf(iso: string): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return textHtml(iso);
  return `${dayOf(iso)} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
}

/** A cell with a `<time>`: the day shown, the exact time in `datetime` (the sort value). */
function timeCell(iso: string): string {
  return `<td><time datetime="${escapeHtml(iso)}">${dayOf(iso)}</time></td>`;
}

const plural = (n: number, one: string, many = `${one}s`): string =>
  `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

// The page's style and script: constants, hashed once for the Content-Security-Policy.
const STYLE = `
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--card:#f6f8fa;--line:#d1d9e0;--accent:#0969da;--bad:#cf222e;--badbg:#ffebe9;--warn:#7d4e00;--warnbg:#fff8c5}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#151b23;--line:#3d444d;--accent:#4493f8;--bad:#f85149;--badbg:#3c1618;--warn:#d29922;--warnbg:#3a2d0b}}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:76rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;margin:0 0 .25rem}
h2{font-size:1.15rem;margin:0;overflow-wrap:anywhere}
h3{font-size:.95rem;margin:1rem 0 .4rem}
.made,.muted,.info{color:var(--muted)}
.made{margin:0 0 1rem;overflow-wrap:anywhere}
.totals{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.5rem;margin:0 0 1rem}
.totals div{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.45rem .7rem}
.totals dt{color:var(--muted);font-size:.8rem}
.totals dd{margin:0;font-size:1.45rem;font-weight:600}
.totals .bad dd{color:var(--bad)}
.totals .warn dd{color:var(--warn)}
.note{background:var(--card);border-left:4px solid var(--accent);padding:.5rem .75rem;margin:1rem 0}
.failure{background:var(--badbg);border-left:4px solid var(--bad);padding:.45rem .7rem;margin:.5rem 0;overflow-wrap:anywhere}
.filter{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:0 0 1rem}
.filter input{flex:1 1 14rem;font:inherit;padding:.4rem .6rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
nav ol{columns:16rem;margin:.5rem 0;padding-left:1.5rem}
nav a{overflow-wrap:anywhere}
a{color:var(--accent)}
section.principal{border-top:2px solid var(--line);margin-top:1.5rem;padding-top:1rem}
.head{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:flex-start;justify-content:space-between}
.head p{margin:.2rem 0}
.chart{margin:0;flex:0 1 20rem;min-width:14rem}
.chart svg{display:block;width:100%;height:auto}
.chart text{fill:var(--muted);font-size:11px;font-family:inherit}
.chart .axis{stroke:var(--line);stroke-width:1}
.chart polyline{fill:none;stroke:var(--accent);stroke-width:2;stroke-linejoin:round}
.chart circle{fill:var(--accent)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:6px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.3rem .55rem;border-bottom:1px solid var(--line);white-space:nowrap;vertical-align:top}
tbody tr:last-child td{border-bottom:0}
th{background:var(--card);font-weight:600;font-size:.85rem}
th button{all:inherit;cursor:pointer;padding:0}
th button::after{content:" \\2195";color:var(--muted)}
th[aria-sort=ascending] button::after{content:" \\2191"}
th[aria-sort=descending] button::after{content:" \\2193"}
td.name{white-space:normal;overflow-wrap:anywhere;min-width:11rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.num{text-align:right}
td small{color:var(--muted);font-size:.75rem;margin-left:.35em}
tr.stale td{background:var(--warnbg)}
.badge{display:inline-block;border-radius:1em;padding:0 .5em;font-size:.8rem;font-weight:600;background:var(--warnbg);color:var(--warn);border:1px solid currentColor}
.legend{font-size:.85rem;color:var(--muted);margin:.4rem 0 0}
footer{margin:2rem 0 1rem;color:var(--muted);font-size:.85rem}
@media (max-width:40rem){main{padding:.6rem}h1{font-size:1.2rem}.totals dd{font-size:1.2rem}}
@media print{
:root{--fg:#000;--muted:#444;--bg:#fff;--card:#fff;--line:#999;--warnbg:#eee;--badbg:#fff}
body{font-size:10pt}main{max-width:none;padding:0}
.filter,nav,th button::after{display:none}
.scroll{overflow:visible;border:0}
th,td{white-space:normal}
thead{display:table-header-group}
tr,.chart,.totals,.head{break-inside:avoid}
section.principal{break-before:auto}
a{color:inherit;text-decoration:none}
}
`;

const SCRIPT = `
(() => {
  const box = document.getElementById('filter');
  const shown = document.getElementById('shown');
  const rows = [...document.querySelectorAll('table[data-filter] tbody tr')];
  const counted = [...document.querySelectorAll('table[data-count] tbody tr')];
  const what = document.querySelector('table[data-count]')?.dataset.count ?? 'rows';
  const sections = [...document.querySelectorAll('section[data-principal]')];
  const headText = (el) => el.closest('section[data-principal]')?.querySelector('h2')?.textContent ?? '';
  let texts;
  box.closest('.filter').hidden = false;
  box.addEventListener('input', () => {
    const q = box.value.trim().toLowerCase();
    texts ??= rows.map((r) => (headText(r) + '\\n' + r.textContent).toLowerCase());
    rows.forEach((r, i) => { r.hidden = q !== '' && !texts[i].includes(q); });
    for (const s of sections) {
      s.hidden = q !== '' && !s.querySelector('tbody tr:not([hidden])') && !headText(s).toLowerCase().includes(q);
    }
    const n = counted.filter((r) => !r.hidden).length;
    shown.textContent = q === '' ? '' : n + ' of ' + counted.length + ' ' + what + ' shown';
  });
  const valueOf = (row, col) => {
    const c = row.cells[col];
    return c ? (c.dataset.v ?? c.querySelector('time')?.dateTime ?? c.textContent) : '';
  };
  const compare = (x, y) => {
    const a = Number(x), b = Number(y);
    if (x !== '' && y !== '' && !Number.isNaN(a) && !Number.isNaN(b)) return a - b;
    return x < y ? -1 : x > y ? 1 : 0;
  };
  for (const table of document.querySelectorAll('table.sortable')) {
    const heads = [...table.tHead.rows[0].cells];
    heads.forEach((th, col) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.append(...th.childNodes);
      th.append(button);
      button.addEventListener('click', () => {
        const dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        for (const h of heads) h.removeAttribute('aria-sort');
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        const body = table.tBodies[0];
        const sorted = [...body.rows].sort((r, s) => dir * compare(valueOf(r, col), valueOf(s, col)));
        const fragment = document.createDocumentFragment();
        for (const r of sorted) fragment.append(r);
        body.append(fragment);
      });
    });
  }
})();
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** The page's Content-Security-Policy: nothing but its own inline style and script. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${hash(STYLE)}`,
  `script-src ${hash(SCRIPT)}`,
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

/** The key inventory report as one HTML page. */
export function renderHtml(model: ReportModel, options: RenderHtmlOptions = {}): string {
  const maxRows = options.maxRows ?? HTML_MAX_ROWS;
  const csvName = options.csvName ?? 'latest.csv';
  const totals = reportTotals(model);
  const summarised = totals.keys > maxRows;
  const out: string[] = [];
  const hostText = model.host === '' ? 'an unknown host' : textHtml(model.host);
  out.push(
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    `<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">\n`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    '<meta name="referrer" content="no-referrer">\n',
    `<title>BigState key inventory · ${hostText} · ${minuteOf(model.generatedAt)}</title>\n`,
    `<style>${STYLE}</style>\n</head>\n<body>\n<main>\n`,
    '<h1>BigState key inventory</h1>\n',
    `<p class="made">Made ${minuteOf(model.generatedAt)} by run <code>${textHtml(model.runId)}</code>`,
    ` from <code>${hostText}</code>. Key-age policy: `,
    model.maxKeyAgeDays === null
      ? 'none (no key is marked stale).'
      : `keys older than ${plural(model.maxKeyAgeDays, 'day')} are stale.`,
    '</p>\n<dl class="totals">',
    total('Principals', totals.principals),
    total('Keys', totals.keys),
    total('Stale keys', totals.staleKeys, totals.staleKeys > 0 ? 'warn' : ''),
    total('Removed, last 30 days', totals.removedRecently),
    total('Failing principals', totals.failingPrincipals, totals.failingPrincipals > 0 ? 'bad' : ''),
    '</dl>\n',
    '<div class="filter" hidden><input id="filter" type="search" placeholder="Filter keys and principals" ',
    'aria-label="Filter keys and principals" autocomplete="off" spellcheck="false">',
    '<span id="shown" class="muted" aria-live="polite"></span></div>\n',
  );
  if (model.principals.length === 0) {
    out.push('<p class="note">No principal has a state yet: nothing to report.</p>\n');
  } else if (summarised) {
    renderSummary(out, model, totals.keys, maxRows, csvName);
  } else {
    renderFull(out, model);
  }
  out.push(
    '<footer>Ages are whole days to the time the report was made: from the creation time BigState returned ',
    'for the key when it did, otherwise from when an audit first saw it (marked <b>≥</b>, "from first seen": ',
    'a lower bound, the key may be older). Dates are UTC. Names are shown as BigState has them; a name holding ',
    'control or bidi characters, or white space at an end, is shown quoted with those characters escaped.</footer>\n',
    `</main>\n<script>${SCRIPT}</script>\n</body>\n</html>\n`,
  );
  return out.join('');
}

function total(label: string, value: number, tone = ''): string {
  return `<div${tone === '' ? '' : ` class="${tone}"`}><dt>${label}</dt><dd>${value.toLocaleString('en-US')}</dd></div>`;
}

/** `tram_client — Client for tram app (application)`, escaped. */
function principalTitle(principal: ReportPrincipal): string {
  const parts: string[] = [];
  const display = principal.info?.displayName;
  if (display !== null && display !== undefined && display !== '') parts.push(textHtml(display));
  const type = typeLabel(principal.info?.type);
  if (type !== '') parts.push(`(${type})`);
  const info = parts.length === 0 ? '' : ` <span class="info">— ${parts.join(' ')}</span>`;
  return `${nameHtml(principal.principal)}${info}`;
}

function renderFull(out: string[], model: ReportModel): void {
  if (model.principals.length > 1) {
    out.push(`<nav><details><summary>Principals (${model.principals.length})</summary><ol>`);
    model.principals.forEach((principal, index) => {
      out.push(
        `<li><a href="#p-${index}">${nameHtml(principal.principal)}</a> <span class="muted">${principal.keys.length}</span></li>`,
      );
    });
    out.push('</ol></details></nav>\n');
  }
  model.principals.forEach((principal, index) => {
    renderPrincipal(out, principal, index);
  });
}

function renderPrincipal(out: string[], principal: ReportPrincipal, index: number): void {
  const stale = principal.keys.reduce((n, key) => n + (key.stale ? 1 : 0), 0);
  const facts = [plural(principal.keys.length, 'key')];
  if (stale > 0) facts.push(`${stale} stale`);
  if (principal.removedRecently.length > 0)
    facts.push(`${principal.removedRecently.length} removed in 30 days`);
  out.push(
    `<section class="principal" id="p-${index}" data-principal>\n<div class="head"><div>`,
    `<h2>${principalTitle(principal)}</h2><p class="muted">${facts.join(' · ')}</p>`,
  );
  if (principal.failure !== null) {
    out.push(
      `<p class="failure"><b>Last run failed:</b> ${textHtml(principal.failure)}. `,
      principal.keys.length > 0
        ? 'The keys below are from its last complete audit.'
        : 'No complete audit yet.',
      '</p>',
    );
  }
  out.push('</div>', chartSvg(principal, index), '</div>\n');
  if (principal.keys.length === 0) {
    out.push('<p class="muted">No keys.</p>\n');
  } else {
    out.push(
      '<div class="scroll"><table class="keys sortable" data-filter data-count="keys">',
      '<thead><tr><th>Key</th><th class="num">Age (days)</th><th>Stale</th><th>Created</th>',
      '<th>First seen</th><th>Last seen</th></tr></thead><tbody>\n',
    );
    for (const key of principal.keys) out.push(keyRow(key));
    out.push('</tbody></table></div>\n');
    if (principal.keys.some((key) => key.ageFrom === 'first-seen')) {
      out.push(
        '<p class="legend">≥ from first seen: BigState gave no creation time, so the age counts from the first ',
        'audit that saw the key (a lower bound).</p>\n',
      );
    }
  }
  if (principal.removedRecently.length > 0) {
    out.push(
      '<h3>Removed in the last 30 days</h3>',
      '<div class="scroll"><table class="removed sortable" data-filter><thead><tr><th>Key</th><th>Removed</th></tr></thead><tbody>\n',
    );
    for (const removal of principal.removedRecently) {
      const exact = escapeHtml(removal.removedAt);
      out.push(
        `<tr><td class="name">${nameHtml(removal.name)}</td><td><time datetime="${exact}">${minuteOf(removal.removedAt)}</time></td></tr>\n`,
      );
    }
    out.push('</tbody></table></div>\n');
  }
  out.push('</section>\n');
}

function keyRow(key: ReportKey): string {
  const created = key.createdAt === null ? '<td data-v="" class="muted">—</td>' : timeCell(key.createdAt);
  const age =
    key.ageFrom === 'first-seen'
      ? `<td class="num" data-v="${key.ageDays}">≥ ${key.ageDays}<small>from first seen</small></td>`
      : `<td class="num" data-v="${key.ageDays}">${key.ageDays}</td>`;
  const stale = key.stale ? '<td><span class="badge">stale</span></td>' : '<td></td>';
  return `<tr${key.stale ? ' class="stale"' : ''}><td class="name">${nameHtml(key.name)}</td>${age}${stale}${created}${timeCell(key.firstSeen)}${timeCell(key.lastSeen)}</tr>\n`;
}

function renderSummary(
  out: string[],
  model: ReportModel,
  keys: number,
  maxRows: number,
  csvName: string,
): void {
  out.push(
    `<p class="note">This inventory holds ${plural(keys, 'key')}, more than the ${maxRows.toLocaleString('en-US')} `,
    `this page lists one by one: it shows the totals of each principal, the largest first. <b>${escapeHtml(csvName)}</b>, `,
    'written beside this page, lists every key.</p>\n',
    '<div class="scroll"><table class="principals sortable" data-filter data-count="principals">',
    '<thead><tr><th>Principal</th><th class="num">Keys</th><th class="num">Stale</th>',
    '<th class="num">Removed, 30 days</th><th>Oldest key</th><th>Last run</th></tr></thead><tbody>\n',
  );
  const ordered = [...model.principals].sort(
    (a, b) => b.keys.length - a.keys.length || (a.principal < b.principal ? -1 : 1),
  );
  for (const principal of ordered) {
    let stale = 0;
    let oldest: ReportKey | undefined;
    for (const key of principal.keys) {
      if (key.stale) stale++;
      if (oldest === undefined || key.ageDays > oldest.ageDays) oldest = key;
    }
    const oldestCell =
      oldest === undefined
        ? '<td data-v="-1" class="muted">—</td>'
        : `<td data-v="${oldest.ageDays}">${oldest.ageFrom === 'first-seen' ? '≥ ' : ''}${plural(oldest.ageDays, 'day')}</td>`;
    const run =
      principal.failure === null
        ? '<td>ok</td>'
        : `<td class="name"><b>failed:</b> ${textHtml(principal.failure)}</td>`;
    out.push(
      `<tr${stale > 0 ? ' class="stale"' : ''}><td class="name">${principalTitle(principal)}</td>`,
      `<td class="num">${principal.keys.length}</td><td class="num">${stale}</td>`,
      `<td class="num">${principal.removedRecently.length}</td>${oldestCell}${run}</tr>\n`,
    );
  }
  out.push('</tbody></table></div>\n');
  const removals = model.principals.flatMap((principal) =>
    principal.removedRecently.map((removal) => ({ principal: principal.principal, ...removal })),
  );
  if (removals.length > 0) {
    removals.sort((a, b) => (a.removedAt < b.removedAt ? 1 : a.removedAt > b.removedAt ? -1 : 0));
    const shown = removals.slice(0, maxRows);
    out.push(
      `<h3>Removed in the last 30 days${shown.length < removals.length ? ` (the latest ${shown.length} of ${removals.length})` : ''}</h3>`,
      '<div class="scroll"><table class="removed sortable" data-filter><thead><tr><th>Principal</th><th>Key</th><th>Removed</th></tr></thead><tbody>\n',
    );
    for (const removal of shown) {
      const exact = escapeHtml(removal.removedAt);
      out.push(
        `<tr><td class="name">${nameHtml(removal.principal)}</td><td class="name">${nameHtml(removal.name)}</td>`,
        `<td><time datetime="${exact}">${minuteOf(removal.removedAt)}</time></td></tr>\n`,
      );
    }
    out.push('</tbody></table></div>\n');
  }
}

// The chart's drawing area, in SVG user units (the SVG scales to its box).
const CHART = { width: 360, height: 132, left: 44, right: 12, top: 12, bottom: 28 } as const;
/** The most points a chart draws: a longer series is thinned evenly, first and last kept. */
export const CHART_MAX_POINTS = 400;

/** A small line chart of the principal's key count over time: axes labelled with counts and dates. */
function chartSvg(principal: ReportPrincipal, index: number): string {
  const series = thin(
    principal.series.filter((point) => Number.isFinite(point.count) && !Number.isNaN(Date.parse(point.at))),
    CHART_MAX_POINTS,
  );
  const titleId = `c-${index}`;
  const { width, height, left, right, top, bottom } = CHART;
  const x0 = left;
  const x1 = width - right;
  const y0 = height - bottom;
  const y1 = top;
  const first = series[0];
  const last = series[series.length - 1];
  if (first === undefined || last === undefined) {
    return '<figure class="chart"><figcaption class="muted legend">No key-count history yet.</figcaption></figure>';
  }
  const title =
    series.length === 1
      ? `Key count: ${first.count} on ${dayOf(first.at)}`
      : `Key count over time: ${first.count} on ${dayOf(first.at)}, ${last.count} on ${dayOf(last.at)}`;
  const parts: string[] = [
    `<figure class="chart"><svg viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${titleId}" xmlns="http://www.w3.org/2000/svg">`,
    `<title id="${titleId}">${title}</title>`,
    `<line class="axis" x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}"/><line class="axis" x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}"/>`,
  ];

  let max = 0;
  for (const point of series) max = Math.max(max, point.count);
  const yMax = Math.max(1, max);
  const t0 = Date.parse(first.at);
  const t1 = Date.parse(last.at);
  const xOf = (at: string): number =>
    t1 > t0 ? x0 + ((Date.parse(at) - t0) / (t1 - t0)) * (x1 - x0) : (x0 + x1) / 2;
  const yOf = (count: number): number => y0 - (count / yMax) * (y0 - y1);
  const round = (n: number): number => Math.round(n * 10) / 10;
  parts.push(
    `<text x="${x0 - 6}" y="${y1 + 4}" text-anchor="end">${yMax}</text>`,
    `<text x="${x0 - 6}" y="${y0 + 4}" text-anchor="end">0</text>`,
  );
  if (series.length === 1) {
    parts.push(
      `<circle cx="${round(xOf(first.at))}" cy="${round(yOf(first.count))}" r="3.5"/>`,
      `<text x="${(x0 + x1) / 2}" y="${height - 8}" text-anchor="middle">${dayOf(first.at)}</text>`,
    );
  } else {
    const points = series.map((point) => `${round(xOf(point.at))},${round(yOf(point.count))}`).join(' ');
    parts.push(
      `<polyline points="${points}"/>`,
      `<circle cx="${round(xOf(last.at))}" cy="${round(yOf(last.count))}" r="3"/>`,
      `<text x="${x0}" y="${height - 8}" text-anchor="start">${dayOf(first.at)}</text>`,
      `<text x="${x1}" y="${height - 8}" text-anchor="end">${dayOf(last.at)}</text>`,
    );
  }
  parts.push('</svg><figcaption class="muted legend">Key count over time</figcaption></figure>');
  return parts.join('');
}

/** At most `max` points, evenly spread, the first and the last always among them. */
function thin<T>(points: readonly T[], max: number): readonly T[] {
  if (points.length <= max) return points;
  const kept: T[] = [];
  const step = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) kept.push(points[Math.round(i * step)] as T);
  return kept;
}
