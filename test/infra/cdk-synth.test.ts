import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './support.js';

const run = promisify(execFile);
const outdir = mkdtempSync(join(tmpdir(), 'key-audit-synth-'));
afterAll(() => rmSync(outdir, { recursive: true, force: true }));

/** The environment without any AWS credential or profile, and with no calls home from the CLI. */
function offlineEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
  return {
    ...env,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: join(outdir, 'no-credentials'),
    AWS_CONFIG_FILE: join(outdir, 'no-config'),
    CDK_DISABLE_VERSION_CHECK: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

describe('npx cdk synth', () => {
  it('synthesizes offline, without AWS credentials, from -c values', { timeout: 120_000 }, async () => {
    const { stdout } = await run(
      'npx',
      [
        'cdk',
        'synth',
        '-c',
        'bigstateHost=https://api.bigstate.dev',
        '-c',
        'principals=["a","b c"]',
        '--output',
        outdir,
        '--no-notices',
        '--quiet',
      ],
      { cwd: ROOT, env: offlineEnv(), maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stdout).not.toMatch(/error/i);
    const template = JSON.parse(readFileSync(join(outdir, 'BigStateKeyAudit.template.json'), 'utf8'));
    type Resource = {
      Type: string;
      Properties: { Environment: { Variables: Record<string, string> }; Code: { S3Key: string } };
    };
    const functions = Object.values(template.Resources as Record<string, Resource>).filter(
      (resource) => resource.Type === 'AWS::Lambda::Function',
    );
    expect(functions).toHaveLength(1);
    expect(functions[0]?.Properties.Environment.Variables).toMatchObject({
      BIGSTATE_HOST: 'https://api.bigstate.dev',
      BIGSTATE_PRINCIPALS: '["a","b c"]',
    });
    // cdk-nag ran (the app registers it) and found nothing unacknowledged.
    const report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports).toEqual([]);
    // The bundle is ESM with its source map.
    const asset = functions[0]?.Properties.Code.S3Key.replace(/\.zip$/, '');
    expect(existsSync(join(outdir, `asset.${asset}`, 'index.mjs'))).toBe(true);
    expect(existsSync(join(outdir, `asset.${asset}`, 'index.mjs.map'))).toBe(true);
  });

  it('synthesizes the fan-out offline too: -c fanOut=true with discovery alone', {
    timeout: 120_000,
  }, async () => {
    const fanOutDir = join(outdir, 'fan-out');
    const { stdout } = await run(
      'npx',
      [
        'cdk',
        'synth',
        '-c',
        'fanOut=true',
        '-c',
        'bigstateHost=https://api.bigstate.dev',
        '-c',
        'principalPattern=*',
        '--output',
        fanOutDir,
        '--no-notices',
        '--quiet',
      ],
      { cwd: ROOT, env: offlineEnv(), maxBuffer: 16 * 1024 * 1024 },
    );
    expect(stdout).not.toMatch(/error/i);
    const template = JSON.parse(readFileSync(join(fanOutDir, 'BigStateKeyAudit.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    const types = Object.values(template.Resources).map((resource) => resource.Type);
    expect(types.filter((type) => type === 'AWS::StepFunctions::StateMachine')).toHaveLength(1);
    expect(types.filter((type) => type === 'AWS::Lambda::Function')).toHaveLength(4);
    const report = JSON.parse(readFileSync(join(fanOutDir, 'validation-report.json'), 'utf8'));
    expect(report.pluginReports).toEqual([]);
  });

  /** The app alone (what `cdk synth` runs) with the context the CLI would pass: it fails before bundling. */
  async function appFailure(context: Record<string, unknown>) {
    const failure = await run('npx', ['tsx', 'infra/app.ts'], {
      cwd: ROOT,
      env: { ...offlineEnv(), CDK_OUTDIR: join(outdir, 'bad'), CDK_CONTEXT_JSON: JSON.stringify(context) },
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).not.toMatch(/\n\s+at /); // a message for a person, not a stack trace
    return failure?.stderr ?? '';
  }

  it('fails on a bad context value with a message naming the key', { timeout: 60_000 }, async () => {
    const stderr = await appFailure({ bigstateHost: 'http://api.bigstate.dev', principals: '[]' });
    expect(stderr).toMatch(/bigstateHost must use https/);
    expect(stderr).toMatch(/principals must name at least one principal/);
  });

  it('fails on an unknown context key, naming the nearest valid one', { timeout: 60_000 }, async () => {
    const stderr = await appFailure({
      bigstateHost: 'https://api.bigstate.dev',
      principal: 'a',
      '@aws-cdk/core:enablePartitionLiterals': true,
      'aws:cdk:enable-path-metadata': true,
    });
    expect(stderr).toContain('unknown context key principal: did you mean principals?');
    expect(stderr).not.toMatch(/unknown context key (@|aws:)/);
  });

  it("fails with cdk.json's context alone: no host, no principals, and an example command", {
    timeout: 60_000,
  }, async () => {
    const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    };
    // cdk.json ships CDK's feature flags only: nothing deployable.
    expect(Object.keys(cdkJson.context).filter((key) => !key.startsWith('@'))).toEqual([]);
    const stderr = await appFailure(cdkJson.context);
    expect(stderr).toContain('bigstateHost is required');
    expect(stderr).toContain('principals is required');
    expect(stderr).toContain(
      'npx cdk deploy -c bigstateHost=https://api.bigstate.dev -c principals=root,svc-ci -c notificationEmails=secops@example.com',
    );
  });
});
