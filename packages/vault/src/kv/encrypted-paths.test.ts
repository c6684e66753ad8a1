import { MemoryBackend } from "@bulwark/storage-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VaultError } from "../errors.js";
import { PrefixView } from "./common.js";
import { MetadataPaths, versionPath } from "./encrypted-paths.js";
import { openbaoKv2, openbaoKvMount } from "./test-helpers.js";
import { decodeKeyMetadata } from "./v2-records.js";

const fixture = openbaoKv2;

/** A memory store holding one OpenBao mount's records below `logical/<uuid>/`. */
async function openbaoMount(name: string) {
  const { m, memory: storage } = await openbaoKvMount(name);
  const view = new PrefixView(storage, `logical/${m.uuid}/`, false);
  return { m, storage, view };
}

/** key → stored path below the view, read from OpenBao's metadata records themselves. */
function metadataPathsOf(m: { backend_uuid: string; records: Record<string, string> }): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, v] of Object.entries(m.records)) {
    if (!p.startsWith(`${m.backend_uuid}/metadata/`)) continue;
    out.set(decodeKeyMetadata(new Uint8Array(Buffer.from(v, "base64"))).key, p);
  }
  return out;
}

describe("OpenBao's metadata paths", () => {
  for (const name of ["kv2", "kv3"]) {
    it(`keyPath of every ${name} key with OpenBao's policy key is the path OpenBao stored it at`, async () => {
      const { m, view } = await openbaoMount(name);
      const paths = await MetadataPaths.open(view, m.backend_uuid, false);
      expect(paths).toBeDefined();
      const stored = metadataPathsOf(m);
      expect(stored.size).toBeGreaterThan(1);
      for (const [key, p] of stored) expect(paths?.keyPath(key), key).toBe(p);
    });

    it(`listing ${name} folder by folder decrypts to what OpenBao's LIST answers`, async () => {
      const { m, storage, view } = await openbaoMount(name);
      const paths = (await MetadataPaths.open(view, m.backend_uuid, false)) as MetadataPaths;
      const lists = Object.entries(m.api).filter(([k]) => k.startsWith("list:"));
      expect(lists.length).toBeGreaterThan(0);
      for (const [k, expected] of lists) {
        const prefix = k.slice("list:".length);
        const folder = paths.folderPath(prefix);
        const names = await storage.list(`logical/${m.uuid}/${folder}`);
        const plain = names.map((n) => paths.listedName(prefix, n)).sort();
        expect(plain, prefix).toEqual(expected);
      }
    });
  }

  it("the folder paths are the stored prefixes", async () => {
    const { m, view } = await openbaoMount("kv2");
    const paths = (await MetadataPaths.open(view, m.backend_uuid, false)) as MetadataPaths;
    expect(paths.folderPath("")).toBe(`${m.backend_uuid}/metadata/`);
    const appDb = metadataPathsOf(m).get("app/db") as string;
    expect(paths.folderPath("app/")).toBe(appDb.slice(0, appDb.lastIndexOf("/") + 1));
    expect(paths.folderPath("app")).toBe(paths.folderPath("app/"));
    // Go's path.Clean: empty segments and a leading '/' do not change the path.
    expect(paths.keyPath("/app//db")).toBe(appDb);
    // The paths of the doc's example (§6.3) come from the same scheme: segment = base62("1:" + b64).
    const seg = appDb.split("/").at(-1) as string;
    expect(seg).toMatch(/^[0-9a-zA-Z]+$/);
  });

  it("versionPath gives the path of every version OpenBao stored", async () => {
    for (const name of ["kv2", "kv3"]) {
      const m = fixture.mounts[name];
      if (m === undefined) throw new Error("fixture");
      const salt = Buffer.from(m.records[`${m.backend_uuid}/salt`] as string, "base64").toString("utf8");
      const stored = new Set(
        Object.keys(m.records).filter((p) => p.startsWith(`${m.backend_uuid}/versions/`)),
      );
      const computed = new Set<string>();
      for (const [k, v] of Object.entries(m.api)) {
        if (!k.startsWith("metadata:")) continue;
        const key = k.slice("metadata:".length);
        for (const [n, meta] of Object.entries(
          (v as { versions: Record<string, { destroyed: boolean }> }).versions,
        )) {
          if (!meta.destroyed) computed.add(versionPath(m.backend_uuid, salt, key, Number(n)));
        }
      }
      expect(computed).toEqual(stored);
    }
  });
});

