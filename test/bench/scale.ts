/**
 * `npm run bench -- --scale`: a fan-out run of many principals through the concurrency model of the Distributed
 * Map, against the BigState simulator in its own process, with real HTTP on loopback.
 *
 * The model: the principals are cut into batches (the Map's ItemBatcher); at most `mapConcurrency` children
 * run at once (the Map's MaxConcurrency), each auditing its batch `perChild` principals at a time with its own
 * BigStateClient and runAudit over the batch's targets, exactly as a worker does. Map concurrency x per-child
 * concurrency = maxRequestsInFlight, so the BigState requests in flight across all children never exceed it; a
 * guard around the client's transport (`Transport.prototype.request`, one request until its body is read and
 * parsed) shared by every child counts them (and would hold back one more), and the peak is reported.
 *
 * Not modelled: Step Functions' own scheduling of child executions and Lambda cold starts (each batch is a
 * Lambda invocation), the children's S3 reads and writes (the store answers at once), and TLS: each child has
 * its own client and keep-alive pool, as a worker has (up to per-child-concurrency connections per batch), but
 * over plain HTTP on loopback. Each adds time per batch, not per request.
 */
import { performance } from 'node:perf_hooks';
import { BigStateClient } from '../../functions/bigstate/client.js';
import { Transport } from '../../functions/bigstate/transport.js';
import { runAudit, type Target } from '../../functions/core/audit.js';
import { startRemoteSimulator } from './remote-simulator.js';
import { emptyStore, KEY, nowhere, PAGE_SIZE } from './walk.js';

export interface ScaleFigures {
  readonly principals: number;
  readonly pagesPerPrincipal: number;
  readonly latencyMs: number;
  readonly maxRequestsInFlight: number;
  /** Principals a child audits at once (the audit's default concurrency). */
  readonly perChild: number;
  /** Children running at once: floor(maxRequestsInFlight / perChild). */
  readonly mapConcurrency: number;
  readonly batchSize: number;
  readonly batches: number;
  /** ceil(principals x pages / maxRequestsInFlight) x latency. */
  readonly limitMs: number;
  readonly wallMs: number;
  /** wallMs / limitMs. */
  readonly ratio: number;
  /** BigState requests the simulator answered, and connections it accepted. */
  readonly requests: number;
  readonly connections: number;
  /** Most requests in flight at once across all children, as the shared guard saw them. */
  readonly peakInFlight: number;
  /** Requests the guard had to hold back because maxRequestsInFlight were already in flight. */
  readonly heldBack: number;
  readonly schedule: string;
  readonly schedulePeriodMs: number;
  /** wallMs / schedulePeriodMs. */
  readonly shareOfPeriod: number;
  readonly fitsPeriod: boolean;
  /** The same principals in single mode (one function, perChild at a time), computed, not measured. */
  readonly singleModeLimitMs: number;
}

