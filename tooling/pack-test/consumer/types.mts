// The strict TypeScript consumer (ESM): the public types as a user's code sees them. Checked with
// `tsc --noEmit` under node16, nodenext and bundler resolution, strict with
// noUncheckedIndexedAccess and exactOptionalPropertyTypes, skipLibCheck off (our .d.ts files are
// checked too). `@ts-expect-error` lines prove the types are real: were anything `any`, the
// expected error would be missing and tsc would fail.
import { createSeal as createKeyFileSeal, KeyFileSeal } from "@acme/bulwark-seal-keyfile";
import { AesGcmBarrier } from "@bulwark/barrier";
import { type InitResult, SealedStore, type SealedStoreOptions, type SealStatus } from "@bulwark/core";
import { type AesKey, SecretBytes, shamirCombine, shamirSplit } from "@bulwark/crypto";
import {
  BaseSeal,
  type BlobInfo,
  createBlobInfo,
  type Seal,
  type SealEncryptOptions,
  SealError,
  SealKeyNotFoundError,
  StaticKeySeal,
} from "@bulwark/seal";
import { runSealConformance } from "@bulwark/seal/testing";
import { type AwsKmsSealOptions, createAwsKmsSeal } from "@bulwark/seal-awskms";
import { type CloudHsmSealOptions, createCloudHsmSeal } from "@bulwark/seal-cloudhsm";
import { createPkcs11Seal, type Pkcs11SealOptions } from "@bulwark/seal-pkcs11";
import { type PluginFactory, ProviderRegistry, type StartServerOptions, startServer } from "@bulwark/server";
import type { Backend, Entry, HABackend } from "@bulwark/storage";
import { runBackendConformance } from "@bulwark/storage/testing";
import { ConsulBackend } from "@bulwark/storage-consul";
import { FileBackend, type FileBackendOptions } from "@bulwark/storage-file";
import { MemoryBackend } from "@bulwark/storage-memory";

// A seal written against the public base class, as a plugin author does.
class XorFreeSeal extends BaseSeal {
  readonly type = "typed";
  readonly autoUnseal = true;
  readonly supportsSealWrap = false;
  keyId(): string {
    return "k1";
  }
  protected async doEncrypt(plaintext: Uint8Array, _opts: SealEncryptOptions): Promise<BlobInfo> {
    return createBlobInfo({ ciphertext: plaintext.slice(), keyInfo: { keyId: "k1" } });
  }
  protected async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    _opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    if (blob.keyInfo.keyId !== "k1") throw new SealKeyNotFoundError(blob.keyInfo.keyId);
    return blob.ciphertext;
  }
}

export async function usage(): Promise<string> {
  const storage: Backend = new MemoryBackend();
  const ha: HABackend = new MemoryBackend();
  const seal: Seal = new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "dev-1" });
  const options: SealedStoreOptions = { storage, seal, ha };
  const store = await SealedStore.open(options);
  const init: InitResult = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  const firstKey: string | undefined = init.recoveryKeys[0];
  const status: SealStatus = store.status();
  const threshold: number = status.t;
  const value: Uint8Array | undefined = await store.get("secret/x");
  await store.put("secret/x", new Uint8Array([1]), { sealWrap: true });
  // @ts-expect-error sealWrap is a boolean
  await store.put("secret/x", new Uint8Array([1]), { sealWrap: "yes" });
  // @ts-expect-error exactOptionalPropertyTypes: an optional option is left out, not set to undefined
  await SealedStore.open({ storage, seal: undefined });

  const entry: Entry | undefined = await storage.get("core/keyring");
  const fileOptions: FileBackendOptions = { path: "./data" };
  const file = new FileBackend(fileOptions);
  // @ts-expect-error path is required
  new FileBackend({});
  const consul: Backend = new ConsulBackend({ address: "127.0.0.1:8500" });
  const barrier = new AesGcmBarrier(storage);

  const shares: Uint8Array[] = await shamirSplit(new Uint8Array(32), 5, 3);
  const secret: Uint8Array = await shamirCombine(shares.slice(0, 3));
  const key: AesKey = SecretBytes.from(secret);

  const pkcs11: Pkcs11SealOptions = { lib: "/usr/lib/softhsm/libsofthsm2.so", slot: 0, pin: "1234" };
  const fromConfig: Seal = createPkcs11Seal({ lib: "/usr/lib/softhsm/libsofthsm2.so" }, {});
  const kms: AwsKmsSealOptions = { kmsKeyId: "alias/bulwark" };
  const kmsSeal: Seal = createAwsKmsSeal({ kms_key_id: "alias/bulwark" }, {});
  const hsm: CloudHsmSealOptions = { clusterId: "cluster-1", user: "cu", password: "pw" };
  const cloudHsmSeal: Seal = createCloudHsmSeal({ cluster_id: "cluster-1" }, {});

  // The plugin template's factory has the shape the server loads.
  const factory: PluginFactory<Seal> = createKeyFileSeal;
  const pluginSeal: Seal = createKeyFileSeal({ key_file: "/etc/bulwark/seal.key" });
  const keyFileSeal = new KeyFileSeal({ keyFile: "/etc/bulwark/seal.key", previousKeyFiles: [] });
  const registry = ProviderRegistry.withBuiltins();
  const serverOptions: StartServerOptions = { dev: true, devListenAddress: "127.0.0.1:0" };
  const start: typeof startServer = startServer;

  let err: unknown;
  if (err instanceof SealError) {
    const code: "invalid_config" | string = err.code;
    void code;
  }
  void runSealConformance;
  void runBackendConformance;
  void [firstKey, threshold, value, entry, file, consul, barrier, key, pkcs11, fromConfig, kms, kmsSeal];
  void [
    hsm,
    cloudHsmSeal,
    factory,
    pluginSeal,
    registry,
    serverOptions,
    start,
    new XorFreeSeal(),
    keyFileSeal,
  ];
  return status.type;
}
