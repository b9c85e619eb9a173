/**
 * End to end through the deployable bundle, as a careful user's red team would try it: a change published and
 * then reverted, keys churning while we page, AWS calls hanging in a warm container, another host, hostile
 * names, the key echoed in other encodings, schedule-shaped payloads carrying manual fields, and dry runs that
 * must change nothing. The stack is synthesized once for the file (plus two host variants); every test gets
 * fresh AWS fakes and a cold sandbox (see suite.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  changeIdInBody,
  eventsFor,
  outcomeOf,
  scheduledInvocation,
  snsAttributes,
  snsFor,
  succeeded,
} from './harness.js';
import {
  API_KEY,
  DETAIL_TYPE,
  eventKinds,
  failureOf,
  PRINCIPALS,
  RUN_STATE_KEY,
  SNAPSHOT_KEY,
  useE2e,
} from './suite.js';
import { jsonLogLines } from './support/index.js';

const e2e = useE2e({
  // The same simulator under another name: to the audit, another host.
  otherHost: (url) => ({ bigstateHost: url.replace('127.0.0.1', 'localhost') }),
  // The same host spelled with a trailing slash: not another host.
  sameHostSlash: (url) => ({ bigstateHost: `${url}/` }),
});

/** The change ids of the SNS messages, in publication order. */
const snsChangeIds = (messages: ReturnType<typeof e2e.world.sns>) => messages.map(changeIdInBody);

/** Calls the fakes received since a mark: S3, SNS and EventBridge, any operation. */
function callsSince(mark: ReturnType<typeof e2e.world.mark>): number {
  const { world } = e2e;
  return world.s3Calls(undefined, mark).length + world.sns(mark).length + world.events(mark).length;
}

describe('no lost change, even when the world reverts', () => {
  it('a change published, its delivery mark lost, then reverted in BigState: the next run re-delivers it and then tells the reverse', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'k1');
    simulator.removeKeys('root', 'grafana-read');
    // The commit goes through; the write that marks the change delivered is refused.
    let puts = 0;
    world.fakes.s3.fail(
      (call) => call.operation === 'PutObject' && call.input.key === SNAPSHOT_KEY.root && ++puts >= 2,
      { status: 403, code: 'AccessDenied', message: 'denied' },
    );
    let mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorMessage).toMatch(/1 of 3.*"root": marking the change delivered/);
    const [told] = snsFor(world.sns(mark), 'root').filter(
      (message) => snsAttributes(message).changeType?.value?.toString() !== 'failed',
    );
    const changeId = told && changeIdInBody(told);
    expect(changeId).toMatch(/^chg-/);

    // BigState goes back to the old keys before the next run.
    world.fakes.recover();
    simulator.removeKeys('root', 'k1');
    simulator.addKeys('root', 'grafana-read');
    mark = world.mark();
    const next = succeeded(await world.invoke({}));
    expect(outcomeOf(next, 'root')).toMatchObject({
      redeliveredChangeIds: [changeId],
      addedKeys: ['grafana-read'],
      removedKeys: ['k1'],
      pendingChangeIds: [],
    });
    // Subscribers hear the change again (same id, at least once), then its reverse, in that order.
    const messages = snsFor(world.sns(mark), 'root');
    expect(snsChangeIds(messages)).toEqual([changeId, outcomeOf(next, 'root').changeId]);
    const events = eventsFor(world.events(mark), 'root').map((event) => event.detailJson);
    expect(events.map((detail) => [detail.changeId, detail.added, detail.removed])).toEqual([
      [changeId, ['k1'], ['grafana-read']],
      [outcomeOf(next, 'root').changeId, ['grafana-read'], ['k1']],
    ]);
    expect(e2e.snapshotNames('root')).toEqual(['ci-deploy', 'grafana-read', 'ops-laptop']);
  });

  it('content going A -> B -> A never repeats an ETag, so an old If-Match can never pass', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'b');
    succeeded(await world.invoke({}));
    simulator.removeKeys('root', 'b');
    succeeded(await world.invoke({}));
    succeeded(await world.invoke({}));
    const etags = world.versions(SNAPSHOT_KEY.root).map((version) => version.etag);
    expect(etags.length).toBeGreaterThanOrEqual(6);
    expect(new Set(etags).size).toBe(etags.length);
  });
});

