import {
  type BlobInfo,
  decodeBlobInfo,
  parseSealWrapped,
  SEAL_WRAP_CANARY,
  type Seal,
  SealDecryptError,
  type SealEncryptOptions,
  SealError,
  SealUnavailableError,
  ShamirSeal,
  StaticKeySeal,
} from "@bulwark/seal";
import {
  type Backend,
  type Entry,
  InvalidKeyError,
  isTransactional,
  TransactionError,
} from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SealWrapBackend } from "./seal-wrap-backend.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString();
const contains = (hay: Uint8Array, needle: Uint8Array): boolean =>
  Buffer.from(hay).includes(Buffer.from(needle));

/** Delegates to a real seal and counts provider calls. */
class CountingSeal implements Seal {
  encrypts = 0;
  decrypts = 0;
  constructor(readonly inner: Seal) {}
  get type(): string {
    return this.inner.type;
  }
  get autoUnseal(): boolean {
    return this.inner.autoUnseal;
  }
  get supportsSealWrap(): boolean {
    return this.inner.supportsSealWrap;
  }
  init(signal?: AbortSignal): Promise<void> {
    return this.inner.init(signal);
  }
  finalize(): Promise<void> {
    return this.inner.finalize();
  }
  keyId(): string {
    return this.inner.keyId();
  }
  encrypt(plaintext: Uint8Array, opts?: SealEncryptOptions): Promise<BlobInfo> {
    this.encrypts++;
    return this.inner.encrypt(plaintext, opts);
  }
  decrypt(blob: BlobInfo, opts?: SealEncryptOptions): Promise<Uint8Array> {
    this.decrypts++;
    return this.inner.decrypt(blob, opts);
  }
}

/** A backend without transactions (only the four Backend methods). */
function plainBackend(mem: MemoryBackend): Backend {
  return {
    get: (k) => mem.get(k),
    put: (e) => mem.put(e),
    delete: (k) => mem.delete(k),
    list: (p) => mem.list(p),
  };
}

async function staticSeal(
  keyId: string,
  key: Uint8Array,
  previous: Array<{ keyId: string; key: Uint8Array }> = [],
) {
  const seal = new StaticKeySeal({ key, keyId, previousKeys: previous });
  await seal.init();
  return seal;
}

async function shamirSeal(): Promise<ShamirSeal> {
  const seal = new ShamirSeal();
  seal.setKey(ShamirSeal.generateKey());
  await seal.init();
  return seal;
}

/** A barrier-shaped value: term 1 big-endian, version 2, 12-byte nonce, ct||tag — that ends in 's'. */
function barrierShaped(body: Uint8Array): Uint8Array {
  return Uint8Array.from([0x00, 0x00, 0x00, 0x01, 0x02, ...body, SEAL_WRAP_CANARY]);
}

