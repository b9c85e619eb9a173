/**
 * The fan-out end to end: the state machine synthesized with `fanOut=true`, run in aws-local-stepfunctions, its
 * Task states bound to the plan, worker and finish bundles run as Lambda would, against the AWS fakes and the
 * BigState simulator.
 *
 * aws-local-stepfunctions does not support the Distributed Map's ItemReader, ItemBatcher, ResultWriter or
 * tolerated failures: here the Map's ItemProcessor runs with inline semantics (one local child execution per
 * batch) on items and batches produced by a stand-in that follows AWS's documented formats (it reads the plan's
 * JSON array from the S3 fake, batches it with the resolved BatchInput, and writes manifest.json and
 * SUCCEEDED_0.json / FAILED_0.json to the S3 fake). The Map's real fields (ItemReader, ItemBatcher,
 * ToleratedFailurePercentage, ResultWriter, MaxConcurrency) are asserted on the template in
 * test/infra/key-audit-fan-out.test.ts. With three principals and two discovered ones, the stand-in batches two
 * principals at a time (the template says 25) so that a run has several batches.
 */
import { rm } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../functions/bigstate/simulator.js';
import {
  type ExecutionOutcome,
  type FanOutWorld,
  type SynthesizedFanOut,
  startFanOutWorld,
  synthesizeFanOut,
} from './fan-out-harness.js';
import { scheduledInvocation } from './harness.js';
import { API_KEY, CANARY, DETAIL_TYPE, INITIAL_KEYS, PAGE_SIZE, PRINCIPALS, SNAPSHOT_KEY } from './suite.js';

const APPS: Readonly<Record<string, readonly string[]>> = { 'app-one': ['o1', 'o2'], 'app-two': ['t1'] };
const ALL = [...PRINCIPALS, ...Object.keys(APPS)];
const LEASE = 'leases/run.json';

let simulator: Simulator;
let synth: SynthesizedFanOut;
let world: FanOutWorld;

beforeAll(async () => {
  simulator = await startSimulator({ apiKeys: [API_KEY], pageSize: PAGE_SIZE });
  synth = synthesizeFanOut({
    bigstateHost: simulator.url,
    principals: [...PRINCIPALS],
    principalPattern: 'app-*',
  });
});

afterAll(async () => {
  await simulator?.close();
  if (synth !== undefined) await rm(synth.assemblyDir, { recursive: true, force: true });
});

beforeEach(async () => {
  simulator.clearFaults();
  for (const principal of PRINCIPALS) simulator.setKeys(principal, [...INITIAL_KEYS[principal]]);
  for (const [app, keys] of Object.entries(APPS)) simulator.setKeys(app, [...keys]);
  simulator.resetStats();
  world = await startFanOutWorld(synth, { secretString: API_KEY, maxItemsPerBatch: 2 });
});

afterEach(async () => {
  try {
    expect(world.fakes.unknownCalls()).toEqual([]);
    expect(world.leaks([API_KEY, CANARY])).toEqual([]);
  } finally {
    await world.close();
  }
});

/** A schedule tick: the input the schedule sends, its placeholders filled as Scheduler fills them. */
const tick = () => world.execute(scheduledInvocation(synth.scheduleInput));

function succeeded(
  outcome: ExecutionOutcome,
): Record<string, unknown> & { runId: string; principals: Row[] } {
  if (outcome.status !== 'SUCCEEDED')
    throw new Error(`the execution failed: ${outcome.error}: ${outcome.cause}`);
  return outcome.output as Record<string, unknown> & { runId: string; principals: Row[] };
}

interface Row {
  readonly principal: string;
  readonly status: string;
  readonly baseline: boolean;
  readonly added: number;
  readonly removed: number;
  readonly keyCount: number | null;
}

/** `[detail-type, principal]` of events, sorted (batches run concurrently). */
const kinds = (events: ReturnType<FanOutWorld['events']>) =>
  events.map((event) => [event.detailType, event.detailJson.principal]).sort();

/** Every worker invocation ended before the finish step started, which was the last. */
function expectFinishAfterEveryBatch(from: number): void {
  const invocations = world.invocations.slice(from);
  const finish = invocations.filter((i) => i.step === 'finish');
  expect(finish).toHaveLength(1);
  expect(invocations.at(-1)?.step).toBe('finish');
  const workers = invocations.filter((i) => i.step === 'worker');
  expect(workers.length).toBeGreaterThan(1);
  for (const worker of workers) expect(worker.endedAt).toBeLessThanOrEqual(finish[0]?.startedAt ?? 0);
}

