/**
 * The HTTP error table: every code of every domain answers a chosen status (Vault's where Vault
 * has one), read from the error's (domain, code) — never from its class name or message — so an
 * error from a second copy of a package answers the same. The expected statuses are written out
 * here, apart from the table in errors.ts, so a change to either shows up as a failure.
 */

import * as barrierExports from "@bulwark/barrier";
import {
  BARRIER_ERROR_CODES,
  BarrierAlreadyInitializedError,
  BarrierCiphertextError,
  BarrierError,
  type BarrierErrorCode,
  BarrierInvalidKeyError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "@bulwark/barrier";
import * as coreExports from "@bulwark/core";
import { CORE_ERROR_CODES, CoreError, type CoreErrorCode } from "@bulwark/core";
import * as cryptoExports from "@bulwark/crypto";
import { CRYPTO_ERROR_CODES, CryptoError, type CryptoErrorCode } from "@bulwark/crypto";
import * as errorsExports from "@bulwark/errors";
import { CodedError } from "@bulwark/errors";
import * as hclExports from "@bulwark/hcl";
import { HCL_ERROR_CODES, type HclErrorCode, HclParseError } from "@bulwark/hcl";
import * as sealExports from "@bulwark/seal";
import { SEAL_ERROR_CODES, SealError, type SealErrorCode } from "@bulwark/seal";
import * as awskmsExports from "@bulwark/seal-awskms";
import * as cloudhsmExports from "@bulwark/seal-cloudhsm";
import * as pkcs11Exports from "@bulwark/seal-pkcs11";
import * as settingsExports from "@bulwark/settings";
import { SETTINGS_ERROR_CODES, SettingsError, type SettingsErrorCode } from "@bulwark/settings";
import * as storageExports from "@bulwark/storage";
import { STORAGE_ERROR_CODES, StorageError, type StorageErrorCode } from "@bulwark/storage";
import * as consulExports from "@bulwark/storage-consul";
import * as fileExports from "@bulwark/storage-file";
import * as memoryExports from "@bulwark/storage-memory";
import * as vaultExports from "@bulwark/vault";
import { VAULT_ERROR_CODES, VaultError, type VaultErrorCode } from "@bulwark/vault";
import { describe, expect, it } from "vitest";
import { ApiError, ConnectionError } from "../cli/client.js";
import { CLI_ERROR_CODES, UsageError } from "../cli/output.js";
import { CONFIG_ERROR_CODES, ConfigError, type ConfigErrorCode } from "../config/errors.js";
import { STARTUP_ERROR_CODES, StartupError } from "../main.js";
import { PROVIDER_ERROR_CODES, ProviderError, type ProviderErrorCode } from "../registry/errors.js";
import {
  answeredDomains,
  answerFor,
  HTTP_ERROR_CODES,
  HttpError,
  type HttpErrorCode,
  SEALED_MESSAGE,
  toHttpError,
} from "./errors.js";
import { ListenerError } from "./listener.js";

interface Domain<Code extends string> {
  domain: string;
  codes: readonly Code[];
  /** A real error of the domain's base class with `code`. */
  make(code: Code): CodedError;
  /** The status each code must answer. */
  status: Record<Code, number>;
}

/** A status HttpError is made with for each of its codes. */
const HTTP_STATUS: Record<HttpErrorCode, number> = {
  bad_request: 400,
  permission_denied: 403,
  not_found: 404,
  unsupported_operation: 405,
  request_too_large: 413,
  client_error: 415,
  internal: 500,
  unavailable: 503,
  server_error: 502,
};

/** Every domain checked below; the table must know each one. */
const CHECKED: string[] = [];

function checkDomain<Code extends string>(d: Domain<Code>): void {
  CHECKED.push(d.domain);
  it(`${d.domain}: each code answers its status, from the table`, () => {
    expect(Object.keys(d.status).sort()).toEqual([...d.codes].sort());
    for (const code of d.codes) {
      const e = d.make(code);
      expect(e, code).toBeInstanceOf(CodedError);
      expect(e.domain, code).toBe(d.domain);
      expect(e.code, code).toBe(code);
      // In the table, not fallen through to the 500 for errors nobody mapped.
      expect(answerFor(d.domain, code), `${d.domain}/${code}`).toBeDefined();
      const h = toHttpError(e, "req-1");
      expect(h.status, `${d.domain}/${code}`).toBe(d.status[code]);
      expect(h.errors.length, `${d.domain}/${code}`).toBe(1);
    }
  });
}

describe("toHttpError: every code of every domain", () => {
  checkDomain<CoreErrorCode>({
    domain: "core",
    codes: CORE_ERROR_CODES,
    make: (code) => new CoreError(code, `core ${code}`),
    status: {
      sealed: 503,
      not_initialized: 400,
      already_initialized: 400,
      invalid_key: 400,
      invalid_request: 400,
      standby: 503,
      nonce_mismatch: 400,
      no_operation_in_progress: 400,
      operation_in_progress: 400,
      migration: 400,
      seal_unavailable: 503,
      closed: 503,
    },
  });
  checkDomain<StorageErrorCode>({
    domain: "storage",
    codes: STORAGE_ERROR_CODES,
    make: (code) => new StorageError(code, `storage ${code}`),
    status: {
      invalid_key: 400,
      value_too_large: 413,
      transaction_failed: 500,
      transaction_too_large: 500,
      fenced_write: 503,
      unavailable: 503,
      permission_denied: 500,
      io: 500,
      invalid_config: 500,
      aborted: 503,
      invalid_operation: 500,
    },
  });
  checkDomain<BarrierErrorCode>({
    domain: "barrier",
    codes: BARRIER_ERROR_CODES,
    make: (code) => new BarrierError(code, `barrier ${code}`),
    status: {
      sealed: 503,
      not_initialized: 400,
      already_initialized: 400,
      invalid_key: 400,
      invalid_argument: 400,
      invalid_rotation_config: 400,
      // A keyring that does not open, a ciphertext that does not decrypt: Vault's 500.
      invalid_keyring: 500,
      keyring_missing: 500,
      keyring_not_restored: 500,
      key_conflict: 500,
      active_key_removal: 500,
      term_exhausted: 500,
      invalid_json: 500,
      ciphertext_too_short: 500,
      unknown_version: 500,
      unknown_term: 500,
      authentication_failed: 500,
    },
  });
  checkDomain<SealErrorCode>({
    domain: "seal",
    codes: SEAL_ERROR_CODES,
    make: (code) => new SealError(code, `seal ${code}`),
    status: {
      invalid_config: 500,
      invalid_argument: 500,
      unavailable: 500,
      key_not_found: 500,
      encrypt_failed: 500,
      decrypt_failed: 500,
      not_initialized: 500,
      finalized: 500,
      invalid_blob_info: 500,
      unsupported_operation: 500,
      contract_violation: 500,
      provider_failed: 500,
    },
  });
  checkDomain<CryptoErrorCode>({
    domain: "crypto",
    codes: CRYPTO_ERROR_CODES,
    make: (code) => new CryptoError(code, `crypto ${code}`),
    status: {
      invalid_key: 500,
      invalid_nonce: 500,
      authentication_failed: 500,
      invalid_argument: 500,
      key_zeroed: 500,
      shamir_invalid_parameters: 500,
      shamir_invalid_shares: 500,
    },
  });
  checkDomain<HclErrorCode>({
    domain: "hcl",
    codes: HCL_ERROR_CODES,
    make: () => new HclParseError("syntax", "policy.hcl", { line: 1, column: 2, offset: 1 }, "expected ]"),
    status: { hcl_parse: 400 },
  });
  checkDomain<SettingsErrorCode>({
    domain: "settings",
    codes: SETTINGS_ERROR_CODES,
    make: (code) => new SettingsError(code, "ttl", `settings ${code}`),
    status: { invalid_boolean: 400, invalid_duration: 400, invalid_value: 400, unresolved_reference: 500 },
  });
  checkDomain<ConfigErrorCode>({
    domain: "config",
    codes: CONFIG_ERROR_CODES,
    make: () => new ConfigError([{ message: "listener: address is missing" }]),
    status: { invalid_config: 500 },
  });
  checkDomain<ProviderErrorCode>({
    domain: "registry",
    codes: PROVIDER_ERROR_CODES,
    make: (code) => new ProviderError(code, `registry ${code}`),
    status: {
      unknown_type: 500,
      invalid_options: 500,
      plugin_not_found: 500,
      plugin_invalid: 500,
      provider_failed: 500,
    },
  });
  checkDomain<VaultErrorCode>({
    domain: "vault",
    codes: VAULT_ERROR_CODES,
    make: (code) => new VaultError(code, `vault ${code}`),
    status: {
      invalid_request: 400,
      invalid_policy: 400,
      permission_denied: 403,
      not_found: 404,
      unsupported_path: 404,
      unsupported_operation: 405,
      sealed: 503,
      not_active: 500,
      operation_in_progress: 400,
      no_operation_in_progress: 400,
      nonce_mismatch: 400,
      invalid_key: 400,
      internal: 500,
      audit_failed: 500,
    },
  });

  it("http: HttpError is its own answer, and its code follows its status", () => {
    expect(Object.keys(HTTP_STATUS).sort()).toEqual([...HTTP_ERROR_CODES].sort());
    for (const code of HTTP_ERROR_CODES) {
      const h = new HttpError(HTTP_STATUS[code], "m");
      expect(h.domain).toBe("http");
      expect(h.code).toBe(code);
      expect(toHttpError(h)).toBe(h);
    }
  });

  it("the domains above are the table's domains; an unknown one is not in it", () => {
    expect([...answeredDomains()].sort()).toEqual([...CHECKED].sort());
    expect(answerFor("no_such_domain", "io")).toBeUndefined();
    for (const d of CHECKED) expect(answerFor(d, "no_such_code")).toBeUndefined();
  });

  it("an unknown code of a known domain, or an unknown domain: 500 internal error (the only fall-through)", () => {
    const h = toHttpError(new CodedError("storage", "from_a_newer_version", "x"));
    expect(h.status).toBe(500);
    expect(h.errors).toEqual(["internal error: x"]);
    expect(toHttpError(new CodedError("elsewhere", "io", "y")).errors).toEqual(["internal error: y"]);
  });
});

/** What `f` throws (it must throw). */
function catching(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

describe("toHttpError: messages as before", () => {
  it("sealed answers Vault's exact text, whichever layer said it", () => {
    for (const e of [
      new CoreError("sealed", "Bulwark is sealed"),
      new BarrierSealedError(),
      new VaultError("sealed", "sealed"),
    ]) {
      expect(toHttpError(e).errors).toEqual([SEALED_MESSAGE]);
      expect(toHttpError(e).status).toBe(503);
    }
  });

  it("permission_denied answers Vault's text only", () => {
    const h = toHttpError(new VaultError("permission_denied", "token expired at …"));
    expect(h.status).toBe(403);
    expect(h.errors).toEqual(["permission denied"]);
  });

  it("storage and seal keep their prefixes; lower layers are redacted, request errors are not", () => {
    expect(toHttpError(new StorageError("unavailable", "consul down")).errors).toEqual([
      "storage: consul down",
    ]);
    expect(toHttpError(new SealError("unavailable", "kms down")).errors).toEqual(["seal: kms down"]);
    expect(toHttpError(new CryptoError("key_zeroed", "zeroed")).errors).toEqual(["internal error: zeroed"]);
    const lower = toHttpError(new CoreError("migration", "cannot read /srv/data/core/seal-config"), "r9");
    expect(lower.errors[0]).toBe("cannot read <path> (request id r9: details in the server log)");
    const request = toHttpError(new VaultError("invalid_request", 'field "path" must not be /etc/x/y'));
    expect(request.errors).toEqual(['field "path" must not be /etc/x/y']);
    // A node that did not become active: a plain Error's 500 text before the vault moved.
    expect(toHttpError(new VaultError("not_active", "another node holds the HA lock")).errors).toEqual([
      "internal error: another node holds the HA lock",
    ]);
    // Generate-root's token/OTP length checks are internal invariants (plain Errors before).
    for (const f of [
      () => vaultExports.encodeRootToken("ab", "abc"),
      () => vaultExports.decodeRootToken("YQ", "abc"),
    ]) {
      const h = toHttpError(catching(f));
      expect([h.status, h.errors[0]]).toEqual([
        500,
        expect.stringMatching(/^internal error: .*token and OTP lengths differ$/),
      ]);
    }
    // Vault's bare 404 for a missing KV key.
    expect(toHttpError(new VaultError("not_found", "")).errors).toEqual([]);
  });

  it("the barrier classes that answered 500 'internal error' before answer Vault's status", () => {
    const notInit = toHttpError(new BarrierNotInitializedError());
    expect(notInit.status).toBe(400);
    expect(notInit.errors[0]).toMatch(/^Bulwark is not initialized/);
    expect(toHttpError(new BarrierAlreadyInitializedError()).status).toBe(400);
    const wrongKey = toHttpError(new BarrierInvalidKeyError());
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.errors[0]).toMatch(/^Unseal failed, invalid key/);
    const tampered = toHttpError(
      new BarrierCiphertextError("authentication_failed", "ciphertext failed authentication", "logical/x"),
    );
    expect(tampered.status).toBe(500);
    expect(tampered.errors).toEqual(["ciphertext failed authentication"]);
    const keyring = toHttpError(new BarrierError("invalid_keyring", "core/keyring is not valid JSON"));
    expect(keyring.status).toBe(500);
    expect(keyring.errors).toEqual(["core/keyring is not valid JSON"]);
  });

  it("Fastify's own errors keep their status; anything else is 500 internal error", () => {
    const tooLarge = Object.assign(new Error("Request body is too large"), {
      code: "FST_ERR_CTP_BODY_TOO_LARGE",
      statusCode: 413,
    });
    expect(toHttpError(tooLarge).errors).toEqual(["http: request body too large"]);
    const badUrl = Object.assign(new Error("bad url"), { code: "FST_ERR_BAD_URL", statusCode: 400 });
    expect(toHttpError(badUrl).status).toBe(400);
    const plain = toHttpError(new TypeError("x is undefined"));
    expect(plain.status).toBe(500);
    expect(plain.errors).toEqual(["internal error: x is undefined"]);
  });

  it("a class name alone means nothing: an Error named like a barrier error is a plain 500", () => {
    const impostor = Object.assign(new Error("Vault is sealed"), {
      name: "BarrierSealedError",
      code: "sealed",
    });
    expect(toHttpError(impostor).status).toBe(500);
  });
});

describe("errors that extend CodedError directly (being a StorageError/SealError would change how callers treat them)", () => {
  it("carry a code of their domain's type, answered by its row, and stay outside its base class", () => {
    const cases: Array<[CodedError, typeof StorageError | typeof SealError]> = [
      [new consulExports.ConsulConfigError("address", "x"), StorageError],
      [new fileExports.FileBackendConfigError("path", "x"), StorageError],
      [new pkcs11Exports.Pkcs11CallError("C_Login", 0x100), SealError],
    ];
    for (const [e, base] of cases) {
      expect(answerFor(e.domain, e.code), e.name).toBeDefined();
      expect(e, e.name).not.toBeInstanceOf(base);
    }
  });
});

describe("toHttpError: errors from a second copy of a package", () => {
  /** What an error thrown by another copy of the package looks like to this one: same kinds, other class. */
  function foreign(domain: string, code: string, message: string, kinds: string[]): Error {
    const e = Object.assign(new Error(message), { domain, code });
    Object.defineProperty(e, Symbol.for("@bulwark/errors:kinds"), {
      value: [...kinds, "@bulwark/errors:CodedError"],
      enumerable: false,
    });
    return e;
  }

  it("answers as the same error of this copy", () => {
    const cases: Array<[Error, CodedError]> = [
      [
        foreign("barrier", "not_initialized", "not initialized", [
          "@bulwark/barrier:BarrierNotInitializedError",
          "@bulwark/barrier:BarrierError",
        ]),
        new BarrierNotInitializedError("not initialized"),
      ],
      [
        foreign("storage", "value_too_large", "too large", ["@bulwark/storage:StorageError"]),
        new StorageError("value_too_large", "too large"),
      ],
      [
        foreign("core", "sealed", "Bulwark is sealed", ["@bulwark/core:CoreError"]),
        new CoreError("sealed", "Bulwark is sealed"),
      ],
      [
        foreign("seal", "unavailable", "hsm gone", ["@bulwark/seal:SealError"]),
        new SealError("unavailable", "hsm gone"),
      ],
      [
        foreign("vault", "unsupported_operation", "no", ["@bulwark/vault:VaultError"]),
        new VaultError("unsupported_operation", "no"),
      ],
    ];
    for (const [theirs, ours] of cases) {
      expect(theirs instanceof ours.constructor).toBe(true);
      const a = toHttpError(theirs);
      const b = toHttpError(ours);
      expect({ status: a.status, errors: a.errors }).toEqual({ status: b.status, errors: b.errors });
    }
  });
});

describe("every error class every package exports", () => {
  const packages: Array<[string, Record<string, unknown>]> = [
    ["@bulwark/barrier", barrierExports],
    ["@bulwark/core", coreExports],
    ["@bulwark/crypto", cryptoExports],
    ["@bulwark/errors", errorsExports],
    ["@bulwark/hcl", hclExports],
    ["@bulwark/seal", sealExports],
    ["@bulwark/seal-awskms", awskmsExports],
    ["@bulwark/seal-cloudhsm", cloudhsmExports],
    ["@bulwark/seal-pkcs11", pkcs11Exports],
    ["@bulwark/settings", settingsExports],
    ["@bulwark/storage", storageExports],
    ["@bulwark/storage-consul", consulExports],
    ["@bulwark/storage-file", fileExports],
    ["@bulwark/storage-memory", memoryExports],
    ["@bulwark/vault", vaultExports],
    [
      "@bulwark/server",
      {
        HttpError,
        ConfigError,
        ProviderError,
        ApiError,
        ConnectionError,
        UsageError,
        StartupError,
        ListenerError,
      },
    ],
  ];

  /**
   * Exported error classes that are not CodedErrors, each with its reason (the test fails once one
   * is, so this list cannot outlive its entries). Empty: every exported error class is coded.
   */
  const NOT_YET_CODED = new Set<string>([]);

  it("is a CodedError with a kind of its own, '<package>:<Class>', unique across packages", () => {
    const seen = new Map<string, string>();
    const problems: string[] = [];
    let classes = 0;
    for (const [pkg, exports] of packages) {
      for (const [name, value] of Object.entries(exports)) {
        if (typeof value !== "function" || !/Error$/.test(name)) continue;
        classes++;
        if (!(value.prototype instanceof Error)) continue;
        const coded = value === CodedError || value.prototype instanceof CodedError;
        if (coded === NOT_YET_CODED.has(`${pkg} ${name}`)) {
          problems.push(
            `${pkg} ${name} ${coded ? "is a CodedError now: take it off NOT_YET_CODED" : "is not a CodedError"}`,
          );
        }
        if (!coded) continue;
        const kind: unknown = Object.hasOwn(value, "kind") ? Reflect.get(value, "kind") : undefined;
        if (kind !== `${pkg}:${name}`) problems.push(`${pkg} ${name} has kind ${String(kind)}`);
        const other = seen.get(String(kind));
        if (other !== undefined && other !== name)
          problems.push(`${pkg} ${name} shares its kind with ${other}`);
        seen.set(String(kind), name);
      }
    }
    expect(problems).toEqual([]);
    expect(classes).toBeGreaterThan(40);
  });

  it("the CLI's and the server's own errors have their domain and listed codes, names and messages unchanged", () => {
    const api = new ApiError("GET", "http://x/v1/a", 404, ["nope"]);
    expect({ name: api.name, domain: api.domain, code: api.code, status: api.status }).toEqual({
      name: "ApiError",
      domain: "cli",
      code: "api_error",
      status: 404,
    });
    expect(api.message).toBe(
      "Error making API request.\n\nURL: GET http://x/v1/a\nCode: 404. Errors:\n\n* nope",
    );
    const conn = new ConnectionError("refused", { cause: new Error("ECONNREFUSED") });
    expect([conn.name, conn.domain, conn.code, conn.message]).toEqual([
      "ConnectionError",
      "cli",
      "connection_failed",
      "refused",
    ]);
    expect(conn.cause).toBeInstanceOf(Error);
    const usage = new UsageError("bad flag");
    expect([usage.name, usage.domain, usage.code, usage.message]).toEqual([
      "UsageError",
      "cli",
      "usage",
      "bad flag",
    ]);
    expect(CLI_ERROR_CODES).toEqual(["usage", "api_error", "connection_failed"]);
    const startup = new StartupError("storage_unusable", "path", "storage: no");
    expect([startup.name, startup.domain, startup.code, startup.setting, startup.message]).toEqual([
      "StartupError",
      "server",
      "storage_unusable",
      "path",
      "storage: no",
    ]);
    expect(STARTUP_ERROR_CODES).toEqual(["listener_unavailable", "storage_unusable"]);
    // The listener's code is Node's system error code, as the operating system reports it.
    const listener = new ListenerError("address", "127.0.0.1:1", "EADDRINUSE", "is in use", "stop it");
    expect([listener.name, listener.domain, listener.code, listener.setting, listener.message]).toEqual([
      "ListenerError",
      "listener",
      "EADDRINUSE",
      "address",
      'listener "tcp" address 127.0.0.1:1 is in use: stop it',
    ]);
  });
});
