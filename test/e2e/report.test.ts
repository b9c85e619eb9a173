/**
 * The inventory report on the bundle: a real full run writes `reports/latest.html` and `latest.csv` (and dated
 * copies) to S3 next to the states, built from the states the run holds; the notice of a run with changes names
 * the report; a dry run writes none; a run that could not read a state keeps the last complete report.
 */
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { changeIdInBody, snsFor, succeeded } from './harness.js';
import { PRINCIPALS, useE2e } from './suite.js';

const e2e = useE2e();

describe('the inventory report', () => {
  it('a real run writes both reports next to the states; the notice names them; the names are escaped and exact', async () => {
    const { world, simulator } = e2e;
    simulator.addKeys('root', '<script>alert(1)</script>', '=cmd|calc');
    const mark = world.mark();
    const result = succeeded(await world.invoke({}));
    const bucket = world.resources.bucketName;
    const html = world.fakes.s3.get(bucket, 'reports/latest.html')?.text ?? '';
    const csv = world.fakes.s3.get(bucket, 'reports/latest.csv')?.text ?? '';
    expect(html).toContain('<meta http-equiv="Content-Security-Policy"');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain(result.runId);
    const rows = parse(csv.replace(/^\uFEFF/, ''), { columns: true }) as Array<Record<string, string>>;
    expect(new Set(rows.map((row) => row.principal))).toEqual(new Set(PRINCIPALS));
    const names = rows.map((row) => row.key);
    expect(names).toContain('<script>alert(1)</script>');
    expect(names).toContain("'=cmd|calc");
    // Dated copies too.
    expect(
      world
        .reportCalls(mark)
        .map((call) => String(call.input.key))
        .sort(),
    ).toEqual([
      expect.stringMatching(/^reports\/\d{4}-\d{2}-\d{2}\/report\.csv$/),
      expect.stringMatching(/^reports\/\d{4}-\d{2}-\d{2}\/report\.html$/),
      'reports/latest.csv',
      'reports/latest.html',
    ]);
    const [notice] = snsFor(world.sns(mark), 'root');
    expect(notice && changeIdInBody(notice)).toMatch(/^chg-/);
    expect(notice?.message).toContain(`Inventory report: s3://${bucket}/reports/latest.html`);
  });

  it('a dry run writes no report, and a run that could not read a state keeps the last complete one', async () => {
    const { world } = e2e;
    succeeded(await world.invoke({}));
    const bucket = world.resources.bucketName;
    const before = world.fakes.s3.get(bucket, 'reports/latest.html')?.text;
    let mark = world.mark();
    succeeded(await world.invoke({ dryRun: true }));
    expect(world.reportCalls(mark)).toEqual([]);

    world.fakes.s3.fail(
      (call) => call.operation === 'GetObject' && String(call.input.key).startsWith('snapshots/root'),
      {
        status: 403,
        code: 'AccessDenied',
        message: 'denied',
      },
    );
    mark = world.mark();
    await world.invoke({});
    expect(world.reportCalls(mark)).toEqual([]);
    expect(world.fakes.s3.get(bucket, 'reports/latest.html')?.text).toBe(before);
  });
});
