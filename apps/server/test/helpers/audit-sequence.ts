/**
 * The request sequence the audit differential sends to OpenBao and to Bulwark alike
 * (audit-openbao.test.ts), and what it used that must never reach a log in plaintext.
 *
 * Left out on purpose (Bulwark serves them differently by design, nothing to do with audit):
 * - the KV v2 readiness poll is sent but its records are not compared: OpenBao answers a fresh
 *   KV v2 mount only once its background upgrade check is done, so the number of polls differs
 *   between the servers (POLL_PATH; the comparison drops the records of that path).
 * - response wrapping (X-Vault-Wrap-TTL): Bulwark refuses it with a 400 by design.
 * Nothing else is left out: every step below is compared record by record.
 */
import type { Answer, AuditMode, AuditServer, Json } from "./audit-servers.js";

/** What a step's request is sent with. */
export type TokenKind = "root" | "child" | "meta" | "none" | "bogus";

export interface Step {
  label: string;
  method: string;
  path: string;
  body?: unknown;
  token: TokenKind;
  /** The status both servers must answer. */
  status: number;
}

export interface StepResult extends Step {
  got: number;
  json: Json;
}

/** The path the KV v2 readiness poll reads; its records are not compared (see the module comment). */
export const POLL_PATH = "secret/config";

export const POLICY = 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n';

/** Values the sequence writes; random per run, so a hit in a log can only come from this run. */
export interface SequenceSecrets {
  kvPassword: string;
  kvApiKey: string;
  kv1Password: string;
  /** In a map and in a list inside the KV v1 secret (hashing walks nested data). */
  nestedSecret: string;
  listSecret: string;
  bogusToken: string;
}

