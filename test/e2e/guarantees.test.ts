/**
 * End to end through the deployable bundle: the product contract's guarantees 1-7, one or more tests each. The
 * stack is synthesized once for the file; every test gets fresh AWS fakes and a cold sandbox (see suite.ts).
 */
import { describe, expect, it } from 'vitest';
import { changeIdInBody, eventsFor, outcomeOf, snsAttributes, snsFor, succeeded } from './harness.js';
import {
  ASCII_SUBJECT,
  CANARY,
  DETAIL_TYPE,
  eventKinds,
  failureOf,
  HISTORY_PREFIX,
  INITIAL_KEYS,
  PRINCIPALS,
  SNAPSHOT_KEY,
  useE2e,
} from './suite.js';
import { jsonLogLines } from './support/index.js';

const e2e = useE2e();
const INFINITE = { times: Number.POSITIVE_INFINITY };

describe('guarantee 1: baseline', () => {
  it('stores every snapshot with If-None-Match and publishes one baseline notice per principal, no added flood', async () => {
    const { world } = e2e;
    const invocation = await world.invoke({});
    const result = succeeded(invocation);
    expect(result).toMatchObject({ runId: invocation.requestId, ok: true, dryRun: false });
    expect(
      result.principals.map((o) => [o.principal, o.status, o.baseline, o.keyCount, o.added, o.removed]),
    ).toEqual([
      ['root', 'ok', true, 3, 0, 0],
      ['svc a&b', 'ok', true, 2, 0, 0],
      ['zürich #1', 'ok', true, 1, 0, 0],
    ]);

    const messages = world.sns();
    const events = world.events();
    expect(messages).toHaveLength(3);
    expect(eventKinds(events)).toEqual(PRINCIPALS.map((principal) => [DETAIL_TYPE.baseline, principal]));
    const { bucketName } = world.resources;
    for (const principal of PRINCIPALS) {
      const outcome = outcomeOf(result, principal);
      const keys = INITIAL_KEYS[principal];
      expect(outcome.changeId).toMatch(/^chg-[0-9a-f]{32}$/);

      const [message, ...moreMessages] = snsFor(messages, principal);
      expect(moreMessages).toEqual([]);
      if (message === undefined) throw new Error(`no SNS message for ${principal}`);
      expect(message.topicArn).toBe(world.resources.topicArn);
      expect(snsAttributes(message)).toEqual({
        principal: { type: 'String', value: principal },
        changeType: { type: 'String.Array', value: ['baseline'] },
      });
      expect(message.subject).toMatch(ASCII_SUBJECT);
      expect(message.subject).toMatch(/baseline/i);
      // One notice with the count.
      expect(`${message.subject}\n${message.message}`).toMatch(new RegExp(`\\b${keys.length} keys?\\b`));
      expect(changeIdInBody(message)).toBe(outcome.changeId);
      // A baseline is a count, not a list of "added" keys.
      for (const key of keys) expect(message.message).not.toContain(key);

      const [event] = eventsFor(events, principal);
      expect(event).toMatchObject({ source: 'bigstate.key-audit', eventBusName: 'default' });
      expect(event?.detailJson).toEqual({
        changeId: outcome.changeId,
        runId: invocation.requestId,
        principal,
        pattern: null,
        detectedAt: expect.any(String),
        counts: { added: 0, removed: 0, total: keys.length },
        snapshotLocation: `s3://${bucketName}/${SNAPSHOT_KEY[principal]}`,
        changeRecordLocation: `s3://${bucketName}/${HISTORY_PREFIX[principal]}${outcome.changeId}.json`,
        newPrincipal: false,
      });

      // The commit (the inventory with its pending baseline, only if there is no state yet), then, once
      // delivered, the same state with an empty outbox, only if it is still the committed version.
      const puts = world.s3Calls('PutObject').filter((call) => call.input.key === SNAPSHOT_KEY[principal]);
      const [committed] = world.versions(SNAPSHOT_KEY[principal]);
      expect(puts.map((call) => [call.headers['if-none-match'], call.headers['if-match']])).toEqual([
        ['*', undefined],
        [undefined, committed?.etag],
      ]);
      expect(JSON.parse(committed?.text ?? '{}').pending).toMatchObject([
        { record: { changeId: outcome.changeId, kind: 'baseline' }, deliveredTo: [] },
      ]);
      expect(world.json(SNAPSHOT_KEY[principal])).toMatchObject({
        schemaVersion: 2,
        principal,
        host: world.functionEnv.BIGSTATE_HOST,
        pattern: null,
        runId: invocation.requestId,
        keyCount: keys.length,
        pending: [],
      });
      expect(e2e.snapshotNames(principal)).toEqual([...keys].sort());
      expect(world.json(`${HISTORY_PREFIX[principal]}${outcome.changeId}.json`)).toMatchObject({
        changeId: outcome.changeId,
        kind: 'baseline',
        principal,
        added: [],
        removed: [],
        previousSnapshotVersion: null,
      });
    }
    // A state and a record per principal, and the run's inventory report (latest and a dated copy, HTML and CSV).
    const stored = world.fakes.s3.objects(bucketName).map((object) => object.key);
    expect(stored.filter((key) => !key.startsWith('reports/'))).toHaveLength(6);
    expect(stored.filter((key) => key.startsWith('reports/')).sort()).toEqual([
      expect.stringMatching(/^reports\/\d{4}-\d{2}-\d{2}\/report\.csv$/),
      expect.stringMatching(/^reports\/\d{4}-\d{2}-\d{2}\/report\.html$/),
      'reports/latest.csv',
      'reports/latest.html',
    ]);
  });
});

