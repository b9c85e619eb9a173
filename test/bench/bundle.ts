/**
 * Bundle benchmark: the size of the audit function's bundle as `cdk synth` builds it, and its module load
 * time on Node 24 against an empty module, each in fresh processes. The AWS SDK is provided by the Lambda
 * runtime, so it resolves from outside the bundle exactly as it does there; its own load time is measured
 * too, to tell the bundle's share from the SDK's.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { synthesizeAudit } from '../e2e/harness.js';
import { runtimeProvidedPackages } from '../e2e/support/lambda-runner.js';
import { ROOT } from '../infra/support.js';

export interface BundleFigures {
  readonly bundleBytes: number;
  readonly bundleLimitBytes: number;
  readonly emptyModuleLoadMs: number;
  readonly bundleLoadMs: number;
  readonly sdkOnlyLoadMs: number;
  /** Bundle load minus the SDK's: what this project's own code costs. */
  readonly ownLoadMs: number;
  readonly loadLimitMs: number;
  readonly runs: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};

/** Imports `file` in a fresh Node process and returns how long the import took, in ms. */
function loadTime(file: string, env: Record<string, string>): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(file)}); process.stdout.write(String(performance.now() - t));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`loading ${file} failed: ${result.stderr}`);
  return Number(result.stdout);
}

export function benchBundle(runs = 7): BundleFigures {
  const audit = synthesizeAudit({ bigstateHost: 'https://api.bigstate.dev', principals: ['root'] });
  const bundle = join(audit.bundleDir, audit.handler.replace(/\.[^.]+$/, '.mjs'));
  const bundleBytes = statSync(bundle).size;

  // A Lambda-like file system: the bundle in task/, the runtime's SDK beside it, nothing else.
  const root = mkdtempSync(join(tmpdir(), 'bigstate-bench-'));
  try {
    const task = join(root, 'task');
    cpSync(audit.bundleDir, task, { recursive: true });
    const modules = join(root, 'node_modules');
    for (const name of runtimeProvidedPackages(join(ROOT, 'node_modules'))) {
      mkdirSync(dirname(join(modules, name)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', name), join(modules, name), 'dir');
    }
    writeFileSync(join(task, 'empty.mjs'), 'export {};\n');
    writeFileSync(
      join(task, 'sdk-only.mjs'),
      ['client-s3', 'client-sns', 'client-eventbridge', 'client-secrets-manager']
        .map((client) => `import '@aws-sdk/${client}';`)
        .join('\n'),
    );
    const env = {
      AWS_REGION: 'us-east-1',
      BIGSTATE_HOST: 'https://api.bigstate.dev',
      BIGSTATE_PRINCIPALS: '["root"]',
      API_KEY_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:bigstate-AbCdEf',
      SNAPSHOT_BUCKET_NAME: 'bench-bucket',
      TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:bench',
      EVENT_BUS_NAME: 'default',
      POWERTOOLS_SERVICE_NAME: 'bigstate-key-audit',
      POWERTOOLS_METRICS_NAMESPACE: 'BigStateKeyAudit',
    };
    const measure = (name: string) =>
      median(Array.from({ length: runs }, () => loadTime(join(task, name), env)));
    const emptyModuleLoadMs = measure('empty.mjs');
    const bundleLoadMs = measure('index.mjs');
    const sdkOnlyLoadMs = measure('sdk-only.mjs');
    return {
      bundleBytes,
      bundleLimitBytes: 1024 * 1024,
      emptyModuleLoadMs,
      bundleLoadMs,
      sdkOnlyLoadMs,
      ownLoadMs: bundleLoadMs - sdkOnlyLoadMs,
      loadLimitMs: 150,
      runs,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(audit.assemblyDir, { recursive: true, force: true });
  }
}