describe("SealWrapBackend: put and get", () => {
  const keyA = StaticKeySeal.generateKey();

  it("stores sealWrap entries as protobuf(BlobInfo) || 's' and reads them back unwrapped", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", keyA));
    const secret = utf8("barrier ciphertext of a CSP");
    await swb.put({ key: "core/keyring", value: secret, sealWrap: true });

    const raw = (await mem.get("core/keyring"))?.value as Uint8Array;
    expect(raw[raw.length - 1]).toBe(0x73);
    const blob = decodeBlobInfo(raw.subarray(0, raw.length - 1));
    expect(blob.wrapped).toBe(true);
    expect(blob.keyInfo?.keyId).toBe("k1");
    expect(blob.valuePath).toBe("");
    expect(blob.plaintext.length).toBe(0);
    expect(contains(raw, secret)).toBe(false);

    expect(await swb.get("core/keyring")).toEqual({ key: "core/keyring", value: secret, sealWrap: true });
  });

  it("stores entries without sealWrap unchanged, and they do not parse as wrapped", async () => {
    const mem = new MemoryBackend();
    const seal = new CountingSeal(await staticSeal("k1", keyA));
    const swb = new SealWrapBackend(mem, seal);
    const value = utf8("plain barrier ciphertext");
    await swb.put({ key: "logical/abc", value });
    await swb.put({ key: "logical/def", value, sealWrap: false });
    expect((await mem.get("logical/abc"))?.value).toEqual(value);
    expect((await mem.get("logical/def"))?.value).toEqual(value);
    expect(parseSealWrapped((await mem.get("logical/abc"))?.value as Uint8Array)).toBeUndefined();
    expect((await swb.get("logical/abc"))?.value).toEqual(value);
    expect(seal.encrypts + seal.decrypts).toBe(0);
  });

  it("a Shamir seal leaves sealWrap entries unwrapped (Vault seal-wraps only with auto seals)", async () => {
    const mem = new MemoryBackend();
    const seal = new CountingSeal(await shamirSeal());
    const swb = new SealWrapBackend(mem, seal);
    const value = utf8("keyring");
    await swb.put({ key: "core/keyring", value, sealWrap: true });
    expect((await mem.get("core/keyring"))?.value).toEqual(value);
    expect(seal.encrypts).toBe(0);
  });

  it("get of a missing key is undefined; delete and list pass through", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", keyA));
    expect(await swb.get("nope")).toBeUndefined();
    await swb.put({ key: "a/b", value: utf8("1"), sealWrap: true });
    await swb.put({ key: "a/c/d", value: utf8("2") });
    expect(await swb.list("a/")).toEqual(["b", "c/"]);
    await swb.delete("a/b");
    expect(await mem.get("a/b")).toBeUndefined();
  });

  it("put validates the key before spending a seal call", async () => {
    const seal = new CountingSeal(await staticSeal("k1", keyA));
    const swb = new SealWrapBackend(new MemoryBackend(), seal);
    await expect(swb.put({ key: "../escape", value: utf8("x"), sealWrap: true })).rejects.toBeInstanceOf(
      InvalidKeyError,
    );
    expect(seal.encrypts).toBe(0);
  });

  it("lazy upgrade: values written without wrap stay readable after wrap is turned on, and vice versa", async () => {
    const mem = new MemoryBackend();
    const seal = await staticSeal("k1", keyA);
    const swb = new SealWrapBackend(mem, seal);
    await swb.put({ key: "mount/config", value: utf8("v1") }); // before seal wrap was enabled
    expect(text((await swb.get("mount/config"))?.value as Uint8Array)).toBe("v1");
    await swb.put({ key: "mount/config", value: utf8("v2"), sealWrap: true }); // rewritten with wrap on
    expect(parseSealWrapped((await mem.get("mount/config"))?.value as Uint8Array)).toBeDefined();
    expect(await swb.get("mount/config")).toMatchObject({ value: utf8("v2"), sealWrap: true });
    await swb.put({ key: "mount/config", value: utf8("v3") }); // wrap turned off again
    expect((await mem.get("mount/config"))?.value).toEqual(utf8("v3"));
    expect(text((await swb.get("mount/config"))?.value as Uint8Array)).toBe("v3");
  });

  it("plain barrier-shaped values ending in 's' are returned untouched (fast-check)", async () => {
    const mem = new MemoryBackend();
    const seal = new CountingSeal(await staticSeal("k1", keyA));
    const swb = new SealWrapBackend(mem, seal);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (body) => {
        const value = barrierShaped(body);
        expect(parseSealWrapped(value)).toBeUndefined();
        await swb.put({ key: "logical/x", value });
        expect((await swb.get("logical/x"))?.value).toEqual(value);
      }),
      { numRuns: 500 },
    );
    expect(seal.decrypts).toBe(0);
  });

  it("any value starting with a 0x00 byte is never taken for a wrapped value (fast-check)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (rest) => {
        expect(parseSealWrapped(Uint8Array.from([0x00, ...rest, SEAL_WRAP_CANARY]))).toBeUndefined();
      }),
      { numRuns: 1000 },
    );
  });

  it("a wrapped value whose seal cannot decrypt → SealDecryptError naming the storage key and the seal key", async () => {
    const mem = new MemoryBackend();
    await new SealWrapBackend(mem, await staticSeal("k1", keyA)).put({
      key: "core/recovery-key",
      value: utf8("r"),
      sealWrap: true,
    });
    const other = new SealWrapBackend(mem, await staticSeal("k2", StaticKeySeal.generateKey()));
    const err = await other.get("core/recovery-key").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealDecryptError);
    expect((err as SealDecryptError).keyId).toBe("k1");
    expect((err as Error).message).toContain('"core/recovery-key"');
    expect((err as Error).message).toContain('seal key "k1"');
    expect((err as Error).message).toContain('current key is "k2"');
  });

  it("a seal that is unavailable is reported as such, not as a decrypt failure", async () => {
    const mem = new MemoryBackend();
    await new SealWrapBackend(mem, await staticSeal("k1", keyA)).put({
      key: "x",
      value: utf8("r"),
      sealWrap: true,
    });
    const shamir = new ShamirSeal();
    await shamir.init();
    await expect(new SealWrapBackend(mem, shamir).get("x")).rejects.toBeInstanceOf(SealUnavailableError);
  });

  it("a tampered wrapped value fails with SealDecryptError, never a wrong value", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", keyA));
    await swb.put({ key: "x", value: utf8("0123456789abcdef"), sealWrap: true });
    const raw = (await mem.get("x"))?.value as Uint8Array;
    const blob = parseSealWrapped(raw) as BlobInfo;
    // Flip bytes inside the ciphertext field (found by content, so the protobuf framing stays valid).
    const at = Buffer.from(raw).indexOf(Buffer.from(blob.ciphertext));
    for (const i of [at, at + 12, at + blob.ciphertext.length - 1]) {
      const tampered = new Uint8Array(raw);
      tampered[i] = (tampered[i] as number) ^ 0x01;
      await mem.put({ key: "x", value: tampered });
      await expect(swb.get("x")).rejects.toBeInstanceOf(SealDecryptError);
    }
  });

  it("constructor rejects things that are not a Backend or a Seal", async () => {
    const seal = await staticSeal("k1", keyA);
    expect(() => new SealWrapBackend({} as Backend, seal)).toThrow(/missing get\(\)/);
    expect(() => new SealWrapBackend(new MemoryBackend(), {} as Seal)).toThrow(/missing encrypt\(\)/);
  });
});

