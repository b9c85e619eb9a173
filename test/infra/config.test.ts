import { Duration, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { ConfigurationError, readKeyAuditContext, resolveKeyAuditConfig } from '../../infra/config.js';
import { KeyAudit } from '../../infra/key-audit.js';
import { KeyAuditStack } from '../../infra/key-audit-stack.js';
import { appWith } from './support.js';

const HOST = 'https://api.bigstate.dev';
const HOSTILE = [
  'tram_client',
  'Tram & Bus #1',
  'Zürich Straße',
  'O\'Brien "quoted"',
  'a/../b',
  '日本語 キー',
];

/** The error `resolveKeyAuditConfig` throws for these values. */
function problemWith(raw: Record<string, unknown>): ConfigurationError {
  try {
    resolveKeyAuditConfig(raw);
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('resolveKeyAuditConfig', () => {
  it('fills the defaults around the two required keys', () => {
    expect(resolveKeyAuditConfig({ bigstateHost: HOST, principals: 'tram_client' })).toEqual({
      bigstateHost: HOST,
      principals: ['tram_client'],
      schedule: 'rate(1 hour)',
      notificationEmails: [],
    });
  });

  it('keeps every optional value that is given', () => {
    expect(
      resolveKeyAuditConfig({
        bigstateHost: 'https://bigstate.example.org/api',
        principals: ['a'],
        pattern: 'ci-*',
        schedule: 'cron(0 6 ? * MON-FRI *)',
        apiKeySecretName: 'prod/bigstate-key',
        notificationEmails: ['ops@example.com'],
      }),
    ).toEqual({
      bigstateHost: 'https://bigstate.example.org/api',
      principals: ['a'],
      pattern: 'ci-*',
      schedule: 'cron(0 6 ? * MON-FRI *)',
      apiKeySecretName: 'prod/bigstate-key',
      notificationEmails: ['ops@example.com'],
    });
  });

  it('reads principals from a JSON array string (as -c gives it), names kept exactly', () => {
    expect(
      resolveKeyAuditConfig({ bigstateHost: HOST, principals: JSON.stringify(HOSTILE) }).principals,
    ).toEqual(HOSTILE);
  });

  it('reads principals from a comma-separated list, trimming around the commas only', () => {
    expect(
      resolveKeyAuditConfig({ bigstateHost: HOST, principals: ' a , b c ,Tram & Bus #1' }).principals,
    ).toEqual(['a', 'b c', 'Tram & Bus #1']);
  });

  it('reads lists given as arrays (as cdk.json gives them)', () => {
    const config = resolveKeyAuditConfig({
      bigstateHost: HOST,
      principals: HOSTILE,
      notificationEmails: ['a@example.com', 'b@example.org'],
    });
    expect(config.principals).toEqual(HOSTILE);
    expect(config.notificationEmails).toEqual(['a@example.com', 'b@example.org']);
  });

  it('reads e-mails from a JSON string or a comma list', () => {
    const base = { bigstateHost: HOST, principals: 'a' };
    expect(
      resolveKeyAuditConfig({ ...base, notificationEmails: '["a@example.com"]' }).notificationEmails,
    ).toEqual(['a@example.com']);
    expect(
      resolveKeyAuditConfig({ ...base, notificationEmails: 'a@example.com, b@example.com' })
        .notificationEmails,
    ).toEqual(['a@example.com', 'b@example.com']);
  });

  it.each(['http://localhost:8080', 'http://127.0.0.1:9000', 'http://[::1]:8080'])(
    'accepts plain http on the loopback host %s',
    (host) => {
      expect(resolveKeyAuditConfig({ bigstateHost: host, principals: 'a' }).bigstateHost).toBe(host);
    },
  );

  it.each(['*', 'x', '*x', 'x*', '*x*'])('accepts the pattern form %s', (pattern) => {
    expect(resolveKeyAuditConfig({ bigstateHost: HOST, principals: 'a', pattern }).pattern).toBe(pattern);
  });

  it.each([
    'rate(1 minute)',
    'rate(5 minutes)',
    'rate(2 hours)',
    'rate(1 day)',
    'cron(0 6 * * ? *)',
    'cron(0/15 8-18 ? * MON-FRI *)',
  ])('accepts the schedule %s', (schedule) => {
    expect(resolveKeyAuditConfig({ bigstateHost: HOST, principals: 'a', schedule }).schedule).toBe(schedule);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['missing bigstateHost', { principals: 'a' }, /bigstateHost is required/],
    ['missing principals', { bigstateHost: HOST }, /principals is required/],
    [
      'http on a public host',
      { bigstateHost: 'http://api.bigstate.dev', principals: 'a' },
      /bigstateHost must use https/,
    ],
    [
      'a host that is no URL',
      { bigstateHost: 'api.bigstate.dev', principals: 'a' },
      /bigstateHost must be an absolute URL/,
    ],
    [
      'credentials in the host',
      { bigstateHost: 'https://user:pw@api.bigstate.dev', principals: 'a' },
      /bigstateHost must not carry a query, fragment or credentials/,
    ],
    ['a host of the wrong type', { bigstateHost: 42, principals: 'a' }, /bigstateHost/],
    [
      'bad principals JSON',
      { bigstateHost: HOST, principals: '["a", "b"' },
      /principals is not a valid JSON array/,
    ],
    ['principals JSON not of strings', { bigstateHost: HOST, principals: '[1, 2]' }, /principals\[0\]/],
    [
      'an empty principals array',
      { bigstateHost: HOST, principals: '[]' },
      /principals must name at least one/,
    ],
    [
      'an empty principals string',
      { bigstateHost: HOST, principals: '' },
      /principals must name at least one/,
    ],
    ['a blank principal in a comma list', { bigstateHost: HOST, principals: 'a,,b' }, /principals\[1\]/],
    [
      'a principal named twice',
      { bigstateHost: HOST, principals: '["a","a"]' },
      /principals lists "a" twice/,
    ],
    [
      'a pattern with an inner *',
      { bigstateHost: HOST, principals: 'a', pattern: 'a*b' },
      /pattern must be one of/,
    ],
    [
      'a pattern of two stars',
      { bigstateHost: HOST, principals: 'a', pattern: '**' },
      /pattern must be one of/,
    ],
    ['an empty pattern', { bigstateHost: HOST, principals: 'a', pattern: '' }, /pattern must not be empty/],
    [
      'a schedule that is no expression',
      { bigstateHost: HOST, principals: 'a', schedule: 'every hour' },
      /schedule must be/,
    ],
    [
      'a zero rate',
      { bigstateHost: HOST, principals: 'a', schedule: 'rate(0 hours)' },
      /schedule must have a whole/,
    ],
    [
      'a rate in weeks',
      { bigstateHost: HOST, principals: 'a', schedule: 'rate(1 week)' },
      /schedule must be/,
    ],
    [
      'a five-field cron',
      { bigstateHost: HOST, principals: 'a', schedule: 'cron(0 6 * * *)' },
      /schedule must have six/,
    ],
    [
      'a cron without ?',
      { bigstateHost: HOST, principals: 'a', schedule: 'cron(0 6 * * 1 *)' },
      /schedule must have "\?"/,
    ],
    [
      'an empty schedule',
      { bigstateHost: HOST, principals: 'a', schedule: '' },
      /schedule must not be empty/,
    ],
    [
      'a bad e-mail in a comma list',
      { bigstateHost: HOST, principals: 'a', notificationEmails: 'ops@example.com, nope' },
      /notificationEmails\[1\] holds "nope", which is not an e-mail address/,
    ],
    [
      'a bad e-mail in a JSON array',
      { bigstateHost: HOST, principals: 'a', notificationEmails: '["ops@"]' },
      /notificationEmails\[0\] holds "ops@"/,
    ],
    [
      'bad e-mail JSON',
      { bigstateHost: HOST, principals: 'a', notificationEmails: '["ops@example.com"' },
      /notificationEmails is not a valid JSON array/,
    ],
    [
      'an e-mail listed twice',
      { bigstateHost: HOST, principals: 'a', notificationEmails: ['a@example.com', 'a@example.com'] },
      /notificationEmails lists the address "a@example.com" twice/,
    ],
    [
      'a secret ARN instead of a name',
      {
        bigstateHost: HOST,
        principals: 'a',
        apiKeySecretName: 'arn:aws:secretsmanager:eu-west-1:1:secret:x',
      },
      /apiKeySecretName must be the name \(not the ARN\)/,
    ],
  ])('rejects %s, naming the key', (_case, raw, message) => {
    const error = problemWith(raw);
    expect(error.name).toBe('ConfigurationError');
    expect(error.message).toMatch(message);
  });

  it('rejects principals too long for the Lambda environment', () => {
    const many = Array.from({ length: 200 }, (_, i) => `principal-number-${i}`);
    expect(problemWith({ bigstateHost: HOST, principals: many }).message).toMatch(
      /principals must fit in 2500 bytes/,
    );
  });

  it('reports every bad key at once', () => {
    const { message } = problemWith({
      principals: '[]',
      pattern: 'a*b',
      schedule: 'hourly',
      notificationEmails: 'x',
    });
    for (const key of ['bigstateHost', 'principals', 'pattern', 'schedule', 'notificationEmails']) {
      expect(message).toContain(`- ${key}`);
    }
  });
});

describe('readKeyAuditContext', () => {
  it('reads the keys from the CDK context', () => {
    const app = appWith({ bigstateHost: HOST, principals: '["a","b c"]', schedule: 'rate(15 minutes)' });
    expect(readKeyAuditContext(app.node)).toEqual({
      bigstateHost: HOST,
      principals: ['a', 'b c'],
      schedule: 'rate(15 minutes)',
      notificationEmails: [],
    });
  });

  it('makes the stack fail on a bad context value, naming the key', () => {
    const app = appWith({ bigstateHost: 'http://api.bigstate.dev', principals: 'a' });
    expect(() => new KeyAuditStack(app, 'Audit')).toThrow(/bigstateHost must use https/);
  });

  it('makes the stack fail on a missing context value, naming the key', () => {
    expect(() => new KeyAuditStack(appWith({ principals: 'a' }), 'Audit')).toThrow(
      /bigstateHost is required/,
    );
  });
});

describe('KeyAudit props', () => {
  it('are validated like the context, naming the prop', () => {
    expect(
      () =>
        new KeyAudit(new Stack(), 'Audit', { bigstateHost: HOST, principals: [], schedule: 'rate(1 hour)' }),
    ).toThrow(/principals must name at least one principal/);
  });

  it('refuse a heartbeat period that is not whole minutes', () => {
    expect(
      () =>
        new KeyAudit(new Stack(), 'Audit', {
          bigstateHost: HOST,
          principals: ['a'],
          heartbeatPeriod: Duration.seconds(90),
        }),
    ).toThrow(/heartbeatPeriod must be a whole number of minutes/);
  });
});
