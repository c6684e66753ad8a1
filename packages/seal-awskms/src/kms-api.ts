import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  KMSClient,
  type KMSClientConfig,
} from "@aws-sdk/client-kms";
import type { ResolvedAwsKmsSealOptions } from "./options.js";

/** Per-call options every {@link KmsApi} method receives. */
export interface KmsCallOptions {
  /** Fires on the per-attempt timeout or when the caller gives up; the call should stop. */
  abortSignal: AbortSignal;
}

/** The subset of `KeyMetadata` the seal reads. */
export interface KmsKeyMetadata {
  KeyId?: string | undefined;
  Arn?: string | undefined;
  Enabled?: boolean | undefined;
  KeyState?: string | undefined;
  KeyUsage?: string | undefined;
  KeySpec?: string | undefined;
  CustomerMasterKeySpec?: string | undefined;
  DeletionDate?: Date | undefined;
}

export interface KmsEncryptInput {
  KeyId: string;
  Plaintext: Uint8Array;
  EncryptionContext?: Record<string, string>;
}

export interface KmsDecryptInput {
  CiphertextBlob: Uint8Array;
  KeyId?: string;
  EncryptionContext?: Record<string, string>;
}

/**
 * The narrow, structural view of AWS KMS the seal needs (go-kms-wrapping's `KmsApi`). The default
 * implementation wraps `@aws-sdk/client-kms`; tests pass their own to produce failures an
 * emulator cannot (AccessDenied, KMSInvalidState, a missing response field).
 *
 * Failures are thrown as AWS SDK errors are: `name` is the AWS error code
 * (`"ThrottlingException"`, `"NotFoundException"`), `$metadata.requestId` the request id; network
 * errors carry a Node `code` (`"ECONNRESET"`).
 */
export interface KmsApi {
  describeKey(
    input: { KeyId: string },
    options: KmsCallOptions,
  ): Promise<{ KeyMetadata?: KmsKeyMetadata | undefined }>;
  encrypt(
    input: KmsEncryptInput,
    options: KmsCallOptions,
  ): Promise<{ KeyId?: string | undefined; CiphertextBlob?: Uint8Array | undefined }>;
  decrypt(
    input: KmsDecryptInput,
    options: KmsCallOptions,
  ): Promise<{ KeyId?: string | undefined; Plaintext?: Uint8Array | undefined }>;
  /** Releases sockets; called by the seal at `finalize()` for clients it created. */
  destroy?(): void;
}

/** Wraps an `@aws-sdk/client-kms` client as a {@link KmsApi}. */
export function kmsApiFromClient(client: KMSClient): KmsApi {
  return {
    describeKey: (input, { abortSignal }) => client.send(new DescribeKeyCommand(input), { abortSignal }),
    encrypt: (input, { abortSignal }) => client.send(new EncryptCommand(input), { abortSignal }),
    decrypt: (input, { abortSignal }) => client.send(new DecryptCommand(input), { abortSignal }),
    destroy: () => client.destroy(),
  };
}

/**
 * Client configuration for the resolved options. The SDK's own retries are off (`maxAttempts: 1`):
 * the seal retries itself, with its own bound, so the two never multiply.
 *
 * The credential options the SDK's default chain understands (`profile`, `filepath`, `roleArn`,
 * `webIdentityTokenFile`, `roleSessionName`) are passed through the client configuration, which
 * the SDK hands to its default credential provider.
 */
export function kmsClientConfig(opts: ResolvedAwsKmsSealOptions, region: string): KMSClientConfig {
  const config: KMSClientConfig & Record<string, unknown> = {
    region,
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: opts.requestTimeoutMs,
      connectionTimeout: Math.min(opts.requestTimeoutMs, 5_000),
    },
  };
  if (opts.endpoint !== undefined) config.endpoint = opts.endpoint;
  if (opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined) {
    config.credentials = {
      accessKeyId: opts.accessKeyId,
      secretAccessKey: opts.secretAccessKey,
      ...(opts.sessionToken !== undefined ? { sessionToken: opts.sessionToken } : {}),
    };
  }
  if (opts.sharedCredsProfile !== undefined) config.profile = opts.sharedCredsProfile;
  if (opts.sharedCredsFile !== undefined) config.filepath = opts.sharedCredsFile;
  if (opts.roleArn !== undefined) config.roleArn = opts.roleArn;
  if (opts.webIdentityTokenFile !== undefined) config.webIdentityTokenFile = opts.webIdentityTokenFile;
  if (opts.roleSessionName !== undefined) config.roleSessionName = opts.roleSessionName;
  return config;
}

/**
 * The region the SDK would pick from its own sources (`AWS_REGION`, the shared config file's
 * profile), or undefined when none names one.
 */
export async function sdkDefaultRegion(profile: string | undefined): Promise<string | undefined> {
  const probe = new KMSClient(profile === undefined ? {} : { profile });
  try {
    const region = await probe.config.region();
    return typeof region === "string" && region !== "" ? region : undefined;
  } catch {
    return undefined;
  } finally {
    probe.destroy();
  }
}
