/**
 * An in-memory KMS behind the seal's narrow `KmsApi`, for the failures local-kms cannot produce
 * (AccessDenied on Encrypt only, KMSInvalidState, odd key specs, malformed responses) and for
 * exact call counting. Ciphertext = len(arn) || arn || iv || AES-GCM(ct||tag) with the sorted
 * encryption context as AAD, so a wrong context fails as in KMS.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type {
  KmsApi,
  KmsCallOptions,
  KmsDecryptInput,
  KmsEncryptInput,
  KmsKeyMetadata,
} from "../src/index.js";

export const FAKE_REGION = "us-west-2";
const ACCOUNT = "123456789012";

export function awsError(name: string, message = name, extra: Record<string, unknown> = {}): Error {
  const e = new Error(message) as Error & Record<string, unknown>;
  e.name = name;
  e.$fault = "client";
  e.$metadata = {
    httpStatusCode: 400,
    requestId: `req-${Math.random().toString(16).slice(2, 10)}`,
    attempts: 1,
  };
  Object.assign(e, extra);
  return e;
}

export function networkError(code: string): Error {
  const e = new Error(`connect ${code} 127.0.0.1:1`) as Error & { code: string };
  e.code = code;
  return e;
}

type Op = "describeKey" | "encrypt" | "decrypt";
type Failure = Error | ((signal: AbortSignal) => Promise<never>);

interface FakeKey {
  arn: string;
  material: Buffer;
  metadata: KmsKeyMetadata;
}

function contextAad(ctx: Record<string, string> | undefined): Buffer {
  const entries = Object.entries(ctx ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries));
}

/** A promise that only settles when the signal aborts (a KMS that never answers). */
export function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener("abort", () => {
      const e = new Error("The operation was aborted");
      e.name = "AbortError";
      reject(e);
    });
  });
}

export class FakeKms implements KmsApi {
  readonly keys = new Map<string, FakeKey>();
  readonly aliases = new Map<string, string>();
  readonly calls: Array<{ op: Op; input: unknown }> = [];
  readonly #failures: Record<Op, Failure[]> = { describeKey: [], encrypt: [], decrypt: [] };
  destroyed = 0;
  /** Overrides a response field (malformed-response tests). */
  mutateEncrypt:
    | ((out: { KeyId?: string | undefined; CiphertextBlob?: Uint8Array | undefined }) => void)
    | undefined;

  addKey(id: string, metadata: Partial<KmsKeyMetadata> = {}): string {
    const arn = `arn:aws:kms:${FAKE_REGION}:${ACCOUNT}:key/${id}`;
    this.keys.set(arn, {
      arn,
      material: randomBytes(32),
      metadata: {
        KeyId: id,
        Arn: arn,
        Enabled: true,
        KeyState: "Enabled",
        KeyUsage: "ENCRYPT_DECRYPT",
        KeySpec: "SYMMETRIC_DEFAULT",
        ...metadata,
      },
    });
    return arn;
  }

  setAlias(alias: string, id: string): void {
    this.aliases.set(alias, this.#resolve(id).arn);
  }

  setState(id: string, state: string): void {
    const k = this.#resolve(id);
    k.metadata.KeyState = state;
    k.metadata.Enabled = state === "Enabled";
  }

  /** The next calls of `op` fail with these, in order. */
  fail(op: Op, ...failures: Failure[]): void {
    this.#failures[op].push(...failures);
  }

  clearFailures(): void {
    for (const op of Object.keys(this.#failures) as Op[]) this.#failures[op] = [];
  }

  count(op: Op): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  #resolve(ref: string): FakeKey {
    const arn = ref.startsWith("alias/")
      ? this.aliases.get(ref)
      : ref.startsWith("arn:")
        ? ref
        : `arn:aws:kms:${FAKE_REGION}:${ACCOUNT}:key/${ref}`;
    const key = arn === undefined ? undefined : this.keys.get(arn);
    if (key === undefined) throw awsError("NotFoundException", `Key '${ref}' does not exist`);
    return key;
  }

  #usable(ref: string): FakeKey {
    const key = this.#resolve(ref);
    if (key.metadata.KeyState === "Disabled") throw awsError("DisabledException", `${key.arn} is disabled.`);
    if (key.metadata.KeyState !== "Enabled")
      throw awsError("KMSInvalidStateException", `${key.arn} is ${key.metadata.KeyState}`);
    return key;
  }

  async #enter(op: Op, input: unknown, { abortSignal }: KmsCallOptions): Promise<void> {
    this.calls.push({ op, input });
    const failure = this.#failures[op].shift();
    if (failure === undefined) return;
    if (failure instanceof Error) throw failure;
    // The seal always gives an injected client a signal (its backstop deadline).
    if (abortSignal === undefined) throw new Error("FakeKms: the seal passed no abortSignal");
    await failure(abortSignal);
  }

  async describeKey(
    input: { KeyId: string },
    options: KmsCallOptions,
  ): Promise<{ KeyMetadata?: KmsKeyMetadata }> {
    await this.#enter("describeKey", input, options);
    return { KeyMetadata: { ...this.#resolve(input.KeyId).metadata } };
  }

  async encrypt(input: KmsEncryptInput, options: KmsCallOptions) {
    await this.#enter("encrypt", { ...input, Plaintext: "<redacted>" }, options);
    const key = this.#usable(input.KeyId);
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", key.material, iv);
    c.setAAD(contextAad(input.EncryptionContext));
    const body = Buffer.concat([c.update(input.Plaintext), c.final(), c.getAuthTag()]);
    const arn = Buffer.from(key.arn);
    const out: { KeyId?: string | undefined; CiphertextBlob?: Uint8Array | undefined } = {
      KeyId: key.arn,
      CiphertextBlob: new Uint8Array(Buffer.concat([Buffer.from([arn.length]), arn, iv, body])),
    };
    this.mutateEncrypt?.(out);
    return out;
  }

  async decrypt(input: KmsDecryptInput, options: KmsCallOptions) {
    await this.#enter("decrypt", input, options);
    const blob = Buffer.from(input.CiphertextBlob);
    const n = blob[0] ?? 0;
    if (blob.length < 1 + n + 12 + 16) throw awsError("InvalidCiphertextException", "");
    const key = this.#usable(input.KeyId ?? blob.subarray(1, 1 + n).toString());
    const iv = blob.subarray(1 + n, 13 + n);
    const body = blob.subarray(13 + n);
    try {
      const d = createDecipheriv("aes-256-gcm", key.material, iv);
      d.setAAD(contextAad(input.EncryptionContext));
      d.setAuthTag(body.subarray(body.length - 16));
      const pt = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
      return { KeyId: key.arn, Plaintext: new Uint8Array(pt) };
    } catch {
      throw awsError("InvalidCiphertextException", "");
    }
  }

  destroy(): void {
    this.destroyed++;
  }
}