describe("names that do not decrypt are refused", () => {
  it("names the segment and the reason", async () => {
    const { m, view } = await openbaoMount("kv2");
    const paths = (await MetadataPaths.open(view, m.backend_uuid, false)) as MetadataPaths;
    const appDb = metadataPathsOf(m).get("app/db") as string;
    const [e1, e2] = appDb.split("/").slice(-2) as [string, string];
    // Right name, wrong folder: the context differs, so GCM authentication fails.
    expect(() => paths.listedName("", e2)).toThrow(/does not decrypt: authentication failed/);
    expect(paths.listedName("app/", e2)).toBe("db");
    expect(paths.listedName("", `${e1}/`)).toBe("app/");
    expect(() => paths.listedName("", "not-base62!")).toThrow(/not a base62 number/);
    expect(() => paths.listedName("", "abc")).toThrow(VaultError);
    // A flipped character anywhere in a real name.
    for (let i = 0; i < e2.length; i++) {
      const c = e2[i] === "a" ? "b" : "a";
      const bad = e2.slice(0, i) + c + e2.slice(i + 1);
      expect(() => paths.listedName("app/", bad)).toThrow(VaultError);
    }
  });

  it("refuses '.' and '..' segments like OpenBao's IsRelativePath", async () => {
    const { m, view } = await openbaoMount("kv2");
    const paths = (await MetadataPaths.open(view, m.backend_uuid, false)) as MetadataPaths;
    expect(() => paths.keyPath("a/../b")).toThrow(/'\.' or '\.\.' segment/);
    expect(() => paths.keyPath("./b")).toThrow(/'\.' or '\.\.' segment/);
    expect(() => paths.keyPath("")).toThrow(/missing path/);
  });

  it("refuses a policy record KV v2 could not have written, naming the field", async () => {
    const storage = new MemoryBackend();
    const view = new PrefixView(storage, "logical/x/", false);
    const put = (v: string) => storage.put({ key: "logical/x/bu/policy/metadata", value: Buffer.from(v) });
    await put("{not json");
    await expect(MetadataPaths.open(view, "bu", false)).rejects.toThrow(
      /KV v2 metadata key logical\/x\/bu\/policy\/metadata cannot be used: not JSON/,
    );
    const { m } = await openbaoMount("kv2");
    const good = JSON.parse(
      Buffer.from(m.records[`${m.backend_uuid}/policy/metadata`] as string, "base64").toString(),
    ) as Record<string, unknown>;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ derived: false }, /`derived` is not true/],
      [{ convergent_encryption: false }, /`convergent_encryption` is not true/],
      [{ type: 2 }, /`type` 2 is not 0/],
      [{ kdf: 0 }, /`kdf` 0 is not 1/],
      [{ latest_version: 2 }, /no entry for latest_version 2/],
      [{ keys: { "1": { key: "c2hvcnQ=" } } }, /`keys.1.key` is not 32 bytes/],
      [{ version_template: "x" }, /has no single \{\{version\}\}/],
    ];
    for (const [patch, re] of cases) {
      await put(JSON.stringify({ ...good, ...patch }));
      await expect(MetadataPaths.open(view, "bu", false)).rejects.toThrow(re);
    }
    // An old convergent scheme is refused at use, as keysutil does.
    const old = {
      ...good,
      keys: { "1": { ...(good.keys as Record<string, object>)["1"], convergent_version: 2 } },
    };
    await put(JSON.stringify(old));
    const p = (await MetadataPaths.open(view, "bu", false)) as MetadataPaths;
    expect(() => p.keyPath("a")).toThrow(/convergent_version 2; only 3 is supported/);
  });
});

