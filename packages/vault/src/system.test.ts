import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Acl } from "./auth/acl.js";
import { parsePolicy } from "./auth/policy.js";
import { decodeTable, type MountEntry } from "./kv/mounts.js";
import { capabilitiesOf, mountInfo, policyText } from "./system.js";

describe("the system backend's formats", () => {
  it("describes every mount and auth method as OpenBao 2.6.2's sys/mounts and sys/auth answer them, from the same tables", () => {
    const answers = (
      JSON.parse(
        readFileSync(new URL("./kv/fixtures/openbao-mount-answers.json", import.meta.url), "utf8"),
      ) as {
        answers: Record<string, Record<string, unknown>>;
      }
    ).answers;
    const records = (
      JSON.parse(
        readFileSync(new URL("./kv/fixtures/openbao-mount-tables.json", import.meta.url), "utf8"),
      ) as {
        records: Record<string, { stored_base64: string }>;
      }
    ).records;
    const table = (p: string): MountEntry[] =>
      decodeTable(Buffer.from(records[p]?.stored_base64 ?? "", "base64"), p).entries;
    const mounts: Record<string, unknown> = {};
    for (const m of [...table("core/mounts"), ...table("core/local-mounts")]) mounts[m.path] = mountInfo(m);
    const auth: Record<string, unknown> = {};
    for (const m of [...table("core/auth"), ...table("core/local-auth")]) auth[m.path] = mountInfo(m);
    // Key order too: Go writes map keys sorted.
    expect(JSON.stringify(mounts["kv2/"])).toBe(JSON.stringify(answers["sys/mounts"]?.["kv2/"]));
    expect(mounts).toEqual(answers["sys/mounts"]);
    expect(auth).toEqual(answers["sys/auth"]);
    const kv2 = table("core/mounts").find((m) => m.path === "kv2/") as MountEntry;
    expect(mountInfo(kv2)).toEqual(answers["sys/mounts/kv2"]);
    expect({ ...mountInfo(kv2), path: "kv2/" }).toEqual(answers["sys/internal/ui/mounts/kv2/x"]);
    const cubbyhole = table("core/local-mounts").find((m) => m.path === "cubbyhole/") as MountEntry;
    expect(mountInfo(cubbyhole)).toEqual(answers["sys/mounts/cubbyhole"]);
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
