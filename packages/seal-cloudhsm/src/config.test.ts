import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { configError } from "@bulwark/seal/testing";
import { CKM_AES_GCM, createPkcs11Seal } from "@bulwark/seal-pkcs11";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { CloudHsmSeal, createCloudHsmSeal } from "./cloudhsm-seal.js";
import {
  CLOUDHSM_CONFIG_KEYS,
  CLOUDHSM_DEFAULT_LIB,
  CLOUDHSM_FIRST_SLOT,
  CLOUDHSM_GCM_MAX_BYTES,
  checkCloudHsmConfig,
  parseCloudHsmConfig,
  resolveCloudHsmOptions,
  splitCloudHsmPin,
} from "./config.js";

const BLOCK = { pin: "crypto_user:Passw0rd!", key_label: "vault-key" };

/** The options the PKCS#11 seal underneath runs with (its protected, resolved config). */
function underlying(seal: CloudHsmSeal) {
  return (seal as unknown as { config: Record<string, unknown> }).config;
}

const tmp = mkdtempSync(join(tmpdir(), "cloudhsm-config-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("CloudHSM PIN", () => {
  it("a PIN without ':' is refused at config time, with the format in the message and not the PIN", () => {
    const err = configError(() => createCloudHsmSeal({ ...BLOCK, pin: "Sup3rSecretValue" }, {}));
    expect(err.field).toBe("pin");
    expect(err.message).toContain('"<crypto user>:<password>"');
    expect(err.message).not.toContain("Sup3rSecretValue");
    expect(configError(() => new CloudHsmSeal({ pin: "Sup3rSecretValue", keyLabel: "k" })).field).toBe("pin");
  });

  it("a PIN with no user or no password is refused", () => {
    expect(configError(() => splitCloudHsmPin("pin", ":Passw0rd!")).message).toMatch(/no crypto user/);
    expect(configError(() => splitCloudHsmPin("pin", "crypto_user:")).message).toMatch(/no password/);
    expect(splitCloudHsmPin("pin", "cu:pa:ss")).toEqual({ user: "cu", password: "pa:ss" });
  });

  it("any PIN without ':' is refused and never echoed", () => {
    fc.assert(
      fc.property(
        // Longer than any word of the message, so "not echoed" cannot pass or fail by coincidence.
        fc.string({ minLength: 12 }).filter((s) => !s.includes(":")),
        (pin) => {
          const err = configError(() => splitCloudHsmPin("pin", pin));
          expect(err.message).not.toContain(pin);
        },
      ),
    );
  });

  it("user + password make the PIN '<user>:<password>'", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((s) => !s.includes(":")),
        fc.string({ minLength: 1 }),
        (user, password) => {
          const { pkcs11, profile } = resolveCloudHsmOptions({ user, password, keyLabel: "k" });
          expect(pkcs11.pin).toBe(`${user}:${password}`);
          expect(profile.user).toBe(user);
        },
      ),
    );
  });

  it("pin together with user/password, a user without password, a user with ':' are refused", () => {
    expect(
      configError(() => createCloudHsmSeal({ ...BLOCK, user: "cu", password: "pw" }, {})).message,
    ).toMatch(/either pin or user \+ password/);
    expect(configError(() => createCloudHsmSeal({ key_label: "k", user: "cu" }, {})).field).toBe("password");
    expect(configError(() => createCloudHsmSeal({ key_label: "k", password: "pw" }, {})).field).toBe("user");
    expect(
      configError(() => createCloudHsmSeal({ key_label: "k", user: "c:u", password: "pw" }, {})).field,
    ).toBe("user");
    const none = configError(() => createCloudHsmSeal({ key_label: "k" }, {}));
    expect(none.field).toBe("pin");
    expect(none.message).toMatch(/BULWARK_CLOUDHSM_USER/);
  });

  it("password and pin from env:// and file:// references", () => {
    const file = join(tmp, "password");
    writeFileSync(file, "fr0m-file\n");
    const a = createCloudHsmSeal({ key_label: "k", user: "cu", password: `file://${file}` }, {});
    expect(underlying(a).pin).toBe("cu:fr0m-file");
    const b = createCloudHsmSeal(
      { key_label: "k", user: "env://CU_NAME", password: "env://CU_PW" },
      {
        CU_NAME: "alice",
        CU_PW: "s3cret",
      },
    );
    expect(underlying(b).pin).toBe("alice:s3cret");
    const c = createCloudHsmSeal({ key_label: "k", pin: "env://HSM_PIN" }, { HSM_PIN: "bob:pw" });
    expect(underlying(c).pin).toBe("bob:pw");
    expect(configError(() => createCloudHsmSeal({ key_label: "k", pin: "env://NOPE" }, {})).message).toMatch(
      /NOPE.*not set/,
    );
    expect(
      configError(() => createCloudHsmSeal({ key_label: "k", user: "cu", password: "file:///no/such" }, {}))
        .field,
    ).toBe("password");
    // A referenced PIN is checked for the format too.
    expect(
      configError(() => createCloudHsmSeal({ key_label: "k", pin: "env://P" }, { P: "nocolon" })).field,
    ).toBe("pin");
  });

  it("precedence (Vault's rule): VAULT_HSM_PIN, then BULWARK_CLOUDHSM_USER/PASSWORD, override the block's pin or user+password", () => {
    const env = {
      VAULT_HSM_PIN: "env_user:env_pw",
      BULWARK_CLOUDHSM_USER: "cu_env",
      BULWARK_CLOUDHSM_PASSWORD: "pw_env",
    };
    expect(underlying(createCloudHsmSeal({ key_label: "k", user: "blk", password: "bp" }, env)).pin).toBe(
      "env_user:env_pw",
    );
    expect(underlying(createCloudHsmSeal({ key_label: "k" }, env)).pin).toBe("env_user:env_pw");
    const { VAULT_HSM_PIN: _, ...rest } = env;
    expect(underlying(createCloudHsmSeal({ key_label: "k" }, rest)).pin).toBe("cu_env:pw_env");
  });

  it("the CU variables override the block's credentials, whichever spelling the block uses; the cluster variables override too", () => {
    const cu = { BULWARK_CLOUDHSM_USER: "cu_env", BULWARK_CLOUDHSM_PASSWORD: "pw_env" };
    expect(underlying(createCloudHsmSeal({ key_label: "k", pin: "blk:bp" }, cu)).pin).toBe("cu_env:pw_env");
    expect(underlying(createCloudHsmSeal({ key_label: "k", user: "blk", password: "bp" }, cu)).pin).toBe(
      "cu_env:pw_env",
    );
    // One CU variable overrides its own setting only.
    expect(
      underlying(
        createCloudHsmSeal(
          { key_label: "k", user: "blk", password: "bp" },
          { BULWARK_CLOUDHSM_PASSWORD: "pw2" },
        ),
      ).pin,
    ).toBe("blk:pw2");
    // The block's pin against a PIN variable: the variable.
    expect(
      underlying(createCloudHsmSeal({ key_label: "k", pin: "blk:bp" }, { BULWARK_HSM_PIN: "e:p" })).pin,
    ).toBe("e:p");
    const cluster = {
      key_label: "k",
      pin: "u:p",
      cluster_id: "cluster-blockblock1",
      region: "eu-west-1",
      endpoint: "http://block",
    };
    const options = parseCloudHsmConfig(cluster, {
      BULWARK_CLOUDHSM_CLUSTER_ID: "cluster-envenvenv1",
      BULWARK_CLOUDHSM_ENDPOINT: "http://env",
      AWS_REGION: "us-east-2",
    });
    // AWS_REGION is general-purpose: it only fills in; the provider's own variables override.
    expect(options).toMatchObject({
      clusterId: "cluster-envenvenv1",
      endpoint: "http://env",
      region: "eu-west-1",
    });
    expect(
      parseCloudHsmConfig(cluster, { BULWARK_CLOUDHSM_REGION: "ap-south-1", AWS_REGION: "us-east-2" }).region,
    ).toBe("ap-south-1");
    expect(parseCloudHsmConfig({ ...cluster, region: undefined }, { AWS_REGION: "us-east-2" }).region).toBe(
      "us-east-2",
    );
  });
});

