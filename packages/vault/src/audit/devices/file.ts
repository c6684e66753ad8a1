/**
 * The `file` audit device (OpenBao 2.6's internal/builtin/audit/file): appends each record to a
 * file, or writes it to the process's stdout (`file_path = "stdout"`), or drops it ("discard").
 *
 * Options (besides the format options the broker reads): `file_path` (or its old name `path`),
 * and `mode`, an octal permission string (default "0600"; the execute bits are cleared as OpenBao
 * does; "0000" keeps the mode of the existing file, which must then exist).
 *
 * As OpenBao: the file is opened (O_APPEND|O_CREAT|O_WRONLY, its parent directories created with
 * MkdirAll) when the device is made, so a path that cannot be written is refused up front; a write
 * that fails closes the file, reopens the path and writes once more before it gives up; the next
 * write after a failure opens the path again, so a device that recovers (space freed, permission
 * restored) is used again without a restart; `reopen()` (SIGHUP) closes and reopens the path, which
 * is what logrotate needs. There is no fsync per record (OpenBao does none either): a record is
 * "taken" once write(2) put all of it into the file.
 *
 * Group commit: records handed to the device while a write(2) is in flight are gathered and go
 * to the file together in ONE writev(2) when it returns, in call order. One thread-pool round trip
 * per record cost ~20 µs of CPU per record and competed with the storage's own thread-pool work;
 * gathered, the cost per record falls to a few µs under load, and a lone record is still written
 * at once. A batch is all or nothing: its records resolve together once all of its bytes are in
 * the file, and reject together when it could not be written — so a record is in the log exactly
 * when its write resolved.
 *
 * Unlike OpenBao, a write that failed part-way (ENOSPC after a short write) is cut off the file
 * again (ftruncate to where the batch started), so the log never holds a torn record, nor a record
 * whose write rejected.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import {
  type AuditDevice,
  type AuditDeviceContext,
  type AuditDeviceFactory,
  AuditOptionError,
} from "../types.js";
import { deviceFailure, SerialQueue } from "./common.js";

/** fs.writev on an fd at the end of an O_APPEND file: resolves with the bytes written. */
function writev(fd: number, buffers: readonly Uint8Array[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, buffers as NodeJS.ArrayBufferView[], null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** The part of `buffers` after its first `skip` bytes (after a short write; rare). */
function after(buffers: readonly Uint8Array[], skip: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

/** Records gathered while the write before them was in flight; they go to the file in one writev. */
interface Batch {
  readonly records: Uint8Array[];
  bytes: number;
  /** Shared by every record of the batch (one promise per batch, not per record). */
  done: Promise<void>;
}

const RESOLVED = Promise.resolve();
const close = promisify(fs.close);
const open = promisify(fs.open);
const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const chmod = promisify(fs.chmod);
const mkdir = promisify(fs.mkdir);

const OPEN_FLAGS = fs.constants.O_APPEND | fs.constants.O_WRONLY | fs.constants.O_CREAT;

export interface FileDeviceOptions {
  /** The file, or "stdout" / "discard" (either spelled in any case, as OpenBao). */
  filePath: string;
  /** The permission the file is created with and set to on every open; undefined leaves it alone. */
  mode: number | undefined;
}

/** Reads `file_path`/`path` and `mode` as OpenBao's file Factory does. */
export function parseFileOptions(options: Readonly<Record<string, string>>): FileDeviceOptions {
  let filePath = options.file_path ?? options.path;
  if (filePath === undefined || filePath === "") {
    throw new AuditOptionError(
      "file_path",
      'file_path is required (a file to append to, "stdout" or "discard")',
    );
  }
  if (filePath.toLowerCase() === "stdout") filePath = "stdout";
  if (filePath.toLowerCase() === "discard") filePath = "discard";

  let mode: number | undefined = 0o600;
  const modeRaw = options.mode;
  if (modeRaw !== undefined) {
    if (!/^[0-7]+$/.test(modeRaw)) {
      throw new AuditOptionError(
        "mode",
        `mode must be an octal permission such as "0600", not ${JSON.stringify(modeRaw)}`,
      );
    }
    const m = Number.parseInt(modeRaw, 8);
    if (m > 0o777) {
      // OpenBao refuses modes that are not a regular file's ("file mode does not represent a
      // regular file"); Go's FileMode keeps setuid/sticky elsewhere, so only permission bits make sense.
      throw new AuditOptionError(
        "mode",
        `mode must be a file permission from "0000" to "0777", not ${JSON.stringify(modeRaw)}`,
      );
    }
    // "0000": keep the existing file's mode (OpenBao stats it, so the file must exist).
    mode = m === 0 ? undefined : m & ~0o111;
  }
  return { filePath, mode };
}

class FileDevice implements AuditDevice {
  readonly type = "file";
  readonly #ctx: AuditDeviceContext;
  readonly #path: string;
  readonly #mode: number | undefined;
  readonly #queue = new SerialQueue();
  /** The batch new records join; undefined once its write started (or a reopen/close was queued). */
  #open: Batch | undefined;
  #fd: number | undefined;
  #closed = false;

  constructor(opts: FileDeviceOptions, ctx: AuditDeviceContext) {
    this.#ctx = ctx;
    this.#path = opts.filePath;
    let mode = opts.mode;
    if (mode === undefined && this.#isFile()) {
      try {
        mode = fs.statSync(this.#path).mode & 0o7777;
      } catch (err) {
        throw new AuditOptionError(
          "mode",
          `mode "0000" keeps the mode of file_path ${JSON.stringify(this.#path)}, which cannot be read: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    this.#mode = mode;
    if (this.#isFile()) {
      // OpenBao's sanity check: the device is refused when its file cannot be opened for writing.
      try {
        fs.mkdirSync(path.dirname(this.#path), { recursive: true, mode: this.#mode ?? 0o600 });
        this.#fd = fs.openSync(this.#path, OPEN_FLAGS, this.#mode ?? 0o600);
        if (this.#mode !== undefined && this.#path !== "/dev/null") fs.chmodSync(this.#path, this.#mode);
      } catch (err) {
        if (this.#fd !== undefined) fs.closeSync(this.#fd);
        throw new AuditOptionError(
          "file_path",
          `sanity check failed; unable to open ${JSON.stringify(this.#path)} for writing: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  }

  #isFile(): boolean {
    return this.#path !== "stdout" && this.#path !== "discard";
  }

  write(record: Uint8Array): Promise<void> {
    if (this.#path === "discard") return RESOLVED;
    if (this.#path === "stdout") {
      return this.#queue.run(async () => {
        if (this.#closed) throw deviceFailure(this.#ctx.path, "is closed", "the device was disabled");
        return this.#writeStdout(record);
      });
    }
    let batch = this.#open;
    if (batch === undefined) {
      const b: Batch = { records: [], bytes: 0, done: RESOLVED };
      // Queued behind the write in flight (if any): by the time it runs, every record handed to
      // the device meanwhile has joined it.
      b.done = this.#queue.run(() => this.#commit(b));
      this.#open = batch = b;
    }
    batch.records.push(record);
    batch.bytes += record.length;
    return batch.done;
  }

  async #commit(batch: Batch): Promise<void> {
    // From here on new records start the next batch, written after this one.
    if (this.#open === batch) this.#open = undefined;
    if (this.#closed) throw deviceFailure(this.#ctx.path, "is closed", "the device was disabled");
    try {
      await this.#openIfClosed();
      await this.#writeAll(batch);
      return;
    } catch (first) {
      this.#warn("audit file write failed; reopening the file and writing once more", first);
    }
    // As OpenBao: close, reopen the path (it may have been replaced or fixed), write once more.
    await this.#closeFd();
    try {
      await this.#openIfClosed();
      await this.#writeAll(batch);
    } catch (err) {
      // The fd is dropped so the next record opens the path afresh.
      await this.#closeFd();
      this.#warn("audit file write failed", err);
      throw deviceFailure(this.#ctx.path, `could not write to ${JSON.stringify(this.#path)}`, err);
    }
  }

  reopen(): Promise<void> {
    if (!this.#isFile()) return Promise.resolve();
    this.#open = undefined; // records written after the reopen call go to the reopened file
    return this.#queue.run(async () => {
      if (this.#closed) return;
      const fd = this.#fd;
      this.#fd = undefined;
      try {
        if (fd !== undefined) await close(fd);
        await this.#openIfClosed();
      } catch (err) {
        throw deviceFailure(this.#ctx.path, `could not reopen ${JSON.stringify(this.#path)}`, err);
      }
    });
  }

  close(): Promise<void> {
    this.#open = undefined; // records written after the close call are refused, not written
    return this.#queue.run(async () => {
      this.#closed = true;
      await this.#closeFd();
    });
  }

  async #openIfClosed(): Promise<void> {
    if (this.#fd !== undefined) return;
    const mode = this.#mode ?? 0o600;
    await mkdir(path.dirname(this.#path), { recursive: true, mode });
    const fd = await open(this.#path, OPEN_FLAGS, mode);
    try {
      if (this.#mode !== undefined && this.#path !== "/dev/null") await chmod(this.#path, this.#mode);
    } catch (err) {
      await close(fd).catch(() => undefined);
      throw err;
    }
    this.#fd = fd;
  }

  async #closeFd(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) await close(fd).catch(() => undefined);
  }

  /**
   * writev(2) until all of the batch is in the file; when it fails part-way, what it did write is
   * cut off again, so the batch is in the file whole or not at all.
   */
  async #writeAll(batch: Batch): Promise<void> {
    const fd = this.#fd as number;
    let done = 0;
    try {
      // libuv already loops over short writes and IOV_MAX; a short count back means it then failed,
      // and asking for the rest surfaces that error (with `done` known, for the cut below).
      done = await writev(fd, batch.records);
      while (done < batch.bytes) done += await writev(fd, after(batch.records, done));
    } catch (err) {
      if (done > 0) {
        try {
          const { size } = await fstat(fd);
          await ftruncate(fd, Math.max(0, size - done));
        } catch (cut) {
          this.#warn("could not cut a partly written audit batch off the file", cut);
        }
      }
      throw err;
    }
  }

  #writeStdout(record: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      process.stdout.write(record, (err) => {
        if (err) reject(deviceFailure(this.#ctx.path, "could not write to stdout", err));
        else resolve();
      });
    });
  }

  #warn(msg: string, err: unknown): void {
    this.#ctx.logger?.warn(
      {
        audit_path: this.#ctx.path,
        file_path: this.#path,
        error: err instanceof Error ? err.message : String(err),
      },
      msg,
    );
  }
}

/** Makes a `file` device (OpenBao's file audit backend). */
export const fileDevice: AuditDeviceFactory = (options, ctx) =>
  new FileDevice(parseFileOptions(options), ctx);
