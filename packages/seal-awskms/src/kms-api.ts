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
  /**
   * Fires on the per-attempt timeout or when the caller gives up; the call should stop. Always
   * set for an injected client; for the SDK client only when a caller's signal is in play (the
   * client enforces its own request timeout).
   */
  abortSignal?: AbortSignal | undefined;
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

function httpOptions(options: KmsCallOptions): { abortSignal?: AbortSignal } {
  return options.abortSignal === undefined ? {} : { abortSignal: options.abortSignal };
}

/** Wraps an `@aws-sdk/client-kms` client as a {@link KmsApi}. */
export function kmsApiFromClient(client: KMSClient): KmsApi {
  return {
    describeKey: (input, options) => client.send(new DescribeKeyCommand(input), httpOptions(options)),
    encrypt: (input, options) => client.send(new EncryptCommand(input), httpOptions(options)),
    decrypt: (input, options) => client.send(new DecryptCommand(input), httpOptions(options)),
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
      // A deadline for the whole attempt, as an error (the default only logs a warning).
      requestTimeout: opts.requestTimeoutMs,
      throwOnRequestTimeout: true,
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
