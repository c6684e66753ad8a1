import { describe, expect, it } from "vitest";
import { Acl } from "./auth/acl.js";
import { parsePolicy } from "./auth/policy.js";
import type { MountEntry } from "./kv/mounts.js";
import { capabilitiesOf, mountInfo, policyText, SYSTEM_MOUNT, tokenAuthMount } from "./system.js";

describe("the system backend's formats", () => {
  it("describes a mount with Vault's MountOutput fields, copying config and options", () => {
    const m: MountEntry = {
      path: "secret/",
      type: "kv",
      description: "d",
      uuid: "u",
      accessor: "kv_1",
      options: { version: "2" },
      seal_wrap: true,
      local: false,
      external_entropy_access: false,
      config: { default_lease_ttl: 60, max_lease_ttl: 120, force_no_cache: false },
      created_time: 1,
    };
    const info = mountInfo(m);
    expect(Object.keys(info)).toEqual([
      "accessor",
      "config",
      "description",
      "external_entropy_access",
      "local",
      "options",
      "plugin_version",
      "running_plugin_version",
      "running_sha256",
      "seal_wrap",
      "type",
      "uuid",
    ]);
    expect(info).toMatchObject({ accessor: "kv_1", options: { version: "2" }, seal_wrap: true, type: "kv" });
    expect(info.config).not.toBe(m.config);
    expect(info.options).not.toBe(m.options);
    expect(info).not.toHaveProperty("created_time");
    expect(SYSTEM_MOUNT).toMatchObject({ type: "system", options: null, seal_wrap: true });
  });

  it("derives the token auth method's accessor and UUID from the cluster id, stably", () => {
    const a = tokenAuthMount("c1");
    expect(tokenAuthMount("c1")).toEqual(a);
    expect(a.accessor).toMatch(/^auth_token_[0-9a-f]{8}$/);
    expect(a.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const b = tokenAuthMount("c2");
    expect(b.accessor).not.toBe(a.accessor);
    expect(b.uuid).not.toBe(a.uuid);
    expect(a).toMatchObject({ type: "token", config: { token_type: "default-service" }, seal_wrap: false });
  });

  it("answers capabilities per path, ignoring a leading '/', with the first path's as `capabilities`", () => {
    const acl = new Acl([
      parsePolicy(
        "p",
        'path "secret/*" { capabilities = ["read", "list"] }\npath "secret/no" { capabilities = ["deny"] }',
      ),
    ]);
    const out = capabilitiesOf(acl, ["/secret/a", "secret/no", "other"]);
    expect(out).toEqual({
      "/secret/a": ["list", "read"],
      "secret/no": ["deny"],
      other: ["deny"],
      capabilities: ["list", "read"],
    });
  });

  it("takes a policy base64-encoded when it decodes to a policy, else as written", () => {
    const hcl = 'path "secret/*" { capabilities = ["read"] }';
    expect(policyText(Buffer.from(hcl).toString("base64"))).toBe(hcl);
    expect(policyText(` ${Buffer.from(hcl).toString("base64")}\n`)).toBe(hcl);
    expect(policyText(hcl)).toBe(hcl);
    // Valid base64 that is not a policy (no `path`) stays as written.
    expect(policyText("abcd")).toBe("abcd");
    expect(policyText(Buffer.from("hello world").toString("base64"))).toBe(
      Buffer.from("hello world").toString("base64"),
    );
  });
});
