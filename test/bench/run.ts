/**
 * `npm run bench`: measures the audit against the limits the issue sets, each ratio against a limit measured
 * or computed in the same run, prints the figures and writes them to test/bench/results.json (quoted by the
 * README's performance table). Run it on a quiet machine: other load inflates every time.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchBundle } from './bundle.js';
import { benchDiff } from './diff.js';
import { benchWalk } from './walk.js';

const RESULTS = fileURLToPath(new URL('./results.json', import.meta.url));
const MiB = 1024 * 1024;

const verdict = (ok: boolean) => (ok ? 'meets the target' : 'MISSES the target');
const ms = (value: number) => `${value.toFixed(1)} ms`;

const startedAt = new Date().toISOString();
const machine = {
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: availableParallelism(),
  loadAverageAtStart: loadavg()[0],
};
console.log(`bigstate-key-audit benchmark on Node ${machine.node}, ${machine.cores} cores (${machine.cpu})`);
console.log(`load average at start: ${machine.loadAverageAtStart?.toFixed(2)}\n`);

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

const results = {
  startedAt,
  machine,
  walk,
  diff: { ...diff, limitMs: 1000, limitMiB: 512 },
  bundle: { ...bundle, ownVsEmptyMs: ownVsEmpty, totalVsEmptyMs: totalVsEmpty },
  targets: {
    walkRatio: walk.ratio <= 1.1,
    walkRatioToMeasuredFloor: walk.ratioToFloor <= 1.1,
    connections: walk.connections <= walk.connectionLimit,
    diffTime: diff.diffMs < 1000,
    diffMemory: diff.peakDiffMemoryMiB < 512,
    bundleSize: bundle.bundleBytes <= bundle.bundleLimitBytes,
    bundleOwnLoad: ownVsEmpty < bundle.loadLimitMs,
    bundleTotalLoad: totalVsEmpty < bundle.loadLimitMs,
  },
};
writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nresults written to ${RESULTS} (${(JSON.stringify(results).length / MiB).toFixed(3)} MiB)`);
