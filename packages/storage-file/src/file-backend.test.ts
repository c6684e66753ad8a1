import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidKeyError, StorageError, ValueTooLargeError } from "@bulwark/storage";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_VALUE_BYTES } from "./codec.js";
import { CorruptEntryError, FileBackendConfigError } from "./errors.js";
import { createFileBackend, FileBackend } from "./file-backend.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

let base: string; // temp folder; the backend root is `${base}/data`, so escapes would land in `base`
let root: string;
let be: FileBackend;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "bulwark-file-"));
  root = join(base, "data");
  be = new FileBackend({ path: root });
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function mode(p: string): Promise<number> {
  return (await stat(p)).mode & 0o777;
}

/** Every file name under `dir`, recursively, relative to it. */
async function allFiles(dir: string): Promise<string[]> {
  const out = await readdir(dir, { recursive: true, withFileTypes: true });
  return out
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe("configuration", () => {
  it("a missing or empty path is rejected with an error naming `path`", () => {
    for (const options of [{}, { path: "" }, { path: "   " }, undefined]) {
      let err: unknown;
      try {
        new FileBackend(options as unknown as { path: string });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FileBackendConfigError);
      expect((err as FileBackendConfigError).code).toBe("invalid_config");
      expect((err as FileBackendConfigError).field).toBe("path");
      expect((err as Error).message).toMatch(/'path' must be set/);
    }
  });

  it("a non-boolean fsync is rejected with an error naming `fsync`", () => {
    expect(() => new FileBackend({ path: root, fsync: "yes" as unknown as boolean })).toThrow(
      expect.objectContaining({ field: "fsync" }),
    );
  });

  it("resolves the path and defaults fsync to true; createFileBackend is the same", () => {
    const b = createFileBackend({ path: "relative/dir" });
    expect(b).toBeInstanceOf(FileBackend);
    expect(b.path).toBe(join(process.cwd(), "relative/dir"));
    expect(b.fsync).toBe(true);
    expect(new FileBackend({ path: root, fsync: false }).fsync).toBe(false);
  });

  it("does not touch the disk until the first write", async () => {
    expect(await exists(root)).toBe(false);
    expect(await be.get("a")).toBeUndefined();
    expect(await be.list("")).toEqual([]);
    expect(await exists(root)).toBe(false);
  });
});

describe("Vault layout", () => {
  it('key a/b/c is the file <path>/a/b/_c holding {"Value":"<base64>"}\\n', async () => {
    await be.put({ key: "a/b/c", value: enc("hello") });
    expect(await readFile(join(root, "a/b/_c"), "latin1")).toBe('{"Value":"aGVsbG8="}\n');
    expect(await allFiles(root)).toEqual(["a/b/_c"]);
  });

  it("writes core/keyring exactly as Vault's example (term 1, version 2)", async () => {
    await be.put({ key: "core/keyring", value: new Uint8Array([0, 0, 0, 1, 2]) });
    expect(await readFile(join(root, "core/_keyring"), "latin1")).toBe('{"Value":"AAAAAQI="}\n');
  });

  it("a top-level key lives directly in the root", async () => {
    await be.put({ key: "top", value: enc("x") });
    expect(await allFiles(root)).toEqual(["_top"]);
  });

  it("reads entries written by hand in Vault's format", async () => {
    const sealConfig = '{"type":"shamir","secret_shares":5,"secret_threshold":3}';
    await mkdir(join(root, "core"), { recursive: true });
    await writeFile(
      join(root, "core/_seal-config"),
      `{"Value":"${Buffer.from(sealConfig).toString("base64")}"}\n`,
    );
    await writeFile(join(root, "core/_nil"), '{"Value":null}\n');
    expect(dec((await be.get("core/seal-config"))?.value)).toBe(sealConfig);
    expect(await be.get("core/nil")).toEqual({ key: "core/nil", value: new Uint8Array(0) });
    expect(await be.list("core/")).toEqual(["nil", "seal-config"]);
  });

  it('a zero-byte value is written as {"Value":""} and read back as zero bytes', async () => {
    await be.put({ key: "empty", value: new Uint8Array(0) });
    expect(await readFile(join(root, "_empty"), "latin1")).toBe('{"Value":""}\n');
    const got = await be.get("empty");
    expect(got?.value).toEqual(new Uint8Array(0));
    expect(await be.list("")).toEqual(["empty"]);
  });

  it("directories are 0700 and files 0600, whatever the umask", async () => {
    // This umask strips the owner's write bit: without explicit chmod, dirs would be 0500 and
    // files 0400. Each put creates one directory level so it also works for a non-root user.
    const old = process.umask(0o200);
    try {
      await be.put({ key: "x", value: enc("1") });
      await be.put({ key: "d1/x", value: enc("2") });
      await be.put({ key: "d1/d2/x", value: enc("3") });
    } finally {
      process.umask(old);
    }
    expect(await mode(root)).toBe(0o700);
    expect(await mode(join(root, "d1"))).toBe(0o700);
    expect(await mode(join(root, "d1/d2"))).toBe(0o700);
    expect(await mode(join(root, "_x"))).toBe(0o600);
    expect(await mode(join(root, "d1/_x"))).toBe(0o600);
    expect(await mode(join(root, "d1/d2/_x"))).toBe(0o600);
  });

  it("a rewrite keeps mode 0600 and leaves no temp file behind", async () => {
    await be.put({ key: "k", value: enc("1") });
    await be.put({ key: "k", value: enc("2") });
    expect(await mode(join(root, "_k"))).toBe(0o600);
    expect(await allFiles(root)).toEqual(["_k"]);
  });
});

describe("get", () => {
  it("a missing key (or a missing root) is undefined", async () => {
    expect(await be.get("nope")).toBeUndefined();
    await be.put({ key: "a/b", value: enc("1") });
    expect(await be.get("a/c")).toBeUndefined();
    expect(await be.get("zz/yy/xx")).toBeUndefined();
  });

  it("returns an independent copy: changing it changes neither the file nor the next read", async () => {
    await be.put({ key: "k", value: enc("abc") });
    const first = await be.get("k");
    first?.value.fill(0);
    expect(dec((await be.get("k"))?.value)).toBe("abc");
  });

  it("a zero-length file reads as missing and is removed, with its empty folders (as Vault does)", async () => {
    await be.put({ key: "keep", value: enc("1") });
    await mkdir(join(root, "a/b"), { recursive: true });
    await writeFile(join(root, "a/b/_z"), "");
    expect(await be.list("a/b/")).toEqual(["z"]);
    expect(await be.get("a/b/z")).toBeUndefined();
    expect(await exists(join(root, "a"))).toBe(false);
    expect(await be.list("")).toEqual(["keep"]);
  });

  it("a corrupt file is a CorruptEntryError (code io) naming the file, and is left in place", async () => {
    await mkdir(join(root, "core"), { recursive: true });
    const file = join(root, "core/_keyring");
    await writeFile(file, '{"Value":"AAAA');
    const err = await be.get("core/keyring").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptEntryError);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as CorruptEntryError).code).toBe("io");
    expect((err as CorruptEntryError).path).toBe(file);
    expect((err as CorruptEntryError).key).toBe("core/keyring");
    expect((err as Error).message).toContain(file);
    expect(await readFile(file, "latin1")).toBe('{"Value":"AAAA');
  });
});