describe('the fan-out state machine, run locally', () => {
  it('a scheduled start audits the configured and discovered principals in batches, then tells a change once', async () => {
    // 1. The first tick: every principal's baseline, the discovered ones marked new.
    const firstOutcome = await tick();
    const first = succeeded(firstOutcome);
    // The run id is the execution's name: the same in every attempt of the Plan task.
    expect(first.runId).toBe(firstOutcome.executionName);
    // The run's start and duration are the whole run's (from the plan), not the finish step's.
    const steps = world.invocations.filter(
      (invocation) => invocation.step === 'plan' || invocation.step === 'finish',
    );
    const planStep = steps.find((invocation) => invocation.step === 'plan');
    const finishStep = steps.find((invocation) => invocation.step === 'finish');
    expect(Date.parse(String(first.startedAt))).toBeGreaterThanOrEqual(planStep?.startedAt ?? Number.NaN);
    expect(Date.parse(String(first.startedAt))).toBeLessThan(finishStep?.startedAt ?? Number.NaN);
    // The execution's output carries whole counts and only the failed principals (its 256 KiB limit).
    expect(first.counts).toEqual({
      principals: ALL.length,
      failed: 0,
      baselines: ALL.length,
      added: 0,
      removed: 0,
    });
    expect(first.principals).toEqual([]);
    expect(kinds(world.events())).toEqual(ALL.map((principal) => [DETAIL_TYPE.baseline, principal]).sort());
    const newPrincipals = world
      .events()
      .filter((event) => event.detailJson.newPrincipal === true)
      .map((event) => event.detailJson.principal);
    expect(newPrincipals.sort()).toEqual(Object.keys(APPS).sort());
    expect(
      world
        .sns()
        .map((message) => message.attributes.principal?.stringValue)
        .sort(),
    ).toEqual([...ALL].sort());

    // The plan ran first and alone, the finish step last, after every batch.
    expect(world.invocations[0]?.step).toBe('plan');
    expectFinishAfterEveryBatch(0);
    // The Map read the plan's list (ItemReader) and batched it with the run's id, deadline and dry-run flag.
    const [run] = world.map.runs;
    expect(run?.itemCount).toBe(ALL.length);
    expect(run?.children.map((child) => child.input.Items.length)).toEqual([2, 2, 1]);
    for (const child of run?.children ?? []) {
      expect(child.status).toBe('SUCCEEDED');
      expect(child.input.BatchInput).toEqual({
        runId: first.runId,
        deadline: expect.any(Number),
        dryRun: false,
      });
      expect((child.input.BatchInput as { deadline: number }).deadline).toBeGreaterThan(Date.now());
    }
    const items = world.json(`runs/${first.runId}/principals.json`) as Array<Record<string, unknown>>;
    expect(items.map((item) => item.principal).sort()).toEqual([...ALL].sort());
    // The results went to runs/<runId>/results/<map run>/ as AWS writes them, and the finish step read them.
    expect(run?.resultWriterDetails.Key).toMatch(
      new RegExp(`^runs/${first.runId}/results/[0-9a-f-]{36}/manifest\\.json$`),
    );
    const manifest = world.json(run?.resultWriterDetails.Key ?? '') as {
      DestinationBucket: string;
      ResultFiles: Record<string, Array<{ Key: string }>>;
    };
    expect(manifest.DestinationBucket).toBe(world.bucketName);
    expect(manifest.ResultFiles.FAILED).toEqual([]);
    expect(manifest.ResultFiles.SUCCEEDED?.map((file) => file.Key)).toEqual([
      run?.resultWriterDetails.Key.replace(/manifest\.json$/, 'SUCCEEDED_0.json'),
    ]);
    // One run at a time: the lease was taken by the plan and released by the finish step.
    expect(world.json(LEASE)).toBeUndefined();
    for (const principal of PRINCIPALS) expect(world.json(SNAPSHOT_KEY[principal])).toBeDefined();
    // The finish step read every state back and wrote the inventory report: latest and the day's copy.
    const csvRows = () => {
      const csv = world.fakes.s3.get(world.bucketName, 'reports/latest.csv')?.body.toString('utf8') ?? '';
      return csv.split(/\r?\n/).filter((line) => line.length > 0);
    };
    const today = `reports/${new Date().toISOString().slice(0, 10)}/report.html`;
    expect(world.fakes.s3.get(world.bucketName, today)).toBeDefined();
    expect(world.fakes.s3.get(world.bucketName, 'reports/latest.html')?.contentType).toMatch(/^text\/html/);
    for (const principal of ALL) expect(csvRows().join('\n')).toContain(principal);
    expect(csvRows().join('\n')).not.toContain('new-deploy-key');
    const reportVersions = () => world.fakes.s3.versions(world.bucketName, 'reports/latest.csv').length;
    expect(reportVersions()).toBe(1);

    // 2. A key appears: the next tick tells it once, and nothing else.
    simulator.addKeys('root', 'new-deploy-key');
    const events = world.events().length;
    const messages = world.sns().length;
    const second = succeeded(await tick());
    expect(second.runId).not.toBe(first.runId);
    expect(second.counts).toEqual({ principals: ALL.length, failed: 0, baselines: 0, added: 1, removed: 0 });
    expect(kinds(world.events(events))).toEqual([[DETAIL_TYPE.changed, 'root']]);
    expect(world.events(events)[0]?.detailJson).toMatchObject({ added: ['new-deploy-key'], removed: [] });
    expect(world.sns(messages).map((message) => message.attributes.principal?.stringValue)).toEqual(['root']);
    expect(world.json(LEASE)).toBeUndefined();
    // A change rewrites the report; a quiet tick keeps it (today's copy exists).
    expect(reportVersions()).toBe(2);
    expect(csvRows().join('\n')).toContain('new-deploy-key');
    succeeded(await tick());
    expect(reportVersions()).toBe(2);
    // A principal gone from BigState is retired: the report no longer lists it, the same run.
    simulator.removePrincipal('app-one');
    const retired = succeeded(await tick());
    expect(kinds(world.events()).filter(([kind]) => kind === DETAIL_TYPE.principalRemoved)).toEqual([
      [DETAIL_TYPE.principalRemoved, 'app-one'],
    ]);
    expect(retired.counts).toMatchObject({ failed: 0 });
    expect(reportVersions()).toBe(3);
    expect(csvRows().join('\n')).not.toContain('app-one');
    expect(csvRows().join('\n')).toContain('app-two');
  });

  it('a principal refused with 403 fails the execution after every batch finished, while the others publish', async () => {
    succeeded(await tick());
    const keptBefore = JSON.stringify(world.json(SNAPSHOT_KEY['svc a&b']));
    simulator.inject('svc a&b', { type: 'status', status: 403 }, { times: Number.POSITIVE_INFINITY });
    simulator.addKeys('root', 'root-new');
    simulator.addKeys('app-two', 't2');
    const from = world.invocations.length;
    const events = world.events().length;

    const outcome = await tick();
    expect(outcome.status).toBe('FAILED');
    if (outcome.status !== 'FAILED') return;
    // As Step Functions reports a failed Lambda task: the error type, and Lambda's error payload as the cause.
    expect(outcome.error).toBe('AuditRunFailedError');
    expect(JSON.parse(outcome.cause)).toMatchObject({
      errorType: 'AuditRunFailedError',
      errorMessage: expect.stringMatching(/"svc a&b": [^;]*403/),
    });
    expectFinishAfterEveryBatch(from);
    // The batches were not stopped by the failure: every other principal was audited and told.
    expect(kinds(world.events(events))).toEqual(
      [
        [DETAIL_TYPE.changed, 'app-two'],
        [DETAIL_TYPE.changed, 'root'],
        [DETAIL_TYPE.failed, 'svc a&b'],
      ].sort(),
    );
    // The failed principal keeps its last good snapshot (the failure recorded beside it), and the run its lease
    // no longer.
    const kept = world.json(SNAPSHOT_KEY['svc a&b']) as Record<string, unknown>;
    const { failure: _failure, writeId: _writeId, ...rest } = kept;
    const {
      failure: _before,
      writeId: _beforeId,
      ...restBefore
    } = JSON.parse(keptBefore) as Record<string, unknown>;
    expect(rest).toEqual(restBefore);
    expect(world.json(LEASE)).toBeUndefined();

    // The same failure on the next tick is told to nobody, and changes nothing in the report: it is kept (no
    // read of every state); its end is news, and rewrites it.
    const reportVersions = () => world.fakes.s3.versions(world.bucketName, 'reports/latest.html').length;
    const written = reportVersions();
    expect((await tick()).status).toBe('FAILED');
    expect(reportVersions()).toBe(written);
    expect(world.fakes.s3.get(world.bucketName, 'reports/latest.html')?.text).toContain('HTTP 403');
    simulator.clearFaults();
    succeeded(await tick());
    expect(reportVersions()).toBe(written + 1);
    expect(world.fakes.s3.get(world.bucketName, 'reports/latest.html')?.text).not.toContain('HTTP 403');
  });

  it('a batch whose worker times out fails its principals only: the other batches publish, then the run fails', async () => {
    await world.close();
    // The batch holding root: Lambda ends its worker (a timeout) before it answers.
    world = await startFanOutWorld(synth, {
      secretString: API_KEY,
      maxItemsPerBatch: 2,
      workerFault: (batch) =>
        batch.Items.some((item) => item.principal === 'root')
          ? { errorType: 'Sandbox.Timedout', errorMessage: 'Task timed out after 300.00 seconds', trace: [] }
          : undefined,
    });
    const outcome = await tick();
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'AuditRunFailedError' });
    const [run] = world.map.runs;
    const failed = run?.children.filter((child) => child.status === 'FAILED') ?? [];
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ error: 'Sandbox.Timedout' });
    const lost = (failed[0]?.input.Items ?? []).map((item) => (item as { principal: string }).principal);
    expect(lost).toContain('root');
    // The failed batch is in FAILED_0.json, as AWS writes it; the finish step read it and failed its principals.
    const manifest = world.json(run?.resultWriterDetails.Key ?? '') as {
      ResultFiles: Record<string, Array<{ Key: string }>>;
    };
    const [failedFile] = manifest.ResultFiles.FAILED ?? [];
    expect(world.json(failedFile?.Key ?? '')).toEqual([
      expect.objectContaining({ Status: 'FAILED', Error: 'Sandbox.Timedout', Input: expect.any(String) }),
    ]);
    if (outcome.status === 'FAILED') {
      for (const principal of lost) expect(outcome.cause).toContain(JSON.stringify(principal).slice(1, -1));
    }
    // Every other principal got its baseline; the lost ones have no state yet and were never walked.
    const baselines = world
      .events()
      .filter((event) => event.detailType === DETAIL_TYPE.baseline)
      .map((event) => String(event.detailJson.principal));
    expect(baselines.sort()).toEqual(ALL.filter((principal) => !lost.includes(principal)).sort());
    expect(simulator.stats.requestsByPrincipal.root ?? 0).toBe(0);
    expect(world.json(LEASE)).toBeUndefined();
    // The lost principals are told: one failure of the run naming them, and not again on the next run.
    const runFailures = () =>
      world
        .events()
        .filter((event) => event.detailType === DETAIL_TYPE.failed && event.detailJson.principal === null);
    expect(runFailures()).toHaveLength(1);
    expect(String(runFailures()[0]?.detailJson.reason)).toMatch(
      /^auditing the principals: \d principal\(s\) in batches whose worker ended without an answer \(.*"root"/,
    );
    expect((await tick()).status).toBe('FAILED');
    expect(runFailures()).toHaveLength(1);
    // The report still lists every principal: the lost ones with their batch's failure and no audit yet.
    const html = world.fakes.s3.get(world.bucketName, 'reports/latest.html')?.text ?? '';
    expect(html).toContain('Sandbox.Timedout');
    expect(html.match(/No complete audit yet/g)).toHaveLength(lost.length);
  });

  it('a finish step that cannot read the Map’s results still records the run, fails loudly and frees the lease', async () => {
    await world.close();
    world = await startFanOutWorld(synth, {
      secretString: API_KEY,
      maxItemsPerBatch: 2,
      // The result files are unreadable (cut off): only the manifest is whole.
      beforeFinish: ({ map }) => {
        const details = map.ResultWriterDetails as { Key: string } | undefined;
        const folder = details?.Key.replace(/manifest\.json$/, '') ?? '';
        for (const object of world.fakes.s3.objects(world.bucketName)) {
          if (object.key.startsWith(folder) && !object.key.endsWith('manifest.json'))
            world.fakes.s3.put(world.bucketName, object.key, '[{"Input": "cut off');
        }
      },
    });
    const outcome = await tick();
    expect(outcome).toMatchObject({ status: 'FAILED', error: 'AuditRunFailedError' });
    if (outcome.status === 'FAILED') expect(outcome.cause).toContain("reading the Map's results");
    // The lease is free: the next run is not skipped for the next hour.
    expect(world.json(LEASE)).toBeUndefined();
    // The run-level failure is recorded (told once, by change of state).
    const failed = world.events().filter((event) => event.detailType === DETAIL_TYPE.failed);
    expect(failed.map((event) => event.detailJson.principal)).toContain(null);
  });

  it('a plan that fails after taking the lease frees it, so the next tick is not skipped for hours', async () => {
    world.fakes.s3.fail(
      (call) => call.operation === 'PutObject' && String(call.input.key ?? '').endsWith('/principals.json'),
      { status: 403, code: 'AccessDenied', message: 'denied' },
    );
    const outcome = await tick();
    expect(outcome.status).toBe('FAILED');
    expect(world.invocations.map((invocation) => invocation.step)).toEqual(['plan']);
    expect(world.json(LEASE)).toBeUndefined();
  });

  it('a tick that finds another run’s live lease does no audit and says so in its output', async () => {
    const holder = { runId: 'still-running', expiresAt: new Date(Date.now() + 600_000).toISOString() };
    world.fakes.s3.put(world.bucketName, LEASE, JSON.stringify(holder), { contentType: 'application/json' });
    const outcome = succeeded(await tick());
    expect(outcome.skipped).toEqual(expect.stringContaining('still-running'));
    expect(world.invocations.map((invocation) => invocation.step)).toEqual(['plan']);
    expect(world.map.runs).toEqual([]);
    expect(simulator.stats.requests).toBe(0);
    expect(world.events()).toEqual([]);
    expect(world.json(LEASE)).toEqual(holder);
  });
});