describe('guarantee 2: complete walks only', () => {
  it('reads every page of a 25-page principal, and a walk refused on its last page replaces nothing', async () => {
    const { world, simulator } = e2e;
    const many = Array.from({ length: 100 }, (_, i) => `key-${String(i + 1).padStart(3, '0')}`);
    simulator.setKeys('root', many);
    const first = succeeded(await world.invoke({}));
    expect(simulator.stats.requestsByPrincipal.root).toBe(25);
    expect(outcomeOf(first, 'root').keyCount).toBe(100);
    expect(e2e.snapshotNames('root')).toEqual(many);
    expect(eventsFor(world.events(), 'root')[0]?.detailJson.counts).toEqual({
      added: 0,
      removed: 0,
      total: 100,
    });

    // A key gone from the middle and one new on the last page: two complete walks (the second confirms).
    simulator.resetStats();
    simulator.removeKeys('root', 'key-050');
    simulator.addKeys('root', 'key-zz-last');
    let mark = world.mark();
    const second = succeeded(await world.invoke({}));
    // 25 pages, then one exact query of the one key the walk did not see: no second walk of 25 pages.
    expect(simulator.stats.requestsByPrincipal.root).toBe(26);
    expect(outcomeOf(second, 'root')).toMatchObject({ addedKeys: ['key-zz-last'], removedKeys: ['key-050'] });
    expect(eventsFor(world.events(mark), 'root').map((event) => event.detailJson)).toMatchObject([
      { added: ['key-zz-last'], removed: ['key-050'] },
    ]);

    // The 25th page refused: 24 pages are not a walk. The snapshot stays, no removal is reported.
    simulator.resetStats();
    simulator.removeKeys('root', 'key-001');
    simulator.inject('root', { type: 'status', status: 403 }, { ...INFINITE, onPage: 24 });
    const versions = e2e.snapshotVersions();
    const kept = e2e.kept('root');
    mark = world.mark();
    const third = await world.invoke({});
    expect(failureOf(third).errorType).toBe('AuditRunFailedError');
    expect(simulator.stats.requestsByPrincipal.root).toBe(25);
    // One more version: the failure recorded, the inventory byte for byte as it was.
    expect(e2e.snapshotVersions().root).toBe(versions.root + 1);
    expect(e2e.kept('root')).toBe(kept);
    expect(e2e.recordedFailure('root')).toMatchObject({ stage: 'walking the keys', status: 403 });
    expect(e2e.snapshotNames('root')).toContain('key-001');
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'root']]);
  });
});

