/**
 * The Lambda handler (functions/audit.ts) end to end in-process: configuration read at import, mocked AWS clients
 * (aws-sdk-client-mock patches the client prototypes, so the module-scope clients are covered), an in-memory S3
 * with conditional writes, and the BigState simulator on loopback.
 */
import '../adapters/aws/support.js';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  DeleteObjectCommand,
  type DeleteObjectCommandInput,
  GetObjectCommand,
  type GetObjectCommandInput,
  NoSuchKey,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, type PublishCommandInput, SNSClient } from '@aws-sdk/client-sns';
import type { Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';
// The module is imported afresh per test (vi.resetModules), so its errors are checked by name, not instanceof.
import type { AuditRunFailedError, InvalidRequestError } from '../../functions/commons/errors.js';
import type { AuditResult } from '../../functions/core/result.js';
import { objectBody, s3Error } from '../adapters/aws/support.js';

const KEY = 'bsk_handler-Secret-4242';
const ROTATED_KEY = 'bsk_handler-Rotated-9191';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate-AbCdEf';
const BUCKET = 'audit-bucket';
const TOPIC = 'arn:aws:sns:eu-central-1:123456789012:bigstate-key-audit';
const BUS = 'audit-bus';

const s3 = mockClient(S3Client);
const sm = mockClient(SecretsManagerClient);
const sns = mockClient(SNSClient);
const events = mockClient(EventBridgeClient);

type HandlerModule = typeof import('../../functions/audit.js');

let simulator: Simulator;
/** The bucket: key -> body and ETag. */
let objects: Map<string, { body: string; etag: string }>;
/** Principals are audited concurrently, so notices are compared as sorted lists. */
/** Everything the function wrote to stdout and stderr (Powertools' Logger and Metrics). */
let output: string[];

beforeAll(async () => {
  simulator = await startSimulator({ apiKeys: [KEY], pageSize: 2 });
});

afterAll(async () => {
  await simulator.close();
});

beforeEach(() => {
  s3.reset();
  sm.reset();
  sns.reset();
  events.reset();
  simulator.clearFaults();
  simulator.setApiKeys([KEY]);
  simulator.setKeys('root', ['ci-deploy', 'grafana-read', 'ops-laptop']);
  simulator.setKeys('svc a&b', ['#primary', 'zürich-backup']);
  simulator.resetStats();

  objects = new Map();
  let etags = 0;
  s3.on(GetObjectCommand).callsFake((input: GetObjectCommandInput) => {
    const object = objects.get(String(input.Key));
    if (object === undefined) {
      throw new NoSuchKey({
        message: 'The specified key does not exist.',
        $metadata: { httpStatusCode: 404 },
      });
    }
    return { Body: objectBody(object.body), ETag: object.etag };
  });
  s3.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
    const key = String(input.Key);
    const current = objects.get(key);
    if (input.IfNoneMatch === '*' && current !== undefined) throw s3Error('PreconditionFailed', 412);
    if (input.IfMatch !== undefined && current?.etag !== input.IfMatch)
      throw s3Error('PreconditionFailed', 412);
    etags += 1;
    const etag = `"etag-${etags}"`;
    objects.set(key, { body: String(input.Body), etag });
    return { ETag: etag };
  });
  s3.on(DeleteObjectCommand).callsFake((input: DeleteObjectCommandInput) => {
    const key = String(input.Key);
    const current = objects.get(key);
    if (input.IfMatch !== undefined && current?.etag !== input.IfMatch)
      throw s3Error('PreconditionFailed', 412);
    objects.delete(key);
    return {};
  });
  sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: KEY }) });
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
  events.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e' }] });

  output = [];
  const capture = ((chunk: unknown) => {
    output.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);

  stubEnvironment();
});

afterEach(() => {
  vi.restoreAllMocks();
});

function stubEnvironment(overrides: Record<string, string | undefined> = {}): void {
  const env: Record<string, string | undefined> = {
    AWS_REGION: 'eu-central-1',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    BIGSTATE_HOST: simulator.url,
    BIGSTATE_PRINCIPALS: '["root","svc a&b"]',
    BIGSTATE_PATTERN: undefined,
    API_KEY_SECRET_ARN: SECRET_ARN,
    SNAPSHOT_BUCKET_NAME: BUCKET,
    TOPIC_ARN: TOPIC,
    EVENT_BUS_NAME: BUS,
    POWERTOOLS_SERVICE_NAME: 'bigstate-key-audit',
    POWERTOOLS_METRICS_NAMESPACE: 'BigStateKeyAudit',
    POWERTOOLS_DEV: undefined,
    POWERTOOLS_METRICS_DISABLED: undefined,
    POWERTOOLS_LOG_LEVEL: 'INFO',
    ...overrides,
  };
  for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
}