export function newSecrets(): SequenceSecrets {
  const r = () => `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  return {
    kvPassword: `pw-${r()}`,
    kvApiKey: `ak-${r()}`,
    kv1Password: `v1-${r()}`,
    nestedSecret: `ns-${r()}`,
    listSecret: `ls-${r()}`,
    bogusToken: `s.bogus${r()}`,
  };
}

export interface SequenceRun {
  steps: StepResult[];
  childToken: string;
  childAccessor: string;
  /** An orphan token with metadata, a display name and a use limit (auth.metadata in its records). */
  metaToken: string;
  rootAccessor: string;
  otp: string;
  nonce: string;
  encodedToken: string;
  /** The root token generate-root made (encoded_token XOR otp). */
  generatedRoot: string;
  /** sys/audit-hash/file of `kvPassword` and of the child token. */
  hashOfPassword: string;
  hashOfChild: string;
  /** Every value of this run that must not appear in plaintext in a log. */
  sensitive: Record<string, string>;
  /** Steps whose status is not the one expected (the servers must agree with the sequence). */
  statusProblems: string[];
}

/** OpenBao 2.x's generate-root: the new token is base64(token XOR otp). */
export function decodeRootToken(encoded: string, otp: string): string {
  const bytes = Buffer.from(encoded, "base64");
  const pad = Buffer.from(otp, "utf8");
  if (bytes.length !== pad.length) return "";
  return Buffer.from(bytes.map((b, i) => b ^ (pad[i] as number))).toString("utf8");
}

/**
 * Sends the sequence to `s` (with the device enabled through the API first in `api` mode) and
 * returns what each step answered. Ends with sys/seal and an unseal with the rekeyed share (not
 * audited; sent so that the server output scan covers that share too).
 */
export async function runSequence(
  s: AuditServer,
  mode: AuditMode,
  sec: SequenceSecrets,
  /** More options for the device enabled through the API (`hmac_accessor`, `elide_list_responses`). */
  deviceOptions: Record<string, string> = {},
): Promise<SequenceRun> {
  const steps: StepResult[] = [];
  const run: SequenceRun = {
    steps,
    childToken: "",
    childAccessor: "",
    metaToken: "",
    rootAccessor: "",
    otp: "",
    nonce: "",
    encodedToken: "",
    generatedRoot: "",
    hashOfPassword: "",
    hashOfChild: "",
    sensitive: {},
    statusProblems: [],
  };
  const tokenOf = (t: TokenKind): string =>
    t === "root"
      ? s.rootToken
      : t === "child"
        ? run.childToken
        : t === "meta"
          ? run.metaToken
          : t === "bogus"
            ? sec.bogusToken
            : "";
  const step = async (st: Step): Promise<Answer> => {
    const url = st.method === "LIST" ? `${st.path}?list=true` : st.path;
    const method = st.method === "LIST" ? "GET" : st.method;
    const a = await s.http(method, url, st.body, tokenOf(st.token));
    steps.push({ ...st, got: a.status, json: a.json });
    if (a.status !== st.status)
      run.statusProblems.push(
        `${s.kind}: ${st.label} (${st.method} ${st.path}) answered ${a.status}, expected ${st.status}: ${JSON.stringify(a.json).slice(0, 300)}`,
      );
    return a;
  };

  if (mode === "api")
    await step({
      label: "enable the file device",
      method: "PUT",
      path: "sys/audit/file",
      body: { type: "file", options: { file_path: s.auditFile, ...deviceOptions } },
      token: "root",
      status: 204,
    });
  await step({
    label: "mount KV v2",
    method: "POST",
    path: "sys/mounts/secret",
    body: { type: "kv", options: { version: "2" } },
    token: "root",
    status: 204,
  });
  // OpenBao's KV v2 answers only once its upgrade check has run (see POLL_PATH).
  const deadline = Date.now() + 60_000;
  while ((await s.http("GET", POLL_PATH)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${s.kind}: ${POLL_PATH} not answering after 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await step({
    label: "KV v2 write",
    method: "PUT",
    path: "secret/data/app",
    body: { data: { password: sec.kvPassword, user: "app" } },
    token: "root",
    status: 200,
  });
  await step({ label: "KV v2 read", method: "GET", path: "secret/data/app", token: "root", status: 200 });
  await step({ label: "KV v2 list", method: "LIST", path: "secret/metadata/", token: "root", status: 200 });
  await step({
    label: "KV v2 read missing",
    method: "GET",
    path: "secret/data/missing",
    token: "root",
    status: 404,
  });
  await step({
    label: "KV v2 metadata read",
    method: "GET",
    path: "secret/metadata/app",
    token: "root",
    status: 200,
  });
  await step({
    label: "KV v2 patch",
    method: "PATCH",
    path: "secret/data/app",
    body: { data: { api_key: sec.kvApiKey } },
    token: "root",
    status: 200,
  });
  await step({
    label: "KV v2 delete",
    method: "DELETE",
    path: "secret/data/app",
    token: "root",
    status: 204,
  });
  await step({
    label: "KV v2 undelete",
    method: "PUT",
    path: "secret/undelete/app",
    body: { versions: [2] },
    token: "root",
    status: 204,
  });
  await step({
    label: "KV v2 destroy",
    method: "PUT",
    path: "secret/destroy/app",
    body: { versions: [1] },
    token: "root",
    status: 204,
  });
  await step({
    label: "policy write",
    method: "PUT",
    path: "sys/policies/acl/reader",
    body: { policy: POLICY },
    token: "root",
    status: 204,
  });
  await step({
    label: "policy read",
    method: "GET",
    path: "sys/policies/acl/reader",
    token: "root",
    status: 200,
  });
  const created = await step({
    label: "token create (child)",
    method: "POST",
    path: "auth/token/create",
    body: { policies: ["reader"], ttl: "1h" },
    token: "root",
    status: 200,
  });
  run.childToken = created.json?.auth?.client_token ?? "";
  run.childAccessor = created.json?.auth?.accessor ?? "";
  await step({
    label: "KV v2 read as child",
    method: "GET",
    path: "secret/data/app",
    token: "child",
    status: 200,
  });
  await step({
    label: "lookup-self as child",
    method: "GET",
    path: "auth/token/lookup-self",
    token: "child",
    status: 200,
  });
  const rootSelf = await step({
    label: "lookup-self as root",
    method: "GET",
    path: "auth/token/lookup-self",
    token: "root",
    status: 200,
  });
  run.rootAccessor = rootSelf.json?.data?.accessor ?? "";
  await step({
    label: "KV v2 read without token",
    method: "GET",
    path: "secret/data/app",
    token: "none",
    status: 403,
  });
  await step({
    label: "KV v2 read with a bogus token",
    method: "GET",
    path: "secret/data/app",
    token: "bogus",
    status: 403,
  });
  await step({
    label: "KV v2 write as child (denied)",
    method: "PUT",
    path: "secret/data/app",
    body: { data: { password: sec.kvPassword } },
    token: "child",
    status: 403,
  });
  await step({ label: "sys/mounts", method: "GET", path: "sys/mounts", token: "root", status: 200 });
  await step({ label: "sys/audit", method: "GET", path: "sys/audit", token: "root", status: 200 });
  const h1 = await step({
    label: "audit-hash of the password",
    method: "PUT",
    path: "sys/audit-hash/file",
    body: { input: sec.kvPassword },
    token: "root",
    status: 200,
  });
  run.hashOfPassword = h1.json?.data?.hash ?? h1.json?.hash ?? "";
  const h2 = await step({
    label: "audit-hash of the child token",
    method: "PUT",
    path: "sys/audit-hash/file",
    body: { input: run.childToken },
    token: "root",
    status: 200,
  });
  run.hashOfChild = h2.json?.data?.hash ?? h2.json?.hash ?? "";
  await step({
    label: "ui mounts listing with token",
    method: "GET",
    path: "sys/internal/ui/mounts",
    token: "root",
    status: 200,
  });
  // An unauthenticated path of the router: audited with no token and OpenBao's policy_results.
  await step({
    label: "ui mounts listing without token",
    method: "GET",
    path: "sys/internal/ui/mounts",
    token: "none",
    status: 200,
  });
  await step({
    label: "ui mounts with token",
    method: "GET",
    path: "sys/internal/ui/mounts/secret",
    token: "root",
    status: 200,
  });
  await step({
    label: "ui mounts without token",
    method: "GET",
    path: "sys/internal/ui/mounts/secret",
    token: "none",
    // An unauthenticated path of the router, yet a mount's details need a token that can see
    // it: OpenBao answers 403 and audits it as such.
    status: 403,
  });
  await step({
    label: "KV v2 write without data (400)",
    method: "PUT",
    path: "secret/data/app",
    body: {},
    token: "root",
    status: 400,
  });
  await step({ label: "no mount (404)", method: "GET", path: "nomount/here", token: "root", status: 404 });
  // Tokens and accessors sent in request bodies (request.data is hashed like any data).
  await step({
    label: "token lookup (token in the body)",
    method: "POST",
    path: "auth/token/lookup",
    body: { token: run.childToken },
    token: "root",
    status: 200,
  });
  await step({
    label: "token lookup-accessor",
    method: "POST",
    path: "auth/token/lookup-accessor",
    body: { accessor: run.childAccessor },
    token: "root",
    status: 200,
  });
  await step({
    label: "token renew (token in the body)",
    method: "POST",
    path: "auth/token/renew",
    body: { token: run.childToken, increment: "30m" },
    token: "root",
    status: 200,
  });
  await step({
    label: "token revoke (token in the body)",
    method: "POST",
    path: "auth/token/revoke",
    body: { token: run.childToken },
    token: "root",
    status: 204,
  });
  // A token's metadata is written as it is, by OpenBao too (its audit hashes the token and the
  // accessor of auth, not the metadata): the values are fixed here and compared, not scanned for.
  const meta = await step({
    label: "token create (orphan, metadata, num_uses)",
    method: "POST",
    path: "auth/token/create-orphan",
    body: {
      policies: ["reader"],
      meta: { team: "payments", owner: "alice" },
      display_name: "svc",
      num_uses: 5,
    },
    token: "root",
    status: 200,
  });
  run.metaToken = meta.json?.auth?.client_token ?? "";
  await step({
    label: "KV v2 read as the metadata token",
    method: "GET",
    path: "secret/data/app",
    token: "meta",
    status: 200,
  });
  await step({
    label: "lookup-self as the metadata token",
    method: "GET",
    path: "auth/token/lookup-self",
    token: "meta",
    status: 200,
  });
  // A second device, enabled and disabled again (the main log records both requests).
  await step({
    label: "enable a second device",
    method: "PUT",
    path: "sys/audit/second",
    body: { type: "file", description: "a second one", options: { file_path: `${s.auditFile}.second` } },
    token: "root",
    status: 204,
  });
  await step({
    label: "disable the second device",
    method: "DELETE",
    path: "sys/audit/second",
    token: "root",
    status: 204,
  });
  await step({
    label: "audit-hash on no device (400)",
    method: "PUT",
    path: "sys/audit-hash/nodevice",
    body: { input: sec.kvPassword },
    token: "root",
    status: 400,
  });
  // Check-and-set: a match writes version 3, a stale one is refused (400).
  await step({
    label: "KV v2 write with cas",
    method: "PUT",
    path: "secret/data/app",
    body: { options: { cas: 2 }, data: { password: sec.kvPassword, rotated: true, port: 5432 } },
    token: "root",
    status: 200,
  });
  await step({
    label: "KV v2 write with a stale cas (400)",
    method: "PUT",
    path: "secret/data/app",
    body: { options: { cas: 2 }, data: { password: sec.kvPassword } },
    token: "root",
    status: 400,
  });
  await step({
    label: "periodic token create",
    method: "POST",
    path: "auth/token/create",
    body: { policies: ["reader"], period: "2h", renewable: true },
    token: "root",
    status: 200,
  });
  await step({
    label: "capabilities-self",
    method: "POST",
    path: "sys/capabilities-self",
    body: { paths: ["secret/data/app", "sys/mounts"] },
    token: "root",
    status: 200,
  });
  // More refusals of the system backend (how each is recorded — with or without an outer
  // error — depends on how OpenBao's handler refuses it).
  await step({
    label: "mount on a path in use (400)",
    method: "POST",
    path: "sys/mounts/secret",
    body: { type: "kv", options: { version: "2" } },
    token: "root",
    status: 400,
  });
  await step({
    label: "mount of an unknown type (400)",
    method: "POST",
    path: "sys/mounts/nothing",
    body: { type: "no-such-engine" },
    token: "root",
    status: 400,
  });
  await step({
    label: "enable a device on a path in use (400)",
    method: "PUT",
    path: "sys/audit/file",
    body: { type: "file", options: { file_path: `${s.auditFile}.again` } },
    token: "root",
    status: 400,
  });
  await step({
    label: "write the root policy (400)",
    method: "PUT",
    path: "sys/policies/acl/root",
    body: { policy: POLICY },
    token: "root",
    status: 400,
  });
  await step({
    label: "policy that does not parse (400)",
    method: "PUT",
    path: "sys/policies/acl/broken",
    body: { policy: 'path "x" { capabilities = ' },
    token: "root",
    status: 400,
  });
  await step({
    label: "mount KV v1",
    method: "POST",
    path: "sys/mounts/kv1",
    body: { type: "kv", options: { version: "1" } },
    token: "root",
    status: 204,
  });
  await step({
    label: "KV v1 write",
    method: "PUT",
    path: "kv1/db",
    body: {
      password: sec.kv1Password,
      nested: { deep: sec.nestedSecret },
      list: [sec.listSecret],
      port: 5432,
    },
    token: "root",
    status: 204,
  });
  await step({ label: "KV v1 read", method: "GET", path: "kv1/db", token: "root", status: 200 });
  await step({ label: "KV v1 list", method: "LIST", path: "kv1/", token: "root", status: 200 });
  const attempt = await step({
    label: "generate-root attempt",
    method: "PUT",
    path: "sys/generate-root/attempt",
    body: {},
    token: "none",
    status: 200,
  });
  run.otp = attempt.json?.otp ?? "";
  run.nonce = attempt.json?.nonce ?? "";
  const update = await step({
    label: "generate-root update",
    method: "PUT",
    path: "sys/generate-root/update",
    body: { key: s.unsealKey, nonce: run.nonce },
    token: "none",
    status: 200,
  });
  run.encodedToken = update.json?.encoded_token ?? update.json?.encoded_root_token ?? "";
  run.generatedRoot = decodeRootToken(run.encodedToken, run.otp);
  // A rekey hands out new unseal shares in its answer: the record must carry them hashed only.
  const oldShare = { base64: s.unsealKey, hex: s.unsealKeyHex };
  const rekeyInit = await step({
    label: "rekey init",
    method: "PUT",
    path: "sys/rekey/init",
    body: { secret_shares: 1, secret_threshold: 1 },
    token: "none",
    status: 200,
  });
  const rekeyed = await step({
    label: "rekey update",
    method: "PUT",
    path: "sys/rekey/update",
    body: { key: s.unsealKey, nonce: rekeyInit.json?.nonce ?? "" },
    token: "none",
    status: 200,
  });
  if (typeof rekeyed.json?.keys_base64?.[0] === "string") {
    s.unsealKey = rekeyed.json.keys_base64[0];
    s.unsealKeyHex = rekeyed.json.keys?.[0] ?? "";
  }
  await step({ label: "seal", method: "PUT", path: "sys/seal", token: "root", status: 204 });
  // Not audited (sealed); with the rekeyed share, which the scan covers too.
  const u = await s.http("PUT", "sys/unseal", { key: s.unsealKey }, "");
  if (u.json?.sealed !== false) run.statusProblems.push(`${s.kind}: unseal after seal answered ${u.status}`);

  run.sensitive = {
    "KV v2 password": sec.kvPassword,
    "KV v2 api_key": sec.kvApiKey,
    "KV v1 password": sec.kv1Password,
    "KV v1 nested value": sec.nestedSecret,
    "KV v1 list element": sec.listSecret,
    "root token": s.rootToken,
    "child token": run.childToken,
    "metadata token": run.metaToken,
    "bogus token": sec.bogusToken,
    "root accessor": run.rootAccessor,
    "child accessor": run.childAccessor,
    "unseal share (base64)": oldShare.base64,
    "unseal share (hex)": oldShare.hex,
    "rekeyed unseal share (base64)": s.unsealKey,
    "rekeyed unseal share (hex)": s.unsealKeyHex,
    "generate-root OTP": run.otp,
    "generate-root encoded token": run.encodedToken,
    "generated root token": run.generatedRoot,
  };
  for (const [what, v] of Object.entries(run.sensitive))
    if (v === "") run.statusProblems.push(`${s.kind}: the sequence did not get the ${what}`);
  return run;
}
