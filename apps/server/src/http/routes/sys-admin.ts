/**
 * Administration: sys/mounts (+ tune), sys/auth (token/ only, + its tune), sys/policy and
 * sys/policies/acl, sys/capabilities(-self),
 * sys/internal/ui/mounts (how kv clients find a mount's version).
 */
import { createHash } from "node:crypto";
import {
  type Acl,
  type MountEntry,
  normalizeMountPath,
  normalizePolicyName,
  parseFields,
  SYSTEM_MAX_TTL_S,
} from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import { type AppContext, authorizeCanonical, type Call, envelope, route } from "../context.js";
import { HttpError, permissionDenied } from "../errors.js";

function mountBody(m: MountEntry): Record<string, unknown> {
  return {
    accessor: m.accessor,
    config: { ...m.config },
    description: m.description,
    external_entropy_access: m.external_entropy_access,
    local: m.local,
    options: { ...m.options },
    plugin_version: "",
    running_plugin_version: "",
    running_sha256: "",
    seal_wrap: m.seal_wrap,
    type: m.type,
    uuid: m.uuid,
  };
}

/** The fields every built-in table entry (sys/, auth/token/) has with the same values. */
const BUILTIN_ENTRY = {
  external_entropy_access: false,
  local: false,
  options: null,
  plugin_version: "",
  running_plugin_version: "",
  running_sha256: "",
} as const;

const SYS_MOUNT = {
  ...BUILTIN_ENTRY,
  accessor: "system_bulwark",
  config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
  description: "system endpoints used for control, policy and debugging",
  seal_wrap: true,
  type: "system",
  uuid: "00000000-0000-0000-0000-000000000000",
};

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

/**
 * Vault's API client sends the TTLs it was not asked to change as "" (`api.MountConfigInput` has
 * no omitempty on them); Vault reads "" as "not given".
 */
function withoutEmptyTtls(body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const k of ["default_lease_ttl", "max_lease_ttl"]) if (out[k] === "") delete out[k];
  return out;
}

function emptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === "" || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
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

/** A policy document as given: Vault also accepts it base64-encoded. */
function policyText(raw: string): string {
  const t = raw.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0) {
    const decoded = Buffer.from(t, "base64").toString("utf8");
    if (/\bpath\b/.test(decoded)) return decoded;
  }
  return raw;
}

/** ACL check on `sys/mounts/<canonical mount path>[/tune]` (see authorizeCanonical). */
function authorizeMount(call: Call, rest: string): void {
  const tune = rest.endsWith("/tune");
  const mount = normalizeMountPath(tune ? rest.slice(0, -"/tune".length) : rest).slice(0, -1);
  authorizeCanonical(call, `sys/mounts/${mount}${tune ? "/tune" : ""}`);
}

function paramOf(params: unknown, name: string): string {
  const v = (params as Record<string, string | undefined>)[name];
  if (v === undefined || v === "") throw new HttpError(400, `missing ${name} in the path`);
  return v;
}