describe("CloudHSM profile defaults", () => {
  it("library, first-cluster slot, HSM-generated IV, 16 KiB, AES-GCM, read-write sessions", () => {
    const seal = createCloudHsmSeal(BLOCK, {});
    const cfg = underlying(seal);
    expect(cfg.lib).toBe(CLOUDHSM_DEFAULT_LIB);
    expect(cfg.slot).toBe(CLOUDHSM_FIRST_SLOT);
    expect(cfg.slot).toBe(2305843009213693953n);
    expect(cfg.hsmGeneratedIv).toBe(true);
    expect(cfg.gcmIvBits).toBe(0);
    expect(cfg.maxDirectBytes).toBe(CLOUDHSM_GCM_MAX_BYTES);
    expect(cfg.mechanism).toBe(CKM_AES_GCM);
    expect((cfg.sessionFlags as number) & 0x2).toBe(0x2);
    expect(seal.type).toBe("pkcs11");
    expect(seal.profile).toBe("cloudhsm");
    expect(seal.cryptoUser).toBe("crypto_user");
    expect(seal.capabilities).toEqual({ hsmGeneratedIv: true, maxDirectBytes: 16384, sessionFlags: 6 });
  });

  it("token by label or by 64-bit slot id (decimal or hex); no default slot when a label is given", () => {
    expect(underlying(createCloudHsmSeal({ ...BLOCK, token_label: "cavium" }, {})).slot).toBeUndefined();
    expect(underlying(createCloudHsmSeal({ ...BLOCK, slot: "0x2000000000000002" }, {})).slot).toBe(
      2305843009213693954n,
    );
    expect(underlying(createCloudHsmSeal({ ...BLOCK, slot: "2305843009213693953" }, {})).slot).toBe(
      2305843009213693953n,
    );
  });

  it("a Vault pkcs11 block for CloudHSM with VAULT_HSM_* variables", () => {
    const seal = createCloudHsmSeal(
      { token_label: "cavium", key_label: "vault-key", generate_key: "true", force_rw_session: "true" },
      { VAULT_HSM_LIB: "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so", VAULT_HSM_PIN: "vault_cu:Passw0rd!" },
    );
    const cfg = underlying(seal);
    expect(cfg).toMatchObject({
      tokenLabel: "cavium",
      keyLabel: "vault-key",
      generateKey: true,
      pin: "vault_cu:Passw0rd!",
    });
  });

  it("the walkthrough's block (hmac_key_label, slot, force_rw_session) is accepted; AES-GCM uses no HMAC key", () => {
    const seal = createCloudHsmSeal(
      {
        lib: "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so",
        slot: "2305843009213693953",
        pin: "vault:Password1",
        key_label: "hsm_demo",
        hmac_key_label: "hsm_hmac_demo",
        generate_key: "true",
        force_rw_session: "true",
      },
      {},
    );
    expect(underlying(seal)).toMatchObject({
      slot: 2305843009213693953n,
      keyLabel: "hsm_demo",
      hmacKeyLabel: "hsm_hmac_demo",
      mechanism: CKM_AES_GCM,
      pin: "vault:Password1",
    });
    expect(seal.cryptoUser).toBe("vault");
  });

  it("refuses what contradicts CloudHSM: another mechanism, > 16 KiB direct, a caller-made IV", () => {
    expect(
      configError(() => createCloudHsmSeal({ ...BLOCK, mechanism: "0x1085", hmac_key_label: "h" }, {})).field,
    ).toBe("mechanism");
    expect(configError(() => createCloudHsmSeal({ ...BLOCK, mechanism: "0x0009" }, {})).field).toBe(
      "mechanism",
    );
    expect(underlying(createCloudHsmSeal({ ...BLOCK, mechanism: "CKM_AES_GCM" }, {})).mechanism).toBe(
      CKM_AES_GCM,
    );
    expect(
      configError(() => createCloudHsmSeal({ ...BLOCK, max_direct_bytes: "16385" }, {})).message,
    ).toMatch(/at most 16384 bytes per AES-GCM call/);
    expect(underlying(createCloudHsmSeal({ ...BLOCK, max_direct_bytes: "1024" }, {})).maxDirectBytes).toBe(
      1024,
    );
    expect(
      configError(() => new CloudHsmSeal({ pin: "a:b", keyLabel: "k", hsmGeneratedIv: false } as never))
        .field,
    ).toBe("hsmGeneratedIv");
    expect(
      configError(() => new CloudHsmSeal({ pin: "a:b", keyLabel: "k", gcmIvBits: 96 } as never)).field,
    ).toBe("gcmIvBits");
  });

  it("unknown keys are refused and the message lists the CloudHSM keys", () => {
    const err = configError(() => createCloudHsmSeal({ ...BLOCK, clusterid: "cluster-abc" }, {}));
    expect(err.field).toBe("clusterid");
    expect(err.message).toMatch(/cluster_id, region, endpoint/);
  });

  it("the plain pkcs11 factory refuses the CloudHSM keys (they belong to this profile)", () => {
    expect(
      configError(() => createPkcs11Seal({ lib: "/x.so", ...BLOCK, cluster_id: "cluster-abc" }, {})).field,
    ).toBe("cluster_id");
  });
});

