/**
 * The history written to a data set, and the reads that must answer the same on either server.
 *
 * - `initialise` + `populate`: mounts (KV v1, KV v2, a seal-wrapped KV v2), secrets with several
 *   versions, deletes/undeletes/destroys, key metadata and mount config, policies, tokens of every
 *   kind (TTL, periodic, orphan, parent and child, explicit max TTL, num_uses, no default policy,
 *   batch, a 2 s one that expires), then a keyring rotation and a write on the new term.
 * - `carryOn`: what the second server then does to the same data set (renew, revoke a parent and so
 *   its child, new versions, a metadata delete, a policy and a token of its own, a rotation).
 * - `readAll`: every read, over HTTP and through the `bao` CLI with `-format=json`, each with the
 *   token it names; `compareAnswers` diffs two servers' normalised answers.
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ApiAnswer,
  api,
  apiOk,
  baoCli,
  type CliAnswer,
  type SealSpec,
  type VaultNode,
} from "./openbao-nodes.js";

export interface Token {
  token: string;
  accessor: string;
}

export interface DataSet {
  seal: SealSpec;
  /** Unseal shares (Shamir) or recovery shares (static seal). */
  keys: string[];
  root: string;
  /** Live tokens by name. */
  tokens: Record<string, Token>;
  /** Tokens that must not work any more (revoked, or expired): name → token. */
  gone: Record<string, Token>;
  /** When the 2 s token expires (ms since the epoch); reads wait for it. */
  shortExpires: number;
  /** Secrets paths written so far, per mount (the reads cover every one). */
  kv1: string[];
  kv2: string[];
  kvw: string[];
  /** Policy names written (besides default). */
  policies: string[];
  /** For the CLI's HOME. */
  home: string;
}

export function newDataSet(seal: SealSpec, home: string): DataSet {
  return {
    seal,
    keys: [],
    root: "",
    tokens: {},
    gone: {},
    shortExpires: 0,
    kv1: [],
    kv2: [],
    kvw: [],
    policies: [],
    home,
  };
}

/** sys/init on a fresh data set (3 shares, threshold 2; a static seal gets 3 recovery shares). */
export async function initialise(node: VaultNode, ds: DataSet): Promise<void> {
  const body =
    ds.seal.type === "shamir"
      ? { secret_shares: 3, secret_threshold: 2 }
      : { recovery_shares: 3, recovery_threshold: 2 };
  const r = (await apiOk(node, "PUT", "sys/init", { body })) as {
    keys_base64: string[];
    recovery_keys_base64?: string[];
    root_token: string;
  };
  ds.keys = ds.seal.type === "shamir" ? r.keys_base64 : (r.recovery_keys_base64 ?? []);
  ds.root = r.root_token;
  await unseal(node, ds);
}

/** Unseals with two of the shares (Shamir), or waits for the static seal's auto-unseal. */
export async function unseal(node: VaultNode, ds: DataSet): Promise<void> {
  if (ds.seal.type === "shamir") {
    for (const key of ds.keys.slice(0, 2)) await apiOk(node, "PUT", "sys/unseal", { body: { key } });
  }
  // An auto-unseal that has not happened in 30 s has failed (the server logs why).
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = (await api(node, "GET", "sys/seal-status")).body as { sealed?: boolean };
    if (s.sealed === false) break;
    if (Date.now() > deadline) throw new Error(`${node.kind} still sealed after 30 s`);
    await sleep(200);
  }
  // Unsealed is not yet serving on every server: wait until a request is answered by the unsealed
  // store (a 403 is an answer too: the comparison then reports what the root token cannot do).
  for (;;) {
    const r = await api(node, "GET", "sys/mounts", { token: ds.root });
    if (r.status !== 503) return;
    if (Date.now() > deadline)
      throw new Error(`${node.kind} unsealed but sys/mounts answers ${r.status} ${JSON.stringify(r.body)}`);
    await sleep(200);
  }
}

