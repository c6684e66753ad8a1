import { randomBytes } from "node:crypto";
import type { Dirent } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { chmod, lstat, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import {
  type Backend,
  type Entry,
  InvalidKeyError,
  StorageProbeError,
  ValueTooLargeError,
  validateKey,
  validatePrefix,
} from "@bulwark/storage";
import { decodeEntryFile, encodeEntryFile, MAX_VALUE_BYTES } from "./codec.js";
import { CorruptEntryError, FileBackendConfigError, hasErrno, toStorageError } from "./errors.js";

export interface FileBackendOptions {
  /** Directory that holds the data (Vault's `path`). Created on the first write if missing. */
  path: string;
  /**
   * Flush every write and delete to the disk (fsync of the file, then of its directory) before
   * the promise resolves. Default `true`. With `false`, writes are still atomic (a crash leaves
   * the old or the new value, never a mix), but the last writes may be lost on power failure.
   */
  fsync?: boolean;
}

/** Vault's modes: only the owning user may read the data. Set explicitly, never left to the umask. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Windows cannot open a directory to fsync it; there the rename itself is the last step. */
const CAN_SYNC_DIRS = process.platform !== "win32";

/**
 * How many times a write retries when a concurrent delete removes the (then empty) directory
 * between creating it and creating the temp file. Each retry needs a new race, so a few suffice.
 */
const MAX_WRITE_ATTEMPTS = 16;

/** Temp files this package creates: `._<name>.<12 hex instance token>-<counter>.temp`. */
const TEMP_FILE = /^\._.+\.[0-9a-f]{12}-[0-9a-z]+\.temp$/;

/** Directories known to exist durably; forgotten wholesale past this size (costs one re-check each). */
const MAX_KNOWN_DIRS = 10_000;

interface Location {
  /** Directory that holds the entry file. */
  dir: string;
  /** `_<last segment>`, as Vault names it. */
  leaf: string;
  /** `<dir>/<leaf>`. */
  file: string;
}

const noop = (): void => {};

function requireBytes(where: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${where}: value must be a Uint8Array, got ${typeof value}`);
  }
}

function rejectDotSegments(key: string, segments: readonly string[]): void {
  if (segments.includes(".")) {
    throw new InvalidKeyError(
      key,
      "the file backend rejects '.' segments: they would alias another key's file",
    );
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return lstat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

async function syncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Stores entries as files in Vault's file-backend layout: key `a/b/c` is the file `<path>/a/b/_c`
 * holding `{"Value":"<base64>"}\n`, so a Vault data directory can be read and written directly.
 *
 * Writes go to a temp file that is flushed and then renamed over the entry, and the directory is
 * flushed after the rename: once `put` resolves the value survives a crash or power loss, and a
 * crash at any moment leaves the old or the new value, never a torn one. Writes and deletes to
 * one key run in call order; different keys proceed in parallel.
 */
export class FileBackend implements Backend {
  /** The data directory, resolved to an absolute path. */
  readonly path: string;
  readonly fsync: boolean;
  readonly #rootPrefix: string;
  /** Tail of the pending write/delete chain per key; absent when the key is idle. */
  readonly #queues = new Map<string, Promise<void>>();
  readonly #knownDirs = new Set<string>();
  readonly #dirsInFlight = new Map<string, Promise<void>>();
  /** Directory flushes per directory: the one running, and the one queued behind it (group commit). */
  readonly #dirSyncs = new Map<
    string,
    { running: Promise<void> | undefined; queued: Promise<void> | undefined }
  >();
  /** Temp names are unique per write: the instance token keeps instances apart, the counter writes. */
  readonly #tempToken = randomBytes(6).toString("hex");
  #tempCounter = 0;

  constructor(options: FileBackendOptions) {
    const raw = (options as Partial<FileBackendOptions> | undefined)?.path;
    if (typeof raw !== "string" || raw.trim() === "") {
      throw new FileBackendConfigError(
        "path",
        "file backend: 'path' must be set to the directory that holds the data, e.g. { path: \"/var/lib/bulwark\" }",
      );
    }
    if (raw.includes("\0")) {
      throw new FileBackendConfigError("path", "file backend: 'path' must not contain NUL bytes");
    }
    const fsync = options.fsync ?? true;
    if (typeof fsync !== "boolean") {
      throw new FileBackendConfigError(
        "fsync",
        `file backend: 'fsync' must be true or false, got ${typeof fsync}`,
      );
    }
    this.path = resolve(raw);
    this.fsync = fsync;
    this.#rootPrefix = this.path.endsWith(sep) ? this.path : this.path + sep;
  }

  async get(key: string): Promise<Entry | undefined> {
    validateKey(key);
    const loc = this.#locate(key);
    let bytes: Buffer;
    try {
      bytes = await readFile(loc.file);
    } catch (err) {
      // EISDIR: the entry path is the folder of keys under `<key's folder>/_<name>/`, not this key.
      if (hasErrno(err, "ENOENT", "ENOTDIR", "EISDIR")) return undefined;
      throw toStorageError(err, "read", loc.file, key);
    }
    if (bytes.length === 0) {
      // Vault: "No Vault entry will ever be zero length" — such a file is debris from a crash of a
      // writer without fsync. Like Vault we remove it, but through the key's queue and only if it
      // is still empty, so a write that lands meanwhile is never deleted. Best effort: a read-only
      // directory still reads as "missing".
      await this.#serialize(key, () => this.#removeIfEmpty(loc, key)).catch(noop);
      return undefined;
    }
    const decoded = decodeEntryFile(bytes);
    if (!decoded.ok) throw new CorruptEntryError(key, loc.file, decoded.reason);
    return { key, value: decoded.value };
  }

  async put(entry: Entry): Promise<void> {
    validateKey(entry.key);
    const key = entry.key;
    requireBytes(`put(${JSON.stringify(key)})`, entry.value);
    // No limit of our own: only the base64 text must fit in one JavaScript string.
    if (entry.value.byteLength > MAX_VALUE_BYTES) {
      throw new ValueTooLargeError(key, entry.value.byteLength, MAX_VALUE_BYTES);
    }
    const loc = this.#locate(key);
    // Encoded now, not when the queue reaches this write: the bytes written are the bytes passed,
    // even if the caller reuses its buffer right after calling put.
    const content = encodeEntryFile(entry.value);
    return this.#serialize(key, () => this.#write(loc, content, key));
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    const loc = this.#locate(key);
    return this.#serialize(key, () => this.#remove(loc, key));
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    const dir = prefix === "" ? this.path : this.#dirFor(prefix.slice(0, -1).split("/"), prefix);
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (hasErrno(err, "ENOENT", "ENOTDIR")) return [];
      throw toStorageError(err, "list", dir, prefix);
    }
    const out: string[] = [];
    for (const e of entries) {
      let isDir = e.isDirectory();
      let isFile = e.isFile();
      if (e.isSymbolicLink()) {
        // Vault stats (follows) each name; a dangling link is skipped.
        try {
          const st = await stat(join(dir, e.name));
          isDir = st.isDirectory();
          isFile = st.isFile();
        } catch {
          continue;
        }
      }
      if (isDir) out.push(`${e.name}/`);
      // Entries are `_<name>`; temp files (`._<name>.<token>.temp`) and anything else are not keys.
      else if (isFile && e.name.length > 1 && e.name.startsWith("_")) out.push(e.name.slice(1));
    }
    return out.sort();
  }

  /**
   * Removes temp files left behind by writes that a crash interrupted (a crash never damages an
   * entry, but its half-written temp file stays). They are never read or listed, so this is
   * housekeeping: call it at startup if crashes happen. Skips this instance's own writes in
   * progress, and files younger than `olderThanMs` (default 60 s), which may belong to another
   * instance still writing. Vault's own `_<name>.temp` files are not recognised (they are
   * indistinguishable from a key ending in `.temp`). Returns how many files were removed.
   */
  async removeStaleTempFiles(options: { olderThanMs?: number } = {}): Promise<number> {
    const olderThanMs = options.olderThanMs ?? 60_000;
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
      throw new RangeError(
        `removeStaleTempFiles: olderThanMs must be a number >= 0, got ${String(olderThanMs)}`,
      );
    }
    const cutoff = Date.now() - olderThanMs;
    let entries: Dirent[];
    try {
      entries = await readdir(this.path, { recursive: true, withFileTypes: true });
    } catch (err) {
      if (hasErrno(err, "ENOENT", "ENOTDIR")) return 0;
      throw toStorageError(err, "scan", this.path);
    }
    const own = `.${this.#tempToken}-`;
    let removed = 0;
    for (const e of entries) {
      if (!e.isFile() || !TEMP_FILE.test(e.name) || e.name.includes(own)) continue;
      const file = join(e.parentPath, e.name);
      try {
        if ((await lstat(file)).mtimeMs > cutoff) continue;
        await unlink(file);
        removed += 1;
      } catch (err) {
        if (!hasErrno(err, "ENOENT")) throw toStorageError(err, "remove the stale temp file", file);
      }
    }
    return removed;
  }

  /**
   * Proves the data directory can be used before anything reads or writes data: creates it if
   * missing (mode 0700), lists it, then writes, flushes, renames and deletes a probe file in it —
   * the steps every put and delete takes. Throws a `StorageProbeError` (setting `path`) naming the
   * directory, the step that failed and the fix. The probe's names are temp-file names (`._…temp`):
   * never a key, never listed, and removed by {@link removeStaleTempFiles} if a crash leaves one.
   */
  async probe(): Promise<void> {
    this.#tempCounter += 1;
    const id = `${this.#tempToken}-${this.#tempCounter.toString(36)}`;
    const written = join(this.path, `._bulwark-probe.${id}.temp`);
    const renamed = join(this.path, `._bulwark-probe-renamed.${id}.temp`);
    const step = async <T>(what: string, target: string, fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw this.#probeError(err, what, target);
      }
    };
    await step("create the data directory", this.path, async () => {
      const st = await stat(this.path).catch((err: unknown) => {
        if (hasErrno(err, "ENOENT")) return undefined;
        throw err;
      });
      if (st !== undefined && !st.isDirectory()) {
        throw Object.assign(new Error(`${this.path} is a file, not a directory`), { code: "ENOTDIR" });
      }
      await this.#ensureDir(this.path);
    });
    await step("list", this.path, () => readdir(this.path));
    try {
      await step("write a probe file in", this.path, async () => {
        const fh = await open(written, "wx", FILE_MODE);
        try {
          await fh.writeFile("bulwark storage probe\n");
          await fh.sync();
        } finally {
          await fh.close();
        }
      });
      await step("rename a probe file in", this.path, () => rename(written, renamed));
      if (CAN_SYNC_DIRS) await step("flush", this.path, () => syncDir(this.path));
      await step("delete a probe file in", this.path, () => unlink(renamed));
      if (CAN_SYNC_DIRS) await step("flush", this.path, () => syncDir(this.path));
    } finally {
      await unlink(written).catch(noop);
      await unlink(renamed).catch(noop);
    }
  }

  #probeError(err: unknown, what: string, target: string): StorageProbeError {
    const detail = `file backend: cannot ${what} ${target}: ${err instanceof Error ? err.message : String(err)}`;
    // The code is the backend's usual classification (toStorageError); only the fix is the
    // probe's own, naming the `path` setting.
    const { code } = toStorageError(err, what, target);
    return new StorageProbeError(code, "path", detail, this.#probeFix(err), { cause: err });
  }

  #probeFix(err: unknown): string {
    if (hasErrno(err, "EACCES", "EPERM")) {
      let user: string;
      try {
        user = userInfo().username;
      } catch {
        user = `uid ${process.getuid?.() ?? "?"}`;
      }
      return `make ${this.path} (and its parent directories) writable by the user this process runs as (${user}), e.g. \`chown -R ${user} ${this.path}\`, or set path to a directory it can write`;
    }
    if (hasErrno(err, "EROFS")) {
      return "the file system is mounted read-only: set path to a directory on a writable file system";
    }
    if (hasErrno(err, "ENOTDIR", "EEXIST")) {
      return "set path to a directory (or to a name that does not exist yet): a file is in the way";
    }
    if (hasErrno(err, "ENOSPC", "EDQUOT")) {
      return "free disk space (or raise the quota) on the file system that holds the data directory";
    }
    return "check the data directory and the file system that holds it, or set path to another directory";
  }

  /** Runs `op` after every earlier write/delete of `key` has settled; keys do not wait on each other. */
  #serialize(key: string, op: () => Promise<void>): Promise<void> {
    const prev = this.#queues.get(key);
    const result = prev === undefined ? op() : prev.then(op);
    const tail = result.then(noop, noop);
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return result;
  }

  #locate(key: string): Location {
    const segments = key.split("/");
    rejectDotSegments(key, segments);
    const leaf = `_${segments.pop()}`;
    const dir = this.#dirFor(segments, key);
    const file = join(dir, leaf);
    // On POSIX this always holds; on Windows a `\` inside the last segment would move the file.
    if (dirname(file) !== dir) {
      throw new InvalidKeyError(key, "the last segment contains a path separator of this platform");
    }
    return { dir, leaf, file };
  }

  /** The directory for `segments` under the root; throws unless it stays inside the root. */
  #dirFor(segments: readonly string[], keyOrPrefix: string): string {
    rejectDotSegments(keyOrPrefix, segments);
    if (segments.length === 0) return this.path;
    const dir = resolve(this.path, ...segments);
    if (!dir.startsWith(this.#rootPrefix)) {
      throw new InvalidKeyError(keyOrPrefix, "it resolves to a path outside the data directory");
    }
    return dir;
  }

  #tempPath(loc: Location): string {
    // Starts with "." (never "_"), so it can never be taken for an entry or collide with one.
    this.#tempCounter += 1;
    return join(loc.dir, `.${loc.leaf}.${this.#tempToken}-${this.#tempCounter.toString(36)}.temp`);
  }

  async #write(loc: Location, content: Buffer, key: string): Promise<void> {
    let tmp: string;
    let fh: FileHandle;
    for (let attempt = 1; ; attempt++) {
      tmp = this.#tempPath(loc);
      try {
        try {
          await this.#ensureDir(loc.dir);
        } catch (err) {
          // A folder on the way is the file of another key: no retry can help.
          if (hasErrno(err, "EEXIST", "ENOTDIR")) await this.#rejectFileOnPath(loc.dir, key);
          throw err;
        }
        fh = await open(tmp, "wx", FILE_MODE);
        break;
      } catch (err) {
        // ENOENT: a concurrent delete removed the empty directory between mkdir and open.
        // EEXIST: a stray file already has this temp name. Both are fixed by trying again.
        if (hasErrno(err, "ENOENT", "EEXIST") && attempt < MAX_WRITE_ATTEMPTS) {
          this.#knownDirs.delete(loc.dir);
          continue;
        }
        throw toStorageError(err, "write", loc.file, key);
      }
    }

    try {
      try {
        await fh.chmod(FILE_MODE); // open()'s mode is filtered by the umask
        await fh.writeFile(content);
        if (this.fsync) await fh.sync();
      } finally {
        // close() can report a deferred write error (e.g. on NFS): it fails the put like any other.
        await fh.close();
      }
      await rename(tmp, loc.file);
    } catch (err) {
      // The entry file was not touched: the old value stays, and the temp file goes.
      await unlink(tmp).catch(noop);
      if (hasErrno(err, "EISDIR")) {
        const folder = `${key.slice(0, key.length - loc.leaf.length + 1)}${loc.leaf}/`;
        throw new InvalidKeyError(
          key,
          `its file ${loc.file} is the folder of the keys under ${JSON.stringify(folder)}: Vault's file layout stores both at one path, so rename this key or remove those keys`,
        );
      }
      throw toStorageError(err, "write", loc.file, key);
    }

    if (this.fsync && CAN_SYNC_DIRS) {
      try {
        await this.#syncDir(loc.dir);
      } catch (err) {
        // Too late to restore the old value: the new one is in place but may not survive power loss.
        throw toStorageError(err, "flush the directory after writing", loc.file, key);
      }
    }
  }

  async #remove(loc: Location, key: string): Promise<void> {
    try {
      await unlink(loc.file);
    } catch (err) {
      if (hasErrno(err, "ENOENT", "ENOTDIR")) return;
      // The entry path is the folder of other keys (unlink reports EISDIR, or EPERM on macOS):
      // this key does not exist.
      if (hasErrno(err, "EISDIR", "EPERM") && (await isDirectory(loc.file))) return;
      throw toStorageError(err, "delete", loc.file, key);
    }
    const survivor = await this.#removeEmptyDirs(loc.dir);
    if (this.fsync && CAN_SYNC_DIRS) {
      try {
        // One flush covers both the unlink and any directories removed above it.
        await this.#syncDir(survivor);
      } catch (err) {
        if (!hasErrno(err, "ENOENT"))
          throw toStorageError(err, "flush the directory after deleting", loc.file, key);
      }
    }
  }

  /**
   * Throws an `InvalidKeyError` naming the key whose file sits where `dir` (the folder `key`
   * needs) or one of its parents should be; returns when there is none.
   */
  async #rejectFileOnPath(dir: string, key: string): Promise<void> {
    if (!dir.startsWith(this.#rootPrefix)) return;
    const segments = dir.slice(this.#rootPrefix.length).split(sep);
    let d = this.path;
    for (const [i, seg] of segments.entries()) {
      d = join(d, seg);
      const st = await stat(d).catch(() => undefined);
      if (st === undefined) return;
      if (st.isDirectory()) continue;
      const owner = [...segments.slice(0, i), seg.slice(1)].join("/");
      throw new InvalidKeyError(
        key,
        seg.startsWith("_") && seg.length > 1
          ? `the folder ${d} it needs is the file of key ${JSON.stringify(owner)}: Vault's file layout stores both at one path, so rename this key or delete that one`
          : `${d} is in the way: a file where the backend needs a folder; move it out of the data directory`,
      );
    }
  }

  async #removeIfEmpty(loc: Location, key: string): Promise<void> {
    const st = await lstat(loc.file);
    if (st.isFile() && st.size === 0) await this.#remove(loc, key);
  }

  /**
   * Removes `dir` and its parents while they are empty, stopping at the root (Vault's
   * `cleanupLogicalPath`). `rmdir` only succeeds on an empty directory, so a concurrent write that
   * has already created its temp file keeps its directory. Returns the deepest directory left.
   * Best effort: a directory that cannot be removed for any reason simply stays.
   */
  async #removeEmptyDirs(dir: string): Promise<string> {
    let d = dir;
    while (d.startsWith(this.#rootPrefix)) {
      try {
        await rmdir(d);
      } catch (err) {
        if (!hasErrno(err, "ENOENT")) return d;
      }
      this.#knownDirs.delete(d);
      d = dirname(d);
    }
    return d;
  }

  /**
   * Flushes `dir`, sharing the flush with concurrent callers (group commit): a caller whose change
   * is done joins a flush that has not started yet, or queues one behind the flush running now (that
   * one may have started before its change). So N writers in one folder — every KV v2 version of a
   * mount lands below its `versions/` — cost about two flushes, not N, and none returns before a
   * flush that began after its change has finished.
   */
  #syncDir(dir: string): Promise<void> {
    let st = this.#dirSyncs.get(dir);
    if (st === undefined) {
      st = { running: undefined, queued: undefined };
      this.#dirSyncs.set(dir, st);
    }
    const state = st;
    if (state.queued !== undefined) return state.queued;
    const start = (): Promise<void> => {
      const run = syncDir(dir).finally(() => {
        if (state.running === run) state.running = undefined;
        if (state.running === undefined && state.queued === undefined) this.#dirSyncs.delete(dir);
      });
      state.running = run;
      return run;
    };
    if (state.running === undefined) return start();
    const queued = state.running
      .catch(() => undefined)
      .then(() => {
        state.queued = undefined;
        return start();
      });
    state.queued = queued;
    return queued;
  }

  /** Makes sure `dir` exists with mode 0700 and that its name (and its parents') is on disk. */
  async #ensureDir(dir: string): Promise<void> {
    if (this.#knownDirs.has(dir)) return;
    let pending = this.#dirsInFlight.get(dir);
    if (pending === undefined) {
      pending = this.#createDir(dir).finally(() => this.#dirsInFlight.delete(dir));
      this.#dirsInFlight.set(dir, pending);
    }
    await pending;
  }

  async #createDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true, mode: DIR_MODE });
    if (first !== undefined) {
      // mkdir's mode is filtered by the umask: set it on every directory this call created.
      for (let d = dir; ; d = dirname(d)) {
        await chmod(d, DIR_MODE);
        if (d === first || d === dirname(d)) break;
      }
    }
    const top = first !== undefined && !first.startsWith(this.#rootPrefix) ? dirname(first) : this.path;
    // The directories whose contents get a new (or not yet flushed) name: `dir`'s parent, and up
    // the tree until a directory this instance already made durable (in #knownDirs: it exists and
    // its name and its parents' names are on disk), or the top.
    const chain: string[] = [];
    if (dir !== top) {
      for (let d = dirname(dir); ; d = dirname(d)) {
        chain.push(d);
        // A directory mkdir just created (`first` and below) is never taken as known: a delete
        // may have removed it, and not yet forgotten it, just before mkdir made it again.
        const created = first !== undefined && d.length >= first.length;
        if (d === top || d === dirname(d) || (this.#knownDirs.has(d) && !created)) break;
      }
    }
    if (this.fsync && CAN_SYNC_DIRS) {
      // A directory's name lives in its parent, so flush the parents: of what we just created, and
      // also of directories that already existed, which a crashed earlier process may have made
      // without flushing. Done once per directory per instance, then remembered — so a folder
      // created again below a known one (KV v2's versions/<3 hex>/, emptied and removed by
      // pruning) costs one flush of its parent, not one per level up to the data directory.
      for (const d of chain.reverse()) await this.#syncDir(d);
    }
    if (this.#knownDirs.size >= MAX_KNOWN_DIRS) this.#knownDirs.clear();
    this.#knownDirs.add(dir);
    // Every directory flushed above now has a durable name too (the top one's was there before).
    for (const d of chain) if (d.startsWith(this.#rootPrefix)) this.#knownDirs.add(d);
  }
}

/** Same as `new FileBackend(options)`: the factory shape the server's config registry uses. */
export function createFileBackend(options: FileBackendOptions): FileBackend {
  return new FileBackend(options);
}
