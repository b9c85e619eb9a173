import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors.js';
import { parseInvocation, SCHEDULE_SOURCE } from '../../functions/core/invocation.js';

const CONFIGURED = ['root', 'svc a&b', 'zürich-ops'] as const;

/** The InvalidRequestError a payload is refused with. */
function refusal(event: unknown): InvalidRequestError {
  try {
    parseInvocation(event, CONFIGURED);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequestError);
    return error as InvalidRequestError;
  }
  throw new Error(`expected ${JSON.stringify(event)} to be refused`);
}

describe('parseInvocation: scheduled', () => {
  it('has the source the stack sends', () => {
    expect(SCHEDULE_SOURCE).toBe('bigstate.key-audit.schedule');
  });

  it("runs every configured principal for the stack's schedule input", () => {
    const event = {
      source: SCHEDULE_SOURCE,
      scheduledTime: '2025-06-01T12:00:00Z',
      executionId: 'd2b0b7c3-1111-2222-3333-444455556666',
    };
    expect(parseInvocation(event, CONFIGURED)).toStrictEqual({
      trigger: 'schedule',
      principals: CONFIGURED,
      dryRun: false,
      full: true,
    });
  });

  it('runs every configured principal for a classic EventBridge "Scheduled Event"', () => {
    const event = {
      version: '0',
      id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2025-06-01T12:00:00Z',
      region: 'eu-central-1',
      resources: ['arn:aws:events:eu-central-1:123456789012:rule/audit'],
      detail: {},
    };
    expect(parseInvocation(event, CONFIGURED)).toStrictEqual({
      trigger: 'schedule',
      principals: CONFIGURED,
      dryRun: false,
      full: true,
    });
  });

  it('does not take a "Scheduled Event" from another source for a schedule', () => {
    expect(refusal({ 'detail-type': 'Scheduled Event', source: 'my.app' }).field).toBe('detail-type');
  });

  it('does not take an aws.events event of another detail-type for a schedule', () => {
    expect(refusal({ 'detail-type': 'Object Created', source: 'aws.events' }).field).toBe('detail-type');
  });
});

describe('parseInvocation: manual', () => {
  it('runs every configured principal for {}', () => {
    expect(parseInvocation({}, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: CONFIGURED,
      dryRun: false,
      full: true,
    });
  });

  it('runs a subset of the configured principals', () => {
    expect(parseInvocation({ principals: ['zürich-ops', 'root'] }, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: ['zürich-ops', 'root'],
      dryRun: false,
      full: false,
    });
  });

  it('lists a principal named twice once', () => {
    expect(parseInvocation({ principals: ['root', 'root'] }, CONFIGURED).principals).toEqual(['root']);
  });

  it('runs a dry run when asked, and not when dryRun is false', () => {
    expect(parseInvocation({ dryRun: true }, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: CONFIGURED,
      dryRun: true,
      full: true,
    });
    expect(parseInvocation({ dryRun: false }, CONFIGURED).dryRun).toBe(false);
    expect(parseInvocation({ principals: ['svc a&b'], dryRun: true }, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: ['svc a&b'],
      dryRun: true,
      full: false,
    });
  });
});

