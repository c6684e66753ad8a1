/**
 * Every CLI command against a real server (dev mode, in this process, real HTTP on a free port):
 * outputs, JSON format, exit codes and error reporting.
 */
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BulwarkServer, startServer } from "../src/main.js";
import { Capture, cli } from "./cli-helpers.js";

let server: BulwarkServer;
let env: Record<string, string>;
const logs = new Capture();

beforeAll(async () => {
  server = await startServer({
    dev: true,
    devListenAddress: "127.0.0.1:0",
    env: {},
    out: new Capture(),
    logDestination: logs,
  });
  env = { BULWARK_ADDR: server.address, BULWARK_TOKEN: server.dev!.rootToken };
});

afterAll(async () => {
  await server?.shutdown("tests done");
});

describe("dev server", () => {
  it("starts initialised and unsealed with kv v2 at secret/", async () => {
    const status = await cli(["status"], { env });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Sealed\s+false/);
    expect(status.stdout).toMatch(/Total Shares\s+1/);
    const mounts = await cli(["secrets", "list", "-format=json"], { env });
    expect(JSON.parse(mounts.stdout)["secret/"]).toMatchObject({ type: "kv", options: { version: "2" } });
  });
});

describe("kv", () => {
  it("put, get (table, -field, -format=json, -version), list", async () => {
    expect((await cli(["kv", "put", "secret/app/db", "user=app", "password=hunter2"], { env })).code).toBe(0);
    const v2 = await cli(["kv", "put", "secret/app/db", "user=app", "password=correct horse"], { env });
    expect(v2.stdout).toMatch(/version\s+2/);
    const get = await cli(["kv", "get", "secret/app/db"], { env });
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/== Secret Path ==\nsecret\/data\/app\/db/);
    expect(get.stdout).toMatch(/password\s+correct horse/);
    expect(get.stdout).toMatch(/deletion_time\s+n\/a/);
    expect((await cli(["kv", "get", "-field=password", "secret/app/db"], { env })).stdout).toBe(
      "correct horse\n",
    );
    expect((await cli(["kv", "get", "-version=1", "-field=password", "secret/app/db"], { env })).stdout).toBe(
      "hunter2\n",
    );
    const asJson = JSON.parse((await cli(["kv", "get", "-format=json", "secret/app/db"], { env })).stdout);
    expect(asJson.data.data).toEqual({ user: "app", password: "correct horse" });
    expect(asJson.data.metadata.version).toBe(2);
    const list = await cli(["kv", "list", "secret/app"], { env });
    expect(list.stdout).toBe("Keys\n----\ndb\n");
    // The mount itself, with or without its trailing slash (as Vault).
    for (const mount of ["secret", "secret/"]) {
      const top = await cli(["kv", "list", mount], { env });
      expect(top).toMatchObject({ code: 0 });
      expect(top.stdout).toMatch(/^Keys\n----\n(.*\n)*app\/\n/);
    }
    const mounted = await cli(["kv", "get", "-mount=secret", "-field=user", "app/db"], { env });
    expect(mounted.stdout).toBe("app\n");
  });

  it("secret names with '#', '?', '%' and spaces are sent as names, not as URL syntax", async () => {
    for (const name of ["odd#frag", "odd?q=1", "odd%25", "odd name"]) {
      expect((await cli(["kv", "put", `secret/${name}`, `v=${name}`], { env })).code).toBe(0);
      expect((await cli(["kv", "get", "-field=v", `secret/${name}`], { env })).stdout).toBe(`${name}\n`);
    }
    const list = await cli(["kv", "list", "-format=json", "secret/"], { env });
    expect(JSON.parse(list.stdout)).toEqual(
      expect.arrayContaining(["odd#frag", "odd?q=1", "odd%25", "odd name"]),
    );
    expect(JSON.parse(list.stdout)).not.toContain("odd");
  });

  it("values from a file, from stdin, and a JSON object on stdin", async () => {
    expect((await cli(["kv", "put", "secret/in", "token=-"], { env, stdin: "from-stdin\n" })).code).toBe(0);
    expect((await cli(["kv", "get", "-field=token", "secret/in"], { env })).stdout).toBe("from-stdin\n");
    expect((await cli(["kv", "put", "secret/json", "-"], { env, stdin: '{"n": 1, "ok": true}' })).code).toBe(
      0,
    );
    const back = JSON.parse((await cli(["kv", "get", "-format=json", "secret/json"], { env })).stdout);
    expect(back.data.data).toEqual({ n: 1, ok: true });
  });

  it("check-and-set: a stale -cas is refused with the server's error and exit code 2", async () => {
    const res = await cli(["kv", "put", "-cas=1", "secret/app/db", "x=y"], { env });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /Error making API request\.\n\nURL: PUT http:\/\/127\.0\.0\.1:\d+\/v1\/secret\/data\/app\/db\nCode: 400/,
    );
    expect(res.stderr).toMatch(/check-and-set/);
  });

  it("delete, undelete, destroy and metadata get/put/delete", async () => {
    await cli(["kv", "put", "secret/cycle", "v=1"], { env });
    await cli(["kv", "put", "secret/cycle", "v=2"], { env });
    expect((await cli(["kv", "delete", "secret/cycle"], { env })).stdout).toMatch(/Success! Data deleted/);
    const meta = await cli(["kv", "metadata", "get", "secret/cycle"], { env });
    expect(meta.stdout).toMatch(/== Version 2 ==/);
    expect(meta.stdout).toMatch(/current_version\s+2/);
    expect((await cli(["kv", "undelete", "-versions=2", "secret/cycle"], { env })).code).toBe(0);
    expect((await cli(["kv", "get", "-field=v", "secret/cycle"], { env })).stdout).toBe("2\n");
    expect((await cli(["kv", "destroy", "-versions=1", "secret/cycle"], { env })).code).toBe(0);
    const destroyed = JSON.parse(
      (await cli(["kv", "metadata", "get", "-format=json", "secret/cycle"], { env })).stdout,
    );
    expect(destroyed.data.versions["1"].destroyed).toBe(true);
    expect(
      (await cli(["kv", "metadata", "put", "-max-versions=3", "-cas-required", "secret/cycle"], { env }))
        .code,
    ).toBe(0);
    const settings = JSON.parse(
      (await cli(["kv", "metadata", "get", "-format=json", "secret/cycle"], { env })).stdout,
    );
    expect(settings.data).toMatchObject({ max_versions: 3, cas_required: true });
    // -cas-required=false turns it off again (Vault's spelling; it must not be a silent no-op).
    expect((await cli(["kv", "metadata", "put", "-cas-required=false", "secret/cycle"], { env })).code).toBe(
      0,
    );
    const off = JSON.parse(
      (await cli(["kv", "metadata", "get", "-format=json", "secret/cycle"], { env })).stdout,
    );
    expect(off.data).toMatchObject({ max_versions: 3, cas_required: false });
    expect((await cli(["kv", "metadata", "delete", "secret/cycle"], { env })).code).toBe(0);
    const gone = await cli(["kv", "get", "secret/cycle"], { env });
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe("No value found at secret/data/cycle\n");
  });

  it("kv v1 mounts: enabled with secrets enable, written and read without versions", async () => {
    expect((await cli(["secrets", "enable", "-path=kv1", "-version=1", "kv"], { env })).stdout).toBe(
      "Success! Enabled the kv secrets engine at: kv1/\n",
    );
    expect((await cli(["kv", "put", "kv1/app", "a=b"], { env })).stdout).toBe(
      "Success! Data written to: kv1/app\n",
    );
    // Vault prints a kv v1 secret's lease as refresh_interval above the data.
    expect((await cli(["kv", "get", "kv1/app"], { env })).stdout).toMatch(
      /^Key\s+Value\n---\s+-----\nrefresh_interval\s+768h\na\s+b\n$/,
    );
    expect((await cli(["kv", "undelete", "-versions=1", "kv1/app"], { env })).code).toBe(1);
    expect((await cli(["secrets", "disable", "kv1"], { env })).code).toBe(0);
  });
});