describe("keys that share a path in Vault's layout (a/c is the file a/_c, keys a/_c/... live in the folder a/_c)", () => {
  it("get and delete of a/c while keys under a/_c/ exist: a missing key, not an io error", async () => {
    await be.put({ key: "a/_c/x", value: enc("1") });
    expect(await be.get("a/c")).toBeUndefined();
    await expect(be.delete("a/c")).resolves.toBeUndefined();
    expect(dec((await be.get("a/_c/x"))?.value)).toBe("1");
    expect(await be.list("a/")).toEqual(["_c/"]);
  });

  it("put of a/c while keys under a/_c/ exist is an InvalidKeyError naming the clash", async () => {
    await be.put({ key: "a/_c/x", value: enc("1") });
    const err = await be.put({ key: "a/c", value: enc("2") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidKeyError);
    expect((err as Error).message).toContain('"a/_c/"');
    expect(await allFiles(root)).toEqual(["a/_c/_x"]);
  });

  it("put of a/_c/x while key a/c exists is an InvalidKeyError naming a/c, without a retry storm", async () => {
    await be.put({ key: "a/c", value: enc("1") });
    for (const key of ["a/_c/x", "a/_c/d/x"]) {
      const err = await be.put({ key, value: enc("2") }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidKeyError);
      expect((err as Error).message).toContain('"a/c"');
    }
    expect(dec((await be.get("a/c"))?.value)).toBe("1");
    expect(await allFiles(root)).toEqual(["a/_c"]);
  });
});

describe("put", () => {
  it("stores exactly the bytes passed, even if the caller reuses the buffer right after put()", async () => {
    const buf = enc("original");
    const p = be.put({ key: "k", value: buf });
    buf.fill(0x21);
    await p;
    expect(dec((await be.get("k"))?.value)).toBe("original");
  });

  it("stores only the viewed bytes of a subarray", async () => {
    const big = enc("xxHELLOxx");
    await be.put({ key: "k", value: big.subarray(2, 7) });
    expect(dec((await be.get("k"))?.value)).toBe("HELLO");
  });

  it("round-trips large binary values (256 KiB)", async () => {
    const v = new Uint8Array(256 * 1024).map((_, i) => (i * 7919) & 0xff);
    await be.put({ key: "big/value", value: v });
    const got = (await be.get("big/value"))?.value ?? new Uint8Array(0);
    // Buffer.equals, not toEqual: a deep-equal walk over 256 Ki elements takes about a second.
    expect(Buffer.from(got).equals(Buffer.from(v))).toBe(true);
  });

  it("rejects a value that is not a Uint8Array", async () => {
    await expect(be.put({ key: "k", value: "str" as unknown as Uint8Array })).rejects.toThrow(TypeError);
    expect(await exists(root)).toBe(false);
  });

  it("values beyond the JavaScript string limit fail with ValueTooLargeError before touching disk", async () => {
    const v = new Uint8Array(1);
    Object.defineProperty(v, "byteLength", { value: MAX_VALUE_BYTES + 1 });
    const err = await be.put({ key: "huge", value: v }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueTooLargeError);
    expect((err as ValueTooLargeError).limit).toBe(MAX_VALUE_BYTES);
    expect(await exists(root)).toBe(false);
  });

  it("a failed write removes its temp file and leaves other entries intact", async () => {
    await be.put({ key: "d/ok", value: enc("kept") });
    // The entry path is taken by a directory: the final rename fails.
    await mkdir(join(root, "d/_blocked/inner"), { recursive: true });
    const err = await be.put({ key: "d/blocked", value: enc("x") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe("invalid_key");
    expect((err as Error).message).toContain(join(root, "d/_blocked"));
    expect((await readdir(join(root, "d"))).sort()).toEqual(["_blocked", "_ok"]);
    expect(dec((await be.get("d/ok"))?.value)).toBe("kept");
  });

  it("works with fsync disabled", async () => {
    const fast = new FileBackend({ path: root, fsync: false });
    await fast.put({ key: "a/b", value: enc("v") });
    expect(await readFile(join(root, "a/_b"), "latin1")).toBe('{"Value":"dg=="}\n');
    await fast.delete("a/b");
    expect(await exists(join(root, "a"))).toBe(false);
  });

  it("a key segment too long for the file system is an InvalidKeyError", async () => {
    const key = `dir/${"x".repeat(300)}`;
    await expect(be.put({ key, value: enc("v") })).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(be.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(be.list(`${key}/`)).rejects.toBeInstanceOf(InvalidKeyError);
  });
});

describe("ordering and concurrency", () => {
  it("writes and deletes to one key apply in call order", async () => {
    const ops: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      ops.push(i % 7 === 3 ? be.delete("k") : be.put({ key: "k", value: enc(`v${i}`) }));
    }
    await Promise.all(ops);
    expect(dec((await be.get("k"))?.value)).toBe("v39");
    const ops2 = [be.put({ key: "k", value: enc("a") }), be.delete("k")];
    await Promise.all(ops2);
    expect(await be.get("k")).toBeUndefined();
  });

  it("a failed operation does not block later ones on the same key", async () => {
    await mkdir(join(root, "_k"), { recursive: true }); // a directory where the entry file should be
    const first = be.put({ key: "k", value: enc("1") });
    const second = be.delete("k");
    await expect(first).rejects.toMatchObject({ code: "invalid_key" });
    await expect(second).resolves.toBeUndefined();
    await rm(join(root, "_k"), { recursive: true });
    await be.put({ key: "k", value: enc("2") });
    expect(dec((await be.get("k"))?.value)).toBe("2");
  });

  it("many keys in parallel all land", async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `p/${i % 6}/k${i}`);
    await Promise.all(keys.map((key) => be.put({ key, value: enc(key) })));
    for (const key of keys) expect(dec((await be.get(key))?.value)).toBe(key);
    expect(await be.list("p/")).toEqual(["0/", "1/", "2/", "3/", "4/", "5/"]);
  });

  it("writes racing with deletes that remove their folder still land", async () => {
    // Each round: a delete empties and removes folder r<i>/ while a put creates a new key there.
    for (let i = 0; i < 30; i++) {
      await be.put({ key: `r${i}/old`, value: enc("old") });
      await Promise.all([be.delete(`r${i}/old`), be.put({ key: `r${i}/new`, value: enc("new") })]);
      expect(dec((await be.get(`r${i}/new`))?.value)).toBe("new");
      expect(await be.get(`r${i}/old`)).toBeUndefined();
    }
  });

  it("two instances on the same folder writing the same key never share a temp file", async () => {
    const other = new FileBackend({ path: root });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      writes.push(be.put({ key: "shared", value: enc(`a${i}`.repeat(1000)) }));
      writes.push(other.put({ key: "shared", value: enc(`b${i}`.repeat(1000)) }));
    }
    await Promise.all(writes);
    const v = dec((await be.get("shared"))?.value);
    expect(["a19".repeat(1000), "b19".repeat(1000)]).toContain(v);
    expect(await allFiles(root)).toEqual(["_shared"]);
  });
});

