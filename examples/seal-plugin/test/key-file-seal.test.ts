import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SealConfigError, SealKeyNotFoundError } from "@bulwark/seal";
import { configError } from "@bulwark/seal/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSeal, KEY_FILE_ENV, KeyFileSeal, keyIdOf } from "../src/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyfile-seal-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function keyFile(
  name: string,
  content: string | Uint8Array = randomBytes(32).toString("hex"),
  mode = 0o600,
) {
  const path = join(dir, name);
  await writeFile(path, content, { mode });
  await chmod(path, mode);
  return path;
}

async function initError(seal: { init(): Promise<void> }): Promise<SealConfigError> {
  const err = await seal.init().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SealConfigError);
  return err as SealConfigError;
}

describe("createSeal (the factory the server calls)", () => {
  it("reads key_file from the block, or KEYFILE_SEAL_KEY_FILE when the block has none", async () => {
    const path = await keyFile("a.key");
    const fromEnv = createSeal({}, { [KEY_FILE_ENV]: path });
    await fromEnv.init();
    const fromBlock = createSeal({ key_file: path }, {});
    await fromBlock.init();
    expect(fromEnv.keyId()).toBe(fromBlock.keyId());
    await Promise.all([fromEnv.finalize(), fromBlock.finalize()]);
  });

  it("a missing key_file names the setting and the environment variable", () => {
    const err = configError(() => createSeal({}, {}));
    expect(err.field).toBe("key_file");
    expect(err.message).toMatch(/KEYFILE_SEAL_KEY_FILE/);
  });

  it("an unknown setting is refused with the known ones (a typo is not ignored)", () => {
    const err = configError(() => createSeal({ key_flie: "/x" }, {}));
    expect(err.field).toBe("key_flie");
    expect(err.message).toMatch(/known: key_file, previous_key_files, strict_permissions/);
  });

  it("strict_permissions accepts booleans and quoted booleans only", () => {
    expect(() => createSeal({ key_file: "/x", strict_permissions: "false" }, {})).not.toThrow();
    expect(configError(() => createSeal({ key_file: "/x", strict_permissions: "no" }, {})).field).toBe(
      "strict_permissions",
    );
  });
});

describe("init resolves and proves the keys (fail fast)", () => {
  it("a missing file fails init with the setting and the path", async () => {
    const err = await initError(createSeal({ key_file: join(dir, "nope.key") }, {}));
    expect(err.field).toBe("key_file");
    expect(err.message).toMatch(/nope\.key/);
  });

  it("a file readable by others is refused with the chmod that fixes it", async () => {
    const path = await keyFile("open.key", undefined, 0o644);
    const err = await initError(createSeal({ key_file: path }, {}));
    expect(err.message).toMatch(/chmod 600/);
    const relaxed = createSeal({ key_file: path, strict_permissions: false }, {});
    await relaxed.init();
    await relaxed.finalize();
  });

  it("a key of the wrong size is refused without echoing the file", async () => {
    const path = await keyFile("short.key", "not-a-key-secret-words");
    const err = await initError(createSeal({ key_file: path }, {}));
    expect(err.message).toMatch(/must hold 32 bytes/);
    expect(err.message).not.toMatch(/secret-words/);
  });

  it("accepts raw, hex and base64 keys, and names each by its fingerprint", async () => {
    const key = randomBytes(32);
    for (const content of [key, key.toString("hex"), key.toString("base64")]) {
      const seal = new KeyFileSeal({ keyFile: await keyFile(`k-${Math.random()}`, content) });
      await seal.init();
      expect(seal.keyId()).toBe(keyIdOf(key));
      await seal.finalize();
    }
  });

  it("the same key listed twice is refused", async () => {
    const content = randomBytes(32).toString("hex");
    const a = await keyFile("a.key", content);
    const b = await keyFile("b.key", content);
    const err = await initError(createSeal({ key_file: a, previous_key_files: b }, {}));
    expect(err.field).toBe("previous_key_files[0]");
  });
});

describe("rotation", () => {
  it("a new key file is a new key id; the old file in previous_key_files still decrypts old blobs", async () => {
    const oldFile = await keyFile("old.key");
    const newFile = await keyFile("new.key");
    const before = createSeal({ key_file: oldFile }, {});
    await before.init();
    const pt = new TextEncoder().encode("root key");
    const aad = new TextEncoder().encode("core/hsm/barrier-unseal-keys");
    const blob = await before.encrypt(pt, { aad });
    await before.finalize();

    const without = createSeal({ key_file: newFile }, {});
    await without.init();
    expect(without.keyId()).not.toBe(blob.keyInfo?.keyId);
    await expect(without.decrypt(blob, { aad })).rejects.toBeInstanceOf(SealKeyNotFoundError);
    await without.finalize();

    const after = createSeal({ key_file: newFile, previous_key_files: `${oldFile}` }, {});
    await after.init();
    expect(Buffer.from(await after.decrypt(blob, { aad })).toString()).toBe("root key");
    expect((await after.encrypt(pt)).keyInfo?.keyId).toBe(after.keyId());
    await after.finalize();
  });
});
