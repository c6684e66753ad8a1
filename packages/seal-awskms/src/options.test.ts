import { SealConfigError } from "@bulwark/seal";
import { configError } from "@bulwark/seal/testing";
import { tryParseDuration } from "@bulwark/settings";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AWSKMS_CONFIG_KEYS,
  checkAwsKmsSealConfig,
  checkKeyId,
  checkRegion,
  DEFAULTS,
  parseAwsKmsSealConfig,
  parseBoolean,
  parseDurationMs,
  parseEncryptionContext,
  resolveOptions,
} from "./options.js";

const KEY = "1234abcd-12ab-34cd-56ef-1234567890ab";

describe("parseAwsKmsSealConfig: Vault seal block", () => {
  it("maps Vault's key names and converts the string values of Vault's config map", () => {
    const o = parseAwsKmsSealConfig(
      {
        kms_key_id: "alias/vault",
        region: "eu-west-2",
        endpoint: "http://127.0.0.1:4599",
        access_key: "AKIDEXAMPLE",
        secret_key: "secret",
        session_token: "token",
        max_retries: "5",
        request_timeout: "2s",
        health_check_interval: "5m",
        health_check_interval_unhealthy: "30s",
        health_check_timeout: "45",
        encryption_context: "tenant=prod, cluster = east",
      },
      {},
    );
    expect(o).toMatchObject({
      kmsKeyId: "alias/vault",
      region: "eu-west-2",
      endpoint: "http://127.0.0.1:4599",
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "secret",
      sessionToken: "token",
      maxRetries: 5,
      requestTimeoutMs: 2000,
      healthCheckIntervalMs: 300_000,
      healthCheckUnhealthyIntervalMs: 30_000,
      healthCheckTimeoutMs: 45_000,
      encryptionContext: { tenant: "prod", cluster: "east" },
    });
  });

  it("applies defaults: 3 retries, 10 s request timeout, 10 min / 1 min health checks", () => {
    const o = parseAwsKmsSealConfig({ kms_key_id: KEY }, {});
    expect(o.maxRetries).toBe(DEFAULTS.maxRetries);
    expect(o.requestTimeoutMs).toBe(10_000);
    expect(o.healthCheckIntervalMs).toBe(600_000);
    expect(o.healthCheckUnhealthyIntervalMs).toBe(60_000);
    expect(o.region).toBeUndefined();
  });

  it("accepts shared_creds_file and Vault's shared_creds_filename, but not both", () => {
    expect(parseAwsKmsSealConfig({ kms_key_id: KEY, shared_creds_filename: "/c" }, {}).sharedCredsFile).toBe(
      "/c",
    );
    expect(parseAwsKmsSealConfig({ kms_key_id: KEY, shared_creds_file: "/d" }, {}).sharedCredsFile).toBe(
      "/d",
    );
    const e = configError(() =>
      parseAwsKmsSealConfig({ kms_key_id: KEY, shared_creds_file: "/c", shared_creds_filename: "/d" }, {}),
    );
    expect(e.message).toMatch(/same option/);
  });

  it("ignores the server's generic seal keys (disabled, name, priority, purpose)", () => {
    const o = parseAwsKmsSealConfig(
      { kms_key_id: KEY, disabled: "true", name: "east", priority: "1", purpose: "seal" },
      {},
    );
    expect(o.kmsKeyId).toBe(KEY);
  });

  it("rejects an unknown key, naming it and listing the known ones", () => {
    const e = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, kms_keyid: "x" }, {}));
    expect(e.field).toBe("kms_keyid");
    expect(e.message).toMatch(/check the spelling/);
    expect(e.message).toMatch(/kms_key_id/);
    const k = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, key_not_required: "true" }, {}));
    expect(k.message).toMatch(/always needs a KMS key/);
  });

  it("health_check_enabled = false turns the periodic check off", () => {
    expect(
      parseAwsKmsSealConfig({ kms_key_id: KEY, health_check_enabled: "false" }, {}).healthCheckIntervalMs,
    ).toBe(0);
    expect(
      parseAwsKmsSealConfig({ kms_key_id: KEY, health_check_interval: "0" }, {}).healthCheckIntervalMs,
    ).toBe(0);
  });
});