/** A fresh copy of the handler module, so the configuration is read again (a cold start). */
async function coldStart(): Promise<HandlerModule> {
  vi.resetModules();
  return import('../../functions/audit.js');
}

let requests = 0;
function context(remainingMs = 60_000): Context {
  requests += 1;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'bigstate-key-audit',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:bigstate-key-audit',
    memoryLimitInMB: '512',
    awsRequestId: `req-${requests}`,
    logGroupName: '/aws/lambda/bigstate-key-audit',
    logStreamName: '2025/06/01/[$LATEST]abc',
    getRemainingTimeInMillis: () => remainingMs,
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

const SCHEDULED = {
  source: 'bigstate.key-audit.schedule',
  scheduledTime: '2025-06-01T12:00:00Z',
  executionId: 'x',
};

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the invocation to fail');
}

function published(): PublishCommandInput[] {
  return sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
}

function eventDetailTypes(): string[] {
  return events
    .commandCalls(PutEventsCommand)
    .flatMap((call) => call.args[0].input.Entries ?? [])
    .map((entry) => String(entry.DetailType));
}

/** The keys put, the run lease's aside (every real run takes and releases it: see its own tests). */
function putKeys(): string[] {
  return s3
    .commandCalls(PutObjectCommand)
    .map((call) => String(call.args[0].input.Key))
    .filter((key) => key !== LEASE && !key.startsWith('reports/'));
}

const LEASE = 'leases/run.json';

describe('the audit Lambda: configuration', () => {
  it.each([
    'BIGSTATE_HOST',
    'BIGSTATE_PRINCIPALS',
    'API_KEY_SECRET_ARN',
    'SNAPSHOT_BUCKET_NAME',
    'TOPIC_ARN',
    'EVENT_BUS_NAME',
  ])('fails at cold start, naming %s, when it is missing', async (name) => {
    stubEnvironment({ [name]: undefined });
    const error = await rejection(coldStart());
    expect(error.name).toBe('ConfigurationError');
    const unless = name === 'BIGSTATE_PRINCIPALS' ? ' (unless BIGSTATE_PRINCIPAL_PATTERN is set)' : '';
    expect(error.message).toBe(`invalid environment: ${name} is required${unless}`);
  });

  it('fails at cold start, naming BIGSTATE_HOST, for plain http to a remote host', async () => {
    stubEnvironment({ BIGSTATE_HOST: 'http://api.bigstate.dev' });
    expect((await rejection(coldStart())).message).toBe(
      'invalid environment: BIGSTATE_HOST must use https (plain http is accepted for loopback hosts only)',
    );
  });

  it('reads no secret and calls nothing at cold start', async () => {
    await coldStart();
    expect(sm).not.toReceiveAnyCommand();
    expect(s3).not.toReceiveAnyCommand();
    expect(simulator.stats.requests).toBe(0);
  });
});

describe('runBudget', () => {
  it.each([
    // remaining, work deadline, hard stop (ms from the start of the invocation)
    [0, 0, 0],
    [500, 0, 0],
    [1_000, 0, 300],
    [2_500, 800, 1_800],
    [5_000, 3_300, 4_300],
    [7_777, 5_661, 7_077],
    [14_000, 10_640, 13_300],
    [60_000, 45_600, 57_000],
    [150_000, 117_600, 147_000],
    [900_000, 867_000, 897_000],
  ])('splits %i ms into %i ms of work and a hard stop at %i ms', async (remaining, workMs, hardStopMs) => {
    const { runBudget } = await coldStart();
    expect(runBudget(remaining)).toEqual({ workMs, hardStopMs });
  });

  it('keeps the hard stop ahead of middy and the work deadline ahead of the hard stop, in whole milliseconds', async () => {
    const { runBudget } = await coldStart();
    for (let remaining = 0; remaining <= 1_000_000; remaining += 997) {
      const { workMs, hardStopMs } = runBudget(remaining);
      expect(Number.isInteger(workMs)).toBe(true);
      expect(Number.isInteger(hardStopMs)).toBe(true);
      expect(workMs).toBeGreaterThanOrEqual(0);
      expect(workMs).toBeLessThanOrEqual(hardStopMs);
      // At least 0.5 s for the response and the metrics, besides middy's own 200 ms.
      if (remaining > 0) expect(hardStopMs).toBeLessThanOrEqual(Math.max(0, remaining - 700));
      // At least 1 s between the two for failure notices, once there is time at all.
      if (hardStopMs >= 1_000) expect(hardStopMs - workMs).toBeGreaterThanOrEqual(1_000);
      expect(() => AbortSignal.timeout(Math.max(1, workMs))).not.toThrow();
    }
  });
});

