/**
 * A local SNS that speaks the query protocol (form-encoded `Action=Publish`, XML answers): records what is
 * published and validates it as SNS does (Subject rules, the 256 KiB limit on message plus attributes, message
 * attribute names, types and values, `MessageStructure=json`).
 */
import { randomUUID } from 'node:crypto';
import {
  AwsFakeServer,
  type FakeRequest,
  type FakeResponse,
  FakeServiceError,
  newRequestId,
  type Routed,
  xmlEscape,
} from './aws-fake-server.js';

/** SNS's limit on a published message plus its attributes (names, types and values), in bytes. */
export const SNS_MAX_PUBLISH_BYTES = 256 * 1024;

/** Options of the SNS fake. */
export interface SnsFakeOptions {
  /**
   * Topic ARNs that exist; publishing to another answers NotFound. Default: any well-formed topic ARN exists.
   */
  readonly topics?: readonly string[];
  /**
   * Which characters a Subject may hold. SNS's API reference once said ASCII ("must be ASCII text that begins
   * with a letter, number, or punctuation mark"), it now says UTF-8 text; both forbid line breaks and control
   * characters and need fewer than 100 characters. `'ascii'` is the stricter of the two.
   * @default 'ascii'
   */
  readonly subjectCharset?: 'ascii' | 'utf8';
}

/** One message attribute as published. */
export interface SnsMessageAttribute {
  readonly dataType: string;
  readonly stringValue: string | undefined;
  readonly binaryValue: Buffer | undefined;
}

/** One accepted Publish. */
export interface PublishedMessage {
  readonly messageId: string;
  readonly topicArn: string;
  readonly subject: string | undefined;
  readonly message: string;
  readonly messageStructure: string | undefined;
  readonly attributes: Readonly<Record<string, SnsMessageAttribute>>;
  readonly messageGroupId: string | undefined;
  /** Message plus attributes, in bytes, as SNS counts toward its limit. */
  readonly size: number;
}

const topicArnPattern = /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/;
const attributeNamePattern = /^[A-Za-z0-9_\-.]{1,256}$/;

/** Starts an SNS fake on 127.0.0.1. */
export async function startSnsFake(options: SnsFakeOptions = {}): Promise<SnsFake> {
  return new SnsFake(options).listen();
}

/** The SNS fake; see the module comment for what it serves. */
export class SnsFake extends AwsFakeServer {
  private readonly topics: ReadonlySet<string> | undefined;
  private readonly subjectCharset: 'ascii' | 'utf8';
  private readonly published: PublishedMessage[] = [];

  constructor(options: SnsFakeOptions = {}) {
    super('sns');
    this.topics = options.topics === undefined ? undefined : new Set(options.topics);
    this.subjectCharset = options.subjectCharset ?? 'ascii';
  }

  /** The accepted messages (of one topic, or all), oldest first. */
  messages(topicArn?: string): PublishedMessage[] {
    return this.published.filter((message) => topicArn === undefined || message.topicArn === topicArn);
  }

  protected override defaultFailure(): { status: number; code: string; message: string } {
    return { status: 500, code: 'InternalError', message: 'Internal Error' };
  }

  protected override errorResponse(_request: FakeRequest, error: FakeServiceError): FakeResponse {
    const requestId = newRequestId();
    return {
      status: error.status,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...error.headers },
      body:
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error>' +
        `<Type>${error.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${xmlEscape(error.code)}</Code>` +
        `<Message>${xmlEscape(error.message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
    };
  }

  protected override route(request: FakeRequest): Routed {
    const unknown = (reason: string): Routed => ({
      kind: 'unknown',
      reason,
      status: 400,
      code: 'InvalidAction',
    });
    if (request.method !== 'POST' || request.path !== '/') {
      return unknown(`${request.method} ${request.path} is not a query-protocol call`);
    }
    if (!(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      return unknown(`content-type ${request.headers['content-type'] ?? '(none)'} is not a form`);
    }
    const form = new URLSearchParams(request.body.toString('utf8'));
    const action = form.get('Action') ?? '(none)';
    if (action !== 'Publish') {
      return unknown(`The action ${action} is not valid for this web service.`);
    }
    if (form.get('Version') !== '2010-03-31') {
      return unknown(`Publish with Version ${form.get('Version') ?? '(none)'} (SNS is 2010-03-31)`);
    }
    if (form.has('PhoneNumber')) {
      return unknown('Publish to a PhoneNumber is not served');
    }
    return {
      kind: 'operation',
      operation: 'Publish',
      input: Object.fromEntries(form),
      run: () => this.publish(form),
    };
  }

  private publish(form: URLSearchParams): FakeResponse {
    const message = form.get('Message');
    if (message === null) {
      throw new FakeServiceError(
        400,
        'ValidationError',
        "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null",
      );
    }
    const topicArn = form.get('TopicArn') ?? form.get('TargetArn');
    if (topicArn === null) {
      throw invalidParameter(
        'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter',
      );
    }
    if (!topicArnPattern.test(topicArn)) {
      throw invalidParameter('Invalid parameter: TopicArn');
    }
    if (this.topics !== undefined && !this.topics.has(topicArn)) {
      throw new FakeServiceError(404, 'NotFound', 'Topic does not exist');
    }
    if (message === '') {
      throw invalidParameter('Invalid parameter: Empty message');
    }
    const subject = form.get('Subject') ?? undefined;
    if (subject !== undefined && !isValidSubject(subject, this.subjectCharset)) {
      throw invalidParameter('Invalid parameter: Subject');
    }
    const messageStructure = form.get('MessageStructure') ?? undefined;
    if (messageStructure !== undefined) {
      checkMessageStructure(messageStructure, message);
    }
    const attributes = decodeAttributes(form);
    const size =
      Buffer.byteLength(message) +
      Object.entries(attributes).reduce(
        (sum, [name, value]) =>
          sum +
          Buffer.byteLength(name) +
          Buffer.byteLength(value.dataType) +
          (value.stringValue === undefined ? 0 : Buffer.byteLength(value.stringValue)) +
          (value.binaryValue?.length ?? 0),
        0,
      );
    if (size > SNS_MAX_PUBLISH_BYTES) {
      throw invalidParameter('Invalid parameter: Message too long');
    }
    const messageGroupId = form.get('MessageGroupId') ?? undefined;
    if (topicArn.endsWith('.fifo') && messageGroupId === undefined) {
      throw invalidParameter('Invalid parameter: The MessageGroupId parameter is required for FIFO topics');
    }
    const messageId = randomUUID();
    this.published.push({
      messageId,
      topicArn,
      subject,
      message,
      messageStructure,
      attributes,
      messageGroupId,
      size,
    });
    const requestId = newRequestId();
    return {
      status: 200,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
      body:
        '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">' +
        `<PublishResult><MessageId>${messageId}</MessageId></PublishResult>` +
        `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
    };
  }
}