describe("tokens and raw paths", () => {
  it("token create with a read-only policy; the token reads its path and is refused elsewhere", async () => {
    const policy = 'path "secret/data/app/*" { capabilities = ["read"] }\n';
    expect((await cli(["write", "sys/policies/acl/app-read", "policy=-"], { env, stdin: policy })).code).toBe(
      0,
    );
    const created = await cli(["token", "create", "-policy=app-read", "-ttl=1h", "-format=json"], { env });
    expect(created.code).toBe(0);
    const token = JSON.parse(created.stdout).auth.client_token as string;
    const table = await cli(["token", "create", "-policy=app-read", "-ttl=1h"], { env });
    expect(table.stdout).toMatch(/token_duration\s+1h/);
    expect(table.stdout).toMatch(/token_policies\s+\[(default app-read|app-read default)\]/);
    const asApp = { ...env, BULWARK_TOKEN: token };
    expect((await cli(["kv", "get", "-field=user", "secret/app/db"], { env: asApp })).stdout).toBe("app\n");
    const refused = await cli(["kv", "put", "secret/app/db", "x=y"], { env: asApp });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/Code: 403/);
    const lookup = await cli(["token", "lookup"], { env: asApp });
    expect(lookup.stdout).toMatch(/policies\s+\[(default app-read|app-read default)\]/);
    expect((await cli(["token", "lookup", token], { env })).code).toBe(0);
    expect((await cli(["token", "revoke", token], { env })).stdout).toBe(
      "Success! Revoked token (if it existed)\n",
    );
    const revoked = await cli(["kv", "get", "secret/app/db"], { env: asApp });
    expect(revoked.code).toBe(2);
    expect(revoked.stderr).toMatch(/Code: 403/);
  });

  it("VAULT_ADDR / VAULT_TOKEN work when the BULWARK_* names are unset; flags win over both", async () => {
    const vaultEnv = { VAULT_ADDR: env.BULWARK_ADDR, VAULT_TOKEN: env.BULWARK_TOKEN };
    expect((await cli(["kv", "get", "-field=user", "secret/app/db"], { env: vaultEnv })).stdout).toBe(
      "app\n",
    );
    const flags = await cli(
      [
        "read",
        `-address=${env.BULWARK_ADDR}`,
        `-token=${env.BULWARK_TOKEN}`,
        "-field=type",
        "sys/mounts/secret",
      ],
      { env: { VAULT_ADDR: "http://127.0.0.1:1", VAULT_TOKEN: "nope" } },
    );
    expect(flags.stdout).toBe("kv\n");
  });

  it("read, write, list, delete on raw paths", async () => {
    expect((await cli(["write", "secret/data/raw", "-"], { env, stdin: '{"data": {"k": "v"}}' })).code).toBe(
      0,
    );
    const read = await cli(["read", "-format=json", "secret/data/raw"], { env });
    expect(JSON.parse(read.stdout).data.data).toEqual({ k: "v" });
    expect((await cli(["list", "secret/metadata"], { env })).stdout).toMatch(/^Keys\n----\n(.+\n)*raw\n/);
    expect((await cli(["delete", "secret/metadata/raw"], { env })).stdout).toBe(
      "Success! Data deleted (if it existed) at: secret/metadata/raw\n",
    );
    const missing = await cli(["read", "secret/data/raw"], { env });
    expect(missing).toMatchObject({ code: 2, stderr: "No value found at secret/data/raw\n" });
  });
});