describe('guarantee 3: no false removals', () => {
  it('a principal refused with 403 or 400 keeps its snapshot, others publish, the run fails naming it, the next run is clean', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.resetStats();
    simulator.removeKeys('root', 'grafana-read');
    simulator.removeKeys('zürich #1', 'monitoring');
    simulator.addKeys('svc a&b', 'new-svc-key');
    simulator.inject('root', { type: 'status', status: 403 }, INFINITE);
    simulator.inject('zürich #1', { type: 'status', status: 400 }, INFINITE);
    const versions = e2e.snapshotVersions();
    const kept = { root: e2e.kept('root'), 'zürich #1': e2e.kept('zürich #1') };
    const mark = world.mark();
    const invocation = await world.invoke({});

    const error = failureOf(invocation);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toContain(invocation.requestId);
    expect(error.errorMessage).toContain('2 of 3');
    expect(error.errorMessage).toMatch(/"root": [^;]*403/);
    expect(error.errorMessage).toMatch(/"zürich #1": [^;]*400/);
    expect(error.errorMessage).not.toContain('"svc a&b"');
    // 403 and 400 are answers, not hiccups: not retried.
    expect(simulator.stats.requestsByPrincipal).toMatchObject({ root: 1, 'zürich #1': 1 });
    // svc a&b: the commit of its change, then the outbox emptied once it was delivered. root and zürich #1:
    // their failure recorded, their inventory byte for byte as it was.
    expect(e2e.snapshotVersions()).toEqual({
      root: versions.root + 1,
      'svc a&b': versions['svc a&b'] + 2,
      'zürich #1': versions['zürich #1'] + 1,
    });
    expect({ root: e2e.kept('root'), 'zürich #1': e2e.kept('zürich #1') }).toEqual(kept);
    expect(e2e.recordedFailure('root')).toMatchObject({ status: 403, errorName: 'ForbiddenError' });
    expect(e2e.recordedFailure('zürich #1')).toMatchObject({ status: 400, errorName: 'BadRequestError' });
    expect(e2e.recordedFailure('svc a&b')).toBeUndefined();
    expect(e2e.snapshotNames('root')).toContain('grafana-read');
    expect(e2e.snapshotNames('zürich #1')).toEqual(['monitoring']);
    expect(e2e.snapshotNames('svc a&b')).toContain('new-svc-key');

    const messages = world.sns(mark);
    expect(
      messages
        .map((message) => {
          const attributes = snsAttributes(message);
          return [attributes.principal?.value, attributes.changeType?.value];
        })
        .sort(),
    ).toEqual([
      ['root', ['failed']],
      ['svc a&b', ['added']],
      ['zürich #1', ['failed']],
    ]);
    for (const message of messages) expect(message.subject).toMatch(ASCII_SUBJECT);
    const events = world.events(mark);
    expect(eventKinds(events)).toEqual([
      [DETAIL_TYPE.changed, 'svc a&b'],
      [DETAIL_TYPE.failed, 'root'],
      [DETAIL_TYPE.failed, 'zürich #1'],
    ]);
    for (const [principal, status] of [
      ['root', '403'],
      ['zürich #1', '400'],
    ] as const) {
      const detail = eventsFor(events, principal)[0]?.detailJson;
      expect(detail).toEqual({
        runId: invocation.requestId,
        principal,
        reason: expect.stringContaining(status),
        errorName: expect.any(String),
        detectedAt: expect.any(String),
        failingSince: expect.any(String),
      });
      // A failure that starts now.
      expect(detail?.failingSince).toBe(detail?.detectedAt);
    }

    simulator.clearFaults();
    const next = world.mark();
    const clean = succeeded(await world.invoke({}));
    expect(clean.principals.map((o) => [o.principal, o.status, o.addedKeys, o.removedKeys])).toEqual([
      ['root', 'ok', [], ['grafana-read']],
      ['svc a&b', 'ok', [], []],
      ['zürich #1', 'ok', [], ['monitoring']],
    ]);
    // The failures that were told end, told once each.
    expect(eventKinds(world.events(next))).toEqual([
      [DETAIL_TYPE.changed, 'root'],
      [DETAIL_TYPE.changed, 'zürich #1'],
      [DETAIL_TYPE.recovered, 'root'],
      [DETAIL_TYPE.recovered, 'zürich #1'],
    ]);
    expect(e2e.recordedFailure('root')).toBeUndefined();
    expect(e2e.recordedFailure('zürich #1')).toBeUndefined();
  });

  it('a repeated cursor fails the principal at once instead of looping', async () => {
    const { world, simulator } = e2e;
    const twelve = Array.from({ length: 12 }, (_, i) => `loop-${String(i + 1).padStart(2, '0')}`);
    simulator.setKeys('root', twelve);
    await e2e.baseline();
    simulator.resetStats();
    simulator.removeKeys('root', 'loop-12');
    simulator.inject('root', { type: 'loop-cursor' }, { ...INFINITE, onPage: 1 });
    const versions = e2e.snapshotVersions();
    const kept = e2e.kept('root');
    const mark = world.mark();
    const invocation = await world.invoke({});
    const error = failureOf(invocation);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"root": [^;]*cursor/);
    expect(invocation.durationMs).toBeLessThan(5_000);
    expect(simulator.stats.requestsByPrincipal.root).toBeLessThanOrEqual(3);
    // Only the failure is recorded.
    expect(e2e.snapshotVersions().root).toBe(versions.root + 1);
    expect(e2e.kept('root')).toBe(kept);
    expect(e2e.recordedFailure('root')).toMatchObject({ errorName: 'CursorLoopError' });
    expect(e2e.snapshotNames('root')).toEqual(twelve);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'root']]);
  });

  it('a malformed page fails the principal once its retries are spent', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.resetStats();
    simulator.removeKeys('svc a&b', '#primary');
    simulator.inject('svc a&b', { type: 'malformed' }, INFINITE);
    const versions = e2e.snapshotVersions();
    const kept = e2e.kept('svc a&b');
    const mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"svc a&b": [^;]*malformed/);
    expect(simulator.stats.requestsByPrincipal['svc a&b']).toBeGreaterThan(1);
    // Only the failure is recorded.
    expect(e2e.snapshotVersions()['svc a&b']).toBe(versions['svc a&b'] + 1);
    expect(e2e.kept('svc a&b')).toBe(kept);
    expect(e2e.snapshotNames('svc a&b')).toContain('#primary');
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'svc a&b']]);
    const [notice, ...more] = world.sns(mark);
    expect(more).toEqual([]);
    expect(notice && snsAttributes(notice).changeType?.value).toEqual(['failed']);
  });

  it('reports no removal when the exact query of the key still finds it, and a removal when it does not', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    let walks = 0;
    simulator.onPage((principal, page) => {
      if (principal !== 'root' || page !== 0) return;
      walks += 1;
      // Hidden during the first walk only, as a list that shifts while it is paged can do.
      if (walks === 1) simulator.removeKeys('root', 'grafana-read');
      else simulator.addKeys('root', 'grafana-read');
    });
    let mark = world.mark();
    const flicker = succeeded(await world.invoke({}));
    expect(walks).toBe(2);
    expect(outcomeOf(flicker, 'root')).toMatchObject({ removed: 0, added: 0, keyCount: 3 });
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    expect(e2e.snapshotNames('root')).toContain('grafana-read');

    simulator.onPage(undefined);
    simulator.removeKeys('root', 'grafana-read');
    mark = world.mark();
    const gone = succeeded(await world.invoke({}));
    expect(outcomeOf(gone, 'root').removedKeys).toEqual(['grafana-read']);
    expect(eventsFor(world.events(mark), 'root')[0]?.detailJson.removed).toEqual(['grafana-read']);
  });
});