describe("parseAwsKmsSealConfig: environment", () => {
  it("key id: BULWARK_AWSKMS_SEAL_KEY_ID > AWSKMS_WRAPPER_KEY_ID > VAULT_AWSKMS_SEAL_KEY_ID > kms_key_id (Vault: env wins)", () => {
    const config = { kms_key_id: "alias/config" };
    const env = {
      BULWARK_AWSKMS_SEAL_KEY_ID: "alias/bulwark",
      AWSKMS_WRAPPER_KEY_ID: "alias/wrapper",
      VAULT_AWSKMS_SEAL_KEY_ID: "alias/vault",
    };
    expect(parseAwsKmsSealConfig(config, env).kmsKeyId).toBe("alias/bulwark");
    expect(parseAwsKmsSealConfig(config, { ...env, BULWARK_AWSKMS_SEAL_KEY_ID: "" }).kmsKeyId).toBe(
      "alias/wrapper",
    );
    expect(parseAwsKmsSealConfig(config, { VAULT_AWSKMS_SEAL_KEY_ID: "alias/vault" }).kmsKeyId).toBe(
      "alias/vault",
    );
    expect(parseAwsKmsSealConfig(config, {}).kmsKeyId).toBe("alias/config");
    expect(parseAwsKmsSealConfig({}, { AWSKMS_WRAPPER_KEY_ID: KEY }).kmsKeyId).toBe(KEY);
  });

  it("endpoint: BULWARK_AWSKMS_ENDPOINT > AWSKMS_ENDPOINT > AWS_KMS_ENDPOINT > endpoint", () => {
    const c = { kms_key_id: KEY, endpoint: "https://config.example" };
    expect(parseAwsKmsSealConfig(c, { AWS_KMS_ENDPOINT: "https://old.example" }).endpoint).toBe(
      "https://old.example",
    );
    expect(
      parseAwsKmsSealConfig(c, {
        AWSKMS_ENDPOINT: "https://new.example",
        AWS_KMS_ENDPOINT: "https://old.example",
      }).endpoint,
    ).toBe("https://new.example");
    expect(parseAwsKmsSealConfig(c, {}).endpoint).toBe("https://config.example");
  });

  it("region: config > AWS_REGION > AWS_DEFAULT_REGION", () => {
    expect(
      parseAwsKmsSealConfig({ kms_key_id: KEY, region: "eu-west-1" }, { AWS_REGION: "us-west-2" }).region,
    ).toBe("eu-west-1");
    expect(
      parseAwsKmsSealConfig(
        { kms_key_id: KEY },
        { AWS_REGION: "us-west-2", AWS_DEFAULT_REGION: "ap-south-1" },
      ).region,
    ).toBe("us-west-2");
    expect(parseAwsKmsSealConfig({ kms_key_id: KEY }, { AWS_DEFAULT_REGION: "ap-south-1" }).region).toBe(
      "ap-south-1",
    );
  });

  it("disallow_env_vars ignores the seal's environment variables", () => {
    const env = {
      AWSKMS_WRAPPER_KEY_ID: "alias/env",
      AWS_REGION: "us-west-2",
      AWSKMS_ENDPOINT: "https://env.example",
    };
    const o = parseAwsKmsSealConfig({ kms_key_id: "alias/config", disallow_env_vars: "true" }, env);
    expect(o.kmsKeyId).toBe("alias/config");
    expect(o.region).toBeUndefined();
    expect(o.endpoint).toBeUndefined();
    const e = configError(() => parseAwsKmsSealConfig({ disallow_env_vars: true }, env));
    expect(e.field).toBe("kms_key_id");
  });

  it("a malformed environment value is reported under the variable's name", () => {
    const e = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY }, { AWS_REGION: "US East" }));
    expect(e.field).toBe("AWS_REGION");
    const k = configError(() => parseAwsKmsSealConfig({}, { VAULT_AWSKMS_SEAL_KEY_ID: "not a key" }));
    expect(k.field).toBe("VAULT_AWSKMS_SEAL_KEY_ID");
  });
});