describe('parseInvocation: refusals name the field', () => {
  it.each([
    ['null', null],
    ['an array', [{ principals: ['root'] }]],
    ['a string', '{"principals":["root"]}'],
    ['a number', 42],
    ['undefined', undefined],
  ])('refuses %s as the payload', (_what, event) => {
    const error = refusal(event);
    expect(error.field).toBe('(payload)');
    expect(error.message).toBe('invalid invocation: the payload must be a JSON object');
    expect(error.name).toBe('InvalidRequestError');
  });

  it('refuses principals that is not a list', () => {
    const error = refusal({ principals: 'root' });
    expect(error.field).toBe('principals');
    expect(error.message).toBe('invalid invocation: field "principals" must be a list of principal names');
  });

  it('refuses an empty principals list', () => {
    const error = refusal({ principals: [] });
    expect(error.field).toBe('principals');
    expect(error.message).toBe('invalid invocation: field "principals" must list at least one principal');
  });

  it('refuses an empty principal name, naming its position', () => {
    const error = refusal({ principals: ['root', ''] });
    expect(error.field).toBe('principals.1');
    expect(error.message).toBe('invalid invocation: field "principals.1" must not hold an empty name');
  });

  it('refuses a name no configuration could hold (control, bidi, separator, lone surrogate), even under a pattern that covers it', () => {
    for (const [index, name] of [
      [0, 'evil\nChange id: x'],
      [0, 'a\u202egnp.exe'],
      [0, 'a\u2028b'],
      [0, 'a\ud800'],
      [0, '   '],
    ] as const) {
      let caught: unknown;
      try {
        parseInvocation({ principals: [name] }, CONFIGURED, '*');
      } catch (error) {
        caught = error;
      }
      expect(caught, JSON.stringify(name)).toBeInstanceOf(InvalidRequestError);
      const error = caught as InvalidRequestError;
      expect(error.field).toBe(`principals.${index}`);
      expect(error.message).toMatch(/^invalid invocation: field "principals\.0" a principal name must not /);
    }
  });

  it('names an unknown field escaped, so a hostile key cannot forge a line of the error', () => {
    const error = refusal({ 'x\ny': true });
    expect(error.message).toBe(
      'invalid invocation: field "x\\ny" is not a known field (known: principals, dryRun)',
    );
  });

  it('refuses a principal that is not a string', () => {
    const error = refusal({ principals: [7] });
    expect(error.field).toBe('principals.0');
    expect(error.message).toBe('invalid invocation: field "principals.0" must hold strings');
  });

  it('refuses a dryRun that is not a boolean', () => {
    const error = refusal({ dryRun: 'yes' });
    expect(error.field).toBe('dryRun');
    expect(error.message).toBe('invalid invocation: field "dryRun" must be true or false');
  });

  it('refuses null for an optional field', () => {
    expect(refusal({ principals: null }).field).toBe('principals');
    expect(refusal({ dryRun: null }).field).toBe('dryRun');
  });

  it('refuses an unknown field, naming it and the known ones', () => {
    const error = refusal({ principals: ['root'], dryrun: true });
    expect(error.field).toBe('dryrun');
    expect(error.message).toBe(
      'invalid invocation: field "dryrun" is not a known field (known: principals, dryRun)',
    );
  });

  it('refuses a principal that is not configured, naming each such principal', () => {
    const error = refusal({ principals: ['root', 'intruder', 'other one'] });
    expect(error.field).toBe('principals');
    expect(error.message).toBe(
      'invalid invocation: field "principals" names "intruder", "other one", not configured for this audit',
    );
  });

  it('compares principal names exactly (case and accents matter)', () => {
    expect(refusal({ principals: ['Root'] }).message).toContain('"Root"');
    expect(refusal({ principals: ['zurich-ops'] }).message).toContain('"zurich-ops"');
  });
});