describe("cluster settings", () => {
  it("cluster_id with region, endpoint, static credentials, require_active_cluster", () => {
    const { profile } = resolveCloudHsmOptions(
      parseCloudHsmConfig(
        {
          ...BLOCK,
          cluster_id: "cluster-jxhlf7644ne",
          region: "eu-west-1",
          endpoint: "https://cloudhsmv2.eu-west-1.amazonaws.com",
          access_key: "AKIDEXAMPLE",
          secret_key: "env://SECRET",
          require_active_cluster: "true",
        },
        { SECRET: "wJalrXUtnFEMI" },
      ),
    );
    expect(profile.cluster).toMatchObject({
      clusterId: "cluster-jxhlf7644ne",
      region: "eu-west-1",
      endpoint: "https://cloudhsmv2.eu-west-1.amazonaws.com",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI" },
      requireActive: true,
      timeoutMs: 5000,
    });
  });

  it("region and credentials from the environment; no cluster check without cluster_id", () => {
    const { profile } = resolveCloudHsmOptions(
      parseCloudHsmConfig(BLOCK, {
        BULWARK_CLOUDHSM_CLUSTER_ID: "cluster-abc123",
        AWS_REGION: "us-east-2",
        AWS_ACCESS_KEY_ID: "AKID2",
        AWS_SECRET_ACCESS_KEY: "S2",
        AWS_SESSION_TOKEN: "T2",
      }),
    );
    expect(profile.cluster).toMatchObject({
      clusterId: "cluster-abc123",
      region: "us-east-2",
      credentials: { accessKeyId: "AKID2", secretAccessKey: "S2", sessionToken: "T2" },
      requireActive: false,
    });
    expect(
      resolveCloudHsmOptions(parseCloudHsmConfig(BLOCK, { AWS_REGION: "x" })).profile.cluster,
    ).toBeUndefined();
  });

  it("cluster settings without cluster_id, a bad cluster id, missing region, half credentials are refused", () => {
    expect(
      configError(() => createCloudHsmSeal({ ...BLOCK, require_active_cluster: "true" }, {})).message,
    ).toMatch(/set cluster_id/);
    expect(
      configError(() => createCloudHsmSeal({ ...BLOCK, cluster_id: "jxhlf7644ne", region: "r" }, {})).field,
    ).toBe("cluster_id");
    expect(configError(() => createCloudHsmSeal({ ...BLOCK, cluster_id: "cluster-a1" }, {})).field).toBe(
      "region",
    );
    expect(
      configError(() =>
        createCloudHsmSeal({ ...BLOCK, cluster_id: "cluster-a1", region: "r", access_key: "A" }, {}),
      ).field,
    ).toBe("secret_key");
    expect(
      configError(() =>
        createCloudHsmSeal({ ...BLOCK, cluster_id: "cluster-a1", region: "r", endpoint: "not a url" }, {}),
      ).field,
    ).toBe("endpoint");
    expect(
      configError(() =>
        createCloudHsmSeal(
          { ...BLOCK, cluster_id: "cluster-a1", region: "r", require_active_cluster: "maybe" },
          {},
        ),
      ).field,
    ).toBe("require_active_cluster");
  });
});

