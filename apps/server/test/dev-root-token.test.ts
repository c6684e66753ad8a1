import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type BulwarkServer, StartupError, startServer } from "../src/main.js";
import { Capture, cli } from "./cli-helpers.js";

const servers: BulwarkServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.shutdown("test done");
});

const dev = async (opts: { devRootTokenId?: string; env?: Record<string, string>; out?: Capture }) => {
  const s = await startServer({
    dev: true,
    devListenAddress: "127.0.0.1:0",
    env: opts.env ?? {},
    out: opts.out ?? new Capture(),
    logDestination: new Capture(),
    ...(opts.devRootTokenId === undefined ? {} : { devRootTokenId: opts.devRootTokenId }),
  });
  servers.push(s);
  return s;
};

describe("server -dev -dev-root-token-id (Vault's flag)", () => {
  it("the dev server's root token is the given id, and it works", async () => {
    const out = new Capture();
    const s = await dev({ devRootTokenId: "root", out });
    expect(s.dev?.rootToken).toBe("root");
    // The banner says how to point the CLI at it (nothing is stored for the CLI).
    expect(out.text).toContain(`$ export BULWARK_ADDR='${s.address}'`);
    expect(out.text).toContain("$ export BULWARK_TOKEN='root'");
    const env = { BULWARK_ADDR: s.address, BULWARK_TOKEN: "root" };
    expect((await cli(["kv", "put", "secret/app", "a=1"], { env })).code).toBe(0);
    expect((await cli(["token", "lookup", "-format=json"], { env })).stdout).toMatch(
      /"policies":\s*\[\s*"root"/,
    );
  });

  it("VAULT_DEV_ROOT_TOKEN_ID sets it too", async () => {
    const s = await dev({ env: { VAULT_DEV_ROOT_TOKEN_ID: "dev-only-token" } });
    expect(s.dev?.rootToken).toBe("dev-only-token");
  });

  it("an id Vault would refuse stops the server with a message naming the rule", async () => {
    await expect(dev({ devRootTokenId: "has.dot" })).rejects.toThrow(
      /root token id must be .* without spaces or '\.'/,
    );
  });

  it("the flag without -dev is a usage error", async () => {
    const r = await cli(["server", "-config=/nonexistent.hcl", "-dev-root-token-id=root"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/-dev-root-token-id needs -dev/);
  });
});

describe("server -dev on storage that is already initialised", () => {
  it("is refused with a StartupError (storage_unusable), message as before", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-dev-"));
    try {
      const config = join(dir, "config.hcl");
      writeFileSync(config, `storage "file" {\n  path = ${JSON.stringify(join(dir, "data"))}\n}\n`);
      const start = () =>
        startServer({
          dev: true,
          configPaths: [config],
          devListenAddress: "127.0.0.1:0",
          env: {},
          out: new Capture(),
          logDestination: new Capture(),
        });
      await (await start()).shutdown("initialised");
      const err = await start().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect(err).toMatchObject({
        domain: "server",
        code: "storage_unusable",
        setting: "storage",
        message: "-dev needs empty storage: the configured storage is already initialised",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
