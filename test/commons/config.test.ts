import { describe, expect, it } from 'vitest';
import { API_KEY_VARIABLE, environmentApiKey, loadLambdaConfig } from '../../functions/commons/config.js';
import { ConfigurationError } from '../../functions/commons/errors.js';

const ENV = {
  BIGSTATE_HOST: 'https://api.bigstate.dev',
  BIGSTATE_PRINCIPALS: '["root","svc a&b"]',
  BIGSTATE_PATTERN: 'ci-*',
  API_KEY_SECRET_ARN: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:bigstate-AbCdEf',
  SNAPSHOT_BUCKET_NAME: 'audit-bucket',
  TOPIC_ARN: 'arn:aws:sns:eu-central-1:123456789012:audit',
  EVENT_BUS_NAME: 'default',
};

function refusal(env: NodeJS.ProcessEnv): string {
  try {
    loadLambdaConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('expected loadLambdaConfig to throw');
}

function without(name: keyof typeof ENV): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...ENV };
  delete env[name];
  return env;
}

describe('loadLambdaConfig', () => {
  it('reads every variable', () => {
    expect(loadLambdaConfig(ENV)).toStrictEqual({
      host: 'https://api.bigstate.dev',
      principals: ['root', 'svc a&b'],
      principalPattern: undefined,
      pattern: 'ci-*',
      maxRequestsInFlight: undefined,
      maxKeyAgeDays: undefined,
      secretId: ENV.API_KEY_SECRET_ARN,
      bucketName: 'audit-bucket',
      topicArn: ENV.TOPIC_ARN,
      eventBusName: 'default',
    });
  });

  it('takes a principal pattern, and then no principal list is needed', () => {
    const config = loadLambdaConfig({
      ...without('BIGSTATE_PRINCIPALS'),
      BIGSTATE_PRINCIPAL_PATTERN: 'app-*',
    });
    expect(config).toMatchObject({ principals: [], principalPattern: 'app-*' });
    expect(refusal({ ...ENV, BIGSTATE_PRINCIPAL_PATTERN: 'a*b' })).toMatch(
      /^invalid environment: BIGSTATE_PRINCIPAL_PATTERN/,
    );
  });

  it('takes the most requests in flight as a whole number of at least 1', () => {
    expect(loadLambdaConfig({ ...ENV, BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '4' }).maxRequestsInFlight).toBe(4);
    expect(refusal({ ...ENV, BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '0' })).toMatch(
      /BIGSTATE_MAX_REQUESTS_IN_FLIGHT/,
    );
    expect(refusal({ ...ENV, BIGSTATE_MAX_REQUESTS_IN_FLIGHT: '2.5' })).toMatch(
      /BIGSTATE_MAX_REQUESTS_IN_FLIGHT/,
    );
    expect(refusal({ ...ENV, BIGSTATE_MAX_REQUESTS_IN_FLIGHT: 'many' })).toMatch(
      /BIGSTATE_MAX_REQUESTS_IN_FLIGHT/,
    );
  });

  it('keeps the host exactly as configured (a path included)', () => {
    expect(loadLambdaConfig({ ...ENV, BIGSTATE_HOST: 'https://proxy.example/bigstate' }).host).toBe(
      'https://proxy.example/bigstate',
    );
  });

  it('treats a missing or empty pattern as "all keys"', () => {
    expect(loadLambdaConfig(without('BIGSTATE_PATTERN')).pattern).toBeUndefined();
    expect(loadLambdaConfig({ ...ENV, BIGSTATE_PATTERN: '' }).pattern).toBeUndefined();
  });

  it('reads principals as a comma list too', () => {
    expect(loadLambdaConfig({ ...ENV, BIGSTATE_PRINCIPALS: 'root, zürich-ops' }).principals).toEqual([
      'root',
      'zürich-ops',
    ]);
  });

  it('reads process.env by default', () => {
    expect(() => loadLambdaConfig()).toThrow(ConfigurationError);
  });

  it.each([
    'BIGSTATE_HOST',
    'BIGSTATE_PRINCIPALS',
    'API_KEY_SECRET_ARN',
    'SNAPSHOT_BUCKET_NAME',
    'TOPIC_ARN',
    'EVENT_BUS_NAME',
  ] as const)('names %s when it is missing', (name) => {
    const unless = name === 'BIGSTATE_PRINCIPALS' ? ' (unless BIGSTATE_PRINCIPAL_PATTERN is set)' : '';
    expect(refusal(without(name))).toBe(`invalid environment: ${name} is required${unless}`);
  });

  it.each(['API_KEY_SECRET_ARN', 'SNAPSHOT_BUCKET_NAME', 'TOPIC_ARN', 'EVENT_BUS_NAME'] as const)(
    'names %s when it is empty or blank',
    (name) => {
      expect(refusal({ ...ENV, [name]: '' })).toBe(`invalid environment: ${name} is required`);
      expect(refusal({ ...ENV, [name]: '   ' })).toBe(`invalid environment: ${name} is required`);
    },
  );

  it('names a variable that is not a string (an environment built by hand)', () => {
    expect(refusal({ ...ENV, TOPIC_ARN: 42 as unknown as string })).toBe(
      'invalid environment: TOPIC_ARN must be a string',
    );
  });

  it('names BIGSTATE_HOST when it is not https on a remote host', () => {
    expect(refusal({ ...ENV, BIGSTATE_HOST: 'http://api.bigstate.dev' })).toBe(
      'invalid environment: BIGSTATE_HOST must use https (plain http is accepted for loopback hosts only)',
    );
  });

  it('names BIGSTATE_HOST when it is not a URL at all', () => {
    expect(refusal({ ...ENV, BIGSTATE_HOST: 'api.bigstate.dev' })).toBe(
      'invalid environment: BIGSTATE_HOST must be an absolute URL such as https://api.bigstate.dev',
    );
    expect(refusal({ ...ENV, BIGSTATE_HOST: '  ' })).toBe('invalid environment: BIGSTATE_HOST is required');
  });

  it('names BIGSTATE_PRINCIPALS when it lists a name twice or none', () => {
    expect(refusal({ ...ENV, BIGSTATE_PRINCIPALS: 'a,a' })).toBe(
      'invalid environment: BIGSTATE_PRINCIPALS lists "a" twice',
    );
    expect(refusal({ ...ENV, BIGSTATE_PRINCIPALS: '' })).toBe(
      'invalid environment: BIGSTATE_PRINCIPALS is required (unless BIGSTATE_PRINCIPAL_PATTERN is set)',
    );
    expect(refusal({ ...ENV, BIGSTATE_PRINCIPALS: '[]' })).toBe(
      'invalid environment: BIGSTATE_PRINCIPALS must name at least one principal',
    );
  });

  it('names BIGSTATE_PATTERN when it has a * in the middle', () => {
    expect(refusal({ ...ENV, BIGSTATE_PATTERN: 'a*b' })).toBe(
      'invalid environment: BIGSTATE_PATTERN must be one of the forms x, *x, x*, *x* (a * only at the start or end)',
    );
  });

  it('reports the first bad variable in a fixed order', () => {
    expect(refusal({})).toBe('invalid environment: BIGSTATE_HOST is required');
    expect(refusal({ BIGSTATE_HOST: ENV.BIGSTATE_HOST })).toBe(
      'invalid environment: BIGSTATE_PRINCIPALS is required (unless BIGSTATE_PRINCIPAL_PATTERN is set)',
    );
  });
});

describe('environmentApiKey', () => {
  it('reads BIGSTATE_API_KEY afresh on every call', () => {
    expect(API_KEY_VARIABLE).toBe('BIGSTATE_API_KEY');
    const env: NodeJS.ProcessEnv = { BIGSTATE_API_KEY: 'first' };
    const read = environmentApiKey(env);
    expect(read()).toBe('first');
    env.BIGSTATE_API_KEY = 'rotated';
    expect(read()).toBe('rotated');
    delete env.BIGSTATE_API_KEY;
    expect(read()).toBeUndefined();
  });
});
