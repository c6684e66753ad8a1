/**
 * "The same answer in every block": one table of inputs fed to a boolean, a duration and a secret
 * setting of every provider's config parser and of the server's own blocks. Each must accept or
 * refuse an input exactly as the settings kernel does (and read the same value), apart from the
 * differences listed in KNOWN_DIFFERENCES — each of which existing tests assert, so it stays until
 * those tests change. A listed difference that no longer differs fails too.
 */
import { checkAwsKmsSealConfig, parseAwsKmsSealConfig } from "@bulwark/seal-awskms";
import { checkCloudHsmConfig, parseCloudHsmConfig } from "@bulwark/seal-cloudhsm";
import { checkPkcs11Config, parsePkcs11Config, resolvePkcs11Options } from "@bulwark/seal-pkcs11";
import { parseSecret, tryParseBool, tryParseDuration } from "@bulwark/settings";
import { checkConsulConfig, parseConsulConfig } from "@bulwark/storage-consul";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { parseConfig } from "./load.js";

const ENV = { X: "from-x" };

const INPUTS: readonly unknown[] = [
  "T",
  "yes",
  "1d",
  ".5s",
  "90",
  "env://X",
  "env://UNSET",
  "file:///missing",
  "string://env://X",
  "string://",
  "true",
  "f",
  "0",
  " TRUE ",
  "tRue",
  "1.5h",
  "1h30m",
  "-5s",
  "1.5d",
  1,
  0,
  2,
  90,
  true,
  false,
];

type Kind = "boolean" | "duration" | "secret";
/** What a parser made of an input: refused with a problem naming the setting, or accepted with a value. */
type Answer = { ok: false; message: string } | { ok: true; value: unknown };

interface Probe {
  name: string;
  kind: Kind;
  /** The setting every refusal must name. */
  field: string;
  answer(value: unknown): Answer;
}

function fromIssues(
  issues: readonly { field: string; message: string }[],
  field: string,
  value: () => unknown,
): Answer {
  const issue = issues.find((i) => i.field === field);
  return issue === undefined ? { ok: true, value: value() } : { ok: false, message: issue.message };
}

const PKCS11 = { lib: "/usr/lib/softhsm/libsofthsm2.so", token_label: "t", pin: "1234", key_label: "k" };
const CLOUDHSM = { key_label: "k", pin: "cu:pw" };
const CLUSTER = { cluster_id: "cluster-abc123", region: "us-east-1" };
const AWSKMS = { kms_key_id: "alias/bulwark" };

function serverListener(value: unknown): Answer {
  const hcl = `storage "inmem" {}
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_cert_file = "cert.pem"
  tls_key_file = "key.pem"
  tls_disable = ${JSON.stringify(value)}
}
`;
  try {
    return { ok: true, value: parseConfig(hcl, "settings.hcl", "hcl").listeners[0]?.tlsDisable };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problem = err.problems.find((p) => p.message.includes("tls_disable"));
    if (problem === undefined) throw err;
    return { ok: false, message: problem.message };
  }
}

