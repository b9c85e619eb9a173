import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AslState,
  DistributedMapStandIn,
  type LocalHandler,
  replaceWithStandIn,
  resolvePayloadTemplate,
} from './distributed-map-stand-in.js';
import { type S3Fake, startS3Fake } from './s3-fake.js';

const BUCKET = 'runs-bucket';
const MACHINE = 'arn:aws:states:us-east-1:000000000000:stateMachine:Audit';
let s3Fake: S3Fake;
let s3: S3Client;

beforeAll(async () => {
  s3Fake = await startS3Fake({ buckets: [BUCKET] });
  s3 = new S3Client({
    region: 'us-east-1',
    endpoint: s3Fake.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});

afterAll(async () => {
  s3?.destroy();
  await s3Fake?.close();
});

/** A Distributed Map state as CDK synthesizes ours, with a one-Task processor. */
function mapState(overrides: Record<string, unknown> = {}): AslState {
  return {
    Type: 'Map',
    ItemProcessor: {
      ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
      StartAt: 'Work',
      States: {
        Work: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:worker', End: true },
      },
    },
    ItemReader: {
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { 'Bucket.$': '$.plan.bucket', 'Key.$': '$.plan.key' },
    },
    ItemBatcher: { MaxItemsPerBatch: 2, BatchInput: { 'runId.$': '$.plan.runId', fixed: 'as is' } },
    MaxConcurrency: 2,
    ToleratedFailurePercentage: 100,
    Label: 'AuditPrincipals',
    ResultWriter: {
      Resource: 'arn:aws:states:::s3:putObject',
      Parameters: { Bucket: BUCKET, 'Prefix.$': "States.Format('runs/{}/results', $.plan.runId)" },
    },
    ResultPath: '$.map',
    End: true,
    ...overrides,
  };
}

async function putItems(key: string, items: unknown[]): Promise<{ plan: Record<string, string> }> {
  s3Fake.put(BUCKET, key, JSON.stringify(items), { contentType: 'application/json' });
  return { plan: { bucket: BUCKET, key, runId: 'run-1' } };
}

const json = (key: string) => JSON.parse(s3Fake.get(BUCKET, key)?.text ?? 'null');

describe('the Distributed Map stand-in', () => {
  it('resolves payload templates with the interpreter: paths, intrinsic functions, literal values', async () => {
    expect(
      await resolvePayloadTemplate(
        { 'a.$': '$.x', 'b.$': "States.Format('p/{}', $.x)", c: 'literal', 'd.$': '$.n' },
        { x: 'v', n: 3 },
      ),
    ).toEqual({ a: 'v', b: 'p/v', c: 'literal', d: 3 });
  });

  it('reads the JSON array, batches it with the BatchInput, runs each batch as a child, at most MaxConcurrency at once', async () => {
    const input = await putItems('runs/run-1/principals.json', ['a', 'b', 'c', 'd', 'e']);
    let running = 0;
    let most = 0;
    const seen: unknown[] = [];
    const work: LocalHandler = async (batch) => {
      running += 1;
      most = Math.max(most, running);
      seen.push(batch);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running -= 1;
      return { done: (batch as { Items: string[] }).Items };
    };
    const map = new DistributedMapStandIn({
      state: mapState(),
      s3,
      handlers: { Work: work },
      stateMachineArn: MACHINE,
    });
    const output = (await map.run(input)) as {
      MapRunArn: string;
      ResultWriterDetails: { Bucket: string; Key: string };
    };
    expect(seen).toEqual([
      { Items: ['a', 'b'], BatchInput: { runId: 'run-1', fixed: 'as is' } },
      { Items: ['c', 'd'], BatchInput: { runId: 'run-1', fixed: 'as is' } },
      { Items: ['e'], BatchInput: { runId: 'run-1', fixed: 'as is' } },
    ]);
    expect(most).toBe(2);
    // As Step Functions answers for a Map with a ResultWriter.
    expect(output.MapRunArn).toMatch(
      /^arn:aws:states:us-east-1:000000000000:mapRun:Audit\/AuditPrincipals:[0-9a-f-]{36}$/,
    );
    expect(output.ResultWriterDetails).toEqual({
      Bucket: BUCKET,
      Key: expect.stringMatching(/^runs\/run-1\/results\/[0-9a-f-]{36}\/manifest\.json$/),
    });
    const folder = output.ResultWriterDetails.Key.replace(/manifest\.json$/, '');
    expect(json(output.ResultWriterDetails.Key)).toEqual({
      DestinationBucket: BUCKET,
      MapRunArn: output.MapRunArn,
      ResultFiles: {
        FAILED: [],
        PENDING: [],
        SUCCEEDED: [{ Key: `${folder}SUCCEEDED_0.json`, Size: expect.any(Number) }],
      },
    });
    const succeeded = json(`${folder}SUCCEEDED_0.json`) as Array<Record<string, unknown>>;
    expect(succeeded).toHaveLength(3);
    expect(succeeded[0]).toEqual({
      ExecutionArn: expect.stringMatching(
        /^arn:aws:states:us-east-1:000000000000:execution:Audit\/AuditPrincipals:/,
      ),
      Input: JSON.stringify({ Items: ['a', 'b'], BatchInput: { runId: 'run-1', fixed: 'as is' } }),
      InputDetails: { Included: true },
      Name: expect.any(String),
      Output: JSON.stringify({ done: ['a', 'b'] }),
      OutputDetails: { Included: true },
      RedriveCount: 0,
      RedriveStatus: 'NOT_REDRIVABLE',
      RedriveStatusReason: 'Execution is SUCCEEDED and cannot be redriven',
      StartDate: expect.stringMatching(/Z$/),
      StateMachineArn: `${MACHINE}/AuditPrincipals`,
      Status: 'SUCCEEDED',
      StopDate: expect.stringMatching(/Z$/),
    });
  });

  it('cuts a batch before MaxInputBytesPerBatch, and refuses an item larger than that', async () => {
    const long = 'x'.repeat(200);
    const input = await putItems('runs/run-1/long.json', [long, long, long]);
    const seen: number[] = [];
    const work: LocalHandler = async (batch) => {
      seen.push((batch as { Items: string[] }).Items.length);
      return {};
    };
    const state = mapState({ ItemBatcher: { MaxItemsPerBatch: 10, MaxInputBytesPerBatch: 500 } });
    await new DistributedMapStandIn({ state, s3, handlers: { Work: work }, stateMachineArn: MACHINE }).run(
      input,
    );
    expect(seen).toEqual([2, 1]);
    const tiny = mapState({ ItemBatcher: { MaxItemsPerBatch: 10, MaxInputBytesPerBatch: 100 } });
    await expect(
      new DistributedMapStandIn({ state: tiny, s3, handlers: { Work: work }, stateMachineArn: MACHINE }).run(
        input,
      ),
    ).rejects.toMatchObject({ name: 'States.ItemReaderFailed' });
  });

  it('writes a failed child to FAILED_0.json with its error and cause, and tolerates it at 100%', async () => {
    const input = await putItems('runs/run-1/mixed.json', ['ok-1', 'bad', 'ok-2']);
    const work: LocalHandler = async (batch) => {
      if ((batch as { Items: string[] }).Items.includes('bad')) {
        throw Object.assign(new Error('{"errorType":"Sandbox.Timedout"}'), { name: 'Sandbox.Timedout' });
      }
      return { ok: true };
    };
    const state = mapState({ ItemBatcher: { MaxItemsPerBatch: 1 } });
    const map = new DistributedMapStandIn({ state, s3, handlers: { Work: work }, stateMachineArn: MACHINE });
    const output = (await map.run(input)) as { ResultWriterDetails: { Key: string } };
    const manifest = json(output.ResultWriterDetails.Key) as {
      ResultFiles: Record<string, Array<{ Key: string }>>;
    };
    expect(manifest.ResultFiles.SUCCEEDED).toHaveLength(1);
    expect(manifest.ResultFiles.FAILED).toHaveLength(1);
    const [failed] = json(manifest.ResultFiles.FAILED?.[0]?.Key ?? '') as Array<Record<string, unknown>>;
    expect(failed).toMatchObject({
      Input: JSON.stringify({ Items: ['bad'] }),
      Status: 'FAILED',
      Error: 'Sandbox.Timedout',
      Cause: '{"errorType":"Sandbox.Timedout"}',
      RedriveStatus: 'REDRIVABLE',
    });
    expect(failed).not.toHaveProperty('Output');
    expect(map.runs[0]?.children.map((child) => child.status)).toEqual(['SUCCEEDED', 'FAILED', 'SUCCEEDED']);
  });

  it('fails the Map when more items failed than tolerated', async () => {
    const input = await putItems('runs/run-1/failing.json', ['a', 'b', 'c']);
    const work: LocalHandler = async (batch) => {
      if ((batch as { Items: string[] }).Items[0] !== 'a') throw new Error('no');
      return {};
    };
    const state = mapState({ ItemBatcher: { MaxItemsPerBatch: 1 }, ToleratedFailurePercentage: 50 });
    await expect(
      new DistributedMapStandIn({ state, s3, handlers: { Work: work }, stateMachineArn: MACHINE }).run(input),
    ).rejects.toMatchObject({ name: 'States.ExceedToleratedFailureThreshold' });
  });

  it('refuses what it does not implement rather than run it differently', () => {
    const make = (state: AslState) => () =>
      new DistributedMapStandIn({ state, s3, handlers: {}, stateMachineArn: MACHINE });
    expect(make(mapState({ ItemSelector: { 'p.$': '$$.Map.Item.Value' } }))).toThrow(/ItemSelector/);
    expect(
      make(
        mapState({
          ItemProcessor: {
            ProcessorConfig: { Mode: 'INLINE' },
            StartAt: 'W',
            States: { W: { Type: 'Succeed' } },
          },
        }),
      ),
    ).toThrow(/not a Distributed Map/);
  });

  it('replaces the Map state by a Task state that keeps its name, ResultPath, Catch and Next', () => {
    const definition = {
      StartAt: 'Map',
      States: {
        Map: mapState({
          End: undefined,
          Next: 'After',
          Catch: [{ ErrorEquals: ['States.ALL'], Next: 'After' }],
        }),
        After: { Type: 'Succeed' },
      },
    };
    expect(replaceWithStandIn(definition, 'Map', 'arn:aws:states:::stand-in').States.Map).toEqual({
      Type: 'Task',
      Resource: 'arn:aws:states:::stand-in',
      ResultPath: '$.map',
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'After' }],
      Next: 'After',
    });
  });
});
