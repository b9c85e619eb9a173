/**
 * Diff benchmark: a snapshot of 1,000,000 keys against a walk with 10% churn (5% removed, 5% added), through
 * the same pure functions a run uses (reconcile, then buildSnapshot). Time and the memory the diff itself
 * adds on top of its inputs.
 */
import { performance } from 'node:perf_hooks';
import type { ApiKeyEntry } from '../../functions/bigstate/types.js';
import { buildSnapshot, reconcile, removalCandidates, snapshotNames } from '../../functions/core/diff.js';
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
  const records: KeyRecord[] = [];
  for (let i = 0; i < keys; i += 1) {
    records.push({ name: `key-${String(i).padStart(8, '0')}`, firstSeen: then, lastSeen: then });
  }
  const previous: Snapshot = {
    schemaVersion: 1,
    principal: 'bench',
    pattern: null,
    auditedAt: then,
    runId: 'before',
    keyCount: keys,
    keys: records,
  };
  const step = Math.round(2 / churn); // every step-th key removed, as many added
  const walk = new Map<string, ApiKeyEntry>();
  for (let i = 0; i < keys; i += 1) {
    if (i % step !== 0)
      walk.set(`key-${String(i).padStart(8, '0')}`, { name: `key-${String(i).padStart(8, '0')}` });
  }
  const removedCount = keys - walk.size;
  for (let i = 0; i < removedCount; i += 1) walk.set(`new-${i}`, { name: `new-${i}` });
  // The confirming walk sees the same inventory.
  const confirm = walk;

  globalThis.gc?.();
  const baseline = process.memoryUsage();
  let peak = baseline.rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const started = performance.now();
  const names = snapshotNames(previous);
  const candidates = removalCandidates(names, walk);
  const result = reconcile(names, walk, candidates.length > 0 ? confirm : undefined);
  const next = buildSnapshot(previous, result.inventory, {
    principal: 'bench',
    pattern: null,
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
