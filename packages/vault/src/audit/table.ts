/**
 * The audit table and the per-device salts, as OpenBao 2.6 stores them (internal/vault/audit.go):
 *
 *   core/audit          'G' + gzip({"type":"audit","entries":[MountEntry…]|null}) — non-local devices
 *   core/local-audit    the same for the local ones (never replicated)
 *   audit/<uuid>/salt   the device's salt: the bytes of a UUID string, uncompressed (the SDK's
 *                       salt.NewSalt at its DefaultLocation "salt" in the device's barrier view)
 *
 * An entry is a MountEntry (kv/mounts.ts) with `table` "audit" (enabled through sys/audit, OpenBao's
 * auditTableType) or "audit-config" (an `audit` block of the server config, configAuditTableType),
 * an accessor `audit_<type>_<8 hex>`, an empty backend_aware_uuid and config, and the device's
 * options (strings). Fields Bulwark does not know are kept as read and written back unchanged.
 */

import { randomBytes, randomUUID } from "node:crypto";
import { AUDIT_TABLE_PATH, LOCAL_AUDIT_TABLE_PATH } from "@bulwark/barrier";
import type { Backend } from "@bulwark/storage";
import { BadRequestError, VaultStateError } from "../errors.js";
import { decodeTable, encodeTable, type MountEntry } from "../kv/mounts.js";

/** `table` of a device enabled through the API (sys/audit/<path>). */
export const API_AUDIT_TABLE = "audit";
/** `table` of a device of the server config's `audit` blocks. */
export const CONFIG_AUDIT_TABLE = "audit-config";
/** Each device's barrier view: `audit/<uuid>/` (its salt is the only record in it). */
export const AUDIT_VIEW_PREFIX = "audit/";

/** Where a device's salt is: `audit/<uuid>/salt`. */
export function auditSaltKey(uuid: string): string {
  return `${AUDIT_VIEW_PREFIX}${uuid}/salt`;
}

/**
 * A device path as OpenBao takes it: no leading '/', a trailing '/' added (`file` → `file/`).
 * The root ("" or "/") is refused with OpenBao's text.
 */
export function normalizeAuditPath(path: string, what = "backend path must be specified"): string {
  const p = `${path.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
  if (p === "/") throw new BadRequestError(what);
  return p;
}

/** Vault's accessor of an audit device: `audit_<type>_<8 hex>`. */
function auditAccessor(type: string): string {
  return `audit_${type}_${randomBytes(4).toString("hex")}`;
}

/** A new entry with OpenBao's fields in its order (Go writes struct order). */
export function newAuditEntry(f: {
  table: typeof API_AUDIT_TABLE | typeof CONFIG_AUDIT_TABLE;
  path: string;
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
}): MountEntry {
  return {
    table: f.table,
    path: f.path,
    type: f.type,
    description: f.description,
    uuid: randomUUID(),
    backend_aware_uuid: "",
    accessor: auditAccessor(f.type),
    config: {},
    options: { ...f.options },
    local: f.local,
    seal_wrap: false,
    namespace_id: "root",
  };
}

/** Both tables as read: the entries in OpenBao's order (core/audit, then core/local-audit). */
export interface AuditTables {
  entries: MountEntry[];
  /**
   * OpenBao's load-time upgrades changed an entry (a missing table, accessor or namespace_id was
   * filled): the active node writes the tables back, as OpenBao's loadAudits does.
   */
  filled: boolean;
  /**
   * `core/audit` does not exist (a store OpenBao never unsealed, or Bulwark's before audit
   * devices): OpenBao's loadAudits then stores the default (empty) tables.
   */
  absent: boolean;
}

/** Reads `core/audit` and `core/local-audit`; an absent record is an empty table. */
export async function readAuditTables(storage: Backend): Promise<AuditTables> {
  const [global, local] = await Promise.all([
    storage.get(AUDIT_TABLE_PATH),
    storage.get(LOCAL_AUDIT_TABLE_PATH),
  ]);
  const entries: MountEntry[] = [];
  if (global !== undefined) entries.push(...decodeTable(global.value, AUDIT_TABLE_PATH).entries);
  if (local !== undefined) entries.push(...decodeTable(local.value, LOCAL_AUDIT_TABLE_PATH).entries);
  let filled = false;
  for (const e of entries) {
    // OpenBao's loadAudits: "Upgrade to table-scoped entries" and a missing accessor/namespace.
    if (typeof e.table !== "string" || e.table === "") {
      e.table = API_AUDIT_TABLE;
      filled = true;
    }
    if (typeof e.accessor !== "string" || e.accessor === "") {
      e.accessor = auditAccessor(e.type);
      filled = true;
    }
    if (typeof e.namespace_id !== "string" || e.namespace_id === "") {
      e.namespace_id = "root";
      filled = true;
    }
  }
  return { entries, filled, absent: global === undefined };
}

/**
 * Writes the tables as OpenBao's persistAudit does: the entries split by `local`, `core/audit`
 * (unless `localOnly`: a change of a local device leaves the replicated record alone) and
 * `core/local-audit`. An entry of another table is refused, as OpenBao refuses to persist it.
 */
export async function writeAuditTables(
  storage: Backend,
  entries: readonly MountEntry[],
  localOnly: boolean,
): Promise<void> {
  for (const e of entries) {
    if (e.table !== API_AUDIT_TABLE && e.table !== CONFIG_AUDIT_TABLE)
      throw new BadRequestError(
        `invalid audit entry ${JSON.stringify(e.path)} (table ${JSON.stringify(e.table)}), not persisting`,
      );
  }
  if (!localOnly)
    await storage.put({
      key: AUDIT_TABLE_PATH,
      value: encodeTable(
        "audit",
        entries.filter((e) => !e.local),
      ),
    });
  await storage.put({
    key: LOCAL_AUDIT_TABLE_PATH,
    value: encodeTable(
      "audit",
      entries.filter((e) => e.local),
    ),
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A salt of the Vault SDK's salt package (salt.NewSalt): the record at `key` holds the salt as
 * plain text, a UUID when Vault made it. Missing (or empty, which Vault treats as missing), a new
 * one is made and stored — only when `mayCreate` (the active node: a standby writing its own would
 * fork the salt); otherwise a `not_active` error. `sys/token/salt` has the same format.
 */
export async function loadSalt(storage: Backend, key: string, mayCreate: boolean): Promise<string> {
  const e = await storage.get(key);
  const salt = e === undefined ? "" : dec.decode(e.value);
  if (salt !== "") return salt;
  if (!mayCreate)
    throw new VaultStateError(
      "not_active",
      `${key} does not exist yet: only the active node creates a salt; send the request to the active node`,
    );
  const fresh = randomUUID();
  await storage.put({ key, value: enc.encode(fresh) });
  return fresh;
}

/** The bytes of a new salt record (what {@link loadSalt} stores). */
export function saltRecord(salt: string): Uint8Array {
  return enc.encode(salt);
}