describe('the audit Lambda: invocations', () => {
  it.each([
    ['a principals field that is not a list', { principals: 'root' }, 'principals'],
    ['an empty principals list', { principals: [] }, 'principals'],
    ['an unknown field', { dryrun: true }, 'dryrun'],
    ['a principal that is not configured', { principals: ['root', 'intruder'] }, 'principals'],
    ['a dryRun that is not a boolean', { dryRun: 'true' }, 'dryRun'],
    ['null', null, '(payload)'],
    ['an array', [], '(payload)'],
    ['a string', 'run', '(payload)'],
  ])('refuses %s before any BigState call, writing and publishing nothing', async (_what, event, field) => {
    const { handler } = await coldStart();
    const error = await rejection(handler(event, context()));
    expect(error.name).toBe('InvalidRequestError');
    expect((error as InvalidRequestError).field).toBe(field);
    expect(error.message).toContain(field === '(payload)' ? 'payload' : `"${field}"`);
    expect(simulator.stats.requests).toBe(0);
    expect(sm).not.toReceiveAnyCommand();
    expect(s3).not.toReceiveAnyCommand();
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();
  });

  it('runs a scheduled baseline, then publishes the changes it finds', async () => {
    const { handler } = await coldStart();
    const first = (await handler(SCHEDULED, context())) as AuditResult;
    expect(first).toMatchObject({ runId: `req-${requests}`, ok: true, dryRun: false });
    expect(
      first.principals.map((p) => [p.principal, p.status, p.baseline, p.keyCount, p.added, p.removed]),
    ).toEqual([
      ['root', 'ok', true, 3, 0, 0],
      ['svc a&b', 'ok', true, 2, 0, 0],
    ]);
    expect(
      published()
        .map((input) => input.Subject)
        .sort(),
    ).toEqual([
      'BigState key audit baseline for root (3 keys)',
      'BigState key audit baseline for svc a&b (2 keys)',
    ]);
    expect(eventDetailTypes().sort()).toEqual(['BigState Key Audit Baseline', 'BigState Key Audit Baseline']);
    expect(sns).toReceiveCommandWith(PublishCommand, { TopicArn: TOPIC });
    expect(events).toReceiveCommandWith(PutEventsCommand, {
      Entries: [expect.objectContaining({ EventBusName: BUS, Source: 'bigstate.key-audit' })],
    });
    expect([...objects.keys()].filter((key) => key.startsWith('snapshots/')).sort()).toEqual([
      'snapshots/root.json',
      'snapshots/svc%20a%26b.json',
    ]);
    expect(s3).toReceiveCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: 'snapshots/root.json',
      IfNoneMatch: '*',
    });
    expect(sm).toReceiveCommandExactlyOnceWith(GetSecretValueCommand, { SecretId: SECRET_ARN });

    sns.resetHistory();
    events.resetHistory();
    s3.resetHistory();
    sm.resetHistory();
    simulator.addKeys('root', 'unknown-laptop');
    simulator.removeKeys('svc a&b', '#primary');
    const second = (await handler({}, context())) as AuditResult;
    expect(second.ok).toBe(true);
    expect(second.principals[0]).toMatchObject({
      principal: 'root',
      added: 1,
      removed: 0,
      addedKeys: ['unknown-laptop'],
    });
    expect(second.principals[1]).toMatchObject({
      principal: 'svc a&b',
      added: 0,
      removed: 1,
      removedKeys: ['#primary'],
    });
    expect(
      published()
        .map((input) => input.Subject)
        .sort(),
    ).toEqual([
      'BigState API keys changed for root (+1 -0)',
      'BigState API keys changed for svc a&b (+0 -1)',
    ]);
    expect(eventDetailTypes().sort()).toEqual(['BigState API Keys Changed', 'BigState API Keys Changed']);
    expect(s3).toReceiveCommandWith(PutObjectCommand, {
      Key: 'snapshots/root.json',
      IfMatch: expect.stringMatching(/^"etag-\d+"$/),
    });
    // The warm container reused the cached key.
    expect(sm).not.toReceiveAnyCommand();
  });

  it('audits only the principals a manual payload names, touching only their snapshots', async () => {
    const { handler } = await coldStart();
    const result = (await handler({ principals: ['svc a&b'] }, context())) as AuditResult;
    expect(result.principals.map((p) => p.principal)).toEqual(['svc a&b']);
    expect(putKeys().every((key) => key.includes('svc%20a%26b'))).toBe(true);
    expect(simulator.stats.requestsByPrincipal.root).toBeUndefined();
  });

  it('walks and diffs a dry run, writing and publishing nothing', async () => {
    const { handler } = await coldStart();
    const result = (await handler({ dryRun: true }, context())) as AuditResult;
    expect(result.dryRun).toBe(true);
    expect(result.principals.map((p) => [p.principal, p.baseline, p.keyCount])).toEqual([
      ['root', true, 3],
      ['svc a&b', true, 2],
    ]);
    expect(s3).not.toReceiveCommand(PutObjectCommand);
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();
  });

  it('returns the summary of a dry run in which a principal failed, failing nothing and emitting no metric', async () => {
    const { handler } = await coldStart();
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    const result = (await handler({ dryRun: true }, context())) as AuditResult;
    expect(result).toMatchObject({ dryRun: true, ok: false });
    expect(result.principals.map((p) => [p.principal, p.status])).toEqual([
      ['root', 'ok'],
      ['svc a&b', 'failed'],
    ]);
    expect(result.principals[1]?.reason).toMatch(/^walking the keys: /);
    expect(s3).not.toReceiveCommand(PutObjectCommand);
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();
    const text = output.join('');
    for (const metric of [
      'RunSucceeded',
      'PrincipalsFailed',
      'KeyCount',
      'KeysAdded',
      'KeysRemoved',
      'RunDuration',
    ]) {
      expect(text).not.toContain(`"${metric}"`);
    }
  });

  it('delivers nothing pending in a dry run', async () => {
    const { handler } = await coldStart();
    events
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });
    await rejection(handler({ principals: ['root'] }, context()));
    sns.resetHistory();
    events.reset();
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    s3.resetHistory();
    const result = (await handler({ principals: ['root'], dryRun: true }, context())) as AuditResult;
    expect(result.ok).toBe(true);
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();
    expect(s3).not.toReceiveCommand(PutObjectCommand);
  });

  it('fails the invocation after publishing what it could when a principal fails', async () => {
    const { handler } = await coldStart();
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    const error = await rejection(handler(SCHEDULED, context()));
    expect(error.name).toBe('AuditRunFailedError');
    expect(error.message).toMatch(
      /^run req-\d+: 1 of 2 principal\(s\) failed: "svc a&b": walking the keys: /,
    );
    expect((error as AuditRunFailedError).failures.map((f) => f.principal)).toEqual(['svc a&b']);

    expect(
      published()
        .map((input) => input.Subject)
        .sort(),
    ).toEqual(['BigState key audit FAILED for svc a&b', 'BigState key audit baseline for root (3 keys)']);
    expect(eventDetailTypes().sort()).toEqual(['BigState Key Audit Baseline', 'BigState Key Audit Failed']);
    // svc a&b never succeeded: its state holds only its failure (no keys), awaiting its baseline.
    expect([...objects.keys()].filter((key) => key.startsWith('snapshots/')).sort()).toEqual([
      'snapshots/root.json',
      'snapshots/svc%20a%26b.json',
    ]);
    expect(JSON.parse(objects.get('snapshots/svc%20a%26b.json')?.body ?? '{}')).toMatchObject({
      principal: 'svc a&b',
      awaitingBaseline: true,
      keyCount: 0,
      keys: [],
      pending: [],
      failure: { stage: 'walking the keys', errorName: 'ForbiddenError', status: 403 },
    });
    expect(output.join('')).toContain('"RunSucceeded":0');
  });

  it("tells a principal's failure once: the next failing invocation fails without a notice, and its end is told", async () => {
    const { handler } = await coldStart();
    simulator.inject('svc a&b', { type: 'status', status: 403 }, { times: 2 });
    await rejection(handler(SCHEDULED, context()));
    expect(published().map((input) => input.Subject)).toContain('BigState key audit FAILED for svc a&b');

    sns.resetHistory();
    events.resetHistory();
    const again = await rejection(handler(SCHEDULED, context()));
    // The invocation fails every run (alarms see it); the notice went out once.
    expect(again.name).toBe('AuditRunFailedError');
    expect(again.message).toContain('"svc a&b": walking the keys: ');
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();

    const result = (await handler(SCHEDULED, context())) as AuditResult;
    expect(result.ok).toBe(true);
    expect(
      published().map((input) => [input.Subject, input.MessageAttributes?.changeType?.StringValue]),
    ).toEqual([
      ['BigState key audit baseline for svc a&b (2 keys)', '["baseline"]'],
      ['BigState key audit recovered for svc a&b', '["recovered"]'],
    ]);
    expect(eventDetailTypes()).toEqual(['BigState Key Audit Baseline', 'BigState Key Audit Recovered']);
    const state = JSON.parse(objects.get('snapshots/svc%20a%26b.json')?.body ?? '{}');
    expect(state.keyCount).toBe(2);
    expect(state).not.toHaveProperty('failure');
    expect(state).not.toHaveProperty('awaitingBaseline');
  });

  it('tells an unfilled secret once for the whole run, not per principal, and its end once it is filled', async () => {
    const { handler } = await coldStart();
    sm.on(GetSecretValueCommand).resolves({ SecretString: '{"apiKey": ""}' });
    const error = await rejection(handler(SCHEDULED, context()));
    expect(error.name).toBe('AuditRunFailedError');
    expect((error as AuditRunFailedError).failures).toEqual(
      ['root', 'svc a&b'].map((principal) => ({
        principal,
        reason: expect.stringMatching(/^reading the API key: secret arn:aws:secretsmanager:.*empty API key/),
      })),
    );
    expect(error.message).toContain(SECRET_ARN);
    expect(simulator.stats.requests).toBe(0);
    // One notice for the run: no principal attribute to filter on, principal null in the event.
    expect(published().map((input) => [input.Subject, input.MessageAttributes])).toEqual([
      [
        'BigState key audit FAILED for the whole run',
        { changeType: { DataType: 'String.Array', StringValue: '["failed"]' } },
      ],
    ]);
    const details = () =>
      events
        .commandCalls(PutEventsCommand)
        .flatMap((call) => call.args[0].input.Entries ?? [])
        .map((entry) => [entry.DetailType, JSON.parse(String(entry.Detail)).principal]);
    expect(details()).toEqual([['BigState Key Audit Failed', null]]);
    // No principal's state is touched; the run-level record keeps the failure.
    expect([...objects.keys()]).toEqual(['snapshots/.run.json']);
    expect(JSON.parse(objects.get('snapshots/.run.json')?.body ?? '{}').failure).toMatchObject({
      stage: 'reading the API key',
      errorName: 'SecretError',
    });

    sns.resetHistory();
    events.resetHistory();
    expect((await rejection(handler(SCHEDULED, context()))).name).toBe('AuditRunFailedError');
    expect(sns).not.toReceiveAnyCommand();
    expect(events).not.toReceiveAnyCommand();

    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: KEY }) });
    const result = (await handler(SCHEDULED, context())) as AuditResult;
    expect(result.ok).toBe(true);
    expect(
      published()
        .map((input) => input.Subject)
        .sort(),
    ).toEqual([
      'BigState key audit baseline for root (3 keys)',
      'BigState key audit baseline for svc a&b (2 keys)',
      'BigState key audit recovered for the whole run',
    ]);
    expect(details()).toContainEqual(['BigState Key Audit Recovered', null]);
    expect(JSON.parse(objects.get('snapshots/.run.json')?.body ?? '{}')).not.toHaveProperty('failure');
  });

  it('fails the invocation when EventBridge fails after the commit, and delivers to it alone on the next run', async () => {
    const { handler } = await coldStart();
    events
      .on(PutEventsCommand)
      .resolves({ FailedEntryCount: 1, Entries: [{ ErrorCode: 'InternalFailure' }] });
    const error = await rejection(handler({ principals: ['root'] }, context()));
    expect(error.name).toBe('AuditRunFailedError');
    expect(error.message).toContain('publishing the change: ');
    expect(error.message).toContain('InternalFailure');
    // Committed with its change, which SNS delivered and EventBridge still owes.
    const state = JSON.parse(objects.get('snapshots/root.json')?.body ?? '{}');
    expect(state.keyCount).toBe(3);
    expect(state.pending).toHaveLength(1);
    expect(state.pending[0].deliveredTo).toEqual(['sns']);
    const id = state.pending[0].record.changeId;
    expect(objects.has(`history/root/${id}.json`)).toBe(true);
    expect(published().map((input) => input.Subject)).toEqual([
      'BigState key audit baseline for root (3 keys)',
      'BigState key audit FAILED for root',
    ]);

    sns.resetHistory();
    events.reset();
    events.on(PutEventsCommand).resolves({ FailedEntryCount: 0 });
    const result = (await handler({ principals: ['root'] }, context())) as AuditResult;
    expect(result.ok).toBe(true);
    // SNS had the change: it gets nothing again but the end of the failure it was told about.
    expect(published().map((input) => input.Subject)).toEqual(['BigState key audit recovered for root']);
    const entries = events.commandCalls(PutEventsCommand).flatMap((call) => call.args[0].input.Entries ?? []);
    expect(entries.map((entry) => entry.DetailType)).toEqual([
      'BigState Key Audit Baseline',
      'BigState Key Audit Recovered',
    ]);
    const details = entries.map((entry) => JSON.parse(String(entry.Detail)) as { changeId?: string });
    expect(details[0]?.changeId).toBe(id);
    expect(JSON.parse(objects.get('snapshots/root.json')?.body ?? '{}').pending).toEqual([]);
  });

  it('publishes nothing but the failure when the commit is refused, and reports the change on the next run', async () => {
    const { handler } = await coldStart();
    await handler({ principals: ['root'] }, context());
    simulator.addKeys('root', 'intruder');
    sns.resetHistory();
    events.resetHistory();
    // Someone else writes the state between this run's read and its commit.
    let raced = false;
    s3.on(GetObjectCommand).callsFake((input: GetObjectCommandInput) => {
      const object = objects.get(String(input.Key));
      if (object === undefined) {
        throw new NoSuchKey({
          message: 'The specified key does not exist.',
          $metadata: { httpStatusCode: 404 },
        });
      }
      const response = { Body: objectBody(object.body), ETag: object.etag };
      if (!raced && String(input.Key) === 'snapshots/root.json') {
        raced = true;
        objects.set(String(input.Key), { body: object.body, etag: '"someone-else"' });
      }
      return response;
    });
    const error = await rejection(handler({ principals: ['root'] }, context()));
    expect(error.message).toContain('storing the snapshot: ');
    expect(error.message).toContain('conditional write refused');
    expect(published().map((input) => input.Subject)).toEqual(['BigState key audit FAILED for root']);
    expect(eventDetailTypes()).toEqual(['BigState Key Audit Failed']);

    sns.resetHistory();
    const result = (await handler({ principals: ['root'] }, context())) as AuditResult;
    expect(result.principals[0]).toMatchObject({ status: 'ok', added: 1, addedKeys: ['intruder'] });
    expect(published().map((input) => input.Subject)).toEqual(['BigState API keys changed for root (+1 -0)']);
  });

  it('stops a hanging walk at the work deadline, still sends the failure notices, and returns before the timeout', async () => {
    const { handler } = await coldStart();
    simulator.inject('*', { type: 'hang' }, { times: 10 });
    const started = Date.now();
    // 2.5 s left: the work deadline is at 0.8 s, the hard stop at 1.8 s.
    const error = await rejection(handler(SCHEDULED, context(2_500)));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(700);
    expect(elapsed).toBeLessThan(2_500);
    expect(error.name).toBe('AuditRunFailedError');
    expect(error.message).toContain('2 of 2 principal(s) failed');
    expect(error.message).toMatch(/deadline|time budget/);
    // Only the failures are recorded (after the work deadline, before the hard stop): no inventory.
    expect([...objects.keys()].sort()).toEqual(['snapshots/root.json', 'snapshots/svc%20a%26b.json']);
    for (const { body } of objects.values()) {
      expect(JSON.parse(body)).toMatchObject({
        awaitingBaseline: true,
        keys: [],
        failure: { stage: 'walking the keys' },
      });
    }
    expect(
      published()
        .map((input) => input.Subject)
        .sort(),
    ).toEqual(['BigState key audit FAILED for root', 'BigState key audit FAILED for svc a&b']);
  });

  it('starts no BigState call when the work deadline has passed at once, and still reports the failures', async () => {
    const { handler } = await coldStart();
    // 1.2 s left: no time for work (the hard stop is at 0.5 s), but time for the failure notices.
    const error = await rejection(handler(SCHEDULED, context(1_200)));
    expect(error.message).toContain(
      'waiting to start: the time budget was spent before this principal was audited',
    );
    expect(simulator.stats.requests).toBe(0);
    // A spent budget is no failure of the key: the secret is not read.
    expect(sm).not.toReceiveAnyCommand();
    // No principal's state is read or written: only the run-level record, which keeps the failure of the run
    // and the principal the next run starts with.
    const touched = [
      ...s3
        .commandCalls(GetObjectCommand)
        .map((call) => call.args[0].input.Key)
        .filter((key) => key !== LEASE),
      ...putKeys(),
    ];
    expect(new Set(touched)).toEqual(new Set(['snapshots/.run.json']));
    expect(putKeys()).toEqual(['snapshots/.run.json']);
    expect(JSON.parse(objects.get('snapshots/.run.json')?.body ?? '{}')).toMatchObject({
      failure: { stage: 'waiting to start', errorName: 'TimeBudgetError' },
      resumeFrom: 'root',
    });
    // One notice for the run, not one per principal.
    expect(published().map((input) => input.Subject)).toEqual([
      'BigState key audit FAILED for the whole run',
    ]);
  });

  it('ends the process rather than return while work of the run is still under way at the hard stop', async () => {
    const { handler } = await coldStart();
    // An SNS call that ignores its abort signal: the run cannot stop by itself.
    sns.on(PublishCommand).callsFake(() => new Promise(() => {}));
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const started = Date.now();
    const error = await rejection(handler({ principals: ['root'] }, context(2_500)));
    expect(exit).toHaveBeenCalledWith(1);
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(error.message).toMatch(/hard stop/);
    expect(output.join('')).toContain('the run did not stop by its hard stop');
  });

  it('gives up at once, rather than sleep, when a Retry-After outlasts the time budget', async () => {
    const { handler } = await coldStart();
    simulator.inject('root', { type: 'status', status: 503, retryAfter: '5' });
    const started = Date.now();
    // 6 s left: the work deadline is at 4.24 s, before the 5 s BigState asks to wait.
    const error = await rejection(handler({ principals: ['root'] }, context(6_000)));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(error.name).toBe('AuditRunFailedError');
    expect(error.message).toContain('HTTP 503');
  });

  it('re-reads a rotated key once after a 401 and completes the run', async () => {
    const { handler } = await coldStart();
    await handler({ principals: ['root'] }, context());
    simulator.setApiKeys([ROTATED_KEY]);
    sm.on(GetSecretValueCommand).resolves({ SecretString: ROTATED_KEY });
    const result = (await handler({ principals: ['root'] }, context())) as AuditResult;
    expect(result.ok).toBe(true);
    expect(sm).toReceiveCommandTimes(GetSecretValueCommand, 2);
  });

  it('lists at most 1000 names per principal in its response; the counts stay whole', async () => {
    const big = await startSimulator({ apiKeys: [KEY], pageSize: 1_000 });
    try {
      stubEnvironment({ BIGSTATE_HOST: big.url, BIGSTATE_PRINCIPALS: 'root' });
      const { handler } = await coldStart();
      big.setKeys('root', ['seed']);
      await handler({}, context());
      big.setKeys('root', [
        'seed',
        ...Array.from({ length: 1_001 }, (_, i) => `k${String(i).padStart(4, '0')}`),
      ]);
      const result = (await handler({}, context())) as AuditResult;
      const root = result.principals[0];
      expect(root?.added).toBe(1_001);
      expect(root?.addedKeys).toHaveLength(1_000);
      expect(root?.addedKeys.at(-1)).toBe('k0999');
      expect(root?.keysTruncated).toBe(true);
    } finally {
      await big.close();
    }
  });

  it('writes the summary, metrics and no secret to the logs', async () => {
    const { handler } = await coldStart();
    const first = context();
    await handler(SCHEDULED, first);
    simulator.setApiKeys([ROTATED_KEY]);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ apiKey: ROTATED_KEY }) });
    simulator.inject('svc a&b', { type: 'status', status: 403 });
    const second = context();
    await rejection(handler(SCHEDULED, second));

    const text = output.join('');
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(ROTATED_KEY);
    expect(text).not.toContain('bsk_handler');

    const lines = text
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const logs = (message: string) => lines.filter((line) => line.message === message);
    const results = logs('audit result');
    expect(results.map((line) => [line.runId, line.trigger])).toEqual([
      [first.awsRequestId, 'schedule'],
      [second.awsRequestId, 'schedule'],
    ]);
    expect(results[0]?.result).toMatchObject({ runId: first.awsRequestId, ok: true });
    expect(results[1]?.result).toMatchObject({ runId: second.awsRequestId, ok: false });
    expect(logs('BigState refused the API key; reading it again')[0]?.runId).toBe(second.awsRequestId);
    expect(logs('principal failed')[0]).toMatchObject({ runId: second.awsRequestId, principal: 'svc a&b' });

    const metrics = lines.filter((line) => '_aws' in line);
    expect(metrics.filter((line) => 'RunSucceeded' in line).map((line) => line.RunSucceeded)).toEqual([1, 0]);
    // Run-level only: no metric per principal (its count is in the 'principal audited' log line).
    expect(metrics.some((line) => 'principal' in line || 'KeyCount' in line)).toBe(false);
    expect(metrics.filter((line) => 'KeysTotal' in line).map((line) => line.KeysTotal)).toEqual([5, 3]);
    // Lambda sets AWS_LAMBDA_INITIALIZATION_TYPE: the first invocation of a container is its cold start.
    expect(metrics.filter((line) => 'ColdStart' in line)).toEqual([
      expect.objectContaining({ ColdStart: 1, function_name: 'bigstate-key-audit' }),
    ]);
  });
});

