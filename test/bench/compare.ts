/**
 * The audit's walk against a minimal `node:http` keep-alive client at the same concurrency, side by side: the same
 * principals, the same pages and cursors, the same simulator (in its own process). A third arm, a minimal client
 * over Node's `fetch`, tells what of the gap is `fetch` itself and what the audit adds on top of it.
 *
 * Runs are interleaved (the order of the arms rotates every round) after one unmeasured warm-up round, and each
 * arm's median is reported: on a shared machine a single run says little. Nothing here is a timed assertion.
 */
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { runAudit } from '../../functions/core/audit.js';
import { startRemoteSimulator } from './remote-simulator.js';
import { emptyStore, KEY, nowhere, PAGE_SIZE } from './walk.js';

export interface WalkComparisonFigures {
  readonly principals: number;
  readonly pagesPerPrincipal: number;
  readonly latencyMs: number;
  readonly concurrency: number;
  /** Pages per concurrency slot x latency: what no client can beat. */
  readonly criticalPathMs: number;
  /** Measured rounds (each runs every arm once), after one warm-up round that is not counted. */
  readonly rounds: number;
  readonly audit: ArmFigures;
  readonly minimalHttp: ArmFigures;
  readonly minimalFetch: ArmFigures;
  /** Median of the audit's walk / median of the minimal node:http client: the figure (target <= 1.03). */
  readonly ratio: number;
  /** The same ratio computed round by round, then its median: a check on the ratio of medians. */
  readonly medianOfRoundRatios: number;
  /** Minimal fetch client / minimal node:http client: what `fetch` itself costs. */
  readonly fetchOverHttp: number;
  /** The audit / minimal fetch client: what the audit adds on top of `fetch`. */
  readonly auditOverFetch: number;
  readonly target: number;
}

/** One arm's runs (the runs themselves are not kept: results.json holds no arrays, which biome would reflow). */
export interface ArmFigures {
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

const HEADERS = { 'x-api-key': KEY, accept: 'application/json', 'content-type': 'application/json' };
/** The cursor as text: BigState's cursors exceed Number.MAX_SAFE_INTEGER, so JSON.parse would round them. */
const NEXT = /"next"\s*:\s*(-?\d+)/;

export async function benchWalkComparison(options: {
  principals?: number;
  pages?: number;
  latencyMs?: number;
  concurrency?: number;
  rounds?: number;
}): Promise<WalkComparisonFigures> {
  const principalCount = options.principals ?? 12;
  const pages = options.pages ?? 25;
  const latencyMs = options.latencyMs ?? 20;
  const concurrency = options.concurrency ?? 4;
  const rounds = options.rounds ?? 5;
  const keysPerPrincipal = (pages - 1) * PAGE_SIZE + PAGE_SIZE / 2;
  const principals: Record<string, { keys: string[] }> = {};
  for (let p = 0; p < principalCount; p += 1) {
    principals[`principal-${p}`] = {
      keys: Array.from({ length: keysPerPrincipal }, (_, k) => `key-${p}-${String(k).padStart(4, '0')}`),
    };
  }
  const names = Object.keys(principals);
  const simulator = await startRemoteSimulator({
    apiKeys: [KEY],
    principals,
    pageSize: PAGE_SIZE,
    latencyMs,
  });
  // One pool per arm for the whole benchmark, as `fetch` keeps its global one: after the warm-up round every arm
  // starts on warm connections.
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  try {
    const arms = {
      audit: async () => {
        const client = new BigStateClient({
          host: simulator.url,
          apiKey: async () => KEY,
          maxConnections: concurrency,
        });
        const summary = await runAudit(
          { bigstate: client, store: emptyStore, channels: [nowhere] },
          { runId: 'compare', principals: names, host: simulator.url, dryRun: true, concurrency },
        );
        await client.close();
        if (!summary.ok) throw new Error('comparison: the audit walk failed');
        for (const result of summary.principals) {
          if (result.keyCount !== keysPerPrincipal) throw new Error(`incomplete walk of ${result.principal}`);
        }
      },
      minimalHttp: () =>
        eachAtATime(names, concurrency, async (principal) => {
          const count = await walkPages(simulator.url, principal, (url) => httpGet(agent, url));
          if (count !== keysPerPrincipal) throw new Error(`node:http walk of ${principal}: ${count} keys`);
        }),
      minimalFetch: () =>
        eachAtATime(names, concurrency, async (principal) => {
          const count = await walkPages(simulator.url, principal, fetchGet);
          if (count !== keysPerPrincipal) throw new Error(`fetch walk of ${principal}: ${count} keys`);
        }),
    } as const;
    const order = Object.keys(arms) as Array<keyof typeof arms>;
    const runs: Record<keyof typeof arms, number[]> = { audit: [], minimalHttp: [], minimalFetch: [] };
    for (let round = 0; round <= rounds; round += 1) {
      for (let i = 0; i < order.length; i += 1) {
        const arm = order[(round + i) % order.length] as keyof typeof arms;
        global.gc?.();
        const started = performance.now();
        await arms[arm]();
        const elapsed = performance.now() - started;
        // Round 0 warms the connections and the JIT of every arm; it is not counted.
        if (round > 0) runs[arm].push(elapsed);
      }
    }
    const audit = figures(runs.audit);
    const minimalHttp = figures(runs.minimalHttp);
    const minimalFetch = figures(runs.minimalFetch);
    const roundRatios = runs.audit.map((ms, i) => ms / (runs.minimalHttp[i] ?? Number.NaN));
    return {
      principals: principalCount,
      pagesPerPrincipal: pages,
      latencyMs,
      concurrency,
      criticalPathMs: pages * latencyMs * Math.ceil(principalCount / concurrency),
      rounds,
      audit,
      minimalHttp,
      minimalFetch,
      ratio: audit.medianMs / minimalHttp.medianMs,
      medianOfRoundRatios: median(roundRatios),
      fetchOverHttp: minimalFetch.medianMs / minimalHttp.medianMs,
      auditOverFetch: audit.medianMs / minimalFetch.medianMs,
      target: 1.03,
    };
  } finally {
    agent.destroy();
    await simulator.close();
  }
}

function figures(runsMs: number[]): ArmFigures {
  return { medianMs: median(runsMs), minMs: Math.min(...runsMs), maxMs: Math.max(...runsMs) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

/** Runs `work` on every item, `concurrency` at a time (as the audit takes its principals). */
async function eachAtATime<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Every page of one principal: `next=0`, then each cursor as the server wrote it, until `-1`; returns the keys. */
async function walkPages(host: string, principal: string, getText: (url: string) => Promise<string>) {
  let next = '0';
  let count = 0;
  do {
    const text = await getText(
      `${host}/v1/apikey/match?principal=${encodeURIComponent(principal)}&next=${next}`,
    );
    const cursor = NEXT.exec(text)?.[1];
    if (cursor === undefined) throw new Error('minimal walk: no cursor');
    count += (JSON.parse(text) as { apiKeys: unknown[] }).apiKeys.length;
    next = cursor;
  } while (next !== '-1');
  return count;
}

/** One GET over a keep-alive `node:http` agent; the body as text. */
function httpGet(agent: Agent, url: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const request = get(url, { agent, headers: HEADERS }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () =>
        response.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${response.statusCode}`)),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** One GET with Node's `fetch` (its global keep-alive pool); the body as text. */
async function fetchGet(url: string): Promise<string> {
  const response = await fetch(url, { headers: HEADERS });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
  return text;
}
