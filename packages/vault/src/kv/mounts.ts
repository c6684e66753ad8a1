/**
 * The mount table: which secrets engine serves which path prefix. Stored in the barrier at
 * `core/bulwark-mounts` (Bulwark's own JSON; Vault's `core/mounts` is a different, compressed
 * format and is left alone). Each mount's data lives below `logical/<uuid>/`, as in Vault.
 *
 * Only the KV engine exists (`kv` with `options.version` "1" or "2"; Vault's aliases `kv-v1`,
 * `kv-v2` and `generic` are accepted). `seal_wrap = true` makes every entry of the mount go through
 * the seal a second time (`sealWrap` puts): with an HSM/KMS seal the raw entries carry the `s`
 * canary.
 */

import { randomUUID } from "node:crypto";
import { MOUNT_TABLE_PATH } from "@bulwark/barrier";
import type { Backend } from "@bulwark/storage";
import { SYSTEM_MAX_TTL_S } from "../auth/tokens.js";
import { randomBase62 } from "../ids.js";
import { type KvEngine, KvError, type KvRequest, type KvResponse, PrefixView } from "./common.js";
import { KvV1 } from "./kv-v1.js";
import { KvV2 } from "./kv-v2.js";
import { TermCell } from "./term-cell.js";

/** Where the mount table lives (the data set's layout is declared in @bulwark/barrier). */
const TABLE = MOUNT_TABLE_PATH;
const RESERVED = ["sys/", "auth/", "cubbyhole/", "identity/", "core/", "logical/"];

export interface MountEntry {
  /** With a trailing '/', e.g. "secret/". */
  path: string;
  type: "kv";
  description: string;
  uuid: string;
  accessor: string;
  options: { version: "1" | "2" };
  seal_wrap: boolean;
  local: boolean;
  external_entropy_access: boolean;
  config: { default_lease_ttl: number; max_lease_ttl: number; force_no_cache: boolean };
  /** Unix seconds. */
  created_time: number;
}

