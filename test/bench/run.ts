/**
 * `npm run bench`: measures the audit against the limits the issue sets, each ratio against a limit measured
 * or computed in the same run, prints the figures and writes them to test/bench/results.json (quoted by the
 * README's performance table). Run it on a quiet machine: other load inflates every time.
 *
 * `npm run bench -- --scale` runs only the fan-out scale simulation (10,000 principals x 2 pages at 50 ms, about
 * 70 s) and records it in results.json beside the other figures, which it leaves as they were; a plain
 * `npm run bench` prints the last recorded scale figures. `--principals=N` and `--batch-size=N` change the
 * simulation's size and the Map's batch size.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchReport, formatReportFigures } from '../report/bench.js';
import { benchBundle } from './bundle.js';
import { benchWalkComparison } from './compare.js';
import { benchDiff } from './diff.js';
import type { ScaleFigures } from './scale.js';
import { benchWalk } from './walk.js';

const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const MiB = 1024 * 1024;

const verdict = (ok: boolean) => (ok ? 'meets the target' : 'MISSES the target');
const ms = (value: number) => `${value.toFixed(1)} ms`;
const seconds = (value: number) => `${(value / 1000).toFixed(1)} s`;

const startedAt = new Date().toISOString();
const machine = {
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: availableParallelism(),
  loadAverageAtStart: loadavg()[0],
};
console.log(`bigstate-key-audit benchmark on Node ${machine.node}, ${machine.cores} cores (${machine.cpu})`);
console.log(`load average at start: ${machine.loadAverageAtStart?.toFixed(2)}\n`);

type Recorded = Record<string, unknown> & {
  scale?: ScaleFigures & { startedAt: string; machine: typeof machine };
  targets?: Record<string, boolean>;
};
const recorded: Recorded = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Recorded) : {};

/** `--name=N` as a positive integer, or the fallback. */
function intOption(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  const value = arg === undefined ? fallback : Number(arg.slice(name.length + 3));
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
  return value;
}

function printScale(scale: ScaleFigures, label: string): void {
  const n = (value: number) => value.toLocaleString('en-US');
  console.log(
    `   ${label}: ${n(scale.principals)} principals x ${scale.pagesPerPrincipal} pages at ${scale.latencyMs} ms, maxRequestsInFlight ${scale.maxRequestsInFlight}`,
  );
  console.log(
    `   model: ${scale.batches} batches of ${scale.batchSize} principals, ${scale.mapConcurrency} children at a time (floor(${scale.maxRequestsInFlight} / ${scale.perChild})), ${scale.perChild} principals at a time per child`,
  );
  console.log(
    `   limit: ceil(${n(scale.principals)} x ${scale.pagesPerPrincipal} / ${scale.maxRequestsInFlight}) x ${scale.latencyMs} ms = ${seconds(scale.limitMs)}`,
  );
  console.log(`   wall time: ${seconds(scale.wallMs)} = ${scale.ratio.toFixed(3)}x the limit`);
  console.log(
    `   BigState requests in flight across children: peak ${scale.peakInFlight} (limit ${scale.maxRequestsInFlight}), ${scale.heldBack} held back; ${n(scale.requests)} requests, ${scale.connections} connections`,
  );
  console.log(
    `   per schedule period (${scale.schedule}, the default): ${seconds(scale.wallMs)} of ${seconds(scale.schedulePeriodMs)} = ${(scale.shareOfPeriod * 100).toFixed(2)}%: ${scale.fitsPeriod ? 'fits' : 'DOES NOT FIT'}`,
  );
  console.log(
    `   single mode, one function at ${scale.perChild} at a time, would need at least ${seconds(scale.singleModeLimitMs)} (computed, not run)`,
  );
  console.log(
    '   not modelled: Step Functions scheduling of children, cold starts, S3 reads and writes, TLS handshakes (each child opens its own pool, as a worker does)',
  );
}

