/**
 * Diff benchmark: a snapshot of 1,000,000 keys against a walk with 10% churn (5% removed, 5% added), through
 * the same pure functions a run uses (reconcile, then buildSnapshot). Time and the memory the diff itself
 * adds on top of its inputs.
 */
import { performance } from 'node:perf_hooks';
import type { ApiKeyEntry } from '../../functions/bigstate/types.js';
import { buildSnapshot, reconcile, removalCandidates } from '../../functions/core/diff.js';
import type { KeyRecord, Snapshot } from '../../functions/core/ports.js';

export interface DiffFigures {
  readonly keys: number;
  readonly churn: number;
  readonly added: number;
  readonly removed: number;
  readonly diffMs: number;
  readonly peakDiffMemoryMiB: number;
  readonly peakProcessMemoryMiB: number;
}

const MiB = 1024 * 1024;

export function benchDiff(keys = 1_000_000, churn = 0.1): DiffFigures {
  const then = '2026-01-01T00:00:00.000Z';
  const name = (i: number) => `key-${String(i).padStart(8, '0')}`;
  const records: KeyRecord[] = [];
  for (let i = 0; i < keys; i += 1) records.push({ name: name(i), firstSeen: then, lastSeen: then });
  // Through JSON, as a run gets them: the snapshot from S3, the walk from BigState's pages.
  const previous = JSON.parse(
    JSON.stringify({
      schemaVersion: 2,
      principal: 'bench',
      host: 'https://bench',
      writeId: 'before/1',
      pending: [],
      pattern: null,
      auditedAt: then,
      runId: 'before',
      keyCount: keys,
      keys: records,
    }),
  ) as Snapshot;
  records.length = 0;
  const step = Math.round(2 / churn); // every step-th key removed, as many added
  const seen: ApiKeyEntry[] = [];
  for (let i = 0; i < keys; i += 1) if (i % step !== 0) seen.push({ name: name(i) });
  const removedCount = keys - seen.length;
  for (let i = 0; i < removedCount; i += 1) seen.push({ name: `new-${String(i).padStart(8, '0')}` });
  const walkOf = (entries: ApiKeyEntry[]) =>
    new Map((JSON.parse(JSON.stringify(entries)) as ApiKeyEntry[]).map((entry) => [entry.name, entry]));
  const walk = walkOf(seen);
  seen.length = 0;

  globalThis.gc?.();
  const baseline = process.memoryUsage();
  let peak = baseline.rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const started = performance.now();
  // Exactly what a run does for one principal once its walks are in.
  // Every candidate confirmed gone by its exact query (the queries themselves are the walk benchmark's).
  const candidates = removalCandidates(previous, walk);
  const result = reconcile(previous, [walk], { found: [], gone: new Set(candidates) });
  const next = buildSnapshot(previous, result.inventory, {
    principal: 'bench',
    pattern: null,
    host: 'https://bench',
    runId: 'after',
    now: new Date(),
  });
  const diffMs = performance.now() - started;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  if (next.keyCount !== keys) throw new Error(`diff lost keys: ${next.keyCount}`);
  return {
    keys,
    churn,
    added: result.added.length,
    removed: result.removed.length,
    diffMs,
    peakDiffMemoryMiB: (peak - baseline.rss) / MiB,
    peakProcessMemoryMiB: peak / MiB,
  };
}