const POLICIES: Record<string, string> = {
  reader: `path "kv2/data/*" {
  capabilities = ["read"]
}
path "kv2/metadata/*" {
  capabilities = ["read", "list"]
}
path "kv1/*" {
  capabilities = ["read", "list"]
}
`,
  creator: `# writes team secrets
path "kv2/data/team/*" {
  capabilities = ["create", "update"]
}
path "kv1/team/*" {
  capabilities = ["create", "update", "delete"]
}
path "kv2/data/team/secret" {
  capabilities = ["deny"]
}
path "auth/token/create" {
  capabilities = ["create", "update"]
}
`,
};

export async function createToken(
  node: VaultNode,
  ds: DataSet,
  name: string,
  body: unknown,
  as = ds.root,
  orphan = false,
) {
  const r = (await apiOk(node, "POST", orphan ? "auth/token/create-orphan" : "auth/token/create", {
    token: as,
    body,
  })) as { auth: { client_token: string; accessor: string } };
  ds.tokens[name] = { token: r.auth.client_token, accessor: r.auth.accessor };
}

async function put(node: VaultNode, ds: DataSet, path: string, body: unknown): Promise<void> {
  await apiOk(node, "POST", path, { token: ds.root, body });
}

/** The first server's history (`node` freshly initialised and unsealed). */
export async function populate(node: VaultNode, ds: DataSet): Promise<void> {
  await put(node, ds, "sys/mounts/kv1", { type: "kv", description: "version 1", options: { version: "1" } });
  await put(node, ds, "sys/mounts/kv2", {
    type: "kv",
    description: "version 2",
    options: { version: "2" },
    config: { default_lease_ttl: "1h", max_lease_ttl: "24h" },
  });
  await put(node, ds, "sys/mounts/kvw", { type: "kv", options: { version: "2" }, seal_wrap: true });

  await put(node, ds, "kv1/plain", { foo: "bar", n: 1 });
  await put(node, ds, "kv1/a/b", { x: "y", nested: { k: [1, 2] }, flag: true });
  ds.kv1.push("plain", "a/b");

  await put(node, ds, "kv2/config", { max_versions: 10, delete_version_after: "0s" });
  for (const n of [1, 2, 3, 4])
    await put(node, ds, "kv2/data/app/db", { data: { user: "alice", pass: `p${n}` } });
  await put(node, ds, "kv2/delete/app/db", { versions: [2] });
  await put(node, ds, "kv2/undelete/app/db", { versions: [2] });
  await apiOk(node, "DELETE", "kv2/data/app/db", { token: ds.root });
  await put(node, ds, "kv2/destroy/app/db", { versions: [1] });
  await put(node, ds, "kv2/metadata/app/db", {
    custom_metadata: { owner: "ops", env: "prod" },
    max_versions: 5,
    cas_required: false,
    delete_version_after: "72h",
  });
  await put(node, ds, "kv2/data/other", { data: { x: 1, list: ["a", "b"] } });
  await put(node, ds, "kv2/data/team/a/b/c", { data: { deep: true } });
  await put(node, ds, "kv2/metadata/locked", { cas_required: true, max_versions: 2 });
  await put(node, ds, "kv2/data/locked", { options: { cas: 0 }, data: { v: 1 } });
  await put(node, ds, "kv2/data/locked", { options: { cas: 1 }, data: { v: 2 } });
  await put(node, ds, "kv2/data/locked", { options: { cas: 2 }, data: { v: 3 } });
  ds.kv2.push("app/db", "other", "team/a/b/c", "locked");
  for (const n of [1, 2]) await put(node, ds, "kvw/data/wrapped", { data: { n } });
  ds.kvw.push("wrapped");

  for (const [name, text] of Object.entries(POLICIES))
    await put(node, ds, `sys/policies/acl/${name}`, { policy: text });
  // Names are stored lower-cased: "Auditor" is read back as "auditor".
  await put(node, ds, "sys/policy/Auditor", {
    policy: 'path "sys/mounts" {\n  capabilities = ["read"]\n}\n',
  });
  ds.policies.push("reader", "creator", "auditor");

  await createToken(node, ds, "ttl", {
    policies: ["reader"],
    ttl: "1h",
    meta: { app: "web", team: "blue" },
    display_name: "web-app",
  });
  await createToken(node, ds, "periodic", { policies: ["reader"], period: "2h" });
  await createToken(node, ds, "orphan", { policies: ["reader"], ttl: "30m" }, ds.root, true);
  await createToken(node, ds, "parent", { policies: ["reader", "creator"], ttl: "1h" });
  await createToken(node, ds, "child", { policies: ["reader"], ttl: "10m" }, ds.tokens.parent?.token);
  await createToken(node, ds, "maxttl", {
    policies: ["reader"],
    ttl: "1h",
    explicit_max_ttl: "90m",
    renewable: true,
  });
  await createToken(node, ds, "uses", { policies: ["reader"], num_uses: 5 });
  await createToken(node, ds, "nodefault", { policies: ["reader"], no_default_policy: true, ttl: "1h" });

  await apiOk(node, "PUT", "sys/rotate", { token: ds.root });
  await put(node, ds, "kv2/data/after-rotate", { data: { term: "2" } });
  await put(node, ds, "kv1/after-rotate", { term: "2" });
  ds.kv2.push("after-rotate");
  ds.kv1.push("after-rotate");

  await createToken(node, ds, "short", { policies: ["reader"], ttl: "2s" });
  ds.shortExpires = Date.now() + 2_000;
  ds.gone.short = ds.tokens.short as Token;
  delete ds.tokens.short;
}

