/**
 * cdk-nag acknowledgements, kept next to the resources they concern.
 */
import { Validations } from 'aws-cdk-lib';
import type { Construct } from 'constructs';

/** cdk-nag acknowledgements, each a rule (or finding) id with its own reason, on the narrowest scope. */
export function acknowledge(scope: Construct, reasons: Readonly<Record<string, string>>): void {
  for (const [id, reason] of Object.entries(reasons)) Validations.of(scope).acknowledge({ id, reason });
}
