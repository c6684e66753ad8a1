/**
 * `bulwark server` at start and at stop, as an operator meets it: a port in use, an unusable data
 * directory or an unreachable Consul is an error before anything touches the data — exit 1, the
 * setting, its file and line, the fix, no stack trace; and SIGTERM/SIGINT stop the server within
 * a deadline, a second signal at once.
 */
import { existsSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runGroup } from "../../../packages/core/test/support/processes.js";
import {
  BIN,
  cliMissing,
  freePort,
  SERVER_DIR,
  startServerGroup,
  tempDir,
} from "./helpers/server-process.js";

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping startup tests: ${missing}`);

const env = { ...process.env, BULWARK_LOG_LEVEL: "info" };

function writeConfig(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** `bulwark server -config <file>` run to its exit (killed after 30 s: it must not start). */
async function serverExit(configFile: string, extraEnv: Record<string, string> = {}) {
  const r = await runGroup(process.execPath, [BIN, "server", "-config", configFile], {
    cwd: SERVER_DIR,
    env: { ...env, ...extraEnv },
    timeoutMs: 30_000,
    description: "bulwark server (expected to fail at start)",
  });
  expect(r.timedOut, `the server did not exit:\n${r.stdout}${r.stderr}`).toBe(false);
  return r;
}

/** Starts `bulwark server` and waits until it answers sys/health. */
function startServer(configFile: string, port: number, extraEnv: Record<string, string> = {}) {
  return startServerGroup(configFile, port, { ...env, ...extraEnv });
}

/** A request whose body never arrives: the server cannot finish draining it. */
async function hangingRequest(port: number): Promise<Socket> {
  const socket = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  socket.write(
    "POST /v1/sys/unseal HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
  );
  return socket;
}

const fileConfig = (data: string, port: number) => `storage "file" {
  path = "${data}"
}

listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
`;

describe.skipIf(missing !== undefined)("bulwark server at start", () => {
  it("a port in use: exit 1 naming the listener address, file and line, before the data is touched", {
    timeout: 90_000,
  }, async () => {
    const dir = tempDir("startup-port");
    const port = await freePort();
    const first = await startServer(
      writeConfig(dir, "first.hcl", fileConfig(join(dir, "data1"), port)),
      port,
    );
    try {
      // Same port, another data directory: it must not even be created.
      const second = await serverExit(writeConfig(dir, "second.hcl", fileConfig(join(dir, "data2"), port)));
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        `listener "tcp" address 127.0.0.1:${port} (${join(dir, "second.hcl")}:6:3) is in use: another server is running there? stop it or choose another address`,
      );
      expect(second.stderr).not.toMatch(/EADDRINUSE|\n\s+at /);
      expect(existsSync(join(dir, "data2"))).toBe(false);
      // The running server is unaffected.
      expect((await fetch(`${first.address}/v1/sys/health`)).status).toBe(501);
    } finally {
      await first.group.stop(10_000);
    }
  });

  it("-dev on a port in use names -dev-listen-address", { timeout: 60_000 }, async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const r = await runGroup(
        process.execPath,
        [BIN, "server", "-dev", `-dev-listen-address=127.0.0.1:${port}`],
        {
          cwd: SERVER_DIR,
          env,
          timeoutMs: 30_000,
          description: "bulwark server -dev (expected to fail at start)",
        },
      );
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `listener "tcp" address 127.0.0.1:${port} (-dev-listen-address) is in use: another server is running there?`,
      );
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it("a data directory that cannot be created: exit 1 naming storage path, file and line, and the fix", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("startup-data");
    writeFileSync(join(dir, "taken"), "a file where the data directory should be");
    const port = await freePort();
    const cfg = writeConfig(dir, "server.hcl", fileConfig(join(dir, "taken"), port));
    const r = await serverExit(cfg);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `storage "file" path "${join(dir, "taken")}" \\(${cfg}:2:3\\): file backend: cannot create the data directory`,
      ),
    );
    expect(r.stderr).toMatch(/set path to a directory/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Nothing is listening any more.
    await expect(fetch(`http://127.0.0.1:${port}/v1/sys/health`)).rejects.toThrow();
  });

  it("a data directory the server may not write: permission_denied names the user and the fix", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("startup-ro");
    const port = await freePort();
    // sysfs refuses new directories even to root, which a chmod cannot simulate for root.
    const cfg = writeConfig(dir, "server.hcl", fileConfig("/sys/bulwark-startup-test/data", port));
    const r = await serverExit(cfg);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `storage "file" path "/sys/bulwark-startup-test/data" \\(${cfg}:2:3\\): .*(writable by the user this process runs as|read-only)`,
      ),
    );
  });

  it("Consul unreachable: exit 1 naming storage consul address, file and line", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("startup-consul");
    const [port, consulPort] = [await freePort(), await freePort()];
    const cfg = writeConfig(
      dir,
      "server.hcl",
      `storage "consul" {
  address      = "127.0.0.1:${consulPort}"
  retry_budget = "500ms"
}

listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
`,
    );
    const r = await serverExit(cfg);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `storage "consul" address "127.0.0.1:${consulPort}" (${cfg}:2:3): cannot reach the Consul agent at http://127.0.0.1:${consulPort}`,
    );
    expect(r.stderr).toMatch(/start the Consul agent, or set address/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe.skipIf(missing !== undefined)("bulwark server shutdown", () => {
  it("SIGTERM with nothing in flight: sealed and stopped, exit 0", { timeout: 60_000 }, async () => {
    const dir = tempDir("shutdown-clean");
    const port = await freePort();
    const s = await startServer(writeConfig(dir, "server.hcl", fileConfig(join(dir, "data"), port)), port);
    const started = Date.now();
    const exit = await s.group.stop(20_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(s.output()).toContain("sealed and stopped");
  });

  it("a shutdown that cannot finish (a request that never completes) exits 1 at the deadline", {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir("shutdown-deadline");
    const port = await freePort();
    const s = await startServer(writeConfig(dir, "server.hcl", fileConfig(join(dir, "data"), port)), port, {
      BULWARK_SHUTDOWN_TIMEOUT: "1500ms",
    });
    const socket = await hangingRequest(port);
    try {
      // Let the request reach the server before the signal.
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      process.kill(s.group.pid, "SIGTERM");
      const exit = await Promise.race([
        s.group.exited,
        new Promise((r) => setTimeout(() => r("still running"), 8_000)),
      ]);
      const took = Date.now() - started;
      expect(exit).toEqual({ code: 1, signal: null });
      expect(took).toBeGreaterThanOrEqual(1400);
      // The drain alone would wait 10 s for the request.
      expect(took).toBeLessThan(8_000);
      expect(s.output()).toContain("shutdown did not finish within 1.5 s: exiting now");
    } finally {
      socket.destroy();
      await s.group.stop(5_000);
    }
  });

  it("a second SIGINT while stopping exits at once with 1", { timeout: 60_000 }, async () => {
    const dir = tempDir("shutdown-second");
    const port = await freePort();
    const s = await startServer(writeConfig(dir, "server.hcl", fileConfig(join(dir, "data"), port)), port);
    const socket = await hangingRequest(port);
    try {
      await new Promise((r) => setTimeout(r, 300));
      process.kill(s.group.pid, "SIGINT");
      await new Promise((r) => setTimeout(r, 300));
      expect(s.group.running).toBe(true); // draining the hung request (deadline 10 s)
      const started = Date.now();
      process.kill(s.group.pid, "SIGINT");
      const exit = await Promise.race([
        s.group.exited,
        new Promise((r) => setTimeout(() => r("still running"), 5_000)),
      ]);
      expect(exit).toEqual({ code: 1, signal: null });
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(s.output()).toContain("second signal while stopping: exiting now");
    } finally {
      socket.destroy();
      await s.group.stop(5_000);
    }
  });

  it("a bad BULWARK_SHUTDOWN_TIMEOUT is refused before the server starts", { timeout: 60_000 }, async () => {
    const dir = tempDir("shutdown-bad");
    const port = await freePort();
    const r = await serverExit(writeConfig(dir, "server.hcl", fileConfig(join(dir, "data"), port)), {
      BULWARK_SHUTDOWN_TIMEOUT: "soon",
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('BULWARK_SHUTDOWN_TIMEOUT must be a duration like "10s"');
    expect(existsSync(join(dir, "data"))).toBe(false);
  });
});