describe("parseAwsKmsSealConfig: bad configuration", () => {
  it("missing key id names kms_key_id and the environment variables", () => {
    const e = configError(() => parseAwsKmsSealConfig({ region: "us-east-1" }, {}));
    expect(e.field).toBe("kms_key_id");
    expect(e.message).toMatch(/BULWARK_AWSKMS_SEAL_KEY_ID/);
    const typed = configError(() => parseAwsKmsSealConfig({ region: "us-east-1", maxRetries: 1 }, {}));
    expect(typed.field).toBe("kmsKeyId");
  });

  it("unknown region format", () => {
    for (const region of ["US-EAST-1", "us_east_1", "useast1", "us-east", "eu west 2", "europe"]) {
      const e = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, region }, {}));
      expect(e.field).toBe("region");
      expect(e.message).toMatch(/us-east-1/);
    }
  });

  it("static credentials come as a pair and the messages never echo the secret", () => {
    const a = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, access_key: "AKID" }, {}));
    expect(a.field).toBe("secret_key");
    const s = configError(() =>
      parseAwsKmsSealConfig({ kms_key_id: KEY, secret_key: "TOP-SECRET-VALUE" }, {}),
    );
    expect(s.field).toBe("access_key");
    expect(s.message).not.toContain("TOP-SECRET-VALUE");
    const t = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, session_token: "TOKEN-VALUE" }, {}));
    expect(t.field).toBe("session_token");
    expect(t.message).not.toContain("TOKEN-VALUE");
    const u = configError(() =>
      parseAwsKmsSealConfig({ kms_key_id: KEY, endpoint: "https://user:PASSWORD@kms.example" }, {}),
    );
    expect(u.message).not.toContain("PASSWORD");
  });

  it("role_arn needs web_identity_token_file and the other way round", () => {
    const role = "arn:aws:iam::111122223333:role/vault";
    expect(configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, role_arn: role }, {})).message).toMatch(
      /source_profile/,
    );
    expect(
      configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, web_identity_token_file: "/t" }, {})).field,
    ).toBe("role_arn");
    expect(
      configError(() =>
        parseAwsKmsSealConfig({ kms_key_id: KEY, role_arn: "vault", web_identity_token_file: "/t" }, {}),
      ).message,
    ).toMatch(/IAM role ARN/);
    const ok = parseAwsKmsSealConfig(
      { kms_key_id: KEY, role_arn: role, web_identity_token_file: "/t", role_session_name: "vault-seal" },
      {},
    );
    expect(ok).toMatchObject({ roleArn: role, webIdentityTokenFile: "/t", roleSessionName: "vault-seal" });
  });

  it("numbers and durations out of range", () => {
    expect(configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, max_retries: "11" }, {})).field).toBe(
      "max_retries",
    );
    expect(configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, max_retries: "-1" }, {})).field).toBe(
      "max_retries",
    );
    expect(
      configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, request_timeout: "soon" }, {})).field,
    ).toBe("request_timeout");
    expect(
      configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, request_timeout: "0s" }, {})).field,
    ).toBe("request_timeout");
    expect(
      configError(() => parseAwsKmsSealConfig({ kmsKeyId: KEY, requestTimeoutMs: "10s" }, {})).field,
    ).toBe("requestTimeoutMs");
  });

  it("a duration out of range is reported with its unit, not as a bare millisecond count", () => {
    const err = configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, request_timeout: "20m" }, {}));
    expect(err.field).toBe("request_timeout");
    expect(err.message).toContain("from 1 ms to 600000 ms");
    expect(err.message).toContain("got 1200000 ms");
    const typed = configError(() => parseAwsKmsSealConfig({ kmsKeyId: KEY, healthCheckTimeoutMs: 0 }, {}));
    expect(typed.message).toContain("got 0 ms");
  });

  it("endpoint must be an http(s) URL", () => {
    expect(
      configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, endpoint: "kms.local:4599" }, {})).field,
    ).toBe("endpoint");
    expect(
      configError(() => parseAwsKmsSealConfig({ kms_key_id: KEY, endpoint: "ftp://kms.local" }, {})).message,
    ).toMatch(/http or https/);
  });

  it("accepts typed options (camelCase) through the same factory", () => {
    const o = parseAwsKmsSealConfig(
      {
        kmsKeyId: KEY,
        region: "eu-west-2",
        maxRetries: 1,
        requestTimeoutMs: 250,
        encryptionContext: { a: "b" },
      },
      {},
    );
    expect(o).toMatchObject({
      kmsKeyId: KEY,
      region: "eu-west-2",
      maxRetries: 1,
      requestTimeoutMs: 250,
      encryptionContext: { a: "b" },
    });
    expect(() => resolveOptions(null as never)).toThrow(SealConfigError);
  });
});

