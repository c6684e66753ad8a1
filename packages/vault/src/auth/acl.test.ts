import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Acl } from "./acl.js";
import { PolicyError, parsePolicy } from "./policy.js";
import { DEFAULT_POLICY } from "./policy-store.js";

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as T;

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
    ["parameter constraints", `path "a" { capabilities = ["read"] allowed_parameters = { x = [] } }`],
    ["unknown top-level key", `paths "a" { capabilities = ["read"] }`],
    ["syntax error", `path "a" { capabilities = [ }`],
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
  });

  it("refuses '+*' as Vault does", () => {
    expect(() => parsePolicy("w", `path "secret/+*" { capabilities = ["read"] }`)).toThrow(/'\+\*'/);
    expect(() => parsePolicy("w", `path "secret/a+*" { capabilities = ["read"] }`)).toThrow(PolicyError);
  });

  it("accepts and refuses what OpenBao 2.6.2 accepts and refuses (its answers to the same texts)", () => {
    const { cases } = fixture<{
      cases: { policy: string; accepted: boolean; templated?: boolean; error?: string }[];
    }>("policies-parse.json");
    // Accepted by OpenBao, refused by Bulwark on purpose: what it cannot enforce, and two shapes
    // of hcl v1's loose decoding (a path block without a label, or with two).
    const refusedOnPurpose =
      /allowed_parameters|denied_parameters|required_parameters|wrapping_ttl|mfa_methods|pagination_limit|list_scan_response_keys_filter_path|\{\{time\.now\}\}|^path \{|^path "a" "b"/;
    let accepted = 0;
    let refused = 0;
    for (const c of cases) {
      if (!c.accepted || refusedOnPurpose.test(c.policy)) {
        expect(() => parsePolicy("p", c.policy), c.policy).toThrow(PolicyError);
        refused++;
        continue;
      }
      const p = parsePolicy("p", c.policy);
      expect(p.templated, c.policy).toBe(c.templated);
      accepted++;
    }
    expect(accepted).toBeGreaterThan(30);
    expect(refused).toBeGreaterThan(25);
    // What Bulwark cannot enforce says so, naming the key.
    expect(() => parsePolicy("p", `path "a" { capabilities = ["read"] pagination_limit = 5 }`)).toThrow(
      /pagination_limit is not supported by Bulwark; remove it/,
    );
    expect(() => parsePolicy("p", `path "a/{{time.now}}" { capabilities = ["read"] }`)).toThrow(
      /\{\{time\.now\}\} template is not supported by Bulwark/,
    );
  });

  it("drops a path whose expiration has passed and reports when the next one expires", () => {
    const p = parsePolicy(
      "e",
      `path "old" { capabilities = ["read"] expiration = "2020-01-01T00:00:00Z" }
       path "soon" { capabilities = ["read"] expiration = "2099-01-01T00:00:00Z" }
       path "later" { capabilities = ["read"] expiration = "4102444800" }
       path "always" { capabilities = ["read"] }`,
    );
    expect(p.rules.map((r) => r.pattern)).toEqual(["soon", "later", "always"]);
    expect(p.expiration?.toISOString()).toBe("2099-01-01T00:00:00.000Z");
    // OpenBao skips an expired path before checking the rest of it (OpenBao 2.6.2 accepts these).
    expect(parsePolicy("e", `path "+*" { expiration = 5 }`).rules).toEqual([]);
    expect(
      parsePolicy(
        "e",
        `path "a" { capabilities = ["fly"] allowed_parameters = {} expiration = "2020-01-01T00:00:00Z" }`,
      ).rules,
    ).toEqual([]);
    expect(() => parsePolicy("e", `path "a" { capabilities = ["read"] expiration = "2099-01-01" }`)).toThrow(
      /invalid expiration time/,
    );
  });

  it("OpenBao's default policy parses, templated, and its entity paths apply to no Bulwark token", () => {
    const p = parsePolicy("default", DEFAULT_POLICY);
    expect(p.templated).toBe(true);
    expect(p.rules.filter((r) => r.templated).map((r) => r.pattern)).toEqual([
      "identity/entity/id/{{identity.entity.id}}",
      "identity/entity/name/{{identity.entity.name}}",
    ]);
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
  it("names the policies that grant an operation on the deciding rule (audit granting_policies)", () => {
    const a = new Acl([
      parsePolicy("readers", 'path "secret/*" { capabilities = ["read", "list"] }'),
      parsePolicy("writers", 'path "secret/*" { capabilities = ["update", "read"] }'),
      parsePolicy(
        "exact",
        'path "secret/app" { capabilities = ["read"] }\npath "kv/" { capabilities = ["list"] }',
      ),
    ]);
    expect(a.grantingPolicies("secret/db", "read")).toEqual(["readers", "writers"]);
    expect(a.grantingPolicies("secret/db", "update")).toEqual(["writers"]);
    // The exact rule decides secret/app: the glob's policies do not count there.
    expect(a.grantingPolicies("secret/app", "read")).toEqual(["exact"]);
    expect(a.grantingPolicies("secret/app", "update")).toEqual([]);
    expect(a.grantingPolicies("kv/", "list")).toEqual(["exact"]);
    expect(a.grantingPolicies("other", "read")).toEqual([]);
    expect(new Acl([], ["root"]).grantingPolicies("anything", "delete")).toEqual(["root"]);
  });

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

describe("ACL evaluation against OpenBao 2.6.2", () => {
  it("sys/capabilities-self for a token holding only default answers as OpenBao answered", () => {
    const { capabilities } = fixture<{ capabilities: Record<string, string[]> }>(
      "policies-capabilities-default.json",
    );
    const a = new Acl([parsePolicy("default", DEFAULT_POLICY)], ["default"]);
    expect(Object.keys(capabilities).length).toBeGreaterThan(20);
    for (const [path, want] of Object.entries(capabilities)) {
      expect(a.describe(path.replace(/^\/+/, "")), path).toEqual(want);
    }
  });

  it("a '*' before the end is a literal character, as in OpenBao", () => {
    const a = acl(`path "a*b" { capabilities = ["read"] }`);
    expect(a.allows("a*b", "read")).toBe(true);
    expect(a.allows("axb", "read")).toBe(false);
  });

  it("a LIST of 'p/x/' falls back to the wildcard rules for 'p/x' (OpenBao's list lookup)", () => {
    const a = acl(`path "secret/+" { capabilities = ["list"] }`);
    expect(a.allows("secret/app/", "list")).toBe(true);
    expect(a.describe("secret/app/")).toEqual(["list"]);
    expect(a.allows("secret/app/", "read")).toBe(false);
  });

  it("a rule with no capabilities shadows broader ones (OpenBao keeps it, granting nothing)", () => {
    const a = acl(`path "secret/*" { capabilities = ["read"] }
                   path "secret/closed" {}`);
    expect(a.allows("secret/closed", "read")).toBe(false);
    expect(a.describe("secret/closed")).toEqual(["deny"]);
    expect(a.allows("secret/open", "read")).toBe(true);
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
    // OpenBao's hasMountAccess: any capability below the mount counts (scan too), and so does a
    // LIST rule for the mount path without its '/'.
    expect(acl(`path "kv/app/*" { capabilities = ["scan"] }`).reachesInto("kv/")).toBe(true);
    expect(acl(`path "kv" { capabilities = ["list"] }`).reachesInto("kv/")).toBe(true);
  });
});