describe('no false removal when keys churn while we page', () => {
  const EIGHT = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8'];

  it('a real key every walk skips (offset cursors, a short-lived key) is found by its exact query: no removal, no re-add', async () => {
    const { world, simulator } = e2e;
    simulator.setKeys('root', EIGHT);
    await e2e.baseline();
    // From now on a short-lived key appears before page 0 and is gone before page 1: k4 slides onto page 0,
    // which was already read, in every walk.
    simulator.churn('root');
    for (let run = 1; run <= 2; run += 1) {
      const mark = world.mark();
      const result = succeeded(await world.invoke({}));
      // The short-lived key did exist when page 0 was read: it may be reported added, once. k4 never removed.
      expect(outcomeOf(result, 'root')).toMatchObject({ removed: 0, removedKeys: [] });
      expect(outcomeOf(result, 'root').addedKeys).toEqual(run === 1 ? ['!churn'] : []);
      expect(eventsFor(world.events(mark), 'root').flatMap((event) => event.detailJson.removed)).toEqual([]);
      expect(e2e.snapshotNames('root')).toEqual(['!churn', ...EIGHT]);
    }

    // Now k4 is really gone: its exact query finds nothing, and it is reported removed once.
    simulator.removeKeys('root', 'k4');
    const mark = world.mark();
    const gone = succeeded(await world.invoke({}));
    expect(outcomeOf(gone, 'root')).toMatchObject({ removedKeys: ['k4'], addedKeys: [] });
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.changed, 'root']]);
  });

  it('a key whose name holds * is checked with the narrowest pattern and the exact name looked for', async () => {
    const { world, simulator } = e2e;
    // Sorted: c1 c2 c3 x*y x*yz zx*yw. With the churn key before page 0, x*y is the key every walk skips.
    simulator.setKeys('root', ['c1', 'c2', 'c3', 'x*y', 'x*yz', 'zx*yw']);
    await e2e.baseline();
    simulator.churn('root');
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    expect(outcomeOf(result, 'root')).toMatchObject({ removedKeys: [], addedKeys: ['!churn'] });
    expect(eventsFor(world.events(mark), 'root').flatMap((event) => event.detailJson.removed)).toEqual([]);

    // Really gone: its narrowest pattern (*x*) still matches x*yz and zx*yw, but not the exact name.
    simulator.removeKeys('root', 'x*y');
    const gone = succeeded(await world.invoke({}));
    expect(outcomeOf(gone, 'root')).toMatchObject({ removedKeys: ['x*y'], addedKeys: [] });
  });
});

