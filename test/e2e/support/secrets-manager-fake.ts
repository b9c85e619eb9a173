/**
 * A local Secrets Manager that speaks JSON 1.1 (`X-Amz-Target: secretsmanager.<Operation>`): GetSecretValue and
 * PutSecretValue, with versions and the `AWSCURRENT` / `AWSPREVIOUS` staging labels moving as on rotation.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  AwsFakeServer,
  type FakeRequest,
  type FakeResponse,
  FakeServiceError,
  jsonErrorResponse,
  jsonResponse,
  type Routed,
  routeJson11,
} from './aws-fake-server.js';

/** Options of the Secrets Manager fake. */
export interface SecretsManagerFakeOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '000000000000' */
  readonly accountId?: string;
}

/** One version of a secret. */
export interface SecretVersion {
  readonly versionId: string;
  readonly secretString: string | undefined;
  readonly secretBinary: Buffer | undefined;
  /** Staging labels; they move from version to version. */
  readonly stages: readonly string[];
  readonly createdDate: Date;
}

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  readonly versions: {
    versionId: string;
    secretString?: string;
    secretBinary?: Buffer;
    stages: string[];
    createdDate: Date;
  }[];
}

const notFoundMessage = "Secrets Manager can't find the specified secret.";

/** Starts a Secrets Manager fake on 127.0.0.1. */
export async function startSecretsManagerFake(
  options: SecretsManagerFakeOptions = {},
): Promise<SecretsManagerFake> {
  return new SecretsManagerFake(options).listen();
}

/** The Secrets Manager fake; see the module comment for what it serves. */
export class SecretsManagerFake extends AwsFakeServer {
  private readonly region: string;
  private readonly accountId: string;
  private readonly secrets = new Map<string, StoredSecret>();

  constructor(options: SecretsManagerFakeOptions = {}) {
    super('secretsmanager');
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '000000000000';
  }

  /**
   * Creates the secret `name` holding `value`, or, when it exists, adds `value` as its new `AWSCURRENT` version
   * (the old one becomes `AWSPREVIOUS`), as a rotation does. Returns the secret's ARN.
   */
  setSecret(name: string, value: string): string {
    const secret = this.secrets.get(name) ?? this.create(name);
    this.addVersion(secret, randomUUID(), { secretString: value }, ['AWSCURRENT']);
    return secret.arn;
  }

  /** Deletes a secret at once (as `ForceDeleteWithoutRecovery` would); later reads answer ResourceNotFoundException. */
  removeSecret(name: string): void {
    this.secrets.delete(name);
  }

  /** The ARN of an existing secret (`arn:aws:secretsmanager:<region>:<account>:secret:<name>-XXXXXX`). */
  arnOf(name: string): string | undefined {
    return this.secrets.get(name)?.arn;
  }

  /** The `AWSCURRENT` string of a secret, for assertions. */
  currentValue(name: string): string | undefined {
    return this.secrets.get(name)?.versions.find((version) => version.stages.includes('AWSCURRENT'))
      ?.secretString;
  }

  /** Every version of a secret, oldest first. */
  versions(name: string): SecretVersion[] {
    return (this.secrets.get(name)?.versions ?? []).map((version) => ({
      versionId: version.versionId,
      secretString: version.secretString,
      secretBinary: version.secretBinary,
      stages: [...version.stages],
      createdDate: version.createdDate,
    }));
  }

  /** How many GetSecretValue requests arrived (each SDK attempt counts, answered or failed). */
  get getSecretValueCount(): number {
    return this.calls('GetSecretValue').length;
  }

  protected override defaultFailure(): { status: number; code: string; message: string } {
    return { status: 500, code: 'InternalServiceError', message: 'An error occurred on the server side.' };
  }

  protected override errorResponse(_request: FakeRequest, error: FakeServiceError): FakeResponse {
    return jsonErrorResponse(error);
  }

  protected override route(request: FakeRequest): Routed {
    return routeJson11(request, 'secretsmanager', {
      GetSecretValue: (input) => this.getSecretValue(input),
      PutSecretValue: (input) => this.putSecretValue(input),
    });
  }

