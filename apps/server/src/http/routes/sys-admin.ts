/**
 * Administration: sys/mounts (+ tune), sys/auth (the auth table; token/ served, + its tune), sys/audit and the
 * plugin catalog (both Bulwark-sized), sys/policy and sys/policies/acl, sys/capabilities(-self),
 * sys/internal/ui/mounts (how kv clients find a mount's version). One function per group; what
 * the answers contain is @bulwark/vault's (system.ts), the HTTP parsing is here.
 */
import {
  capabilitiesOf,
  type EnableAuditRequest,
  leaseTtls,
  type MountEntry,
  type MountRequest,
  mountInfo,
  normalizeMountPath,
  normalizePolicyName,
  parseFields,
  policyText,
  SYSTEM_MAX_TTL_S,
  type TunePatch,
} from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import { auditAs, callerIfAny } from "../audit.js";
import {
  type AppContext,
  authenticate,
  authorizeCanonical,
  type Call,
  callerOf,
  envelope,
  paramOf,
  type Result,
  type RouteSpec,
  route,
} from "../context.js";
import { HttpError, permissionDenied } from "../errors.js";

/**
 * `config` of a mount request as Vault's API client sends it (`api.MountConfigInput`): the bao/vault
 * CLI sends `options: null` and zero/empty forms of the fields it has flags for. Bulwark acts on
 * the lease TTLs and ignores force_no_cache and listing_visibility; the rest is accepted when empty (as Vault treats an empty value as "not set")
 * and refused with a clear error when it asks for something Bulwark does not do. Unknown fields
 * (typos) stay an error.
 */
const MOUNT_CONFIG_SPEC = {
  default_lease_ttl: "duration",
  max_lease_ttl: "duration",
  force_no_cache: "bool",
  listing_visibility: "string",
  description: "string",
  options: "any",
  audit_non_hmac_request_keys: "strings",
  audit_non_hmac_response_keys: "strings",
  passthrough_request_headers: "strings",
  allowed_response_headers: "strings",
  allowed_managed_keys: "strings",
  delegated_auth_accessors: "strings",
  plugin_version: "string",
  token_type: "string",
  user_lockout_config: "any",
  identity_token_key: "string",
} as const;

/** The body of a mount request (sys/mounts/<path>), as Vault's API client sends it. */
const MOUNT_SPEC = {
  type: "string",
  description: "string",
  config: "object",
  options: "object",
  local: "bool",
  seal_wrap: "bool",
  external_entropy_access: "bool",
  plugin_name: "string",
  plugin_version: "string",
  path: "string",
  mount_point: "string",
} as const;

/**
 * Vault's API client sends the TTLs it was not asked to change as "" (`api.MountConfigInput` has
 * no omitempty on them); Vault reads "" as "not given".
 */
function withoutEmptyTtls(body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
  const out: Record<string, unknown> = { ...body };
  for (const k of ["default_lease_ttl", "max_lease_ttl"]) if (out[k] === "") delete out[k];
  return out;
}

function emptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

function refuseUnsupportedConfig(cfg: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(cfg)) {
    // Acted on, or (as before) accepted and ignored: they change nothing a client reads back.
    if (
      ["default_lease_ttl", "max_lease_ttl", "description", "force_no_cache", "listing_visibility"].includes(
        k,
      )
    )
      continue;
    if (!emptyValue(v)) {
      throw new HttpError(
        400,
        `config.${k} is not supported by Bulwark: omit it or leave it empty (default_lease_ttl and max_lease_ttl are)`,
      );
    }
  }
}

/** `<mount>` of `sys/mounts/<mount>[/tune]` as the client wrote it, and whether it is the tune path. */
function mountOf(rest: string): { mount: string; tune: boolean } {
  const tune = rest.endsWith("/tune");
  return { mount: tune ? rest.slice(0, -"/tune".length) : rest, tune };
}

/** ACL check on `sys/mounts/<canonical mount path>[/tune]` (see authorizeCanonical). */
function authorizeMount(call: Call, rest: string): void {
  const { mount, tune } = mountOf(rest);
  authorizeCanonical(call, `sys/mounts/${normalizeMountPath(mount).slice(0, -1)}${tune ? "/tune" : ""}`);
}

