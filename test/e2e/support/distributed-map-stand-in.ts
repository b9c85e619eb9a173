/**
 * A stand-in for the parts of a Distributed Map state that `aws-local-stepfunctions` does not run: the ItemReader
 * (a JSON array read from S3), the ItemBatcher (`{ Items, BatchInput }` per child), ToleratedFailurePercentage /
 * ToleratedFailureCount, and the ResultWriter (`manifest.json` and `SUCCEEDED_n.json` / `FAILED_n.json` written to
 * S3, the state's output `{ MapRunArn, ResultWriterDetails: { Bucket, Key } }`), each as AWS documents it.
 *
 * What it does not stand in for: the Map's ItemProcessor runs in `aws-local-stepfunctions` (one local execution per
 * batch, as a child execution), and every payload template (ItemReader and ResultWriter `Parameters`, `BatchInput`)
 * is resolved by that interpreter too (a Pass state with the template as `Parameters`), so `.$` paths and intrinsic
 * functions behave as the interpreter makes them.
 *
 * Replace the Map state with {@link replaceWithStandIn} (a Task state of the same name, `ResultPath`, `Catch`,
 * `Next`), and bind that Task state to {@link DistributedMapStandIn.run} with `taskResourceLocalHandlers`.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { StateMachine } from 'aws-local-stepfunctions';

/** A state of a definition (the fields the stand-in reads). */
export type AslState = Readonly<Record<string, unknown>> & { readonly Type: string };

/** A definition, or a Map's ItemProcessor. */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, AslState>>;
  readonly [field: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A Task state's local handler, as `aws-local-stepfunctions` calls it. */
export type LocalHandler = (input: Json) => Promise<Json>;

/** One child execution of a Map run, as the stand-in ran it. */
export interface ChildExecution {
  readonly name: string;
  /** The child's input: `{ Items, BatchInput }`. */
  readonly input: { readonly Items: Json[]; readonly BatchInput?: Json };
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: Json;
  readonly error?: string;
  readonly cause?: string;
  readonly startedAt: Date;
  readonly stoppedAt: Date;
}

/** One Map run: what was read, how it was batched, what each child did, where the results went. */
export interface MapRun {
  readonly mapRunArn: string;
  readonly itemCount: number;
  readonly children: readonly ChildExecution[];
  readonly resultWriterDetails: { readonly Bucket: string; readonly Key: string };
}

/** Options of a {@link DistributedMapStandIn}. */
export interface DistributedMapStandInOptions {
  /** The Distributed Map state, as synthesized (references resolved). */
  readonly state: AslState;
  /** Reaches the S3 the ItemReader reads and the ResultWriter writes (the S3 fake). */
  readonly s3: S3Client;
  /** Local handlers of the ItemProcessor's Task states, by state name. */
  readonly handlers: Readonly<Record<string, LocalHandler>>;
  /** For the ARNs it makes up. */
  readonly stateMachineArn: string;
  /**
   * Principals per batch instead of the state's `MaxItemsPerBatch`: a test with three principals uses 1 to have
   * several batches. The state's own value is asserted on the template.
   * @default the state's MaxItemsPerBatch
   */
  readonly maxItemsPerBatch?: number;
}

/** The parts of ASL this stand-in implements; any other field of the state makes it refuse to run. */
const KNOWN_FIELDS = new Set([
  'Type',
  'Comment',
  'ItemProcessor',
  'ItemReader',
  'ItemBatcher',
  'MaxConcurrency',
  'ToleratedFailurePercentage',
  'ToleratedFailureCount',
  'Label',
  'ResultWriter',
  'ResultPath',
  'Next',
  'End',
  'Catch',
  'Retry',
]);

/** The error Step Functions raises when more children failed than the Map tolerates. */
export class ExceedToleratedFailureThresholdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'States.ExceedToleratedFailureThreshold';
  }
}

/**
 * Resolves a JSONPath payload template (a `Parameters`-like object with `.$` fields) against `input`, by running
 * it as the `Parameters` of a Pass state in `aws-local-stepfunctions`.
 */
