/**
 * What the three audit devices share: option reading (Vault's options are strings only), the
 * failure error, and a queue that keeps one device's writes in order.
 */
import { VaultError } from "../../errors.js";
import { AuditOptionError } from "../types.js";

/** Go's strconv.ParseBool, which OpenBao's devices use for their boolean options. */
export function parseBoolOption(
  options: Readonly<Record<string, string>>,
  name: string,
  dflt: boolean,
): boolean {
  const raw = options[name];
  if (raw === undefined) return dflt;
  if (["1", "t", "T", "true", "TRUE", "True"].includes(raw)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(raw)) return false;
  throw new AuditOptionError(name, `${name} must be true or false, not ${JSON.stringify(raw)}`);
}

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * A duration as go-secure-stdlib's parseutil.ParseDurationSecond reads it (OpenBao's
 * `write_timeout`): a bare integer is seconds, a trailing "d" is days, anything else is Go's
 * time.ParseDuration syntax ("2s", "1m30s", "500ms"). Returns milliseconds, or undefined when the
 * text is none of these.
 */
export function parseGoDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === "") return 0;
  if (/^[+-]?\d+$/.test(s)) return Number(s) * 1000;
  const days = /^([+-]?\d+)d$/.exec(s);
  if (days) return Number(days[1]) * 86_400_000;
  let rest = s;
  let sign = 1;
  if (rest[0] === "-" || rest[0] === "+") {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return undefined;
  let ns = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== "") {
    const m = part.exec(rest);
    if (!m) return undefined;
    ns += Number(m[1]) * (UNIT_NS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return (sign * ns) / 1e6;
}

/** Why a device could not take a record: the broker counts the device as failed (Vault's "internal error"). */
export function deviceFailure(devicePath: string, what: string, cause: unknown): VaultError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new VaultError("audit_failed", `audit device ${JSON.stringify(devicePath)} ${what}: ${reason}`, {
    cause,
  });
}

/**
 * Runs tasks one at a time in call order (a device's records never interleave, and a reopen or
 * close waits for the write before it). A failed task does not stop the ones queued after it.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
