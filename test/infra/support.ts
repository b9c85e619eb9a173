/**
 * Shared helpers of the infra tests: an app with the feature flags of cdk.json (as `cdk synth` has them), and
 * readers for the synthesized template.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App, type CfnElement, type Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { KeyAuditStack, type KeyAuditStackProps } from '../../infra/key-audit-stack.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The feature flags of cdk.json, without its sample configuration. */
export function featureFlags(): Record<string, unknown> {
  const context = JSON.parse(readFileSync(`${ROOT}/cdk.json`, 'utf8')).context as Record<string, unknown>;
  return Object.fromEntries(Object.entries(context).filter(([key]) => key.startsWith('@')));
}

/** An app with cdk.json's feature flags and the given context. */
export function appWith(context: Record<string, unknown>): App {
  return new App({ context: { ...featureFlags(), ...context } });
}

export interface Synthesized {
  readonly app: App;
  readonly stack: KeyAuditStack;
  readonly template: Template;
}

/** Synthesizes the stack once (this bundles the function with esbuild). */
export function synthesize(context: Record<string, unknown>, props?: KeyAuditStackProps): Synthesized {
  const app = appWith(context);
  const stack = new KeyAuditStack(app, 'Audit', props);
  return { app, stack, template: Template.fromStack(stack) };
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(stack: Stack, construct: IConstruct): string {
  const child = construct.node.defaultChild ?? construct;
  return stack.getLogicalId(child as CfnElement);
}

/**
 * An `Fn::Join` (or plain string) as text, `{Ref: X}` written `<X>` and `{Fn::GetAtt: [X, Y]}` `<X.Y>` (as
 * cdk-nag writes them), so whole strings built from tokens can be compared exactly.
 */
export function joined(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return `<${v.Ref}>`;
    const getAtt = v['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${getAtt.join('.')}>`;
    const join = v['Fn::Join'];
    if (Array.isArray(join)) {
      const [separator, parts] = join as [string, unknown[]];
      return parts.map(joined).join(separator);
    }
  }
  throw new Error(`cannot read ${JSON.stringify(value)} as text`);
}

/** The single resource of a type matching the properties, as `[logicalId, resource]`. */
export function only(
  template: Template,
  type: string,
  props: Record<string, unknown> = {},
): [string, { Properties: Record<string, unknown>; [key: string]: unknown }] {
  const found = Object.entries(template.findResources(type, { Properties: props }));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0] as [string, { Properties: Record<string, unknown> }];
}

/** Every IAM policy statement of the template, with the logical id of its policy. */
export function policyStatements(
  template: Template,
): Array<{ policy: string; Action: string | string[]; Resource: unknown; Effect: string }> {
  return Object.entries(template.findResources('AWS::IAM::Policy')).flatMap(([id, policy]) =>
    (policy.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>).map((statement) => ({
      policy: id,
      ...(statement as { Action: string | string[]; Resource: unknown; Effect: string }),
    })),
  );
}

/** Actions as a list. */
export function actionsOf(statement: { Action: string | string[] }): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

/** Every cdk-nag acknowledgement under `scope`, as `[rule id, reason]` (the `annotation::` prefix dropped). */
export function acknowledgements(scope: IConstruct): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const construct of scope.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) {
        for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
          found.push([key.replace(/^annotation::/i, ''), reason]);
        }
      }
    }
  }
  return found;
}

/** The acknowledgements cdk-nag's AwsSolutions and Serverless packs consulted for a finding of `scope`. */
export function usedAcknowledgements(scope: IConstruct): Set<string> {
  const used = new Set<string>();
  for (const pack of [new AwsSolutionsChecks(), new ServerlessChecks()]) {
    // cdk-nag asks its (private) isAcknowledged for every finding; record which acknowledgements answered.
    const spied = pack as unknown as { isAcknowledged: (node: IConstruct, ruleId: string) => boolean };
    const original = spied.isAcknowledged.bind(pack);
    spied.isAcknowledged = (node, ruleId) => {
      const answer = original(node, ruleId);
      if (answer) used.add(ruleId);
      return answer;
    };
    pack.validateScope(scope);
  }
  return used;
}