export async function resolvePayloadTemplate(template: Json, input: Json): Promise<Json> {
  const machine = new StateMachine({
    StartAt: 'Resolve',
    States: { Resolve: { Type: 'Pass', Parameters: template as never, End: true } },
  } as never);
  return (await machine.run(input).result) as Json;
}

/** The Distributed Map of one state, run with the documented semantics of the fields the interpreter lacks. */
export class DistributedMapStandIn {
  /** Every Map run so far, oldest first. */
  readonly runs: MapRun[] = [];
  readonly #options: DistributedMapStandInOptions;
  readonly #processor: AslDefinition;

  constructor(options: DistributedMapStandInOptions) {
    const unknown = Object.keys(options.state).filter((field) => !KNOWN_FIELDS.has(field));
    if (unknown.length > 0) throw new Error(`the stand-in does not implement ${unknown.join(', ')}`);
    if (options.state.Type !== 'Map') throw new Error('not a Map state');
    const { ProcessorConfig, ...processor } = options.state.ItemProcessor as AslDefinition & {
      ProcessorConfig?: { Mode?: string };
    };
    if (ProcessorConfig?.Mode !== 'DISTRIBUTED') throw new Error('not a Distributed Map');
    this.#options = options;
    this.#processor = processor;
  }

  /** The Task state's handler: one Map run on the state's input. */
  readonly run = async (input: Json): Promise<Json> => {
    const state = this.#options.state;
    const items = await this.#readItems(input);
    const batches = await this.#batch(items, input);
    const mapRunId = randomUUID();
    const label = typeof state.Label === 'string' ? state.Label : 'Map';
    const mapRunArn = `${this.#options.stateMachineArn.replace(':stateMachine:', ':mapRun:')}/${label}:${mapRunId}`;
    const children = await this.#runChildren(batches, label);
    this.#checkTolerance(children, items.length);
    const resultWriterDetails = await this.#writeResults(input, mapRunId, mapRunArn, children);
    this.runs.push({ mapRunArn, itemCount: items.length, children, resultWriterDetails });
    return { MapRunArn: mapRunArn, ResultWriterDetails: resultWriterDetails };
  };