/** An answer whose data is also at the top level, as Vault's sys/ endpoints answer. */
function flat(data: Record<string, unknown>): Result {
  return { body: { ...data, ...envelope(data) } };
}

/** The same route under each of `urls` (Vault's patterns with and without the trailing '/', or two names). */
function routes(
  app: FastifyInstance,
  ctx: AppContext,
  urls: readonly string[],
  spec: Omit<RouteSpec, "url">,
): void {
  for (const url of urls) route(app, ctx, { ...spec, url });
}

export function registerAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  registerMountReadRoutes(app, ctx);
  registerMountWriteRoutes(app, ctx);
  registerAuthMethodRoutes(app, ctx);
  registerTokenTuneRoutes(app, ctx);
  registerAuditAndPluginRoutes(app, ctx);
  registerPolicyListRoutes(app, ctx);
  registerPolicyRoutes(app, ctx);
  registerCapabilitiesRoutes(app, ctx);
}

/** sys/mounts, sys/mounts/<path>[/tune] (GET) and sys/internal/ui/mounts/<path>. */
function registerMountReadRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { mounts } = ctx.services;

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/mounts",
    auth: "token",
    handler: async () => {
      // Every secrets mount of core/mounts and core/local-mounts, served or carried (sys/,
      // identity/, cubbyhole/ … as OpenBao lists them).
      const table: Record<string, unknown> = {};
      for (const m of await mounts.all()) table[m.path] = mountInfo(m);
      return flat(table);
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/mounts/*",
    auth: "token",
    handler: async (call) => {
      const rest = paramOf(call.req.params, "*");
      authorizeMount(call, rest);
      const { mount, tune } = mountOf(rest);
      const path = `${mount.replace(/\/+$/, "")}/`;
      const m = (await mounts.all()).find((e) => e.path === path);
      if (m === undefined) throw new HttpError(400, `no mount at ${path}`);
      if (!tune) return flat(mountInfo(m));
      const ttls = leaseTtls(m);
      return flat({
        // The TTLs in force, as Vault answers them: 0 on the mount means the system's 768h.
        default_lease_ttl: ttls.defaultLeaseTtl || SYSTEM_MAX_TTL_S,
        max_lease_ttl: ttls.maxLeaseTtl || SYSTEM_MAX_TTL_S,
        force_no_cache: m.config.force_no_cache === true,
        description: m.description,
        options: m.options === null ? null : { ...m.options },
      });
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/internal/ui/mounts",
    // OpenBao's listing for UIs: with a valid token, the mounts it reaches into; without one, only
    // those tuned `listing_visibility = "unauth"`.
    auth: "none",
    audit: "full",
    handler: async ({ req }) => {
      const auth = await callerIfAny(ctx, req);
      const listed = (m: MountEntry, full: string): boolean =>
        auth === undefined ? m.config?.listing_visibility === "unauth" : auth.acl.reachesInto(full);
      const secret: Record<string, unknown> = {};
      for (const m of await mounts.all()) if (listed(m, m.path)) secret[m.path] = mountInfo(m);
      const authTable: Record<string, unknown> = {};
      for (const m of await mounts.auths()) if (listed(m, `auth/${m.path}`)) authTable[m.path] = mountInfo(m);
      return { body: envelope({ auth: authTable, secret }) };
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/internal/ui/mounts/*",
    // OpenBao serves this path to any valid token (no policy names it, not even `default`): the
    // token's reach into the mount decides, not an ACL rule on the path itself.
    auth: "none",
    // An unauthenticated path of OpenBao's router: audited, with the token when one is given.
    audit: "full",
    handler: async ({ req }) => {
      const auth = await authenticate(ctx, req);
      const path = paramOf(req.params, "*");
      // An auth method's path is answered with its "auth/" prefix, as OpenBao does.
      const r = path.startsWith("auth/")
        ? await mounts.resolveAuth(path.slice("auth/".length))
        : await mounts.resolve(path);
      const full = r === undefined ? "" : `${r.mount.table === "auth" ? "auth/" : ""}${r.mount.path}`;
      // Unknown and unreachable mounts look the same: the answer must not reveal what exists.
      if (r === undefined || !auth.acl.reachesInto(full)) throw permissionDenied();
      const data = { ...mountInfo(r.mount), path: full };
      return { body: envelope(data) };
    },
  });
}

/** sys/mounts/<path> (PUT/POST: mount, or tune with /tune; DELETE: unmount). */
function registerMountWriteRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { mounts } = ctx.services;

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/mounts/*",
    auth: "token",
    handler: async (call) => {
      const rest = paramOf(call.req.params, "*");
      authorizeMount(call, rest);
      const { mount, tune } = mountOf(rest);
      if (!tune) {
        // OpenBao's handleMount returns a path conflict as the mount's own error (its text is the
        // record's outer error); other refusals as ErrInvalidRequest.
        await mounts.mount(rest, mountRequest(call.body, rest)).catch((e: unknown) => {
          throw e instanceof Error && e.message.startsWith("path is already in use")
            ? auditAs(e, e.message)
            : e;
        });
        return undefined;
      }
      // A kv version upgrade (1 → 2) answers 200 with OpenBao's warning; other tunes 204.
      const { warnings } = await mounts.tune(mount, tunePatch(call.body));
      return warnings.length === 0 ? undefined : { body: envelope(null, { warnings }) };
    },
  });

  route(app, ctx, {
    methods: ["DELETE"],
    url: "/v1/sys/mounts/*",
    auth: "token",
    handler: async (call) => {
      const rest = paramOf(call.req.params, "*");
      authorizeMount(call, rest);
      await mounts.unmount(rest);
      return undefined;
    },
  });
}

/**
 * The body of sys/mounts/<path>/tune: the CLI's tune body (api.MountConfigInput) has unset TTLs
 * as "", options: null, force_no_cache: false.
 */
function tunePatch(body: unknown): TunePatch {
  const f = parseFields(withoutEmptyTtls(body), { ...MOUNT_CONFIG_SPEC, options: "object" });
  const { description: _s, default_lease_ttl: _d, max_lease_ttl: _m, options: _o, ...others } = f;
  refuseUnsupportedConfig(others);
  const patch: TunePatch = {};
  if (f.options !== undefined && Object.keys(f.options).length > 0) {
    // Vault's options are a map of strings (`kv enable-versioning` sends {"version":"2"}).
    const options: Record<string, string> = {};
    for (const [k, v] of Object.entries(f.options)) {
      if (typeof v !== "string" && typeof v !== "number")
        throw new HttpError(400, `options.${k} must be a string, e.g. {"version":"2"}`);
      options[k] = String(v);
    }
    patch.options = options;
  }
  if (f.description !== undefined) patch.description = f.description;
  if (f.default_lease_ttl !== undefined) patch.defaultLeaseTtl = f.default_lease_ttl;
  if (f.max_lease_ttl !== undefined) patch.maxLeaseTtl = f.max_lease_ttl;
  return patch;
}

/** The body of a mount request at `rest` (the path as the URL gives it) as the mount table's request. */
function mountRequest(body: unknown, rest: string): MountRequest {
  const f = parseFields(body, MOUNT_SPEC, { required: ["type"] });
  for (const echo of [f.path, f.mount_point]) {
    if (echo !== undefined && echo.replace(/^\/+|\/+$/g, "") !== rest.replace(/^\/+|\/+$/g, "")) {
      throw new HttpError(400, "the mount path in the body differs from the one in the URL");
    }
  }
  if (f.plugin_version !== undefined && f.plugin_version !== "") {
    throw new HttpError(400, "plugin_version is not supported by Bulwark: the kv engine is built in");
  }
  const cfg = parseFields(f.config ?? {}, MOUNT_CONFIG_SPEC);
  refuseUnsupportedConfig(cfg);
  // null or missing: none given (OpenBao then stores null, which is kv version 1).
  const options =
    f.options === undefined || f.options === null ? undefined : parseFields(f.options, { version: "any" });
  const type = f.plugin_name !== undefined && f.type === "plugin" ? f.plugin_name : (f.type ?? "");
  const config: { defaultLeaseTtl?: number; maxLeaseTtl?: number } = {};
  const mreq = {
    type,
    ...(options === undefined ? {} : { options }),
    sealWrap: f.seal_wrap ?? false,
    local: f.local ?? false,
    externalEntropyAccess: f.external_entropy_access ?? false,
    config,
    ...(f.description === undefined ? {} : { description: f.description }),
  };
  if (cfg.default_lease_ttl !== undefined) config.defaultLeaseTtl = cfg.default_lease_ttl;
  if (cfg.max_lease_ttl !== undefined) config.maxLeaseTtl = cfg.max_lease_ttl;
  return mreq;
}

/**
 * sys/auth: the auth table (core/auth, core/local-auth) with Vault's fields, so `bao auth list`
 * and hvac's list_auth_methods work. Bulwark serves token/ (not removable, not tunable); other
 * methods of an OpenBao/Vault data set are listed and carried, not served.
 */
function registerAuthMethodRoutes(app: FastifyInstance, ctx: AppContext): void {
  routes(app, ctx, ["/v1/sys/auth", "/v1/sys/auth/"], {
    methods: ["GET"],
    auth: "token",
    handler: async () => {
      const table: Record<string, unknown> = {};
      for (const m of await ctx.services.mounts.auths()) table[m.path] = mountInfo(m);
      return flat(table);
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST", "DELETE"],
    url: "/v1/sys/auth/*",
    auth: "token",
    sudo: true,
    handler: async ({ req }) => {
      const path = paramOf(req.params, "*").replace(/\/+$/, "");
      throw new HttpError(
        400,
        path === "token"
          ? "the token auth method cannot be disabled or re-enabled"
          : `auth methods other than token are not supported by Bulwark: cannot ${req.method === "DELETE" ? "disable" : "enable"} ${JSON.stringify(path)}`,
      );
    },
  });
}

/** The token auth method's tune values: the ones in force, which cannot be changed. */
const tokenTune = () => ({
  default_lease_ttl: SYSTEM_MAX_TTL_S,
  description: "token based credentials",
  force_no_cache: false,
  max_lease_ttl: SYSTEM_MAX_TTL_S,
  token_type: "default-service",
});

/** `bao auth tune token/` calls sys/mounts/auth/token/tune; `bao read sys/auth/token/tune` the other. */
function registerTokenTuneRoutes(app: FastifyInstance, ctx: AppContext): void {
  const urls = ["/v1/sys/auth/token/tune", "/v1/sys/mounts/auth/token/tune"];
  routes(app, ctx, urls, {
    methods: ["GET"],
    auth: "token",
    sudo: true,
    handler: async () => flat(tokenTune()),
  });

  routes(app, ctx, urls, {
    methods: ["PUT", "POST"],
    auth: "token",
    sudo: true,
    handler: async ({ body }) => {
      const f = parseFields(withoutEmptyTtls(body), { ...MOUNT_CONFIG_SPEC, options: "any" });
      const current = tokenTune();
      // Setting what is already in force is accepted (scripts that pin the defaults keep working);
      // anything else would be silently ignored, so it is refused with the values in force.
      for (const k of ["default_lease_ttl", "max_lease_ttl"] as const) {
        if (f[k] !== undefined && f[k] !== 0 && f[k] !== current[k]) {
          throw new HttpError(
            400,
            `tuning ${k} of the token auth method is not supported by Bulwark: tokens get ${current[k]}s (768h) unless created with a ttl; omit ${k}`,
          );
        }
      }
      if (f.description !== undefined && f.description !== "" && f.description !== current.description)
        throw new HttpError(400, "changing the token auth method's description is not supported by Bulwark");
      if (f.token_type !== undefined && f.token_type !== "" && f.token_type !== current.token_type)
        throw new HttpError(400, "token_type is not supported by Bulwark: only service tokens are issued");
      const { default_lease_ttl: _d, max_lease_ttl: _m, description: _s, token_type: _t, ...others } = f;
      refuseUnsupportedConfig(others);
      return undefined;
    },
  });
}

/** The body of sys/audit/<path> (OpenBao's handleEnableAudit fields). */
const AUDIT_ENABLE_SPEC = {
  type: "string",
  description: "string",
  options: "stringMap",
  local: "bool",
  path: "string",
} as const;

/**
 * Audit devices (sys/audit, sys/audit/<path>, sys/audit-hash/<path>): what the store's audit
 * broker does (packages/vault/src/audit/broker.ts); OpenBao 2.6's answers. The plugin catalog
 * lists the one built-in secrets engine (`bao plugin list`).
 */
function registerAuditAndPluginRoutes(app: FastifyInstance, ctx: AppContext): void {
  routes(app, ctx, ["/v1/sys/audit", "/v1/sys/audit/"], {
    methods: ["GET"],
    auth: "token",
    sudo: true,
    handler: async () => {
      const data: Record<string, unknown> = {};
      for (const d of await ctx.services.audit.list()) {
        data[d.path] = {
          description: d.description,
          local: d.local,
          options: d.options,
          path: d.path,
          type: d.type,
        };
      }
      return flat(data);
    },
  });
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/audit/*",
    auth: "token",
    sudo: true,
    auditFirstDevice: true,
    handler: async (call) => {
      const path = paramOf(call.req.params, "*");
      const f = parseFields(call.body, AUDIT_ENABLE_SPEC, { required: ["type"] });
      const request: EnableAuditRequest = { type: f.type ?? "" };
      if (f.description !== undefined) request.description = f.description;
      if (f.options !== undefined && f.options !== null) request.options = f.options;
      if (f.local !== undefined) request.local = f.local;
      await ctx.services.audit.enable(path, request);
      return undefined;
    },
  });
  route(app, ctx, {
    methods: ["DELETE"],
    url: "/v1/sys/audit/*",
    auth: "token",
    sudo: true,
    handler: async (call) => {
      await ctx.services.audit.disable(paramOf(call.req.params, "*"));
      return undefined;
    },
  });
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/audit-hash/*",
    auth: "token",
    handler: async (call) => {
      const f = parseFields(call.body, { input: "string", path: "string" });
      if (f.input === undefined || f.input === "")
        throw auditAs(new HttpError(400, 'the "input" parameter is empty'), null);
      // OpenBao's handleAuditHash answers a refusal as logical.ErrorResponse (no outer error).
      const hash = await ctx.services.audit
        .hash(paramOf(call.req.params, "*"), f.input)
        .catch((e: unknown) => {
          throw typeof e === "object" && e !== null ? auditAs(e, null) : e;
        });
      return flat({ hash });
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/plugins/catalog",
    auth: "token",
    handler: async () => ({
      body: envelope({
        auth: [],
        database: [],
        secret: ["kv"],
        detailed: [
          { builtin: true, deprecation_status: "supported", name: "kv", type: "secret", version: "" },
        ],
      }),
    }),
  });
}

/**
 * The policy lists, with and without the trailing '/', as OpenBao's patterns (`policy/?$`,
 * `policies/acl/?$`): the stored names but `response-wrapping` (not assignable), then `root`.
 */
function registerPolicyListRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { policies } = ctx.services;
  routes(app, ctx, ["/v1/sys/policy", "/v1/sys/policy/"], {
    methods: ["GET"],
    auth: "token",
    handler: async () => {
      const names = await policies.list();
      return flat({ keys: names, policies: names });
    },
  });

  routes(app, ctx, ["/v1/sys/policies/acl", "/v1/sys/policies/acl/"], {
    methods: ["GET"],
    auth: "token",
    handler: async ({ query }) => {
      if (query.list === undefined)
        throw new HttpError(405, "unsupported operation: list with LIST or ?list=true");
      return { body: envelope({ keys: await policies.list() }) };
    },
  });
}

type PolicyStoreOf = AppContext["services"]["policies"];
type PolicyWriteOptions = NonNullable<Parameters<PolicyStoreOf["write"]>[2]>;
type PolicyInfo = NonNullable<Awaited<ReturnType<PolicyStoreOf["info"]>>>;

/** OpenBao's `readPolicyResponse`: `expiration` and `modified` only when set. */
function policyData(p: PolicyInfo, field: "policy" | "rules"): Record<string, unknown> {
  const data: Record<string, unknown> = {
    name: p.name,
    version: p.version,
    cas_required: p.casRequired,
    [field]: p.raw,
    allow_wildcards_in_identity_templates: p.allowWildcardsInIdentityTemplates,
    allow_slashes_in_identity_templates: p.allowSlashesInIdentityTemplates,
  };
  if (p.expirationText !== undefined) data.expiration = p.expirationText;
  if (p.modified !== undefined) data.modified = p.modified;
  return data;
}

const POLICY_WRITE_SPEC = {
  policy: "string",
  name: "string",
  expiration: "any",
  ttl: "duration",
  cas: "int",
  cas_required: "bool",
  allow_wildcards_in_identity_templates: "bool",
  allow_slashes_in_identity_templates: "bool",
} as const;

/** OpenBao's `TypeTime`: RFC 3339 text or Unix seconds. */
function expirationOf(v: unknown): Date {
  const n =
    typeof v === "number" ? v : typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : undefined;
  if (n !== undefined) return new Date(n * 1000);
  if (
    typeof v === "string" &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(v.trim())
  ) {
    const t = Date.parse(v.trim());
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new HttpError(
    400,
    `expiration: give an RFC 3339 time (2030-01-01T00:00:00Z) or Unix seconds, got ${JSON.stringify(v)}`,
  );
}

/**
 * The write options of a PUT/PATCH body (OpenBao's handlePoliciesSet/Patch): `expiration` or `ttl`
 * (not both; a time already past is refused), `cas`, `cas_required`, the identity template flags.
 * `old` (PATCH): what the body leaves out keeps the stored value, and `cas` defaults to its version.
 */
function policyWriteOptions(
  f: { [K in keyof typeof POLICY_WRITE_SPEC]?: unknown },
  old: PolicyInfo | undefined,
): PolicyWriteOptions {
  if (f.expiration !== undefined && f.ttl !== undefined)
    throw new HttpError(400, "cannot supply both 'expiration' and 'ttl' for policies");
  let expiration: Date | undefined = old?.expiration;
  if (f.expiration !== undefined) expiration = expirationOf(f.expiration);
  else if (f.ttl !== undefined) expiration = new Date(Date.now() + (f.ttl as number) * 1000);
  if (expiration !== undefined && expiration.getTime() <= Date.now())
    throw new HttpError(400, "refusing to update policy as expiration time has already elapsed");
  const opts: PolicyWriteOptions = {
    casRequired: (f.cas_required as boolean | undefined) ?? old?.casRequired ?? false,
    allowWildcardsInIdentityTemplates:
      (f.allow_wildcards_in_identity_templates as boolean | undefined) ??
      old?.allowWildcardsInIdentityTemplates ??
      false,
    allowSlashesInIdentityTemplates:
      (f.allow_slashes_in_identity_templates as boolean | undefined) ??
      old?.allowSlashesInIdentityTemplates ??
      false,
  };
  if (expiration !== undefined) opts.expiration = expiration;
  const cas = (f.cas as number | undefined) ?? old?.version;
  if (cas !== undefined) opts.cas = cas;
  return opts;
}

/**
 * sys/policy/<name> (the text as `rules`, answered flat) and sys/policies/acl/<name> (as `policy`,
 * plus PATCH), with OpenBao's fields (`version`, `cas_required`, `modified`, …), parameters (`cas`,
 * `cas_required`, `expiration`/`ttl`, the identity template flags) and warnings (a name converted to
 * lower case, the deprecated `rules`). Names may hold '/', as in OpenBao.
 */
function registerPolicyRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { policies } = ctx.services;
  for (const [base, field] of [
    ["/v1/sys/policy/*", "rules"],
    ["/v1/sys/policies/acl/*", "policy"],
  ] as const) {
    const prefix = base.slice("/v1/".length, -"*".length);
    const answer = (data: Record<string, unknown>): Result =>
      field === "rules" ? flat(data) : { body: envelope(data) };
    /** The name in the path, after the ACL also allowed it in its canonical form. */
    const nameOf = (call: Call): string => {
      const name = paramOf(call.req.params, "*");
      authorizeCanonical(call, `${prefix}${normalizePolicyName(name)}`);
      return name;
    };
    /** OpenBao's answer to a write: 204, or 200 with its warnings. */
    const written = (warnings: string[]): Result =>
      warnings.length === 0 ? undefined : { body: envelope(null, { warnings }) };
    const converted = (name: string, warnings: string[]): void => {
      if (name !== name.toLowerCase()) warnings.push(`policy name was converted to ${name.toLowerCase()}`);
    };
    /** The text of a body: `policy` (or on sys/policy the deprecated `rules`), base64 allowed. */
    const textOf = (f: { policy?: string; rules?: string }, warnings: string[]): string => {
      let raw = f.policy ?? "";
      if (raw === "" && field === "rules" && f.rules !== undefined) {
        raw = f.rules;
        warnings.push("'rules' is deprecated, please use 'policy' instead");
      }
      if (raw === "") throw new HttpError(400, "'policy' parameter not supplied or empty");
      return policyText(raw);
    };

    route(app, ctx, {
      methods: ["GET"],
      url: base,
      auth: "token",
      handler: async (call) => {
        const p = await policies.info(nameOf(call));
        if (p === undefined) throw new HttpError(404, "");
        return answer(policyData(p, field));
      },
    });
    route(app, ctx, {
      methods: ["PUT", "POST"],
      url: base,
      auth: "token",
      handler: async (call) => {
        const name = nameOf(call);
        const spec =
          field === "rules" ? { ...POLICY_WRITE_SPEC, rules: "string" as const } : POLICY_WRITE_SPEC;
        const f = parseFields(call.body, spec) as Record<string, unknown> & {
          policy?: string;
          rules?: string;
          name?: string;
        };
        if (f.name !== undefined && f.name.toLowerCase() !== name.toLowerCase()) {
          throw new HttpError(400, "the policy name in the body differs from the one in the URL");
        }
        const warnings: string[] = [];
        converted(name, warnings);
        const raw = textOf(f, warnings);
        await policies.write(name, raw, policyWriteOptions(f, undefined));
        return written(warnings);
      },
    });
    if (field === "policy") {
      route(app, ctx, {
        methods: ["PATCH"],
        url: base,
        auth: "token",
        handler: async (call) => {
          const name = nameOf(call);
          const f = parseFields(call.body, POLICY_WRITE_SPEC);
          const warnings: string[] = [];
          converted(name, warnings);
          const old = await policies.info(name);
          // OpenBao answers 400 here, its 404 CodedError notwithstanding.
          if (old === undefined) throw new HttpError(400, "policy not found");
          const raw = f.policy === undefined ? old.raw : textOf(f, warnings);
          await policies.write(name, raw, policyWriteOptions(f, old));
          return { body: envelope(null, { warnings }) };
        },
      });
    }
    route(app, ctx, {
      methods: ["DELETE"],
      url: base,
      auth: "token",
      handler: async (call) => {
        await policies.delete(nameOf(call));
        return undefined;
      },
    });
  }
}

/** The paths a capabilities request asks about: `paths`, or else the deprecated `path` (OpenBao). */
function pathsOf(f: { path?: string[]; paths?: string[] }): string[] {
  const paths = f.paths !== undefined && f.paths.length > 0 ? f.paths : (f.path ?? []);
  if (paths.length === 0) throw new HttpError(400, "paths must be supplied");
  return paths;
}

/** OpenBao's answer: one entry per path, plus `capabilities` only when exactly one was asked. */
function capabilitiesAnswer(acl: Parameters<typeof capabilitiesOf>[0], paths: string[]): Result {
  const out = capabilitiesOf(acl, paths);
  if (paths.length !== 1) delete out.capabilities;
  return flat(out);
}

/** sys/capabilities-self (the caller's token) and sys/capabilities (a token in the body). */
function registerCapabilitiesRoutes(app: FastifyInstance, ctx: AppContext): void {
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/capabilities-self",
    auth: "token",
    operation: "update",
    handler: async (call) => {
      const f = parseFields(call.body, { path: "strings", paths: "strings", token: "string" });
      return capabilitiesAnswer(callerOf(call).acl, pathsOf(f));
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/capabilities",
    auth: "token",
    operation: "update",
    handler: async ({ body }) => {
      const f = parseFields(
        body,
        { path: "strings", paths: "strings", token: "string" },
        { required: ["token"] },
      );
      const entry = await ctx.services.tokens.lookup(f.token ?? "");
      if (entry === undefined) throw new HttpError(400, "invalid token");
      const acl = await ctx.services.policies.acl(entry.policies);
      return capabilitiesAnswer(acl, pathsOf(f));
    },
  });
}
