/**
 * What a dry run shows a person: what a real run would publish, as a plan (`+ name` / `- name` per principal,
 * baselines with their counts, failures), before the summary table. Names are shown by `displayName` and every
 * other text from BigState by `displayText`, so none can forge a line of the plan.
 */
import { type Palette, PLAIN } from '../adapters/local/console.js';
import { displayName, displayText } from '../commons/text.js';
import type { AuditSummary, PrincipalResult } from '../core/audit.js';
import type { ChangeRecord } from '../core/ports.js';

/** What the plan needs beyond the summary. */
export interface PlanOptions {
  /** @default no colour */
  readonly palette?: Palette;
  /**
   * Changes of earlier runs a real run would print first (committed, never printed: their run was cut short).
   * @default none
   */
  readonly owed?: (result: PrincipalResult) => readonly ChangeRecord[];
}

const plural = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;

/**
 * The plan of a dry run, ending in a line of totals. Principals with nothing to publish are only counted:
 * the summary table that follows lists every principal.
 */
export function formatPlan(summary: AuditSummary, options: PlanOptions = {}): string {
  const palette = options.palette ?? PLAIN;
  const sections: string[] = [];
  let changed = 0;
  let added = 0;
  let removed = 0;
  let baselines = 0;
  let unchanged = 0;
  let failed = 0;
  let removedPrincipals = 0;
  let owedTotal = 0;
  let staleTotal = 0;
  for (const result of summary.principals) {
    const name = displayName(result.principal);
    const lines: string[] = [];
    const owed = options.owed?.(result) ?? [];
    for (const record of owed) {
      lines.push(
        palette.quiet(
          `  first, a ${record.kind === 'baseline' ? 'baseline' : 'change'} of an earlier run not printed yet: ${displayText(record.changeId)} (${describeRecord(record)})`,
        ),
      );
    }
    owedTotal += owed.length;
    // Keys newly past the limit: a real run tells them once, as a stale notice.
    const stale = result.status === 'ok' ? (result.stale ?? []) : [];
    if (stale.length > 0) {
      staleTotal += stale.length;
      lines.push(palette.quiet(`  a stale notice: ${plural(stale.length, 'key')} past the key-age limit`));
      lines.push(
        ...stale.map((key) => palette.removed(`  ! ${displayName(key.name)}  ${key.ageDays} days old`)),
      );
    }
    if (result.status === 'failed') {
      failed += 1;
      sections.push(
        [
          `${palette.failed(`${name}: FAILED`)} ${displayText(result.reason ?? '')}`,
          palette.quiet('  its last good snapshot is kept and no key change is reported for it'),
          ...lines,
        ].join('\n'),
      );
    } else if (result.principalRemoved !== undefined) {
      const keys = result.principalRemoved.keys;
      removedPrincipals += 1;
      sections.push(
        [
          `${name}: ${palette.removed(`principal removed from BigState, with the ${plural(keys.length, 'key')} it had`)}`,
          palette.quiet(
            '  told once as one removal (no key is reported removed one by one); its state is archived',
          ),
          ...lines,
          ...keys.map((key) => palette.removed(`  - ${displayName(key)}`)),
        ].join('\n'),
      );
    } else if (result.baseline) {
      baselines += 1;
      const found = result.newPrincipal === true ? 'new principal found by discovery: ' : '';
      sections.push(
        [
          `${name}: ${palette.quiet(`${found}baseline, ${plural(result.keyCount ?? 0, 'key')} recorded (no key is reported added)`)}`,
          ...lines,
        ].join('\n'),
      );
    } else if (result.added.length + result.removed.length > 0) {
      changed += 1;
      added += result.added.length;
      removed += result.removed.length;
      sections.push(
        [
          `${name}: ${palette.changed(`${result.added.length} added, ${result.removed.length} removed`)} (${plural(result.keyCount ?? 0, 'key')} after)`,
          ...lines,
          ...result.added.map((key) => palette.added(`  + ${displayName(key)}`)),
          ...result.removed.map((key) => palette.removed(`  - ${displayName(key)}`)),
        ].join('\n'),
      );
    } else {
      unchanged += 1;
      if (lines.length > 0) sections.push([`${name}: ${palette.quiet('no change')}`, ...lines].join('\n'));
    }
  }
  if (summary.runFailure !== undefined) {
    sections.push(
      `${palette.failed('The run itself FAILED:')} ${displayText(summary.runFailure.reason)} (${displayText(summary.runFailure.errorName)})\n${palette.quiet('  no principal is taken as missing')}`,
    );
  }
  const nothing =
    changed + baselines + failed + removedPrincipals + owedTotal + staleTotal === 0 &&
    summary.runFailure === undefined;
  const heading = palette.heading(
    nothing
      ? 'Dry run: a real run would publish nothing (nothing was written or published).'
      : 'Dry run: a real run would publish the following (nothing was written or published).',
  );
  const totals = [
    `${plural(changed, 'principal')} changed (+${added} -${removed})`,
    `${plural(baselines, 'baseline')}`,
    `${unchanged} unchanged`,
    `${failed} failed`,
    ...(removedPrincipals > 0 ? [`${plural(removedPrincipals, 'principal')} removed`] : []),
    ...(summary.runFailure !== undefined ? ['the run itself failed'] : []),
    ...(owedTotal > 0 ? [`${plural(owedTotal, 'earlier change')} to print`] : []),
    ...(staleTotal > 0 ? [`${plural(staleTotal, 'stale key')}`] : []),
  ];
  return `${[heading, ...sections].join('\n\n')}\n\nPlan: ${totals.join(', ')}.\n`;
}

function describeRecord(record: ChangeRecord): string {
  return record.kind === 'baseline'
    ? plural(record.counts.total, 'key')
    : `+${record.counts.added} -${record.counts.removed}`;
}
