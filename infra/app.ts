/**
 * The CDK app (`cdk.json`: `npx tsx infra/app.ts`): one key audit stack, checked by cdk-nag.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { ConfigurationError } from './config.js';
import { KeyAuditStack } from './key-audit-stack.js';

const app = new App();
// Any finding that is not acknowledged (with its reason, next to the resource) fails `cdk synth`.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));

try {
  new KeyAuditStack(app, 'BigStateKeyAudit');
} catch (error) {
  if (!(error instanceof ConfigurationError)) throw error;
  // A configuration mistake is the user's to fix: the message names the key; a stack trace would only hide it.
  console.error(`cdk synth: ${error.message}`);
  process.exit(1);
}