describe('the audit Lambda: one run at a time (the run lease)', () => {
  it('takes the lease for a real run and releases it when the run returns', async () => {
    const { handler } = await coldStart();
    const result = (await handler({}, context())) as AuditResult;
    expect(result.ok).toBe(true);
    const puts = s3.commandCalls(PutObjectCommand).filter((call) => call.args[0].input.Key === LEASE);
    expect(puts.map((call) => call.args[0].input.IfNoneMatch)).toEqual(['*']);
    expect(JSON.parse(String(puts[0]?.args[0].input.Body))).toMatchObject({
      runId: result.runId,
      expiresAt: expect.any(String),
    });
    expect(s3.commandCalls(DeleteObjectCommand).map((call) => call.args[0].input.Key)).toEqual([LEASE]);
    expect(objects.has(LEASE)).toBe(false);
  });

  it('does no audit while another run holds a live lease, and says so without failing', async () => {
    objects.set(LEASE, {
      body: JSON.stringify({ runId: 'other-run', expiresAt: new Date(Date.now() + 600_000).toISOString() }),
      etag: '"held"',
    });
    const { handler } = await coldStart();
    const result = (await handler({}, context())) as AuditResult;
    expect(result.skipped).toMatch(/^another run \(other-run\) holds the lease until .*: no audit$/);
    expect(result.principals).toEqual([]);
    expect(simulator.stats.requests).toBe(0);
    expect(putKeys()).toEqual([]);
    expect(published()).toEqual([]);
    // Its lease is left alone.
    expect(objects.get(LEASE)?.etag).toBe('"held"');
  });

  it('fails, auditing nothing, when a lease exists but cannot be read (another run may hold it)', async () => {
    objects.set(LEASE, {
      body: JSON.stringify({ runId: 'other-run', expiresAt: new Date(Date.now() + 600_000).toISOString() }),
      etag: '"held"',
    });
    s3.on(GetObjectCommand, { Key: LEASE }).rejects(s3Error('AccessDenied', 403));
    const { handler } = await coldStart();
    const error = await rejection(handler({}, context()));
    expect(error.name).toBe('LeaseHeldError');
    expect(simulator.stats.requests).toBe(0);
    expect(putKeys()).toEqual([]);
    expect(published()).toEqual([]);
  });

  it('takes over an expired lease (a crashed run) only if it is still that one, and audits', async () => {
    objects.set(LEASE, {
      body: JSON.stringify({ runId: 'crashed', expiresAt: new Date(Date.now() - 1_000).toISOString() }),
      etag: '"stale"',
    });
    const { handler } = await coldStart();
    const result = (await handler({}, context())) as AuditResult;
    expect(result.skipped).toBeUndefined();
    expect(result.principals).toHaveLength(2);
    const takeover = s3
      .commandCalls(PutObjectCommand)
      .filter((call) => call.args[0].input.Key === LEASE)
      .map((call) => [call.args[0].input.IfNoneMatch, call.args[0].input.IfMatch]);
    expect(takeover).toEqual([
      ['*', undefined],
      [undefined, '"stale"'],
    ]);
  });

  it('takes no lease for a dry run (it writes nothing), and audits even while another run holds one', async () => {
    objects.set(LEASE, {
      body: JSON.stringify({ runId: 'other-run', expiresAt: new Date(Date.now() + 600_000).toISOString() }),
      etag: '"held"',
    });
    const { handler } = await coldStart();
    const result = (await handler({ dryRun: true }, context())) as AuditResult;
    expect(result.principals).toHaveLength(2);
    expect(s3.commandCalls(PutObjectCommand)).toEqual([]);
    expect(s3.commandCalls(DeleteObjectCommand)).toEqual([]);
  });
});