export interface MountRequest {
  type: string;
  description?: string;
  options?: Record<string, unknown>;
  sealWrap?: boolean;
  local?: boolean;
  externalEntropyAccess?: boolean;
  config?: { defaultLeaseTtl?: number; maxLeaseTtl?: number };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Normalises a mount path: no leading '/', exactly one trailing '/'. */
export function normalizeMountPath(path: string): string {
  const p = `${path.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
  if (p === "/") throw new KvError("invalid_request", "missing mount path: give e.g. sys/mounts/secret");
  for (const seg of p.slice(0, -1).split("/")) {
    if (seg === "" || seg === "." || seg === ".." || seg.includes("\0")) {
      throw new KvError(
        "invalid_request",
        `invalid mount path ${JSON.stringify(path)}: empty, '.' or '..' segment`,
      );
    }
  }
  if (p.length > 256) throw new KvError("invalid_request", "mount path is longer than 256 characters");
  return p;
}

function kvVersion(type: string, options: Record<string, unknown> | undefined): "1" | "2" {
  const t = type.toLowerCase();
  if (t === "kv-v2") return "2";
  if (t === "kv-v1" || t === "generic") return "1";
  if (t !== "kv")
    throw new KvError("invalid_request", `plugin not found in the catalog: ${type} (Bulwark serves kv only)`);
  const v = options?.version;
  if (v === undefined || v === "" || v === "1" || v === 1) return "1";
  if (v === "2" || v === 2) return "2";
  throw new KvError("invalid_request", `invalid kv version ${JSON.stringify(v)}: use "1" or "2"`);
}

/** Vault's checks of a mount's lease TTLs (seconds, 0 = the system default). */
function checkLeaseTtls(defaultTtl: number, maxTtl: number): void {
  if (defaultTtl !== 0 && maxTtl !== 0 && defaultTtl > maxTtl)
    throw new KvError(
      "invalid_request",
      `given default lease TTL greater than given max lease TTL (${defaultTtl} > ${maxTtl} seconds): lower default_lease_ttl or raise max_lease_ttl`,
    );
  if (maxTtl === 0 && defaultTtl > SYSTEM_MAX_TTL_S)
    throw new KvError(
      "invalid_request",
      `given default lease TTL greater than system max lease TTL of ${SYSTEM_MAX_TTL_S} seconds: lower default_lease_ttl or set max_lease_ttl`,
    );
}

export class MountTable {
  readonly #storage: Backend;
  readonly #activeTerm: (() => number | undefined) | undefined;
  readonly #engines = new Map<string, KvEngine>();
  /** The table, cached for `cacheTtlMs` within one active term (another node may change it between terms). */
  readonly #table: TermCell<MountEntry[]>;
  /** Engine calls running per mount uuid, so unmount can let them finish before deleting data. */
  readonly #inflight = new Map<string, { count: number; idle: (() => void) | undefined }>();
  /** Mounts removed by this node: their engines refuse work (nothing may land after the delete). */
  readonly #removed = new Set<string>();
  /** Serialises mount/unmount/tune: each rewrites the whole table. */
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * @param opts.activeTerm the store's `activeTerm`, handed to the KV v2 engines for their
   *   metadata cache (without it they cache nothing).
   */
  constructor(storage: Backend, opts: { cacheTtlMs?: number; activeTerm?: () => number | undefined } = {}) {
    this.#storage = storage;
    this.#activeTerm = opts.activeTerm;
    this.#table = new TermCell(opts.cacheTtlMs ?? 5000, () => this.#activeTerm?.());
  }

  async all(): Promise<MountEntry[]> {
    return this.#table.get(async () => {
      const e = await this.#storage.get(TABLE);
      return e === undefined ? [] : (JSON.parse(dec.decode(e.value)) as { entries: MountEntry[] }).entries;
    });
  }

  /** The mount serving `path` (longest prefix) and the rest of the path below it. */
  async resolve(path: string): Promise<{ mount: MountEntry; rest: string; engine: KvEngine } | undefined> {
    let best: MountEntry | undefined;
    const withSlash = path.endsWith("/") ? path : `${path}/`;
    for (const m of await this.all()) {
      if (
        (path.startsWith(m.path) || withSlash === m.path) &&
        (best === undefined || m.path.length > best.path.length)
      ) {
        best = m;
      }
    }
    if (best === undefined) return undefined;
    return { mount: best, rest: path.slice(best.path.length), engine: this.#engine(best) };
  }

  #engine(m: MountEntry): KvEngine {
    const key = `${m.uuid}:${m.options.version}:${m.seal_wrap}`;
    let e = this.#engines.get(key);
    if (e === undefined) {
      const view = new PrefixView(this.#storage, `logical/${m.uuid}/`, m.seal_wrap);
      const uuid = m.uuid;
      const inner =
        m.options.version === "2"
          ? new KvV2(view, this.#activeTerm === undefined ? {} : { activeTerm: this.#activeTerm })
          : // The mount's current default_lease_ttl (tune changes it), not the one at first use.
            new KvV1(view, () => this.#leaseTtlOf(uuid, m.config.default_lease_ttl));
      e = {
        handle: (r: KvRequest): Promise<KvResponse> => this.#tracked(uuid, () => inner.handle(r)),
        exists: (p: string): Promise<boolean | undefined> => this.#tracked(uuid, () => inner.exists(p)),
      };
      this.#engines.set(key, e);
    }
    return e;
  }

  #leaseTtlOf(uuid: string, fallback: number): number {
    return this.#table.peek()?.find((e) => e.uuid === uuid)?.config.default_lease_ttl ?? fallback;
  }

  /** Runs an engine call of mount `uuid`, counted so that unmount can wait for it. */
  async #tracked<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    if (this.#removed.has(uuid))
      throw new KvError("not_found", "no handler for route: the mount was removed while the request ran");
    let f = this.#inflight.get(uuid);
    if (f === undefined) {
      f = { count: 0, idle: undefined };
      this.#inflight.set(uuid, f);
    }
    f.count++;
    try {
      return await fn();
    } finally {
      f.count--;
      if (f.count === 0) {
        this.#inflight.delete(uuid);
        f.idle?.();
      }
    }
  }

  /** Resolves when no engine call of mount `uuid` is running. */
  async #drained(uuid: string): Promise<void> {
    const f = this.#inflight.get(uuid);
    if (f === undefined) return;
    await new Promise<void>((resolve) => {
      const prev = f.idle;
      f.idle = () => {
        prev?.();
        resolve();
      };
    });
  }

  async mount(rawPath: string, req: MountRequest): Promise<MountEntry> {
    const path = normalizeMountPath(rawPath);
    const version = kvVersion(req.type, req.options);
    checkLeaseTtls(req.config?.defaultLeaseTtl ?? 0, req.config?.maxLeaseTtl ?? 0);
    for (const r of RESERVED) {
      if (path.startsWith(r) || r.startsWith(path)) {
        throw new KvError("invalid_request", `cannot mount at ${JSON.stringify(path)}: ${r} is reserved`);
      }
    }
    return this.#serial(async () => {
      const entries = await this.#fresh();
      for (const m of entries) {
        if (m.path.startsWith(path) || path.startsWith(m.path)) {
          throw new KvError("invalid_request", `path is already in use at ${m.path}`);
        }
      }
      const entry: MountEntry = {
        path,
        type: "kv",
        description: req.description ?? "",
        uuid: randomUUID(),
        accessor: `kv_${randomBase62(8).toLowerCase()}`,
        options: { version },
        seal_wrap: req.sealWrap ?? false,
        local: req.local ?? false,
        external_entropy_access: req.externalEntropyAccess ?? false,
        config: {
          default_lease_ttl: req.config?.defaultLeaseTtl ?? 0,
          max_lease_ttl: req.config?.maxLeaseTtl ?? 0,
          force_no_cache: false,
        },
        created_time: Math.floor(Date.now() / 1000),
      };
      await this.#write([...entries, entry]);
      return entry;
    });
  }

  /** Removes a mount and all of its data. Returns false when nothing was mounted there. */
  async unmount(rawPath: string): Promise<boolean> {
    const path = normalizeMountPath(rawPath);
    return this.#serial(async () => {
      const entries = await this.#fresh();
      const m = entries.find((e) => e.path === path);
      if (m === undefined) return false;
      // As in Vault, the data goes first and the table entry last: if deleting fails, the mount
      // (what is left of it) stays and the unmount can be retried, instead of its remaining
      // entries outliving it unreachable. Engine calls of the mount are refused from here on;
      // running ones (which resolved the mount earlier) finish before anything is deleted.
      this.#removed.add(m.uuid);
      try {
        await this.#drained(m.uuid);
        await this.#deleteTree(`logical/${m.uuid}/`);
        await this.#write(entries.filter((e) => e !== m));
      } catch (e) {
        this.#removed.delete(m.uuid);
        throw e;
      }
      return true;
    });
  }

  async tune(
    rawPath: string,
    patch: { description?: string; defaultLeaseTtl?: number; maxLeaseTtl?: number },
  ): Promise<MountEntry> {
    const path = normalizeMountPath(rawPath);
    return this.#serial(async () => {
      const entries = await this.#fresh();
      const m = entries.find((e) => e.path === path);
      if (m === undefined) throw new KvError("invalid_request", `no mount at ${path}`);
      const next: MountEntry = {
        ...m,
        description: patch.description ?? m.description,
        config: {
          ...m.config,
          default_lease_ttl: patch.defaultLeaseTtl ?? m.config.default_lease_ttl,
          max_lease_ttl: patch.maxLeaseTtl ?? m.config.max_lease_ttl,
        },
      };
      checkLeaseTtls(next.config.default_lease_ttl, next.config.max_lease_ttl);
      await this.#write(entries.map((e) => (e === m ? next : e)));
      return next;
    });
  }

  async #deleteTree(prefix: string): Promise<void> {
    for (const name of await this.#storage.list(prefix)) {
      if (name.endsWith("/")) await this.#deleteTree(prefix + name);
      else await this.#storage.delete(prefix + name);
    }
  }

  async #fresh(): Promise<MountEntry[]> {
    this.#table.clear();
    return this.all();
  }

  async #write(entries: MountEntry[]): Promise<void> {
    await this.#table.write(entries, () =>
      this.#storage.put({ key: TABLE, value: enc.encode(JSON.stringify({ entries })) }),
    );
    // Engines of removed mounts go; the others stay (their per-key locks must not be split).
    const live = new Set(entries.map((e) => e.uuid));
    for (const k of this.#engines.keys()) if (!live.has(k.split(":")[0] as string)) this.#engines.delete(k);
  }

  async #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}
