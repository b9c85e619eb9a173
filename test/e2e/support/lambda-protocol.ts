/** The messages between the Lambda runner (parent) and its bootstrap (child), over the child's IPC channel. */

/** An error as the Lambda runtime reports it in an invocation's response. */
export interface LambdaErrorPayload {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace?: readonly string[];
}

/** Parent to child. */
export type ParentMessage =
  | {
      readonly type: 'init';
      /** Written alone on a line to stdout and stderr when the init phase's output is complete. */
      readonly marker: string;
    }
  | {
      readonly type: 'invoke';
      readonly requestId: string;
      /** The event, as the JSON text Lambda would pass. */
      readonly eventJson: string;
      /** Epoch ms at which the invocation times out. */
      readonly deadlineMs: number;
      readonly invokedFunctionArn: string;
      readonly traceId: string;
      readonly marker: string;
    };

/** Child to parent. */
export type ChildMessage =
  | { readonly type: 'ready'; readonly nodeVersion: string }
  | { readonly type: 'init-error'; readonly error: LambdaErrorPayload }
  | {
      readonly type: 'result';
      readonly requestId: string;
      /** The handler's value as JSON text (Lambda's serialisation), when it succeeded. */
      readonly resultJson?: string;
      readonly error?: LambdaErrorPayload;
      /** The process is about to exit (uncaught exception, unhandled rejection): the next invoke is cold. */
      readonly fatal: boolean;
    };