/** The second server's writes on the same data set (then the first reads it all again). */
export async function carryOn(node: VaultNode, ds: DataSet, tag: string): Promise<string[]> {
  const problems: string[] = [];
  const check = (what: string, ok: boolean, got: unknown) => {
    if (!ok) problems.push(`${node.kind}: ${what}: ${JSON.stringify(got)}`);
  };
  const tokens = ds.tokens;
  // Renew a TTL token and a periodic one with their own tokens.
  const renewed = (await apiOk(node, "POST", "auth/token/renew-self", {
    token: tokens.ttl?.token as string,
    body: { increment: "30m" },
  })) as { auth: { lease_duration: number } };
  check(
    "renew-self ttl 30m: lease_duration",
    Math.abs(renewed.auth.lease_duration - 1800) <= 2,
    renewed.auth,
  );
  const periodic = (await apiOk(node, "POST", "auth/token/renew", {
    token: ds.root,
    body: { token: tokens.periodic?.token },
  })) as { auth: { lease_duration: number } };
  check(
    "renew periodic: lease_duration = period",
    Math.abs(periodic.auth.lease_duration - 7200) <= 2,
    periodic.auth,
  );
  // Revoking the parent revokes its child.
  await apiOk(node, "POST", "auth/token/revoke", { token: ds.root, body: { token: tokens.parent?.token } });
  for (const name of ["parent", "child"]) {
    const r = await api(node, "POST", "auth/token/lookup", {
      token: ds.root,
      body: { token: tokens[name]?.token },
    });
    check(`lookup of revoked ${name}: refused`, r.status >= 400, r);
    ds.gone[name] = tokens[name] as Token;
    delete tokens[name];
  }
  // Revoke by accessor.
  await apiOk(node, "POST", "auth/token/revoke-accessor", {
    token: ds.root,
    body: { accessor: tokens.nodefault?.accessor },
  });
  ds.gone.nodefault = tokens.nodefault as Token;
  delete tokens.nodefault;

  await put(node, ds, "kv2/data/app/db", { data: { user: "bob", pass: `by-${tag}` } });
  await put(node, ds, "kv2/data/locked", { options: { cas: 3 }, data: { v: `cas-${tag}` } });
  const refused = await api(node, "POST", "kv2/data/locked", {
    token: ds.root,
    body: { data: { v: "no cas" } },
  });
  check("cas_required: a write without cas is refused", refused.status === 400, refused);
  await put(node, ds, `kv2/data/by/${tag}`, { data: { tag } });
  await apiOk(node, "DELETE", "kv2/metadata/team/a/b/c", { token: ds.root });
  ds.kv2.push(`by/${tag}`);
  await put(node, ds, "kv2/undelete/app/db", { versions: [4] });
  await put(node, ds, "kvw/data/wrapped", { data: { n: 3, tag } });
  await put(node, ds, `kv1/by-${tag}`, { tag });
  await apiOk(node, "DELETE", "kv1/a/b", { token: ds.root });
  ds.kv1.push(`by-${tag}`);
  await put(node, ds, `sys/policies/acl/late-${tag}`, {
    policy: `path "kv2/data/by/${tag}" {\n  capabilities = ["read"]\n}\n`,
  });
  ds.policies.push(`late-${tag}`);
  await apiOk(node, "DELETE", "sys/policies/acl/auditor", { token: ds.root });
  ds.policies = ds.policies.filter((p) => p !== "auditor");
  await createToken(node, ds, `late-${tag}`, {
    // creator: it may create tokens (its child below).
    policies: [`late-${tag}`, "reader", "creator"],
    ttl: "45m",
    meta: { by: tag },
  });
  const created = ds.tokens[`late-${tag}`] as Token;
  await createToken(node, ds, `late-child-${tag}`, { policies: ["reader"], ttl: "5m" }, created.token);
  // Rotated as an operator would: the stock CLI's `operator rotate`.
  const rotated = await baoCli(node, ds.root, ["operator", "rotate", "-format=json"], ds.home);
  check("bao operator rotate", rotated.code === 0, rotated);
  await put(node, ds, `kv2/data/by/${tag}`, { data: { tag, after: "rotate" } });
  return problems;
}

