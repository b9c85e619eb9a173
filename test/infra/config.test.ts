import { Duration, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import {
  CONTEXT_KEYS,
  ConfigurationError,
  EXAMPLE_COMMAND,
  isCdkContextKey,
  readKeyAuditContext,
  resolveKeyAuditConfig,
} from '../../infra/config.js';
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
      fanOut: false,
      maxRequestsInFlight: 16,
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
        principalPattern: 'svc-*',
        fanOut: true,
        maxRequestsInFlight: 4,
        maxKeyAgeDays: 90,
      }),
    ).toEqual({
      bigstateHost: 'https://bigstate.example.org/api',
      principals: ['a'],
      pattern: 'ci-*',
      schedule: 'cron(0 6 ? * MON-FRI *)',
      apiKeySecretName: 'prod/bigstate-key',
      notificationEmails: ['ops@example.com'],
      principalPattern: 'svc-*',
      fanOut: true,
      maxRequestsInFlight: 4,
      maxKeyAgeDays: 90,
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

  it('reads the later keys from text, as -c gives them', () => {
    expect(
      resolveKeyAuditConfig({
        bigstateHost: HOST,
        principals: 'a',
        fanOut: 'false',
        maxRequestsInFlight: ' 32 ',
        maxKeyAgeDays: '1',
      }),
    ).toMatchObject({ fanOut: false, maxRequestsInFlight: 32, maxKeyAgeDays: 1 });
    expect(resolveKeyAuditConfig({ bigstateHost: HOST, principals: 'a', fanOut: 'true' }).fanOut).toBe(true);
  });

  it.each(['*', 'svc-*', '*-ci', '*team*', 'root'])('accepts the principalPattern %s', (principalPattern) => {
    expect(
      resolveKeyAuditConfig({ bigstateHost: HOST, principals: 'a', principalPattern }).principalPattern,
    ).toBe(principalPattern);
  });

  it('needs no principals when a principalPattern is set (the contract), and then lists none', () => {
    expect(resolveKeyAuditConfig({ bigstateHost: HOST, principalPattern: 'svc-*' })).toMatchObject({
      principals: [],
      principalPattern: 'svc-*',
    });
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
      'fanOut not a boolean',
      { bigstateHost: HOST, principals: 'a', fanOut: 'yes' },
      /fanOut must be true or false; got "yes"/,
    ],
    [
      'fanOut as a number',
      { bigstateHost: HOST, principals: 'a', fanOut: 1 },
      /fanOut must be true or false; got 1/,
    ],
    [
      'maxRequestsInFlight of 0',
      { bigstateHost: HOST, principals: 'a', maxRequestsInFlight: '0' },
      /maxRequestsInFlight must be a whole number of at least 1; got 0/,
    ],
    [
      'a fractional maxRequestsInFlight',
      { bigstateHost: HOST, principals: 'a', maxRequestsInFlight: 1.5 },
      /maxRequestsInFlight must be a whole number of at least 1; got 1.5/,
    ],
    [
      'maxRequestsInFlight that is no number',
      { bigstateHost: HOST, principals: 'a', maxRequestsInFlight: 'many' },
      /maxRequestsInFlight must be a whole number of at least 1; got "many"/,
    ],
    [
      'a negative maxKeyAgeDays',
      { bigstateHost: HOST, principals: 'a', maxKeyAgeDays: '-3' },
      /maxKeyAgeDays must be a whole number of at least 1; got "-3"/,
    ],
    [
      'a maxKeyAgeDays in text with a unit',
      { bigstateHost: HOST, principals: 'a', maxKeyAgeDays: '90d' },
      /maxKeyAgeDays must be a whole number of at least 1; got "90d"/,
    ],
    [
      'a principalPattern with an inner *',
      { bigstateHost: HOST, principals: 'a', principalPattern: 'svc*ci' },
      /principalPattern must be one of/,
    ],
    [
      'an empty principalPattern',
      { bigstateHost: HOST, principalPattern: '' },
      /principalPattern must not be empty/,
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
      /principals must fit in 2500 bytes as JSON \(the function's environment holds 4 KB in all\): for a longer list, set principalPattern/,
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
    // An example command is for the context (readKeyAuditContext), not for a construct's props.
    expect(message).not.toContain('npx cdk deploy');
  });
});

/** The message `readKeyAuditContext` fails with for this context (plus cdk.json's feature flags). */
function contextProblem(context: Record<string, unknown>): string {
  try {
    readKeyAuditContext(appWith(context).node);
  } catch (error) {
    if (error instanceof ConfigurationError) return error.message;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(context)}`);
}

describe('readKeyAuditContext', () => {
  it('reads the keys from the CDK context', () => {
    const app = appWith({ bigstateHost: HOST, principals: '["a","b c"]', schedule: 'rate(15 minutes)' });
    expect(readKeyAuditContext(app.node)).toEqual({
      bigstateHost: HOST,
      principals: ['a', 'b c'],
      schedule: 'rate(15 minutes)',
      notificationEmails: [],
      fanOut: false,
      maxRequestsInFlight: 16,
    });
  });

  it('reads the later keys too, as -c gives them', () => {
    const app = appWith({
      bigstateHost: HOST,
      principals: 'a',
      principalPattern: 'svc-*',
      fanOut: 'true',
      maxRequestsInFlight: '8',
      maxKeyAgeDays: '90',
    });
    expect(readKeyAuditContext(app.node)).toMatchObject({
      principalPattern: 'svc-*',
      fanOut: true,
      maxRequestsInFlight: 8,
      maxKeyAgeDays: 90,
    });
  });

  it('knows exactly the keys of the contract', () => {
    expect([...CONTEXT_KEYS].sort()).toEqual(
      [
        'bigstateHost',
        'principals',
        'principalPattern',
        'pattern',
        'schedule',
        'apiKeySecretName',
        'notificationEmails',
        'fanOut',
        'maxRequestsInFlight',
        'maxKeyAgeDays',
      ].sort(),
    );
  });

  it('fails on an unknown key, naming it and the nearest valid one', () => {
    expect(contextProblem({ bigstateHost: HOST, principals: 'a', principal: 'b' })).toBe(
      'invalid configuration:\n  - unknown context key principal: did you mean principals?',
    );
  });

  it.each([
    ['bigstateHots', 'bigstateHost'],
    ['BigStateHost', 'bigstateHost'],
    ['bigstate-host', 'bigstateHost'],
    ['host', 'bigstateHost'],
    ['principal_pattern', 'principalPattern'],
    ['patern', 'pattern'],
    ['shcedule', 'schedule'],
    ['apiKeySecret', 'apiKeySecretName'],
    ['notificationEmail', 'notificationEmails'],
    ['emails', 'notificationEmails'],
    ['fanout', 'fanOut'],
    ['maxRequests', 'maxRequestsInFlight'],
    ['maxKeyAge', 'maxKeyAgeDays'],
  ])('suggests for the unknown key %s: %s', (key, near) => {
    expect(contextProblem({ bigstateHost: HOST, principals: 'a', [key]: 'x' })).toContain(
      `unknown context key ${key}: did you mean ${near}?`,
    );
  });

  it('lists the valid keys when no key is near the unknown one', () => {
    expect(contextProblem({ bigstateHost: HOST, principals: 'a', region: 'eu-west-1' })).toBe(
      `invalid configuration:\n  - unknown context key region: the valid keys are ${CONTEXT_KEYS.join(', ')}`,
    );
  });

  it('reports every unknown key, with the other problems', () => {
    const message = contextProblem({
      bigstateHost: 'http://api.bigstate.dev',
      principals: 'a',
      zz: 1,
      aa: 2,
    });
    expect(message.split('\n')).toEqual([
      'invalid configuration:',
      expect.stringMatching(/^ {2}- unknown context key aa: the valid keys are /),
      expect.stringMatching(/^ {2}- unknown context key zz: the valid keys are /),
      '  - bigstateHost must use https (plain http is accepted for loopback hosts only)',
    ]);
  });

  it("leaves CDK's own keys alone: feature flags, aws:cdk:*, cached lookups, the CLI's keys", () => {
    const cdkKeys = {
      '@aws-cdk/core:newStyleStackSynthesis': true,
      '@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver': true,
      '@some-plugin/flag': 'x',
      'aws:cdk:enable-path-metadata': true,
      'aws:cdk:bundling-stacks': ['**'],
      'acknowledged-issue-numbers': [34892],
      'cli-telemetry': false,
      'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a'],
      'hosted-zone:account=123456789012:domainName=example.com:region=eu-west-1': { Id: 'Z1' },
    };
    for (const key of Object.keys(cdkKeys)) expect(isCdkContextKey(key), key).toBe(true);
    expect(
      readKeyAuditContext(appWith({ bigstateHost: HOST, principals: 'a', ...cdkKeys }).node),
    ).toMatchObject({
      bigstateHost: HOST,
      principals: ['a'],
    });
    for (const key of [...CONTEXT_KEYS, 'principal', 'acknowledged-issues', 'telemetry']) {
      expect(isCdkContextKey(key), key).toBe(false);
    }
  });

  it('explains both required keys with an example command when neither is given', () => {
    expect(contextProblem({})).toBe(
      [
        'invalid configuration:',
        '  - bigstateHost is required: the BigState base URL, e.g. https://api.bigstate.dev',
        '  - principals is required: the principals whose keys are audited, as a comma-separated list or a JSON array (required unless principalPattern is set)',
        'Give them with -c (or in the "context" of cdk.json), for example:',
        `  ${EXAMPLE_COMMAND}`,
      ].join('\n'),
    );
    expect(EXAMPLE_COMMAND).toBe(
      'npx cdk deploy -c bigstateHost=https://api.bigstate.dev -c principals=root,svc-ci -c notificationEmails=secops@example.com',
    );
  });

  it('explains a missing principals list alone, with the example, and not when principalPattern is set', () => {
    const message = contextProblem({ bigstateHost: HOST });
    expect(message).toMatch(/^ {2}- principals is required: .*\(required unless principalPattern is set\)$/m);
    expect(message).not.toMatch(/bigstateHost is required/);
    expect(message).toContain(EXAMPLE_COMMAND);
    expect(
      readKeyAuditContext(appWith({ bigstateHost: HOST, principalPattern: '*' }).node).principals,
    ).toEqual([]);
  });

  it('gives no example command for a bad value', () => {
    expect(contextProblem({ bigstateHost: HOST, principals: 'a', fanOut: 'maybe' })).toBe(
      'invalid configuration:\n  - fanOut must be true or false; got "maybe"',
    );
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

  it('makes the stack fail on an unknown context key', () => {
    expect(
      () => new KeyAuditStack(appWith({ bigstateHost: HOST, principals: 'a', shedule: 'x' }), 'Audit'),
    ).toThrow(/unknown context key shedule: did you mean schedule\?/);
  });
});

describe('KeyAudit props', () => {
  it('need principals or a principalPattern', () => {
    expect(() => new KeyAudit(new Stack(), 'Audit', { bigstateHost: HOST })).toThrow(
      /principals is required: .*\(required unless principalPattern is set\)/,
    );
  });

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
