/**
 * Report benchmark: the report of 100 principals x 1,000 keys (the target: under 2 s and under 100 MB in
 * the Lambda), from states as a run holds them (parsed from JSON, half the keys with a creation time, a full
 * 400-point series and 30 recent removals per principal) to the HTML and CSV bytes a run writes to S3. A
 * measurement, not an assertion: `npm run bench` prints it.
 *
 *   node --expose-gc --import tsx test/report/bench.ts      (alone)
 *
 * `heapMb` is the memory the report needs at its peak, over the states the run holds anyway: the model, the HTML and
 * the CSV bytes it holds at the end (measured after a full collection, heap and external memory), plus the CSV's
 * chunks, which live beside the whole CSV while they are joined. `rawHeapMb` is the growth without any collection
 * forced (garbage not yet collected included, so it depends on when V8 collects): an upper bound. Needs
 * `--expose-gc` (as `npm run bench` runs); without it both figures include garbage.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { KeyRecord, Snapshot } from '../../functions/core/ports.js';
import { buildReportModel } from '../../functions/report/build.js';
import { renderCsv, renderCsvBytes } from '../../functions/report/csv.js';
import { HTML_MAX_ROWS, renderHtml } from '../../functions/report/html.js';

export interface ReportFigures {
  readonly principals: number;
  readonly keysPerPrincipal: number;
  /** Build, HTML and CSV, each encoded to UTF-8 bytes, in all. */
  readonly ms: number;
  /** The memory the report needs at its peak (see the module's comment). */
  readonly heapMb: number;
  /** The growth of the heap without a collection forced: garbage included, an upper bound. */
  readonly rawHeapMb: number;
  readonly buildMs: number;
  readonly htmlMs: number;
  readonly csvMs: number;
  readonly htmlBytes: number;
  readonly csvBytes: number;
  /** The HTML summarised (more keys than `HTML_MAX_ROWS`). */
  readonly summarised: boolean;
  /** The largest page that still lists every key (`HTML_MAX_ROWS` keys): time to render and its size. */
  readonly fullPage: { readonly keys: number; readonly ms: number; readonly bytes: number };
}

const MB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/** States as a run reads them from S3 (through JSON). */
export function benchStates(principals: number, keysPerPrincipal: number, now: Date): Snapshot[] {
  const states: Snapshot[] = [];
  const at = (days: number) => new Date(now.getTime() - days * DAY_MS).toISOString();
  for (let p = 0; p < principals; p++) {
    const keys: KeyRecord[] = [];
    for (let k = 0; k < keysPerPrincipal; k++) {
      keys.push({
        name: `key-${String(k).padStart(6, '0')}-${p % 7 === 0 ? '=formula,"quoted"' : 'plain'}`,
        firstSeen: at((k * 13) % 500),
        lastSeen: at(0),
        ...(k % 2 === 0 ? { attributes: { createdAt: at((k * 17) % 900), scope: 'read' } } : {}),
      });
    }
    const principal = `principal-${String(p).padStart(3, '0')}`;
    const state = {
      schemaVersion: 2,
      principal,
      host: 'https://api.bigstate.dev',
      pattern: null,
      auditedAt: at(0),
      runId: 'bench',
      writeId: 'bench#1',
      keyCount: keys.length,
      keys,
      pending: [],
      info: { type: 1, displayName: `Application ${p} <&>` },
      series: Array.from({ length: 400 }, (_, i) => ({ at: at(399 - i), count: keysPerPrincipal - 400 + i })),
      recentRemovals: Array.from({ length: 30 }, (_, i) => ({ name: `gone-${i}`, removedAt: at(i) })),
    };
    states.push(JSON.parse(JSON.stringify(state)) as Snapshot);
  }
  return states;
}

/** The JS heap and the memory outside it (Buffers: `external` includes `arrayBuffers`). */
const memory = () => {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
};

/** Measures the report of `principals` x `keysPerPrincipal` keys. */
export function benchReport(principals = 100, keysPerPrincipal = 1000): ReportFigures {
  const now = new Date('2026-11-28T12:00:00.000Z');
  const states = benchStates(principals, keysPerPrincipal, now);
  const options = { generatedAt: now, runId: 'bench', host: 'https://api.bigstate.dev', maxKeyAgeDays: 365 };
  // A warm-up on a small report, as a warm Lambda container would have had.
  renderCsv(buildReportModel(states.slice(0, 2), options));

  globalThis.gc?.();
  const before = memory();
  let raw = before;
  const started = performance.now();
  const model = buildReportModel(states, options);
  const built = performance.now();
  raw = Math.max(raw, memory());
  const html = Buffer.from(renderHtml(model), 'utf8');
  const htmlDone = performance.now();
  raw = Math.max(raw, memory());
  const csv = renderCsvBytes(model);
  const ended = performance.now();
  raw = Math.max(raw, memory());
  globalThis.gc?.();
  const held = memory() - before;

  // The largest page that still lists every key.
  const fullStates = states.slice(0, Math.floor(HTML_MAX_ROWS / keysPerPrincipal));
  const fullModel = buildReportModel(fullStates, options);
  const fullStarted = performance.now();
  const fullPage = renderHtml(fullModel);
  const fullMs = performance.now() - fullStarted;

  return {
    principals,
    keysPerPrincipal,
    ms: ended - started,
    heapMb: (held + csv.length) / MB,
    rawHeapMb: (raw - before) / MB,
    buildMs: built - started,
    htmlMs: htmlDone - built,
    csvMs: ended - htmlDone,
    htmlBytes: html.length,
    csvBytes: csv.length,
    summarised: model.principals.reduce((n, principal) => n + principal.keys.length, 0) > HTML_MAX_ROWS,
    fullPage: {
      keys: fullModel.principals.length * keysPerPrincipal,
      ms: fullMs,
      bytes: Buffer.byteLength(fullPage),
    },
  };
}

/** The figures in a few lines, for `npm run bench`. */
export function formatReportFigures(figures: ReportFigures): string {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  const keys = (figures.principals * figures.keysPerPrincipal).toLocaleString('en-US');
  return [
    `report of ${figures.principals} principals x ${figures.keysPerPrincipal.toLocaleString('en-US')} keys (${keys} keys): ` +
      `${figures.ms.toFixed(0)} ms (target < 2000 ms: ${figures.ms < 2000 ? 'met' : 'MISSED'}), ` +
      `${figures.heapMb.toFixed(1)} MB (target < 100 MB: ${figures.heapMb < 100 ? 'met' : 'MISSED'}; ` +
      `${figures.rawHeapMb.toFixed(0)} MB with uncollected garbage)`,
    `   build ${figures.buildMs.toFixed(0)} ms, HTML ${figures.htmlMs.toFixed(0)} ms (${kib(figures.htmlBytes)}${figures.summarised ? ', per-principal totals' : ''}), CSV ${figures.csvMs.toFixed(0)} ms (${kib(figures.csvBytes)})`,
    `   largest page listing every key (${figures.fullPage.keys.toLocaleString('en-US')} keys): ${figures.fullPage.ms.toFixed(0)} ms, ${kib(figures.fullPage.bytes)}`,
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(formatReportFigures(benchReport()));
}