describe("checkKeyId / checkRegion", () => {
  it("accepts key ids, ARNs and aliases", () => {
    for (const id of [
      KEY,
      "mrk-1234abcd12ab34cd56ef1234567890ab",
      "alias/vault-unseal",
      "alias/team/app_1",
      `arn:aws:kms:us-east-1:111122223333:key/${KEY}`,
      "arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/vault",
      // Vault's documented example: a Vault config must load unchanged.
      "19ec80b0-dfdd-4d97-8164-c6examplekey",
    ]) {
      expect(checkKeyId("kms_key_id", id)).toBe(id);
    }
  });

  it("rejects what KMS would not take", () => {
    for (const id of [
      "",
      "  ",
      "vault",
      "19ec80b0-dfdd-4d97-8164",
      "alias/",
      "arn:aws:kms:us-east-1:1111:key/x",
      "arn:aws:s3:::bucket",
      42,
    ]) {
      expect(() => checkKeyId("kms_key_id", id)).toThrow(SealConfigError);
    }
  });

  it("region names", () => {
    for (const r of [
      "us-east-1",
      "eu-west-2",
      "us-gov-west-1",
      "cn-northwest-1",
      "us-isob-east-1",
      "il-central-1",
    ]) {
      expect(checkRegion("region", r)).toBe(r);
    }
    for (const r of ["us-east", "east-1", "US-EAST-1", "us east 1", "", 1]) {
      expect(() => checkRegion("region", r)).toThrow(SealConfigError);
    }
  });
});

describe("parseDurationMs", () => {
  const unit = fc.constantFrom(["ms", 1], ["s", 1000], ["m", 60_000], ["h", 3_600_000]) as fc.Arbitrary<
    [string, number]
  >;

  it("sums Go duration parts (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 999 }), unit), { minLength: 1, maxLength: 4 }),
        (parts) => {
          const text = parts.map(([n, [u]]) => `${n}${u}`).join("");
          const expected = parts.reduce((sum, [n, [, ms]]) => sum + n * ms, 0);
          expect(parseDurationMs("d", text)).toBe(expected);
        },
      ),
    );
  });

  it("bare numbers and numeric strings are seconds (Vault's convention)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), (n) => {
        expect(parseDurationMs("d", n)).toBe(n * 1000);
        expect(parseDurationMs("d", String(n))).toBe(n * 1000);
      }),
    );
    expect(parseDurationMs("d", "1.5")).toBe(1500);
    expect(parseDurationMs("d", "1m30s")).toBe(90_000);
  });

  it("reads the settings kernel's grammar, as every other duration setting does", () => {
    expect(parseDurationMs("d", "7d")).toBe(7 * 86_400_000);
    expect(parseDurationMs("d", ".5s")).toBe(500);
    expect(parseDurationMs("d", "+5s")).toBe(5000);
    expect(parseDurationMs("d", "1.5h")).toBe(5_400_000);
    expect(
      parseAwsKmsSealConfig({ kms_key_id: KEY, health_check_interval: "1d" }, {}).healthCheckIntervalMs,
    ).toBe(86_400_000);
    expect(configError(() => parseDurationMs("request_timeout", "-5s")).message).toMatch(
      /cannot be negative/,
    );
  });

  it("anything else is a SealConfigError naming the field (property)", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(tryParseDuration(s) === undefined);
        const e = configError(() => parseDurationMs("request_timeout", s));
        expect(e.field).toBe("request_timeout");
      }),
    );
    expect(() => parseDurationMs("d", -1)).toThrow(SealConfigError);
    expect(() => parseDurationMs("d", Number.NaN)).toThrow(SealConfigError);
    expect(() => parseDurationMs("d", {})).toThrow(SealConfigError);
  });
});

describe("parseEncryptionContext", () => {
  const token = fc.stringMatching(/^[a-zA-Z0-9_.:/-]{1,12}$/).filter((k) => !/^aws/i.test(k));

  it("an object and its k=v string form parse to the same map (property)", () => {
    fc.assert(
      fc.property(fc.dictionary(token, token, { minKeys: 1, maxKeys: 5 }), (ctx) => {
        const text = Object.entries(ctx)
          .map(([k, v]) => `${k}=${v}`)
          .join(",");
        expect(parseEncryptionContext("encryption_context", text)).toEqual({ ...ctx });
        expect(parseEncryptionContext("encryption_context", { ...ctx })).toEqual({ ...ctx });
        expect(parseEncryptionContext("encryption_context", JSON.stringify(ctx))).toEqual({ ...ctx });
      }),
    );
  });

  it("rejects reserved, empty, duplicate and non-string entries", () => {
    expect(() => parseEncryptionContext("c", { "aws:tenant": "x" })).toThrow(/reserves/);
    expect(() => parseEncryptionContext("c", "=x")).toThrow(SealConfigError);
    expect(() => parseEncryptionContext("c", "a=1,a=2")).toThrow(/twice/);
    expect(() => parseEncryptionContext("c", "novalue")).toThrow(/key=value/);
    expect(() => parseEncryptionContext("c", { a: { b: 1 } })).toThrow(SealConfigError);
    expect(() => parseEncryptionContext("c", ["a"])).toThrow(SealConfigError);
    expect(() => parseEncryptionContext("c", "{not json")).toThrow(/JSON/);
    expect(parseEncryptionContext("c", { n: 1, b: true })).toEqual({ n: "1", b: "true" });
    const proto = parseEncryptionContext("c", "__proto__=x");
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(["__proto__"]);
  });
});

