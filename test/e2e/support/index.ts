/**
 * Support for end-to-end tests of the deployable Lambda bundle: local fakes of S3, Secrets Manager, SNS and
 * EventBridge that speak the real wire protocols (reached by the unmodified AWS SDK through
 * `AWS_ENDPOINT_URL_<SERVICE>`), and a runner that executes the bundle as Lambda's Node.js 24 runtime does.
 */
export type {
  AwsService,
  CallInfo,
  FailureSpec,
  FailureTrigger,
  RecordedCall,
  UnknownCall,
} from './aws-fake-server.js';
export { type AwsFakes, type AwsFakesOptions, startAwsFakes } from './aws-fakes.js';
export {
  type EntryFailure,
  type EntryFailureTrigger,
  EVENTBRIDGE_CONTRACT_LIMIT,
  EVENTBRIDGE_LIMIT_SINCE_2026,
  EventBridgeFake,
  type EventBridgeFakeOptions,
  entrySize,
  type PutEventsEntry,
  type RecordedEvent,
  startEventBridgeFake,
} from './eventbridge-fake.js';
export {
  type InvocationReport,
  type InvocationResult,
  type InvokeOptions,
  jsonLogLines,
  type LambdaErrorPayload,
  LambdaRunner,
  LambdaRunnerError,
  type LambdaRunnerOptions,
  RUNTIME_PROVIDED_SCOPES,
  runtimeProvidedPackages,
  startLambdaRunner,
} from './lambda-runner.js';
export {
  S3Fake,
  type S3FakeOptions,
  type S3ObjectVersion,
  type S3PutOptions,
  startS3Fake,
} from './s3-fake.js';
export {
  SecretsManagerFake,
  type SecretsManagerFakeOptions,
  type SecretVersion,
  startSecretsManagerFake,
} from './secrets-manager-fake.js';
export {
  isValidSubject,
  type PublishedMessage,
  SNS_MAX_PUBLISH_BYTES,
  SnsFake,
  type SnsFakeOptions,
  type SnsMessageAttribute,
  startSnsFake,
} from './sns-fake.js';
