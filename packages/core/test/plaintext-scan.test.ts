import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "@bulwark/crypto";
import { parseSealWrapped, StaticKeySeal } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import { afterAll, describe, expect, it } from "vitest";
import { SealedStore } from "../src/index.js";

// No plaintext at rest (QUALITY.md): write known secrets, plain and seal-wrapped, through the
// store on the file backend, then read every byte under the data folder (files as written and
// their decoded values): no secret, share or key may appear.

const root = mkdtempSync(join(tmpdir(), "bulwark-scan-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

/** Every file's bytes, and for Vault-format files the decoded value too. */
function storedBytes(dir: string): Array<{ file: string; bytes: Buffer }> {
  return files(dir).flatMap((file) => {
    const raw = readFileSync(file);
    const out = [{ file, bytes: raw }];
    try {
      out.push({
        file: `${file} (decoded)`,
        bytes: Buffer.from(JSON.parse(raw.toString("utf8")).Value, "base64"),
      });
    } catch {
      // not a value file
    }
    return out;
  });
}

function expectAbsent(dir: string, needles: Array<{ name: string; bytes: Uint8Array }>) {
  const haystack = storedBytes(dir);
  expect(haystack.length).toBeGreaterThan(5);
  for (const { name, bytes } of needles) {
    const forms = [
      Buffer.from(bytes),
      Buffer.from(Buffer.from(bytes).toString("hex")),
      Buffer.from(Buffer.from(bytes).toString("base64")),
    ];
    for (const { file, bytes: hay } of haystack) {
      for (const f of forms) expect(hay.includes(f), `${name} found in ${file}`).toBe(false);
    }
  }
}

const secretA = "correct-horse-battery-staple-0001";
const secretB = "wrapped-secret-value-0002-do-not-leak";

describe("no plaintext at rest on the file backend", () => {
  it("Shamir: secrets and unseal shares never reach the disk", async () => {
    const dir = join(root, "shamir");
    const store = await SealedStore.open({ storage: new FileBackend({ path: dir }) });
    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    for (const k of init.keys.slice(0, 2)) await store.unseal(k);
    await store.put("secret/data/a", new TextEncoder().encode(secretA));
    await store.put("secret/data/b", new TextEncoder().encode(secretB), { sealWrap: true });
    await store.rotate();
    await store.close();
    expectAbsent(dir, [
      { name: "secret A", bytes: new TextEncoder().encode(secretA) },
      { name: "secret B", bytes: new TextEncoder().encode(secretB) },
      ...init.keys.map((k, i) => ({ name: `unseal share ${i}`, bytes: Buffer.from(k, "hex") })),
    ]);
  });

  it("auto seal: secrets, recovery shares and the seal key never reach the disk; wrapped entries carry the 's' canary", async () => {
    const dir = join(root, "auto");
    const sealKey = randomBytes(32);
    const store = await SealedStore.open({
      storage: new FileBackend({ path: dir }),
      seal: new StaticKeySeal({ key: sealKey, keyId: "scan" }),
    });
    const init = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    await store.put("secret/data/a", new TextEncoder().encode(secretA));
    await store.put("secret/data/b", new TextEncoder().encode(secretB), { sealWrap: true });
    await store.close();
    expectAbsent(dir, [
      { name: "secret A", bytes: new TextEncoder().encode(secretA) },
      { name: "secret B", bytes: new TextEncoder().encode(secretB) },
      { name: "seal key", bytes: sealKey },
      ...init.recoveryKeys.map((k, i) => ({ name: `recovery share ${i}`, bytes: Buffer.from(k, "hex") })),
    ]);
    const decoded = (p: string) =>
      Buffer.from(JSON.parse(readFileSync(join(dir, p), "utf8")).Value, "base64");
    expect(decoded("secret/data/_b").at(-1)).toBe(0x73);
    expect(decoded("core/_keyring").at(-1)).toBe(0x73);
    expect(parseSealWrapped(decoded("secret/data/_b"))?.wrapped).toBe(true);
    expect(parseSealWrapped(decoded("core/_keyring"))?.wrapped).toBe(true);
    // Not "its last byte is not 's'": a barrier value ends with its GCM tag, whose last byte is
    // 's' once in 256 runs. A value that is not seal-wrapped does not parse as a wrapped blob.
    expect(parseSealWrapped(decoded("secret/data/_a"))).toBeUndefined();
  });
});
