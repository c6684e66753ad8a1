/**
 * The `bulwark` command line (commander 14), shaped like Vault's: `server`, `status`,
 * `operator …`, `kv …`, `token …`, and raw `read`/`write`/`delete`/`list`. Flags are written the
 * Vault way (`-key-shares=5`); exit codes follow Vault: 0 success, 1 local/usage error, 2 remote
 * error; `status` gives 2 when sealed.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { VERSION } from "@bulwark/core";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../config/errors.js";
import { parseDuration } from "../http/validate.js";
import { JsonNumber, parseJson, stringify } from "../json/lossless.js";
import { ProviderError } from "../registry/errors.js";
import { normaliseArgs } from "./argv.js";
import { ApiClient, ApiError, ConnectionError } from "./client.js";
import { runMigrate } from "./migrate.js";
import {
  cell,
  dataOf,
  type Format,
  formatDuration,
  type Io,
  json,
  keyList,
  parseFormat,
  rowsOf,
  secretRows,
  table,
  UsageError,
} from "./output.js";

interface ClientFlags {
  address?: string;
  token?: string;
  format?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function integer(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`-${name} must be a whole number`);
    return Number(value);
  };
}

function withClientFlags(cmd: Command): Command {
  return cmd
    .option("--address <url>", "server address (default: $BULWARK_ADDR, $VAULT_ADDR, http://127.0.0.1:8200)")
    .option("--token <token>", "token (default: $BULWARK_TOKEN, $VAULT_TOKEN)")
    .option("--format <format>", "output format: table or json (default: $BULWARK_FORMAT or table)")
    .option(
      "--ca-cert <file>",
      "PEM CA certificate that signed the server's (default: $BULWARK_CACERT, $VAULT_CACERT)",
    )
    .option(
      "--tls-skip-verify",
      "do not verify the server's certificate (default: $BULWARK_SKIP_VERIFY, $VAULT_SKIP_VERIFY)",
    );
}

function clientOf(flags: ClientFlags, io: Io): ApiClient {
  return new ApiClient({
    address: flags.address,
    token: flags.token,
    caCert: flags.caCert,
    tlsSkipVerify: flags.tlsSkipVerify,
    env: io.env,
  });
}

/** Reads one secret: the argument, else a hidden prompt on a terminal, else the first line of stdin. */
async function readSecret(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  if (stdin.isTTY && typeof stdin.setRawMode === "function") {
    io.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    try {
      return await new Promise<string>((resolve, reject) => {
        let value = "";
        const onData = (chunk: Buffer | string) => {
          for (const ch of chunk.toString()) {
            if (ch === "\r" || ch === "\n") {
              stdin.off("data", onData);
              io.stderr.write("\n");
              resolve(value);
              return;
            }
            if (ch === "\u0003") {
              stdin.off("data", onData);
              reject(new UsageError("interrupted"));
              return;
            }
            if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
            else value += ch;
          }
        };
        stdin.on("data", onData);
      });
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
  const rl = createInterface({ input: stdin, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) return line.trim();
  } finally {
    rl.close();
  }
  throw new UsageError("no input on stdin: pass the value as an argument");
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString("utf8");
}

/** `k=v`, `k=@file`, `k=-` (stdin), or a single `-` / `@file.json` holding a JSON object. */
async function parseKeyValues(args: readonly string[], io: Io): Promise<Record<string, unknown>> {
  if (args.length === 1 && (args[0] === "-" || (args[0]?.startsWith("@") && !args[0].includes("=")))) {
    const text =
      args[0] === "-" ? await readAll(io.stdin) : await readFile((args[0] as string).slice(1), "utf8");
    let parsed: unknown;
    try {
      // Numbers keep their exact text (`bao kv put p -` sends them as written).
      parsed = parseJson(text);
    } catch (err) {
      throw new UsageError(`the input is not JSON: ${(err as Error).message}`);
    }
    if (
      typeof parsed !== "object" ||
      parsed === null ||
      Array.isArray(parsed) ||
      parsed instanceof JsonNumber
    )
      throw new UsageError("the JSON input must be an object");
    return parsed as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new UsageError(`${JSON.stringify(arg)} is not key=value`);
    const key = arg.slice(0, eq);
    let value = arg.slice(eq + 1);
    if (value === "-") value = (await readAll(io.stdin)).replace(/\n$/, "");
    else if (value.startsWith("@")) value = await readFile(value.slice(1), "utf8");
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function versionsOf(value: string | undefined, command: string): number[] {
  if (value === undefined || value.trim() === "")
    throw new UsageError(`${command} needs -versions, e.g. -versions=1,2`);
  return value.split(",").map((v) => {
    if (!/^\s*\d+\s*$/.test(v))
      throw new UsageError(`-versions must be numbers separated by commas, got ${JSON.stringify(value)}`);
    return Number(v);
  });
}

// ------------------------------------------------------------------------------ status

function statusRows(
  s: Record<string, unknown>,
  leader: Record<string, unknown> | undefined,
): Array<[string, unknown]> {
  const rows: Array<[string, unknown]> = [["Seal Type", s.type]];
  if (s.recovery_seal === true) rows.push(["Recovery Seal Type", s.recovery_seal_type ?? "shamir"]);
  rows.push(["Initialized", s.initialized], ["Sealed", s.sealed]);
  rows.push([s.recovery_seal === true ? "Total Recovery Shares" : "Total Shares", s.n], ["Threshold", s.t]);
  if (s.sealed === true) {
    rows.push(
      ["Unseal Progress", `${s.progress}/${s.t}`],
      ["Unseal Nonce", s.nonce === "" ? "n/a" : s.nonce],
    );
  }
  if (s.migration === true) rows.push(["Seal Migration in Progress", true]);
  // Bulwark's own field: auto-unseal is retrying because the HSM/KMS cannot be reached yet.
  const wait = s.bulwark_auto_unseal as Record<string, unknown> | undefined;
  if (typeof wait === "object" && wait !== null) {
    rows.push(
      [
        "Waiting For Seal",
        `${wait.waiting_for} (attempt ${wait.attempts}, next ${wait.next_attempt ?? "soon"})`,
      ],
      ["Last Seal Error", wait.last_error],
    );
  }
  rows.push(["Version", s.version], ["Storage Type", s.storage_type]);
  if (s.cluster_name !== undefined && s.cluster_name !== "") rows.push(["Cluster Name", s.cluster_name]);
  if (s.cluster_id !== undefined && s.cluster_id !== "") rows.push(["Cluster ID", s.cluster_id]);
  if (leader !== undefined) {
    rows.push(["HA Enabled", leader.ha_enabled ?? false]);
    if (leader.ha_enabled === true && s.sealed !== true) {
      rows.push(["HA Mode", leader.is_self === true ? "active" : "standby"]);
      if (leader.leader_address) rows.push(["Active Node Address", leader.leader_address]);
    }
  }
  return rows;
}

/** Whether one more share reaches the unseal threshold (from seal-status; false if unknown). */
async function completesThreshold(client: ApiClient): Promise<boolean> {
  const s = (await client.request("GET", "sys/seal-status").catch(() => undefined))?.body as
    | Record<string, unknown>
    | undefined;
  return typeof s?.progress === "number" && typeof s.t === "number" && s.progress + 1 >= s.t;
}

async function printStatus(client: ApiClient, io: Io, format: Format, body: unknown): Promise<void> {
  const s = body as Record<string, unknown>;
  if (format === "json") {
    io.stdout.write(json(s));
    return;
  }
  let leader: Record<string, unknown> | undefined;
  try {
    leader = (await client.request("GET", "sys/leader")).body as Record<string, unknown>;
  } catch {
    leader = undefined;
  }
  io.stdout.write(table(statusRows(s, leader)));
}

// ------------------------------------------------------------------------------ kv helpers

interface KvTarget {
  mount: string;
  version: 1 | 2;
  /** Path inside the mount. */
  rel: string;
}

async function kvTarget(client: ApiClient, path: string, mountFlag: string | undefined): Promise<KvTarget> {
  const clean = path.replace(/^\/+/, "");
  const probe = mountFlag !== undefined ? `${mountFlag.replace(/^\/+|\/+$/g, "")}/` : clean;
  const res = await client.request("GET", `sys/internal/ui/mounts/${probe}`);
  const data = dataOf(res.body);
  const mount = typeof data.path === "string" ? data.path : probe;
  const version = (data.options as { version?: unknown } | undefined)?.version === "2" ? 2 : 1;
  if (data.type !== undefined && data.type !== "kv") {
    throw new UsageError(`${JSON.stringify(mount)} is a ${String(data.type)} mount, not kv`);
  }
  // "secret" names the mount "secret/" itself (its root), as in Vault.
  const rel =
    mountFlag !== undefined
      ? clean
      : clean.startsWith(mount)
        ? clean.slice(mount.length)
        : `${clean}/` === mount
          ? ""
          : clean;
  return { mount, version, rel };
}

function kvPath(t: KvTarget, kind: "data" | "metadata" | "delete" | "undelete" | "destroy"): string {
  return t.version === 2 ? `${t.mount}${kind}/${t.rel}` : `${t.mount}${t.rel}`;
}

function section(title: string, width: number): string {
  const pad = Math.max(0, width - title.length - 2);
  const left = "=".repeat(Math.floor(pad / 2));
  const right = "=".repeat(Math.ceil(pad / 2));
  return `${left} ${title} ${right}`.trim();
}

// ------------------------------------------------------------------------------ the program

/** Builds the program; `exit` receives each command's exit code. */
export function buildProgram(io: Io, exit: (code: number) => void): Command {
  const program = new Command("bulwark");
  program
    .description("Bulwark: a Vault-compatible sealed-storage server and its CLI")
    .version(`Bulwark v${VERSION}`, "-v, --version")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError("(run with -h for usage)");

  /** Wraps an action so errors print Vault-style and map to exit codes. */
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>, errorCode = 2) =>
    async (...args: A): Promise<void> => {
      try {
        exit(await fn(...args));
      } catch (err) {
        exit(report(err, io, errorCode));
      }
    };

  // ---------------------------------------------------------------- server
  program
    .command("server")
    .description("run the server from config files (Vault's -config), or an in-memory dev server (-dev)")
    .option("--config <path>", "config file or directory (repeatable; merged like Vault)", collect, [])
    .option("--dev", "in-memory, initialised with one key share, unsealed; prints the root token")
    .option("--dev-listen-address <addr>", "dev listener address", "127.0.0.1:8200")
    .option("--dev-root-token-id <id>", "with -dev: this root token instead of a random one (Vault's flag)")
    .option("--log-level <level>", "trace, debug, info, warn or error (default: config, BULWARK_LOG_LEVEL)")
    .action(
      act(
        async (opts: {
          config: string[];
          dev?: boolean;
          devListenAddress: string;
          devRootTokenId?: string;
          logLevel?: string;
        }) => {
          if (opts.config.length === 0 && !opts.dev) {
            throw new UsageError(
              "server needs -config <file or directory> (or -dev for an in-memory dev server)",
            );
          }
          if (opts.devRootTokenId !== undefined && !opts.dev)
            throw new UsageError("-dev-root-token-id needs -dev (it sets the dev server's root token)");
          const deadlineMs = shutdownDeadlineMs(io.env);
          const { runUntilSignal, startServer } = await import("../main.js");
          const server = await startServer({
            configPaths: opts.config,
            dev: opts.dev === true,
            devListenAddress: opts.devListenAddress,
            ...(opts.devRootTokenId === undefined ? {} : { devRootTokenId: opts.devRootTokenId }),
            ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
            env: io.env,
            out: io.stdout,
          });
          return runUntilSignal(server, deadlineMs === undefined ? {} : { deadlineMs });
        },
        1,
      ),
    );

  // ---------------------------------------------------------------- status
  withClientFlags(
    program.command("status").description("seal status; exit 0 unsealed, 2 sealed, 1 error"),
  ).action(
    act(async (flags: ClientFlags) => {
      const format = parseFormat(flags.format, io.env);
      const client = clientOf(flags, io);
      const res = await client.request("GET", "sys/seal-status");
      await printStatus(client, io, format, res.body);
      return (res.body as { sealed?: unknown }).sealed === true ? 2 : 0;
    }, 1),
  );

  // ---------------------------------------------------------------- operator
  const operator = program
    .command("operator")
    .description("init, unseal, seal, rekey, rotate, key status, storage migration");

  withClientFlags(
    operator
      .command("init")
      .description("initialise the store: unseal keys (Shamir) or recovery keys (auto seal)"),
  )
    .option("--key-shares <n>", "unseal key shares (Shamir)", integer("key-shares"), 5)
    .option("--key-threshold <n>", "shares needed to unseal (Shamir)", integer("key-threshold"), 3)
    .option("--recovery-shares <n>", "recovery key shares (auto seals)", integer("recovery-shares"), 5)
    .option(
      "--recovery-threshold <n>",
      "recovery shares needed (auto seals)",
      integer("recovery-threshold"),
      3,
    )
    .option("--status", "only report: exit 0 initialised, 2 not, 1 error")
    .action(
      act(
        async (
          flags: ClientFlags & {
            keyShares: number;
            keyThreshold: number;
            recoveryShares: number;
            recoveryThreshold: number;
            status?: boolean;
          },
        ) => {
          const format = parseFormat(flags.format, io.env);
          const client = clientOf(flags, io);
          if (flags.status) {
            const res = await client.request("GET", "sys/init");
            const initialized = (res.body as { initialized?: unknown }).initialized === true;
            io.stdout.write(
              format === "json"
                ? json(res.body)
                : initialized
                  ? "Bulwark is initialized\n"
                  : "Bulwark is not initialized\n",
            );
            return initialized ? 0 : 2;
          }
          const seal = (await client.request("GET", "sys/seal-status")).body as { type?: string };
          const auto = seal.type !== undefined && seal.type !== "shamir";
          const request = auto
            ? { recovery_shares: flags.recoveryShares, recovery_threshold: flags.recoveryThreshold }
            : { secret_shares: flags.keyShares, secret_threshold: flags.keyThreshold };
          const res = await client.request("PUT", "sys/init", { body: request });
          const b = res.body as Record<string, unknown>;
          const keys = (b.keys_base64 as string[] | undefined) ?? [];
          const keysHex = (b.keys as string[] | undefined) ?? [];
          const rkeys = (b.recovery_keys_base64 as string[] | undefined) ?? [];
          const rkeysHex = (b.recovery_keys as string[] | undefined) ?? [];
          if (format === "json") {
            io.stdout.write(
              json({
                unseal_keys_b64: keys,
                unseal_keys_hex: keysHex,
                unseal_shares: auto ? 1 : flags.keyShares,
                unseal_threshold: auto ? 1 : flags.keyThreshold,
                recovery_keys_b64: rkeys,
                recovery_keys_hex: rkeysHex,
                recovery_keys_shares: auto ? flags.recoveryShares : 0,
                recovery_keys_threshold: auto ? flags.recoveryThreshold : 0,
                root_token: b.root_token,
              }),
            );
            return 0;
          }
          const lines: string[] = [];
          for (const [i, k] of keys.entries()) lines.push(`Unseal Key ${i + 1}: ${k}`);
          for (const [i, k] of rkeys.entries()) lines.push(`Recovery Key ${i + 1}: ${k}`);
          lines.push("", `Initial Root Token: ${String(b.root_token)}`, "");
          if (auto) {
            lines.push(
              "Success! Bulwark is initialized",
              "",
              `Recovery key initialized with ${flags.recoveryShares} key shares and a key threshold of ${flags.recoveryThreshold}. Please`,
              "securely distribute the key shares printed above. The recovery keys authorise rekey,",
              "generate-root and seal migration; they cannot decrypt the data.",
            );
          } else {
            lines.push(
              `Bulwark initialized with ${flags.keyShares} key shares and a key threshold of ${flags.keyThreshold}. Please securely`,
              "distribute the key shares printed above. When the server is re-sealed, restarted, or",
              `stopped, you must supply at least ${flags.keyThreshold} of these keys to unseal it before it can start`,
              "servicing requests.",
              "",
              `Unseal with: bulwark operator unseal   (${flags.keyThreshold} times, one key each)`,
            );
          }
          io.stdout.write(`${lines.join("\n")}\n`);
          return 0;
        },
      ),
    );

  withClientFlags(operator.command("unseal").description("provide one unseal (or recovery) key share"))
    .argument("[key]", "the key share (hex or base64); prompted for when omitted")
    .option("--reset", "discard the shares provided so far")
    .option("--migrate", "this unseal performs the configured seal migration")
    .action(
      act(async (key: string | undefined, flags: ClientFlags & { reset?: boolean; migrate?: boolean }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        let body: Record<string, unknown>;
        if (flags.reset) body = { reset: true };
        else {
          const share = key ?? (await readSecret(io, "Unseal Key (will be hidden): "));
          if (share === "") throw new UsageError("the unseal key is empty");
          body = { key: share, ...(flags.migrate ? { migrate: true } : {}) };
          if (flags.migrate && (await completesThreshold(client))) {
            io.stderr.write("Seal migration: this share starts the migration; this may take a while…\n");
          }
        }
        const res = await client.request("PUT", "sys/unseal", { body });
        await printStatus(client, io, format, res.body);
        return 0;
      }),
    );

  withClientFlags(operator.command("seal").description("seal the store (needs a root/sudo token)")).action(
    act(async (flags: ClientFlags) => {
      await clientOf(flags, io).request("PUT", "sys/seal");
      io.stdout.write("Success! Bulwark is sealed.\n");
      return 0;
    }),
  );

  withClientFlags(
    operator.command("key-status").description("the barrier key term, install time and encryption count"),
  ).action(
    act(async (flags: ClientFlags) => {
      const format = parseFormat(flags.format, io.env);
      const res = await clientOf(flags, io).request("GET", "sys/key-status");
      const d = dataOf(res.body);
      io.stdout.write(
        format === "json"
          ? json(res.body)
          : table([
              ["Key Term", d.term],
              ["Install Time", d.install_time],
              ["Encryption Count", d.encryptions],
            ]),
      );
      return 0;
    }),
  );

  withClientFlags(
    operator.command("rotate").description("add a new barrier key term (old data stays readable)"),
  ).action(
    act(async (flags: ClientFlags) => {
      const format = parseFormat(flags.format, io.env);
      const client = clientOf(flags, io);
      await client.request("PUT", "sys/rotate");
      const res = await client.request("GET", "sys/key-status");
      const d = dataOf(res.body);
      io.stdout.write(
        format === "json"
          ? json(res.body)
          : `Success! Rotated key\n\n${table([
              ["Key Term", d.term],
              ["Install Time", d.install_time],
            ])}`,
      );
      return 0;
    }),
  );

  withClientFlags(
    operator.command("rekey").description("new unseal or recovery key shares (Vault's rekey flow)"),
  )
    .argument("[key]", "a current key share for the rekey in progress; prompted for when omitted")
    .option("--init", "start a rekey")
    .option("--cancel", "cancel the rekey in progress")
    .option("--status", "show the rekey in progress")
    .option("--key-shares <n>", "new number of shares", integer("key-shares"), 5)
    .option("--key-threshold <n>", "new threshold", integer("key-threshold"), 3)
    .addOption(
      new Option("--target <target>", "barrier (unseal keys) or recovery")
        .choices(["barrier", "recovery"])
        .default("barrier"),
    )
    .option("--nonce <nonce>", "the rekey's nonce (default: the one in progress)")
    .action(
      act(
        async (
          key: string | undefined,
          flags: ClientFlags & {
            init?: boolean;
            cancel?: boolean;
            status?: boolean;
            keyShares: number;
            keyThreshold: number;
            target: "barrier" | "recovery";
            nonce?: string;
          },
        ) => {
          const format = parseFormat(flags.format, io.env);
          const client = clientOf(flags, io);
          // With a token, OpenBao 2.x's authenticated sys/rotate/root|recovery/* (as `bao operator
          // rotate-keys`): the unauthenticated sys/rekey* are off by default since OpenBao 2.6
          // (listener disable_unauthed_rekey_endpoints). Without one, Vault's sys/rekey*.
          const authed = client.hasToken;
          const base = authed
            ? flags.target === "recovery"
              ? "sys/rotate/recovery"
              : "sys/rotate/root"
            : flags.target === "recovery"
              ? "sys/rekey-recovery-key"
              : "sys/rekey";
          const call = async (method: "GET" | "PUT" | "DELETE", path: string, body?: unknown) => {
            const res = await client.request(method, `${base}/${path}`, body === undefined ? {} : { body });
            const b = res.body as Record<string, unknown> | undefined;
            return (authed ? (b?.data as Record<string, unknown> | undefined) : b) ?? {};
          };
          const show = (body: unknown) => {
            const d = body as Record<string, unknown>;
            io.stdout.write(
              format === "json"
                ? json(d)
                : table([
                    ["Nonce", d.nonce],
                    ["Started", d.started],
                    ["Rekey Progress", `${d.progress}/${d.required}`],
                    ["New Shares", d.n],
                    ["New Threshold", d.t],
                  ]),
            );
          };
          if (flags.cancel) {
            await call("DELETE", "init");
            io.stdout.write("Success! Canceled rekeying (if it was started)\n");
            return 0;
          }
          if (flags.status) {
            show(await call("GET", "init"));
            return 0;
          }
          let status = await call("GET", "init");
          if (flags.init || status.started !== true) {
            status = await call("PUT", "init", {
              secret_shares: flags.keyShares,
              secret_threshold: flags.keyThreshold,
            });
            if (flags.init) {
              show(status);
              return 0;
            }
          }
          const share =
            key ??
            (await readSecret(
              io,
              "Rekey operation nonce: " + String(status.nonce) + "\nUnseal Key (will be hidden): ",
            ));
          const d = await call("PUT", "update", { key: share, nonce: flags.nonce ?? status.nonce });
          if (d.complete !== true) {
            show(d);
            return 0;
          }
          if (format === "json") {
            io.stdout.write(json(d));
            return 0;
          }
          const keys = (d.keys_base64 as string[] | undefined) ?? [];
          const lines = keys.map((k, i) => `Key ${i + 1}: ${k}`);
          lines.push(
            "",
            `Operation nonce: ${String(d.nonce)}`,
            "",
            keys.length > 0
              ? `Bulwark rekeyed with ${keys.length} key shares and a key threshold of ${flags.keyThreshold}. Please securely distribute the key shares printed above. The old keys no longer work.`
              : "Bulwark rekeyed: the root key was replaced (auto seal; the recovery keys are unchanged).",
          );
          io.stdout.write(`${lines.join("\n")}\n`);
          return 0;
        },
      ),
    );

  operator
    .command("migrate")
    .description(
      "copy every storage entry from storage_source to storage_destination (server stopped; Vault's operator migrate)",
    )
    .requiredOption(
      "--config <file>",
      'migration config with storage_source "<type>" { … } and storage_destination "<type>" { … }',
    )
    .option("--start <key>", "resume: copy only keys sorted at or after this one")
    .option("--reset", "remove a stale migration lock left by an interrupted run")
    .option("--max-parallel <n>", "entries copied at once", integer("max-parallel"), 10)
    .option("--format <format>", "output format for the summary: table or json")
    .action(
      act(
        async (flags: {
          config: string;
          start?: string;
          reset?: boolean;
          maxParallel: number;
          format?: string;
        }) => {
          const format = parseFormat(flags.format, io.env);
          return runMigrate({
            configPath: flags.config,
            ...(flags.start === undefined ? {} : { start: flags.start }),
            reset: flags.reset === true,
            maxParallel: flags.maxParallel,
            format,
            io,
          });
        },
        1,
      ),
    );

  // ---------------------------------------------------------------- kv
  const kv = program.command("kv").description("key/value secrets (KV v1 and v2, found from the mount)");
  const kvCmd = (name: string, description: string) =>
    withClientFlags(kv.command(name).description(description)).option(
      "--mount <path>",
      "the kv mount; the path is then relative to it",
    );

  kvCmd("get", "read a secret (v2: the latest or -version)")
    .argument("<path>")
    .option("--version <n>", "version to read (v2)", integer("version"))
    .option("--field <name>", "print only this field's value")
    .action(
      act(async (path: string, flags: ClientFlags & { mount?: string; version?: number; field?: string }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        const t = await kvTarget(client, path, flags.mount);
        const query: Record<string, string> =
          flags.version === undefined ? {} : { version: String(flags.version) };
        let res: Awaited<ReturnType<ApiClient["request"]>>;
        try {
          res = await client.request("GET", kvPath(t, "data"), { query });
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) {
            io.stderr.write(`No value found at ${kvPath(t, "data")}\n`);
            return 2;
          }
          throw err;
        }
        const outer = dataOf(res.body);
        const data = (t.version === 2 ? (outer.data as Record<string, unknown> | null) : outer) ?? {};
        const metadata =
          t.version === 2 ? ((outer.metadata as Record<string, unknown> | undefined) ?? {}) : undefined;
        if (flags.field !== undefined) {
          if (!Object.hasOwn(data, flags.field)) {
            io.stderr.write(`Field "${flags.field}" not present in secret\n`);
            return 1;
          }
          io.stdout.write(`${format === "json" ? stringify(data[flags.field]) : cell(data[flags.field])}\n`);
          return 0;
        }
        if (format === "json") {
          io.stdout.write(json(res.body));
          return 0;
        }
        const parts: string[] = [];
        if (metadata !== undefined) {
          parts.push(`== Secret Path ==\n${kvPath(t, "data")}\n`);
          parts.push(
            `${section("Metadata", 24)}\n${table(rowsOf(metadata).map(([k, v]) => [k, v === "" ? "n/a" : v]))}`,
          );
          parts.push(`${section("Data", 12)}\n${table(rowsOf(data))}`);
        } else {
          parts.push(table([...secretRows(res.body), ...rowsOf(data)]));
        }
        io.stdout.write(parts.join("\n"));
        return 0;
      }),
    );

  kvCmd("put", "write a secret: key=value pairs, key=@file, key=- (stdin) or - (a JSON object on stdin)")
    .argument("<path>")
    .argument("<data...>")
    .option("--cas <n>", "check-and-set: the current version (0 = only if absent; v2)", integer("cas"))
    .action(
      act(async (path: string, pairs: string[], flags: ClientFlags & { mount?: string; cas?: number }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        const t = await kvTarget(client, path, flags.mount);
        const data = await parseKeyValues(pairs, io);
        const body =
          t.version === 2
            ? { data, ...(flags.cas === undefined ? {} : { options: { cas: flags.cas } }) }
            : data;
        const res = await client.request("PUT", kvPath(t, "data"), { body });
        if (format === "json") {
          io.stdout.write(json(res.body ?? {}));
        } else if (t.version === 2) {
          io.stdout.write(
            `== Secret Path ==\n${kvPath(t, "data")}\n\n${section("Metadata", 24)}\n${table(rowsOf(dataOf(res.body)))}`,
          );
        } else {
          io.stdout.write(`Success! Data written to: ${kvPath(t, "data")}\n`);
        }
        return 0;
      }),
    );

  kvCmd("list", "list the keys under a path")
    .argument("<path>")
    .action(
      act(async (path: string, flags: ClientFlags & { mount?: string }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        const t = await kvTarget(client, path, flags.mount);
        const target = kvPath(t, "metadata");
        let keys: string[];
        try {
          keys = (
            (dataOf((await client.request("LIST", target)).body).keys as string[] | undefined) ?? []
          ).map(String);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) {
            io.stderr.write(`No value found at ${target}\n`);
            return 2;
          }
          throw err;
        }
        io.stdout.write(format === "json" ? json(keys) : keyList(keys));
        return 0;
      }),
    );

  kvCmd("delete", "delete the latest version (v2; or -versions) or the secret (v1)")
    .argument("<path>")
    .option("--versions <list>", "versions to delete, e.g. 1,2 (v2)")
    .action(
      act(async (path: string, flags: ClientFlags & { mount?: string; versions?: string }) => {
        const client = clientOf(flags, io);
        const t = await kvTarget(client, path, flags.mount);
        if (flags.versions !== undefined && t.version === 2) {
          await client.request("PUT", kvPath(t, "delete"), {
            body: { versions: versionsOf(flags.versions, "delete") },
          });
        } else {
          await client.request("DELETE", kvPath(t, "data"));
        }
        io.stdout.write(`Success! Data deleted (if it existed) at: ${kvPath(t, "data")}\n`);
        return 0;
      }),
    );

  for (const [name, description] of [
    ["undelete", "restore deleted versions (v2)"],
    ["destroy", "permanently remove versions (v2)"],
  ] as const) {
    kvCmd(name, description)
      .argument("<path>")
      .option("--versions <list>", "versions, e.g. 1,2")
      .action(
        act(async (path: string, flags: ClientFlags & { mount?: string; versions?: string }) => {
          const client = clientOf(flags, io);
          const t = await kvTarget(client, path, flags.mount);
          if (t.version !== 2) throw new UsageError(`${name} needs a kv v2 mount; ${t.mount} is kv v1`);
          await client.request("PUT", kvPath(t, name), {
            body: { versions: versionsOf(flags.versions, name) },
          });
          io.stdout.write(`Success! Data written to: ${kvPath(t, name)}\n`);
          return 0;
        }),
      );
  }

  const metadata = kv.command("metadata").description("a v2 secret's metadata: get, put, delete");
  const metaCmd = (name: string, description: string) =>
    withClientFlags(metadata.command(name).description(description))
      .option("--mount <path>", "the kv mount; the path is then relative to it")
      .argument("<path>");
  metaCmd("get", "versions and settings of a secret").action(
    act(async (path: string, flags: ClientFlags & { mount?: string }) => {
      const format = parseFormat(flags.format, io.env);
      const client = clientOf(flags, io);
      const t = await kvTarget(client, path, flags.mount);
      if (t.version !== 2) throw new UsageError(`metadata needs a kv v2 mount; ${t.mount} is kv v1`);
      let res: Awaited<ReturnType<ApiClient["request"]>>;
      try {
        res = await client.request("GET", kvPath(t, "metadata"));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          io.stderr.write(`No value found at ${kvPath(t, "metadata")}\n`);
          return 2;
        }
        throw err;
      }
      if (format === "json") {
        io.stdout.write(json(res.body));
        return 0;
      }
      const d = dataOf(res.body);
      const { versions, ...rest } = d;
      let out = `== Metadata Path ==\n${kvPath(t, "metadata")}\n\n${section("Metadata", 24)}\n${table(rowsOf(rest))}`;
      if (typeof versions === "object" && versions !== null) {
        for (const v of Object.keys(versions).sort((a, b) => Number(a) - Number(b))) {
          out += `\n${section(`Version ${v}`, 20)}\n${table(rowsOf((versions as Record<string, Record<string, unknown>>)[v] ?? {}))}`;
        }
      }
      io.stdout.write(out);
      return 0;
    }),
  );
  metaCmd("put", "set max versions, check-and-set requirement, delete-version-after")
    .option("--max-versions <n>", "versions kept (0 = mount default)", integer("max-versions"))
    .option("--cas-required", "writes must pass -cas")
    .option("--no-cas-required", "writes need not pass -cas (also -cas-required=false)")
    .option("--delete-version-after <duration>", "versions are deleted after this long, e.g. 768h")
    .action(
      act(
        async (
          path: string,
          flags: ClientFlags & {
            mount?: string;
            maxVersions?: number;
            casRequired?: boolean;
            deleteVersionAfter?: string;
          },
        ) => {
          const client = clientOf(flags, io);
          const t = await kvTarget(client, path, flags.mount);
          if (t.version !== 2) throw new UsageError(`metadata needs a kv v2 mount; ${t.mount} is kv v1`);
          const body: Record<string, unknown> = {};
          if (flags.maxVersions !== undefined) body.max_versions = flags.maxVersions;
          if (flags.casRequired !== undefined) body.cas_required = flags.casRequired;
          if (flags.deleteVersionAfter !== undefined) body.delete_version_after = flags.deleteVersionAfter;
          await client.request("PUT", kvPath(t, "metadata"), { body });
          io.stdout.write(`Success! Data written to: ${kvPath(t, "metadata")}\n`);
          return 0;
        },
      ),
    );
  metaCmd("delete", "delete a secret with all its versions and metadata").action(
    act(async (path: string, flags: ClientFlags & { mount?: string }) => {
      const client = clientOf(flags, io);
      const t = await kvTarget(client, path, flags.mount);
      if (t.version !== 2) throw new UsageError(`metadata needs a kv v2 mount; ${t.mount} is kv v1`);
      await client.request("DELETE", kvPath(t, "metadata"));
      io.stdout.write(`Success! Data deleted (if it existed) at: ${kvPath(t, "metadata")}\n`);
      return 0;
    }),
  );

  // ---------------------------------------------------------------- secrets engines
  const secrets = program.command("secrets").description("secrets engines (mounts): enable, list, disable");
  withClientFlags(
    secrets
      .command("enable")
      .description("mount a secrets engine, e.g. secrets enable -path=secret -version=2 kv"),
  )
    .argument("<type>", "engine type (kv)")
    .option("--path <path>", "mount path (default: the type)")
    .option("--version <n>", "kv version: 1 or 2", integer("version"))
    .option("--seal-wrap", "seal-wrap the engine's storage (needs an auto seal)")
    .option("--description <text>", "description")
    .action(
      act(
        async (
          type: string,
          flags: ClientFlags & { path?: string; version?: number; sealWrap?: boolean; description?: string },
        ) => {
          const path = (flags.path ?? type).replace(/^\/+|\/+$/g, "");
          const body: Record<string, unknown> = { type };
          if (flags.version !== undefined) body.options = { version: String(flags.version) };
          if (flags.sealWrap) body.seal_wrap = true;
          if (flags.description !== undefined) body.description = flags.description;
          await clientOf(flags, io).request("POST", `sys/mounts/${path}`, { body });
          io.stdout.write(`Success! Enabled the ${type} secrets engine at: ${path}/\n`);
          return 0;
        },
      ),
    );
  withClientFlags(secrets.command("list").description("list mounted secrets engines")).action(
    act(async (flags: ClientFlags) => {
      const format = parseFormat(flags.format, io.env);
      const res = await clientOf(flags, io).request("GET", "sys/mounts");
      const mounts = dataOf(res.body) as Record<string, Record<string, unknown>>;
      if (format === "json") {
        io.stdout.write(json(mounts));
        return 0;
      }
      const width = Math.max(4, ...Object.keys(mounts).map((k) => k.length));
      const lines = [`${"Path".padEnd(width)}    Type      Seal Wrap    Version    Description`];
      lines.push(`${"----".padEnd(width)}    ----      ---------    -------    -----------`);
      for (const path of Object.keys(mounts).sort()) {
        const m = mounts[path] ?? {};
        const version = (m.options as { version?: unknown } | null | undefined)?.version ?? "n/a";
        lines.push(
          `${path.padEnd(width)}    ${cell(m.type).padEnd(6)}    ${cell(m.seal_wrap ?? false).padEnd(9)}    ${cell(version).padEnd(7)}    ${cell(m.description ?? "")}`,
        );
      }
      io.stdout.write(`${lines.join("\n")}\n`);
      return 0;
    }),
  );
  withClientFlags(secrets.command("disable").description("unmount a secrets engine and delete its data"))
    .argument("<path>")
    .action(
      act(async (path: string, flags: ClientFlags) => {
        const clean = path.replace(/^\/+|\/+$/g, "");
        await clientOf(flags, io).request("DELETE", `sys/mounts/${clean}`);
        io.stdout.write(`Success! Disabled the secrets engine (if it existed) at: ${clean}/\n`);
        return 0;
      }),
    );

  // ---------------------------------------------------------------- token
  const token = program.command("token").description("tokens: create, lookup, revoke");
  withClientFlags(token.command("create").description("create a child token of the current token"))
    .option("--policy <name>", "policy (repeatable)", collect, [])
    .option("--ttl <duration>", "time to live, e.g. 1h")
    .option("--explicit-max-ttl <duration>", "hard limit on the TTL")
    .option("--period <duration>", "periodic token renewal period")
    .option("--renewable <bool>", "whether the token can be renewed (default true)")
    .option("--display-name <name>", "name shown in lookups")
    .option("--orphan", "no parent token")
    .option("--no-default-policy", "leave out the default policy")
    .option("--id <id>", "the token value to use (root only)")
    .option("--metadata <k=v>", "metadata (repeatable)", collect, [])
    .option("--use-limit <n>", "number of uses (0 = unlimited)", integer("use-limit"))
    .action(
      act(
        async (
          flags: ClientFlags & {
            policy: string[];
            ttl?: string;
            explicitMaxTtl?: string;
            period?: string;
            renewable?: string;
            displayName?: string;
            orphan?: boolean;
            defaultPolicy: boolean;
            id?: string;
            metadata: string[];
            useLimit?: number;
          },
        ) => {
          const format = parseFormat(flags.format, io.env);
          const body: Record<string, unknown> = {};
          if (flags.policy.length > 0) body.policies = flags.policy;
          if (flags.ttl !== undefined) body.ttl = flags.ttl;
          if (flags.explicitMaxTtl !== undefined) body.explicit_max_ttl = flags.explicitMaxTtl;
          if (flags.period !== undefined) body.period = flags.period;
          if (flags.renewable !== undefined) {
            if (!/^(true|false)$/.test(flags.renewable))
              throw new UsageError("-renewable must be true or false");
            body.renewable = flags.renewable === "true";
          }
          if (flags.displayName !== undefined) body.display_name = flags.displayName;
          if (flags.orphan) body.no_parent = true;
          if (!flags.defaultPolicy) body.no_default_policy = true;
          if (flags.id !== undefined) body.id = flags.id;
          if (flags.useLimit !== undefined) body.num_uses = flags.useLimit;
          if (flags.metadata.length > 0) body.meta = await parseKeyValues(flags.metadata, io);
          const res = await clientOf(flags, io).request(
            "POST",
            flags.orphan ? "auth/token/create-orphan" : "auth/token/create",
            {
              body,
            },
          );
          if (format === "json") {
            io.stdout.write(json(res.body));
            return 0;
          }
          const auth = ((res.body as { auth?: Record<string, unknown> }).auth ?? {}) as Record<
            string,
            unknown
          >;
          io.stdout.write(
            table([
              ["token", auth.client_token],
              ["token_accessor", auth.accessor],
              ["token_duration", formatDuration(Number(auth.lease_duration ?? 0))],
              ["token_renewable", auth.renewable],
              ["token_policies", auth.token_policies ?? auth.policies],
              ["identity_policies", auth.identity_policies ?? []],
              ["policies", auth.policies],
            ]),
          );
          return 0;
        },
      ),
    );

  withClientFlags(
    token.command("lookup").description("show a token's properties (default: the current token)"),
  )
    .argument("[token]", "token to look up (default: your own)")
    .option("--accessor", "the argument is an accessor")
    .action(
      act(async (arg: string | undefined, flags: ClientFlags & { accessor?: boolean }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        const res =
          arg === undefined
            ? await client.request("GET", "auth/token/lookup-self")
            : flags.accessor
              ? await client.request("POST", "auth/token/lookup-accessor", { body: { accessor: arg } })
              : await client.request("POST", "auth/token/lookup", { body: { token: arg } });
        io.stdout.write(format === "json" ? json(res.body) : table(rowsOf(dataOf(res.body))));
        return 0;
      }),
    );

  withClientFlags(token.command("revoke").description("revoke a token and its children"))
    .argument("[token]", "token to revoke")
    .option("--self", "revoke the current token")
    .option("--accessor", "the argument is an accessor")
    .action(
      act(async (arg: string | undefined, flags: ClientFlags & { self?: boolean; accessor?: boolean }) => {
        const client = clientOf(flags, io);
        if (flags.self) await client.request("POST", "auth/token/revoke-self");
        else if (arg === undefined) throw new UsageError("token revoke needs a token (or -self)");
        else if (flags.accessor)
          await client.request("POST", "auth/token/revoke-accessor", { body: { accessor: arg } });
        else await client.request("POST", "auth/token/revoke", { body: { token: arg } });
        io.stdout.write("Success! Revoked token (if it existed)\n");
        return 0;
      }),
    );

  // ---------------------------------------------------------------- raw paths
  withClientFlags(program.command("read").description("read any API path"))
    .argument("<path>")
    .option("--field <name>", "print only this field")
    .action(
      act(async (path: string, flags: ClientFlags & { field?: string }) => {
        const format = parseFormat(flags.format, io.env);
        let res: Awaited<ReturnType<ApiClient["request"]>>;
        try {
          res = await clientOf(flags, io).request("GET", path);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) {
            io.stderr.write(`No value found at ${path.replace(/^\/+/, "")}\n`);
            return 2;
          }
          throw err;
        }
        const data = dataOf(res.body);
        if (flags.field !== undefined) {
          if (!Object.hasOwn(data, flags.field)) {
            io.stderr.write(`Field "${flags.field}" not present in secret\n`);
            return 1;
          }
          io.stdout.write(`${format === "json" ? stringify(data[flags.field]) : cell(data[flags.field])}\n`);
          return 0;
        }
        io.stdout.write(
          format === "json" ? json(res.body) : table([...secretRows(res.body), ...rowsOf(data)]),
        );
        return 0;
      }),
    );

  withClientFlags(
    program.command("write").description("write any API path: key=value pairs, @file, - (JSON on stdin)"),
  )
    .argument("<path>")
    .argument("[data...]")
    .option("-f, --force", "write without data")
    .action(
      act(async (path: string, pairs: string[], flags: ClientFlags & { force?: boolean }) => {
        const format = parseFormat(flags.format, io.env);
        if (pairs.length === 0 && !flags.force)
          throw new UsageError("write needs data (key=value …) or -f to send none");
        const body = pairs.length === 0 ? {} : await parseKeyValues(pairs, io);
        const res = await clientOf(flags, io).request("PUT", path, { body });
        const clean = path.replace(/^\/+/, "");
        if (res.body === undefined) io.stdout.write(`Success! Data written to: ${clean}\n`);
        else if (format === "json") io.stdout.write(json(res.body));
        else {
          const auth = (res.body as { auth?: Record<string, unknown> }).auth;
          io.stdout.write(table(rowsOf(auth ?? dataOf(res.body))));
        }
        return 0;
      }),
    );

  withClientFlags(program.command("delete").description("delete any API path"))
    .argument("<path>")
    .action(
      act(async (path: string, flags: ClientFlags) => {
        await clientOf(flags, io).request("DELETE", path);
        io.stdout.write(`Success! Data deleted (if it existed) at: ${path.replace(/^\/+/, "")}\n`);
        return 0;
      }),
    );

  withClientFlags(program.command("list").description("list keys under any API path"))
    .argument("<path>")
    .action(
      act(async (path: string, flags: ClientFlags) => {
        const format = parseFormat(flags.format, io.env);
        let keys: string[];
        try {
          keys = (
            (dataOf((await clientOf(flags, io).request("LIST", path)).body).keys as string[] | undefined) ??
            []
          ).map(String);
        } catch (err) {
          if (err instanceof ApiError && err.status === 404) {
            io.stderr.write(`No value found at ${path.replace(/^\/+/, "")}\n`);
            return 2;
          }
          throw err;
        }
        io.stdout.write(format === "json" ? json(keys) : keyList(keys));
        return 0;
      }),
    );

  return program;
}

