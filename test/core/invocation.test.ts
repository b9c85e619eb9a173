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
    });
  });

  it('runs a subset of the configured principals', () => {
    expect(parseInvocation({ principals: ['zürich-ops', 'root'] }, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: ['zürich-ops', 'root'],
      dryRun: false,
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
    });
    expect(parseInvocation({ dryRun: false }, CONFIGURED).dryRun).toBe(false);
    expect(parseInvocation({ principals: ['svc a&b'], dryRun: true }, CONFIGURED)).toStrictEqual({
      trigger: 'manual',
      principals: ['svc a&b'],
      dryRun: true,
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
