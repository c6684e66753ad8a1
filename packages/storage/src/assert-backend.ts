import type { Backend, TransactionalBackend } from "./types.js";

const BACKEND_METHODS = [
  ["get", "get(key)"],
  ["put", "put(entry)"],
  ["delete", "delete(key)"],
  ["list", "list(prefix)"],
] as const;

/**
 * Checks at runtime that `obj` implements `Backend` (and, when it has `transaction`, a usable
 * `transactionLimits`), so a misconfigured plugin fails at load time with the missing method named
 * rather than later with "x is not a function". `name` says what is being checked, e.g. the
 * plugin's module name.
 */
export function assertBackend(obj: unknown, name: string): asserts obj is Backend {
  if (typeof obj !== "object" || obj === null) {
    throw new TypeError(
      `${name} is not a storage backend: expected an object with get, put, delete and list, got ${obj === null ? "null" : typeof obj}`,
    );
  }
  const rec = obj as Record<string, unknown>;
  for (const [method, signature] of BACKEND_METHODS) {
    if (typeof rec[method] !== "function") {
      throw new TypeError(
        `${name} is not a storage backend: method ${signature} is missing (found ${typeof rec[method]})`,
      );
    }
  }
  for (const optional of ["probe", "close"] as const) {
    if (optional in rec && rec[optional] !== undefined && typeof rec[optional] !== "function") {
      throw new TypeError(
        `${name}: ${optional} must be a method ${optional}(), found ${typeof rec[optional]}`,
      );
    }
  }
  if ("transaction" in rec && rec.transaction !== undefined) {
    if (typeof rec.transaction !== "function") {
      throw new TypeError(
        `${name}: transaction must be a method transaction(ops), found ${typeof rec.transaction}`,
      );
    }
    const limits = rec.transactionLimits as Partial<TransactionalBackend["transactionLimits"]> | undefined;
    const ok = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
    if (typeof limits !== "object" || limits === null || !ok(limits.maxEntries) || !ok(limits.maxBytes)) {
      throw new TypeError(
        `${name} has transaction(ops) but no valid transactionLimits: expected { maxEntries, maxBytes } as positive integers`,
      );
    }
  }
}