describe('guarantee 4: no lost changes', () => {
  it('SNS down after the commit: the change stays in the outbox, the next run sends SNS the same id, EventBridge not again', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'while-sns-down');
    world.fakes.sns.fail('always');
    let mark = world.mark();
    const failed = await world.invoke({});
    const error = failureOf(failed);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"root": publishing the change: [^;]*SNS/);
    // Committed: the inventory has the key, and the change waits in the outbox with EventBridge done.
    const state = world.json(SNAPSHOT_KEY.root) as {
      pending: Array<{ record: { changeId: string; added: string[] }; deliveredTo: string[] }>;
    };
    expect(e2e.snapshotNames('root')).toContain('while-sns-down');
    expect(state.pending).toMatchObject([{ record: { added: ['while-sns-down'] }, deliveredTo: ['events'] }]);
    const changeId = state.pending[0]?.record.changeId;
    expect(changeId).toMatch(/^chg-[0-9a-f]{32}$/);
    expect(world.sns(mark)).toEqual([]);
    expect(
      eventsFor(world.events(mark), 'root')
        .filter((e) => e.detailType === DETAIL_TYPE.changed)
        .map((e) => e.detailJson.changeId),
    ).toEqual([changeId]);

    world.fakes.recover();
    mark = world.mark();
    const again = succeeded(await world.invoke({}));
    expect(outcomeOf(again, 'root')).toMatchObject({
      addedKeys: [],
      redeliveredChangeIds: [changeId],
      pendingChangeIds: [],
    });
    const [message, recovered, ...more] = world.sns(mark);
    expect(more).toEqual([]);
    if (message === undefined) throw new Error('nothing published on SNS after it recovered');
    expect(changeIdInBody(message)).toBe(changeId);
    expect(snsAttributes(message).changeType?.value).toEqual(['added']);
    // The failure was told (EventBridge took its notice): its end is told too, after the change.
    expect(recovered && snsAttributes(recovered)).toEqual({
      principal: { type: 'String', value: 'root' },
      changeType: { type: 'String.Array', value: ['recovered'] },
    });
    // EventBridge had the change: not sent twice; only the end of the failure.
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.recovered, 'root']]);
    expect((world.json(SNAPSHOT_KEY.root) as { pending: unknown[] }).pending).toEqual([]);

    mark = world.mark();
    succeeded(await world.invoke({}));
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
  });

  it('EventBridge refuses the entry after SNS took it: the next run re-delivers to EventBridge only', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.removeKeys('svc a&b', 'zürich-backup');
    world.fakes.eventBridge.failEntries('always');
    let mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorMessage).toMatch(/1 of 3.*"svc a&b": publishing the change: [^;]*EventBridge/);
    const notices = snsFor(world.sns(mark), 'svc a&b');
    expect(notices.map((message) => snsAttributes(message).changeType?.value)).toEqual([
      ['removed'],
      ['failed'],
    ]);
    const [sent] = notices;
    const changeId = sent && changeIdInBody(sent);
    expect(changeId).toMatch(/^chg-[0-9a-f]{32}$/);

    world.fakes.recover();
    mark = world.mark();
    const again = succeeded(await world.invoke({}));
    expect(outcomeOf(again, 'svc a&b')).toMatchObject({ redeliveredChangeIds: [changeId], removed: 0 });
    // SNS had the change: it gets only the end of the failure it was told about.
    expect(
      world.sns(mark).map((message) => [message.subject, snsAttributes(message).changeType?.value]),
    ).toEqual([['BigState key audit recovered for svc a&b', ['recovered']]]);
    expect(world.events(mark).map((event) => [event.detailType, event.detailJson.changeId])).toEqual([
      [DETAIL_TYPE.changed, changeId],
      [DETAIL_TYPE.recovered, undefined],
    ]);
  });

  it('the commit refused: nothing but the failure is published; the next run finds the change and publishes it once', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.removeKeys('svc a&b', 'zürich-backup');
    const svcSnapshot = SNAPSHOT_KEY['svc a&b'];
    const versions = world.versions(svcSnapshot).length;
    world.fakes.s3.fail((call) => call.operation === 'PutObject' && call.input.key === svcSnapshot);
    let mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"svc a&b": storing the snapshot/);
    expect(world.versions(svcSnapshot)).toHaveLength(versions);
    expect(e2e.snapshotNames('svc a&b')).toContain('zürich-backup');
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'svc a&b']]);
    expect(world.sns(mark).map((message) => snsAttributes(message).changeType?.value)).toEqual([['failed']]);
    expect(
      world.s3Calls('PutObject', mark).filter((call) => String(call.input.key).startsWith('history/')),
    ).toEqual([]);

    world.fakes.recover();
    mark = world.mark();
    const again = succeeded(await world.invoke({}));
    const changeId = outcomeOf(again, 'svc a&b').changeId;
    expect(outcomeOf(again, 'svc a&b')).toMatchObject({ removedKeys: ['zürich-backup'] });
    expect(snsFor(world.sns(mark), 'svc a&b').map(changeIdInBody)).toEqual([changeId]);
    expect(world.events(mark).map((event) => [event.detailType, event.detailJson.changeId])).toEqual([
      [DETAIL_TYPE.changed, changeId],
    ]);
    expect(world.versions(`${HISTORY_PREFIX['svc a&b']}${changeId}.json`)).toHaveLength(1);
    expect(e2e.snapshotNames('svc a&b')).toEqual(['#primary']);
  });

  it('S3 down: every principal fails with no change published; once S3 is back the change is published', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'while-s3-down');
    world.fakes.s3.fail('always');
    let mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toContain('3 of 3');
    expect(eventKinds(world.events(mark))).toEqual(
      PRINCIPALS.map((principal) => [DETAIL_TYPE.failed, principal]),
    );
    expect(world.sns(mark).map((message) => snsAttributes(message).changeType?.value)).toEqual([
      ['failed'],
      ['failed'],
      ['failed'],
    ]);

    world.fakes.recover();
    mark = world.mark();
    const again = succeeded(await world.invoke({}));
    expect(outcomeOf(again, 'root').addedKeys).toEqual(['while-s3-down']);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.changed, 'root']]);
    expect(e2e.snapshotNames('root')).toContain('while-s3-down');
  });
});