describe("credentials stay out of logs", () => {
  it("inspecting a CloudHSM seal shows neither the PIN nor the crypto user's password", () => {
    const seal = createCloudHsmSeal({
      user: "crypto_user",
      password: "password-that-must-not-leak",
      key_label: "vault-key",
      token_label: "cavium",
    });
    const shown = inspect(seal, { depth: 10 });
    expect(shown).not.toContain("password-that-must-not-leak");
    expect(JSON.stringify(seal)).not.toContain("password-that-must-not-leak");
  });
});

describe("checkCloudHsmConfig (every problem of the block at once)", () => {
  it("reports unknown keys, the PIN, the cluster settings and the profile's limits together", () => {
    const issues = checkCloudHsmConfig(
      {
        key_label: "k",
        pin: "no-colon",
        clusterid: "cluster-abc",
        cluster_id: "nope",
        access_key: "AKIA",
        max_parallel: "0",
      },
      {},
    );
    expect(issues.map((i) => i.field)).toEqual(["clusterid", "pin", "cluster_id", "region", "secret_key"]);
    expect(issues[0]?.message).toMatch(
      /^unknown setting; the cloudhsm seal knows the pkcs11 seal's settings/,
    );
    expect(issues[1]?.message).toMatch(/the PIN has no ":"/);
    expect(issues.some((i) => i.message.includes("no-colon"))).toBe(false);
  });

  it("after the profile, the PKCS#11 settings and CloudHSM's own limits", () => {
    expect(checkCloudHsmConfig({ ...BLOCK, max_parallel: "0", rsa_oaep_hash: "md5" }, {})).toEqual([
      { field: "rsa_oaep_hash", message: expect.stringMatching(/is not supported; use sha1/) },
      { field: "max_parallel", message: expect.stringMatching(/from 1 to 1024/) },
    ]);
    expect(checkCloudHsmConfig({ ...BLOCK, mechanism: "0x0009", max_direct_bytes: "16385" }, {})).toEqual([
      { field: "mechanism", message: expect.stringMatching(/seals with CKM_AES_GCM/) },
      { field: "max_direct_bytes", message: expect.stringMatching(/at most 16384 bytes/) },
    ]);
  });

  it("the first problem is the error createCloudHsmSeal throws", () => {
    for (const config of [
      { ...BLOCK, pin: "x", cluster_id: "nope" },
      { ...BLOCK, region: "eu-west-1", max_parallel: "0" },
      { ...BLOCK, mechanism: "0x0009", max_direct_bytes: "16385" },
      { ...BLOCK, clusterid: "c", user: "u" },
    ]) {
      const err = configError(() => createCloudHsmSeal(config, {}));
      expect(checkCloudHsmConfig(config, {})[0]?.field).toBe(err.field);
    }
  });

  it("a valid block has no issues; every accepted key is listed", () => {
    expect(checkCloudHsmConfig({ ...BLOCK, cluster_id: "cluster-abc", region: "us-east-1" }, {})).toEqual([]);
    for (const k of ["lib", "cluster_id", "clusterId", "password", "logger"])
      expect(CLOUDHSM_CONFIG_KEYS).toContain(k);
  });

  it("agrees with createCloudHsmSeal on any block without a cluster: no issues iff it builds (property)", () => {
    const value = fc.oneof(
      fc.constantFrom("", "a:b", "nocolon", ":p", "u:", "0x1087", "0x0009", "16385", "1024", "x", "true"),
      fc.integer({ min: -1, max: 20000 }),
    );
    const key = fc.constantFrom(
      "pin",
      "user",
      "password",
      "key_label",
      "mechanism",
      "max_direct_bytes",
      "token_label",
      "slot",
      "max_parallel",
      "clusterid",
    );
    fc.assert(
      fc.property(fc.dictionary(key, value), (block) => {
        const issues = checkCloudHsmConfig(block, {});
        let field: string | undefined;
        try {
          createCloudHsmSeal(block, {});
        } catch (err) {
          field = configError(() => {
            throw err;
          }).field;
        }
        if (field === undefined) expect(issues).toEqual([]);
        else expect(issues[0]?.field).toBe(field);
      }),
    );
  });
});
