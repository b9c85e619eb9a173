/**
 * Walk benchmark: 40 principals x 25 pages at 20 ms simulated latency, through the real audit core and
 * client, against the critical path (pages per principal x latency x principals per concurrency slot).
 * A naive peer (sequential, a new connection per request) runs in the same process for comparison.
 */
import { get } from 'node:http';
import { performance } from 'node:perf_hooks';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { runAudit } from '../../functions/core/audit.js';
import type { NoticeChannel, SnapshotStore } from '../../functions/core/ports.js';
import { startRemoteSimulator } from './remote-simulator.js';

export interface WalkFigures {
  readonly principals: number;
  readonly pagesPerPrincipal: number;
  readonly latencyMs: number;
  readonly concurrency: number;
  readonly criticalPathMs: number;
  readonly walkMs: number;
  readonly ratio: number;
  readonly connections: number;
  readonly connectionLimit: number;
  readonly requests: number;
  readonly naive: { readonly walkMs: number; readonly connections: number; readonly ratio: number };
  /**
   * The measured floor: the same number of requests in the same pattern (one chain per concurrency slot)
   * as bare keep-alive `fetch` calls with no client logic: what this machine, loopback and the simulator's
   * latency cost before the audit adds anything.
   */
  readonly floor: { readonly walkMs: number; readonly ratio: number };
  /** The audit's walk against that floor. */
  readonly ratioToFloor: number;
}

export const KEY = 'bench-key';
export const PAGE_SIZE = 20;

/** A store with no snapshots that keeps nothing: the benchmark measures walking, not storage. */
export const emptyStore: SnapshotStore = {
  read: async () => undefined,
  write: async () => 'never',
  readRunState: async () => undefined,
  principalsWithState: async function* () {},
  archive: async () => {},
  archiveLocation: (principal, id) => `memory://archive/${principal}/${id}`,
  writeRunState: async () => 'never',
  writeChangeRecord: async () => {},
  readSideFailure: async () => undefined,
  writeSideFailure: async () => 'never',
  deleteSideFailure: async () => {},
  sideFailureSegments: async () => new Set(),
  snapshotLocation: (principal) => `memory://${principal}`,
  changeRecordLocation: (principal, id) => `memory://${principal}/${id}`,
};
export const nowhere: NoticeChannel = { name: 'nowhere', publish: async () => {} };

export async function benchWalk(options: {
  principals?: number;
  pages?: number;
  latencyMs?: number;
  concurrency?: number;
}): Promise<WalkFigures> {
  const principalCount = options.principals ?? 40;
  const pages = options.pages ?? 25;
  const latencyMs = options.latencyMs ?? 20;
  const concurrency = options.concurrency ?? 4;
  // The last page holds keys too: 24 full pages and a last one with 10.
  const keysPerPrincipal = (pages - 1) * PAGE_SIZE + PAGE_SIZE / 2;
  const principals: Record<string, { keys: string[] }> = {};
  for (let p = 0; p < principalCount; p += 1) {
    principals[`principal-${p}`] = {
      keys: Array.from({ length: keysPerPrincipal }, (_, k) => `key-${p}-${String(k).padStart(4, '0')}`),
    };
  }
  const simulator = await startRemoteSimulator({
    apiKeys: [KEY],
    principals,
    pageSize: PAGE_SIZE,
    latencyMs,
  });
  try {
    const names = Object.keys(principals);
    const client = new BigStateClient({
      host: simulator.url,
      apiKey: async () => KEY,
      maxConnections: concurrency,
    });
    // Warm nothing up: connection set-up is part of what a real run pays.
    const started = performance.now();
    const summary = await runAudit(
      { bigstate: client, store: emptyStore, channels: [nowhere] },
      { runId: 'bench', principals: names, host: simulator.url, dryRun: true, concurrency },
    );
    const walkMs = performance.now() - started;
    await client.close();
    if (!summary.ok) throw new Error('benchmark walk failed');
    for (const result of summary.principals) {
      if (result.keyCount !== keysPerPrincipal) throw new Error(`incomplete walk of ${result.principal}`);
    }
    const { connections, requests } = await simulator.stats();
    const criticalPathMs = pages * latencyMs * Math.ceil(principalCount / concurrency);

    const perSlot = pages * Math.ceil(principalCount / concurrency);
    const floorStarted = performance.now();
    await Promise.all(
      names.slice(0, concurrency).map(async (principal) => {
        for (let i = 0; i < perSlot; i += 1) {
          const response = await fetch(`${simulator.url}/v1/apikey/match?principal=${principal}&next=0`, {
            headers: { 'x-api-key': KEY, accept: 'application/json', 'content-type': 'application/json' },
          });
          await response.text();
        }
      }),
    );
    const floorMs = performance.now() - floorStarted;

    simulator.resetStats();
    const naiveStarted = performance.now();
    for (const principal of names) await naiveWalk(simulator.url, principal);
    const naiveMs = performance.now() - naiveStarted;
    const naiveConnections = (await simulator.stats()).connections;

    return {
      principals: principalCount,
      pagesPerPrincipal: pages,
      latencyMs,
      concurrency,
      criticalPathMs,
      walkMs,
      ratio: walkMs / criticalPathMs,
      connections,
      connectionLimit: concurrency + 2,
      requests,
      naive: { walkMs: naiveMs, connections: naiveConnections, ratio: naiveMs / criticalPathMs },
      floor: { walkMs: floorMs, ratio: floorMs / criticalPathMs },
      ratioToFloor: walkMs / floorMs,
    };
  } finally {
    await simulator.close();
  }
}

/** The peer: one page after another, a fresh connection for each request (no agent, no keep-alive). */
async function naiveWalk(host: string, principal: string): Promise<number> {
  let next = '0';
  let count = 0;
  do {
    const url = `${host}/v1/apikey/match?principal=${encodeURIComponent(principal)}&next=${next}`;
    const text = await new Promise<string>((resolve, reject) => {
      const request = get(
        url,
        {
          agent: false,
          headers: { 'x-api-key': KEY, accept: 'application/json', 'content-type': 'application/json' },
        },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () => resolve(body));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
    });
    const cursor = /"next"\s*:\s*(-?\d+)/.exec(text)?.[1];
    if (cursor === undefined) throw new Error('naive walk: no cursor');
    count += (JSON.parse(text) as { apiKeys: unknown[] }).apiKeys.length;
    next = cursor;
  } while (next !== '-1');
  return count;
}