export type Answers = Record<string, unknown>;

export interface ReadSet {
  answers: Answers;
  /** When the reads were made (ms since the epoch): TTLs are compared with the gap as tolerance. */
  at: number;
}

function httpShape(r: ApiAnswer): unknown {
  return { status: r.status, body: r.body };
}

function cliShape(r: CliAnswer): unknown {
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `jobs` with at most `n` at once (the CLI is a separate process each time). */
async function pool<T>(jobs: Array<() => Promise<T>>, n: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (;;) {
        const i = next++;
        if (i >= jobs.length) return;
        out[i] = await (jobs[i] as () => Promise<T>)();
      }
    }),
  );
  return out;
}

const CAPABILITY_PATHS = [
  "kv2/data/app/db",
  "kv2/data/team/x",
  "kv2/data/team/secret",
  "kv2/metadata/app/db",
  "kv1/team/x",
  "kv1/plain",
  "sys/mounts",
  "auth/token/lookup-self",
  "cubbyhole/x",
];

/** Every read, on `node`, with the data set's tokens; each answer keyed by a readable name. */
export async function readAll(node: VaultNode, ds: DataSet): Promise<ReadSet> {
  const wait = ds.shortExpires + 1_000 - Date.now();
  if (wait > 0) await sleep(wait);
  const at = Date.now();
  const root = ds.root;
  const http: Array<[string, () => Promise<ApiAnswer>]> = [];
  const H = (name: string, method: string, path: string, token = root, body?: unknown) =>
    http.push([name, () => api(node, method, path, { token, ...(body === undefined ? {} : { body }) })]);

  H("sys/mounts", "GET", "sys/mounts");
  H("sys/auth", "GET", "sys/auth");
  H("sys/mounts/kv2/tune", "GET", "sys/mounts/kv2/tune");
  H("sys/seal-status", "GET", "sys/seal-status");
  H("sys/key-status", "GET", "sys/key-status");
  H("sys/policy", "GET", "sys/policy");
  H("sys/policies/acl?list", "GET", "sys/policies/acl?list=true");
  for (const p of ["default", "response-wrapping", "root", ...ds.policies, "missing"]) {
    H(`sys/policy/${p}`, "GET", `sys/policy/${p}`);
    H(`sys/policies/acl/${p}`, "GET", `sys/policies/acl/${p}`);
  }
  H("kv1 list /", "GET", "kv1/?list=true");
  H("kv1 list a/", "GET", "kv1/a/?list=true");
  for (const k of [...ds.kv1, "a/b", "missing"]) H(`kv1 get ${k}`, "GET", `kv1/${k}`);
  H("kv2 config", "GET", "kv2/config");
  H("kv2 list metadata/", "GET", "kv2/metadata/?list=true");
  H("kv2 list metadata/team/", "GET", "kv2/metadata/team/?list=true");
  H("kv2 list metadata/by/", "GET", "kv2/metadata/by/?list=true");
  for (const k of [...ds.kv2, "team/a/b/c", "missing"]) {
    H(`kv2 get ${k}`, "GET", `kv2/data/${k}`);
    H(`kv2 metadata ${k}`, "GET", `kv2/metadata/${k}`);
  }
  for (const v of [1, 2, 3, 4, 5, 6]) H(`kv2 get app/db v${v}`, "GET", `kv2/data/app/db?version=${v}`);
  H("kvw list", "GET", "kvw/metadata/?list=true");
  for (const k of ds.kvw) {
    H(`kvw get ${k}`, "GET", `kvw/data/${k}`);
    H(`kvw get ${k} v1`, "GET", `kvw/data/${k}?version=1`);
    H(`kvw metadata ${k}`, "GET", `kvw/metadata/${k}`);
  }
  for (const [name, t] of Object.entries(ds.tokens)) {
    H(`token lookup ${name}`, "POST", "auth/token/lookup", root, { token: t.token });
    H(`capabilities ${name}`, "POST", "sys/capabilities", root, { token: t.token, paths: CAPABILITY_PATHS });
    if (t.accessor !== "") {
      H(`token lookup-accessor ${name}`, "POST", "auth/token/lookup-accessor", root, {
        accessor: t.accessor,
      });
    }
    // A use-limited token is only looked up by others: its own requests would count down its uses.
    if (name === "uses") continue;
    H(`token lookup-self ${name}`, "GET", "auth/token/lookup-self", t.token);
    H(`capabilities-self ${name}`, "POST", "sys/capabilities-self", t.token, { paths: CAPABILITY_PATHS });
    // The policy is enforced: reads it grants, writes it does not (refused writes change nothing).
    H(`as ${name}: kv2 get other`, "GET", "kv2/data/other", t.token);
    H(`as ${name}: kv2 list`, "GET", "kv2/metadata/?list=true", t.token);
    H(`as ${name}: kv1 get plain`, "GET", "kv1/plain", t.token);
    H(`as ${name}: kv2 write other (denied)`, "POST", "kv2/data/other", t.token, { data: { no: 1 } });
    H(`as ${name}: sys/mounts`, "GET", "sys/mounts", t.token);
  }
  for (const [name, t] of Object.entries(ds.gone)) {
    H(`gone ${name}: lookup`, "POST", "auth/token/lookup", root, { token: t.token });
    H(`gone ${name}: lookup-self`, "GET", "auth/token/lookup-self", t.token);
    H(`gone ${name}: kv2 get other`, "GET", "kv2/data/other", t.token);
  }
  H("root lookup-self", "GET", "auth/token/lookup-self");

  const cli: Array<[string, string, string[]]> = [
    ["secrets list", root, ["secrets", "list", "-format=json"]],
    ["auth list", root, ["auth", "list", "-format=json"]],
    ["policy list", root, ["policy", "list", "-format=json"]],
    ["policy read reader", root, ["policy", "read", "-format=json", "reader"]],
    ["policy read default", root, ["policy", "read", "-format=json", "default"]],
    ["kv get kv1/plain", root, ["kv", "get", "-format=json", "kv1/plain"]],
    ["kv list kv1/", root, ["kv", "list", "-format=json", "kv1/"]],
    ["kv get kv2/other", root, ["kv", "get", "-format=json", "kv2/other"]],
    ["kv get kv2/app/db", root, ["kv", "get", "-format=json", "kv2/app/db"]],
    ["kv get -version=2 kv2/app/db", root, ["kv", "get", "-format=json", "-version=2", "kv2/app/db"]],
    ["kv get -version=1 kv2/app/db", root, ["kv", "get", "-format=json", "-version=1", "kv2/app/db"]],
    ["kv metadata get kv2/app/db", root, ["kv", "metadata", "get", "-format=json", "kv2/app/db"]],
    ["kv metadata get kv2/locked", root, ["kv", "metadata", "get", "-format=json", "kv2/locked"]],
    ["kv list kv2/", root, ["kv", "list", "-format=json", "kv2/"]],
    ["kv get kvw/wrapped", root, ["kv", "get", "-format=json", "kvw/wrapped"]],
    ["read kv2/config", root, ["read", "-format=json", "kv2/config"]],
    ["token lookup (root)", root, ["token", "lookup", "-format=json"]],
  ];
  for (const [name, t] of Object.entries(ds.tokens)) {
    cli.push([`token lookup ${name}`, root, ["token", "lookup", "-format=json", t.token]]);
    if (t.accessor !== "")
      cli.push([
        `token lookup -accessor ${name}`,
        root,
        ["token", "lookup", "-format=json", "-accessor", t.accessor],
      ]);
    if (name !== "uses") {
      cli.push([
        `token capabilities ${name}`,
        t.token,
        ["token", "capabilities", "-format=json", "kv2/data/app/db"],
      ]);
      cli.push([`as ${name}: kv get kv2/other`, t.token, ["kv", "get", "-format=json", "kv2/other"]]);
    }
  }
  for (const [name, t] of Object.entries(ds.gone))
    cli.push([`gone ${name}: token lookup`, root, ["token", "lookup", "-format=json", t.token]]);

  const answers: Answers = {};
  const httpResults = await pool(
    http.map(([, f]) => f),
    4,
  );
  http.forEach(([name], i) => {
    answers[`http ${name}`] = httpShape(httpResults[i] as ApiAnswer);
  });
  const cliResults = await pool(
    cli.map(
      ([, token, args]) =>
        () =>
          baoCli(node, token, args, ds.home),
    ),
    3,
  );
  cli.forEach(([name], i) => {
    answers[`cli ${name}`] = cliShape(cliResults[i] as CliAnswer);
  });
  return { answers, at };
}