describe("SealWrapBackend: transactions", () => {
  const key = StaticKeySeal.generateKey();

  it("is transactional exactly when the inner backend is, with the inner limits", async () => {
    const seal = await staticSeal("k1", key);
    const mem = new MemoryBackend({ transactionLimits: { maxEntries: 10, maxBytes: 4096 } });
    const txn = new SealWrapBackend(mem, seal);
    expect(isTransactional(txn)).toBe(true);
    expect(txn.transactionLimits).toBe(mem.transactionLimits);
    expect(isTransactional(new SealWrapBackend(plainBackend(mem), seal))).toBe(false);
  });

  it("wraps sealWrap puts inside a transaction", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", key));
    await swb.transaction?.([
      { op: "put", entry: { key: "a", value: utf8("wrapped"), sealWrap: true } },
      { op: "put", entry: { key: "b", value: utf8("plain") } },
    ]);
    expect(parseSealWrapped((await mem.get("a"))?.value as Uint8Array)).toBeDefined();
    expect((await mem.get("b"))?.value).toEqual(utf8("plain"));
    expect(text((await swb.get("a"))?.value as Uint8Array)).toBe("wrapped");
  });

  it("a check compares the unwrapped value, so it passes for wrapped entries holding it", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", key));
    await swb.put({ key: "a", value: utf8("v1"), sealWrap: true });
    await swb.transaction?.([
      { op: "check", key: "a", value: utf8("v1") },
      { op: "put", entry: { key: "a", value: utf8("v2"), sealWrap: true } },
    ]);
    expect(text((await swb.get("a"))?.value as Uint8Array)).toBe("v2");
  });

  it("a failed check rolls the transaction back", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", key));
    await swb.put({ key: "a", value: utf8("v1"), sealWrap: true });
    const before = (await mem.get("a"))?.value;
    const ops = [
      { op: "put" as const, entry: { key: "b", value: utf8("x") } },
      { op: "check" as const, key: "a", value: utf8("other") },
    ];
    const err = await swb.transaction?.(ops).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect((err as TransactionError).failedIndex).toBe(1);
    expect(await mem.get("b")).toBeUndefined();
    expect((await mem.get("a"))?.value).toEqual(before);
    // Checks for absence, and checks against the raw wrapped bytes, behave logically too.
    await expect(swb.transaction?.([{ op: "check", key: "a", value: undefined }])).rejects.toBeInstanceOf(
      TransactionError,
    );
    await expect(
      swb.transaction?.([{ op: "check", key: "a", value: before as Uint8Array }]),
    ).rejects.toBeInstanceOf(TransactionError);
    await expect(
      swb.transaction?.([{ op: "check", key: "missing", value: utf8("x") }]),
    ).rejects.toBeInstanceOf(TransactionError);
  });

  it("a check sees earlier puts and deletes of the same transaction", async () => {
    const mem = new MemoryBackend();
    const swb = new SealWrapBackend(mem, await staticSeal("k1", key));
    await swb.transaction?.([
      { op: "put", entry: { key: "a", value: utf8("new"), sealWrap: true } },
      { op: "check", key: "a", value: utf8("new") },
      { op: "put", entry: { key: "b", value: utf8("gone") } },
      { op: "delete", key: "b" },
      { op: "check", key: "b", value: undefined },
    ]);
    expect(text((await swb.get("a"))?.value as Uint8Array)).toBe("new");
    await expect(
      swb.transaction?.([
        { op: "put", entry: { key: "c", value: utf8("1"), sealWrap: true } },
        { op: "check", key: "c", value: utf8("2") },
      ]),
    ).rejects.toBeInstanceOf(TransactionError);
    await expect(
      swb.transaction?.([
        { op: "delete", key: "a" },
        { op: "check", key: "a", value: utf8("new") },
      ]),
    ).rejects.toBeInstanceOf(TransactionError);
    expect(await mem.get("c")).toBeUndefined();
  });
});