describe('one time budget over every call, and no work after the invocation returns', () => {
  it('SNS hanging past the deadline: the invocation fails naming the stage, and nothing of it goes on in the warm container', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'while-sns-hangs');
    world.fakes.sns.fail('always', { delayMs: Number.POSITIVE_INFINITY });
    let mark = world.mark();
    const hung = await world.invoke({}, { timeoutMs: 6_000 });
    const error = failureOf(hung);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(/"root": publishing the change: [^;]*(time budget|work deadline)/);
    expect(hung.durationMs).toBeLessThan(6_000);
    const lines = jsonLogLines(hung.logs);
    expect(lines.some((line) => line.message === 'audit result')).toBe(true);
    expect(lines.some((line) => '_aws' in line)).toBe(true);
    const [event] = eventsFor(world.events(mark), 'root').filter((e) => e.detailType === DETAIL_TYPE.changed);
    const changeId = event?.detailJson.changeId;
    expect(changeId).toMatch(/^chg-/);

    // The invocation has returned: nothing of its run may still be at work.
    mark = world.mark();
    await sleep(1_500);
    expect(callsSince(mark)).toBe(0);

    world.fakes.recover();
    mark = world.mark();
    const next = await world.invoke({});
    expect(next.coldStart).toBe(false);
    expect(outcomeOf(succeeded(next), 'root').redeliveredChangeIds).toEqual([changeId]);
    expect(snsChangeIds(snsFor(world.sns(mark), 'root'))).toEqual([changeId]);
    expect(world.sns(mark)).toHaveLength(1);
  });

  it('S3 hanging on a read: a named failure, the others audited, the summary logged and the metrics flushed', async () => {
    const { world } = e2e;
    await e2e.baseline();
    world.fakes.s3.fail(
      (call) => call.operation === 'GetObject' && call.input.key === SNAPSHOT_KEY['svc a&b'],
      { delayMs: Number.POSITIVE_INFINITY },
    );
    const mark = world.mark();
    const invocation = await world.invoke({}, { timeoutMs: 6_000 });
    const error = failureOf(invocation);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(
      /1 of 3.*"svc a&b": reading the snapshot: [^;]*(time budget|work deadline)/,
    );
    const lines = jsonLogLines(invocation.logs);
    expect(lines.some((line) => line.message === 'audit result')).toBe(true);
    const emf = lines.find((line) => '_aws' in line && 'PrincipalsFailed' in line);
    expect(emf?.PrincipalsFailed).toBe(1);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'svc a&b']]);
    const after = world.mark();
    await sleep(1_000);
    expect(callsSince(after)).toBe(0);
  });

  it('Secrets Manager hanging: every principal fails by the deadline with a named reason, and the run still reports', async () => {
    const { world } = e2e;
    world.fakes.secretsManager.fail('always', { delayMs: Number.POSITIVE_INFINITY });
    const invocation = await world.invoke({}, { timeoutMs: 6_000 });
    const error = failureOf(invocation);
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toContain('3 of 3');
    expect(error.errorMessage).toMatch(/secret[^;]*(time budget|work deadline)/);
    expect(invocation.durationMs).toBeLessThan(6_000);
    const lines = jsonLogLines(invocation.logs);
    expect(lines.some((line) => line.message === 'audit result')).toBe(true);
    expect(lines.some((line) => '_aws' in line)).toBe(true);
    // The key could not be read: a failure of the run, told once and kept in the run-level record (written
    // after the work deadline, before the hard stop); no principal's snapshot is touched.
    expect(world.s3Calls('PutObject').map((call) => call.input.key)).toEqual([RUN_STATE_KEY]);
    expect(eventKinds(world.events())).toEqual([[DETAIL_TYPE.failed, null]]);
  });
});

