/**
 * A scratch OpenBao 2.6.2 for the tests that talk to one directly: file storage in `<dir>/data`,
 * a plain-HTTP loopback listener, `raw_storage_endpoint` on (the tests read and write its storage
 * through `sys/raw`), started by openbao-nodes.ts's {@link startOpenBao} (its own process group,
 * output collected, SIGKILLed after a grace however the test ends), then `sys/init` with one share
 * and unsealed — or unsealed with the share of a data set initialised elsewhere.
 *
 * Suites gate on the binary with `serviceGate(suite, BAO, what)` (server-process.ts): a missing
 * one skips locally and fails under CI=true.
 */
import { join } from "node:path";
import { runGroup } from "../../../../packages/core/test/support/processes.js";
import { BAO, startOpenBao } from "./openbao-nodes.js";

export { BAO };

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of OpenBao, checked field by field by the tests
export type Json = any;

export interface ScratchOptions {
  /** The server's directory: config, `data/` (its storage) and the CLI's HOME. */
  dir: string;
  /** `sys/init` with one share and unseal (default). false: the data set is initialised already. */
  init?: boolean;
  /** With `init: false`: the share to unseal with (nothing is unsealed without one)… */
  unsealKey?: string;
  /** …and the token the requests send. */
  token?: string;
  /** More top-level HCL for the config. */
  extraConfig?: string;
  /** Each request's timeout (default 30 s). */
  requestTimeoutMs?: number;
}

export interface ScratchOpenBao {
  addr: string;
  /** `<dir>/data`: the file storage. */
  dataDir: string;
  /** The root token from `sys/init` (or the one passed); what the requests send unless told. */
  token: string;
  unsealKey: string;
  /** stdout and stderr of the server so far (in failure messages). */
  output(): string;
  /** One API request; `token: ""` sends none. PATCH goes as merge-patch+json. */
  http(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; json: Json }>;
  /** Like `http`, but a status of 300 or more throws (with the server's output); the body. */
  ok(method: string, path: string, body?: unknown): Promise<Json>;
  /** Polls `check` every 100 ms (a throw counts as not yet) until it holds; throws after `timeoutMs`. */
  until(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  /** `bao <subcommand…> -format=json <args…>`, parsed: the flag goes after the subcommand words. */
  bao(args: string[]): Promise<Json>;
  /** `bao <args…>` for a command that prints no JSON (enable, tune, put); throws unless it exits 0. */
  baoRun(args: string[]): Promise<void>;
  /** `sys/unseal` with the share; throws unless the answer says unsealed. */
  unseal(): Promise<void>;
  /** Seals and unseals (the mounts are set up again from storage), then waits for `check` to answer 200. */
  sealUnseal(check: string): Promise<void>;
  /** SIGTERM to the process group, SIGKILL after 10 s. */
  stop(): Promise<void>;
}

export async function startScratchOpenBao(opts: ScratchOptions): Promise<ScratchOpenBao> {
  const dataDir = join(opts.dir, "data");
  const node = await startOpenBao(
    opts.dir,
    { type: "file", path: dataDir },
    { type: "shamir" },
    `raw_storage_endpoint = true\n${opts.extraConfig ?? ""}`,
  );
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const env = (): Record<string, string> => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: opts.dir,
    VAULT_ADDR: s.addr,
    VAULT_TOKEN: s.token,
  });
  const cli = async (args: string[], shown: string[]) => {
    const r = await runGroup(BAO, args, {
      env: env(),
      timeoutMs: 60_000,
      description: `bao ${shown.join(" ")}`,
    });
    if (r.code !== 0) throw new Error(`bao ${shown.join(" ")}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const s: ScratchOpenBao = {
    addr: node.address,
    dataDir,
    token: opts.token ?? "",
    unsealKey: opts.unsealKey ?? "",
    output: node.output,
    async http(method, path, body, token = s.token) {
      const res = await fetch(`${s.addr}/v1/${path}`, {
        method,
        headers: {
          ...(token === "" ? {} : { "X-Vault-Token": token }),
          "Content-Type": method === "PATCH" ? "application/merge-patch+json" : "application/json",
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await res.text();
      return { status: res.status, json: text === "" ? undefined : JSON.parse(text) };
    },
    async ok(method, path, body) {
      const r = await s.http(method, path, body);
      if (r.status >= 300)
        throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.json)}\n${s.output()}`);
      return r.json;
    },
    async until(what, check, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await check().catch(() => false))) {
        if (Date.now() > deadline)
          throw new Error(`${what} did not happen within ${timeoutMs / 1000} s\n${s.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async bao(args) {
      const at = args.findIndex((a) => a.includes("/") || a.startsWith("-"));
      const words = at === -1 ? args : args.slice(0, at);
      const rest = at === -1 ? [] : args.slice(at);
      return JSON.parse(await cli([...words, "-format=json", ...rest], args));
    },
    async baoRun(args) {
      await cli(args, args);
    },
    async unseal() {
      const r = await s.ok("PUT", "sys/unseal", { key: s.unsealKey });
      if (r?.sealed !== false) throw new Error(`sys/unseal answered ${JSON.stringify(r)}\n${s.output()}`);
    },
    async sealUnseal(check) {
      await s.ok("PUT", "sys/seal");
      await s.unseal();
      await s.until(
        `${check} answering after unseal`,
        async () => (await s.http("GET", check)).status === 200,
      );
    },
    stop: node.stop,
  };
  if (opts.init ?? true) {
    const init = await s.ok("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 });
    s.unsealKey = init.keys_base64[0];
    s.token = init.root_token;
    await s.unseal();
  } else if (s.unsealKey !== "") {
    await s.unseal();
  }
  return s;
}
