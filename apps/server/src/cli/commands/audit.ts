/**
 * `bulwark audit …`: audit devices — enable, disable, list. Flags, arguments, output and exit codes
 * are `bao audit enable|disable|list`'s (OpenBao 2.6.2's internal/command/audit_*.go, checked
 * against the real CLI): `Success! Enabled the file audit device at: file/`, the `Path  Type
 * Description` table (`-detailed` adds Replication and Options), `No audit devices are enabled.`
 * with exit 2, errors prefixed `Error enabling audit device: ` with exit 2.
 */
import { JsonNumber } from "@bulwark/vault";
import type { Command } from "commander";
import { ApiError } from "../client.js";
import { type ClientFlags, type CommandDeps, clientOf, withClientFlags } from "../command.js";
import { parseKeyValues } from "../input.js";
import { dataOf, type Io, json, parseFormat, UsageError } from "../output.js";

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  const audit = program.command("audit").description("audit devices: enable, disable, list");
  enable(audit, deps);
  disable(audit, deps);
  list(audit, deps);
}

/** Vault's sanitizePath: no surrounding spaces or slashes. */
function sanitize(path: string): string {
  return path.trim().replace(/^\/+|\/+$/g, "");
}

/**
 * Go's columnize as `bao` prints tables: cells trimmed, an empty one as "n/a", columns padded to
 * their widest cell and joined by four spaces, no trailing spaces; the header underlined with dashes.
 */