describe('failure notices by change of state', () => {
  const INFINITE = { times: Number.POSITIVE_INFINITY };

  it('an empty secret: one notice for the whole run, none on the next run, then baselines and one recovered notice once it is filled', async () => {
    await e2e.restartWorld({ secretString: '{"apiKey": ""}' });
    const { world, simulator } = e2e;
    const { secretArn } = world.resources;

    let mark = world.mark();
    const first = failureOf(await world.invoke({}));
    expect(first.errorType).toBe('AuditRunFailedError');
    expect(first.errorMessage).toContain('3 of 3');
    expect(first.errorMessage).toContain(secretArn);
    expect(simulator.stats.requests).toBe(0);
    const [notice, ...moreNotices] = world.sns(mark);
    expect(moreNotices).toEqual([]);
    if (notice === undefined) throw new Error('no SNS notice for the failed run');
    // About no principal: no principal attribute for a subscription filter to match.
    expect(snsAttributes(notice)).toEqual({ changeType: { type: 'String.Array', value: ['failed'] } });
    expect(notice.subject).toBe('BigState key audit FAILED for the whole run');
    expect(notice.message).toContain(secretArn);
    const [event, ...moreEvents] = world.events(mark);
    expect(moreEvents).toEqual([]);
    expect(event?.detailType).toBe(DETAIL_TYPE.failed);
    expect(event?.detailJson).toEqual({
      runId: expect.any(String),
      principal: null,
      reason: expect.stringContaining(secretArn),
      errorName: 'SecretError',
      detectedAt: expect.any(String),
      failingSince: event?.detailJson.detectedAt,
    });
    // Kept in the run-level record; no principal's snapshot is written.
    expect(world.json(RUN_STATE_KEY)?.failure).toMatchObject({
      stage: 'reading the API key',
      errorName: 'SecretError',
      since: event?.detailJson.detectedAt,
      lastNotifiedAt: event?.detailJson.detectedAt,
    });
    for (const principal of PRINCIPALS) expect(world.versions(SNAPSHOT_KEY[principal])).toEqual([]);

    // The next run fails the same way: the invocation fails again (alarms see it), nobody is told again.
    mark = world.mark();
    const second = failureOf(await world.invoke({}));
    expect(second.errorType).toBe('AuditRunFailedError');
    expect(second.errorMessage).toContain(secretArn);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    expect(world.versions(RUN_STATE_KEY)).toHaveLength(2);

    // The key is filled in: baselines, and the end of the run's failure, told once.
    world.fakes.secretsManager.setSecret(world.secretName, JSON.stringify({ apiKey: API_KEY }));
    mark = world.mark();
    const fixed = succeeded(await world.invoke({}));
    expect(fixed.principals.map((o) => [o.principal, o.status, o.baseline])).toEqual(
      PRINCIPALS.map((principal) => [principal, 'ok', true]),
    );
    expect(eventKinds(world.events(mark))).toEqual(
      [
        ...PRINCIPALS.map((principal) => [DETAIL_TYPE.baseline, principal]),
        [DETAIL_TYPE.recovered, null],
      ].sort(),
    );
    const recovered = world.sns(mark).filter((message) => message.subject?.includes('recovered'));
    expect(recovered.map((message) => [message.subject, snsAttributes(message)])).toEqual([
      [
        'BigState key audit recovered for the whole run',
        { changeType: { type: 'String.Array', value: ['recovered'] } },
      ],
    ]);
    expect(world.sns(mark)).toHaveLength(4);
    expect(world.json(RUN_STATE_KEY)).not.toHaveProperty('failure');

    // And nothing more about the run after that.
    mark = world.mark();
    succeeded(await world.invoke({}));
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
  });

  it('a principal refused with 403 on two runs: one failed notice, then one recovered notice when the 403 stops', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    const kept = e2e.kept('svc a&b');
    simulator.inject('svc a&b', { type: 'status', status: 403 }, INFINITE);

    let mark = world.mark();
    const first = failureOf(await world.invoke({}));
    expect(first.errorMessage).toMatch(/1 of 3.*"svc a&b": [^;]*403/);
    const failed = world.sns(mark);
    expect(failed.map((message) => [message.subject, snsAttributes(message)])).toEqual([
      [
        'BigState key audit FAILED for svc a&b',
        {
          principal: { type: 'String', value: 'svc a&b' },
          changeType: { type: 'String.Array', value: ['failed'] },
        },
      ],
    ]);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'svc a&b']]);
    const since = eventsFor(world.events(mark), 'svc a&b')[0]?.detailJson.failingSince;
    expect(since).toEqual(expect.any(String));

    mark = world.mark();
    const second = failureOf(await world.invoke({}));
    expect(second.errorType).toBe('AuditRunFailedError');
    expect(second.errorMessage).toMatch(/1 of 3.*"svc a&b": [^;]*403/);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    expect(e2e.kept('svc a&b')).toBe(kept);
    expect(e2e.recordedFailure('svc a&b')).toMatchObject({ status: 403, since });

    simulator.clearFaults();
    mark = world.mark();
    const clean = succeeded(await world.invoke({}));
    expect(outcomeOf(clean, 'svc a&b')).toMatchObject({
      status: 'ok',
      baseline: false,
      added: 0,
      removed: 0,
    });
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.recovered, 'svc a&b']]);
    expect(eventsFor(world.events(mark), 'svc a&b')[0]?.detailJson).toEqual({
      runId: expect.any(String),
      principal: 'svc a&b',
      detectedAt: expect.any(String),
      failingSince: since,
    });
    expect(
      world.sns(mark).map((message) => [message.subject, snsAttributes(message).changeType?.value]),
    ).toEqual([['BigState key audit recovered for svc a&b', ['recovered']]]);
    expect(e2e.recordedFailure('svc a&b')).toBeUndefined();

    mark = world.mark();
    succeeded(await world.invoke({}));
    expect(world.sns(mark)).toEqual([]);
  });
});

