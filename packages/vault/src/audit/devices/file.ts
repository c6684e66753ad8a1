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
 * Unlike OpenBao, a write that failed part-way (ENOSPC after a short write) is cut off the file
 * again (ftruncate to where it started), so the log never holds a torn record.
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

/** fs.write on an fd at the end of an O_APPEND file: resolves with the bytes written. */
function write(fd: number, buffer: Uint8Array, offset: number, length: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.write(fd, buffer, offset, length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
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
    if (this.#path === "discard") return Promise.resolve();
    return this.#queue.run(async () => {
      if (this.#closed) throw deviceFailure(this.#ctx.path, "is closed", "the device was disabled");
      if (this.#path === "stdout") return this.#writeStdout(record);
      try {
        await this.#openIfClosed();
        await this.#writeAll(record);
        return;
      } catch (first) {
        this.#warn("audit file write failed; reopening the file and writing once more", first);
      }
      // As OpenBao: close, reopen the path (it may have been replaced or fixed), write once more.
      await this.#closeFd();
      try {
        await this.#openIfClosed();
        await this.#writeAll(record);
      } catch (err) {
        // The fd is dropped so the next record opens the path afresh.
        await this.#closeFd();
        this.#warn("audit file write failed", err);
        throw deviceFailure(this.#ctx.path, `could not write to ${JSON.stringify(this.#path)}`, err);
      }
    });
  }

  reopen(): Promise<void> {
    if (!this.#isFile()) return Promise.resolve();
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

  /** write(2) until all of the record is in the file; a short write that then fails is cut off again. */
  async #writeAll(record: Uint8Array): Promise<void> {
    const fd = this.#fd as number;
    let done = 0;
    try {
      while (done < record.length) done += await write(fd, record, done, record.length - done);
    } catch (err) {
      if (done > 0) {
        try {
          const { size } = await fstat(fd);
          await ftruncate(fd, Math.max(0, size - done));
        } catch (cut) {
          this.#warn("could not cut a partly written audit record off the file", cut);
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
