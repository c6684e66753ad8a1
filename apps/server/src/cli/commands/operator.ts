/** `bulwark operator …`: init, unseal, seal, key-status, rotate, rekey and the offline storage migrate. */
import { type Command, Option } from "commander";
import type { ApiClient } from "../client.js";
import { type ClientFlags, type CommandDeps, clientOf, integer, withClientFlags } from "../command.js";
import { readSecret } from "../input.js";
import { runMigrate } from "../migrate.js";
import { dataOf, type Format, type Io, json, parseFormat, table, UsageError } from "../output.js";
import { printStatus } from "./status.js";

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  const operator = program
    .command("operator")
    .description("init, unseal, seal, rekey, rotate, key status, storage migration");
  init(operator, deps);
  unseal(operator, deps);
  seal(operator, deps);
  keyStatus(operator, deps);
  rotate(operator, deps);
  rekey(operator, deps);
  migrate(operator, deps);
}

/** `operator init`: unseal keys (Shamir) or recovery keys (auto seal), and the root token. */
function init(operator: Command, { io, act }: CommandDeps): void {
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
      act(async (flags: InitFlags) => {
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
        io.stdout.write(initSummary(flags, auto, keys, rkeys, b.root_token));
        return 0;
      }),
    );
}

interface InitFlags extends ClientFlags {
  keyShares: number;
  keyThreshold: number;
  recoveryShares: number;
  recoveryThreshold: number;
  status?: boolean;
}

/** The table-format answer of `operator init`: the keys, the root token and what to do next. */
function initSummary(
  flags: InitFlags,
  auto: boolean,
  keys: readonly string[],
  rkeys: readonly string[],
  rootToken: unknown,
): string {
  const lines: string[] = [];
  for (const [i, k] of keys.entries()) lines.push(`Unseal Key ${i + 1}: ${k}`);
  for (const [i, k] of rkeys.entries()) lines.push(`Recovery Key ${i + 1}: ${k}`);
  lines.push("", `Initial Root Token: ${String(rootToken)}`, "");
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
  return `${lines.join("\n")}\n`;
}

/** Whether one more share reaches the unseal threshold (from seal-status; false if unknown). */
async function completesThreshold(client: ApiClient): Promise<boolean> {
  const s = (await client.request("GET", "sys/seal-status").catch(() => undefined))?.body as
    | Record<string, unknown>
    | undefined;
  return typeof s?.progress === "number" && typeof s.t === "number" && s.progress + 1 >= s.t;
}

/** `operator unseal`: one key share (prompted for when not given), -reset or -migrate. */
function unseal(operator: Command, { io, act }: CommandDeps): void {
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
}

/** `operator seal`. */
function seal(operator: Command, { io, act }: CommandDeps): void {
  withClientFlags(operator.command("seal").description("seal the store (needs a root/sudo token)")).action(
    act(async (flags: ClientFlags) => {
      await clientOf(flags, io).request("PUT", "sys/seal");
      io.stdout.write("Success! Bulwark is sealed.\n");
      return 0;
    }),
  );
}

/** `operator key-status`: the barrier key term. */
function keyStatus(operator: Command, { io, act }: CommandDeps): void {
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
}

/** `operator rotate`: a new barrier key term. */
function rotate(operator: Command, { io, act }: CommandDeps): void {
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
}

/** `operator rekey`: new unseal or recovery key shares. */
function rekey(operator: Command, { io, act }: CommandDeps): void {
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
    .action(act(async (key: string | undefined, flags: RekeyFlags) => runRekey(io, key, flags)));
}

interface RekeyFlags extends ClientFlags {
  init?: boolean;
  cancel?: boolean;
  status?: boolean;
  keyShares: number;
  keyThreshold: number;
  target: "barrier" | "recovery";
  nonce?: string;
}

/** `operator rekey`: -cancel, -status, -init, or one share for the rekey in progress (started if none). */
async function runRekey(io: Io, key: string | undefined, flags: RekeyFlags): Promise<number> {
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
  const show = (body: unknown) => io.stdout.write(rekeyProgress(format, body));
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
  io.stdout.write(format === "json" ? json(d) : rekeyed(d, flags.keyThreshold));
  return 0;
}

/** A rekey in progress: its nonce, whether started, shares given so far, the new shares/threshold. */
function rekeyProgress(format: Format, body: unknown): string {
  const d = body as Record<string, unknown>;
  return format === "json"
    ? json(d)
    : table([
        ["Nonce", d.nonce],
        ["Started", d.started],
        ["Rekey Progress", `${d.progress}/${d.required}`],
        ["New Shares", d.n],
        ["New Threshold", d.t],
      ]);
}

/** The table-format answer of a completed rekey: the new keys (none for an auto seal's root key). */
function rekeyed(d: Record<string, unknown>, keyThreshold: number): string {
  const keys = (d.keys_base64 as string[] | undefined) ?? [];
  const lines = keys.map((k, i) => `Key ${i + 1}: ${k}`);
  lines.push(
    "",
    `Operation nonce: ${String(d.nonce)}`,
    "",
    keys.length > 0
      ? `Bulwark rekeyed with ${keys.length} key shares and a key threshold of ${keyThreshold}. Please securely distribute the key shares printed above. The old keys no longer work.`
      : "Bulwark rekeyed: the root key was replaced (auto seal; the recovery keys are unchanged).",
  );
  return `${lines.join("\n")}\n`;
}

/** `operator migrate`: the offline storage copy (runs locally; no server involved). */
function migrate(operator: Command, { io, act }: CommandDeps): void {
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
}
