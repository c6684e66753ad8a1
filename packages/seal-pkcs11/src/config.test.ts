import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { SealConfigError } from "@bulwark/seal";
import { configError } from "@bulwark/seal/testing";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkPkcs11Config,
  PKCS11_CONFIG_KEYS,
  parseHexId,
  parsePkcs11Config,
  parseSlot,
  resolveOptions,
} from "./config.js";
import {
  CKF_RW_SESSION,
  CKF_SERIAL_SESSION,
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
} from "./constants.js";
import { createPkcs11Seal, Pkcs11Seal } from "./pkcs11-seal.js";

const LIB = "/usr/lib/softhsm/libsofthsm2.so";
const BASE = { lib: LIB, token_label: "t", pin: "1234", key_label: "k" };

describe("parseSlot", () => {
  it("reads 64-bit slot ids in decimal and hex without losing digits", () => {
    expect(parseSlot("slot", "2305843009213693953")).toBe(2305843009213693953n);
    expect(parseSlot("slot", "0x2000000000000001")).toBe(2305843009213693953n);
    expect(parseSlot("slot", "18446744073709551615")).toBe(18446744073709551615n);
    expect(parseSlot("slot", 485468913)).toBe(485468913n);
    expect(parseSlot("slot", 7n)).toBe(7n);
    expect(parseSlot("slot", undefined)).toBeUndefined();
  });

  it("round-trips every 64-bit value through decimal and hex", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (n) => {
        expect(parseSlot("slot", n.toString())).toBe(n);
        expect(parseSlot("slot", `0x${n.toString(16)}`)).toBe(n);
        expect(parseSlot("slot", `0X${n.toString(16).toUpperCase()}`)).toBe(n);
      }),
    );
  });

  it("refuses values above 64 bits, negative, non-numeric, and unsafe JS numbers", () => {
    expect(configError(() => parseSlot("slot", "18446744073709551616")).message).toMatch(/64-bit/);
    expect(configError(() => parseSlot("slot", "-1")).message).toMatch(/not a slot id/);
    expect(configError(() => parseSlot("slot", "slot-1")).message).toMatch(/decimal .* or hex/);
    expect(configError(() => parseSlot("slot", 2 ** 61 + 1)).message).toMatch(
      /write large slot ids as a string/,
    );
    fc.assert(
      fc.property(
        fc.string().filter((s) => !/^\s*(0x[0-9a-f]+|[0-9]+)\s*$/i.test(s) && s !== ""),
        (s) => {
          expect(() => parseSlot("slot", s)).toThrow(SealConfigError);
        },
      ),
    );
  });
});

