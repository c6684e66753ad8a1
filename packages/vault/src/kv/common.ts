/** Pieces shared by the KV engines: request/response shapes, key checks, a per-key lock. */
import type { Backend } from "@bulwark/storage";
import { KvError } from "../errors.js";
import { type JsonNumber, stringify } from "../json/lossless.js";

// KvError lives with the package's other errors; engines and callers import it from here too.
export { KvError };

/** `patch` is HTTP PATCH (OpenBao's `kv patch`): KV v2 serves it on data/ and metadata/, KV v1 refuses it. */
export type KvOperation = "read" | "list" | "write" | "delete" | "patch";

export interface KvRequest {
  operation: KvOperation;
  /** Path below the mount, e.g. "data/app/db" (v2) or "app/db" (v1); "" is the mount root. */
  path: string;
  /**
   * The parsed JSON body, `undefined` when there was none. Numbers JavaScript would change are
   * {@link JsonNumber}s holding their exact text (see json/lossless.ts).
   */
  body: unknown;
  query: Record<string, string | undefined>;
}

/** `data` (or `rawData`) goes into Vault's response envelope; neither means 204. */
export interface KvResponse {
  data?: Record<string, unknown> | null;
  /**
   * The `data` field already serialized (JSON text), so a large stored secret is not parsed and
   * re-serialized on every read. Takes precedence over `data`.
   */
  rawData?: string;
  warnings?: string[];
  status?: number;
  leaseDuration?: number;
}

export interface KvEngine {
  handle(req: KvRequest): Promise<KvResponse>;
  /**
   * Whether a write to `path` targets something that exists (ACL: update) or not (create), or
   * `undefined` when the path has no existence check (Vault treats those writes as update).
   */
  exists(path: string): Promise<boolean | undefined>;
}

/**
 * A key below a mount: non-empty segments, no `.`/`..`, no NUL, at most 1024 characters. Vault
 * itself is laxer; these are the rules every Bulwark storage backend can hold.
 */
export function checkKey(key: string, what = "path"): void {
  if (key.length === 0)
    throw new KvError("invalid_request", `missing ${what}: give a secret path after the mount`);
  if (key.length > 1024) throw new KvError("invalid_request", `${what} is longer than 1024 characters`);
  if (key.endsWith("/"))
    throw new KvError(
      "invalid_request",
      `${what} ${JSON.stringify(key)} ends in '/': that names a folder, not a secret`,
    );
  if (key.includes("\0")) throw new KvError("invalid_request", `${what} must not contain NUL bytes`);
  for (const seg of key.split("/")) {
    if (seg === "" || seg === "." || seg === "..") {
      throw new KvError(
        "invalid_request",
        `${what} ${JSON.stringify(key)} has an empty, '.' or '..' segment`,
      );
    }
  }
}

/** A list prefix: "" or a folder path (a trailing '/' is added when missing). */
export function listPrefix(path: string): string {
  if (path === "") return "";
  const p = path.endsWith("/") ? path : `${path}/`;
  checkKey(p.slice(0, -1), "list path");
  return p;
}

/**
 * A storage view below a prefix; writes carry the mount's seal-wrap flag. `sealWrap` is either one
 * flag for every key, or a predicate over the key below the prefix (Vault seal-wraps only the
 * paths an engine names in `PathsSpecial.SealWrapStorage`, e.g. KV v2's versions and keys).
 */
export class PrefixView {
  readonly #storage: Backend;
  readonly #prefix: string;
  readonly #sealWrap: (key: string) => boolean;

  constructor(storage: Backend, prefix: string, sealWrap: boolean | ((key: string) => boolean)) {
    this.#storage = storage;
    this.#prefix = prefix;
    this.#sealWrap = typeof sealWrap === "function" ? sealWrap : () => sealWrap;
  }

  /** The storage path of `key` below this view. */
  pathOf(key: string): string {
    return this.#prefix + key;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.#storage.get(this.#prefix + key))?.value;
  }

  async getText(key: string): Promise<string | undefined> {
    const v = await this.get(key);
    return v === undefined ? undefined : dec.decode(v);
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const v = await this.get(key);
    return v === undefined ? undefined : (JSON.parse(dec.decode(v)) as T);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.#storage.put(
      this.#sealWrap(key)
        ? { key: this.#prefix + key, value, sealWrap: true }
        : { key: this.#prefix + key, value },
    );
  }

  /** Stores `value` as JSON; {@link JsonNumber}s in it keep their exact text. */
  async putJson(key: string, value: unknown): Promise<void> {
    await this.put(key, enc.encode(stringify(value)));
  }

  async delete(key: string): Promise<void> {
    await this.#storage.delete(this.#prefix + key);
  }

  async list(prefix: string): Promise<string[]> {
    return this.#storage.list(this.#prefix + prefix);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Serialises async work per key (read-modify-write of KV v2 metadata). */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#tails.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
