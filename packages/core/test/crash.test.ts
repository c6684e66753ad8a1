import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "@bulwark/crypto";
import { ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import { afterAll, describe, expect, it } from "vitest";
import { SealedStore } from "../src/index.js";
import { runGroup } from "./support/processes.js";

// Crash consistency (QUALITY.md): a child process runs a lifecycle step on the file backend and is
// SIGKILLed before and after each of its storage writes. Reopening must always give a store that
// unseals with the old or the new keys, and every write the child acknowledged must be readable.

const child = join(import.meta.dirname, "fixtures", "crash-child.mjs");
const root = mkdtempSync(join(tmpdir(), "bulwark-crash-"));
const staticKey = randomBytes(32);
const staticHex = Buffer.from(staticKey).toString("hex");
const staticSeal = () => new StaticKeySeal({ key: staticKey, keyId: "crash-key" });
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let seq = 0;
async function run(base: string | undefined, op: string, killAt: number, phase: string, shares: string[]) {
  const dir = join(root, `run-${seq++}`);
  if (base !== undefined) cpSync(base, dir, { recursive: true });
  const out = `${dir}.out`;
  // Asynchronous and in its own process group: vitest's timeout can fire, and the child is killed
  // with its test however that ends.
  const r = await runGroup(
    process.execPath,
    [child, dir, op, String(killAt), phase, staticHex, JSON.stringify(shares), out],
    { timeoutMs: 60_000 },
  );
  const acks = existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean) : [];
  const writes = existsSync(`${out}.writes`) ? Number(readFileSync(`${out}.writes`, "utf8")) : undefined;
  return { dir, acks, writes, signal: r.signal, stderr: r.stderr };
}

/** Runs the step once to count its writes, then kills it at every write, before and after. */
async function everyKillPoint(base: string | undefined, op: string, shares: string[]) {
  const dry = await run(base, op, 0, "none", shares);
  expect(dry.stderr).toBe("");
  expect(dry.writes).toBeGreaterThan(0);
  const results = [];
  for (let k = 1; k <= (dry.writes as number); k++) {
    for (const phase of ["before", "after"]) {
      const r = await run(base, op, k, phase, shares);
      expect(r.signal, `kill at ${phase} write ${k}: ${r.stderr}`).toBe("SIGKILL");
      results.push({ ...r, point: `${phase} write ${k}/${dry.writes}` });
    }
  }
  return results;
}

async function checkAcked(store: SealedStore, acks: string[], point: string) {
  for (const a of acks) {
    const m = /^(data\/[^=]+)=(.*)$/.exec(a);
    if (m) expect(dec(await store.get(m[1] as string)), `${point}: acknowledged ${m[1]}`).toBe(m[2]);
  }
}

async function prepare(kind: "auto" | "shamir"): Promise<{ dir: string; shares: string[] }> {
  const dir = join(root, `base-${kind}-${seq++}`);
  const storage = new FileBackend({ path: dir });
  const store = await SealedStore.open(kind === "auto" ? { storage, seal: staticSeal() } : { storage });
  const init =
    kind === "auto"
      ? await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 })
      : await store.initialize({ secretShares: 3, secretThreshold: 2 });
  const shares = kind === "auto" ? init.recoveryKeys : init.keys;
  if (kind === "shamir") for (const s of shares.slice(0, 2)) await store.unseal(s);
  await store.put("data/base", new TextEncoder().encode("Z"), { sealWrap: true });
  await store.close();
  return { dir, shares };
}

describe("crash consistency on the file backend (SIGKILL at every write)", () => {
  it("init: the store is either uninitialized or initialized and auto-unseals", async () => {
    for (const r of await everyKillPoint(undefined, "init", [])) {
      const store = await SealedStore.open({ storage: new FileBackend({ path: r.dir }), seal: staticSeal() });
      const s = store.status();
      if (s.initialized) expect(s.sealed, `${r.point}: ${s.sealedReason}`).toBe(false);
      else {
        expect(r.acks).not.toContain("initialized");
        // Nothing half-written may block a new init.
        await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
        expect(store.sealed, r.point).toBe(false);
      }
      if (r.acks.includes("initialized")) expect(s.initialized).toBe(true);
      await store.close();
    }
  }, 120_000);

  it("rotate: the store auto-unseals and acknowledged writes are readable", async () => {
    const base = await prepare("auto");
    for (const r of await everyKillPoint(base.dir, "rotate", [])) {
      const store = await SealedStore.open({ storage: new FileBackend({ path: r.dir }), seal: staticSeal() });
      expect(store.sealed, `${r.point}: ${store.status().sealedReason}`).toBe(false);
      expect(dec(await store.get("data/base"))).toBe("Z");
      await checkAcked(store, r.acks, r.point);
      if (r.acks.includes("rotated")) expect(store.keyStatus().term).toBe(2);
      await store.close();
    }
  }, 120_000);

  it("rekey: the store unseals with the old shares or, once acknowledged, the new ones", async () => {
    const base = await prepare("shamir");
    for (const r of await everyKillPoint(base.dir, "rekey", base.shares)) {
      const store = await SealedStore.open({ storage: new FileBackend({ path: r.dir }) });
      const newKeys = r.acks.find((a) => a.startsWith("newkeys="));
      const status = store.status();
      if (newKeys !== undefined) {
        const keys = JSON.parse(newKeys.slice("newkeys=".length)) as string[];
        for (const k of keys.slice(0, 3)) await store.unseal(k);
      } else if (status.n === 3) {
        for (const k of base.shares.slice(1, 3)) await store.unseal(k);
      } else {
        // Killed after the rekey's last write but before the new shares reached the caller: the
        // rekey committed (Vault has the same window); the configuration must be the new one.
        expect(status, r.point).toMatchObject({ t: 3, n: 4 });
        await store.close();
        continue;
      }
      expect(store.sealed, r.point).toBe(false);
      expect(dec(await store.get("data/base"))).toBe("Z");
      await checkAcked(store, r.acks, r.point);
      await store.close();
    }
  }, 120_000);

  it("seal migration Shamir → auto: either still pending (old shares + migrate) or done (auto-unseal)", async () => {
    const base = await prepare("shamir");
    for (const r of await everyKillPoint(base.dir, "migrate", base.shares)) {
      const storage = new FileBackend({ path: r.dir });
      const store = await SealedStore.open({ storage, seal: staticSeal(), migrationSeal: new ShamirSeal() });
      if (store.status().migration) {
        expect(r.acks).not.toContain("migrated");
        for (const k of base.shares.slice(0, 2)) await store.unseal(k, { migrate: true });
      }
      expect(store.sealed, `${r.point}: ${store.status().sealedReason}`).toBe(false);
      expect(store.status().type).toBe("static");
      expect(dec(await store.get("data/base"))).toBe("Z");
      await checkAcked(store, r.acks, r.point);
      await store.close();
      const after = await SealedStore.open({ storage, seal: staticSeal() });
      expect(after.sealed, r.point).toBe(false);
      await after.close();
    }
  }, 120_000);
});