/**
 * Fields that differ by nature between two answers, whichever server gives them: the request id;
 * the product and its version (`version`, `build_date`, `commit_date` of seal-status, and
 * `running_plugin_version`, `v<server version>+builtin.<product>` for built-in plugins); and
 * `encryptions` of key-status, a count of this process's encryptions on the term.
 */
const DROPPED = new Set(["request_id", "running_plugin_version", "build_date", "commit_date"]);
/** Dropped in these reads only (the same name means data elsewhere). */
const DROPPED_IN: Record<string, string[]> = {
  "http sys/seal-status": ["version", "storage_type"],
  "http sys/key-status": ["encryptions"],
};
/**
 * Bulwark's HTTP answers carry `mount_type` beside `data` (apps/server/README.md, "What still
 * differs from OpenBao"); OpenBao 2.6 sends none. An envelope field, not data: dropped at the top
 * level of an HTTP answer only.
 */
const ENVELOPE_ONLY = new Set(["mount_type"]);

/**
 * Go's multierror wraps one error as `1 error occurred:\n\t* <text>\n\n`; OpenBao sends that for
 * some refusals where it sends the bare text for others. Compared by the text inside.
 */
function unwrapGoError(v: unknown): unknown {
  if (typeof v !== "string") return v;
  return v.replace(/1 error occurred:\n\t\* ([^\n]*)(\n\n)?/g, "$1");
}
/** Seconds left on a token or lease: compared with the time between the two reads as tolerance. */
const COUNTDOWN = new Set(["ttl"]);

