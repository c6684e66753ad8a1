/**
 * Self-test of the HTTP suites' shared pieces (http-load.ts, baseline-worktree.ts):
 * `node --import tsx tooling/bench/src/http-load.selftest.ts` exits non-zero on a failed check.
 * Needs this tree's server built (`node tooling/build-js.mjs @bulwark/server`); builds no baseline.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { insideRepo, resolveCommit, withLock } from "./baseline-worktree.js";
import { KEYS, kvDataPath, loadSide, REPO_ROOT, SERVER_DIR, startBulwark, VALUE } from "./http-load.js";

const checks: [string, () => Promise<void>][] = [];
const check = (name: string, fn: () => Promise<void>) => checks.push([name, fn]);

/** Whether any process of group `pgid` is left. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

check("a load round sends every request with the token, cycling through the keys", async () => {
  const seen: string[] = [];
  const tokens = new Set<string | undefined>();
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    tokens.add(req.headers["x-vault-token"] as string | undefined);
    req.resume().on("end", () => res.end("{}"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  try {
    // The server runs in this process here: its pid gives the CPU column.
    const target = { address: `http://127.0.0.1:${port}`, token: "s.tok", pid: process.pid };
    const side = loadSide("t", () => target, "POST");
    const m = await side.measure?.(KEYS + 10);
    assert.equal(seen.length, KEYS + 10);
    assert.deepEqual([...tokens], ["s.tok"]);
    assert.equal(new Set(seen).size, KEYS);
    assert.ok(seen.includes(`POST ${kvDataPath(KEYS - 1)}`));
    assert.ok((m?.opsPerSec ?? 0) > 0);
    assert.ok((m?.cpuUsPerOp ?? 0) > 0, `CPU per request ${m?.cpuUsPerOp}`);
  } finally {
    server.close();
  }
});

check("a load round with any non-2xx answer fails, naming how many", async () => {
  let n = 0;
  const server = createServer((_req, res) => {
    res.statusCode = n++ === 3 ? 403 : 200;
    res.end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  try {
    const side = loadSide("t", () => ({ address: `http://127.0.0.1:${port}`, token: "x" }), "GET");
    await assert.rejects(async () => side.measure?.(100), /t: 1 non-2xx responses/);
  } finally {
    server.close();
  }
});

check("the bench cache is refused inside the repository, accepted beside it", async () => {
  assert.match(insideRepo(join(REPO_ROOT, "node_modules/.cache/x")) ?? "", /BULWARK_BENCH_CACHE/);
  assert.match(insideRepo(REPO_ROOT) ?? "", /inside the repository/);
  assert.equal(insideRepo(`${REPO_ROOT}-cache`), undefined);
  assert.equal(insideRepo(join(tmpdir(), "bulwark-bench")), undefined);
});

check(
  "a build lock left by a process that is gone is taken over; one held by a live process is waited for",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-lock-"));
    try {
      const lock = join(dir, "x.lock");
      const gone = spawn("true");
      await new Promise((r) => gone.once("exit", r));
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(gone.pid));
      assert.equal(await withLock(lock, async () => "ran"), "ran");
      assert.equal(existsSync(lock), false);
      // Held by this (live) process: the second taker runs only after the first released it.
      const order: string[] = [];
      await Promise.all([
        withLock(lock, async () => {
          order.push("first");
          await new Promise((r) => setTimeout(r, 1_500));
          order.push("first done");
        }),
        new Promise((r) => setTimeout(r, 100)).then(() =>
          withLock(lock, async () => void order.push("second")),
        ),
      ]);
      assert.deepEqual(order, ["first", "first done", "second"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

check("a baseline commit missing from the clone fails with how to get it", async () => {
  await assert.rejects(resolveCommit("0123456789abcdef0123456789abcdef01234567"), /git fetch --unshallow/);
  assert.match(await resolveCommit("HEAD"), /^[0-9a-f]{40}$/);
});

check(
  "startBulwark: inmem, 1/1 Shamir, kv v2 at secret/ with the keys written; stop() ends its group",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-selftest-"));
    try {
      const s = await startBulwark({
        serverDir: SERVER_DIR,
        label: "selftest",
        storage: "inmem",
        dataDir: dir,
      });
      const res = await fetch(`${s.address}${kvDataPath(KEYS - 1)}`, {
        headers: { "x-vault-token": s.token },
      });
      const body = (await res.json()) as { data?: { data?: { value?: string } } };
      assert.equal(body.data?.data?.value, VALUE);
      assert.ok(groupAlive(s.group.pid));
      await s.stop();
      assert.equal(groupAlive(s.group.pid), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

check(
  "startBulwark: extraConfig reaches the config (an audit block: its log gets the start's records), nodeArgs the node (--cpu-prof: a profile when it stops)",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-selftest-"));
    try {
      const log = join(dir, "audit.log");
      const prof = join(dir, "prof");
      const s = await startBulwark({
        serverDir: SERVER_DIR,
        label: "selftest",
        storage: "inmem",
        dataDir: dir,
        extraConfig: `audit "file" "t" {\n  options {\n    file_path = ${JSON.stringify(log)}\n  }\n}`,
        nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${prof}`],
      });
      try {
        // Every key written at start is a request and a response record.
        const lines = readFileSync(log, "utf8")
          .split("\n")
          .filter((l) => l !== "");
        assert.ok(lines.length >= 2 * KEYS, `${lines.length} audit records after the start`);
        assert.equal((JSON.parse(lines.at(-1) as string) as { type?: string }).type, "response");
      } finally {
        await s.stop();
      }
      assert.equal(readdirSync(prof).filter((f) => f.endsWith(".cpuprofile")).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

// A bench process that ends without its teardown (an uncaught error, Ctrl-C) takes its server
// groups along: each case runs a child that starts a group, reports its pid, then ends that way.
for (const [how, end] of [
  ["throws", "throw new Error('boom')"],
  ["gets SIGINT", "process.kill(process.pid, 'SIGINT'); await new Promise((r) => setTimeout(r, 5000))"],
] as const) {
  check(`a bench process that ${how} leaves no server group behind`, async () => {
    const script = [
      `import { startGroup } from ${JSON.stringify(join(import.meta.dirname, "http-load.ts"))};`,
      `const g = startGroup("sleep", ["60"], "sleeper", { stdio: "ignore" });`,
      "console.log(g.pid);",
      // Ends only once the test has seen the group running (a plain child is no group: -pid is ESRCH).
      "await new Promise((r) => process.stdin.once('data', r));",
      end,
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: import.meta.dirname,
      stdio: ["pipe", "pipe", "ignore"],
    });
    const line = await new Promise<string>((r) => createInterface({ input: child.stdout }).once("line", r));
    const pgid = Number(line);
    assert.ok(pgid > 0 && groupAlive(pgid), `child reported ${line}, not a running process group`);
    child.stdin.end("go\n");
    await new Promise((r) => child.once("exit", r));
    const deadline = Date.now() + 5_000;
    while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const left = groupAlive(pgid);
    if (left) process.kill(-pgid, "SIGKILL");
    assert.equal(left, false, `group ${pgid} outlived the bench process`);
  });
}

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${(e as Error).message}`);
  }
}
console.log(`${failed} self-test check(s) failed`);
process.exitCode = failed === 0 ? 0 : 1;