describe("creating the key of a new mount", () => {
  it("returns undefined when missing and not asked to create", async () => {
    const view = new PrefixView(new MemoryBackend(), "logical/u/", false);
    expect(await MetadataPaths.open(view, "bu", false)).toBeUndefined();
  });

  it("writes the policy and archive records exactly as OpenBao's (random key material aside)", async () => {
    const storage = new MemoryBackend();
    const view = new PrefixView(storage, "logical/u/", false);
    const bu = "5365f818-38f0-7eba-a16b-d59125020716";
    const paths = await MetadataPaths.open(view, bu, true);
    expect(paths).toBeDefined();
    const { m } = await openbaoMount("kv2");
    const theirs = (p: string) =>
      Buffer.from(m.records[`${m.backend_uuid}/${p}`] as string, "base64").toString();
    const ours = async (p: string) =>
      Buffer.from((await storage.get(`logical/u/${bu}/${p}`))?.value ?? []).toString();
    // Same JSON text once key material and times are masked: same fields, order and values.
    const mask = (s: string) =>
      s
        .replace(/"(key|hmac_key)":"[A-Za-z0-9+/]{43}="/g, '"$1":"K"')
        .replace(/"time":"20[0-9T:.-]+Z"/g, '"time":"T"')
        .replace(/"creation_time":[1-9][0-9]+/g, '"creation_time":1');
    expect(mask(await ours("policy/metadata"))).toBe(mask(theirs("policy/metadata")));
    expect(mask(await ours("archive/metadata"))).toBe(mask(theirs("archive/metadata")));
    const policy = JSON.parse(await ours("policy/metadata"));
    const archive = JSON.parse(await ours("archive/metadata"));
    expect(archive.keys[1]).toEqual(policy.keys["1"]);
    expect(Buffer.from(policy.keys["1"].key, "base64").length).toBe(32);
    expect(policy.keys["1"].key).not.toBe(policy.keys["1"].hmac_key);
    expect(policy.keys["1"].creation_time).toBe(Math.floor(Date.parse(policy.keys["1"].time) / 1000));
    // Reopening reads the same key: the same paths.
    const again = (await MetadataPaths.open(view, bu, false)) as MetadataPaths;
    expect(again.keyPath("app/db")).toBe(paths?.keyPath("app/db"));
  });

  it("concurrent first callers create one key", async () => {
    const storage = new MemoryBackend();
    const view = new PrefixView(storage, "logical/c/", false);
    const opened = await Promise.all(Array.from({ length: 8 }, () => MetadataPaths.open(view, "bu", true)));
    const seen = new Set(opened.map((p) => p?.keyPath("same/key")));
    expect(seen.size).toBe(1);
    const reread = (await MetadataPaths.open(view, "bu", false)) as MetadataPaths;
    expect(reread.keyPath("same/key")).toBe([...seen][0]);
  });

  it("keyPath and listedName are inverse for any key (property)", async () => {
    const view = new PrefixView(new MemoryBackend(), "logical/p/", false);
    const paths = (await MetadataPaths.open(view, "bu", true)) as MetadataPaths;
    const segment = fc
      .string({ unit: "binary", minLength: 1, maxLength: 20 })
      .filter((s) => !s.includes("/") && s !== "." && s !== "..");
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), (segs) => {
        const key = segs.join("/");
        const full = paths.keyPath(key);
        const enc = full.split("/").slice(2);
        expect(enc.length).toBe(segs.length);
        for (let i = 0; i < segs.length; i++) {
          const prefix = segs
            .slice(0, i)
            .map((s) => `${s}/`)
            .join("");
          expect(paths.folderPath(prefix)).toBe(`${["bu/metadata", ...enc.slice(0, i)].join("/")}/`);
          const last = i === segs.length - 1;
          expect(paths.listedName(prefix, last ? (enc[i] as string) : `${enc[i]}/`)).toBe(
            last ? segs[i] : `${segs[i]}/`,
          );
        }
      }),
      { numRuns: 50 },
    );
  });
});