describe('a snapshot belongs to its host', () => {
  it('another host starts a baseline for every principal, never a diff; the same host spelled differently does not', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.removeKeys('root', 'grafana-read');
    await world.redeploy(e2e.variants.otherHost as NonNullable<typeof e2e.variants.otherHost>);
    let mark = world.mark();
    const moved = succeeded(await world.invoke({}));
    expect(moved.principals.map((o) => [o.principal, o.baseline, o.removed])).toEqual(
      PRINCIPALS.map((principal) => [principal, true, 0]),
    );
    expect(eventKinds(world.events(mark))).toEqual(
      PRINCIPALS.map((principal) => [DETAIL_TYPE.baseline, principal]),
    );

    await world.redeploy(e2e.variants.sameHostSlash as NonNullable<typeof e2e.variants.sameHostSlash>);
    // 127.0.0.1 with a trailing slash is another host than localhost, but the run before used localhost:
    // back on 127.0.0.1, a baseline again; then the same host once more is a plain diff.
    succeeded(await world.invoke({}));
    simulator.addKeys('root', 'after-move');
    mark = world.mark();
    const same = succeeded(await world.invoke({}));
    expect(outcomeOf(same, 'root')).toMatchObject({ baseline: false, addedKeys: ['after-move'] });
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.changed, 'root']]);
  });
});

describe('names are data wherever people read them', () => {
  it('a key name carrying line breaks, an ESC sequence and a forged footer cannot forge a line of the e-mail', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    const forged =
      'x\r\nChange id: chg-00000000000000000000000000000000\nNo keys were removed.\u001b[2J\u2028\u202e';
    simulator.addKeys('root', forged);
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    const [message] = snsFor(world.sns(mark), 'root');
    if (message === undefined) throw new Error('no SNS message');
    const lines = message.message.split(/\r\n|\r|\n|\u2028|\u2029/);
    expect(lines.filter((line) => line.startsWith('Change id:'))).toEqual([
      `Change id: ${outcomeOf(result, 'root').changeId}`,
    ]);
    expect(lines.some((line) => line.startsWith('No keys were removed'))).toBe(false);
    for (const raw of ['\r', '\u001b', '\u2028', '\u202e']) expect(message.message).not.toContain(raw);
    // Machines get the name exactly.
    expect(eventsFor(world.events(mark), 'root')[0]?.detailJson.added).toEqual([forged]);
    expect(outcomeOf(result, 'root').addedKeys).toEqual([forged]);
  });
});

describe('the key never leaks, in any encoding', () => {
  it.each([
    ['base64', Buffer.from(API_KEY).toString('base64')],
    ['base64url', Buffer.from(API_KEY).toString('base64url')],
    ['URL-encoded', encodeURIComponent(`key=${API_KEY}`)],
    ['upper-cased', API_KEY.toUpperCase()],
    ['JSON-escaped', JSON.stringify(API_KEY).slice(1, -1)],
  ])(
    'a 400 whose desc echoes the key %s: the failure says 400, and no form of the key is anywhere',
    async (_form, echoed) => {
      const { world, simulator } = e2e;
      simulator.inject(
        'root',
        { type: 'status', status: 400, body: JSON.stringify({ error: 6, desc: `bad key ${echoed}` }) },
        { times: Number.POSITIVE_INFINITY },
      );
      const error = failureOf(await world.invoke({}));
      expect(error.errorMessage).toMatch(/"root": [^;]*400/);
      expect(error.errorMessage.toLowerCase()).not.toContain(echoed.toLowerCase());
      // suite.ts's afterEach scans logs, results, messages, events, objects and requests for every form.
    },
  );
});