describe("operator", () => {
  it("key-status and rotate", async () => {
    const before = await cli(["operator", "key-status", "-format=json"], { env });
    const term = JSON.parse(before.stdout).term as number;
    const rotated = await cli(["operator", "rotate"], { env });
    expect(rotated.stdout).toMatch(
      new RegExp(`^Success! Rotated key\\n\\nKey\\s+Value\\n---\\s+-----\\nKey Term\\s+${term + 1}\\n`),
    );
    expect((await cli(["kv", "get", "-field=user", "secret/app/db"], { env })).stdout).toBe("app\n");
  });

  it("rekey: new shares replace the dev key; seal → status exit 2 → unseal with the new shares", async () => {
    // Without a token the CLI uses Vault's unauthenticated sys/rekey/*, which the dev listener
    // turns off (OpenBao 2.6's default); with one it uses sys/rotate/root/*, as below.
    const anon = await cli(["operator", "rekey", "-status"], { env: { BULWARK_ADDR: env.BULWARK_ADDR } });
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/Code: 405[\s\S]*unsupported operation/);
    const init = await cli(
      ["operator", "rekey", "-init", "-key-shares=3", "-key-threshold=2", "-format=json"],
      { env },
    );
    expect(JSON.parse(init.stdout)).toMatchObject({ started: true, n: 3, t: 2, required: 1 });
    const done = await cli(["operator", "rekey", "-format=json", server.dev!.unsealKey], { env });
    const rekey = JSON.parse(done.stdout);
    expect(rekey.complete).toBe(true);
    expect(rekey.keys_base64).toHaveLength(3);

    expect((await cli(["operator", "seal"], { env })).stdout).toBe("Success! Bulwark is sealed.\n");
    const sealed = await cli(["status"], { env });
    expect(sealed.code).toBe(2);
    expect(sealed.stdout).toMatch(/Sealed\s+true/);
    expect(sealed.stdout).toMatch(/Unseal Progress\s+0\/2/);

    const malformed = await cli(["operator", "unseal", "not-a-key"], { env });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toMatch(/Code: 400/);
    expect((await cli(["operator", "unseal", rekey.keys_base64[1]], { env })).stdout).toMatch(
      /Unseal Progress\s+1\/2/,
    );
    const reset = await cli(["operator", "unseal", "-reset"], { env });
    expect(reset.stdout).toMatch(/Unseal Progress\s+0\/2/);
    const first = await cli(["operator", "unseal", rekey.keys_base64[2]], { env });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/Unseal Progress\s+1\/2/);
    const nonce = /Unseal Nonce\s+(\S+)/.exec(first.stdout)?.[1];
    expect(nonce).toMatch(/^[0-9a-f-]{36}$/);
    // The key can also come from stdin (what a prompt reads when stdin is not a terminal).
    const second = await cli(["operator", "unseal"], { env, stdin: `${rekey.keys_base64[0]}\n` });
    expect(second.stdout).toMatch(/Sealed\s+false/);
    expect((await cli(["status"], { env })).code).toBe(0);
    expect((await cli(["kv", "get", "-field=user", "secret/app/db"], { env })).stdout).toBe("app\n");
  });

  it("init -status: 0 when initialised", async () => {
    const res = await cli(["operator", "init", "-status"], { env });
    expect(res).toMatchObject({ code: 0, stdout: "Bulwark is initialized\n" });
  });
});

