/**
 * Tokens Bulwark's store writes, served by a real OpenBao 2.6.2: Bulwark creates tokens on
 * OpenBao's salt and root token, the records are written into OpenBao's storage with `sys/raw`,
 * OpenBao is sealed and unsealed (its expiration manager loads leases at unseal), and then OpenBao
 * looks every token up exactly as Bulwark does, expires the 2 s one itself, renews and revokes.
 * (The other direction, OpenBao's records on Bulwark, is tokens.test.ts on captured records; the
 * server-to-server differential is apps/server/test/vault-formats.test.ts.)
 */
import { rmSync } from "node:fs";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { BAO, startScratchOpenBao } from "../../../../apps/server/test/helpers/openbao-scratch.js";
import { serviceGate, tempDir } from "../../../../apps/server/test/helpers/server-process.js";
import { tokenLookupData } from "./token-data.js";
import { type IssuedToken, TokenStore } from "./tokens.js";

const skip = serviceGate("token store against OpenBao", BAO, "OpenBao 2.6.2 (tooling/services/.bin/bao)");

/** OpenBao initialised, unsealed and active; `restart()` seals and unseals it (leases load then). */
async function startOpenBao(dir: string) {
  const ob = await startScratchOpenBao({ dir, requestTimeoutMs: 10_000 });
  // Unsealed is not yet active: sys/health answers 200 once the node serves requests.
  const active = () =>
    ob.until(
      "openbao active after unsealing",
      async () => (await ob.http("GET", "sys/health")).status === 200,
      30_000,
    );
  await active();
  return {
    root: ob.token,
    call: ob.http,
    // compressed=false: a value that starts with a canary byte (a salt "4…") is not decompressed.
    raw: (path: string) => ob.http("GET", `sys/raw/${path}?compressed=false`),
    async restart() {
      expect((await ob.http("PUT", "sys/seal")).status).toBe(204);
      expect((await ob.http("PUT", "sys/unseal", { key: ob.unsealKey })).json.sealed).toBe(false);
      await active();
    },
    stop: ob.stop,
  };
}

