/**
 * ACL policies against a real OpenBao 2.6.2 (tooling/services/.bin/bao), both ways:
 *
 * - API: the same policy requests (sys/policy, sys/policies/acl: list, read, write with cas /
 *   cas_required / ttl / expiration, PATCH, delete, the built-ins, names with upper case and '/')
 *   to OpenBao and to Bulwark; statuses and normalised bodies must agree, and capabilities-self of
 *   a token holding only `default` too.
 * - Records Bulwark writes: PolicyStore's `sys/policy/<name>` bytes are put into OpenBao's storage
 *   (sys/raw); OpenBao must read them with the same fields, enforce them as Bulwark does
 *   (sys/capabilities for a token holding each), and continue their CAS version.
 *
 * Records OpenBao wrote are read and enforced by Bulwark in packages/vault/src/auth/policy-store.test.ts
 * (vectors captured from this binary). Without the binary the suite is skipped locally and fails
 * under CI=true.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryBackend } from "@bulwark/storage-memory";
import { Acl, PolicyStore, parsePolicy } from "@bulwark/vault";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runGroup } from "../../../packages/core/test/support/processes.js";
import { initAndUnseal, type TestApp, testApp } from "./helpers/app.js";
import { BAO, type ScratchOpenBao, startScratchOpenBao } from "./helpers/openbao-scratch.js";
import { serviceGate, tempDir } from "./helpers/server-process.js";

// One OpenBao process on a loaded 2-core machine: generous explicit limits.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = serviceGate("policies against OpenBao", BAO, "the bao binary");

interface Answer {
  status: number;
  body: unknown;
}

/** Started in beforeAll. */
let bao: ScratchOpenBao;
let t: TestApp;
let root = "";

async function openbao(method: string, path: string, body?: unknown, token = bao.token): Promise<Answer> {
  const r = await bao.http(method, path, body, token);
  return { status: r.status, body: r.json };
}

async function bulwark(method: string, path: string, body?: unknown, token = root): Promise<Answer> {
  // Bulwark's LIST arrives as GET ?list=true (list-method.ts); inject cannot send LIST.
  const [m, url] = method === "LIST" ? ["GET", `/v1/${path}?list=true`] : [method, `/v1/${path}`];
  const r = await t.call(m, url, { token, ...(body === undefined ? {} : { body }) });
  return { status: r.statusCode, body: r.body === "" ? undefined : r.json() };
}

/** Drops what differs by nature (ids, write times) and Bulwark's envelope extra (`mount_type`). */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalise);
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === "request_id" || k === "mount_type") continue;
    if (k === "modified" || k === "expiration") out[k] = typeof x === "string" ? "<time>" : x;
    else out[k] = normalise(x);
  }
  return out;
}

/** The same request to both servers: same status, same normalised body. */
async function same(method: string, path: string, body?: unknown): Promise<Answer> {
  const [a, b] = [await openbao(method, path, body), await bulwark(method, path, body)];
  expect({ status: b.status, body: normalise(b.body) }, `${method} ${path}`).toEqual({
    status: a.status,
    body: normalise(a.body),
  });
  return a;
}

/** A small deterministic generator (the same texts every run): an integer in [0, n). */
function seeded(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
}

async function startOpenBao(): Promise<ScratchOpenBao> {
  const ob = await startScratchOpenBao({ dir: tempDir("policies-openbao-") });
  // Active once the built-in policies are loaded: wait until default reads.
  await ob.until(
    "openbao active",
    async () => (await ob.http("GET", "sys/policies/acl/default")).status === 200,
  );
  return ob;
}

