/** `bulwark read|write|delete|list <path>`: any API path, as Vault's generic commands. */

import { stringify } from "@bulwark/vault";
import type { Command } from "commander";
import { type ApiClient, ApiError } from "../client.js";
import { type ClientFlags, type CommandDeps, clientOf, withClientFlags } from "../command.js";
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

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  read(program, deps);
  write(program, deps);
  del(program, deps);
  list(program, deps);
}

/** `read <path>`: GET, with -field. */
function read(program: Command, { io, act }: CommandDeps): void {
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
}

/** `write <path> k=v…`: PUT. */
function write(program: Command, { io, act }: CommandDeps): void {
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
}

/** `delete <path>`: DELETE. */
function del(program: Command, { io, act }: CommandDeps): void {
  withClientFlags(program.command("delete").description("delete any API path"))
    .argument("<path>")
    .action(
      act(async (path: string, flags: ClientFlags) => {
        await clientOf(flags, io).request("DELETE", path);
        io.stdout.write(`Success! Data deleted (if it existed) at: ${path.replace(/^\/+/, "")}\n`);
        return 0;
      }),
    );
}

/** `list <path>`: LIST. */
function list(program: Command, { io, act }: CommandDeps): void {
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
}