describe.skipIf(skip !== undefined)("tokens Bulwark writes, on a real OpenBao 2.6.2", () => {
  it("are looked up as Bulwark answers, expire on OpenBao's clock, renew and revoke there", {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir("bulwark-tokens-openbao-");
    const bao = await startOpenBao(dir);
    try {
      // Bulwark's store over OpenBao's salt and root token entry.
      const storage = new MemoryBackend();
      const enc = new TextEncoder();
      // A token operation first: OpenBao's token store reads (or creates) its salt on first use.
      expect((await bao.call("GET", "auth/token/lookup-self")).status).toBe(200);
      const saltRead = await bao.raw("sys/token/salt");
      expect(saltRead.status, JSON.stringify(saltRead.json)).toBe(200);
      const salt = saltRead.json.data.value as string;
      await storage.put({ key: "sys/token/salt", value: enc.encode(salt) });
      const tokens = new TokenStore(storage, { cacheMs: 0 });
      const rootHash = await tokens.saltId(bao.root);
      const rootRecord = (await bao.raw(`sys/token/id/${rootHash}`)).json.data.value as string;
      await storage.put({ key: `sys/token/id/${rootHash}`, value: enc.encode(rootRecord) });
      const root = await tokens.lookup(bao.root);
      expect(root?.policies).toEqual(["root"]);
      if (root === undefined) return;
      const ours: Record<string, IssuedToken> = {};
      ours.short = await tokens.create(root, { policies: ["reader"], ttl: 2 }, { sudo: true });
      ours.hour = await tokens.create(
        root,
        { policies: ["reader", "creator"], ttl: 3600, meta: { k: "v" }, displayName: "bw" },
        { sudo: true },
      );
      ours.periodic = await tokens.create(root, { policies: ["reader"], period: 7200 }, { sudo: true });
      ours.orphan = await tokens.create(
        root,
        { policies: ["reader"], ttl: 1800, noParent: true },
        { sudo: true },
      );
      ours.child = await tokens.create(ours.hour.entry, { policies: ["reader"], ttl: 600 }, { sudo: false });
      ours.limited = await tokens.create(
        root,
        { policies: ["reader"], ttl: 600, numUses: 3 },
        { sudo: true },
      );
      ours.rootChild = await tokens.create(root, { policies: ["root"] }, { sudo: true });
      ours.custom = await tokens.create(root, { id: "bulwark-custom-id", ttl: 600 }, { sudo: true });

      // Every record Bulwark wrote goes into OpenBao's storage as it is.
      const walk = async (p: string): Promise<string[]> => {
        const out: string[] = [];
        for (const n of await storage.list(p)) out.push(...(n.endsWith("/") ? await walk(p + n) : [p + n]));
        return out;
      };
      for (const k of await walk("")) {
        if (k === "sys/token/salt" || k === `sys/token/id/${rootHash}`) continue;
        const value = new TextDecoder().decode((await storage.get(k))?.value);
        expect((await bao.call("PUT", `sys/raw/${k}`, { value })).status, k).toBe(204);
      }
      await bao.restart();

      const lookup = async (t: string) => (await bao.call("PUT", "auth/token/lookup", { token: t })).json;
      for (const [name, t] of Object.entries(ours)) {
        if (name === "short") continue;
        const theirs = (await lookup(t.token)).data as Record<string, unknown>;
        const mine = tokenLookupData(t.token, t.entry);
        expect(Math.abs((theirs.ttl as number) - (mine.ttl as number)), name).toBeLessThanOrEqual(3);
        expect({ ...theirs, ttl: 0 }, name).toEqual({ ...mine, ttl: 0 });
      }
      const byAccessor = (
        await bao.call("PUT", "auth/token/lookup-accessor", { accessor: ours.hour.entry.accessor })
      ).json.data;
      expect(byAccessor.id).toBe("");
      expect(byAccessor.display_name).toBe("token-bw");

      // OpenBao's expiration manager revokes Bulwark's 2 s token: entry and lease are gone.
      const short = ours.short.entry.hash;
      const until = Date.now() + 15_000;
      while ((await bao.raw(`sys/token/id/${short}`)).status !== 404) {
        if (Date.now() > until) throw new Error("OpenBao did not revoke the 2 s token within 15 s");
        await new Promise((r) => setTimeout(r, 250));
      }
      expect((await bao.raw(`sys/expire/id/auth/token/create/${short}`)).status).toBe(404);
      expect((await lookup(ours.short.token)).errors).toEqual(["bad token"]);

      // OpenBao renews a Bulwark token; Bulwark reads OpenBao's renewed lease.
      const renewed = await bao.call("PUT", "auth/token/renew", { token: ours.hour.token, increment: "20m" });
      expect(renewed.json.auth.lease_duration).toBe(1200);
      const leaseKey = `sys/expire/id/auth/token/create/${ours.hour.entry.hash}`;
      const lease = (await bao.raw(leaseKey)).json.data.value as string;
      await storage.put({ key: leaseKey, value: enc.encode(lease) });
      const afterRenew = await tokens.lookup(ours.hour.token);
      expect(afterRenew?.lease_ttl).toBe(1200);
      expect(
        tokenLookupData(ours.hour.token, afterRenew as NonNullable<typeof afterRenew>).last_renewal,
      ).toBe(JSON.parse(lease).last_renewal_time);

      // OpenBao revokes Bulwark's parent: its child, accessors, parent index and leases go.
      expect((await bao.call("PUT", "auth/token/revoke", { token: ours.hour.token })).status).toBe(204);
      expect((await lookup(ours.child.token)).errors).toEqual(["bad token"]);
      for (const e of [ours.hour.entry, ours.child.entry]) {
        expect((await bao.raw(`sys/token/id/${e.hash}`)).status).toBe(404);
        expect((await bao.raw(`sys/expire/id/auth/token/create/${e.hash}`)).status).toBe(404);
      }
      expect((await bao.call("LIST", `sys/raw/sys/token/parent/${ours.hour.entry.hash}/`)).status).toBe(404);
      // OpenBao counts uses of Bulwark's limited token in Bulwark's entry.
      const self = await bao.call("GET", "auth/token/lookup-self", undefined, ours.limited.token);
      expect(self.json.data.num_uses).toBe(2);
      const limited = JSON.parse((await bao.raw(`sys/token/id/${ours.limited.entry.hash}`)).json.data.value);
      expect(limited.num_uses).toBe(2);
    } finally {
      await bao.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
