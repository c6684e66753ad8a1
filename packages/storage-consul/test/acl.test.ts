import { afterAll, beforeAll, expect, it } from "vitest";
import { ConsulBackend } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

const MASTER = "b1a2c3d4-0000-4000-8000-00000000a11c";
const enc = (s: string) => new TextEncoder().encode(s);

/** Consul 1.8 ACL syntax: `tokens { master = … }` (renamed initial_management in 1.11). */
const ACL_HCL = `acl {
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  tokens {
    master = "${MASTER}"
  }
}`;

async function api(agent: ConsulAgent, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${agent.url}/v1/${path}`, {
    method: "PUT",
    headers: { "x-consul-token": MASTER },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A token whose policy is `rules` (Consul ACL HCL). */
async function tokenWith(agent: ConsulAgent, name: string, rules: string): Promise<string> {
  await api(agent, "acl/policy", { Name: name, Rules: rules });
  const token = await api(agent, "acl/token", { Description: name, Policies: [{ Name: name }] });
  return token.SecretID as string;
}

describeConsul("ACLs (consul -dev, default_policy deny)", () => {
  let agent: ConsulAgent;
  let readOnly: string;
  let writer: string;
  let keysOnly: string;
  const path = `acl-${process.pid}/`;
  const open: ConsulBackend[] = [];
  const backend = (token?: string) => {
    const b = new ConsulBackend({
      address: agent.address,
      path,
      lockDelayMs: 0,
      ...(token ? { token } : {}),
    });
    open.push(b);
    return b;
  };

  beforeAll(async () => {
    agent = await ConsulAgent.start({ hcl: ACL_HCL, token: MASTER });
    readOnly = await tokenWith(agent, "bulwark-read", `key_prefix "${path}" { policy = "read" }`);
    keysOnly = await tokenWith(agent, "bulwark-keys", `key_prefix "${path}" { policy = "write" }`);
    writer = await tokenWith(
      agent,
      "bulwark-write",
      `key_prefix "${path}" { policy = "write" }\nsession_prefix "" { policy = "write" }`,
    );
  }, 60_000);
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
    await agent?.stop();
  });

  it("a token without write access reads fine and fails its first write with a clear error", async () => {
    const b = backend(readOnly);
    expect(await b.get("core/keyring")).toBeUndefined();
    expect(await b.list("")).toEqual([]);
    for (const write of [
      () => b.put({ key: "core/keyring", value: enc("x") }),
      () => b.delete("core/keyring"),
      () => b.transaction([{ op: "put", entry: { key: "a", value: enc("1") } }]),
    ]) {
      await expect(write()).rejects.toMatchObject({
        name: "StorageError",
        code: "permission_denied",
        message: expect.stringMatching(
          new RegExp(
            `^Consul ACL token lacks key_prefix write on "${path}" \\(Permission denied\\): grant the token's policy key_prefix "${path}" \\{ policy = "write" \\}$`,
          ),
        ),
      });
    }
  });

  it("the HA lock without session write says which rule is missing", async () => {
    const b = backend(keysOnly);
    await b.put({ key: "ok", value: enc("keys are writable") });
    await expect(b.lockWith("core/lock", "n").acquire()).rejects.toMatchObject({
      code: "permission_denied",
      message: expect.stringMatching(
        /^Consul ACL token lacks session write, .*session_prefix "" \{ policy = "write" \}/,
      ),
    });
  });

  it("no token under default deny cannot even read", async () => {
    await expect(backend().get("k")).rejects.toMatchObject({
      code: "permission_denied",
      message: expect.stringMatching(/^Consul ACL token lacks key_prefix read on /),
    });
  });

  it("an unknown token is reported as such", async () => {
    await expect(backend("00000000-0000-4000-8000-000000000bad").get("k")).rejects.toMatchObject({
      code: "permission_denied",
      message: expect.stringMatching(/^Consul does not know the ACL token \(ACL not found\)/),
    });
  });

  it("a token with key_prefix write and session_prefix write runs the lock and fenced writes", async () => {
    const b = backend(writer);
    const leadership = await b.lockWith("core/lock", "node-a").acquire();
    await b.put({ key: "fenced", value: enc("v") });
    await b.transaction([
      { op: "check", key: "fenced", value: enc("v") },
      { op: "delete", key: "fenced" },
    ]);
    expect(await b.get("fenced")).toBeUndefined();
    expect(b.fencing?.lost).toBe(false);
    expect(leadership.aborted).toBe(false);
  });
});
