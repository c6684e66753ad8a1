/**
 * What the seal concludes from KMS's answers about its key: whether DescribeKey's metadata names
 * a key the seal can use (and, if not, what to fix), and whether the key a blob records is the
 * one KMS decrypted it with.
 */
import { AwsKmsError, type AwsKmsErrorDetails, AwsKmsKeyStateError, type KmsOperation } from "./errors.js";
import type { KmsKeyMetadata } from "./kms-api.js";

/** Error details for a KMS answer the seal cannot use (the call itself succeeded, first time). */
export function invalidResponse(operation: KmsOperation): AwsKmsErrorDetails {
  return {
    operation,
    awsErrorName: "InvalidResponse",
    requestId: undefined,
    httpStatusCode: undefined,
    attempts: 1,
  };
}

/**
 * The key ARN of DescribeKey's answer for the `configured` key, once it is shown to be an
 * Enabled symmetric ENCRYPT_DECRYPT key; otherwise an error saying what to fix. `where` names
 * the endpoint/region for the message.
 */
export function checkKeyMetadata(
  md: KmsKeyMetadata | undefined,
  configured: string,
  where: () => string,
): string {
  if (md === undefined || typeof md.Arn !== "string" || md.Arn === "") {
    throw new AwsKmsError(
      "provider_failed",
      `KMS DescribeKey for ${configured} returned no key ARN; is the endpoint (${where()}) a KMS service?`,
      { kms: invalidResponse("DescribeKey") },
    );
  }
  const arn = md.Arn;
  const state = md.KeyState ?? (md.Enabled === false ? "Disabled" : "Enabled");
  if (state !== "Enabled" || md.Enabled === false) {
    const s = state === "Enabled" ? "Disabled" : state;
    throw new AwsKmsKeyStateError(arn, keyStateMessage(arn, configured, s, md.DeletionDate), {
      keyState: s,
    });
  }
  const spec = md.KeySpec ?? md.CustomerMasterKeySpec;
  if (spec !== undefined && spec !== "SYMMETRIC_DEFAULT") {
    throw new AwsKmsKeyStateError(
      arn,
      `KMS key ${arn} is a ${spec} key: the awskms seal needs a symmetric encryption key (key spec SYMMETRIC_DEFAULT); create one with aws kms create-key and point kms_key_id at it`,
      { keyState: state },
    );
  }
  if (md.KeyUsage !== undefined && md.KeyUsage !== "ENCRYPT_DECRYPT") {
    throw new AwsKmsKeyStateError(
      arn,
      `KMS key ${arn} has key usage ${md.KeyUsage}: the awskms seal needs ENCRYPT_DECRYPT`,
      { keyState: state },
    );
  }
  return arn;
}

/** The state of a key DescribeKey reports as not usable (`Disabled`, `PendingDeletion`, …), or `undefined`. */
export function unusableKeyState(md: KmsKeyMetadata | undefined): string | undefined {
  const state = md?.KeyState ?? (md?.Enabled === false ? "Disabled" : undefined);
  if (md === undefined || state === undefined || (state === "Enabled" && md.Enabled !== false))
    return undefined;
  return state === "Enabled" ? "Disabled" : state;
}

/** A multi-Region key ARN: partition, account, `mrk-` key id (the Region may differ between copies). */
const MRK_ARN = /^arn:(aws[a-z-]*):kms:[a-z0-9-]+:(\d{12}):key\/(mrk-[0-9a-fA-F]{32})$/;

/**
 * Whether the key a blob records and the key KMS reports are the same key. Blobs record the ARN;
 * a bare key id (or an alias, which names no fixed key) is accepted when it cannot be compared.
 */
export function sameKey(recorded: string, reported: string | undefined): boolean {
  if (recorded === "" || reported === undefined || reported === "") return true;
  if (recorded === reported) return true;
  // A multi-Region key and its replicas share key id and key material: a replica in this Region
  // decrypts what another Region's copy wrapped (a DR restore), and KMS reports the replica's ARN.
  const r = MRK_ARN.exec(recorded);
  const p = MRK_ARN.exec(reported);
  if (r !== null && p !== null) return r[1] === p[1] && r[2] === p[2] && r[3] === p[3];
  if (recorded.startsWith("arn:")) return recorded.includes(":alias/");
  if (recorded.startsWith("alias/")) return true;
  return reported.endsWith(`:key/${recorded}`);
}

export function keyStateMessage(
  arn: string,
  configured: string,
  state: string,
  deletionDate: Date | undefined,
): string {
  const via = configured === arn ? "" : ` (kms_key_id ${configured})`;
  switch (state) {
    case "Disabled":
      return `KMS key ${arn}${via} is disabled: enable it (aws kms enable-key --key-id ${arn}); the store stays sealed until then`;
    case "PendingDeletion":
    case "PendingReplicaDeletion":
      return `KMS key ${arn}${via} is scheduled for deletion${deletionDate instanceof Date ? ` on ${deletionDate.toISOString()}` : ""}: cancel it now (aws kms cancel-key-deletion --key-id ${arn}, then aws kms enable-key); once deleted, everything sealed with it is lost for good`;
    case "PendingImport":
      return `KMS key ${arn}${via} has no key material yet: import it (aws kms import-key-material) before using it as a seal key`;
    case "Unavailable":
      return `KMS key ${arn}${via} is unavailable (its custom key store is disconnected): reconnect the key store`;
    case "Creating":
    case "Updating":
      return `KMS key ${arn}${via} is ${state === "Creating" ? "being created" : "being updated"}: retry in a moment`;
    default:
      return `KMS key ${arn}${via} is in state ${state}; the seal needs an Enabled key`;
  }
}