describe("parseHexId", () => {
  it("accepts hex with or without 0x and bytes; round-trips any byte string", () => {
    expect(parseHexId("key_id", "0x33333435363434373537")?.toString("hex")).toBe("33333435363434373537");
    expect(parseHexId("key_id", "0102")?.toString("hex")).toBe("0102");
    expect(parseHexId("key_id", new Uint8Array([1, 2]))?.toString("hex")).toBe("0102");
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const hex = Buffer.from(bytes).toString("hex");
        expect(parseHexId("key_id", hex)?.equals(Buffer.from(bytes))).toBe(true);
        expect(parseHexId("key_id", `0x${hex.toUpperCase()}`)?.equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });

  it("refuses odd lengths and non-hex", () => {
    expect(configError(() => parseHexId("key_id", "123")).field).toBe("key_id");
    expect(configError(() => parseHexId("hmac_key_id", "zz")).field).toBe("hmac_key_id");
  });
});

describe("parsePkcs11Config (Vault seal block)", () => {
  it("maps Vault's keys to options and parses booleans, numbers and mechanisms", () => {
    const o = resolveOptions(
      parsePkcs11Config(
        {
          ...BASE,
          slot: "0x2000000000000001",
          key_id: "0x3132",
          mechanism: "0x1085",
          hmac_key_label: "h",
          hmac_mechanism: "0x0251",
          generate_key: "true",
          force_rw_session: "false",
          max_parallel: "4",
          rsa_oaep_hash: "SHA1",
          serial: "abc",
        },
        {},
      ),
    );
    expect(o.slot).toBe(2305843009213693953n);
    expect(o.tokenLabel).toBe("t");
    expect(o.keyId?.toString("hex")).toBe("3132");
    expect(o.mechanism).toBe(CKM_AES_CBC_PAD);
    expect(o.hmacKeyLabel).toBe("h");
    expect(o.generateKey).toBe(true);
    expect(o.maxParallel).toBe(4);
    expect(o.rsaOaepHash).toBe("sha1");
    expect(o.serial).toBe("abc");
    // Sessions are always read-write, whatever force_rw_session says.
    expect(o.sessionFlags & (CKF_RW_SESSION | CKF_SERIAL_SESSION)).toBe(CKF_RW_SESSION | CKF_SERIAL_SESSION);
  });

  it("accepts mechanism names and numbers", () => {
    const mech = (m: unknown) => resolveOptions(parsePkcs11Config({ ...BASE, mechanism: m }, {})).mechanism;
    expect(mech("CKM_AES_GCM")).toBe(CKM_AES_GCM);
    expect(mech("rsa_pkcs_oaep")).toBe(CKM_RSA_PKCS_OAEP);
    expect(mech(4231)).toBe(CKM_AES_GCM);
    expect(mech("9")).toBe(CKM_RSA_PKCS_OAEP);
    expect(mech(undefined)).toBeUndefined();
  });

  it("reads BULWARK_HSM_* and then VAULT_HSM_*; they override the config block (Vault's rule)", () => {
    const env = {
      BULWARK_HSM_LIB: "/bulwark/lib.so",
      VAULT_HSM_LIB: "/vault/lib.so",
      VAULT_HSM_TOKEN_LABEL: "vault-token",
      VAULT_HSM_PIN: "9999",
      VAULT_HSM_KEY_LABEL: "vault-key",
      BULWARK_HSM_GENERATE_KEY: "true",
      VAULT_HSM_HMAC_DEFAULT_KEY_LABEL: "old-hmac",
    };
    const fromEnv = parsePkcs11Config({}, env);
    expect(fromEnv.lib).toBe("/bulwark/lib.so");
    expect(fromEnv.tokenLabel).toBe("vault-token");
    expect(fromEnv.pin).toBe("9999");
    expect(fromEnv.keyLabel).toBe("vault-key");
    expect(resolveOptions(fromEnv).generateKey).toBe(true);
    expect(fromEnv.defaultHmacKeyLabel).toBe("old-hmac");
    const mixed = parsePkcs11Config({ lib: "/config/lib.so", key_label: "cfg-key" }, env);
    expect(mixed.lib).toBe("/bulwark/lib.so");
    expect(mixed.keyLabel).toBe("vault-key");
  });

  it("resolves pin references: env:// and file://", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-pin-"));
    try {
      const file = join(dir, "pin");
      writeFileSync(file, "from-file\n");
      expect(parsePkcs11Config({ ...BASE, pin: `file://${file}` }, {}).pin).toBe("from-file");
      expect(parsePkcs11Config({ ...BASE, pin: "env://MY_PIN" }, { MY_PIN: "from-env" }).pin).toBe(
        "from-env",
      );
      expect(configError(() => parsePkcs11Config({ ...BASE, pin: "env://NOPE" }, {})).message).toMatch(
        /NOPE .* is not set/,
      );
      const missing = configError(() => parsePkcs11Config({ ...BASE, pin: `file://${dir}/none` }, {}));
      expect(missing.field).toBe("pin");
      expect(missing.message).toMatch(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes numbers where Vault expects strings (pin = 1234 in JSON)", () => {
    const o = parsePkcs11Config({ lib: LIB, token_label: 7, pin: 1234, key_label: "k", slot: 3 }, {});
    expect(o.pin).toBe("1234");
    expect(o.tokenLabel).toBe("7");
    expect(resolveOptions(o).slot).toBe(3n);
  });

  it("fromConfig builds the class it is called on (profiles subclass Pkcs11Seal)", () => {
    class ProfileSeal extends Pkcs11Seal {
      override readonly type = "profile";
    }
    const seal = ProfileSeal.fromConfig(BASE, {});
    expect(seal).toBeInstanceOf(ProfileSeal);
    expect(seal.type).toBe("profile");
  });

  it("accepts typed options, and the server-only keys of a seal block", () => {
    const o = parsePkcs11Config(
      { lib: LIB, tokenLabel: "t", pin: "1", keyLabel: "k", maxDirectBytes: 10 },
      {},
    );
    expect(resolveOptions(o).maxDirectBytes).toBe(10);
    expect(() =>
      parsePkcs11Config({ ...BASE, disabled: "true", name: "hsm", priority: "1" }, {}),
    ).not.toThrow();
  });

  it("refuses unknown keys and a setting given twice", () => {
    const typo = configError(() => parsePkcs11Config({ ...BASE, key_lable: "x" }, {}));
    expect(typo.field).toBe("key_lable");
    expect(typo.message).toMatch(/unknown setting/);
    const twice = configError(() => parsePkcs11Config({ ...BASE, keyLabel: "y" }, {}));
    expect(twice.message).toMatch(/given twice/);
  });
});

describe("validation names the field and the fix", () => {
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ["no lib", { ...BASE, lib: "" }, "lib", /set lib to the path/],
    ["no token selector", { lib: LIB, pin: "1", key_label: "k" }, "slot", /set slot or token_label/],
    ["no pin", { ...BASE, pin: "" }, "pin", /set pin/],
    ["no key", { lib: LIB, token_label: "t", pin: "1" }, "key_label", /set key_label/],
    [
      "generate_key without label",
      { ...BASE, key_label: "", key_id: "01", generate_key: true },
      "key_label",
      /needs key_label/,
    ],
    ["CBC without HMAC key", { ...BASE, mechanism: "0x1085" }, "hmac_key_label", /needs an HMAC key/],
    ["CBC without padding", { ...BASE, mechanism: "0x1082" }, "mechanism", /CKM_AES_CBC_PAD/],
    ["PKCS#1 v1.5", { ...BASE, mechanism: "0x0001" }, "mechanism", /padding-oracle/],
    ["unknown mechanism", { ...BASE, mechanism: "0x1234" }, "mechanism", /not supported/],
    ["other HMAC", { ...BASE, hmac_mechanism: "0x0220" }, "hmac_mechanism", /only 0x0251/],
    ["bad boolean", { ...BASE, generate_key: "maybe" }, "generate_key", /not a boolean/],
    ["bad max_parallel", { ...BASE, max_parallel: "0" }, "max_parallel", /from 1 to 1024/],
    ["bad oaep hash", { ...BASE, rsa_oaep_hash: "md5" }, "rsa_oaep_hash", /sha1/],
  ];
  for (const [name, config, field, message] of cases) {
    it(name, () => {
      const err = configError(() => createPkcs11Seal(config, {}));
      expect(err.field).toBe(field);
      expect(err.message).toMatch(message);
    });
  }

  it("a valid configuration builds a seal without touching the library", () => {
    const seal = createPkcs11Seal({ ...BASE, lib: "/nonexistent/lib.so" }, {});
    expect(seal).toBeInstanceOf(Pkcs11Seal);
    expect(seal.type).toBe("pkcs11");
    expect(seal.autoUnseal).toBe(true);
    expect(seal.supportsSealWrap).toBe(true);
    expect(seal.keyId()).toBe("");
    expect(seal.capabilities).toEqual({ hsmGeneratedIv: false, maxDirectBytes: 4096, sessionFlags: 6 });
  });

  it("profiles can set capability knobs through typed options", () => {
    const seal = new Pkcs11Seal({
      lib: LIB,
      tokenLabel: "cavium",
      pin: "cu:password",
      keyLabel: "k",
      hsmGeneratedIv: true,
      maxDirectBytes: 16 * 1024 - 64,
      gcmIvBits: 0,
    });
    expect(seal.capabilities.hsmGeneratedIv).toBe(true);
    expect(seal.capabilities.maxDirectBytes).toBe(16320);
  });
});

describe("the PIN stays out of logs", () => {
  it("inspecting or JSON-serialising a seal (or its resolved config) does not show the PIN", () => {
    const pin = "pin-that-must-not-leak";
    const seal = createPkcs11Seal({ ...BASE, pin });
    expect(inspect(seal, { depth: 10, showHidden: false })).not.toContain(pin);
    expect(JSON.stringify(seal)).not.toContain(pin);
    const resolved = resolveOptions({ lib: LIB, tokenLabel: "t", pin, keyLabel: "k" });
    expect(inspect(resolved, { depth: 10 })).not.toContain(pin);
    expect(JSON.stringify(resolved)).not.toContain(pin);
    // Still there for the login.
    expect(resolved.pin).toBe(pin);
  });
});

describe("checkPkcs11Config (every problem of the block at once)", () => {
  it("reports unknown keys, missing settings and bad values together, in check order", () => {
    const issues = checkPkcs11Config(
      { lib: LIB, key_lable: "k", pin: "", mechanism: "0x1082", max_parallel: "0", rsa_oaep_hash: "md5" },
      {},
    );
    expect(issues.map((i) => i.field)).toEqual([
      "key_lable",
      "slot",
      "pin",
      "key_label",
      "mechanism",
      "rsa_oaep_hash",
      "max_parallel",
    ]);
    expect(issues[0]?.message).toMatch(/^unknown setting; the pkcs11 seal knows lib, slot/);
    expect(issues[1]?.message).toBe("set slot or token_label (or serial) to choose the token");
    expect(issues[4]?.message).toMatch(/CKM_AES_CBC_PAD/);
  });

  it("the first problem is the error createPkcs11Seal throws", () => {
    for (const config of [
      { ...BASE, lib: "", pin: "", max_parallel: "x" },
      { ...BASE, mechanism: "0x1085", rsa_oaep_hash: "md5" },
      { ...BASE, key_lable: "x", generate_key: "maybe" },
    ]) {
      const err = configError(() => createPkcs11Seal(config, {}));
      expect(checkPkcs11Config(config, {})[0]).toEqual({
        field: err.field,
        message: err.message.replace(`invalid seal configuration \`${err.field}\`: `, ""),
      });
    }
  });

  it("a setting that is wrong is not reported again as missing", () => {
    expect(checkPkcs11Config({ ...BASE, token_label: 7n, key_label: 3n }, {})).toEqual([
      { field: "token_label", message: "must be a string, got bigint" },
      { field: "key_label", message: "must be a string, got bigint" },
    ]);
  });

  it("a valid block has no issues; every accepted key is listed", () => {
    expect(checkPkcs11Config({ ...BASE, disabled: "true", generate_key: "true" }, {})).toEqual([]);
    for (const k of ["lib", "tokenLabel", "hmac_key_label", "disabled", "maxRetries"])
      expect(PKCS11_CONFIG_KEYS).toContain(k);
  });

  it("agrees with createPkcs11Seal on any block: no issues iff it builds, else its error first (property)", () => {
    const value = fc.oneof(
      fc.constantFrom("", "1", "0x1087", "0x1085", "0x1082", "true", "maybe", "sha1", "md5", "abc", LIB),
      fc.integer({ min: -1, max: 5000 }),
      fc.boolean(),
    );
    const key = fc.constantFrom(
      "lib",
      "slot",
      "token_label",
      "pin",
      "key_label",
      "key_id",
      "hmac_key_label",
      "mechanism",
      "generate_key",
      "max_parallel",
      "rsa_oaep_hash",
      "keyLabel",
      "key_lable",
    );
    fc.assert(
      fc.property(fc.dictionary(key, value), (block) => {
        const issues = checkPkcs11Config(block, {});
        let thrown: SealConfigError | undefined;
        try {
          createPkcs11Seal(block, {});
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
