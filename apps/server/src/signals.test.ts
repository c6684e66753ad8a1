import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { request } from "../test/helpers/http.js";
import { cliMissing, freePort, startServerGroup, tempDir } from "../test/helpers/server-process.js";
import { type BulwarkServer, holdSignalsWhileStarting, runUntilSignal } from "./main.js";

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping the SIGHUP process test: ${missing}`);

/** A server whose shutdown and reload only record that they ran. */
function fakeServer(): { server: BulwarkServer; reasons: string[]; reloads: number[] } {
  const reasons: string[] = [];
  const reloads: number[] = [];
  const server = {
    shutdown: async (reason: string) => {
      reasons.push(reason);
    },
    reload: async () => {
      reloads.push(reloads.length + 1);
      return { applied: true, errors: [] };
    },
    logger: { error: () => undefined, info: () => undefined, flush: () => undefined },
  } as unknown as BulwarkServer;
  return { server, reasons, reloads };
}

/**
 * The listeners a test added, called as Node calls them on a signal. Not process.emit: a SIGHUP
 * hook another test file left in this worker (the process registry's last resort) would re-send
 * the real signal to the worker.
 */
const baseline = new Map<NodeJS.Signals, Set<unknown>>();
function snapshot(): void {
  for (const sig of ["SIGHUP", "SIGINT", "SIGTERM"] as const)
    baseline.set(sig, new Set(process.listeners(sig)));
}
function send(sig: NodeJS.Signals): void {
  for (const l of process.listeners(sig))
    if (!baseline.get(sig)?.has(l)) (l as (s: NodeJS.Signals) => void)(sig);
}
function added(sig: NodeJS.Signals): number {
  return process.listeners(sig).filter((l) => !baseline.get(sig)?.has(l)).length;
}

describe("signals while the server starts", () => {
  it("a SIGTERM caught while starting is held, and runUntilSignal shuts down in order at once", async () => {
    const exits: number[] = [];
    const release = holdSignalsWhileStarting((code) => exits.push(code));
    // process.emit runs the listeners without Node's default action (no real signal is sent).
    process.emit("SIGTERM", "SIGTERM");
    const pendingSignal = release();
    if (pendingSignal === undefined) throw new Error("the SIGTERM was not caught");
    expect(pendingSignal).toBe("SIGTERM");
    expect(exits).toEqual([]);
    const { server, reasons } = fakeServer();
    expect(await runUntilSignal(server, { pendingSignal, exit: (code) => exits.push(code) })).toBe(0);
    expect(reasons).toEqual(["received SIGTERM"]);
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });

  it("a second signal while starting exits at once with 1; none caught gives undefined", () => {
    const exits: number[] = [];
    const release = holdSignalsWhileStarting((code) => exits.push(code));
    process.emit("SIGINT", "SIGINT");
    process.emit("SIGTERM", "SIGTERM");
    expect(exits).toEqual([1]);
    expect(release()).toBe("SIGINT");
    expect(holdSignalsWhileStarting(() => undefined)()).toBeUndefined();
    expect(process.listenerCount("SIGINT")).toBe(0);
  });

  it("a SIGHUP while starting neither kills nor is lost: runUntilSignal reloads once at once, and a SIGTERM still wins", async () => {
    snapshot();
    const exits: number[] = [];
    const release = holdSignalsWhileStarting((code) => exits.push(code));
    // Without a listener, Node's default action for SIGHUP ends the process.
    expect(added("SIGHUP")).toBe(1);
    send("SIGHUP");
    send("SIGHUP");
    const pendingSignal = release();
    if (pendingSignal !== "SIGHUP") throw new Error(`the SIGHUP was not kept (${pendingSignal})`);
    expect(exits).toEqual([]);
    expect(added("SIGHUP")).toBe(0);
    const { server, reasons, reloads } = fakeServer();
    const running = runUntilSignal(server, { pendingSignal, exit: (code) => exits.push(code) });
    expect(reloads).toEqual([1]);
    expect(reasons).toEqual([]);
    send("SIGTERM");
    expect(await running).toBe(0);
    expect(reasons).toEqual(["received SIGTERM"]);
    expect(added("SIGHUP")).toBe(0);

    // A SIGHUP then a SIGTERM while starting: the SIGTERM (no exit(1): the SIGHUP is no stop).
    const release2 = holdSignalsWhileStarting((code) => exits.push(code));
    send("SIGHUP");
    send("SIGTERM");
    expect(release2()).toBe("SIGTERM");
    expect(exits).toEqual([]);
  });

  it("runUntilSignal: every SIGHUP reloads and the server keeps running; one while stopping is ignored", async () => {
    snapshot();
    const exits: number[] = [];
    const { server, reasons, reloads } = fakeServer();
    let finish: () => void = () => undefined;
    server.shutdown = (reason?: string) => {
      reasons.push(reason ?? "");
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    };
    const running = runUntilSignal(server, { exit: (code) => exits.push(code) });
    send("SIGHUP");
    send("SIGHUP");
    expect(reloads).toEqual([1, 2]);
    expect(reasons).toEqual([]);
    send("SIGTERM");
    send("SIGHUP");
    expect(reloads).toEqual([1, 2]);
    expect(exits).toEqual([]);
    finish();
    expect(await running).toBe(0);
    expect(added("SIGHUP")).toBe(0);
  });
});

/** Polls `check` until it holds; fails with `what` and the server's output after `ms`. */
async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  output: () => string,
  ms = 30_000,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms / 1000} s:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(missing !== undefined)("SIGHUP on a running server (a real process)", () => {
  it("does not stop it; reopens the audit file (logrotate); applies a new audit block; a broken config is logged and the running one kept", {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir("sighup");
    const port = await freePort();
    const configFile = join(dir, "bulwark.hcl");
    const config = (blocks: string) =>
      `storage "file" { path = "${join(dir, "data")}" }
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
${blocks}
`;
    const firstLog = join(dir, "first.log");
    const secondLog = join(dir, "second.log");
    const first = `audit "file" "first" { options { file_path = "${firstLog}" } }`;
    const second = `audit "file" "second" { options { file_path = "${secondLog}" } }`;
    writeFileSync(configFile, config(first));
    const s = await startServerGroup(configFile, port, { ...process.env, BULWARK_LOG_LEVEL: "info" });
    try {
      const init = (
        await request(`${s.address}/v1/sys/init`, {
          method: "PUT",
          body: JSON.stringify({ secret_shares: 1, secret_threshold: 1 }),
        })
      ).json<{ keys: string[]; root_token: string }>();
      const unsealed = await request(`${s.address}/v1/sys/unseal`, {
        method: "PUT",
        body: JSON.stringify({ key: init.keys[0] }),
      });
      expect(unsealed.json().sealed).toBe(false);
      const api = (path: string) =>
        request(`${s.address}/v1/${path}`, { headers: { "x-vault-token": init.root_token } });
      const devices = async () => {
        const body = (await api("sys/audit")).json<{ data?: Record<string, unknown> }>();
        return Object.keys(body.data ?? body)
          .filter((k) => k.endsWith("/"))
          .sort();
      };
      const hup = async (done: string) => {
        const from = s.output().length;
        process.kill(s.group.pid, "SIGHUP");
        await until(`"${done}" after SIGHUP`, () => s.output().slice(from).includes(done), s.output);
        expect(s.group.running).toBe(true);
        return s.output().slice(from);
      };

      // The config's device is set up once the node is active.
      await until("the config's device first/", async () => (await devices()).includes("first/"), s.output);
      expect((await api("sys/mounts")).status).toBe(200);
      await until(
        "a record of sys/mounts in first.log",
        () => readFileSync(firstLog, "utf8").includes('"sys/mounts"'),
        s.output,
      );

      // logrotate: the file is renamed, SIGHUP, the next records go to a new file_path.
      renameSync(firstLog, `${firstLog}.1`);
      await hup("audit devices reopened");
      expect((await api("sys/auth")).status).toBe(200);
      await until("a new first.log", () => existsSync(firstLog), s.output);
      await until(
        "the record in the new file",
        () => readFileSync(firstLog, "utf8").includes('"sys/auth"'),
        s.output,
      );
      expect(readFileSync(`${firstLog}.1`, "utf8")).not.toContain('"sys/auth"');

      // A block added to the config is set up by the reload.
      writeFileSync(configFile, config(`${first}\n${second}`));
      const applied = await hup("audit devices reopened");
      expect(applied).toContain("reload: audit settings applied");
      expect(await devices()).toEqual(["first/", "second/"]);
      expect((await api("sys/mounts")).status).toBe(200);
      await until(
        "a record in second.log",
        () => existsSync(secondLog) && readFileSync(secondLog, "utf8").includes('"sys/mounts"'),
        s.output,
      );

      // A broken config: every problem logged with its position, the running config kept.
      writeFileSync(configFile, config(`${first}\n${second}\naudit "file" "third" {\n  bogus = 1\n}`));
      const broken = await hup("audit devices reopened");
      expect(broken).toContain("the running configuration is kept");
      expect(broken).toContain(`${configFile}:9:3`);
      expect(broken).toContain("unknown setting `bogus`");
      expect(await devices()).toEqual(["first/", "second/"]);

      // A block changed in place is refused by the broker (OpenBao modifies no device): logged at
      // the block, and the running audit settings stay.
      const changed = `audit "file" "first" { options {\n file_path = "${firstLog}"\n mode = "0640" } }`;
      writeFileSync(configFile, config(`${changed}\n${second}`));
      const refused = await hup("audit devices reopened");
      expect(refused).toContain("going back to the running audit settings");
      expect(refused).toContain(`${configFile}:6:1: audit \\"file\\" \\"first\\"`);
      expect(refused).toContain("modifications to audit devices are not allowed");
      expect(await devices()).toEqual(["first/", "second/"]);

      // A block removed from the config: its device is disabled.
      writeFileSync(configFile, config(first));
      await hup("audit devices reopened");
      expect(await devices()).toEqual(["first/"]);
      expect((await api("sys/health")).status).toBe(200);
    } finally {
      expect(await s.group.stop(15_000)).toMatchObject({ code: 0 });
    }
  });
});
