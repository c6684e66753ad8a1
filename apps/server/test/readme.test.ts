/**
 * The root README's walkthroughs, run the way a reader pastes them.
 *
 * What runs: every ```sh block under "## Walkthroughs", grouped by its "###" section, in README
 * order. A section's blocks run in ONE bash process (`set -euo pipefail`, so any failing command
 * fails the section) from the repository root, after `.walkthrough/` has been emptied. Nothing is
 * carried between sections but files (a later section may reuse, say, the SoftHSM token an earlier
 * one made), exactly as for a reader who opens a new shell.
 *
 * Marking: a block that is not meant to run (placeholders such as `<key 1>`, `pnpm install`, the
 * installer that needs root) says so in its info string: ```sh no-run. Every other sh/bash/shell
 * block must sit inside a walkthrough section — a test below fails otherwise — so nothing in the
 * README escapes this test by accident.
 *
 * Services: the walkthroughs call SoftHSM2 (`softhsm2-util`, libsofthsm2.so) and
 * `tooling/services/.bin/{consul,local-kms}`, which `tooling/services/install.sh` installs (run by
 * `pnpm test` and CI). A section whose service is missing fails under CI=true and is skipped with
 * the reason elsewhere. The server must be built (`pnpm test` builds first) and `pnpm exec bulwark`
 * linked (`pnpm install`).
 *
 * Processes: each section's bash is its own process group; everything it starts in the background
 * (servers, Consul, local-kms) stays in that group. When the section ends, however it ends — a
 * failure, the section's timeout or vitest's — the group gets SIGTERM, then SIGKILL after a grace.
 * A section that returns with anything of its group still running fails: the README promises that
 * each walkthrough stops what it started. The ports the README names must be free before and after.
 *
 * Afterwards the repository root must hold nothing new (the walkthroughs write only to the ignored
 * `.walkthrough/`). The README's fixed ports and the shared `.walkthrough/` allow one run at a time
 * per machine: a lock in the temp dir serialises concurrent runs.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SERVER_DIR } from "./helpers/server-process.js";

const ROOT = resolve(SERVER_DIR, "../..");
const README = join(ROOT, "README.md");
const WALKTHROUGH_DIR = join(ROOT, ".walkthrough");
const SERVICES_BIN = join(ROOT, "tooling/services/.bin");
const CI = process.env.CI === "true";

/** One section's script may take this long (real servers on a busy 2-core machine)… */
const SECTION_TIMEOUT_MS = 150_000;
/** …and vitest's limit is a little longer, so our own timeout (with its diagnostics) fires first. */
const TEST_TIMEOUT_MS = SECTION_TIMEOUT_MS + 30_000;
/** Between SIGTERM and SIGKILL to a section's process group. */
const KILL_GRACE_MS = 5_000;
/** How long to wait for another run of this test on the machine to finish. */
const LOCK_WAIT_MS = 600_000;

// ------------------------------------------------------------------------------ the README

interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  noRun: boolean;
  h2: string | undefined;
  h3: string | undefined;
  code: string;
}

function readBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  let h2: string | undefined;
  let h3: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const fence = /^(`{3,})\s*([\w-]*)(.*)$/.exec(line);
    if (fence !== null) {
      const [, ticks, lang = "", info = ""] = fence;
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !(lines[j] as string).startsWith(ticks as string))
        body.push(lines[j++] as string);
      blocks.push({ line: i + 1, lang, noRun: /\bno-run\b/.test(info), h2, h3, code: body.join("\n") });
      i = j;
      continue;
    }
    if (line.startsWith("## ")) {
      h2 = line.slice(3).trim();
      h3 = undefined;
    } else if (line.startsWith("### ")) h3 = line.slice(4).trim();
  }
  return blocks;
}

const SHELL = new Set(["sh", "bash", "shell"]);
const blocks = readBlocks(readFileSync(README, "utf8"));
const runnable = blocks.filter((b) => SHELL.has(b.lang) && !b.noRun);

interface Section {
  title: string;
  script: string;
  lines: number[];
}
const sections: Section[] = [];
for (const b of runnable) {
  if (b.h2 !== "Walkthroughs" || b.h3 === undefined) continue;
  const last = sections.at(-1);
  if (last?.title === b.h3) {
    last.script += `\n${b.code}`;
    last.lines.push(b.line);
  } else sections.push({ title: b.h3, script: b.code, lines: [b.line] });
}

// ------------------------------------------------------------------------------ services

function onPath(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** What a section needs that is not here, as one sentence; undefined when all is there. */
function missingFor(script: string): string | undefined {
  const missing: string[] = [];
  if (/softhsm2-util|SOFTHSM2_CONF/.test(script)) {
    if (!onPath("softhsm2-util")) missing.push("softhsm2-util (not on PATH)");
    for (const lib of script.matchAll(/lib\s*=\s*"([^"]+\.so)"/g)) {
      if (!existsSync(lib[1] as string)) missing.push(`${lib[1]}`);
    }
  }
  for (const tool of ["consul", "local-kms"]) {
    if (script.includes(`tooling/services/.bin/${tool}`) && !existsSync(join(SERVICES_BIN, tool)))
      missing.push(`tooling/services/.bin/${tool}`);
  }
  if (missing.length === 0) return undefined;
  return `missing ${missing.join(", ")}: run tooling/services/install.sh (as root)`;
}

/** Why nothing can run: the server is not built or `pnpm exec bulwark` is not linked. */
function notReady(): string | undefined {
  if (!existsSync(join(SERVER_DIR, "dist/index.js")))
    return "apps/server is not built (apps/server/dist/index.js missing): run pnpm build (pnpm test does)";
  if (!existsSync(join(ROOT, "node_modules/.bin/bulwark")))
    return "node_modules/.bin/bulwark is missing, so `pnpm exec bulwark` cannot work: run pnpm install";
  return undefined;
}

// ------------------------------------------------------------------------------ ports

/** The loopback ports a script names, plus those of the repo config files it starts servers with. */
function portsOf(script: string): number[] {
  let text = script;
  for (const m of script.matchAll(/-config\s+(apps\/server\/config\/[\w.-]+)/g)) {
    const file = join(ROOT, m[1] as string);
    if (existsSync(file)) text += `\n${readFileSync(file, "utf8")}`;
  }
  const ports = new Set<number>();
  for (const m of text.matchAll(/127\.0\.0\.1:(\d{2,5})/g)) ports.add(Number(m[1]));
  for (const m of text.matchAll(/\bPORT=(\d{2,5})/g)) ports.add(Number(m[1]));
  return [...ports].sort((a, b) => a - b);
}

function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setTimeout(2_000);
    socket.once("connect", () => {
      socket.destroy();
      res(true);
    });
    socket.once("timeout", () => {
      socket.destroy();
      res(true);
    });
    socket.once("error", () => res(false));
  });
}

async function busyPorts(ports: number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const p of ports) if (await listening(p)) busy.push(p);
  return busy;
}

// ------------------------------------------------------------------------------ process groups

/** Process groups of running sections, so that every way out of a test stops them. */
const groups = new Set<number>();

/** Whether the kernel still knows any process of the group (zombies included). */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The group's live members (`pid args` lines), from ps. Zombies do not count: an exited process
 * whose parent went away waits for PID 1 to reap it, which in a container may never happen.
 * Without ps, every process the kernel still lists for the group counts.
 */
function groupMembers(pgid: number): string[] {
  const ps = spawnSync("ps", ["-eo", "pid=,pgid=,stat=,args="], { encoding: "utf8" });
  if (ps.status !== 0) return groupExists(pgid) ? [`(process group ${pgid}; ps unavailable)`] : [];
  const members: string[] = [];
  for (const line of ps.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m !== null && Number(m[2]) === pgid && !(m[3] as string).startsWith("Z"))
      members.push(`${m[1]} ${m[4]}`);
  }
  return members;
}

function groupAlive(pgid: number): boolean {
  return groupExists(pgid) && groupMembers(pgid).length > 0;
}

/**
 * SIGTERM to the group, SIGKILL after the grace. Only while the kernel still lists the group: once
 * it is gone its number may be reused by someone else's.
 */
async function stopGroup(pgid: number): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    if (!groupExists(pgid)) return;
    try {
      process.kill(-pgid, sig);
    } catch {}
  };
  signal("SIGTERM");
  const deadline = Date.now() + KILL_GRACE_MS;
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  signal("SIGKILL");
  groups.delete(pgid);
}

// A worker that exits (or is stopped by vitest) must not leave a walkthrough's servers behind.
function killAllNow(): void {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {}
  }
}
process.once("exit", killAllNow);
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAllNow();
    // Listening replaced the default (exit); raise it again so the worker still ends.
    process.kill(process.pid, signal);
  });
}

/** A reader's shell: no Bulwark/Vault/AWS/SoftHSM settings from the test runner's environment. */
function readerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(BULWARK_|VAULT_|AWS_|AWSKMS_|CONSUL_HTTP_|VITEST|SOFTHSM2_CONF$|NODE_ENV$|TEST$)/.test(k))
      continue;
    env[k] = v;
  }
  return env;
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Still in the section's process group when its bash had exited. */
  leftBehind: string;
  output: string;
  ms: number;
}

async function runSection(section: Section): Promise<RunResult> {
  const started = Date.now();
  // -x: the failure report shows which command failed; PS4 keeps the trace lines recognisable.
  const script = `set -euo pipefail\nPS4='+ [readme] '\nset -x\n${section.script}\n`;
  const child: ChildProcess = spawn("bash", ["-c", script], {
    cwd: ROOT,
    env: readerEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pgid = child.pid as number;
  groups.add(pgid);
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-40_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopGroup(pgid);
  }, SECTION_TIMEOUT_MS);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once("close", (code, signal) => res({ code, signal }));
    child.once("error", (err) => {
      output += `\nspawn failed: ${err.message}`;
      res({ code: null, signal: null });
    });
  });
  clearTimeout(timer);
  // bash is gone; its background jobs would still be in the group. Give a server that is exiting
  // a moment, then record and stop whatever is left.
  const settle = Date.now() + 2_000;
  while (groupAlive(pgid) && Date.now() < settle) await new Promise((r) => setTimeout(r, 100));
  const leftBehind = groupMembers(pgid).join("\n");
  await stopGroup(pgid);
  return { ...exit, timedOut, leftBehind, output, ms: Date.now() - started };
}

/** The last lines of every log under .walkthrough/, for a failure report. */
function logTails(): string {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const st = statSync(path);
      if (st.isDirectory()) walk(path);
      else if (name.endsWith(".log")) {
        const lines = readFileSync(path, "utf8").trimEnd().split("\n").slice(-25);
        out.push(`--- ${relative(ROOT, path)} (last ${lines.length} lines)\n${lines.join("\n")}`);
      }
    }
  };
  walk(WALKTHROUGH_DIR);
  return out.join("\n");
}

// ------------------------------------------------------------------------------ lock and git

const LOCK_DIR = join(tmpdir(), "bulwark-readme-walkthroughs.lock");
let lockHeld = false;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function acquireLock(): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(join(LOCK_DIR, "pid"), String(process.pid));
      lockHeld = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    // A holder that died without releasing leaves a stale lock: take it over.
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(join(LOCK_DIR, "pid"), "utf8"));
    } catch {}
    if (Number.isInteger(holder) && !pidAlive(holder)) {
      rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`another run of the README walkthroughs (pid ${holder}) held ${LOCK_DIR} for 10 min`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** Untracked and ignored entries at the top of the repository (`git status` collapses directories). */
function rootEntries(): Set<string> {
  const out = execFileSync("git", ["status", "--porcelain", "--ignored", "--untracked-files=normal"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const entries = new Set<string>();
  for (const line of out.split("\n")) {
    if (!line.startsWith("??") && !line.startsWith("!!")) continue;
    const path = line.slice(3);
    if (/^[^/]+\/?$/.test(path)) entries.add(path);
  }
  return entries;
}

function configDirStatus(): string {
  return execFileSync("git", ["status", "--porcelain", "--", "apps/server/config"], {
    cwd: ROOT,
    encoding: "utf8",
  });
}

// ------------------------------------------------------------------------------ the tests

describe("README.md", () => {
  it("marks every shell block outside a walkthrough section `no-run`", () => {
    const stray = blocks.filter(
      (b) => SHELL.has(b.lang) && !b.noRun && (b.h2 !== "Walkthroughs" || b.h3 === undefined),
    );
    expect(stray.map((b) => `README.md:${b.line} (under "${b.h3 ?? b.h2}")`)).toEqual([]);
    expect(sections.length).toBeGreaterThan(0);
  });

  it("gives every walkthrough its own ports and its own .walkthrough/ directory", () => {
    const seenPorts = new Map<number, string>();
    const shared = new Set([8500, 4599]); // Consul and local-kms: started and stopped in each section
    for (const s of sections) {
      for (const p of portsOf(s.script)) {
        if (shared.has(p)) continue;
        expect(seenPorts.get(p), `port ${p} in "${s.title}"`).toBeUndefined();
        seenPorts.set(p, s.title);
      }
    }
    // Files go to .walkthrough/: no redirection or heredoc into the repository root.
    for (const s of sections) {
      for (const m of s.script.matchAll(/>>?\s*("?)([^\s"&|;]+)\1/g)) {
        const target = m[2] as string;
        if (target === "/dev/null" || /^&?\d$/.test(target)) continue;
        expect(target, `"${s.title}" writes ${target}`).toMatch(/^(\$PWD\/)?\.walkthrough\//);
      }
    }
  });
});

describe("README walkthroughs, pasted in order", () => {
  const ready = notReady();
  const skipAll = ready !== undefined && !CI;
  if (skipAll) console.warn(`skipping the README walkthroughs: ${ready}`);
  let before: Set<string> = new Set();
  let configBefore = "";

  beforeAll(async () => {
    if (ready !== undefined) return;
    await acquireLock();
    rmSync(WALKTHROUGH_DIR, { recursive: true, force: true });
    before = rootEntries();
    configBefore = configDirStatus();
  }, LOCK_WAIT_MS + 10_000);

  afterEach(async () => {
    await Promise.all([...groups].map((g) => stopGroup(g)));
  }, KILL_GRACE_MS * 3);

  afterAll(() => {
    killAllNow();
    if (lockHeld) rmSync(LOCK_DIR, { recursive: true, force: true });
  });

  for (const section of sections) {
    const missing = missingFor(section.script);
    const skip = skipAll || (missing !== undefined && !CI);
    if (missing !== undefined && !CI && !skipAll) console.warn(`skipping "${section.title}": ${missing}`);
    it.skipIf(skip)(
      `${section.title} (README.md:${section.lines.join(",")})`,
      async () => {
        if (ready !== undefined) throw new Error(ready);
        if (missing !== undefined) throw new Error(`${missing} (CI=true: the walkthroughs must run here)`);
        const ports = portsOf(section.script);
        expect(await busyPorts(ports), `ports the walkthrough needs are taken before it starts`).toEqual([]);
        const r = await runSection(section);
        const report = () =>
          [
            `"${section.title}" ${r.timedOut ? `timed out after ${SECTION_TIMEOUT_MS / 1000} s` : `exited ${r.code ?? r.signal}`} in ${(r.ms / 1000).toFixed(1)} s`,
            r.leftBehind && `left running:\n${r.leftBehind}`,
            `--- output (tail)\n${r.output.slice(-12_000)}`,
            logTails(),
          ]
            .filter(Boolean)
            .join("\n");
        console.log(`README walkthrough "${section.title}": ${(r.ms / 1000).toFixed(1)} s`);
        if (r.timedOut || r.code !== 0 || r.leftBehind !== "") throw new Error(report());
        expect(await busyPorts(ports), `still listening after "${section.title}"`).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );
  }

  it.skipIf(skipAll)("leaves the repository root as it was (everything in .walkthrough/)", () => {
    if (ready !== undefined) throw new Error(ready);
    const added = [...rootEntries()].filter((e) => !before.has(e) && e !== ".walkthrough/");
    expect(added, "new files or directories in the repository root").toEqual([]);
    expect(configDirStatus(), "apps/server/config changed").toBe(configBefore);
    const ignored = spawnSync("git", ["check-ignore", "-q", ".walkthrough/x"], { cwd: ROOT }).status;
    expect(ignored, ".walkthrough/ is not git-ignored").toBe(0);
  });
});
