/**
 * End to end through the deployable bundle: what the stack hands the function, how it is invoked (manual,
 * dry-run, scheduled, malformed), what it publishes and stores, principal names as data, a pattern configured
 * later, and the API key kept secret. The stack is synthesized for the file (twice: once more with a `pattern`);
 * every test gets fresh AWS fakes and a cold sandbox (see suite.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  changeIdInBody,
  classicScheduledEvent,
  eventsFor,
  outcomeOf,
  scheduledInvocation,
  secretLeaks,
  snsAttributes,
  snsFor,
  succeeded,
} from './harness.js';
import {
  API_KEY,
  ASCII_SUBJECT,
  CANARY,
  DETAIL_TYPE,
  eventKinds,
  failureOf,
  HISTORY_PREFIX,
  INITIAL_KEYS,
  PRINCIPALS,
  RUN_STATE_KEY,
  SNAPSHOT_KEY,
  useE2e,
} from './suite.js';
import { jsonLogLines, SNS_MAX_PUBLISH_BYTES } from './support/index.js';

const PATTERN = 'ci-*';
const e2e = useE2e({ withPattern: { pattern: PATTERN } });

describe('the deployable bundle', () => {
  it('gets the configured host and principals unchanged, and resource names from the stack itself', async () => {
    const { audit, simulator, world } = e2e;
    expect(audit.handler).toBe('index.handler');
    expect(existsSync(join(audit.bundleDir, 'index.mjs'))).toBe(true);
    expect(audit.environment.BIGSTATE_HOST).toBe(simulator.url);
    expect(audit.environment.BIGSTATE_PRINCIPALS).toBe('["root","svc a&b","zürich #1"]');
    // Nothing else configures it: the contract's variables, Powertools' names, source maps.
    expect(Object.keys(audit.environment).sort()).toEqual([
      'API_KEY_SECRET_ARN',
      'BIGSTATE_HOST',
      'BIGSTATE_MAX_REQUESTS_IN_FLIGHT',
      'BIGSTATE_PRINCIPALS',
      'EVENT_BUS_NAME',
      'NODE_OPTIONS',
      'POWERTOOLS_METRICS_NAMESPACE',
      'POWERTOOLS_SERVICE_NAME',
      'SNAPSHOT_BUCKET_NAME',
      'TOPIC_ARN',
    ]);
    expect(world.functionEnv).toMatchObject({
      API_KEY_SECRET_ARN: world.resources.secretArn,
      SNAPSHOT_BUCKET_NAME: world.resources.bucketName,
      TOPIC_ARN: world.resources.topicArn,
      EVENT_BUS_NAME: 'default',
    });
    // It starts (configuration is validated at cold start) and runs with exactly that.
    const invocation = await world.invoke({ dryRun: true });
    expect(invocation.coldStart).toBe(true);
    expect(succeeded(invocation).principals.map((outcome) => outcome.principal)).toEqual([...PRINCIPALS]);
  });

  it('runs whatever time is left when it starts (the walk budget is whole milliseconds)', async () => {
    const { world } = e2e;
    await e2e.baseline();
    // Lambda's remaining time is any whole number of milliseconds; a fifth of it is often a fraction.
    for (const timeoutMs of [20_001, 20_002, 20_003, 20_004, 20_006]) {
      succeeded(await world.invoke({}, { timeoutMs }));
    }
  });
});

describe('publishing', () => {
  it('no change: publishes nothing and writes nothing (each state stays as the baseline left it)', async () => {
    const { world } = e2e;
    const baseline = await e2e.baseline();
    const etags = PRINCIPALS.map((principal) => world.versions(SNAPSHOT_KEY[principal]).at(-1)?.etag);
    const mark = world.mark();
    const invocation = await world.invoke({});
    const result = succeeded(invocation);
    expect(
      result.principals.map((o) => [o.principal, o.baseline, o.keyCount, o.added, o.removed, o.changeId]),
    ).toEqual([
      ['root', false, 3, 0, 0, undefined],
      ['svc a&b', false, 2, 0, 0, undefined],
      ['zürich #1', false, 1, 0, 0, undefined],
    ]);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    // Not one PUT: a principal with nothing new costs reads only (its state is refreshed once a day).
    expect(world.s3Calls('PutObject', mark)).toEqual([]);
    PRINCIPALS.forEach((principal, index) => {
      expect(world.versions(SNAPSHOT_KEY[principal]).at(-1)?.etag).toBe(etags[index]);
      expect(world.json(SNAPSHOT_KEY[principal])).toMatchObject({ runId: baseline.runId, pending: [] });
      expect(e2e.snapshotNames(principal)).toEqual([...INITIAL_KEYS[principal]].sort());
    });
  });

  it('publishes added and removed keys on SNS and EventBridge in the contract shapes', async () => {
    const { world, simulator } = e2e;
    const first = await e2e.baseline();
    simulator.addKeys('root', 'unknown-laptop');
    simulator.removeKeys('svc a&b', '#primary');
    simulator.addKeys('zürich #1', 'zz-new');
    simulator.removeKeys('zürich #1', 'monitoring');
    const mark = world.mark();
    const invocation = await world.invoke({});
    const result = succeeded(invocation);
    expect(
      result.principals.map((o) => [o.principal, o.added, o.removed, o.addedKeys, o.removedKeys, o.keyCount]),
    ).toEqual([
      ['root', 1, 0, ['unknown-laptop'], [], 4],
      ['svc a&b', 0, 1, [], ['#primary'], 1],
      ['zürich #1', 1, 1, ['zz-new'], ['monitoring'], 1],
    ]);

    const expected = {
      root: { added: ['unknown-laptop'], removed: [], types: ['added'], total: 4 },
      'svc a&b': { added: [], removed: ['#primary'], types: ['removed'], total: 1 },
      'zürich #1': { added: ['zz-new'], removed: ['monitoring'], types: ['added', 'removed'], total: 1 },
    } as const;
    const messages = world.sns(mark);
    const events = world.events(mark);
    expect(messages).toHaveLength(3);
    expect(eventKinds(events)).toEqual(PRINCIPALS.map((principal) => [DETAIL_TYPE.changed, principal]));
    const { bucketName } = world.resources;
    for (const principal of PRINCIPALS) {
      const want = expected[principal];
      const changeId = outcomeOf(result, principal).changeId;
      expect(changeId).toMatch(/^chg-[0-9a-f]{32}$/);
      expect(changeId).not.toBe(outcomeOf(first, principal).changeId);

      const [message, ...moreMessages] = snsFor(messages, principal);
      expect(moreMessages).toEqual([]);
      if (message === undefined) throw new Error(`no SNS message for ${principal}`);
      expect(message.subject).toMatch(ASCII_SUBJECT);
      expect(snsAttributes(message)).toEqual({
        principal: { type: 'String', value: principal },
        changeType: { type: 'String.Array', value: want.types },
      });
      for (const name of [...want.added, ...want.removed]) expect(message.message).toContain(name);
      // Only the change is listed, not the keys that stayed.
      expect(message.message).not.toContain('ci-deploy');
      expect(changeIdInBody(message)).toBe(changeId);

      const [event] = eventsFor(events, principal);
      expect(event).toMatchObject({ source: 'bigstate.key-audit', eventBusName: 'default' });
      const changeRecordLocation = `s3://${bucketName}/${HISTORY_PREFIX[principal]}${changeId}.json`;
      expect(event?.detailJson).toEqual({
        changeId,
        runId: invocation.requestId,
        principal,
        pattern: null,
        detectedAt: expect.any(String),
        added: want.added,
        removed: want.removed,
        counts: { added: want.added.length, removed: want.removed.length, total: want.total },
        snapshotLocation: `s3://${bucketName}/${SNAPSHOT_KEY[principal]}`,
        changeRecordLocation,
        truncated: false,
      });
      expect(world.json(`${HISTORY_PREFIX[principal]}${changeId}.json`)).toMatchObject({
        changeId,
        kind: 'changed',
        principal,
        added: want.added,
        removed: want.removed,
        // The version the diff read: the baseline's, once its delivery was marked.
        previousSnapshotVersion: world.versions(SNAPSHOT_KEY[principal])[1]?.etag,
        changeRecordLocation,
      });
    }
    // The README's example subject, exactly.
    expect(snsFor(messages, 'root')[0]?.subject).toBe('BigState API keys changed for root (+1 -0)');
    expect(e2e.snapshotNames('root')).toContain('unknown-laptop');
    expect(e2e.snapshotNames('svc a&b')).toEqual(['zürich-backup']);
    expect(e2e.snapshotNames('zürich #1')).toEqual(['zz-new']);
  });

  it('a change too large for one message: the messages carry the counts and where the full record is', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    // 300 names of 1,000 characters: about 300 KB, over SNS's 256 KiB and EventBridge's 256 KB.
    const names = Array.from(
      { length: 300 },
      (_, i) => `big-${String(i).padStart(3, '0')}-${'x'.repeat(992)}`,
    );
    simulator.addKeys('root', ...names);
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    const changeId = outcomeOf(result, 'root').changeId;
    expect(outcomeOf(result, 'root')).toMatchObject({ added: 300, keysTruncated: false });
    const location = `s3://${world.resources.bucketName}/${HISTORY_PREFIX.root}${changeId}.json`;

    const [message, ...more] = world.sns(mark);
    expect(more).toEqual([]);
    if (message === undefined) throw new Error('the large change was not published on SNS');
    expect(message.size).toBeLessThanOrEqual(SNS_MAX_PUBLISH_BYTES);
    expect(message.message).toContain(names[0]);
    expect(message.message).not.toContain(names[299]);
    expect(message.message).toContain(location);
    expect(message.subject).toBe('BigState API keys changed for root (+300 -0)');

    const [event] = eventsFor(world.events(mark), 'root');
    expect(event?.detailJson).toMatchObject({
      changeId,
      added: [],
      removed: [],
      truncated: true,
      counts: { added: 300, removed: 0, total: 303 },
      changeRecordLocation: location,
    });
    expect(world.json(`${HISTORY_PREFIX.root}${changeId}.json`)?.added).toEqual(names);
  });
});

describe('principal names are data', () => {
  it('are percent-encoded in S3 keys (as the README says) and intact in results, messages and events', async () => {
    const { world, simulator } = e2e;
    await e2e.baseline();
    simulator.addKeys('svc a&b', 'key & more #2');
    simulator.addKeys('zürich #1', 'grüezi-key');
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    expect(result.principals.map((o) => o.principal)).toEqual([...PRINCIPALS]);
    // BigState got each name as one query value: a raw `&` or `#` would have cut it.
    expect(Object.keys(simulator.stats.requestsByPrincipal).sort()).toEqual([...PRINCIPALS].sort());

    const keys = world.fakes.s3.objects().map((object) => object.key);
    for (const key of keys) expect(key).toMatch(/^(snapshots|history|reports)\/[A-Za-z0-9%._/-]+$/);
    for (const principal of PRINCIPALS) {
      expect(keys).toContain(SNAPSHOT_KEY[principal]);
      expect(keys.filter((key) => key.startsWith(HISTORY_PREFIX[principal]))).toHaveLength(
        principal === 'root' ? 1 : 2,
      );
      expect(world.json(SNAPSHOT_KEY[principal])?.principal).toBe(principal);
    }

    const messages = world.sns(mark);
    const [zurich] = snsFor(messages, 'zürich #1');
    expect(zurich?.subject).toBe('BigState API keys changed for zurich #1 (+1 -0)');
    expect(zurich?.message).toContain('"zürich #1"');
    expect(zurich?.message).toContain('grüezi-key');
    const [svc] = snsFor(messages, 'svc a&b');
    expect(svc?.subject).toBe('BigState API keys changed for svc a&b (+1 -0)');
    expect(svc?.message).toContain('key & more #2');

    const { bucketName } = world.resources;
    const events = world.events(mark);
    expect(eventsFor(events, 'zürich #1')[0]?.detailJson).toMatchObject({
      principal: 'zürich #1',
      added: ['grüezi-key'],
      snapshotLocation: `s3://${bucketName}/snapshots/z%C3%BCrich%20%231.json`,
    });
    expect(eventsFor(events, 'svc a&b')[0]?.detailJson).toMatchObject({
      principal: 'svc a&b',
      added: ['key & more #2'],
      snapshotLocation: `s3://${bucketName}/snapshots/svc%20a%26b.json`,
    });
  });
});

describe('a pattern configured later', () => {
  it('passes the pattern through, and starts a new baseline instead of reporting the other keys removed', async () => {
    const { world, simulator } = e2e;
    const withPattern = e2e.variants.withPattern;
    if (withPattern === undefined) throw new Error('the stack with a pattern was not synthesized');
    expect(withPattern.environment.BIGSTATE_PATTERN).toBe(PATTERN);

    await e2e.baseline();
    // A stack update: the same bucket, secret and topic; a new function configuration.
    await world.redeploy(withPattern);
    expect(world.functionEnv.BIGSTATE_PATTERN).toBe(PATTERN);
    simulator.addKeys('svc a&b', 'ci-svc');
    let mark = world.mark();
    const rebased = succeeded(await world.invoke({}));
    expect(rebased.principals.map((o) => [o.principal, o.baseline, o.keyCount, o.removed])).toEqual([
      ['root', true, 1, 0],
      ['svc a&b', true, 1, 0],
      ['zürich #1', true, 0, 0],
    ]);
    expect(eventKinds(world.events(mark))).toEqual(
      PRINCIPALS.map((principal) => [DETAIL_TYPE.baseline, principal]),
    );
    for (const event of world.events(mark)) expect(event.detailJson.pattern).toBe(PATTERN);
    for (const message of world.sns(mark)) {
      expect(snsAttributes(message).changeType?.value).toEqual(['baseline']);
    }
    expect(e2e.snapshotNames('root')).toEqual(['ci-deploy']);
    expect(world.json(SNAPSHOT_KEY.root)?.pattern).toBe(PATTERN);

    // From then on, changes within the pattern.
    simulator.addKeys('root', 'ci-release', 'not-matching');
    mark = world.mark();
    const next = succeeded(await world.invoke({}));
    expect(outcomeOf(next, 'root')).toMatchObject({ baseline: false, addedKeys: ['ci-release'] });
    expect(eventKinds(world.events(mark))).toEqual([[DETAIL_TYPE.changed, 'root']]);
  });
});

describe('invocations', () => {
  it('a dry run walks and diffs, returns the diff, and neither publishes nor writes', async () => {
    const { world, simulator } = e2e;
    const dryBaseline = succeeded(await world.invoke({ dryRun: true }));
    expect(dryBaseline).toMatchObject({ dryRun: true, ok: true });
    expect(dryBaseline.principals.map((o) => [o.principal, o.baseline, o.keyCount])).toEqual([
      ['root', true, 3],
      ['svc a&b', true, 2],
      ['zürich #1', true, 1],
    ]);
    expect(world.fakes.s3.objects()).toEqual([]);
    expect(world.sns()).toEqual([]);
    expect(world.events()).toEqual([]);

    await e2e.baseline();
    simulator.addKeys('root', 'dry-added');
    simulator.removeKeys('svc a&b', '#primary');
    const versions = e2e.snapshotVersions();
    const objects = world.fakes.s3.objects().length;
    const mark = world.mark();
    const dry = succeeded(await world.invoke({ dryRun: true }));
    expect(dry.dryRun).toBe(true);
    expect(dry.principals.map((o) => [o.principal, o.addedKeys, o.removedKeys])).toEqual([
      ['root', ['dry-added'], []],
      ['svc a&b', [], ['#primary']],
      ['zürich #1', [], []],
    ]);
    const subset = succeeded(await world.invoke({ principals: ['svc a&b'], dryRun: true }));
    expect(subset.principals.map((o) => [o.principal, o.removedKeys])).toEqual([['svc a&b', ['#primary']]]);
    expect(world.s3Calls('PutObject', mark)).toEqual([]);
    expect(world.fakes.s3.objects()).toHaveLength(objects);
    expect(e2e.snapshotVersions()).toEqual(versions);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);

    // Nothing was consumed: the real run finds the same change.
    const real = succeeded(await world.invoke({}));
    expect(real.principals.map((o) => [o.principal, o.addedKeys, o.removedKeys])).toEqual(
      dry.principals.map((o) => [o.principal, o.addedKeys, o.removedKeys]),
    );
    expect(eventKinds(world.events(mark))).toEqual([
      [DETAIL_TYPE.changed, 'root'],
      [DETAIL_TYPE.changed, 'svc a&b'],
    ]);
  });

  it('refuses bad manual input naming the field, before any BigState call, writing and publishing nothing', async () => {
    const { world, simulator } = e2e;
    const cases: Array<[unknown, string, string?]> = [
      [{ principals: [] }, 'principals'],
      [{ foo: 1 }, 'foo'],
      [{ principals: ['not-configured'] }, 'principals', 'not-configured'],
      [{ principals: ['root', 'svc a&b ', 'zürich #1'] }, 'principals', 'svc a&b '],
      [{ dryRun: 'yes' }, 'dryRun'],
      [{ principals: 'root' }, 'principals'],
      [{ principals: ['root'], dryRun: true, dryrun: true }, 'dryrun'],
    ];
    for (const [payload, field, named] of cases) {
      const error = failureOf(await world.invoke(payload));
      expect(error.errorType, JSON.stringify(payload)).toBe('InvalidRequestError');
      expect(error.errorMessage, JSON.stringify(payload)).toContain(`"${field}"`);
      if (named !== undefined) expect(error.errorMessage).toContain(JSON.stringify(named));
    }
    expect(simulator.stats.requests).toBe(0);
    expect(world.secretReads()).toBe(0);
    expect(world.fakes.s3.requests).toEqual([]);
    expect(world.fakes.sns.requests).toEqual([]);
    expect(world.fakes.eventBridge.requests).toEqual([]);
  });

  it('a manual run of some principals audits and touches only theirs', async () => {
    const { world, simulator } = e2e;
    const result = succeeded(await world.invoke({ principals: ['svc a&b'] }));
    expect(result.principals.map((o) => [o.principal, o.baseline])).toEqual([['svc a&b', true]]);
    expect(Object.keys(simulator.stats.requestsByPrincipal)).toEqual(['svc a&b']);
    const keys = world.fakes.s3.objects().map((object) => object.key);
    expect(keys).toHaveLength(2);
    for (const key of keys) expect(key).toContain('svc%20a%26b');
    expect(eventKinds(world.events())).toEqual([[DETAIL_TYPE.baseline, 'svc a&b']]);
  });

  it("the stack's schedule input and the classic scheduled event both run every principal", async () => {
    const { world, simulator, audit } = e2e;
    const scheduled = scheduledInvocation(audit.scheduleInput);
    expect(scheduled).toMatchObject({ source: 'bigstate.key-audit.schedule' });
    const first = await world.invoke(scheduled);
    expect(succeeded(first).principals.map((o) => [o.principal, o.baseline])).toEqual(
      PRINCIPALS.map((principal) => [principal, true]),
    );
    simulator.resetStats();
    simulator.addKeys('zürich #1', 'from-the-schedule');
    const classic = await world.invoke(classicScheduledEvent());
    expect(succeeded(classic).principals.map((o) => [o.principal, o.baseline, o.added])).toEqual([
      ['root', false, 0],
      ['svc a&b', false, 0],
      ['zürich #1', false, 1],
    ]);
    expect(Object.keys(simulator.stats.requestsByPrincipal).sort()).toEqual([...PRINCIPALS].sort());
    for (const invocation of [first, classic]) {
      const summary = jsonLogLines(invocation.logs).find((line) => line.message === 'audit result');
      expect(summary?.trigger).toBe('schedule');
    }
  });
});

describe('the API key is a secret', () => {
  it('appears in no log line (debug included), result, error, message, event or stored object', async () => {
    const { simulator } = e2e;
    // The secret as JSON and the logs at DEBUG: the most the function can say.
    await e2e.restartWorld({
      secretString: JSON.stringify({ apiKey: API_KEY }),
      envOverrides: { AWS_LAMBDA_LOG_LEVEL: 'DEBUG', POWERTOOLS_LOG_LEVEL: 'DEBUG' },
    });
    const { world } = e2e;
    await e2e.baseline();
    // A rotation (401, re-read), a refused principal, a change, a dry run, a bad payload, a key refused for good.
    const rotated = `${CANARY}-ROTATED-91c2`;
    simulator.setApiKeys([rotated]);
    world.fakes.secretsManager.setSecret(world.secretName, JSON.stringify({ apiKey: rotated }));
    simulator.addKeys('root', 'canary-added');
    simulator.inject('svc a&b', { type: 'status', status: 403 }, { times: Number.POSITIVE_INFINITY });
    failureOf(await world.invoke({}));
    succeeded(await world.invoke({ dryRun: true, principals: ['root'] }));
    failureOf(await world.invoke({ principals: ['not-configured'] }));
    simulator.setApiKeys(['sk-e2e-someone-else']);
    failureOf(await world.invoke({}));

    // The scan covers something: debug lines, the 401 warning, the failures, the run ids everywhere.
    const structured = jsonLogLines(world.invocations.flatMap((invocation) => invocation.logs));
    expect(structured.some((line) => line.level === 'DEBUG')).toBe(true);
    expect(structured.some((line) => String(line.message).includes('refused the API key'))).toBe(true);
    expect(structured.some((line) => line.message === 'principal failed')).toBe(true);
    const firstRun = world.invocations[0]?.requestId ?? '';
    const places = secretLeaks(world, [firstRun]).join('\n');
    for (const where of [
      'log line',
      'result',
      'SNS message',
      'EventBridge event',
      's3://',
      'PutObject request',
    ]) {
      expect(places).toContain(where);
    }
    expect(secretLeaks(world, [CANARY])).toEqual([]);
  });

  it("the stack's unfilled secret fails the run naming the secret, before any BigState call", async () => {
    const { audit, simulator } = e2e;
    const secret = Object.values(audit.resources).find((r) => r.Type === 'AWS::SecretsManager::Secret');
    const unfilled = secret?.Properties?.SecretString;
    expect(unfilled).toBe('{"apiKey":""}');
    await e2e.restartWorld({ secretString: String(unfilled) });
    const { world } = e2e;
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toContain('3 of 3');
    expect(error.errorMessage).toContain(world.resources.secretArn);
    expect(error.errorMessage).toMatch(/empty/);
    expect(simulator.stats.requests).toBe(0);
    // No principal's snapshot is written: only the run-level record, which keeps the failure of the run.
    expect(world.s3Calls('PutObject').map((call) => call.input.key)).toEqual([RUN_STATE_KEY]);
    // One notice for the run, not one per principal.
    expect(eventKinds(world.events())).toEqual([[DETAIL_TYPE.failed, null]]);
    expect(world.sns()).toHaveLength(1);
  });
});