describe('parseInvocation: scheduled only in the exact scheduled shapes', () => {
  const scheduleInput = {
    source: SCHEDULE_SOURCE,
    scheduledTime: '2025-06-01T12:00:00Z',
    executionId: 'd2b0b7c3-1111-2222-3333-444455556666',
  };
  const scheduledEvent = {
    version: '0',
    id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: '2025-06-01T12:00:00Z',
    region: 'eu-central-1',
    resources: ['arn:aws:events:eu-central-1:123456789012:rule/audit'],
    detail: {},
  };

  it('refuses the schedule source with dryRun, naming the fields (never a live run ignoring it)', () => {
    const error = refusal({ source: SCHEDULE_SOURCE, dryRun: true });
    expect(error.field).toBe('source');
    expect(error.message).toBe(
      `invalid invocation: field "source" is not a known field (known: principals, dryRun); nor is it the schedule's input (exactly source, scheduledTime and executionId, each a string): it holds "dryRun"; it lacks "scheduledTime", "executionId"`,
    );
  });

  it('refuses the schedule source with principals, naming the fields', () => {
    const error = refusal({ source: SCHEDULE_SOURCE, principals: ['root'] });
    expect(error.field).toBe('source');
    expect(error.message).toContain('field "source" is not a known field');
    expect(error.message).toContain('it holds "principals"');
  });

  it.each([
    ['dryRun: true', { dryRun: true }, 'it holds "dryRun"'],
    ['dryRun: false', { dryRun: false }, 'it holds "dryRun"'],
    ['principals', { principals: ['root'] }, 'it holds "principals"'],
    ['any other field', { note: 'x' }, 'it holds "note"'],
  ])("refuses the schedule's exact input plus %s", (_what, extra, problem) => {
    const error = refusal({ ...scheduleInput, ...extra });
    expect(error.field).toBe('source');
    expect(error.message).toMatch(
      /^invalid invocation: fields "source", "scheduledTime", "executionId"(, "note")? are not known fields \(known: principals, dryRun\); nor is it the schedule's input/,
    );
    expect(error.message).toContain(problem);
  });

  it.each(['scheduledTime', 'executionId'])("refuses the schedule's input without %s", (key) => {
    const event: Record<string, unknown> = { ...scheduleInput };
    delete event[key];
    expect(refusal(event).message).toContain(`it lacks "${key}"`);
  });

  it.each([
    [
      'a number for scheduledTime',
      { scheduledTime: 1_748_779_200 },
      '"scheduledTime" has the wrong type or value',
    ],
    ['null for executionId', { executionId: null }, '"executionId" has the wrong type or value'],
  ])("refuses the schedule's input with %s", (_what, change, problem) => {
    expect(refusal({ ...scheduleInput, ...change }).message).toContain(problem);
  });

  it('refuses another source with the schedule input fields', () => {
    const error = refusal({ ...scheduleInput, source: 'bigstate.key-audit.schedulex' });
    expect(error.field).toBe('source');
    expect(error.message).not.toContain("schedule's input");
  });

  it.each([
    ['a dryRun field', { dryRun: true }, 'it holds "dryRun"'],
    ['principals', { principals: ['root'] }, 'it holds "principals"'],
    [
      'a detail that asks for a dry run',
      { detail: { dryRun: true } },
      '"detail" has the wrong type or value',
    ],
    ['a detail that is no object', { detail: 'x' }, '"detail" has the wrong type or value'],
    [
      'resources that are no list',
      { resources: 'arn:aws:events:::rule/x' },
      '"resources" has the wrong type or value',
    ],
    ['a version that is no string', { version: 0 }, '"version" has the wrong type or value'],
  ])('refuses a "Scheduled Event" with %s', (_what, change, problem) => {
    const error = refusal({ ...scheduledEvent, ...change });
    expect(error.field).toBe('version');
    expect(error.message).toContain('nor is it an EventBridge "Scheduled Event"');
    expect(error.message).toContain(problem);
  });

  it.each(['version', 'id', 'account', 'time', 'region', 'resources', 'detail'])(
    'refuses a "Scheduled Event" without its standard field %s',
    (key) => {
      const event: Record<string, unknown> = { ...scheduledEvent };
      delete event[key];
      expect(refusal(event).message).toContain(`it lacks "${key}"`);
    },
  );

  it('takes exactly the two scheduled shapes for a full live run', () => {
    for (const event of [scheduleInput, scheduledEvent, { ...scheduledEvent, resources: [] }]) {
      expect(parseInvocation(event, CONFIGURED)).toStrictEqual({
        trigger: 'schedule',
        principals: CONFIGURED,
        dryRun: false,
        full: true,
      });
    }
  });
});

describe('parseInvocation with a principal pattern (discovery)', () => {
  it('takes a subset naming principals the pattern covers, not only configured ones, as a subset run', () => {
    expect(parseInvocation({ principals: ['app-9', 'root'] }, CONFIGURED, 'app-*')).toStrictEqual({
      trigger: 'manual',
      principals: ['app-9', 'root'],
      dryRun: false,
      full: false,
    });
  });

  it('refuses a name neither configured nor covered by the pattern, saying both', () => {
    expect(() => parseInvocation({ principals: ['svc-1'] }, CONFIGURED, 'app-*')).toThrow(
      /names "svc-1", not configured for this audit nor matched by the principal pattern "app-\*"/,
    );
  });

  it('makes every scheduled run and {} a full run (discovery), with no principals configured at all', () => {
    expect(parseInvocation({}, [], '*')).toMatchObject({ principals: [], full: true });
  });
});