describe.skipIf(missing !== undefined)("policies against OpenBao 2.6.2", () => {
  beforeAll(async () => {
    bao = await startOpenBao();
    t = await testApp();
    root = (await initAndUnseal(t, 1, 1)).root;
  });
  afterAll(async () => {
    await t?.close();
    await bao?.stop();
  });

  it("sys/policy and sys/policies/acl answer as OpenBao's", async () => {
    const text = 'path "kv/data/app/*" {\n  capabilities = ["read", "list"]\n}\n';
    const other = 'path "kv/data/other" {\n  capabilities = ["update"]\n}\n';
    await same("PUT", "sys/policies/acl/d-app", { policy: text });
    await same("GET", "sys/policies/acl/d-app");
    await same("GET", "sys/policy/d-app");
    // Warnings: a name converted to lower case, the deprecated `rules`.
    await same("PUT", "sys/policy/D-Upper", { policy: text });
    await same("GET", "sys/policy/d-upper");
    await same("PUT", "sys/policy/d-rules", { rules: text });
    await same("PUT", "sys/policies/acl/d-empty", { policy: "" });
    await same("PUT", "sys/policy/d-empty", {});
    // Check-and-set.
    await same("PUT", "sys/policies/acl/d-app", { policy: other, cas: 5 });
    await same("PUT", "sys/policies/acl/d-app", { policy: other, cas: -1 });
    await same("PUT", "sys/policies/acl/d-app", { policy: other, cas: 1, cas_required: true });
    await same("GET", "sys/policies/acl/d-app");
    await same("PUT", "sys/policies/acl/d-app", { policy: text });
    await same("PUT", "sys/policies/acl/d-new", { policy: text, cas_required: true });
    await same("PUT", "sys/policies/acl/d-new", { policy: text, cas_required: true, cas: -1 });
    await same("GET", "sys/policies/acl/d-new");
    // PATCH keeps what the body leaves out and checks against the stored version.
    await same("PATCH", "sys/policies/acl/d-app", { cas_required: false, cas: 2 });
    await same("PATCH", "sys/policies/acl/d-app", { policy: other });
    await same("GET", "sys/policies/acl/d-app");
    await same("PATCH", "sys/policies/acl/d-missing", { policy: other });
    // Expirations.
    await same("PUT", "sys/policies/acl/d-ttl", { policy: text, ttl: "1h" });
    await same("GET", "sys/policies/acl/d-ttl");
    await same("PUT", "sys/policies/acl/d-ttl", { policy: text, expiration: "2099-01-01T00:00:00Z" });
    await same("PUT", "sys/policies/acl/d-ttl", { policy: text, expiration: "2020-01-01T00:00:00Z" });
    await same("PUT", "sys/policies/acl/d-ttl", { policy: text, expiration: "2099-01-01T00:00:00Z", ttl: 5 });
    // The built-ins.
    await same("PUT", "sys/policies/acl/root", { policy: text });
    await same("PUT", "sys/policies/acl/response-wrapping", { policy: text });
    await same("DELETE", "sys/policies/acl/root");
    await same("DELETE", "sys/policies/acl/default");
    await same("DELETE", "sys/policy/response-wrapping");
    await same("GET", "sys/policies/acl/root");
    await same("GET", "sys/policy/root");
    // Names with '/' nest; lists: the stored names (a level, then its folders), root last.
    await same("PUT", "sys/policies/acl/team/app", { policy: text });
    await same("GET", "sys/policies/acl/team/app");
    // Any other name OpenBao takes: spaces, ':' (URL-encoded in the path).
    await same("PUT", "sys/policies/acl/my%20pol", { policy: text });
    await same("PUT", "sys/policy/x%3Ay", { policy: text });
    await same("GET", "sys/policies/acl/my%20pol");
    await same("GET", "sys/policy/x%3Ay");
    await same("LIST", "sys/policies/acl");
    await same("GET", "sys/policy");
    await same("DELETE", "sys/policies/acl/d-rules");
    await same("DELETE", "sys/policies/acl/never-was");
    await same("GET", "sys/policies/acl/d-rules");
    await same("GET", "sys/policy/d-rules");
    await same("LIST", "sys/policies/acl");
  });

  it("sys/capabilities-self and sys/capabilities answer in OpenBao's shape", async () => {
    await same("POST", "sys/capabilities-self", { path: "kv/a" });
    await same("POST", "sys/capabilities-self", { paths: ["kv/a", "kv/b"] });
    await same("POST", "sys/capabilities-self", { paths: ["kv/a", "kv/a"] });
    await same("POST", "sys/capabilities-self", { path: "kv/a", paths: ["kv/b"] });
    await same("POST", "sys/capabilities-self", { paths: "kv/a,kv/b" });
    await same("POST", "sys/capabilities-self", { paths: [] });
  });

  it("the bao CLI's policy commands print the same on both servers", async () => {
    const bulwarkAddr = await t.app.listen({ port: 0, host: "127.0.0.1" });
    const dir = tempDir("policies-openbao-cli-");
    const file = join(dir, "p.hcl");
    writeFileSync(file, 'path "kv/data/cli/*" {\n  capabilities = ["read"]\n}\n');
    const cli = async (addr: string, token: string, args: string[]) => {
      const r = await runGroup(BAO, args, {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, VAULT_ADDR: addr, VAULT_TOKEN: token },
        timeoutMs: 60_000,
        description: `bao ${args.join(" ")}`,
      });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr.replaceAll(addr, "<addr>") };
    };
    for (const args of [
      ["policy", "write", "d-cli", file],
      ["policy", "read", "d-cli"],
      ["policy", "read", "-format=json", "d-cli"],
      ["policy", "read", "D-CLI"],
      ["policy", "read", "nope"],
      ["policy", "read", "root"],
      ["policy", "list"],
      ["policy", "list", "-format=json"],
      ["policy", "delete", "default"],
      ["policy", "delete", "d-cli"],
      ["policy", "list"],
    ]) {
      const [a, b] = [await cli(bao.addr, bao.token, args), await cli(bulwarkAddr, root, args)];
      expect(b, args.join(" ")).toEqual(a);
    }
  });

  it("a policy OpenBao refuses is refused (400) by Bulwark too", async () => {
    for (const policy of [
      'path "a" { capabilities = ["READ"] }',
      'path "a" { capabilities = "read" }',
      'path "a/{{identity.entity.id" { capabilities = ["read"] }',
      'path "a" { capabilities = ["read"] foo = 1 }',
      'path "+*" { capabilities = ["read"] }',
    ]) {
      const [a, b] = [
        await openbao("PUT", "sys/policies/acl/d-bad", { policy }),
        await bulwark("PUT", "sys/policies/acl/d-bad", { policy }),
      ];
      expect([a.status, b.status], policy).toEqual([400, 400]);
    }
  });

  it("random policy texts: OpenBao and Bulwark's parser accept and refuse the same", async () => {
    const rnd = seeded(20261208);
    const pick = <T>(a: readonly T[]): T => a[rnd(a.length)] as T;
    const caps = [
      "read",
      "list",
      "create",
      "update",
      "delete",
      "patch",
      "sudo",
      "deny",
      "scan",
      "READ",
      "fly",
      "",
    ];
    const label = () =>
      pick([
        '"a"',
        '"kv/*"',
        '"kv/+/x"',
        '"a{{identity.entity.id}}"',
        '"{{x"',
        '"a}}"',
        '""',
        '"/x"',
        '"+*"',
        '"a*b"',
      ]);
    const value = (d: number): string =>
      pick([
        () => `[${Array.from({ length: rnd(3) }, () => `"${pick(caps)}"`).join(", ")}]`,
        () => `"${pick(caps)}"`,
        () => "5",
        () => "true",
        () => (d > 0 ? `{ ${attr(d - 1)} }` : "1"),
        () => (d > 0 ? `[{ ${attr(d - 1)} }]` : "[]"),
        () => '"2099-01-01T00:00:00Z"',
      ])();
    const key = () =>
      pick([
        "capabilities",
        "capabilities",
        "policy",
        "comment",
        "expiration",
        "allowed_parameters",
        "foo",
        "path",
        "name",
      ]);
    const attr = (d: number): string => `${key()} = ${value(d)}`;
    const item = (): string =>
      pick([
        () => `path ${label()} { ${Array.from({ length: rnd(3) }, () => attr(1)).join("\n")} }`,
        () => `path = ${value(1)}`,
        () => `name = ${value(1)}`,
        () => `${key()} ${label()} { ${attr(1)} }`,
      ])();
    const seen = new Set<string>();
    const differ: string[] = [];
    while (seen.size < 150) {
      const policy = Array.from({ length: 1 + rnd(3) }, item).join("\n");
      if (seen.has(policy)) continue;
      seen.add(policy);
      const theirs = (await openbao("PUT", "sys/policies/acl/d-fuzz", { policy })).status === 204;
      let ours = true;
      try {
        parsePolicy("d-fuzz", policy);
      } catch (e) {
        ours = false;
        // Refused on purpose: what Bulwark cannot enforce.
        if (theirs && /is not supported by Bulwark/.test((e as Error).message)) continue;
      }
      if (ours !== theirs) differ.push(`${theirs ? "OpenBao accepts" : "OpenBao refuses"}: ${policy}`);
    }
    expect(differ).toEqual([]);
  });

  it("random JSON policies: Bulwark's parser takes none that OpenBao refuses", async () => {
    // hcl v1 flattens nested JSON objects in ways Bulwark does not copy; refusing more is safe (the
    // author is told), accepting more is not (OpenBao could not load the record).
    const rnd = seeded(42);
    const pick = <T>(a: readonly T[]): T => a[rnd(a.length)] as T;
    const caps = ["read", "list", "deny", "scan", "READ", ""];
    const scalar = () => pick<unknown>(["read", 5, true, null, "", "2099-01-01T00:00:00Z", "write"]);
    const key = () =>
      pick([
        "capabilities",
        "capabilities",
        "policy",
        "comment",
        "expiration",
        "allowed_parameters",
        "foo",
        "path",
        "name",
      ]);
    const value = (d: number): unknown =>
      pick<() => unknown>([
        () => Array.from({ length: rnd(3) }, () => pick(caps)),
        () => pick(caps),
        scalar,
        () => (d > 0 ? object(d - 1) : 1),
        () => (d > 0 ? [object(d - 1)] : []),
      ])();
    const object = (d: number): Record<string, unknown> =>
      Object.fromEntries(Array.from({ length: rnd(3) }, () => [key(), value(d)]));
    const paths = (): unknown =>
      pick<() => unknown>([
        () =>
          Object.fromEntries(
            Array.from({ length: rnd(3) }, () => [pick(["a", "kv/*", "kv/+/x", "/x", "+*", ""]), object(1)]),
          ),
        () => [{ [pick(["a", "kv/*"])]: object(1) }],
        () => [],
        () => "a",
        () => ({}),
      ])();
    const seen = new Set<string>();
    const wrong: string[] = [];
    while (seen.size < 120) {
      const policy = JSON.stringify(
        Object.fromEntries(
          Array.from({ length: 1 + rnd(2) }, () =>
            pick<[string, unknown]>([
              ["path", paths()],
              ["path", paths()],
              ["name", value(0)],
              [key(), value(1)],
            ]),
          ),
        ),
      );
      if (seen.has(policy)) continue;
      seen.add(policy);
      if ((await openbao("PUT", "sys/policies/acl/d-fuzz", { policy })).status === 204) continue;
      try {
        parsePolicy("d-fuzz", policy);
        wrong.push(policy);
      } catch {
        // Refused by both.
      }
    }
    expect(wrong).toEqual([]);
  });

  it("random policies: a token holding one or two of them has the same capabilities on both", async () => {
    const rnd = seeded(7);
    const pick = <T>(a: readonly T[]): T => a[rnd(a.length)] as T;
    const patterns = [
      "kv/*",
      "kv/+/x",
      "kv/a/*",
      "kv/+/*",
      "kv/a",
      "kv/a/b",
      "kv/+",
      "+/a",
      "kv/a*",
      "kv/a/+/c",
      "kv/+/+",
      "kv/a/",
      "kv/",
      "*",
      "kv/a/b*",
      "kv/+/b*",
      "+/+/c",
      "kv/a*b",
    ];
    const capabilities = ["read", "list", "update", "create", "delete", "deny", "sudo", "patch"];
    const paths = [
      "kv/a",
      "kv/a/",
      "kv/a/b",
      "kv/a/b/",
      "kv/a/b/c",
      "kv/x/x",
      "kv/ab",
      "kv/",
      "kv",
      "x/a",
      "kv/a/x/c",
      "kv/a*b",
      "kv/abc/b",
    ];
    const texts = new Map<string, string>();
    let compared = 0;
    for (let i = 0; i < 40; i++) {
      const name = `d-acl-${i}`;
      const text = Array.from(
        { length: 1 + rnd(4) },
        () =>
          `path "${pick(patterns)}" { capabilities = ${JSON.stringify(Array.from({ length: rnd(3) }, () => pick(capabilities)))} }`,
      ).join("\n");
      texts.set(name, text);
      expect((await openbao("PUT", `sys/policies/acl/${name}`, { policy: text })).status, text).toBe(204);
      const names = i > 0 && rnd(2) === 1 ? [name, `d-acl-${i - 1}`] : [name];
      const created = await openbao("POST", "auth/token/create", {
        policies: names,
        no_default_policy: true,
      });
      const token = (created.body as { auth: { client_token: string } }).auth.client_token;
      const theirs = (await openbao("POST", "sys/capabilities", { token, paths })).body as {
        data: Record<string, string[]>;
      };
      const acl = new Acl(
        names.map((n) => parsePolicy(n, texts.get(n) as string)),
        names,
      );
      for (const p of paths) {
        expect(
          acl.describe(p),
          `${names.join("+")} on ${p}:\n${names.map((n) => texts.get(n)).join("\n")}`,
        ).toEqual(theirs.data[p]);
        compared++;
      }
    }
    expect(compared).toBe(40 * paths.length);
  });

  it("random policies: the mount reach (sys/internal/ui/mounts) is OpenBao's hasMountAccess", async () => {
    expect((await openbao("POST", "sys/mounts/kv", { type: "kv", options: { version: "2" } })).status).toBe(
      204,
    );
    const rnd = seeded(99);
    const pick = <T>(a: readonly T[]): T => a[rnd(a.length)] as T;
    const patterns = [
      "kv/*",
      "kv/+/x",
      "kv/a/*",
      "kv/+/*",
      "kv/a",
      "kv",
      "kv/",
      "k*",
      "kv*",
      "+/a",
      "+/+/c",
      "+",
      "*",
      "kva/*",
      "kv/data/+/x",
      "x/*",
      "+/data/*",
      "kv/+",
      "k+/a",
    ];
    const capabilities = ["read", "list", "deny", "scan", "update"];
    let reached = 0;
    for (let i = 0; i < 60; i++) {
      const name = `d-reach-${i}`;
      const text = Array.from(
        { length: 1 + rnd(3) },
        () =>
          `path "${pick(patterns)}" { capabilities = ${JSON.stringify(Array.from({ length: rnd(3) }, () => pick(capabilities)))} }`,
      ).join("\n");
      expect((await openbao("PUT", `sys/policies/acl/${name}`, { policy: text })).status, text).toBe(204);
      const created = await openbao("POST", "auth/token/create", {
        policies: [name],
        no_default_policy: true,
      });
      const token = (created.body as { auth: { client_token: string } }).auth.client_token;
      const theirs = (await openbao("GET", "sys/internal/ui/mounts/kv", undefined, token)).status === 200;
      const ours = new Acl([parsePolicy(name, text)], [name]).reachesInto("kv/");
      expect(ours, text).toBe(theirs);
      if (theirs) reached++;
    }
    // Both answers occur (the comparison is not one-sided).
    expect(reached).toBeGreaterThan(10);
    expect(reached).toBeLessThan(55);
  });

  it("capabilities-self of a token holding only default is OpenBao's", async () => {
    const paths = [
      "auth/token/lookup-self",
      "auth/token/renew-self",
      "auth/token/revoke-self",
      "sys/capabilities-self",
      "cubbyhole/x",
      "cubbyhole/",
      "identity/entity/id/abc",
      "sys/internal/ui/resultant-acl",
      "sys/leases/renew",
      "sys/wrapping/unwrap",
      "sys/tools/hash/sha2-256",
      "identity/oidc/provider/p1/authorize",
      "kv/data/x",
      "sys/policy/default",
    ];
    const tokenA = (
      (await openbao("POST", "auth/token/create", { policies: ["default"] })).body as {
        auth: { client_token: string };
      }
    ).auth.client_token;
    const tokenB = (
      (await bulwark("POST", "auth/token/create", { policies: ["default"] })).body as {
        auth: { client_token: string };
      }
    ).auth.client_token;
    const a = await openbao("POST", "sys/capabilities-self", { paths }, tokenA);
    const b = await bulwark("POST", "sys/capabilities-self", { paths }, tokenB);
    expect(b.status).toBe(a.status);
    const pick = (x: Answer) => {
      const data = (x.body as { data: Record<string, string[]> }).data;
      return Object.fromEntries(paths.map((p) => [p, data[p]]));
    };
    expect(pick(b)).toEqual(pick(a));
    expect(pick(a)["cubbyhole/x"]).toEqual(["create", "delete", "list", "read", "update"]);
  });

  it("records Bulwark writes are read, enforced and continued by OpenBao", async () => {
    const storage = new MemoryBackend();
    const store = new PolicyStore(storage);
    await store.setup();
    const written: Record<string, string> = {
      "b-plain":
        'path "kv/data/app/*" {\n  capabilities = ["read", "list"]\n}\npath "kv/data/app/locked" {\n  capabilities = ["deny"]\n}\n',
      "b-legacy": 'path "kv1/*" {\n  policy = "write"\n}\n',
      "b-json": JSON.stringify({ path: { "kv/data/+/cfg": { capabilities: ["read", "update"] } } }),
      "b-templated":
        'path "kv/data/users/{{identity.entity.id}}/*" {\n  capabilities = ["read"]\n}\npath "kv/data/shared/*" {\n  capabilities = ["read"]\n}\n',
      "b-expiring":
        'path "kv/data/gone" {\n  capabilities = ["read"]\n  expiration = "2020-01-01T00:00:00Z"\n}\npath "kv/data/kept" {\n  capabilities = ["read"]\n}\n',
      "b-team/app": 'path "kv/data/team/*" {\n  capabilities = ["read", "scan"]\n}\n',
    };
    for (const [name, text] of Object.entries(written)) await store.write(name, text);
    // A CAS history (version 3, cas_required), template flags and an expiration.
    await store.write("b-plain", written["b-plain"] as string, { cas: 1, casRequired: true });
    await store.write("b-plain", written["b-plain"] as string, { cas: 2, casRequired: true });
    await store.write("b-templated", written["b-templated"] as string, {
      allowWildcardsInIdentityTemplates: true,
      allowSlashesInIdentityTemplates: true,
      expiration: new Date("2099-03-04T05:06:07.5Z"),
    });
    // The built-ins as Bulwark's setup() stored them, under fresh names (OpenBao caches its own).
    const copies: Record<string, string> = {
      "b-default": "default",
      "b-response-wrapping": "response-wrapping",
    };
    const names = [...Object.keys(written), ...Object.keys(copies)];
    for (const name of names) {
      const e = await storage.get(`sys/policy/${copies[name] ?? name}`);
      const value = new TextDecoder().decode(e?.value);
      const put = await openbao("PUT", `sys/raw/sys/policy/${name}`, { value });
      expect(put.status, name).toBe(204);
    }
    const paths = [
      "kv/data/app/x",
      "kv/data/app/locked",
      "kv/data/one/cfg",
      "kv1/x",
      "kv1/",
      "kv/data/users/u/x",
      "kv/data/shared/x",
      "kv/data/gone",
      "kv/data/kept",
      "kv/data/team/x",
      "cubbyhole/x",
      "auth/token/lookup-self",
      "cubbyhole/response",
      "sys/wrapping/unwrap",
    ];
    for (const name of names) {
      const ours = await store.info(copies[name] ?? name);
      const theirs = await openbao("GET", `sys/policies/acl/${name}`);
      expect(theirs.status, name).toBe(200);
      const data = (theirs.body as { data: Record<string, unknown> }).data;
      expect(data, name).toMatchObject({
        policy: ours?.raw,
        version: ours?.version,
        cas_required: ours?.casRequired,
        modified: ours?.modified,
        allow_wildcards_in_identity_templates: ours?.allowWildcardsInIdentityTemplates,
        allow_slashes_in_identity_templates: ours?.allowSlashesInIdentityTemplates,
      });
      expect(data.expiration === undefined ? undefined : Date.parse(data.expiration as string), name).toBe(
        ours?.expiration?.getTime(),
      );
      // Enforced alike: sys/capabilities for an OpenBao token holding only this policy.
      const created = await openbao("POST", "auth/token/create", {
        policies: [name],
        no_default_policy: true,
      });
      const token = (created.body as { auth: { client_token: string } }).auth.client_token;
      const caps = await openbao("POST", "sys/capabilities", { token, paths });
      expect(caps.status, name).toBe(200);
      const acl = await store.acl([copies[name] ?? name]);
      for (const p of paths) {
        expect((caps.body as { data: Record<string, string[]> }).data[p], `${name} on ${p}`).toEqual(
          acl.describe(p),
        );
      }
    }
    // OpenBao continues Bulwark's CAS history: version 3 is current, cas_required holds.
    const text = written["b-plain"] as string;
    expect((await openbao("PUT", "sys/policies/acl/b-plain", { policy: text })).status).toBe(400);
    expect((await openbao("PUT", "sys/policies/acl/b-plain", { policy: text, cas: 2 })).status).toBe(400);
    expect((await openbao("PUT", "sys/policies/acl/b-plain", { policy: text, cas: 3 })).status).toBe(204);
    const after = await openbao("GET", "sys/policies/acl/b-plain");
    expect((after.body as { data: { version: number } }).data.version).toBe(4);
  });
});
