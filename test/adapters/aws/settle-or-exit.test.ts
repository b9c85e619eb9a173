import { describe, expect, it } from 'vitest';
import { settleOrExit } from '../../../functions/adapters/aws/wiring.js';
import { Deadline } from '../../../functions/commons/deadline.js';
import { TimeBudgetError } from '../../../functions/commons/errors.js';

function reporting() {
  const told: string[] = [];
  return {
    told,
    logger: { critical: (message: string) => told.push(`critical ${message}`) },
    metrics: { publishStoredMetrics: () => told.push('metrics flushed') },
  };
}

describe('settleOrExit: no work of a run outlives its invocation', () => {
  it('passes a run that settles on through, and ends nothing', async () => {
    const report = reporting();
    const exits: number[] = [];
    const hardStop = Deadline.after(60_000);
    await expect(
      settleOrExit(Promise.resolve('summary'), hardStop, report, (code) => exits.push(code)),
    ).resolves.toBe('summary');
    expect(exits).toEqual([]);
    expect(report.told).toEqual([]);
    hardStop.dispose();
  });

  it('ends the process, after a critical line and the stored metrics, when the run still works past its hard stop', async () => {
    const report = reporting();
    const exits: number[] = [];
    const controller = new AbortController();
    const hardStop = Deadline.none({ signal: controller.signal });
    const hung = new Promise<never>(() => {});
    const settled = settleOrExit(hung, hardStop, report, (code) => exits.push(code));
    controller.abort(new TimeBudgetError("the run's hard stop ended"));
    await expect(settled).rejects.toBeInstanceOf(TimeBudgetError);
    expect(exits).toEqual([1]);
    expect(report.told).toEqual([
      'critical the run did not stop by its hard stop: ending the process so no work outlives it',
      'metrics flushed',
    ]);
  });
});
