/** `bulwark secrets …`: secrets engines (mounts): enable, list, disable. */
import type { Command } from "commander";
import { type ClientFlags, type CommandDeps, clientOf, integer, withClientFlags } from "../command.js";
import { cell, dataOf, json, parseFormat } from "../output.js";

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  const secrets = program.command("secrets").description("secrets engines (mounts): enable, list, disable");
  enable(secrets, deps);
  list(secrets, deps);
  disable(secrets, deps);
}

/** `secrets enable <type>`: a mount, with -path, -version (kv), -seal-wrap and -description. */
function enable(secrets: Command, { io, act }: CommandDeps): void {
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
}

/** `secrets list`: the mounts, as Vault's table (path, type, seal wrap, version, description). */
function list(secrets: Command, { io, act }: CommandDeps): void {
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
}

/** `secrets disable <path>`: unmounts, deleting the engine's data. */
function disable(secrets: Command, { io, act }: CommandDeps): void {
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
}