  private getSecretValue(input: Record<string, unknown>): FakeResponse {
    const secret = this.find(input.SecretId);
    const versionId = optionalString(input.VersionId, 'VersionId');
    const stage = optionalString(input.VersionStage, 'VersionStage');
    let version: StoredSecret['versions'][number] | undefined;
    if (versionId !== undefined) {
      version = secret.versions.find((candidate) => candidate.versionId === versionId);
      if (version === undefined) {
        throw new FakeServiceError(
          400,
          'ResourceNotFoundException',
          `${notFoundMessage.slice(0, -1)} value for VersionId: ${versionId}`,
        );
      }
      if (stage !== undefined && !version.stages.includes(stage)) {
        throw new FakeServiceError(
          400,
          'InvalidParameterException',
          'You provided a VersionStage that is not attached to the specified VersionId.',
        );
      }
    } else {
      const label = stage ?? 'AWSCURRENT';
      version = secret.versions.find((candidate) => candidate.stages.includes(label));
      if (version === undefined) {
        throw new FakeServiceError(
          400,
          'ResourceNotFoundException',
          `${notFoundMessage.slice(0, -1)} value for staging label: ${label}`,
        );
      }
    }
    return jsonResponse({
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      ...(version.secretString === undefined ? {} : { SecretString: version.secretString }),
      ...(version.secretBinary === undefined
        ? {}
        : { SecretBinary: version.secretBinary.toString('base64') }),
      VersionStages: [...version.stages],
      CreatedDate: version.createdDate.getTime() / 1000,
    });
  }

  private putSecretValue(input: Record<string, unknown>): FakeResponse {
    const secret = this.find(input.SecretId);
    const secretString = optionalString(input.SecretString, 'SecretString');
    const binaryText = optionalString(input.SecretBinary, 'SecretBinary');
    if ((secretString === undefined) === (binaryText === undefined)) {
      throw new FakeServiceError(
        400,
        'InvalidParameterException',
        'You must provide either SecretString or SecretBinary.',
      );
    }
    const token = optionalString(input.ClientRequestToken, 'ClientRequestToken') ?? randomUUID();
    const stagesInput = input.VersionStages;
    if (
      stagesInput !== undefined &&
      (!Array.isArray(stagesInput) || !stagesInput.every((s) => typeof s === 'string'))
    ) {
      throw new FakeServiceError(
        400,
        'InvalidParameterException',
        'VersionStages must be a list of strings.',
      );
    }
    const value = {
      ...(secretString === undefined ? {} : { secretString }),
      ...(binaryText === undefined ? {} : { secretBinary: Buffer.from(binaryText, 'base64') }),
    };
    const existing = secret.versions.find((version) => version.versionId === token);
    if (existing !== undefined) {
      const same =
        existing.secretString === value.secretString &&
        (existing.secretBinary?.equals(value.secretBinary ?? Buffer.alloc(0)) ??
          value.secretBinary === undefined);
      if (!same) {
        throw new FakeServiceError(
          400,
          'ResourceExistsException',
          "You can't modify an existing version, you can only create a new version.",
        );
      }
      return jsonResponse({
        ARN: secret.arn,
        Name: secret.name,
        VersionId: existing.versionId,
        VersionStages: existing.stages,
      });
    }
    const version = this.addVersion(
      secret,
      token,
      value,
      (stagesInput as string[] | undefined) ?? ['AWSCURRENT'],
    );
    return jsonResponse({
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      VersionStages: version.stages,
    });
  }

  private create(name: string): StoredSecret {
    const suffix = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x').slice(0, 6);
    const secret: StoredSecret = {
      name,
      arn: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${name}-${suffix}`,
      versions: [],
    };
    this.secrets.set(name, secret);
    return secret;
  }

  private addVersion(
    secret: StoredSecret,
    versionId: string,
    value: { secretString?: string; secretBinary?: Buffer },
    stages: readonly string[],
  ): StoredSecret['versions'][number] {
    for (const old of secret.versions) {
      if (stages.includes('AWSCURRENT')) {
        old.stages = old.stages.filter((stage) => stage !== 'AWSPREVIOUS');
        if (old.stages.includes('AWSCURRENT')) {
          old.stages = [...old.stages.filter((stage) => stage !== 'AWSCURRENT'), 'AWSPREVIOUS'];
        }
      }
      // A staging label is on one version at a time.
      old.stages = old.stages.filter((stage) => stage === 'AWSPREVIOUS' || !stages.includes(stage));
    }
    const version = { versionId, ...value, stages: [...stages], createdDate: new Date() };
    secret.versions.push(version);
    return version;
  }

  private find(secretId: unknown): StoredSecret {
    if (typeof secretId !== 'string' || secretId === '') {
      throw new FakeServiceError(400, 'InvalidParameterException', 'SecretId is required.');
    }
    for (const secret of this.secrets.values()) {
      // A partial ARN (without the random suffix) names the secret too.
      if (secret.name === secretId || secret.arn === secretId || secret.arn.slice(0, -7) === secretId) {
        return secret;
      }
    }
    throw new FakeServiceError(400, 'ResourceNotFoundException', notFoundMessage);
  }
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new FakeServiceError(400, 'InvalidParameterException', `${name} must be a string.`);
  }
  return value;
}
