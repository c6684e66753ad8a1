import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Acl } from "./acl.js";
import { PolicyError, parsePolicy } from "./policy.js";

const acl = (...docs: string[]) => new Acl(docs.map((d, i) => parsePolicy(`p${i}`, d)));

describe("policy documents", () => {
  it("parses HCL path blocks with capabilities", () => {
    const p = parsePolicy(
      "app",
      `# comment
      path "secret/data/app/*" { capabilities = ["read", "list"] }
      path "sys/mounts" {
        capabilities = ["read"]
      }`,
    );
    expect(p.rules.map((r) => [r.pattern, [...r.capabilities].sort()])).toEqual([
      ["secret/data/app/*", ["list", "read"]],
      ["sys/mounts", ["read"]],
    ]);
  });

  it("parses Vault's JSON form", () => {
    const p = parsePolicy("j", JSON.stringify({ path: { "kv/*": { capabilities: ["create", "update"] } } }));
    expect([...(p.rules[0]?.capabilities ?? [])].sort()).toEqual(["create", "update"]);
  });

  it("maps the legacy policy shorthand", () => {
    const p = parsePolicy("l", `path "a/*" { policy = "write" }`);
    expect([...(p.rules[0]?.capabilities ?? [])].sort()).toEqual([
      "create",
      "delete",
      "list",
      "read",
      "update",
    ]);
  });

  it.each([
    ["unknown capability", `path "a" { capabilities = ["fly"] }`],
    ["glob in the middle", `path "a/*/b" { capabilities = ["read"] }`],
    ["parameter constraints", `path "a" { capabilities = ["read"] allowed_parameters = { x = [] } }`],
    ["no capabilities", `path "a" { }`],
    ["unknown top-level key", `paths "a" { capabilities = ["read"] }`],
    ["syntax error", `path "a" { capabilities = [ }`],
    ["empty document", "   "],
  ])("refuses %s with a PolicyError", (_name, doc) => {
    expect(() => parsePolicy("bad", doc)).toThrow(PolicyError);
  });

  it("loads what Vault loads: a comment in a path block, a path with a leading '/'", () => {
    const p = parsePolicy(
      "v",
      `path "/secret/data/x" {
         comment      = "app secrets"
         capabilities = ["read"]
       }`,
    );
    expect(p.rules.map((r) => r.pattern)).toEqual(["secret/data/x"]);
    expect(new Acl([p]).allows("secret/data/x", "read")).toBe(true);
    const j = parsePolicy(
      "j",
      JSON.stringify({ path: { "/kv/*": { comment: "c", capabilities: ["list"] } } }),
    );
    expect(j.rules.map((r) => r.pattern)).toEqual(["kv/*"]);
    expect(() => parsePolicy("v", `path "a" { comment = ["x"] capabilities = ["read"] }`)).toThrow(
      PolicyError,
    );
  });

  it("refuses '+*' as Vault does", () => {
    expect(() => parsePolicy("w", `path "secret/+*" { capabilities = ["read"] }`)).toThrow(/'\+\*'/);
    expect(() => parsePolicy("w", `path "secret/a+*" { capabilities = ["read"] }`)).toThrow(PolicyError);
  });

  it("throws only PolicyError for arbitrary input", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parsePolicy("fuzz", s);
        } catch (e) {
          expect(e).toBeInstanceOf(PolicyError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("ACL evaluation (Vault's rules)", () => {
  it("a glob matches everything below its prefix, and only that", () => {
    const a = acl(`path "secret/data/app/*" { capabilities = ["read"] }`);
    expect(a.allows("secret/data/app/db", "read")).toBe(true);
    expect(a.allows("secret/data/app/x/y", "read")).toBe(true);
    expect(a.allows("secret/data/other", "read")).toBe(false);
    expect(a.allows("secret/data/app/db", "update")).toBe(false);
  });

  it("+ matches exactly one segment", () => {
    const a = acl(`path "secret/+/team" { capabilities = ["read"] }`);
    expect(a.allows("secret/a/team", "read")).toBe(true);
    expect(a.allows("secret/a/b/team", "read")).toBe(false);
    expect(a.allows("secret/a/teams", "read")).toBe(false);
  });

  it("an exact path beats a glob (only the most specific rule applies)", () => {
    const a = acl(`path "secret/*" { capabilities = ["read", "update"] }
                   path "secret/locked" { capabilities = ["read"] }`);
    expect(a.allows("secret/locked", "update")).toBe(false);
    expect(a.allows("secret/open", "update")).toBe(true);
  });

  it("the longer glob wins over the shorter one", () => {
    const a = acl(`path "secret/*" { capabilities = ["read"] }
                   path "secret/app/*" { capabilities = ["list"] }`);
    expect([...a.capabilities("secret/app/x")]).toEqual(["list"]);
    expect([...a.capabilities("secret/other")]).toEqual(["read"]);
  });

  it("a pattern whose first wildcard comes later wins", () => {
    const a = acl(`path "secret/+/x/*" { capabilities = ["read"] }
                   path "secret/a/+/*" { capabilities = ["update"] }`);
    expect([...a.capabilities("secret/a/x/y")]).toEqual(["update"]);
  });

  it("a pattern without a trailing glob beats one with it at the same wildcard position", () => {
    const a = acl(`path "secret/+/b" { capabilities = ["read"] }
                   path "secret/+/b*" { capabilities = ["update"] }`);
    expect([...a.capabilities("secret/a/b")]).toEqual(["read"]);
  });

  it("deny beats all: the same pattern in another policy cannot grant", () => {
    const a = acl(
      `path "secret/*" { capabilities = ["read"] }`,
      `path "secret/*" { capabilities = ["deny"] }`,
    );
    expect(a.allows("secret/x", "read")).toBe(false);
    expect(a.describe("secret/x")).toEqual(["deny"]);
  });

  it("rules for one pattern from several policies are merged", () => {
    const a = acl(`path "kv/*" { capabilities = ["read"] }`, `path "kv/*" { capabilities = ["list"] }`);
    expect(a.describe("kv/a")).toEqual(["list", "read"]);
  });

  it("sudo is required separately", () => {
    const a = acl(`path "sys/rotate" { capabilities = ["update"] }`);
    expect(a.allows("sys/rotate", "update")).toBe(true);
    expect(a.allows("sys/rotate", "update", { sudo: true })).toBe(false);
    const b = acl(`path "sys/rotate" { capabilities = ["update", "sudo"] }`);
    expect(b.allows("sys/rotate", "update", { sudo: true })).toBe(true);
  });

  it("a LIST on 'p/' is governed by an exact rule for 'p' (Vault trims the slash for list), deny included", () => {
    const a = acl(`path "secret/metadata/app" { capabilities = ["list"] }`);
    expect(a.allows("secret/metadata/app/", "list")).toBe(true);
    expect(a.allows("secret/metadata/app/", "read")).toBe(false);
    const d = acl(
      `path "secret/*" { capabilities = ["read", "list"] }
       path "secret/metadata/hidden" { capabilities = ["deny"] }`,
    );
    expect(d.allows("secret/metadata/hidden/", "list")).toBe(false);
    expect(d.allows("secret/metadata/other/", "list")).toBe(true);
    // An exact rule for the slashed path still comes first.
    const e = acl(
      `path "kv/x/" { capabilities = ["list"] }
       path "kv/x" { capabilities = ["deny"] }`,
    );
    expect(e.allows("kv/x/", "list")).toBe(true);
  });

  it("a templated path ({{identity…}}) grants nothing: Bulwark tokens have no entity, so Vault drops it", () => {
    const a = acl(`path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read", "list"] }
                   path "secret/data/shared/*" { capabilities = ["read"] }`);
    expect(a.allows("secret/data/{{identity.entity.id}}/x", "read")).toBe(false);
    expect(a.describe("secret/data/{{identity.entity.id}}/x")).toEqual(["deny"]);
    expect(a.allows("secret/data/shared/x", "read")).toBe(true);
  });

  it("root allows everything; no policy allows nothing", () => {
    const root = new Acl([], ["root"]);
    expect(root.allows("anything/at/all", "delete", { sudo: true })).toBe(true);
    expect(root.describe("x")).toEqual(["root"]);
    const none = new Acl([], ["default"]);
    expect(none.allows("secret/x", "read")).toBe(false);
    expect(none.describe("secret/x")).toEqual(["deny"]);
  });

  it("an exact pattern always governs its own path", () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 5 }),
        fc.subarray(["read", "list", "update"] as const, { minLength: 1 }),
        (segs, caps) => {
          const path = segs.join("/");
          const a = acl(
            `path "${path}" { capabilities = ${JSON.stringify(caps)} }
             path "${segs[0]}/*" { capabilities = ["delete"] }`,
          );
          expect([...a.capabilities(path)].sort()).toEqual([...caps].sort());
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("reachesInto (Vault's hasMountAccess)", () => {
  it("is true only when some non-deny rule applies at or below the mount", () => {
    const a = acl(
      `path "kv/app/*" { capabilities = ["read"] }
       path "team/+/data/x" { capabilities = ["read"] }
       path "blocked/*" { capabilities = ["deny"] }
       path "ops*" { capabilities = ["list"] }`,
    );
    expect(a.reachesInto("kv/")).toBe(true);
    expect(a.reachesInto("team/a/")).toBe(true);
    expect(a.reachesInto("opsdata/")).toBe(true);
    expect(a.reachesInto("secret/")).toBe(false);
    expect(a.reachesInto("blocked/")).toBe(false);
    expect(a.reachesInto("kv2/")).toBe(false);
    expect(new Acl([], ["root"]).reachesInto("anything/")).toBe(true);
  });
});
