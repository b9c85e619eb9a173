import { describe, expect, it } from 'vitest';
import { benchReport, formatReportFigures } from './bench.js';

describe('benchReport (npm run bench)', () => {
  it('measures a report and says whether the targets are met', () => {
    const figures = benchReport(3, 50);
    expect(figures).toMatchObject({ principals: 3, keysPerPrincipal: 50, summarised: false });
    expect(figures.ms).toBeGreaterThan(0);
    expect(figures.htmlBytes).toBeGreaterThan(0);
    expect(figures.csvBytes).toBeGreaterThan(150 * 50);
    expect(formatReportFigures(figures)).toMatch(
      /^report of 3 principals x 50 keys \(150 keys\): \d+ ms \(target < 2000 ms: met\)/,
    );
  });
});