export function registerAdminRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { mounts, policies } = ctx.services;

  // ---------------------------------------------------------------- mounts

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/mounts",
    auth: "token",
    handler: async () => {
      const table: Record<string, unknown> = {};
      for (const m of await mounts.all()) table[m.path] = mountBody(m);
      table["sys/"] = SYS_MOUNT;
      return { body: { ...table, ...envelope(table) } };
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/mounts/*",
    auth: "token",
    handler: async (call) => {
      const rest = paramOf(call.req.params, "*");
      authorizeMount(call, rest);
      const tune = rest.endsWith("/tune");
      const path = `${(tune ? rest.slice(0, -"/tune".length) : rest).replace(/\/+$/, "")}/`;
      const m = (await mounts.all()).find((e) => e.path === path);
      if (m === undefined) throw new HttpError(400, `no mount at ${path}`);
      const data = tune
        ? {
            // The TTLs in force, as Vault answers them: 0 on the mount means the system's 768h.
            default_lease_ttl: m.config.default_lease_ttl || SYSTEM_MAX_TTL_S,
            max_lease_ttl: m.config.max_lease_ttl || SYSTEM_MAX_TTL_S,
            force_no_cache: false,
            description: m.description,
            options: { ...m.options },
          }
        : { ...mountBody(m), deprecation_status: "supported" };
      return { body: { ...data, ...envelope(data) } };
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/mounts/*",
    auth: "token",
    handler: async (call) => {
      const { req, body } = call;
      const rest = paramOf(req.params, "*");
      authorizeMount(call, rest);
      if (rest.endsWith("/tune")) {
        // The CLI's tune body (api.MountConfigInput): unset TTLs as "", options: null,
        // force_no_cache: false.
        const f = parseFields(withoutEmptyTtls(body), { ...MOUNT_CONFIG_SPEC, options: "object" });
        if (f.options !== undefined && Object.keys(f.options).length > 0) {
          throw new HttpError(
            400,
            "changing a mount's options (such as the kv version) is not supported by Bulwark",
          );
        }
        const { description: _s, default_lease_ttl: _d, max_lease_ttl: _m, options: _o, ...rest2 } = f;
        refuseUnsupportedConfig(rest2 as Record<string, unknown>);
        const patch: { description?: string; defaultLeaseTtl?: number; maxLeaseTtl?: number } = {};
        if (f.description !== undefined) patch.description = f.description;
        if (f.default_lease_ttl !== undefined) patch.defaultLeaseTtl = f.default_lease_ttl;
        if (f.max_lease_ttl !== undefined) patch.maxLeaseTtl = f.max_lease_ttl;
        await mounts.tune(rest.slice(0, -"/tune".length), patch);
        return undefined;
      }
      const f = parseFields(
        body,
        {
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
        },
        { required: ["type"] },
      );
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
      const options = parseFields(f.options ?? {}, { version: "any" });
      const type = f.plugin_name !== undefined && f.type === "plugin" ? f.plugin_name : (f.type as string);
      const mreq = {
        type,
        options,
        sealWrap: f.seal_wrap ?? false,
        local: f.local ?? false,
        externalEntropyAccess: f.external_entropy_access ?? false,
        config: {} as { defaultLeaseTtl?: number; maxLeaseTtl?: number },
        ...(f.description === undefined ? {} : { description: f.description }),
      };
      if (cfg.default_lease_ttl !== undefined) mreq.config.defaultLeaseTtl = cfg.default_lease_ttl;
      if (cfg.max_lease_ttl !== undefined) mreq.config.maxLeaseTtl = cfg.max_lease_ttl;
      await mounts.mount(rest, mreq);
      return undefined;
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

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/internal/ui/mounts/*",
    auth: "token",
    handler: async ({ req, auth }) => {
      const path = paramOf(req.params, "*");
      const r = await mounts.resolve(path);
      // Unknown and unreachable mounts look the same: the answer must not reveal what exists.
      if (r === undefined || auth?.acl.reachesInto(r.mount.path) !== true) throw permissionDenied();
      const data = { ...mountBody(r.mount), deprecation_status: "supported", path: r.mount.path };
      return { body: envelope(data) };
    },
  });

  // ---------------------------------------------------------------- auth methods

  // Bulwark has one auth method, token/ (not removable, not tunable): sys/auth lists it with
  // Vault's fields, so `bao auth list` and hvac's list_auth_methods work.
  const tokenMount = async () => {
    const c = await ctx.services.cluster(ctx.clusterName).catch(() => undefined);
    // Stable per cluster, as a mount's accessor and UUID are in Vault.
    const h = createHash("sha256")
      .update(`auth/token/:${c?.cluster_id ?? ""}`)
      .digest("hex");
    return {
      ...BUILTIN_ENTRY,
      accessor: `auth_token_${h.slice(0, 8)}`,
      config: {
        default_lease_ttl: 0,
        force_no_cache: false,
        max_lease_ttl: 0,
        token_type: "default-service",
      },
      description: "token based credentials",
      seal_wrap: false,
      type: "token",
      uuid: `${h.slice(8, 16)}-${h.slice(16, 20)}-${h.slice(20, 24)}-${h.slice(24, 28)}-${h.slice(28, 40)}`,
    };
  };

  for (const url of ["/v1/sys/auth", "/v1/sys/auth/"]) {
    route(app, ctx, {
      methods: ["GET"],
      url,
      auth: "token",
      handler: async () => {
        const table = { "token/": await tokenMount() };
        return { body: { ...table, ...envelope(table) } };
      },
    });
  }

  const tokenTune = () => ({
    default_lease_ttl: SYSTEM_MAX_TTL_S,
    description: "token based credentials",
    force_no_cache: false,
    max_lease_ttl: SYSTEM_MAX_TTL_S,
    token_type: "default-service",
  });

  // `bao auth tune token/` calls sys/mounts/auth/token/tune; `bao read sys/auth/token/tune` the other.
  for (const url of ["/v1/sys/auth/token/tune", "/v1/sys/mounts/auth/token/tune"]) {
    route(app, ctx, {
      methods: ["GET"],
      url,
      auth: "token",
      sudo: true,
      handler: async () => {
        const data = tokenTune();
        return { body: { ...data, ...envelope(data) } };
      },
    });

    route(app, ctx, {
      methods: ["PUT", "POST"],
      url,
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
          throw new HttpError(
            400,
            "changing the token auth method's description is not supported by Bulwark",
          );
        if (f.token_type !== undefined && f.token_type !== "" && f.token_type !== current.token_type)
          throw new HttpError(400, "token_type is not supported by Bulwark: only service tokens are issued");
        const { default_lease_ttl: _d, max_lease_ttl: _m, description: _s, token_type: _t, ...rest } = f;
        refuseUnsupportedConfig(rest as Record<string, unknown>);
        return undefined;
      },
    });
  }

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

  // ---------------------------------------------------------------- audit devices, plugins

  // Bulwark has no audit devices: the list is empty (`bao audit list` says so), enabling one is
  // refused by name rather than answered with a 404.
  for (const url of ["/v1/sys/audit", "/v1/sys/audit/"]) {
    route(app, ctx, {
      methods: ["GET"],
      url,
      auth: "token",
      sudo: true,
      handler: async () => ({ body: { ...envelope({}) } }),
    });
  }
  route(app, ctx, {
    methods: ["PUT", "POST", "DELETE"],
    url: "/v1/sys/audit/*",
    auth: "token",
    sudo: true,
    handler: async () => {
      throw new HttpError(400, "audit devices are not supported by Bulwark");
    },
  });

  // The plugin catalog: the one built-in secrets engine (`bao plugin list`).
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

  // ---------------------------------------------------------------- policies

  const listPolicies = async () => policies.list();

  // With and without the trailing '/', as Vault's patterns (`policy/?$`, `policies/acl/?$`).
  for (const url of ["/v1/sys/policy", "/v1/sys/policy/"]) {
    route(app, ctx, {
      methods: ["GET"],
      url,
      auth: "token",
      handler: async () => {
        const names = await listPolicies();
        const data = { keys: names, policies: names };
        return { body: { ...data, ...envelope(data) } };
      },
    });
  }

  for (const url of ["/v1/sys/policies/acl", "/v1/sys/policies/acl/"]) {
    route(app, ctx, {
      methods: ["GET"],
      url,
      auth: "token",
      handler: async ({ query }) => {
        if (query.list === undefined)
          throw new HttpError(405, "unsupported operation: list with LIST or ?list=true");
        // Vault lists root here too (it cannot be read, changed or deleted, but it exists).
        return { body: envelope({ keys: await listPolicies() }) };
      },
    });
  }

  for (const [base, field] of [
    ["/v1/sys/policy/:name", "rules"],
    ["/v1/sys/policies/acl/:name", "policy"],
  ] as const) {
    const prefix = base.slice("/v1/".length, -":name".length);
    route(app, ctx, {
      methods: ["GET"],
      url: base,
      auth: "token",
      handler: async (call) => {
        const name = normalizePolicyName(paramOf(call.req.params, "name"));
        authorizeCanonical(call, `${prefix}${name}`);
        const raw = await policies.read(name);
        if (raw === undefined) throw new HttpError(404, "");
        const data = { name, [field]: raw };
        return { body: field === "rules" ? { ...data, ...envelope(data) } : envelope(data) };
      },
    });
    route(app, ctx, {
      methods: ["PUT", "POST"],
      url: base,
      auth: "token",
      handler: async (call) => {
        const { req, body } = call;
        const name = paramOf(req.params, "name");
        authorizeCanonical(call, `${prefix}${normalizePolicyName(name)}`);
        const f = parseFields(body, { policy: "string", rules: "string", name: "string" });
        if (f.name !== undefined && f.name.toLowerCase() !== name.toLowerCase()) {
          throw new HttpError(400, "the policy name in the body differs from the one in the URL");
        }
        const raw = f.policy ?? f.rules;
        if (raw === undefined) throw new HttpError(400, 'missing required field "policy"');
        await policies.write(name, policyText(raw));
        return undefined;
      },
    });
    route(app, ctx, {
      methods: ["DELETE"],
      url: base,
      auth: "token",
      handler: async (call) => {
        const name = paramOf(call.req.params, "name");
        authorizeCanonical(call, `${prefix}${normalizePolicyName(name)}`);
        await policies.delete(name);
        return undefined;
      },
    });
  }

  // ---------------------------------------------------------------- capabilities

  const capabilitiesOf = (acl: Acl, paths: string[]) => {
    const out: Record<string, unknown> = {};
    for (const p of paths) out[p] = acl.describe(p.replace(/^\/+/, ""));
    // Vault's single-path answer, kept for older clients.
    out.capabilities = out[paths[0] as string];
    return out;
  };

  const pathsOf = (f: { path?: string[]; paths?: string[] }) => {
    const paths = [...(f.paths ?? []), ...(f.path ?? [])];
    if (paths.length === 0) throw new HttpError(400, "missing paths: give path or paths");
    return paths;
  };

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/capabilities-self",
    auth: "token",
    operation: "update",
    handler: async ({ body, auth }) => {
      const f = parseFields(body, { path: "strings", paths: "strings", token: "string" });
      if (auth === undefined) throw new HttpError(403, "permission denied");
      const data = capabilitiesOf(auth.acl, pathsOf(f));
      return { body: { ...data, ...envelope(data) } };
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
      const entry = await ctx.services.tokens.lookup(f.token as string);
      if (entry === undefined) throw new HttpError(400, "invalid token");
      const acl = await policies.acl(entry.policies);
      const data = capabilitiesOf(acl, pathsOf(f));
      return { body: { ...data, ...envelope(data) } };
    },
  });
}
