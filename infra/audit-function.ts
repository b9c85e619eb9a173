/**
 * How every function of the audit is built: the single-mode audit function and the fan-out's plan, worker and
 * finish steps are the same kind of bundle (esbuild, ESM, Node 24 on ARM64, JSON logs), each with its own role.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICE_NAME } from './audit-metrics.js';
import type { KeyAuditConfig } from './config.js';

/** The root of this project: the bundles' project root and the home of the lock file. */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The single-mode audit function's entry, exporting `handler`. */
export const AUDIT_ENTRY = join(PROJECT_ROOT, 'functions', 'audit.ts');
/** The fan-out's entry, exporting `plan`, `worker` and `finish` (one bundle, three handlers). */
export const FAN_OUT_ENTRY = join(PROJECT_ROOT, 'functions', 'fan-out.ts');
/** Every function's timeout. */
export const FUNCTION_TIMEOUT = Duration.minutes(5);

/** The resource names the functions receive (CloudFormation references, resolved on deploy). */
export interface AuditResourceNames {
  readonly secretArn: string;
  readonly bucketName: string;
  readonly topicArn: string;
  readonly eventBusName: string;
}

/**
 * The environment every function of the audit gets: the contract's configuration (the host exactly as given,
 * the principals, the principal pattern, the pattern, the most BigState requests this function may keep open,
 * the key age limit) and the resource names. Nothing else configures the code.
 */
export function auditEnvironment(config: KeyAuditConfig, names: AuditResourceNames): Record<string, string> {
  return {
    BIGSTATE_HOST: config.bigstateHost,
    ...(config.principals.length === 0 ? {} : { BIGSTATE_PRINCIPALS: JSON.stringify(config.principals) }),
    ...(config.principalPattern === undefined ? {} : { BIGSTATE_PRINCIPAL_PATTERN: config.principalPattern }),
    ...(config.pattern === undefined ? {} : { BIGSTATE_PATTERN: config.pattern }),
    BIGSTATE_MAX_REQUESTS_IN_FLIGHT: String(config.maxRequestsInFlight),
    ...(config.maxKeyAgeDays === undefined
      ? {}
      : { BIGSTATE_MAX_KEY_AGE_DAYS: String(config.maxKeyAgeDays) }),
    API_KEY_SECRET_ARN: names.secretArn,
    SNAPSHOT_BUCKET_NAME: names.bucketName,
    TOPIC_ARN: names.topicArn,
    EVENT_BUS_NAME: names.eventBusName,
    POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
    NODE_OPTIONS: '--enable-source-maps',
  };
}

/** What a function of the audit needs beyond the shared settings; `role` and `logGroup` are its own. */
export type AuditFunctionProps = NodejsFunctionProps &
  Required<
    Pick<NodejsFunctionProps, 'description' | 'entry' | 'handler' | 'role' | 'logGroup' | 'environment'>
  >;

/**
 * A function of the audit: bundled with esbuild (no Docker) as one minified ES module with source maps, the AWS
 * SDK left to the runtime; Node 24 on ARM64; JSON logs at INFO (application) and WARN (platform); 512 MB and
 * five minutes unless `props` say otherwise. The same entry and bundling options give the same asset, bundled
 * once per synthesis.
 */
export function auditFunction(scope: Construct, id: string, props: AuditFunctionProps): NodejsFunction {
  return new NodejsFunction(scope, id, {
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
    runtime: Runtime.NODEJS_24_X,
    architecture: Architecture.ARM_64,
    memorySize: 512,
    timeout: FUNCTION_TIMEOUT,
    loggingFormat: LoggingFormat.JSON,
    applicationLogLevelV2: ApplicationLogLevel.INFO,
    systemLogLevelV2: SystemLogLevel.WARN,
    ...props,
    bundling: {
      forceDockerBundling: false,
      format: OutputFormat.ESM,
      mainFields: ['module', 'main'],
      // Some bundled dependencies are CommonJS and call `require`, which ES modules do not have.
      banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      minify: true,
      keepNames: true,
      sourceMap: true,
      sourcesContent: false,
      // The nodejs24.x runtime provides the AWS SDK v3.
      externalModules: ['@aws-sdk/*'],
    },
  });
}
