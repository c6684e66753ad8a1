/**
 * `bulwark operator migrate`: Vault's offline storage migration. Every entry of
 * `storage_source` is copied byte for byte to `storage_destination` (values stay encrypted: the
 * barrier binds each ciphertext to its key, not to the backend), with a lock in the destination
 * (`core/migration`) so two runs cannot interleave, progress on stderr, and `-start` to resume.
 *
 * The server must be stopped: entries written during the copy may be missed.
 */

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { LOCK_PATH, MIGRATION_LOCK_PATH } from "@bulwark/barrier";
import { blocks, HclParseError, parseHclOrJson } from "@bulwark/hcl";
import type { Backend } from "@bulwark/storage";
import { ConfigError } from "../config/errors.js";
import { IGNORED_VAULT_SETTINGS, providerBlock } from "../config/load.js";
import { ProviderRegistry } from "../registry/registry.js";
import { type Format, type Io, json, table } from "./output.js";

/** Vault's storage migration lock key. */
export const MIGRATION_LOCK = MIGRATION_LOCK_PATH;
/** Keys never copied: the HA lock belongs to running servers, the migration lock to this run. */
const SKIPPED = new Set([LOCK_PATH, MIGRATION_LOCK]);

export interface MigrateOptions {
  configPath: string;
  start?: string;
  reset: boolean;
  maxParallel: number;
  format: Format;
  io: Io;
}

async function* walk(storage: Backend, prefix: string): AsyncGenerator<string> {
  const names = [...(await storage.list(prefix))].sort();
  for (const name of names) {
    if (name.endsWith("/")) yield* walk(storage, prefix + name);
    else yield prefix + name;
  }
}

/** Reads the migration config: exactly one storage_source and one storage_destination. */
async function readMigrateConfig(path: string) {
  const text = await readFile(path, "utf8");
  let doc: ReturnType<typeof parseHclOrJson>;
  try {
    doc = parseHclOrJson(text, path);
    const problems: Array<{ filename: string; line: number; column: number; message: string }> = [];
    for (const item of doc.body.items) {
      const key = item.kind === "attribute" ? item.key : item.type;
      if (key === "storage_source" || key === "storage_destination" || IGNORED_VAULT_SETTINGS.has(key))
        continue;
      problems.push({
        filename: path,
        line: item.pos.line,
        column: item.pos.column,
        message: `unknown setting \`${key}\`: a migration config has storage_source "<type>" { … } and storage_destination "<type>" { … }`,
      });
    }
    const source = blocks(doc, "storage_source");
    const destination = blocks(doc, "storage_destination");
    for (const [name, found] of [
      ["storage_source", source],
      ["storage_destination", destination],
    ] as const) {
      if (found.length !== 1) {
        problems.push({
          filename: path,
          line: found[1]?.line ?? 1,
          column: found[1]?.column ?? 1,
          message: `a migration config needs exactly one ${name} "<type>" { … } block (found ${found.length})`,
        });
      }
    }
    if (problems.length > 0) throw new ConfigError(problems);
    return { source: providerBlock(source[0]!), destination: providerBlock(destination[0]!) };
  } catch (err) {
    if (err instanceof HclParseError) throw ConfigError.at(path, err, err.detail, err);
    throw err;
  }
}

/** Closes a backend that has close(); a failure to close changes nothing in the result. */
async function closeQuietly(b: Backend): Promise<void> {
  try {
    await b.close?.();
  } catch {
    // The copy's outcome is already decided and reported.
  }
}