describe("errors and usage", () => {
  it("an unreachable server: exit 2 (status: 1) with the address in the message", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const down = { BULWARK_ADDR: `http://127.0.0.1:${port}` };
    const get = await cli(["kv", "get", "secret/x"], { env: down });
    expect(get.code).toBe(2);
    expect(get.stderr).toMatch(
      /cannot reach the server: GET http:\/\/127\.0\.0\.1:\d+\/v1\/sys\/internal\/ui\/mounts\/secret\/x: ECONNREFUSED/,
    );
    expect((await cli(["status"], { env: down })).code).toBe(1);
  });

  it("usage errors exit 1: unknown command, unknown flag, missing argument, bad values", async () => {
    expect((await cli(["frobnicate"], { env })).code).toBe(1);
    const unknownFlag = await cli(["status", "-colour=red"], { env });
    expect(unknownFlag.code).toBe(1);
    expect(unknownFlag.stderr).toMatch(/unknown option '--colour=red'/);
    expect((await cli(["kv", "get"], { env })).code).toBe(1);
    const badInt = await cli(["operator", "init", "-key-shares=five"], { env });
    expect(badInt.code).toBe(1);
    expect(badInt.stderr).toMatch(/argument 'five' is invalid\. -key-shares must be a whole number/);
    const badFormat = await cli(["status", "-format=yaml"], { env });
    expect(badFormat).toMatchObject({ code: 1 });
    expect(badFormat.stderr).toMatch(/use -format=table or -format=json/);
    expect((await cli(["write", "secret/data/x"], { env })).stderr).toMatch(/write needs data/);
    expect((await cli(["server"], { env })).stderr).toMatch(/server needs -config/);
  });

  it("help and version exit 0", async () => {
    const help = await cli(["operator", "-h"], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/unseal/);
    expect((await cli(["--version"], { env })).stdout).toMatch(/^Bulwark v\d+\.\d+\.\d+\n$/);
  });

  it("the server's logs never contain the root token or the unseal key", () => {
    expect(logs.text.length).toBeGreaterThan(0);
    expect(logs.text).not.toContain(server.dev!.rootToken);
    expect(logs.text).not.toContain(server.dev!.unsealKey);
  });
});