describe("delete", () => {
  it("removes the file and every parent folder left empty, but never the root", async () => {
    await be.put({ key: "a/b/c/d", value: enc("1") });
    await be.delete("a/b/c/d");
    expect(await exists(join(root, "a"))).toBe(false);
    expect(await exists(root)).toBe(true);
    await be.put({ key: "top", value: enc("1") });
    await be.delete("top");
    expect(await exists(root)).toBe(true);
    expect(await readdir(root)).toEqual([]);
  });

  it("stops at the first folder that still holds something", async () => {
    await be.put({ key: "a/b/c", value: enc("1") });
    await be.put({ key: "a/x", value: enc("2") });
    await be.delete("a/b/c");
    expect(await exists(join(root, "a/b"))).toBe(false);
    expect(await be.list("a/")).toEqual(["x"]);
  });

  it("deleting a missing key (or under a missing folder) is fine", async () => {
    await expect(be.delete("never")).resolves.toBeUndefined();
    await expect(be.delete("no/such/folder/key")).resolves.toBeUndefined();
    await be.put({ key: "a", value: enc("1") });
    await be.delete("a");
    await expect(be.delete("a")).resolves.toBeUndefined();
    expect(await be.get("a")).toBeUndefined();
  });
});

describe("list", () => {
  beforeEach(async () => {
    for (const key of ["b", "a", "dir/x", "dir/sub/y", "c/d/e", "_under"]) {
      await be.put({ key, value: enc(key) });
    }
  });

  it("returns direct children, sorted, with '_' stripped and '/' after folders", async () => {
    expect(await be.list("")).toEqual(["_under", "a", "b", "c/", "dir/"]);
    expect(await be.list("dir/")).toEqual(["sub/", "x"]);
    expect(await be.list("c/")).toEqual(["d/"]);
    expect(await be.list("c/d/")).toEqual(["e"]);
  });

  it("a missing folder, or a prefix naming a key, lists as []", async () => {
    expect(await be.list("nope/")).toEqual([]);
    expect(await be.list("a/")).toEqual([]);
    expect(await be.list("dir/x/")).toEqual([]);
    expect(await new FileBackend({ path: join(base, "absent") }).list("")).toEqual([]);
  });

  it("never shows temp files, nor files that are not entries", async () => {
    await writeFile(join(root, "dir/._x.0123abcd-1.temp"), "{");
    await writeFile(join(root, "dir/.DS_Store"), "");
    await writeFile(join(root, "dir/README"), "hi");
    await writeFile(join(root, "dir/_"), "");
    expect(await be.list("dir/")).toEqual(["sub/", "x"]);
  });

  it("never shows the temp file of a write in progress", async () => {
    const big = new Uint8Array(2 * 1024 * 1024);
    const writes = Array.from({ length: 8 }, (_, i) => be.put({ key: `dir/w${i}`, value: big }));
    let sawTemp = false;
    let done = false;
    void Promise.all(writes).then(() => {
      done = true;
    });
    while (!done) {
      const names = await be.list("dir/");
      if (names.some((n) => n.includes("temp"))) sawTemp = true;
      const raw = await readdir(join(root, "dir"));
      expect(raw.every((n) => n.startsWith("_") || n.startsWith("._") || n === "sub")).toBe(true);
    }
    expect(sawTemp).toBe(false);
    expect(await be.list("dir/")).toEqual(["sub/", "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "x"]);
  });

  it("follows symbolic links like Vault does (os.Stat)", async () => {
    await mkdir(join(base, "elsewhere"), { recursive: true });
    await symlink(join(base, "elsewhere"), join(root, "linked"));
    await symlink(join(base, "missing"), join(root, "_dangling"));
    expect(await be.list("")).toEqual(["_under", "a", "b", "c/", "dir/", "linked/"]);
  });
});

describe("removeStaleTempFiles", () => {
  it("removes old temp files of crashed writes, and nothing else", async () => {
    await be.put({ key: "a/b/k", value: enc("v") });
    const stale = [join(root, "._top.0123456789ab-1.temp"), join(root, "a/b/._k.0123456789ab-z.temp")];
    const fresh = join(root, "a/._x.ba9876543210-2.temp");
    const lookalikes = [join(root, "_k.temp"), join(root, "a/._k.temp"), join(root, "a/.other")];
    const old = new Date(Date.now() - 120_000);
    for (const f of [...stale, fresh, ...lookalikes]) await writeFile(f, "{");
    for (const f of stale) await utimes(f, old, old);
    expect(await be.removeStaleTempFiles()).toBe(2);
    for (const f of stale) expect(await exists(f)).toBe(false);
    for (const f of [fresh, ...lookalikes]) expect(await exists(f)).toBe(true);
    expect(await be.removeStaleTempFiles({ olderThanMs: 0 })).toBe(1);
    expect(await exists(fresh)).toBe(false);
    expect(dec((await be.get("a/b/k"))?.value)).toBe("v");
  });

  it("is fine on a missing root and rejects a negative age", async () => {
    expect(await be.removeStaleTempFiles()).toBe(0);
    await expect(be.removeStaleTempFiles({ olderThanMs: -1 })).rejects.toThrow(RangeError);
  });
});

describe("keys that could escape the root are rejected", () => {
  const badKeys = ["../x", "a/../../x", "a/..", "/etc/passwd", "a//b", "a/./b", ".", "./x", "a/", ""];

  it.each(badKeys)("get/put/delete %j → InvalidKeyError", async (key) => {
    await expect(be.get(key)).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(be.put({ key, value: enc("v") })).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(be.delete(key)).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it.each(["../", "a/../../", "/", "//", "a", "./", "a/./"])("list %j → InvalidKeyError", async (prefix) => {
    await expect(be.list(prefix)).rejects.toBeInstanceOf(InvalidKeyError);
  });

  it("nothing is written outside the root", async () => {
    for (const key of badKeys) await be.put({ key, value: enc("v") }).catch(() => undefined);
    expect(await readdir(base)).toEqual([]);
  });
});