const PROBES: readonly Probe[] = [
  {
    name: "pkcs11 generate_key",
    kind: "boolean",
    field: "generate_key",
    answer: (v) =>
      fromIssues(
        checkPkcs11Config({ ...PKCS11, generate_key: v }, ENV),
        "generate_key",
        () => resolvePkcs11Options(parsePkcs11Config({ ...PKCS11, generate_key: v }, ENV)).generateKey,
      ),
  },
  {
    name: "pkcs11 pin",
    kind: "secret",
    field: "pin",
    answer: (v) =>
      fromIssues(
        checkPkcs11Config({ ...PKCS11, pin: v }, ENV),
        "pin",
        () => parsePkcs11Config({ ...PKCS11, pin: v }, ENV).pin,
      ),
  },
  {
    name: "cloudhsm require_active_cluster",
    kind: "boolean",
    field: "require_active_cluster",
    answer: (v) =>
      fromIssues(
        checkCloudHsmConfig({ ...CLOUDHSM, ...CLUSTER, require_active_cluster: v }, ENV),
        "require_active_cluster",
        () => undefined,
      ),
  },
  {
    name: "cloudhsm password",
    kind: "secret",
    field: "password",
    answer: (v) =>
      fromIssues(
        checkCloudHsmConfig({ key_label: "k", user: "cu", password: v }, ENV),
        "password",
        () => parseCloudHsmConfig({ key_label: "k", user: "cu", password: v }, ENV).password,
      ),
  },
  {
    name: "cloudhsm secret_key",
    kind: "secret",
    field: "secret_key",
    answer: (v) =>
      fromIssues(
        checkCloudHsmConfig({ ...CLOUDHSM, ...CLUSTER, access_key: "AKIAEXAMPLE", secret_key: v }, ENV),
        "secret_key",
        () =>
          parseCloudHsmConfig({ ...CLOUDHSM, ...CLUSTER, access_key: "AKIAEXAMPLE", secret_key: v }, ENV)
            .secretKey,
      ),
  },
  {
    name: "awskms health_check_enabled",
    kind: "boolean",
    field: "health_check_enabled",
    answer: (v) =>
      fromIssues(
        checkAwsKmsSealConfig({ ...AWSKMS, health_check_enabled: v }, ENV),
        "health_check_enabled",
        () => parseAwsKmsSealConfig({ ...AWSKMS, health_check_enabled: v }, ENV).healthCheckIntervalMs !== 0,
      ),
  },
  {
    name: "awskms health_check_interval",
    kind: "duration",
    field: "health_check_interval",
    answer: (v) =>
      fromIssues(
        checkAwsKmsSealConfig({ ...AWSKMS, health_check_interval: v }, ENV),
        "health_check_interval",
        () => parseAwsKmsSealConfig({ ...AWSKMS, health_check_interval: v }, ENV).healthCheckIntervalMs,
      ),
  },
  {
    name: "awskms secret_key",
    kind: "secret",
    field: "secret_key",
    answer: (v) =>
      fromIssues(
        checkAwsKmsSealConfig({ ...AWSKMS, access_key: "AKIAEXAMPLE", secret_key: v }, ENV),
        "secret_key",
        () =>
          parseAwsKmsSealConfig({ ...AWSKMS, access_key: "AKIAEXAMPLE", secret_key: v }, ENV).secretAccessKey,
      ),
  },
  {
    name: "consul tls_skip_verify",
    kind: "boolean",
    field: "tls_skip_verify",
    answer: (v) =>
      fromIssues(
        checkConsulConfig({ tls_skip_verify: v }, ENV),
        "tls_skip_verify",
        () => parseConsulConfig({ tls_skip_verify: v }, ENV).options.tlsSkipVerify,
      ),
  },
  {
    // retry_budget takes 0 and has no upper bound: only the grammar decides.
    name: "consul retry_budget",
    kind: "duration",
    field: "retry_budget",
    answer: (v) =>
      fromIssues(
        checkConsulConfig({ retry_budget: v }, ENV),
        "retry_budget",
        () => parseConsulConfig({ retry_budget: v }, ENV).options.retryBudgetMs,
      ),
  },
  {
    name: "consul token",
    kind: "secret",
    field: "token",
    answer: (v) =>
      fromIssues(
        checkConsulConfig({ token: v }, ENV),
        "token",
        () => parseConsulConfig({ token: v }, ENV).options.token,
      ),
  },
  { name: "server listener tls_disable", kind: "boolean", field: "tls_disable", answer: serverListener },
];

/** The kernel's answer for a kind of setting. */
function kernel(kind: Kind, v: unknown): Answer {
  if (kind === "boolean") {
    const b = tryParseBool(v);
    return b === undefined ? { ok: false, message: "" } : { ok: true, value: b };
  }
  if (kind === "duration") {
    const ms = tryParseDuration(v);
    return ms === undefined ? { ok: false, message: "" } : { ok: true, value: ms };
  }
  try {
    return { ok: true, value: parseSecret("secret", v, ENV) };
  } catch {
    return { ok: false, message: "" };
  }
}

/**
 * Where a block answers otherwise than the kernel, and the existing test that asserts it. One
 * exception, kept on purpose: the Consul token refuses a number where every other secret setting
 * (like Vault) takes a whole number as its text. A Consul ACL token is a UUID, never a number, so
 * refusing one is safe (it catches a value written in the wrong place).
 */
const KNOWN_DIFFERENCES: ReadonlyMap<string, { inputs: readonly unknown[]; why: string }> = new Map([
  [
    "consul token",
    {
      inputs: [1, 0, 2, 90],
      why: 'storage-consul config.test.ts asserts { token: 42 } → "expected a string, got number 42" (Vault and the seal blocks take the number as its text; a Consul token is never numeric)',
    },
  ],
]);

/**
 * One environment-versus-block rule, Vault's: a provider's own variable overrides the block's
 * setting; a general-purpose one (AWS_REGION) only fills in what the block leaves unset.
 */
