import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALARMS, RUNBOOK_DOCUMENT, runbookLink } from '../../infra/key-audit-alarms.js';
import { ROOT } from './support.js';

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
const githubAnchor = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

const readme = readFileSync(`${ROOT}/${RUNBOOK_DOCUMENT}`, 'utf8');
const anchors = [...readme.matchAll(/^#{1,6} (.+)$/gm)].map((match) => githubAnchor(match[1] ?? ''));

describe('the alarms’ runbooks', () => {
  it('link an anchor of the README for each alarm', () => {
    expect(Object.values(ALARMS).map((alarm) => alarm.anchor)).toEqual([
      'alarm-audit-errors',
      'alarm-audit-throttles',
      'alarm-no-successful-run',
      'alarm-schedule-dead-letters',
      'alarm-async-failures',
    ]);
    expect(runbookLink('errors')).toBe('README.md#alarm-audit-errors');
  });

  it.each(Object.entries(ALARMS))('%s: the README has its runbook section, once', (_kind, alarm) => {
    expect(anchors.filter((anchor) => anchor === alarm.anchor)).toHaveLength(1);
    expect(readme).toContain(`#### Alarm: ${alarm.suffix}\n`);
    expect(readme).toContain(`\`<stack>-${alarm.suffix}\``);
  });

  it('has every anchor that the alarms section links to', () => {
    const section = readme.slice(
      readme.indexOf('### Alarms and the dashboard'),
      readme.indexOf('### Cost at the default schedule'),
    );
    const links = [...section.matchAll(/\]\(#([^)]+)\)/g)].map((match) => match[1]);
    expect(links.length).toBeGreaterThan(5);
    for (const link of links) expect(anchors, link).toContain(link);
  });
});
