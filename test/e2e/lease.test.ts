/**
 * One run at a time on the bundle, whatever started it: the run lease in S3 (`leases/run.json`), created only
 * if there is none, taken over only once expired, released by its holder; a run that finds a live lease does no
 * audit and says so.
 */
import { describe, expect, it } from 'vitest';
import { scheduledInvocation, succeeded } from './harness.js';
import { useE2e } from './suite.js';

const e2e = useE2e();
const LEASE = 'leases/run.json';

describe('the run lease', () => {
  it('a real run takes the lease with If-None-Match and releases it with If-Match when it returns', async () => {
    const { world, audit } = e2e;
    const mark = world.mark();
    const result = succeeded(await world.invoke(scheduledInvocation(audit.scheduleInput)));
    const calls = world.leaseCalls(mark);
    // Taken only if there is none; released only if it is still the one this run wrote.
    expect(
      calls.map((call) => [call.operation, call.headers['if-none-match'] ?? call.headers['if-match']]),
    ).toEqual([
      ['PutObject', '*'],
      ['GetObject', undefined],
      ['DeleteObject', expect.stringMatching(/^"[0-9a-f]{32}"$/)],
    ]);
    expect(result.principals).toHaveLength(3);
    expect(world.json(LEASE)).toBeUndefined();
  });

  it('a tick that finds a live lease does no audit, publishes and writes nothing, and says so', async () => {
    const { world, audit, simulator } = e2e;
    const holder = { runId: 'still-running', expiresAt: new Date(Date.now() + 600_000).toISOString() };
    world.fakes.s3.put(world.resources.bucketName, LEASE, JSON.stringify(holder), {
      contentType: 'application/json',
    });
    simulator.resetStats();
    const mark = world.mark();
    const result = succeeded(await world.invoke(scheduledInvocation(audit.scheduleInput)));
    expect(result).toMatchObject({ principals: [], skipped: expect.stringContaining('still-running') });
    expect(simulator.stats.requests).toBe(0);
    expect(world.s3Calls('PutObject', mark)).toEqual([]);
    expect(world.sns(mark)).toEqual([]);
    expect(world.events(mark)).toEqual([]);
    expect(world.json(LEASE)).toEqual(holder);
  });

  it('an expired lease (a crashed run) is taken over, and the run audits', async () => {
    const { world } = e2e;
    const crashed = { runId: 'crashed', expiresAt: new Date(Date.now() - 1_000).toISOString() };
    world.fakes.s3.put(world.resources.bucketName, LEASE, JSON.stringify(crashed), {
      contentType: 'application/json',
    });
    const result = succeeded(await world.invoke({}));
    expect(result.skipped).toBeUndefined();
    expect(result.principals.map((p) => p.baseline)).toEqual([true, true, true]);
    expect(world.json(LEASE)).toBeUndefined();
  });
});
