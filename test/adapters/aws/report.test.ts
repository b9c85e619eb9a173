import './support.js';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  REPORT_MIN_TIME_MS,
  readStatesForReport,
  writeReport,
} from '../../../functions/adapters/aws/report.js';
import { S3SnapshotStore } from '../../../functions/adapters/aws/s3-store.js';
import { StorageError } from '../../../functions/commons/errors.js';
import type { Snapshot, StoredSnapshot } from '../../../functions/core/ports.js';
import { snapshotOf } from '../../core/support/fakes.js';
import { s3Error } from './support.js';

const logger = { info: vi.fn(), warn: vi.fn(), error: vi.fn(), debug: vi.fn() };
const NOW = new Date('2026-11-28T10:00:00.000Z');

beforeEach(() => {
  vi.clearAllMocks();
});

/** A store that keeps what was put. */
function reportStore() {
  const puts = new Map<string, { body: string; type: string }>();
  return {
    puts,
    putReport: vi.fn(async (key: string, body: string | Uint8Array, type: string) => {
      puts.set(key, { body: typeof body === 'string' ? body : Buffer.from(body).toString('utf8'), type });
    }),
  };
}

const ok = (principal: string) => ({ principal, status: 'ok' as const });
const request = (store: ReturnType<typeof reportStore>, remainingMs = 60_000) => ({
  store,
  logger,
  host: 'api.bigstate.example',
  maxKeyAgeDays: undefined,
  remainingMs,
  now: NOW,
});

describe('writeReport', () => {
  const states = new Map<string, Snapshot | null>([
    ['svc a&b', snapshotOf('svc a&b', ['deploy', '=HYPERLINK("x")'])],
    ['new', null],
  ]);

  it('writes the latest report and the day’s copy, HTML and CSV, with every principal', async () => {
    const store = reportStore();
    const written = await writeReport(
      {
        runId: 'run-1',
        dryRun: false,
        principals: [ok('svc a&b'), { principal: 'new', status: 'failed', reason: 'HTTP 403' }],
        states,
      },
      request(store),
    );
    expect([...(written?.keys ?? [])].sort()).toEqual(
      [
        'reports/2026-11-28/report.csv',
        'reports/2026-11-28/report.html',
        'reports/latest.csv',
        'reports/latest.html',
      ].sort(),
    );
    const csv = store.puts.get('reports/latest.csv')?.body ?? '';
    expect(csv).toContain('svc a&b');
    // A formula stays text in a spreadsheet.
    expect(csv).not.toMatch(/(^|,)=HYPERLINK/m);
    expect(store.puts.get('reports/latest.html')?.body).toContain('HTTP 403');
    expect(store.puts.get('reports/latest.html')?.type).toBe('text/html; charset=utf-8');
    expect(store.puts.get('reports/latest.csv')?.body).toBe(
      store.puts.get('reports/2026-11-28/report.csv')?.body,
    );
  });

  it('writes nothing for a dry run, or with too little time left before the hard stop', async () => {
    const store = reportStore();
    const source = { runId: 'run-1', dryRun: true, principals: [ok('svc a&b')], states };
    expect(await writeReport(source, request(store))).toBeUndefined();
    expect(
      await writeReport({ ...source, dryRun: false }, request(store, REPORT_MIN_TIME_MS - 1)),
    ).toBeUndefined();
    expect(store.putReport).not.toHaveBeenCalled();
    expect(logger.warn).toHaveBeenCalledWith('report skipped: no time left before the hard stop', {
      remainingMs: REPORT_MIN_TIME_MS - 1,
    });
    expect(await writeReport({ ...source, dryRun: false }, request(store, REPORT_MIN_TIME_MS))).toBeDefined();
  });

  it('keeps the last complete report when a failed principal’s state could not be read', async () => {
    const store = reportStore();
    const written = await writeReport(
      {
        runId: 'run-1',
        dryRun: false,
        principals: [ok('svc a&b'), { principal: 'unread', status: 'failed', reason: 'S3 down' }],
        states,
      },
      request(store),
    );
    expect(written).toBeUndefined();
    expect(store.putReport).not.toHaveBeenCalled();
  });

  it('never fails the run when a write fails: a log line says so', async () => {
    const store = reportStore();
    store.putReport.mockRejectedValueOnce(new StorageError('could not write'));
    const source = { runId: 'run-1', dryRun: false, principals: [ok('svc a&b')], states };
    await expect(writeReport(source, request(store))).resolves.toBeUndefined();
    expect(logger.warn).toHaveBeenCalledWith('report skipped: it could not be written', expect.anything());
  });
});

describe('readStatesForReport', () => {
  const stored = (principal: string): StoredSnapshot => ({
    snapshot: snapshotOf(principal, [`${principal}-key`]),
    version: '"v"',
  });

  it('reads every principal’s state, null for one without any, in the run’s order, a bounded few at a time', async () => {
    const principals = Array.from({ length: 40 }, (_, index) => `p${index}`);
    let inFlight = 0;
    let most = 0;
    const store = {
      read: vi.fn(async (principal: string) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        // Later principals answer first: the order must still be the run's.
        await new Promise((resolve) => setTimeout(resolve, 40 - Number(principal.slice(1))));
        inFlight -= 1;
        return principal === 'p7' ? undefined : stored(principal);
      }),
    };
    const states = await readStatesForReport(store, principals, {
      signal: new AbortController().signal,
      concurrency: 5,
    });
    expect([...states.keys()]).toEqual(principals);
    expect(states.get('p7')).toBeNull();
    expect(states.get('p8')?.principal).toBe('p8');
    expect(store.read).toHaveBeenCalledTimes(40);
    expect(most).toBe(5);
  });

  it('fails when one state cannot be read, and stops reading once aborted', async () => {
    const store = {
      read: vi.fn(async (principal: string) => {
        if (principal === 'b') throw new StorageError('could not read s3://bucket/snapshots/b.json');
        return stored(principal);
      }),
    };
    await expect(
      readStatesForReport(store, ['a', 'b', 'c'], { signal: new AbortController().signal, concurrency: 1 }),
    ).rejects.toThrow(StorageError);
    const aborted = new AbortController();
    aborted.abort(new Error('hard stop'));
    store.read.mockClear();
    await expect(readStatesForReport(store, ['a', 'c'], { signal: aborted.signal })).rejects.toThrow(
      'hard stop',
    );
    expect(store.read).not.toHaveBeenCalled();
  });
});

describe('S3SnapshotStore.hasReport', () => {
  const s3 = mockClient(S3Client);
  const store = new S3SnapshotStore(new S3Client({ region: 'eu-central-1' }), 'audit-bucket');
  beforeEach(() => s3.reset());

  it('is true when the object exists, false on 404, and a StorageError otherwise', async () => {
    s3.on(HeadObjectCommand, { Key: 'reports/2026-11-28/report.html' }).resolves({});
    expect(await store.hasReport('reports/2026-11-28/report.html')).toBe(true);
    expect(s3).toHaveReceivedCommandWith(HeadObjectCommand, {
      Bucket: 'audit-bucket',
      Key: 'reports/2026-11-28/report.html',
    });
    s3.on(HeadObjectCommand).rejects(s3Error('NotFound', 404));
    expect(await store.hasReport('reports/2026-11-29/report.html')).toBe(false);
    s3.on(HeadObjectCommand).rejects(s3Error('AccessDenied', 403));
    await expect(store.hasReport('reports/x')).rejects.toThrow(StorageError);
  });
});