describe('guarantee 5: no overlapping runs', () => {
  it('runs one at a time, and never overwrites a snapshot someone else wrote since it was read', async () => {
    const { world, simulator, audit } = e2e;
    const fn = Object.values(audit.resources).find((resource) => resource.Type === 'AWS::Lambda::Function');
    expect(fn?.Properties?.ReservedConcurrentExecutions).toBe(1);

    await e2e.baseline();
    const read = world.versions(SNAPSHOT_KEY.root).at(-1);
    const theirs = read?.text.replace(/"runId":"[^"]+"/, '"runId":"another-writer"') ?? '';
    expect(theirs).toContain('another-writer');
    simulator.addKeys('root', 'racing-key');
    let written = false;
    simulator.onPage((principal) => {
      if (principal !== 'root' || written) return;
      written = true;
      world.fakes.s3.put(world.resources.bucketName, SNAPSHOT_KEY.root, theirs, {
        contentType: 'application/json',
      });
    });
    const mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"root"/);
    const refused = world.s3Calls('PutObject', mark).filter((call) => call.input.key === SNAPSHOT_KEY.root);
    // The commit, then the record of its failure: both conditional on the version read, both refused.
    expect(refused.map((call) => [call.status, call.headers['if-match']])).toEqual([
      [412, read?.etag],
      [412, read?.etag],
    ]);
    expect(world.fakes.s3.get(world.resources.bucketName, SNAPSHOT_KEY.root)?.text).toBe(theirs);
  });
});

