/**
 * Request routing of the logical layer: token lookup → ACL check → mount resolution → engine, as
 * Vault's router does it, with no HTTP in sight. Writes are `create` or `update` for the ACL
 * depending on whether the target exists; a LIST is checked on the path with a trailing '/'.
 * The HTTP server maps methods to operations and results to envelopes; everything between is here.
 */
import type { SealedStore } from "@bulwark/core";
import type { Acl, Operation } from "./auth/acl.js";
import type { PolicyStore } from "./auth/policy-store.js";
import type { TokenEntry, TokenStore } from "./auth/tokens.js";
import { PermissionDeniedError, RouteError, VaultStateError } from "./errors.js";
import type { KvOperation, KvResponse } from "./kv/common.js";
import type { MountEntry, MountTable } from "./kv/mounts.js";

/**
 * Vault's exact text for a sealed store: clients match on it. The bao/vault CLI's `status` and
 * `operator unseal` ignore a sealed `sys/leader` only when the error contains "Vault is sealed"
 * (OpenBao 2.6 answers this text too), and print an error and exit 1 otherwise.
 */
export const SEALED_MESSAGE = "Vault is sealed";

/** An authenticated caller: its token, the token's entry and the ACL of its policies. */
export interface Auth {
  token: string;
  entry: TokenEntry;
  acl: Acl;
}

/** One request to the logical layer. */
export interface VaultRequest {
  /**
   * The ACL operation: `read`, `list`, `update` (a write: it becomes `create` when the target does
   * not exist and the token's capabilities tell the two apart), `delete` or `patch`.
   */
  operation: Operation;
  /** The path below the API root, e.g. "secret/data/app" (no leading '/'). */
  path: string;
  /**
   * The request body, `undefined` when there is none. Secrets engines keep numbers JavaScript
   * would change as JsonNumbers (parse bodies with `parseJson`).
   */
  data?: unknown;
  query?: Record<string, string | undefined>;
  /** The client token; missing, unknown, expired or revoked → permission denied. */
  token?: string | undefined;
  /**
   * Called once the token is authenticated and the ACL allowed the request, before a mount is
   * looked for and before the engine runs (the audit's request record is written here: a throw
   * stops the request, nothing changed).
   */
  onAuthorized?: (info: AuthorizedRequest) => Promise<void>;
  /**
   * Tell `create` from `update` by the target's existence even when the token's capabilities do
   * not need it (the audit records the operation as Vault's router decides it).
   */
  exactOperation?: boolean;
}

/** What {@link VaultRequest.onAuthorized} is told. */
export interface AuthorizedRequest {
  auth: Auth;
  /** The operation as the ACL checked it (`create` or `update` for a write). */
  operation: Operation;
  /** The path the ACL checked (a LIST's with its trailing '/'). */
  aclPath: string;
  /** The mount serving the path (undefined: nothing is mounted there). */
  mount: MountEntry | undefined;
}

/**
 * The engine's answer. `data`/`rawData` (JSON text of `data`), `warnings` and `leaseDuration` go
 * into Vault's response envelope; `status` is set only where Vault answers other than 200 (a
 * deleted version's 404 with metadata). No data, rawData or status: nothing to return (204).
 */
export interface VaultResponse extends KvResponse {
  /** The type of the mount that answered ("kv"). */
  mountType: string;
}

/** What routing needs of the per-store services. */
export interface RouterServices {
  store: SealedStore;
  tokens: TokenStore;
  policies: PolicyStore;
  mounts: MountTable;
}

const KV_OPERATION: Partial<Record<Operation, KvOperation>> = {
  read: "read",
  list: "list",
  create: "write",
  update: "write",
  delete: "delete",
  patch: "patch",
};

/** Sealed → `sealed`; no, unknown, expired or revoked token → `permission_denied`. */
export async function authenticate(s: RouterServices, token: string | undefined): Promise<Auth> {
  if (s.store.sealed) throw new VaultStateError("sealed", SEALED_MESSAGE);
  if (token === undefined) throw new PermissionDeniedError();
  const entry = await s.tokens.authenticate(token);
  if (entry === undefined) throw new PermissionDeniedError();
  const acl = await s.policies.acl(entry.policies);
  return { token, entry, acl };
}

/** `permission_denied` unless the ACL allows `op` (and sudo, when asked) on `path`. */
export function authorize(auth: Auth, path: string, op: Operation, sudo = false): void {
  if (!auth.acl.allows(path, op, { sudo })) throw new PermissionDeniedError();
}

/** The path the ACL checks for `op`: Vault checks a LIST on the folder (with its trailing '/'). */
export function aclPath(path: string, op: Operation): string {
  return op === "list" && !path.endsWith("/") ? `${path}/` : path;
}

/**
 * Serves one logical request: authenticates the token, resolves the mount at the longest
 * matching prefix, checks the ACL (create vs update by existence, LIST on `path/`) and hands the
 * request to the mount's engine. sys/ and auth/ paths are not logical: `unsupported_path`. A
 * mount (or auth method) Bulwark carries without serving answers `unsupported_path` naming its
 * engine, after the ACL check (so a caller learns its type only where the ACL lets it in).
 */
export async function handle(s: RouterServices, req: VaultRequest): Promise<VaultResponse> {
  const { path } = req;
  const query = req.query ?? {};
  if (path.startsWith("sys/") || path.startsWith("auth/") || path === "sys" || path === "auth") {
    // As Vault: a path Bulwark does not serve is a 404 only to a valid token (403 otherwise,
    // 503 sealed), so the answer tells an unauthenticated caller nothing about the server.
    await authenticate(s, req.token);
    // An auth method Bulwark carries (userpass, approle, …): say so, naming it.
    if (path.startsWith("auth/")) {
      const carried = await s.mounts.resolveAuth(path.slice("auth/".length));
      if (carried !== undefined && carried.mount.type !== "token")
        await carried.engine.handle({ operation: "read", path: carried.rest, body: undefined, query });
    }
    throw new RouteError("unsupported_path", `unsupported path ${JSON.stringify(path)}`);
  }
  const auth = await authenticate(s, req.token);
  let op = req.operation;
  const resolved = await s.mounts.resolve(path);
  // Create vs update matters only when the token holds one but not the other; skip the
  // existence check (a storage read) otherwise. One capability lookup answers both (a denied
  // path's capabilities are just `deny`).
  if (op === "update" && resolved !== undefined) {
    const caps = auth.acl.capabilities(path);
    if (req.exactOperation === true || caps.has("create") !== caps.has("update")) {
      const exists = await resolved.engine.exists(resolved.rest);
      if (exists === false) op = "create";
    }
  }
  const checked = aclPath(path, op);
  authorize(auth, checked, op);
  if (req.onAuthorized !== undefined)
    await req.onAuthorized({ auth, operation: op, aclPath: checked, mount: resolved?.mount });
  if (resolved === undefined)
    throw new RouteError(
      "not_found",
      `no handler for route ${JSON.stringify(path)}: nothing is mounted there`,
    );
  const kvOp = KV_OPERATION[op];
  if (kvOp === undefined)
    throw new RouteError("unsupported_operation", `unsupported operation ${op} on a kv mount`);
  const res = await resolved.engine.handle({ operation: kvOp, path: resolved.rest, body: req.data, query });
  return { ...res, mountType: resolved.mount.type };
}