/** Runs the migration; resolves with the exit code. */
export async function runMigrate(opts: MigrateOptions): Promise<number> {
  const { io } = opts;
  const configPath = resolve(opts.configPath);
  const cfg = await readMigrateConfig(configPath);
  if (
    cfg.source.type === cfg.destination.type &&
    JSON.stringify(cfg.source.options) === JSON.stringify(cfg.destination.options)
  ) {
    throw new ConfigError([
      { filename: configPath, message: "storage_source and storage_destination are the same storage" },
    ]);
  }
  const registry = ProviderRegistry.withBuiltins();
  const logger = {
    debug() {},
    info() {},
    warn: (m: string) => io.stderr.write(`warning: ${m}\n`),
    error: (m: string) => io.stderr.write(`error: ${m}\n`),
  };
  const ctx = { env: io.env, logger, pluginBaseDirs: [dirname(configPath), process.cwd()] };
  const source = (await registry.createStorage(cfg.source, ctx)).backend;
  let destination: Backend | undefined;
  try {
    destination = (await registry.createStorage(cfg.destination, ctx)).backend;
    if (!(await takeLock(destination, opts))) return 1;
    const progress = new Progress(io);
    const failed = await copyEntries(source, destination, opts, progress);
    if (failed !== undefined) {
      progress.report(true);
      io.stderr.write(
        `Error: copying ${failed.key} failed: ${failed.err instanceof Error ? failed.err.message : String(failed.err)}\n` +
          `The migration lock stays in the destination. Fix the cause, then resume with: -reset -start=${JSON.stringify(failed.key)}\n`,
      );
      return 2;
    }
    await destination.delete(MIGRATION_LOCK);
    progress.report(true);
    const summary = {
      source: cfg.source.type,
      destination: cfg.destination.type,
      entries: progress.copied,
      bytes: progress.bytes,
      seconds: (Date.now() - progress.started) / 1000,
    };
    io.stdout.write(
      opts.format === "json"
        ? json(summary)
        : `Success! All of the keys have been migrated.\n\n${table([
            ["Source", summary.source],
            ["Destination", summary.destination],
            ["Entries", summary.entries],
            ["Bytes", summary.bytes],
          ])}`,
    );
    return 0;
  } finally {
    await closeQuietly(source);
    if (destination !== undefined) await closeQuietly(destination);
  }
}

/**
 * Takes the destination's migration lock (after removing a stale one on -reset); false, with the
 * error printed, when another run holds it.
 */
async function takeLock(destination: Backend, opts: MigrateOptions): Promise<boolean> {
  const { io } = opts;
  if (opts.reset) {
    await destination.delete(MIGRATION_LOCK);
    io.stderr.write("Success! Migration lock removed.\n");
  }
  const lock = await destination.get(MIGRATION_LOCK);
  if (lock !== undefined) {
    io.stderr.write(
      `Error: the destination holds a migration lock (${new TextDecoder().decode(lock.value)}): another migration is running or one was interrupted. ` +
        "If none is running, rerun with -reset (and -start=<last key> to resume).\n",
    );
    return false;
  }
  await destination.put({
    key: MIGRATION_LOCK,
    value: new TextEncoder().encode(JSON.stringify({ start_time: new Date().toISOString() })),
  });
  return true;
}

/** What has been copied so far, printed on stderr at most once a second and at the end. */
class Progress {
  readonly started = Date.now();
  copied = 0;
  bytes = 0;
  lastKey = "";
  #lastReport = this.started;
  readonly #io: Io;

  constructor(io: Io) {
    this.#io = io;
  }

  /** Counts one copied entry; reports if the last report is a second old. */
  add(key: string, size: number): void {
    this.copied++;
    this.bytes += size;
    this.lastKey = key;
    if (Date.now() - this.#lastReport >= 1000) {
      this.#lastReport = Date.now();
      this.report(false);
    }
  }

  report(final: boolean): void {
    const secs = (Date.now() - this.started) / 1000;
    this.#io.stderr.write(
      `${final ? "copied" : "copying:"} ${this.copied} entries, ${(this.bytes / 1024).toFixed(1)} KiB in ${secs.toFixed(1)} s${final ? "" : ` (at ${this.lastKey})`}\n`,
    );
  }
}

/**
 * Copies every entry (from -start on, the locks skipped), up to -max-parallel at once; stops
 * starting copies at the first failure and returns the failed key sorted first, since every key
 * before it was copied (the point to resume from), or undefined when all were copied.
 */
async function copyEntries(
  source: Backend,
  destination: Backend,
  opts: MigrateOptions,
  progress: Progress,
): Promise<{ key: string; err: unknown } | undefined> {
  const inflight = new Set<Promise<void>>();
  const failed: Array<{ key: string; err: unknown }> = [];
  for await (const key of walk(source, "")) {
    if (failed.length > 0) break;
    if (SKIPPED.has(key) || (opts.start !== undefined && key < opts.start)) continue;
    const task = (async () => {
      try {
        const entry = await source.get(key);
        if (entry === undefined) return; // deleted since it was listed
        await destination.put({ key, value: entry.value });
        progress.add(key, entry.value.length);
      } catch (err) {
        failed.push({ key, err });
      }
    })();
    inflight.add(task);
    void task.finally(() => inflight.delete(task));
    if (inflight.size >= opts.maxParallel) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (failed.length === 0) return undefined;
  // Every key sorted before the first failure was copied: resume from there.
  return failed.reduce((a, b) => (b.key < a.key ? b : a));
}