describe('guarantee 6: secret rotation', () => {
  it('picks up each rotated key in the warm container with exactly one more GetSecretValue', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    expect(world.secretReads()).toBe(1);
    // The principals are walked at once, so they all meet the 401 of a rotation: one re-read must serve them
    // all. Several rotations, since which requests overlap varies from run to run.
    for (let rotation = 1; rotation <= 8; rotation += 1) {
      const rotated = `${CANARY}-ROTATED-${rotation}`;
      simulator.setApiKeys([rotated]);
      world.fakes.secretsManager.setSecret(world.secretName, rotated);
      simulator.addKeys('root', `after-rotation-${rotation}`);
      const mark = world.mark();
      const invocation = await world.invoke({});
      expect(invocation.coldStart).toBe(false);
      expect(outcomeOf(succeeded(invocation), 'root').addedKeys).toEqual([`after-rotation-${rotation}`]);
      expect(
        jsonLogLines(invocation.logs).some(
          (line) => line.level === 'WARN' && String(line.message).includes('refused the API key'),
        ),
      ).toBe(true);
      expect(world.secretReads(mark), `GetSecretValue calls for rotation ${rotation}`).toBe(1);
    }
    const mark = world.mark();
    succeeded(await world.invoke({}));
    expect(world.secretReads(mark)).toBe(0);
  });

  it('a key refused again after re-reading the secret fails every principal, with no removal', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.setApiKeys([`${CANARY}-NOT-IN-THE-SECRET`]);
    simulator.removeKeys('root', 'ci-deploy');
    const versions = e2e.snapshotVersions();
    const kept = PRINCIPALS.map((principal) => e2e.kept(principal));
    const mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toContain('3 of 3');
    expect(error.errorMessage).toContain('401');
    expect(world.secretReads(mark)).toBeGreaterThanOrEqual(1);
    // Each principal's failure recorded (a 401 of BigState is the principal's, not the run's), no inventory.
    expect(e2e.snapshotVersions()).toEqual({
      root: versions.root + 1,
      'svc a&b': versions['svc a&b'] + 1,
      'zürich #1': versions['zürich #1'] + 1,
    });
    expect(PRINCIPALS.map((principal) => e2e.kept(principal))).toEqual(kept);
    for (const principal of PRINCIPALS) {
      expect(e2e.recordedFailure(principal)).toMatchObject({ errorName: 'UnauthorizedError', status: 401 });
    }
    expect(eventKinds(world.events(mark))).toEqual(
      PRINCIPALS.map((principal) => [DETAIL_TYPE.failed, principal]),
    );
  });
});