describe('manual and scheduled input are never confused', () => {
  it.each([
    ['dryRun', { dryRun: true }],
    ['principals', { principals: ['root'] }],
  ])(
    'the schedule input plus %s is refused naming the field, writing and publishing nothing',
    async (field, extra) => {
      const { world } = e2e;
      const payload = { ...(scheduledInvocation(e2e.audit.scheduleInput) as object), ...extra };
      const invocation = await world.invoke(payload);
      const error = failureOf(invocation);
      expect(error.errorType).toBe('InvalidRequestError');
      expect(error.errorMessage).toContain(field);
      expect(world.s3Calls('PutObject')).toEqual([]);
      expect(world.sns()).toEqual([]);
      expect(world.events()).toEqual([]);
    },
  );
});

describe('a dry run changes nothing, anywhere', () => {
  it('with a failing principal it returns its summary (ok: false) instead of failing, and emits no metric', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('root', 'dry-key');
    simulator.inject('svc a&b', { type: 'status', status: 403 }, { times: Number.POSITIVE_INFINITY });
    const mark = world.mark();
    const invocation = await world.invoke({ dryRun: true });
    const result = succeeded(invocation);
    expect(result).toMatchObject({ dryRun: true, ok: false });
    expect(outcomeOf(result, 'svc a&b')).toMatchObject({ status: 'failed' });
    expect(outcomeOf(result, 'root')).toMatchObject({ addedKeys: ['dry-key'] });
    expect(world.s3Calls('PutObject', mark)).toEqual([]);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    const metricNames = jsonLogLines(invocation.logs)
      .filter((line) => '_aws' in line)
      .flatMap((line) =>
        (
          (line._aws as { CloudWatchMetrics?: Array<{ Metrics?: Array<{ Name: string }> }> })
            .CloudWatchMetrics ?? []
        )
          .flatMap((directive) => directive.Metrics ?? [])
          .map((metric) => metric.Name),
      );
    expect(metricNames.filter((name) => name !== 'ColdStart')).toEqual([]);
  });
});

describe('a state that cannot be read', () => {
  it('a corrupt snapshot: one failed notice over two runs (kept in failures/), its state never written, then one recovered notice once it is repaired', async () => {
    const { world } = e2e;
    await e2e.baseline();
    const bucket = world.resources.bucketName;
    const good = world.fakes.s3.get(bucket, SNAPSHOT_KEY.root)?.text ?? '';
    expect(good).not.toBe('');
    world.fakes.s3.put(bucket, SNAPSHOT_KEY.root, '{"schemaVersion":2,', { contentType: 'application/json' });
    const corrupt = world.versions(SNAPSHOT_KEY.root).length;

    let mark = world.mark();
    expect(failureOf(await world.invoke({})).errorMessage).toMatch(/1 of 3.*"root": reading the snapshot/);
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.failed, 'root']]);
    expect(world.sns(mark).map((message) => message.subject)).toEqual(['BigState key audit FAILED for root']);
    const kept = world.json('failures/root.json') as { principal: string; failure: { since: string } };
    expect(kept).toMatchObject({
      schemaVersion: 1,
      principal: 'root',
      failure: { stage: 'reading the snapshot' },
    });

    mark = world.mark();
    expect(failureOf(await world.invoke({})).errorMessage).toMatch(/"root": reading the snapshot/);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    // The corrupt state is left as it is for a person to see: never rewritten.
    expect(world.versions(SNAPSHOT_KEY.root)).toHaveLength(corrupt);

    world.fakes.s3.put(bucket, SNAPSHOT_KEY.root, good, { contentType: 'application/json' });
    mark = world.mark();
    succeeded(await world.invoke({}));
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.recovered, 'root']]);
    expect(eventsFor(world.events(mark), 'root')[0]?.detailJson).toMatchObject({
      failingSince: kept.failure.since,
    });
    expect(world.fakes.s3.get(bucket, 'failures/root.json')).toBeUndefined();

    mark = world.mark();
    succeeded(await world.invoke({}));
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
  });
});