describe("the same precedence in every block", () => {
  const cases: ReadonlyArray<{
    name: string;
    read: (env: Record<string, string>) => unknown;
    own: Record<string, string>;
    block: unknown;
  }> = [
    {
      name: "pkcs11 lib (BULWARK_HSM_LIB)",
      read: (env) => parsePkcs11Config(PKCS11, env).lib,
      own: { BULWARK_HSM_LIB: "/env/lib.so" },
      block: PKCS11.lib,
    },
    {
      name: "pkcs11 key_label (VAULT_HSM_KEY_LABEL)",
      read: (env) => parsePkcs11Config(PKCS11, env).keyLabel,
      own: { VAULT_HSM_KEY_LABEL: "env-key" },
      block: PKCS11.key_label,
    },
    {
      name: "cloudhsm pin (VAULT_HSM_PIN)",
      read: (env) => parseCloudHsmConfig(CLOUDHSM, env).pin,
      own: { VAULT_HSM_PIN: "env:pw" },
      block: CLOUDHSM.pin,
    },
    {
      name: "cloudhsm cluster_id (BULWARK_CLOUDHSM_CLUSTER_ID)",
      read: (env) => parseCloudHsmConfig({ ...CLOUDHSM, ...CLUSTER }, env).clusterId,
      own: { BULWARK_CLOUDHSM_CLUSTER_ID: "cluster-fromenv1" },
      block: CLUSTER.cluster_id,
    },
    {
      name: "awskms kms_key_id (VAULT_AWSKMS_SEAL_KEY_ID)",
      read: (env) => parseAwsKmsSealConfig(AWSKMS, env).kmsKeyId,
      own: { VAULT_AWSKMS_SEAL_KEY_ID: "alias/from-env" },
      block: AWSKMS.kms_key_id,
    },
  ];
  for (const c of cases) {
    it(`${c.name} overrides the block; unset or blank, the block is read`, () => {
      expect(c.read(c.own)).toBe(Object.values(c.own)[0]);
      expect(c.read({})).toBe(c.block);
      const blank = Object.fromEntries(Object.keys(c.own).map((k) => [k, " "]));
      expect(c.read(blank)).toBe(c.block);
    });
  }

  it("AWS_REGION only fills in (cloudhsm, awskms)", () => {
    const env = { AWS_REGION: "eu-central-1" };
    expect(parseCloudHsmConfig({ ...CLOUDHSM, ...CLUSTER }, env).region).toBe(CLUSTER.region);
    expect(parseAwsKmsSealConfig({ ...AWSKMS, region: "us-west-2" }, env).region).toBe("us-west-2");
  });
});

describe("the same answer in every block", () => {
  for (const probe of PROBES) {
    it(`${probe.name} (${probe.kind}) answers as the settings kernel`, () => {
      const differs: unknown[] = [];
      for (const input of INPUTS) {
        const got = probe.answer(input);
        const want = kernel(probe.kind, input);
        if (got.ok !== want.ok) {
          differs.push(input);
          continue;
        }
        if (got.ok && want.ok) {
          const value =
            probe.kind === "duration" && probe.name.startsWith("awskms")
              ? Math.round(want.value as number)
              : want.value;
          if (probe.kind !== "boolean" || got.value !== undefined)
            expect(got.value, `${probe.name} ← ${JSON.stringify(input)}`).toEqual(value);
        }
        if (!got.ok && probe.kind === "secret" && typeof input === "string" && input.startsWith("env://")) {
          expect(got.message, `${probe.name} ← ${input}`).toMatch(
            /environment variable UNSET \(from env:\/\/UNSET\) is not set; export UNSET/,
          );
        }
        if (!got.ok && probe.kind === "secret" && input === "file:///missing") {
          expect(got.message, probe.name).toMatch(
            /cannot read \/missing \(ENOENT.*\); fix the file:\/\/ path/,
          );
        }
      }
      expect(differs).toEqual(KNOWN_DIFFERENCES.get(probe.name)?.inputs ?? []);
    });
  }

  it("has one exception, the Consul token's refusal of a number (documented in the settings README)", () => {
    expect([...KNOWN_DIFFERENCES.keys()]).toEqual(["consul token"]);
    expect(KNOWN_DIFFERENCES.get("consul token")?.inputs.every((v) => typeof v === "number")).toBe(true);
  });

  it("covers a boolean, a duration and a secret setting wherever the block has one", () => {
    const kinds = (prefix: string) =>
      new Set(PROBES.filter((p) => p.name.startsWith(prefix)).map((p) => p.kind));
    expect(kinds("pkcs11")).toEqual(new Set(["boolean", "secret"])); // the pkcs11 block has no duration
    expect(kinds("cloudhsm")).toEqual(new Set(["boolean", "secret"])); // nor has CloudHSM's
    expect(kinds("awskms")).toEqual(new Set(["boolean", "duration", "secret"]));
    expect(kinds("consul")).toEqual(new Set(["boolean", "duration", "secret"]));
    expect(kinds("server")).toEqual(new Set(["boolean"])); // the server's blocks have no duration or secret
  });
});