describe('guarantee 7: bounded', () => {
  it('rides out 429 (Retry-After 1 and 0), 500, 503, a reset and a cut-off body', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.resetStats();
    simulator.addKeys('root', 'after-faults');
    simulator.inject('root', { type: 'status', status: 429, retryAfter: '1' });
    simulator.inject('svc a&b', { type: 'status', status: 429, retryAfter: '0' });
    simulator.inject('svc a&b', { type: 'status', status: 500 });
    simulator.inject('zürich #1', { type: 'status', status: 503 });
    simulator.inject('zürich #1', { type: 'reset' });
    simulator.inject('zürich #1', { type: 'truncated' });
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    expect(result.principals.map((o) => [o.principal, o.status, o.added, o.removed])).toEqual([
      ['root', 'ok', 1, 0],
      ['svc a&b', 'ok', 0, 0],
      ['zürich #1', 'ok', 0, 0],
    ]);
    // Each fault cost one more request, and no more.
    expect(simulator.stats.requestsByPrincipal).toEqual({ root: 2, 'svc a&b': 3, 'zürich #1': 4 });
    // Retry-After: 1 was honoured.
    expect(result.durationMs).toBeGreaterThanOrEqual(1_000);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.changed, 'root']]);
    expect(world.sns(mark)).toHaveLength(1);
  });

  it('a principal whose requests hang fails with a clear error before the Lambda timeout; the others publish', async () => {
    const { world, simulator } = e2e;
    // Warm first, so that the invocation's duration is the run's alone.
    succeeded(await world.invoke({ principals: ['root'], dryRun: true }));
    simulator.inject('zürich #1', { type: 'hang' }, INFINITE);
    const timeoutMs = 5_000;
    const invocation = await world.invoke({}, { timeoutMs });
    expect(invocation.coldStart).toBe(false);
    const error = failureOf(invocation);
    // The function's own error, not Lambda's "Task timed out".
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/1 of 3.*"zürich #1": [^;]*deadline/);
    expect(invocation.durationMs).toBeLessThan(timeoutMs);
    expect(eventKinds(world.events())).toEqual([
      [DETAIL_TYPE.baseline, 'root'],
      [DETAIL_TYPE.baseline, 'svc a&b'],
      [DETAIL_TYPE.failed, 'zürich #1'],
    ]);
    expect(world.sns()).toHaveLength(3);
    // No inventory: only the failure, recorded after the work deadline, in a state awaiting its baseline.
    expect(world.versions(SNAPSHOT_KEY['zürich #1'])).toHaveLength(1);
    expect(world.json(SNAPSHOT_KEY['zürich #1'])).toMatchObject({
      awaitingBaseline: true,
      keys: [],
      failure: { stage: 'walking the keys' },
    });

    // The warm container is fine afterwards.
    simulator.clearFaults();
    const mark = world.mark();
    const next = await world.invoke({}, { timeoutMs });
    expect(next.coldStart).toBe(false);
    expect(outcomeOf(succeeded(next), 'zürich #1').baseline).toBe(true);
    expect(eventKinds(world.events(mark))).toEqual([
      [DETAIL_TYPE.baseline, 'zürich #1'],
      [DETAIL_TYPE.recovered, 'zürich #1'],
    ]);
  }, 20_000);
});