describe("parseBoolean", () => {
  it("reads booleans and Vault's string forms", () => {
    expect(parseBoolean("b", true)).toBe(true);
    expect(parseBoolean("b", "FALSE")).toBe(false);
    expect(parseBoolean("b", "1")).toBe(true);
    expect(parseBoolean("b", "0")).toBe(false);
    expect(() => parseBoolean("b", "yes")).toThrow(SealConfigError);
  });
});

describe("checkAwsKmsSealConfig (every problem of the block at once)", () => {
  it("reports unknown keys, bad values and missing pairs together, in check order", () => {
    const issues = checkAwsKmsSealConfig(
      {
        kms_key_id: "not a key",
        regoin: "us-east-1",
        request_timeout: "soon",
        access_key: "AKID",
        max_retries: "11",
        endpoint: "kms.local:4599",
      },
      {},
    );
    expect(issues.map((i) => i.field)).toEqual([
      "regoin",
      "request_timeout",
      "max_retries",
      "kms_key_id",
      "secret_key",
      "endpoint",
    ]);
    expect(issues[0]?.message).toMatch(/^is not an awskms seal setting \(check the spelling\); known keys:/);
    expect(issues[1]?.message).toMatch(/"soon" is not a duration/);
    expect(issues[3]?.message).toMatch(/is not a KMS key reference/);
  });

  it("a missing key id is reported once, with the rest", () => {
    expect(checkAwsKmsSealConfig({ region: "mars" }, {}).map((i) => i.field)).toEqual([
      "kms_key_id",
      "region",
    ]);
  });

  it("the first problem is the error parseAwsKmsSealConfig throws", () => {
    for (const config of [
      { kms_key_id: KEY, max_retries: "11", region: "mars" },
      { region: "mars", request_timeout: "20m" },
      { kms_key_id: KEY, secret_key: "S", role_arn: "x" },
      { kms_key_id: "bad", bogus: 1 },
    ]) {
      const err = configError(() => parseAwsKmsSealConfig(config, {}));
      expect(checkAwsKmsSealConfig(config, {})[0]?.field).toBe(err.field);
    }
  });

  it("a valid block has no issues; every accepted key is listed", () => {
    expect(checkAwsKmsSealConfig({ kms_key_id: KEY, region: "us-east-1", disabled: "true" }, {})).toEqual([]);
    for (const k of ["kms_key_id", "kmsKeyId", "health_check_enabled", "disabled", "shared_creds_file"])
      expect(AWSKMS_CONFIG_KEYS).toContain(k);
  });

  it("agrees with parseAwsKmsSealConfig on any block: no issues iff it parses, else its error first (property)", () => {
    const value = fc.oneof(
      fc.constantFrom(
        "",
        KEY,
        "alias/x",
        "bad",
        "us-east-1",
        "mars",
        "10s",
        "soon",
        "20m",
        "11",
        "1",
        "true",
        "http://h:1",
      ),
      fc.integer({ min: -1, max: 100 }),
      fc.boolean(),
    );
    const key = fc.constantFrom(
      "kms_key_id",
      "region",
      "endpoint",
      "access_key",
      "secret_key",
      "session_token",
      "role_arn",
      "web_identity_token_file",
      "request_timeout",
      "max_retries",
      "health_check_enabled",
      "kmsKeyId",
      "regoin",
    );
    fc.assert(
      fc.property(fc.dictionary(key, value), (block) => {
        const issues = checkAwsKmsSealConfig(block, {});
        let thrown: SealConfigError | undefined;
        try {
          parseAwsKmsSealConfig(block, {});
        } catch (err) {
          expect(err).toBeInstanceOf(SealConfigError);
          thrown = err as SealConfigError;
        }
        if (thrown === undefined) expect(issues).toEqual([]);
        else expect(issues[0]?.field).toBe(thrown.field);
      }),
    );
  });
});