describe("SealWrapBackend.rewrap", () => {
  const oldKey = StaticKeySeal.generateKey();
  const newKey = StaticKeySeal.generateKey();

  async function populate(mem: Backend): Promise<Map<string, { value: string; wrapped: boolean }>> {
    const swb = new SealWrapBackend(mem, await staticSeal("v1", oldKey));
    const written = new Map<string, { value: string; wrapped: boolean }>();
    const keys = [
      "core/keyring",
      "core/master",
      "sys/policy/a",
      "sys/policy/b",
      "secret/data/x/y/z",
      "plain/one",
    ];
    for (const [i, k] of keys.entries()) {
      const wrapped = !k.startsWith("plain/");
      written.set(k, { value: `value ${i}`, wrapped });
      await swb.put({ key: k, value: utf8(`value ${i}`), sealWrap: wrapped });
    }
    return written;
  }

  it("after switching StaticKeySeal's current key, re-wraps everything and counts it", async () => {
    const mem = new MemoryBackend();
    const written = await populate(mem);
    const rotated = await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]);
    const swb = new SealWrapBackend(mem, rotated);
    const progress: number[] = [];
    const result = await swb.rewrap("", (p) => progress.push(p.processed));
    expect(result).toEqual({ processed: 6, rewrapped: 5, failed: 0, failedKeys: [] });
    expect(progress.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);

    // Every wrapped value now names v2, and a seal that only knows v2 reads everything.
    const onlyNew = new SealWrapBackend(mem, await staticSeal("v2", newKey));
    for (const [k, { value, wrapped }] of written) {
      const raw = (await mem.get(k))?.value as Uint8Array;
      expect(parseSealWrapped(raw)?.keyInfo?.keyId).toBe(wrapped ? "v2" : undefined);
      expect(text((await onlyNew.get(k))?.value as Uint8Array)).toBe(value);
    }

    // Nothing left to do the second time.
    expect(await swb.rewrap()).toEqual({ processed: 6, rewrapped: 0, failed: 0, failedKeys: [] });
  });

  it("limits the walk to a prefix", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const swb = new SealWrapBackend(mem, await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]));
    expect(await swb.rewrap("sys/")).toEqual({ processed: 2, rewrapped: 2, failed: 0, failedKeys: [] });
    expect(parseSealWrapped((await mem.get("core/keyring"))?.value as Uint8Array)?.keyInfo?.keyId).toBe("v1");
  });

  it("works on a non-transactional backend", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const swb = new SealWrapBackend(
      plainBackend(mem),
      await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]),
    );
    expect(await swb.rewrap("", undefined, { concurrency: 1 })).toMatchObject({ processed: 6, rewrapped: 5 });
  });

  it("counts entries it cannot decrypt as failed and leaves them unchanged", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const stranger = StaticKeySeal.generateKey();
    await new SealWrapBackend(mem, await staticSeal("v0", stranger)).put({
      key: "core/lost",
      value: utf8("?"),
      sealWrap: true,
    });
    const before = (await mem.get("core/lost"))?.value;
    const swb = new SealWrapBackend(mem, await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]));
    const result = await swb.rewrap();
    expect(result).toEqual({ processed: 7, rewrapped: 5, failed: 1, failedKeys: ["core/lost"] });
    expect((await mem.get("core/lost"))?.value).toEqual(before);
  });

  it("never overwrites a write that lands between its read and its rewrite", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const writer = new SealWrapBackend(mem, await staticSeal("v1", oldKey));
    let raced = false;
    // Storage whose get lets a concurrent writer in right after the rewrap read core/keyring.
    const racy: Backend & Pick<MemoryBackend, "transaction" | "transactionLimits"> = {
      get: async (k) => {
        const e = await mem.get(k);
        if (k === "core/keyring" && !raced) {
          raced = true;
          await writer.put({ key: k, value: utf8("newer"), sealWrap: true });
        }
        return e as Entry | undefined;
      },
      put: (e) => mem.put(e),
      delete: (k) => mem.delete(k),
      list: (p) => mem.list(p),
      transaction: (ops) => mem.transaction(ops),
      transactionLimits: mem.transactionLimits,
    };
    const swb = new SealWrapBackend(racy, await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]));
    const result = await swb.rewrap("core/");
    expect(raced).toBe(true);
    expect(result).toMatchObject({ processed: 2, rewrapped: 1, failed: 0 });
    expect(text((await writer.get("core/keyring"))?.value as Uint8Array)).toBe("newer");
  });

  it("on a non-transactional backend, a write that lands while the entry is being re-wrapped is not overwritten", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const writer = new SealWrapBackend(mem, await staticSeal("v1", oldKey));
    const rotated = await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]);
    let raced = false;
    // The seal round trip (an HSM/KMS call in production) is where the time goes: a user write
    // lands while rewrap is re-encrypting core/keyring.
    const slowSeal = new CountingSeal(rotated);
    const encrypt = slowSeal.encrypt.bind(slowSeal);
    slowSeal.encrypt = async (pt, opts) => {
      const blob = await encrypt(pt, opts);
      if (!raced) {
        raced = true;
        await writer.put({ key: "core/keyring", value: utf8("newer"), sealWrap: true });
      }
      return blob;
    };
    const swb = new SealWrapBackend(plainBackend(mem), slowSeal);
    const result = await swb.rewrap("core/", undefined, { concurrency: 1 });
    expect(raced).toBe(true);
    expect(result).toMatchObject({ processed: 2, rewrapped: 1, failed: 0 });
    expect(text((await writer.get("core/keyring"))?.value as Uint8Array)).toBe("newer");
  });

  it("refuses to run with a seal that does not support seal wrap", async () => {
    const swb = new SealWrapBackend(new MemoryBackend(), await shamirSeal());
    const err = await swb.rewrap().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealError);
    expect((err as SealError).code).toBe("unsupported_operation");
  });

  it("stops when its signal aborts, and when onProgress throws", async () => {
    const mem = new MemoryBackend();
    await populate(mem);
    const seal = await staticSeal("v2", newKey, [{ keyId: "v1", key: oldKey }]);
    const controller = new AbortController();
    const reason = new Error("operator cancelled");
    let seen = 0;
    const aborted = new SealWrapBackend(mem, seal).rewrap(
      "",
      () => {
        seen++;
        controller.abort(reason);
      },
      { signal: controller.signal, concurrency: 1 },
    );
    await expect(aborted).rejects.toBe(reason);
    expect(seen).toBe(1);
    const boom = new Error("progress sink failed");
    await expect(
      new SealWrapBackend(mem, seal).rewrap("", () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });
});

