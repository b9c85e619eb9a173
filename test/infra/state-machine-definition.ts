/**
 * The fan-out state machine's definition as CloudFormation would hand it to Step Functions: the template's
 * `DefinitionString` (an `Fn::Join` of text, `Ref`s and `Fn::GetAtt`s) with each reference replaced by a value
 * the caller chooses (placeholders for the validator, the local fakes' names for a local run), parsed as JSON.
 */

/** One resource of a CloudFormation template. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

/** A CloudFormation reference in the definition: `Ref` of a resource or pseudo parameter, or `Fn::GetAtt`. */
export type Reference =
  | { readonly kind: 'ref'; readonly name: string }
  | { readonly kind: 'getAtt'; readonly name: string; readonly attribute: string };

/** An Amazon States Language state (only the fields the tests read are typed). */
export interface AslState {
  readonly Type: string;
  readonly [field: string]: unknown;
}

/** An Amazon States Language definition. */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, AslState>>;
  readonly TimeoutSeconds?: number;
  readonly [field: string]: unknown;
}

/** The template's state machines, by logical id. */
export function stateMachines(
  resources: Readonly<Record<string, TemplateResource>>,
): Array<[string, TemplateResource]> {
  return Object.entries(resources).filter(
    ([, resource]) => resource.Type === 'AWS::StepFunctions::StateMachine',
  );
}

/**
 * The definition of the template's one state machine, every reference resolved by `resolve`.
 * @throws when there is not exactly one state machine, or the definition holds another intrinsic function.
 */
export function stateMachineDefinition(
  resources: Readonly<Record<string, TemplateResource>>,
  resolve: (reference: Reference) => string,
): AslDefinition {
  const machines = stateMachines(resources);
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const [, machine] = machines[0] as [string, TemplateResource];
  const text = resolveText(machine.Properties?.DefinitionString, resolve);
  return JSON.parse(text) as AslDefinition;
}

/** A string of the template: plain text, or an `Fn::Join` of text and references. */
export function resolveText(value: unknown, resolve: (reference: Reference) => string): string {
  if (typeof value === 'string') return value;
  if (value !== null && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return resolve({ kind: 'ref', name: v.Ref });
    const getAtt = v['Fn::GetAtt'];
    if (Array.isArray(getAtt) && getAtt.length === 2) {
      return resolve({ kind: 'getAtt', name: String(getAtt[0]), attribute: String(getAtt[1]) });
    }
    const join = v['Fn::Join'];
    if (Array.isArray(join) && join.length === 2 && Array.isArray(join[1])) {
      return (join[1] as unknown[]).map((part) => resolveText(part, resolve)).join(String(join[0]));
    }
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)} in the definition`);
}

/** The states of a definition and of every Map's ItemProcessor (or Iterator) in it, by name. */
export function allStates(definition: AslDefinition): Record<string, AslState> {
  const found: Record<string, AslState> = {};
  const visit = (states: Readonly<Record<string, AslState>>) => {
    for (const [name, state] of Object.entries(states)) {
      found[name] = state;
      const processor = (state.ItemProcessor ?? state.Iterator) as AslDefinition | undefined;
      if (processor !== undefined) visit(processor.States);
      for (const branch of (state.Branches ?? []) as AslDefinition[]) visit(branch.States);
    }
  };
  visit(definition.States);
  return found;
}