/**
 * Differences between two servers' answers to the same reads, as `read: path: a ≠ b` lines. Only
 * `request_id` is dropped; TTLs may differ by the time between the reads (+5 s); every other field,
 * stored times and ids included, must be equal: both servers read the same records.
 */
export function compareAnswers(a: ReadSet, b: ReadSet, names: [string, string]): string[] {
  const tolerance = Math.abs(b.at - a.at) / 1000 + 5;
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string, dropped: ReadonlySet<string> = DROPPED) => {
    if (Array.isArray(x) && Array.isArray(y)) {
      if (x.length !== y.length) {
        out.push(`${path}: ${names[0]} ${JSON.stringify(x)} ≠ ${names[1]} ${JSON.stringify(y)}`);
        return;
      }
      for (const [i, v] of x.entries()) walk(v, y[i], `${path}[${i}]`);
      return;
    }
    if (x !== null && y !== null && typeof x === "object" && typeof y === "object") {
      const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
      for (const k of [...keys].sort()) {
        if (dropped.has(k)) continue;
        const xv = (x as Record<string, unknown>)[k];
        const yv = (y as Record<string, unknown>)[k];
        if (!(k in x) || !(k in y)) {
          out.push(
            `${path}.${k}: ${k in x ? `${names[0]} ${JSON.stringify(xv)}` : `${names[0]} (absent)`} ≠ ${k in y ? `${names[1]} ${JSON.stringify(yv)}` : `${names[1]} (absent)`}`,
          );
          continue;
        }
        if (COUNTDOWN.has(k) && typeof xv === "number" && typeof yv === "number") {
          if (Math.abs(xv - yv) > tolerance)
            out.push(`${path}.${k}: ${names[0]} ${xv} ≠ ${names[1]} ${yv} (±${tolerance}s)`);
          continue;
        }
        walk(xv, yv, `${path}.${k}`);
      }
      return;
    }
    if (JSON.stringify(unwrapGoError(x)) !== JSON.stringify(unwrapGoError(y)))
      out.push(`${path}: ${names[0]} ${JSON.stringify(x)} ≠ ${names[1]} ${JSON.stringify(y)}`);
  };
  const strip = (answer: unknown, name: string): unknown => {
    if (!name.startsWith("http ") || answer === null || typeof answer !== "object") return answer;
    const { body } = answer as { body?: unknown };
    if (body === null || typeof body !== "object" || Array.isArray(body)) return answer;
    const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    for (const k of ENVELOPE_ONLY) delete copy[k];
    for (const k of DROPPED_IN[name] ?? []) delete copy[k];
    const data = copy.data;
    if (DROPPED_IN[name] !== undefined && data !== null && typeof data === "object" && !Array.isArray(data)) {
      const d: Record<string, unknown> = { ...(data as Record<string, unknown>) };
      for (const k of DROPPED_IN[name] ?? []) delete d[k];
      copy.data = d;
    }
    return { ...(answer as object), body: copy };
  };
  const keys = new Set([...Object.keys(a.answers), ...Object.keys(b.answers)]);
  for (const k of keys) walk(strip(a.answers[k], k), strip(b.answers[k], k), k);
  return out;
}

/** The status (HTTP) or exit code (CLI) of one read, for the checks of what a read must answer. */
export function statusOf(r: ReadSet, name: string): number | null | undefined {
  const v = r.answers[name] as { status?: number; code?: number | null } | undefined;
  if (v === undefined) return undefined;
  return v.status ?? v.code;
}