  /** ItemReader: `arn:aws:states:::s3:getObject` with `ReaderConfig.InputType` JSON: the object is one array. */
  async #readItems(input: Json): Promise<Json[]> {
    const reader = this.#options.state.ItemReader as
      | { Resource: string; ReaderConfig?: { InputType?: string; MaxItems?: number }; Parameters: Json }
      | undefined;
    if (reader === undefined) throw new Error('the stand-in reads items from S3 only (no ItemReader)');
    if (
      !/^arn:aws:states:::s3:getObject$/.test(reader.Resource) ||
      reader.ReaderConfig?.InputType !== 'JSON'
    ) {
      throw new Error(
        `the stand-in reads a JSON array with s3:getObject only, not ${JSON.stringify(reader)}`,
      );
    }
    const { Bucket, Key } = (await resolvePayloadTemplate(reader.Parameters, input)) as {
      Bucket: string;
      Key: string;
    };
    const response = await this.#options.s3.send(new GetObjectCommand({ Bucket, Key }));
    const items = JSON.parse((await response.Body?.transformToString('utf-8')) ?? 'null') as Json;
    // Step Functions: "the file must contain a JSON array" (States.ItemReaderFailed otherwise).
    if (!Array.isArray(items))
      throw Object.assign(new Error('not a JSON array'), { name: 'States.ItemReaderFailed' });
    const max = reader.ReaderConfig?.MaxItems;
    return max === undefined ? items : items.slice(0, max);
  }

  /**
   * ItemBatcher: consecutive items, at most MaxItemsPerBatch each and (with MaxInputBytesPerBatch) at most that many
   * bytes of child input; each child gets `{ Items: [...], BatchInput: <resolved template> }`.
   */
  async #batch(items: Json[], input: Json): Promise<Array<{ Items: Json[]; BatchInput?: Json }>> {
    const batcher = this.#options.state.ItemBatcher as
      | { MaxItemsPerBatch?: number; MaxInputBytesPerBatch?: number; BatchInput?: Json }
      | undefined;
    if (batcher === undefined) throw new Error('the stand-in runs batched Maps only (no ItemBatcher)');
    const batchInput =
      batcher.BatchInput === undefined ? undefined : await resolvePayloadTemplate(batcher.BatchInput, input);
    const maxItems = this.#options.maxItemsPerBatch ?? batcher.MaxItemsPerBatch ?? Number.POSITIVE_INFINITY;
    const maxBytes = batcher.MaxInputBytesPerBatch ?? Number.POSITIVE_INFINITY;
    const childInput = (batch: Json[]) => ({
      Items: batch,
      ...(batchInput === undefined ? {} : { BatchInput: batchInput }),
    });
    const bytes = (batch: Json[]) => Buffer.byteLength(JSON.stringify(childInput(batch)));
    const batches: Json[][] = [];
    let current: Json[] = [];
    for (const item of items) {
      if (current.length > 0 && (current.length >= maxItems || bytes([...current, item]) > maxBytes)) {
        batches.push(current);
        current = [];
      }
      if (bytes([item]) > maxBytes) {
        throw Object.assign(new Error('an item is larger than MaxInputBytesPerBatch'), {
          name: 'States.ItemReaderFailed',
        });
      }
      current.push(item);
    }
    if (current.length > 0) batches.push(current);
    return batches.map(childInput);
  }

  /** The ItemProcessor, one local execution per batch, at most MaxConcurrency at once (0: no limit). */
  async #runChildren(
    batches: Array<{ Items: Json[]; BatchInput?: Json }>,
    label: string,
  ): Promise<ChildExecution[]> {
    const limit = Number(this.#options.state.MaxConcurrency ?? 0) || batches.length || 1;
    const children: ChildExecution[] = new Array(batches.length);
    let next = 0;
    const machine = new StateMachine(this.#processor as never, {
      validationOptions: { checkPaths: true, checkArn: true },
    });
    const lane = async () => {
      while (next < batches.length) {
        const index = next++;
        const input = batches[index] as { Items: Json[]; BatchInput?: Json };
        const name = `${label}-${index}-${randomUUID().slice(0, 8)}`;
        const startedAt = new Date();
        try {
          const output = (await machine.run(input as Json, {
            overrides: { taskResourceLocalHandlers: this.#options.handlers as never },
          }).result) as Json;
          children[index] = { name, input, status: 'SUCCEEDED', output, startedAt, stoppedAt: new Date() };
        } catch (error) {
          // The interpreter wraps the failing state's error; the child execution fails with that error.
          const cause = (error as { cause?: unknown }).cause ?? error;
          children[index] = {
            name,
            input,
            status: 'FAILED',
            error: (cause as Error).name,
            cause: (cause as Error).message,
            startedAt,
            stoppedAt: new Date(),
          };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, batches.length) }, lane));
    return children;
  }

  /** ToleratedFailurePercentage / ToleratedFailureCount: more failed items than tolerated fails the Map. */
  #checkTolerance(children: readonly ChildExecution[], itemCount: number): void {
    const state = this.#options.state;
    const failedItems = children
      .filter((child) => child.status === 'FAILED')
      .reduce((sum, child) => sum + child.input.Items.length, 0);
    const percentage = state.ToleratedFailurePercentage as number | undefined;
    const count = state.ToleratedFailureCount as number | undefined;
    const tolerated =
      (percentage === undefined && count === undefined && failedItems === 0) ||
      (percentage !== undefined && itemCount > 0 && (failedItems / itemCount) * 100 <= percentage) ||
      (count !== undefined && failedItems <= count) ||
      itemCount === 0;
    if (!tolerated) {
      throw new ExceedToleratedFailureThresholdError(
        `The specified tolerated failure threshold was exceeded: ${failedItems} of ${itemCount} items failed`,
      );
    }
  }

  /**
   * ResultWriter (`arn:aws:states:::s3:putObject`, no WriterConfig: Transformation NONE): the children of each
   * status in `<Prefix>/<map run id>/<STATUS>_0.json` (an array of their execution records), and
   * `<Prefix>/<map run id>/manifest.json` listing them.
   */
  async #writeResults(
    input: Json,
    mapRunId: string,
    mapRunArn: string,
    children: readonly ChildExecution[],
  ): Promise<{ Bucket: string; Key: string }> {
    const writer = this.#options.state.ResultWriter as
      | { Resource: string; Parameters: Json; WriterConfig?: unknown }
      | undefined;
    if (writer === undefined || writer.Resource !== 'arn:aws:states:::s3:putObject' || writer.WriterConfig) {
      throw new Error(`the stand-in writes results with s3:putObject and no WriterConfig only`);
    }
    const { Bucket, Prefix } = (await resolvePayloadTemplate(writer.Parameters, input)) as {
      Bucket: string;
      Prefix?: string;
    };
    const folder = `${Prefix === undefined || Prefix === '' ? '' : `${Prefix.replace(/\/+$/, '')}/`}${mapRunId}`;
    const childArn = (name: string) =>
      `${this.#options.stateMachineArn.replace(':stateMachine:', ':execution:')}/${String(this.#options.state.Label ?? 'Map')}:${name}`;
    const record = (child: ChildExecution) => ({
      ExecutionArn: childArn(child.name),
      Input: JSON.stringify(child.input),
      InputDetails: { Included: true },
      Name: child.name,
      ...(child.status === 'SUCCEEDED'
        ? { Output: JSON.stringify(child.output), OutputDetails: { Included: true } }
        : { Error: child.error, Cause: child.cause }),
      RedriveCount: 0,
      RedriveStatus: child.status === 'SUCCEEDED' ? 'NOT_REDRIVABLE' : 'REDRIVABLE',
      ...(child.status === 'SUCCEEDED'
        ? { RedriveStatusReason: 'Execution is SUCCEEDED and cannot be redriven' }
        : {}),
      StartDate: child.startedAt.toISOString(),
      StateMachineArn: `${this.#options.stateMachineArn}/${String(this.#options.state.Label ?? 'Map')}`,
      Status: child.status,
      StopDate: child.stoppedAt.toISOString(),
    });
    const files: Record<'SUCCEEDED' | 'FAILED' | 'PENDING', Array<{ Key: string; Size: number }>> = {
      FAILED: [],
      PENDING: [],
      SUCCEEDED: [],
    };
    for (const status of ['SUCCEEDED', 'FAILED'] as const) {
      const of = children.filter((child) => child.status === status);
      if (of.length === 0) continue;
      const Key = `${folder}/${status}_0.json`;
      const Body = JSON.stringify(of.map(record));
      await this.#options.s3.send(
        new PutObjectCommand({ Bucket, Key, Body, ContentType: 'application/json' }),
      );
      files[status].push({ Key, Size: Buffer.byteLength(Body) });
    }
    const Key = `${folder}/manifest.json`;
    const manifest = { DestinationBucket: Bucket, MapRunArn: mapRunArn, ResultFiles: files };
    await this.#options.s3.send(
      new PutObjectCommand({ Bucket, Key, Body: JSON.stringify(manifest), ContentType: 'application/json' }),
    );
    return { Bucket, Key };
  }
}

/**
 * The definition with the Distributed Map state `name` replaced by a Task state of the same name, ResultPath,
 * Catch, Retry and Next (or End), whose `Resource` is `resource`: bind it to {@link DistributedMapStandIn.run}.
 */
export function replaceWithStandIn(definition: AslDefinition, name: string, resource: string): AslDefinition {
  const map = definition.States[name];
  if (map === undefined) throw new Error(`no state ${name}`);
  const kept = Object.fromEntries(
    ['Comment', 'ResultPath', 'Catch', 'Retry', 'Next', 'End']
      .filter((field) => field in map)
      .map((field) => [field, map[field]]),
  );
  return {
    ...definition,
    States: { ...definition.States, [name]: { Type: 'Task', Resource: resource, ...kept } },
  };
}