if (process.argv.includes('--scale')) {
  // The contract's defaults, from the stack's own configuration (loaded only here: it brings aws-cdk-lib).
  const { DEFAULT_MAX_REQUESTS_IN_FLIGHT } = await import('../../infra/config.js');
  const { DEFAULT_SCHEDULE, parseSchedule } = await import('../../infra/schedule.js');
  const { benchScale } = await import('./scale.js');
  const parsed = parseSchedule(DEFAULT_SCHEDULE);
  if (!('expression' in parsed) || parsed.interval === undefined)
    throw new Error('the default schedule has no rate');
  const principals = intOption('principals', 10_000);
  console.log(
    'Scale: a fan-out run through the Distributed Map concurrency model, simulator in its own process, real HTTP on loopback',
  );
  const scale = await benchScale({
    principals,
    pages: 2,
    latencyMs: 50,
    maxRequestsInFlight: DEFAULT_MAX_REQUESTS_IN_FLIGHT,
    perChild: 4,
    batchSize: intOption('batch-size', 100),
    schedule: DEFAULT_SCHEDULE,
    schedulePeriodMs: parsed.interval.toMilliseconds(),
  });
  printScale(scale, 'measured');
  const results = {
    ...recorded,
    scale: { ...scale, startedAt, machine },
    targets: { ...recorded.targets, scaleFitsSchedulePeriod: scale.fitsPeriod },
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nscale figures written to ${RESULTS}; the others in it are left as they were`);
  process.exit(0);
}

console.log('1. Walk: 40 principals x 25 pages, 20 ms simulated latency, simulator in its own process');
const walk = await benchWalk({});
console.log(
  `   critical path (25 pages x 20 ms x ${walk.principals / walk.concurrency} principals per slot of ${walk.concurrency}): ${ms(walk.criticalPathMs)}`,
);
console.log(
  `   audit walk:   ${ms(walk.walkMs)} = ${walk.ratio.toFixed(3)}x the critical path (target <= 1.10x): ${verdict(walk.ratio <= 1.1)}`,
);
console.log(
  `   connections opened: ${walk.connections} for ${walk.requests} requests (target <= concurrency + 2 = ${walk.connectionLimit}): ${verdict(walk.connections <= walk.connectionLimit)}`,
);
console.log(
  `   naive peer (sequential, a new connection per request): ${ms(walk.naive.walkMs)} = ${walk.naive.ratio.toFixed(2)}x, ${walk.naive.connections} connections`,
);
console.log(`   the audit is ${(walk.naive.walkMs / walk.walkMs).toFixed(1)}x faster than the naive peer\n`);

console.log('2. Diff: 1,000,000 keys, 10% churn (5% removed, 5% added), reconcile + next snapshot');
const diff = benchDiff();
console.log(`   time: ${ms(diff.diffMs)} (target < 1000 ms): ${verdict(diff.diffMs < 1000)}`);
console.log(
  `   memory the diff adds: ${diff.peakDiffMemoryMiB.toFixed(1)} MiB (target < 512 MiB): ${verdict(diff.peakDiffMemoryMiB < 512)}`,
);
console.log(
  `   process peak, inputs included (snapshot + two walks of 1M keys): ${diff.peakProcessMemoryMiB.toFixed(0)} MiB\n`,
);

console.log('3. Bundle: the function as `cdk synth` builds it');
const bundle = benchBundle();
console.log(
  `   size: ${(bundle.bundleBytes / 1024).toFixed(1)} KiB (target <= ${bundle.bundleLimitBytes / 1024} KiB): ${verdict(bundle.bundleBytes <= bundle.bundleLimitBytes)}`,
);
console.log(
  `   module load, median of ${bundle.runs} fresh processes: empty module ${ms(bundle.emptyModuleLoadMs)}, bundle ${ms(bundle.bundleLoadMs)}, the runtime's AWS SDK clients alone ${ms(bundle.sdkOnlyLoadMs)}`,
);
const ownVsEmpty = bundle.ownLoadMs - bundle.emptyModuleLoadMs;
console.log(
  `   the bundle's own share (bundle - SDK alone - empty module): ${ms(ownVsEmpty)} (target < ${bundle.loadLimitMs} ms): ${verdict(ownVsEmpty < bundle.loadLimitMs)}`,
);
const totalVsEmpty = bundle.bundleLoadMs - bundle.emptyModuleLoadMs;
console.log(
  `   with the SDK it imports (bundle - empty module): ${ms(totalVsEmpty)}: ${verdict(totalVsEmpty < bundle.loadLimitMs)}${totalVsEmpty < bundle.loadLimitMs ? '' : ' (the four SDK clients the runtime provides account for most of it)'}`,
);

console.log(
  '\n4. Walk vs a minimal node:http keep-alive client: 8 principals x 25 pages at 20 ms, 4 at a time, interleaved runs',
);
const comparison = await benchWalkComparison({ principals: 8 });
console.log(
  `   medians of ${comparison.rounds} runs each (after one warm-up round): audit walk ${ms(comparison.audit.medianMs)}, minimal node:http ${ms(comparison.minimalHttp.medianMs)}, minimal fetch ${ms(comparison.minimalFetch.medianMs)}; critical path ${ms(comparison.criticalPathMs)}`,
);
console.log(
  `   spread of the runs: audit ${ms(comparison.audit.minMs)} to ${ms(comparison.audit.maxMs)}, node:http ${ms(comparison.minimalHttp.minMs)} to ${ms(comparison.minimalHttp.maxMs)}, fetch ${ms(comparison.minimalFetch.minMs)} to ${ms(comparison.minimalFetch.maxMs)}`,
);
console.log(
  `   audit / minimal node:http: ${comparison.ratio.toFixed(3)}x (median of per-round ratios ${comparison.medianOfRoundRatios.toFixed(3)}x; target <= ${comparison.target}x): ${verdict(comparison.ratio <= comparison.target)}`,
);
console.log(
  `   of which fetch itself (minimal fetch / minimal node:http): ${comparison.fetchOverHttp.toFixed(3)}x; the audit on top of fetch: ${comparison.auditOverFetch.toFixed(3)}x`,
);

console.log(
  '\n5. Report: the inventory report (HTML and CSV) of 100 principals x 1,000 keys, as the Lambda renders it',
);
const report = benchReport();
console.log(`   ${formatReportFigures(report)}`);

console.log(
  '\n6. Scale: fan-out of 10,000 principals x 2 pages at 50 ms (`npm run bench -- --scale`, about 70 s)',
);
if (recorded.scale === undefined) console.log('   not recorded yet: run `npm run bench -- --scale`');
else printScale(recorded.scale, `recorded ${recorded.scale.startedAt}, not measured in this run`);

const results = {
  startedAt,
  machine,
  walk,
  diff: { ...diff, limitMs: 1000, limitMiB: 512 },
  bundle: { ...bundle, ownVsEmptyMs: ownVsEmpty, totalVsEmptyMs: totalVsEmpty },
  walkComparison: comparison,
  report,
  ...(recorded.scale === undefined ? {} : { scale: recorded.scale }),
  targets: {
    walkRatio: walk.ratio <= 1.1,
    walkRatioToMeasuredFloor: walk.ratioToFloor <= 1.1,
    connections: walk.connections <= walk.connectionLimit,
    diffTime: diff.diffMs < 1000,
    diffMemory: diff.peakDiffMemoryMiB < 512,
    bundleSize: bundle.bundleBytes <= bundle.bundleLimitBytes,
    bundleOwnLoad: ownVsEmpty < bundle.loadLimitMs,
    bundleTotalLoad: totalVsEmpty < bundle.loadLimitMs,
    walkVsMinimalHttp: comparison.ratio <= comparison.target,
    reportTime: report.ms < 2000,
    reportMemory: report.heapMb < 100,
    ...(recorded.scale === undefined ? {} : { scaleFitsSchedulePeriod: recorded.scale.fitsPeriod }),
  },
};
writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nresults written to ${RESULTS} (${(JSON.stringify(results).length / MiB).toFixed(3)} MiB)`);
