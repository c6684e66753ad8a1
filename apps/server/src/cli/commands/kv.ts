/** `bulwark kv …`: KV v1 and v2 secrets, the version found from the mount (as Vault's `kv`). */

import { stringify } from "@bulwark/vault";
import type { Command } from "commander";
import { type ApiClient, ApiError } from "../client.js";
import { type ClientFlags, type CommandDeps, clientOf, integer, withClientFlags } from "../command.js";
import { parseKeyValues } from "../input.js";
import {
  cell,
  dataOf,
  json,
  keyList,
  parseFormat,
  rowsOf,
  secretRows,
  table,
  UsageError,
} from "../output.js";

/** Where a `kv` path lives: its mount, the mount's KV version, and the path inside it. */
interface KvTarget {
  mount: string;
  version: 1 | 2;
  /** Path inside the mount. */
  rel: string;
}

/** Finds the mount of `path` (or of -mount) from sys/internal/ui/mounts, as Vault's `kv` does. */
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

/** The API path of a KV operation: v2 puts the operation after the mount, v1 has none. */
function kvPath(t: KvTarget, kind: "data" | "metadata" | "delete" | "undelete" | "destroy"): string {
  return t.version === 2 ? `${t.mount}${kind}/${t.rel}` : `${t.mount}${t.rel}`;
}

/** A centred `==== Title ====` heading, as Vault prints above each part of kv output. */
function section(title: string, width: number): string {
  const pad = Math.max(0, width - title.length - 2);
  const left = "=".repeat(Math.floor(pad / 2));
  const right = "=".repeat(Math.ceil(pad / 2));
  return `${left} ${title} ${right}`.trim();
}

/** The -versions list (`1,2`) of a v2 delete/undelete/destroy. */
function versionsOf(value: string | undefined, command: string): number[] {
  if (value === undefined || value.trim() === "")
    throw new UsageError(`${command} needs -versions, e.g. -versions=1,2`);
  return value.split(",").map((v) => {
    if (!/^\s*\d+\s*$/.test(v))
      throw new UsageError(`-versions must be numbers separated by commas, got ${JSON.stringify(value)}`);
    return Number(v);
  });
}

/** A `kv` subcommand with the client flags and -mount. */
type KvCommand = (name: string, description: string) => Command;

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  const kv = program.command("kv").description("key/value secrets (KV v1 and v2, found from the mount)");
  const kvCmd = (name: string, description: string) =>
    withClientFlags(kv.command(name).description(description)).option(
      "--mount <path>",
      "the kv mount; the path is then relative to it",
    );
  get(kvCmd, deps);
  put(kvCmd, deps);
  list(kvCmd, deps);
  del(kvCmd, deps);
  versionCommands(kvCmd, deps);
  const metadata = kv.command("metadata").description("a v2 secret's metadata: get, put, delete");
  const metaCmd = (name: string, description: string) =>
    withClientFlags(metadata.command(name).description(description))
      .option("--mount <path>", "the kv mount; the path is then relative to it")
      .argument("<path>");
  metadataGet(metaCmd, deps);
  metadataPut(metaCmd, deps);
  metadataDelete(metaCmd, deps);
}

/** `kv get`: a secret (v2: its data and metadata), or one -field. */
function get(kvCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv put`: a new version (v2, -cas) or the whole secret (v1). */
function put(kvCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv list`: the keys under a path. */
function list(kvCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv delete`: the latest version, -versions (v2), or the secret (v1). */
function del(kvCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv undelete` and `kv destroy`: the same -versions request to two endpoints (v2 only). */
function versionCommands(kvCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv metadata get`: a v2 secret's settings and every version. */
function metadataGet(metaCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv metadata put`: max versions, cas-required, delete-version-after. */
function metadataPut(metaCmd: KvCommand, { io, act }: CommandDeps): void {
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
}

/** `kv metadata delete`: the secret with every version. */
function metadataDelete(metaCmd: KvCommand, { io, act }: CommandDeps): void {
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
}