export async function benchScale(options: {
  principals: number;
  pages: number;
  latencyMs: number;
  maxRequestsInFlight: number;
  perChild: number;
  batchSize: number;
  schedule: string;
  schedulePeriodMs: number;
}): Promise<ScaleFigures> {
  const { principals: principalCount, pages, latencyMs, maxRequestsInFlight, batchSize } = options;
  const perChild = Math.min(options.perChild, maxRequestsInFlight);
  const mapConcurrency = Math.max(1, Math.floor(maxRequestsInFlight / perChild));
  // The last page holds keys too: full pages and a last one half full.
  const keysPerPrincipal = (pages - 1) * PAGE_SIZE + PAGE_SIZE / 2;
  const width = String(principalCount - 1).length;
  const principals: Record<string, { keys: string[] }> = {};
  for (let p = 0; p < principalCount; p += 1) {
    principals[`principal-${String(p).padStart(width, '0')}`] = {
      keys: Array.from({ length: keysPerPrincipal }, (_, k) => `key-${p}-${String(k).padStart(3, '0')}`),
    };
  }
  const names = Object.keys(principals);
  const batches: Target[][] = [];
  for (let at = 0; at < names.length; at += batchSize) {
    batches.push(
      names
        .slice(at, at + batchSize)
        .map((principal) => ({ principal, listed: false, configured: true, missing: false })),
    );
  }
  const simulator = await startRemoteSimulator({
    apiKeys: [KEY],
    principals,
    pageSize: PAGE_SIZE,
    latencyMs,
  });
  const guard = installRequestGuard(maxRequestsInFlight);
  try {
    let nextBatch = 0;
    let failed = 0;
    const child = async (batch: readonly Target[], index: number) => {
      const client = new BigStateClient({
        host: simulator.url,
        apiKey: async () => KEY,
        maxConnections: perChild,
      });
      const summary = await runAudit(
        { bigstate: client, store: emptyStore, channels: [nowhere] },
        {
          runId: `scale-batch-${index}`,
          principals: [],
          targets: batch,
          host: simulator.url,
          dryRun: true,
          concurrency: perChild,
        },
      );
      await client.close();
      for (const result of summary.principals) {
        if (result.status !== 'ok' || result.keyCount !== keysPerPrincipal) failed += 1;
      }
    };
    const started = performance.now();
    await Promise.all(
      Array.from({ length: mapConcurrency }, async () => {
        while (nextBatch < batches.length) {
          const index = nextBatch++;
          await child(batches[index] ?? [], index);
        }
      }),
    );
    const wallMs = performance.now() - started;
    if (failed > 0) throw new Error(`scale: ${failed} principal(s) failed or were walked incompletely`);
    // A guard that saw nothing measures nothing (the client no longer going through it): refuse the figure.
    if (guard.peak === 0)
      throw new Error('scale: the request guard saw no request; it no longer wraps the client');
    const { requests, connections } = await simulator.stats();
    const limitMs = Math.ceil((principalCount * pages) / maxRequestsInFlight) * latencyMs;
    return {
      principals: principalCount,
      pagesPerPrincipal: pages,
      latencyMs,
      maxRequestsInFlight,
      perChild,
      mapConcurrency,
      batchSize,
      batches: batches.length,
      limitMs,
      wallMs,
      ratio: wallMs / limitMs,
      requests,
      connections,
      peakInFlight: guard.peak,
      heldBack: guard.heldBack,
      schedule: options.schedule,
      schedulePeriodMs: options.schedulePeriodMs,
      shareOfPeriod: wallMs / options.schedulePeriodMs,
      fitsPeriod: wallMs < options.schedulePeriodMs,
      singleModeLimitMs: Math.ceil((principalCount * pages) / perChild) * latencyMs,
    };
  } finally {
    guard.uninstall();
    await simulator.close();
  }
}

/**
 * Wraps every client's `Transport.prototype.request` (one BigState request: its attempts, until the body is
 * read and parsed) in a semaphore shared by every child; it waits when `size` are in flight.
 */
function installRequestGuard(size: number) {
  const original = Transport.prototype.request;
  const waiting: Array<() => void> = [];
  let inFlight = 0;
  const state = { peak: 0, heldBack: 0 };
  const acquire = async () => {
    if (inFlight >= size) {
      state.heldBack += 1;
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      inFlight += 1;
    }
    state.peak = Math.max(state.peak, inFlight);
  };
  const release = () => {
    const next = waiting.shift();
    // The slot passes straight to the next waiter: inFlight stays the same.
    if (next === undefined) inFlight -= 1;
    else next();
  };
  Transport.prototype.request = async function guarded(this: Transport, spec) {
    await acquire();
    try {
      return await original.call(this, spec);
    } finally {
      release();
    }
  } as typeof original;
  return {
    get peak() {
      return state.peak;
    },
    get heldBack() {
      return state.heldBack;
    },
    uninstall() {
      Transport.prototype.request = original;
    },
  };
}