/**
 * `BULWARK_SHUTDOWN_TIMEOUT`: how long `server` may take to stop in order after SIGTERM/SIGINT
 * before it exits anyway ("30s", "1500ms", or seconds); unset = the default (10 s).
 */
function shutdownDeadlineMs(env: Record<string, string | undefined>): number | undefined {
  const raw = env.BULWARK_SHUTDOWN_TIMEOUT;
  if (raw === undefined || raw.trim() === "") return undefined;
  const s = parseDuration(raw);
  if (s === undefined || s <= 0 || s > 24 * 3600) {
    throw new UsageError(
      `BULWARK_SHUTDOWN_TIMEOUT must be a duration like "10s" or "1500ms" (or seconds), more than 0 and at most 24h; found ${JSON.stringify(raw)}`,
    );
  }
  return Math.round(s * 1000);
}

/** Prints an error the way Vault's CLI does and returns the exit code. */
function report(err: unknown, io: Io, remoteCode: number): number {
  if (err instanceof UsageError) {
    io.stderr.write(`Error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof ApiError) {
    io.stderr.write(`${err.message}\n`);
    return remoteCode;
  }
  if (err instanceof ConnectionError) {
    io.stderr.write(
      `Error: cannot reach the server: ${err.message}\n(set BULWARK_ADDR or -address to the server's URL)\n`,
    );
    return remoteCode;
  }
  if (err instanceof ConfigError || err instanceof ProviderError) {
    io.stderr.write(`Error loading the configuration: ${err.message}\n`);
    return 1;
  }
  if (err instanceof CommanderError) throw err;
  io.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  return remoteCode === 2 ? 2 : 1;
}

/**
 * Runs the CLI. `argv` is `process.argv` (node, script, args…). Resolves with the exit code;
 * never calls `process.exit` (except a second Ctrl-C while the server shuts down).
 */
export async function main(argv: readonly string[], io?: Partial<Io>): Promise<number> {
  const fullIo: Io = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    stdin: io?.stdin ?? process.stdin,
    env: io?.env ?? process.env,
  };
  let code = 0;
  const program = buildProgram(fullIo, (c) => {
    code = c;
  });
  const args = normaliseArgs(argv.slice(2));
  if (args.length === 0) {
    program.outputHelp();
    return 1;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    return report(err, fullIo, 1);
  }
  return code;
}
