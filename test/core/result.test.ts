import { describe, expect, it } from 'vitest';
import type { AuditSummary, PrincipalResult } from '../../functions/core/audit.js';
import { toAuditResult } from '../../functions/core/result.js';
import { recordOf } from './support/fakes.js';

function summary(principals: PrincipalResult[]): AuditSummary {
  return {
    runId: 'run-1',
    dryRun: false,
    startedAt: '2025-06-01T12:00:00.000Z',
    finishedAt: '2025-06-01T12:00:03.000Z',
    durationMs: 3000,
    principals,
    ok: principals.every((result) => result.status === 'ok'),
  };
}

const changed: PrincipalResult = {
  principal: 'root',
  status: 'ok',
  baseline: false,
  keyCount: 5,
  added: ['a', 'b', 'c'],
  removed: ['x'],
  changeId: 'chg-1',
  changeRecordLocation: 's3://b/history/root/chg-1.json',
  redelivered: [],
  pending: [],
};

const failedResult: PrincipalResult = {
  principal: 'bad',
  status: 'failed',
  reason: 'walking the keys: 403',
  errorName: 'ForbiddenError',
  baseline: false,
  keyCount: null,
  added: [],
  removed: [],
  redelivered: [],
  pending: [],
};

describe('toAuditResult', () => {
  it('summarises each principal with counts and names', () => {
    expect(toAuditResult(summary([changed, failedResult]))).toStrictEqual({
      runId: 'run-1',
      ok: false,
      dryRun: false,
      startedAt: '2025-06-01T12:00:00.000Z',
      finishedAt: '2025-06-01T12:00:03.000Z',
      durationMs: 3000,
      runFailure: null,
      principals: [
        {
          principal: 'root',
          status: 'ok',
          baseline: false,
          keyCount: 5,
          added: 3,
          removed: 1,
          changeId: 'chg-1',
          changeRecordLocation: 's3://b/history/root/chg-1.json',
          addedKeys: ['a', 'b', 'c'],
          removedKeys: ['x'],
          keysTruncated: false,
          redeliveredChangeIds: [],
          pendingChangeIds: [],
          newPrincipal: false,
          principalRemoved: false,
        },
        {
          principal: 'bad',
          status: 'failed',
          reason: 'walking the keys: 403',
          baseline: false,
          keyCount: null,
          added: 0,
          removed: 0,
          addedKeys: [],
          removedKeys: [],
          keysTruncated: false,
          redeliveredChangeIds: [],
          pendingChangeIds: [],
          newPrincipal: false,
          principalRemoved: false,
        },
      ],
    });
  });

  it('keeps lists of exactly maxNames whole and cuts longer ones, keeping the counts', () => {
    const exact = toAuditResult(summary([changed]), 3).principals[0];
    expect(exact?.addedKeys).toEqual(['a', 'b', 'c']);
    expect(exact?.keysTruncated).toBe(false);

    const cut = toAuditResult(summary([changed]), 2).principals[0];
    expect(cut?.addedKeys).toEqual(['a', 'b']);
    expect(cut?.removedKeys).toEqual(['x']);
    expect(cut?.added).toBe(3);
    expect(cut?.keysTruncated).toBe(true);
  });

  it('keeps a removal list of exactly maxNames whole', () => {
    const result = toAuditResult(summary([{ ...changed, added: ['a'], removed: ['r1', 'r2'] }]), 2)
      .principals[0];
    expect(result?.removedKeys).toEqual(['r1', 'r2']);
    expect(result?.keysTruncated).toBe(false);
  });

  it('marks a cut removal list as truncated too', () => {
    const result = toAuditResult(summary([{ ...changed, added: [], removed: ['r1', 'r2'] }]), 1)
      .principals[0];
    expect(result?.removedKeys).toEqual(['r1']);
    expect(result?.removed).toBe(2);
    expect(result?.keysTruncated).toBe(true);
  });

  it('names the changes it re-delivered and those still pending, oldest first, by id only', () => {
    const result = toAuditResult(
      summary([
        {
          ...failedResult,
          redelivered: [recordOf('bad', 'chg-a'), recordOf('bad', 'chg-b')],
          pending: [
            { record: recordOf('bad', 'chg-c', { added: ['secret-name'] }), deliveredTo: ['sns'] },
            { record: recordOf('bad', 'chg-d'), deliveredTo: [] },
          ],
        },
      ]),
    ).principals[0];
    expect(result?.redeliveredChangeIds).toEqual(['chg-a', 'chg-b']);
    expect(result?.pendingChangeIds).toEqual(['chg-c', 'chg-d']);
    expect(JSON.stringify(result)).not.toContain('secret-name');
  });

  it('is JSON-serialisable as it is', () => {
    const result = toAuditResult(summary([changed]));
    expect(JSON.parse(JSON.stringify(result))).toStrictEqual(result);
  });
});
