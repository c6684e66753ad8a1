/**
 * The CLI against a TLS listener with a private certificate: refused by default, accepted with
 * Vault's -ca-cert / VAULT_CACERT or -tls-skip-verify / VAULT_SKIP_VERIFY.
 */
import { join } from "node:path";
import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../src/contracts.js";
import { createRootToken, mountKv, startHttpServer } from "../src/http/server.js";
import { createLogger } from "../src/logging.js";
import { cli } from "./cli-helpers.js";
import { makeCert, type TestCert } from "./helpers/tls.js";

let cert: TestCert;
let store: SealedStore;
let http: RunningServer;
let env: Record<string, string>;

beforeAll(async () => {
  cert = makeCert();
  store = await SealedStore.open({ storage: new MemoryBackend() });
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  await store.unseal(init.keys[0] as string);
  http = await startHttpServer({
    store,
    listener: {
      address: "127.0.0.1:0",
      tlsDisable: false,
      tlsCertFile: cert.certFile,
      tlsKeyFile: cert.keyFile,
      maxRequestSize: 1 << 20,
    },
    clusterName: "tls-test",
    logger: createLogger({ level: "error" }),
  });
  await mountKv(store, "secret", { version: 2 });
  env = { BULWARK_ADDR: http.address, BULWARK_TOKEN: await createRootToken(store) };
});

afterAll(async () => {
  await http?.close();
  await store?.close();
});

describe("CLI over TLS with a private certificate", () => {
  it("refuses an unverified certificate by default, naming the problem", async () => {
    expect(http.address).toMatch(/^https:/);
    const r = await cli(["kv", "put", "secret/x", "a=1"], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/certificate/i);
  });

  it("-ca-cert, BULWARK_CACERT and VAULT_CACERT make it trusted", async () => {
    expect((await cli(["kv", "put", `-ca-cert=${cert.certFile}`, "secret/x", "a=1"], { env })).code).toBe(0);
    const viaEnv = await cli(["kv", "get", "-field=a", "secret/x"], {
      env: { ...env, VAULT_CACERT: cert.certFile },
    });
    expect(viaEnv).toMatchObject({ code: 0, stdout: "1\n" });
    const ours = await cli(["kv", "get", "-field=a", "secret/x"], {
      env: { ...env, BULWARK_CACERT: cert.certFile },
    });
    expect(ours).toMatchObject({ code: 0, stdout: "1\n" });
  });

  it("-tls-skip-verify and VAULT_SKIP_VERIFY=true skip verification; a bad value is refused", async () => {
    expect((await cli(["kv", "get", "-tls-skip-verify", "-field=a", "secret/x"], { env })).code).toBe(0);
    expect((await cli(["status"], { env: { ...env, VAULT_SKIP_VERIFY: "true" } })).code).toBe(0);
    const bad = await cli(["status"], { env: { ...env, VAULT_SKIP_VERIFY: "maybe" } });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/VAULT_SKIP_VERIFY must be true or false/);
  });

  it("an unreadable -ca-cert file is named in the error", async () => {
    const r = await cli(["status", `-ca-cert=${join(cert.dir, "missing.pem")}`], { env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/-ca-cert: cannot read the CA certificate .*missing\.pem/);
  });
});