export function columns(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const all = [header, header.map((h) => "-".repeat(h.length)), ...rows].map((r) =>
    r.map((c) => (c.trim() === "" ? "n/a" : c.trim())),
  );
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return `${all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("    ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}

/** An option value as `bao` sends it (mapstructure's weak decoding to strings). */
function optionString(key: string, v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number" || v instanceof JsonNumber) return String(v);
  throw new UsageError(`option ${key} must be a string`);
}

/** `k=v …` (or `-` / `@file.json`) as the device's string options; a bad pair prints bao's text. */
async function optionsOf(args: readonly string[], io: Io): Promise<Record<string, string> | undefined> {
  for (const arg of args) {
    if (arg !== "-" && !arg.startsWith("@") && arg.indexOf("=") <= 0) {
      io.stderr.write(
        `Failed to parse K=V data: invalid key/value pair ${JSON.stringify(arg)}: format must be key=value\n`,
      );
      return undefined;
    }
  }
  let raw: Record<string, unknown>;
  try {
    raw = await parseKeyValues(args, io);
  } catch (err) {
    io.stderr.write(`Failed to parse K=V data: ${(err as Error).message}\n`);
    return undefined;
  }
  const out: Record<string, string> = {};
  try {
    for (const [k, v] of Object.entries(raw))
      Object.defineProperty(out, k, {
        value: optionString(k, v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  } catch (err) {
    io.stderr.write(
      `Failed to parse K=V data: failed to convert values to strings: ${(err as Error).message}\n`,
    );
    return undefined;
  }
  return out;
}

/** Runs `fn`; an error answer from the server prints as bao does (`<what>: Error making API request…`), exit 2. */
async function remote(io: Io, what: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) {
      io.stderr.write(`${what}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/** `audit enable [-description=…] [-local] [-path=…] <type> [key=value…]`. */
function enable(audit: Command, { io, act }: CommandDeps): void {
  withClientFlags(
    audit
      .command("enable")
      .description("enable an audit device, e.g. audit enable file file_path=/var/log/bulwark/audit.log"),
  )
    .argument("[type]", "device type: file, socket or syslog")
    .argument("[options...]", "the device's options, key=value")
    .option("--description <text>", "human-friendly description of the device's purpose")
    .option("--path <path>", "where the device is enabled (default: the type)")
    .option("--local", "mark the device local-only (not replicated)")
    .action(
      act(
        async (
          type: string | undefined,
          args: string[],
          flags: ClientFlags & { description?: string; path?: string; local?: boolean },
        ) => {
          if (type === undefined || type.trim() === "") {
            io.stderr.write(
              "Error enabling audit device: audit type missing. Valid types include 'file', 'socket' and 'syslog'.\n",
            );
            return 1;
          }
          const auditType = type.trim();
          const path = `${sanitize(flags.path ?? auditType)}/`;
          const options = await optionsOf(args, io);
          if (options === undefined) return 1;
          const client = clientOf(flags, io);
          return remote(io, "Error enabling audit device", async () => {
            await client.request("PUT", `sys/audit/${path.slice(0, -1)}`, {
              body: {
                type: auditType,
                description: flags.description ?? "",
                options,
                local: flags.local === true,
              },
            });
            io.stdout.write(`Success! Enabled the ${auditType} audit device at: ${path}\n`);
            return 0;
          });
        },
      ),
    );
}

/** `audit disable <path>`: the device and its salt go; a path with none succeeds too (as Vault). */
function disable(audit: Command, { io, act }: CommandDeps): void {
  withClientFlags(audit.command("disable").description("disable the audit device at a path"))
    .argument("[path...]", "the device's path, e.g. file/")
    .action(
      act(async (args: string[], flags: ClientFlags) => {
        if (args.length !== 1) {
          io.stderr.write(
            `${args.length < 1 ? "Not enough" : "Too many"} arguments (expected 1, got ${args.length})\n`,
          );
          return 1;
        }
        const path = `${sanitize(args[0] as string)}/`;
        const client = clientOf(flags, io);
        return remote(io, "Error disabling audit device", async () => {
          await client.request("DELETE", `sys/audit/${path.slice(0, -1)}`);
          io.stdout.write(`Success! Disabled audit device (if it was enabled) at: ${path}\n`);
          return 0;
        });
      }),
    );
}

/** One device as `sys/audit` lists it (and as `-format=json` prints it, in Go's field order). */
interface ListedDevice {
  type: string;
  description: string;
  options: Record<string, string> | null;
  local: boolean;
  path: string;
}

function deviceOf(path: string, v: unknown): ListedDevice {
  const d = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
  const options = d.options;
  return {
    type: typeof d.type === "string" ? d.type : "",
    description: typeof d.description === "string" ? d.description : "",
    options:
      typeof options === "object" && options !== null && !Array.isArray(options)
        ? (options as Record<string, string>)
        : null,
    local: d.local === true,
    path: typeof d.path === "string" ? d.path : path,
  };
}

/** `audit list [-detailed] [-format=table|json]`. */
function list(audit: Command, { io, act }: CommandDeps): void {
  withClientFlags(audit.command("list").description("list the enabled audit devices"))
    .argument("[args...]")
    .option("--detailed", "also show each device's options and replication")
    .action(
      act(async (args: string[], flags: ClientFlags & { detailed?: boolean }) => {
        if (args.length > 0) {
          io.stderr.write(`Too many arguments (expected 0, got ${args.length})\n`);
          return 1;
        }
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        return remote(io, "Error listing audits", async () => {
          const res = await client.request("GET", "sys/audit");
          const data = dataOf(res.body);
          // Only the devices (a `sys/audit` body without a `data` envelope also has request_id, …).
          const paths = Object.keys(data)
            .filter((k) => k.endsWith("/"))
            .sort();
          const devices: Record<string, ListedDevice> = {};
          for (const p of paths) devices[p] = deviceOf(p, data[p]);
          if (format === "json") {
            io.stdout.write(json(devices));
            return 0;
          }
          if (paths.length === 0) {
            io.stdout.write("No audit devices are enabled.\n");
            return 2;
          }
          if (flags.detailed) {
            io.stdout.write(
              columns(
                ["Path", "Type", "Description", "Replication", "Options"],
                paths.map((p) => {
                  const d = devices[p] as ListedDevice;
                  // Go prints the options in map order (random); sorted here so the output is stable.
                  const opts = Object.keys(d.options ?? {})
                    .sort()
                    .map((k) => `${k}=${d.options?.[k]}`);
                  return [p, d.type, d.description, d.local ? "local" : "replicated", opts.join(" ")];
                }),
              ),
            );
            return 0;
          }
          io.stdout.write(
            columns(
              ["Path", "Type", "Description"],
              paths.map((p) => {
                const d = devices[p] as ListedDevice;
                return [d.path, d.type, d.description];
              }),
            ),
          );
          return 0;
        });
      }),
    );
}