describe("SealWrapBackend disabled (Vault Enterprise's disable_sealwrap)", () => {
  it("wraps nothing new, still reads what was wrapped, and a rewrap unwraps it all", async () => {
    const mem = new MemoryBackend();
    const seal = await staticSeal("k1", StaticKeySeal.generateKey());
    const body = barrierShaped(utf8("old secret"));
    await new SealWrapBackend(mem, seal).put({ key: "logical/a", value: body, sealWrap: true });
    expect(parseSealWrapped((await mem.get("logical/a"))?.value as Uint8Array)).toBeDefined();

    const off = new SealWrapBackend(mem, seal, { disabled: true });
    const fresh = barrierShaped(utf8("new secret"));
    await off.put({ key: "logical/b", value: fresh, sealWrap: true });
    // Stored as the barrier wrote it: what a server without seal wrap (OpenBao) reads.
    expect((await mem.get("logical/b"))?.value).toEqual(fresh);
    expect((await off.get("logical/a"))?.value).toEqual(body);

    const result = await off.rewrap();
    expect(result).toMatchObject({ rewrapped: 1, failed: 0 });
    expect((await mem.get("logical/a"))?.value).toEqual(body);
    expect(parseSealWrapped((await mem.get("logical/a"))?.value as Uint8Array)).toBeUndefined();
    // Enabled again: the next write wraps once more.
    await new SealWrapBackend(mem, seal).put({ key: "logical/b", value: fresh, sealWrap: true });
    expect(parseSealWrapped((await mem.get("logical/b"))?.value as Uint8Array)).toBeDefined();
  });
});
