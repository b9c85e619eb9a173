/** What both renderers say of a report as a whole, and of a principal's type. */
import type { ReportModel } from './model.js';

/** The figures at the top of the report. */
export interface ReportTotals {
  readonly principals: number;
  readonly keys: number;
  readonly staleKeys: number;
  /** Keys removed in the last 30 days, every principal. */
  readonly removedRecently: number;
  /** Principals whose last run failed. */
  readonly failingPrincipals: number;
}

export function reportTotals(model: ReportModel): ReportTotals {
  let keys = 0;
  let staleKeys = 0;
  let removedRecently = 0;
  let failingPrincipals = 0;
  for (const principal of model.principals) {
    keys += principal.keys.length;
    for (const key of principal.keys) if (key.stale) staleKeys++;
    removedRecently += principal.removedRecently.length;
    if (principal.failure !== null) failingPrincipals++;
  }
  return { principals: model.principals.length, keys, staleKeys, removedRecently, failingPrincipals };
}

/** BigState's principal `type` in words: 1 application, 2 user, another number as `type N`; `''` when unknown. */
export function typeLabel(type: number | null | undefined): string {
  if (type === 1) return 'application';
  if (type === 2) return 'user';
  return typeof type === 'number' && Number.isFinite(type) ? `type ${type}` : '';
}