/** Whether SNS accepts `subject`: 1–99 characters, no line breaks or control characters, not starting blank. */
export function isValidSubject(subject: string, charset: 'ascii' | 'utf8' = 'ascii'): boolean {
  const characters = [...subject];
  if (characters.length === 0 || characters.length >= 100 || /^\s/.test(subject)) {
    return false;
  }
  return characters.every((character) => {
    const code = character.codePointAt(0) ?? 0;
    if (charset === 'ascii') {
      return code >= 0x20 && code <= 0x7e;
    }
    return code >= 0x20 && !(code >= 0x7f && code <= 0x9f) && code !== 0x2028 && code !== 0x2029;
  });
}

function checkMessageStructure(structure: string, message: string): void {
  if (structure !== 'json') {
    throw invalidParameter('Invalid parameter: MessageStructure');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw invalidParameter('Invalid parameter: Message Structure - JSON message body failed to parse');
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    typeof (parsed as Record<string, unknown>).default !== 'string'
  ) {
    throw invalidParameter('Invalid parameter: Message Structure - No default entry in JSON message body');
  }
}

/** Decodes `MessageAttributes.entry.N.{Name,Value.DataType,Value.StringValue,Value.BinaryValue}` and validates it. */
function decodeAttributes(form: URLSearchParams): Record<string, SnsMessageAttribute> {
  const attributes: Record<string, SnsMessageAttribute> = {};
  const indexes = new Set<number>();
  for (const key of form.keys()) {
    const match = /^MessageAttributes\.entry\.(\d+)\./.exec(key);
    if (match?.[1] !== undefined) {
      indexes.add(Number(match[1]));
    }
  }
  for (const index of [...indexes].sort((a, b) => a - b)) {
    const prefix = `MessageAttributes.entry.${index}.`;
    const name = form.get(`${prefix}Name`) ?? '';
    const dataType = form.get(`${prefix}Value.DataType`);
    const stringValue = form.get(`${prefix}Value.StringValue`) ?? undefined;
    const binaryText = form.get(`${prefix}Value.BinaryValue`) ?? undefined;
    if (
      !attributeNamePattern.test(name) ||
      name.startsWith('.') ||
      name.endsWith('.') ||
      name.includes('..')
    ) {
      throw invalidParameterValue(`Invalid message attribute name ${JSON.stringify(name)}.`);
    }
    if (/^(aws|amazon)\./i.test(name)) {
      throw invalidParameterValue(`The message attribute name '${name}' uses a reserved prefix.`);
    }
    if (dataType === null) {
      throw new FakeServiceError(
        400,
        'ValidationError',
        `1 validation error detected: Value null at 'messageAttributes.${name}.member.dataType' failed to satisfy constraint: Member must not be null`,
      );
    }
    const baseType = dataType.split('.')[0];
    if (baseType !== 'String' && baseType !== 'Number' && baseType !== 'Binary') {
      throw invalidParameterValue(
        `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
      );
    }
    const field = baseType === 'Binary' ? 'BinaryValue' : 'StringValue';
    const value = baseType === 'Binary' ? binaryText : stringValue;
    if (value === undefined || value === '') {
      throw invalidParameterValue(
        `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${dataType}'.`,
      );
    }
    if ((baseType === 'Binary' ? stringValue : binaryText) !== undefined) {
      throw invalidParameterValue(
        `The message attribute '${name}' with type '${dataType}' must use field '${field}'.`,
      );
    }
    if (dataType === 'String.Array' && !isStringArrayValue(value)) {
      throw invalidParameterValue(
        `The message attribute '${name}' with type 'String.Array' must be a JSON array of strings, numbers, true, false or null.`,
      );
    }
    if (baseType === 'Number' && !Number.isFinite(Number(value))) {
      throw invalidParameterValue(
        `The message attribute '${name}' with type 'Number' has an invalid number value.`,
      );
    }
    attributes[name] = {
      dataType,
      stringValue: baseType === 'Binary' ? undefined : value,
      binaryValue: baseType === 'Binary' ? Buffer.from(value, 'base64') : undefined,
    };
  }
  return attributes;
}

function isStringArrayValue(value: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return false;
  }
  return (
    Array.isArray(parsed) &&
    parsed.every((item) => item === null || ['string', 'number', 'boolean'].includes(typeof item))
  );
}

function invalidParameter(message: string): FakeServiceError {
  return new FakeServiceError(400, 'InvalidParameter', message);
}

/** SNS's wire code for what the SDK calls InvalidParameterValueException. */
function invalidParameterValue(message: string): FakeServiceError {
  return new FakeServiceError(400, 'ParameterValueInvalid', message);
}
