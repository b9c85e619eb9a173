/**
 * Discovery end to end through the deployable bundle: the stack synthesized with `principalPattern`, scheduled runs
 * that discover principals, tell new ones as new, and tell one gone from BigState once as removed while its state
 * is archived by a conditional copy and a conditional delete; and a configured principal that does not exist.
 */
import { describe, expect, it } from 'vitest';
import { eventsFor, outcomeOf, scheduledInvocation, snsAttributes, snsFor, succeeded } from './harness.js';
import { DETAIL_TYPE, failureOf, PRINCIPALS, SNAPSHOT_KEY, useE2e } from './suite.js';

const REMOVED = 'BigState Principal Removed';
const e2e = useE2e({
  discovery: { principalPattern: 'app-*' },
  withNobody: { principals: [...PRINCIPALS, 'nobody'] },
});

/** The apps this file adds to the shared simulator, removed again so other tests start clean. */
const APPS = ['app-one', 'app-two', 'app-three'];

describe('discovery on the bundle', () => {
  it('a scheduled run discovers principals, tells new ones as new, and one gone from BigState once as removed, archiving its state', async () => {
    const { world, simulator, audit } = e2e;
    for (const app of APPS) simulator.removePrincipal(app);
    simulator.addPrincipal('app-one', { type: 1, name: 'App One', keys: ['o1', 'o2'] });
    simulator.addPrincipal('app-two', { type: 2, name: 'Ops Two', keys: ['t1', 't2', 't3'] });
    try {
      await world.redeploy(e2e.variants.discovery as NonNullable<typeof e2e.variants.discovery>);
      expect(world.functionEnv.BIGSTATE_PRINCIPAL_PATTERN).toBe('app-*');
      const tick = () => world.invoke(scheduledInvocation(audit.scheduleInput));

      // 1. The listing's principals and the configured ones: the apps are new principals.
      let mark = world.mark();
      const first = succeeded(await tick());
      expect(first.principals.map((o) => [o.principal, o.baseline, o.newPrincipal])).toEqual([
        ['app-one', true, true],
        ['app-two', true, true],
        ...PRINCIPALS.map((principal) => [principal, true, false]),
      ]);
      const [oneEvent] = eventsFor(world.events(mark), 'app-one');
      expect(oneEvent?.detailType).toBe(DETAIL_TYPE.baseline);
      expect(oneEvent?.detailJson).toMatchObject({
        newPrincipal: true,
        principalInfo: { type: 1, displayName: 'App One' },
        counts: { total: 2 },
      });
      expect(eventsFor(world.events(mark), 'root')[0]?.detailJson).toMatchObject({ newPrincipal: false });
      const [oneMail] = snsFor(world.sns(mark), 'app-one');
      expect(oneMail?.subject).toBe('BigState key audit: new principal app-one (2 keys)');
      expect(oneMail?.message).toContain(
        'New principal "app-one" — App One (application), found by discovery',
      );

      // 2. A principal appears between runs: only it is news.
      simulator.addPrincipal('app-three', { keys: ['x'] });
      mark = world.mark();
      const second = succeeded(await tick());
      expect(second.principals.filter((o) => o.baseline).map((o) => [o.principal, o.newPrincipal])).toEqual([
        ['app-three', true],
      ]);
      expect(world.events(mark).map((event) => [event.detailType, event.detailJson.principal])).toEqual([
        [DETAIL_TYPE.baseline, 'app-three'],
      ]);

      // 3. A principal is deleted in BigState: told once as removed, with the keys it had; its state archived.
      simulator.removePrincipal('app-two');
      mark = world.mark();
      const third = succeeded(await tick());
      expect(outcomeOf(third, 'app-two')).toMatchObject({
        principalRemoved: true,
        removed: 0,
        keyCount: null,
      });
      const events = world.events(mark);
      expect(events.map((event) => [event.detailType, event.detailJson.principal])).toEqual([
        [REMOVED, 'app-two'],
      ]);
      expect(events[0]?.detailJson).toMatchObject({
        principal: 'app-two',
        keys: ['t1', 't2', 't3'],
        counts: { total: 3 },
        principalInfo: { type: 2, displayName: 'Ops Two' },
        removalId: expect.stringMatching(/^prm-[0-9a-f]{32}$/),
        archiveLocation: expect.stringMatching(/^s3:\/\/[^/]+\/archive\/app-two\/prm-[0-9a-f]{32}\.json$/),
      });
      const [removalMail, ...moreMail] = snsFor(world.sns(mark), 'app-two');
      expect(moreMail).toEqual([]);
      expect(removalMail && snsAttributes(removalMail).changeType?.value).toEqual(['principal-removed']);
      expect(removalMail?.subject).toBe('BigState principal removed: app-two (3 keys)');
      // The move: a copy only if the state is still the one read and nothing is archived under that id yet,
      // then a delete only if the state is still the one read.
      const copies = world.s3Calls('CopyObject', mark);
      expect(
        copies.map((call) => [call.headers['x-amz-copy-source-if-match'], call.headers['if-none-match']]),
      ).toEqual([[expect.stringMatching(/^"/), '*']]);
      const deletes = world.s3Calls('DeleteObject', mark);
      expect(deletes.map((call) => call.headers['if-match'])).toEqual([
        copies[0]?.headers['x-amz-copy-source-if-match'],
      ]);
      expect(world.json('snapshots/app-two.json')).toBeUndefined();
      const archiveKey = String(events[0]?.detailJson.archiveLocation).replace(/^s3:\/\/[^/]+\//, '');
      expect(world.json(archiveKey)).toMatchObject({ principal: 'app-two', keyCount: 3 });

      // 4. Told once: the next run says nothing more about it.
      mark = world.mark();
      const fourth = succeeded(await tick());
      expect(fourth.principals.map((o) => o.principal)).not.toContain('app-two');
      expect(world.events(mark)).toEqual([]);
    } finally {
      for (const app of APPS) simulator.removePrincipal(app);
    }
  });

  it('a configured principal BigState does not know fails the run naming it, never an empty baseline', async () => {
    const { world } = e2e;
    await world.redeploy(e2e.variants.withNobody as NonNullable<typeof e2e.variants.withNobody>);
    const mark = world.mark();
    const error = failureOf(await world.invoke({}));
    expect(error.errorType).toBe('AuditRunFailedError');
    expect(error.errorMessage).toMatch(
      /1 of 4.*"nobody": checking that the principal exists: principal "nobody" does not exist in BigState/,
    );
    const baselines = world.events(mark).filter((event) => event.detailType === DETAIL_TYPE.baseline);
    expect(baselines.map((event) => String(event.detailJson.principal)).sort()).toEqual(
      [...PRINCIPALS].sort(),
    );
    expect(eventsFor(world.events(mark), 'nobody').map((event) => event.detailType)).toEqual([
      DETAIL_TYPE.failed,
    ]);
    expect(world.json(SNAPSHOT_KEY.root)).toBeDefined();
  });
});
