import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CodedError, errorKinds } from "@bulwark/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConsulBackend } from "./backend.js";
import {
  CONSUL_CONFIG_KEYS,
  ConsulConfigError,
  checkConsulConfig,
  normalizePath,
  parseConsulConfig,
  resolveEndpoint,
  resolveOptions,
} from "./config.js";
import { createConsulBackend } from "./provider.js";

function configError(fn: () => unknown): ConsulConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConsulConfigError);
    return err as ConsulConfigError;
  }
  throw new Error("expected a ConsulConfigError");
}

describe('parseConsulConfig (Vault\'s storage "consul" names)', () => {
  it("maps every Vault setting to its option, durations to milliseconds", () => {
    const { options, ignored } = parseConsulConfig(
      {
        address: "consul.internal:8501",
        scheme: "HTTPS",
        path: "vault/",
        token: "t0k",
        consistency_mode: "strong",
        max_parallel: "32",
        session_ttl: "20s",
        lock_wait_time: "1m",
        lock_delay: "5s",
        tls_ca_file: "/ca.pem",
        tls_cert_file: "/c.pem",
        tls_key_file: "/k.pem",
        tls_min_version: "tls13",
        tls_skip_verify: "false",
        request_timeout: "3s",
        retry_budget: 30,
        txn_max_req_len: 1048576,
        ha_lock_key: "core/lock",
      },
      {},
    );
    expect(options).toEqual({
      address: "consul.internal:8501",
      scheme: "https",
      path: "vault/",
      token: "t0k",
      consistencyMode: "strong",
      maxParallel: 32,
      sessionTtlMs: 20_000,
      lockWaitTimeMs: 60_000,
      lockDelayMs: 5000,
      tlsCaFile: "/ca.pem",
      tlsCertFile: "/c.pem",
      tlsKeyFile: "/k.pem",
      tlsMinVersion: "tls13",
      tlsSkipVerify: false,
      requestTimeoutMs: 3000,
      retryBudgetMs: 30_000,
      txnMaxRequestBytes: 1_048_576,
      haLockKey: "core/lock",
    });
    expect(ignored).toEqual([]);
  });

  it("takes ConsulBackendOptions (camelCase, milliseconds) as they are", () => {
    const { options } = parseConsulConfig({ address: "h:1", sessionTtlMs: 12_000, maxParallel: 8 }, {});
    expect(options).toEqual({ address: "h:1", sessionTtlMs: 12_000, maxParallel: 8 });
  });

  it("reads CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN only when the config has no address/token", () => {
    const env = { CONSUL_HTTP_ADDR: "env-host:8500", CONSUL_HTTP_TOKEN: "env-token" };
    expect(parseConsulConfig({}, env).options).toEqual({ address: "env-host:8500", token: "env-token" });
    expect(parseConsulConfig({ address: "cfg:1", token: "cfg" }, env).options).toEqual({
      address: "cfg:1",
      token: "cfg",
    });
  });

  it("accepts and reports Vault's service-registration keys without acting on them", () => {
    const { options, ignored } = parseConsulConfig(
      {
        path: "vault/",
        service: "vault",
        service_tags: "a,b",
        disable_registration: "true",
        check_timeout: "5s",
      },
      {},
    );
    expect(options).toEqual({ path: "vault/" });
    expect(ignored).toEqual(["service", "service_tags", "disable_registration", "check_timeout"]);
  });

  it.each([
    [{ adress: "x" }, "adress", /unknown setting; known settings are address, scheme/],
    [{ session_ttl: "soon" }, "session_ttl", /"soon" is not a duration: use Go syntax such as "15s"/],
    [{ lock_wait_time: "-1s" }, "lock_wait_time", /not a duration/],
    [{ max_parallel: "lots" }, "max_parallel", /expected a whole number, got "lots"/],
    [{ max_parallel: 1.5 }, "max_parallel", /expected a whole number/],
    [{ tls_skip_verify: "maybe" }, "tls_skip_verify", /expected true or false/],
    [{ token: 42 }, "token", /expected a string, got number 42/],
    [{ sessionTtlMs: "15s" }, "session_ttl", /expected milliseconds as a number/],
    [{ session_ttl: "15s", sessionTtlMs: 15000 }, "session_ttl", /set twice/],
  ])("%j → error on %s", (config, field, message) => {
    const err = configError(() => parseConsulConfig(config as Record<string, unknown>, {}));
    expect(err.field).toBe(field);
    expect(err.code).toBe("invalid_config");
    expect(err.message).toMatch(message);
    expect(err.message.startsWith(`storage "consul": ${field}: `)).toBe(true);
  });

  it("never throws anything but ConsulConfigError on arbitrary settings", () => {
    const keys = fc.constantFrom(
      "address",
      "scheme",
      "path",
      "token",
      "consistency_mode",
      "max_parallel",
      "session_ttl",
      "lock_wait_time",
      "tls_skip_verify",
      "txn_max_req_len",
    );
    fc.assert(
      fc.property(
        fc.dictionary(keys, fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))),
        (cfg) => {
          try {
            const { options } = parseConsulConfig(cfg, {});
            resolveOptions(options);
          } catch (err) {
            expect(err).toBeInstanceOf(ConsulConfigError);
          }
        },
      ),
    );
  });
});

describe("resolveEndpoint (address + scheme)", () => {
  it.each([
    [undefined, undefined, "http://127.0.0.1:8500/v1", undefined],
    ["10.0.0.5:8500", undefined, "http://10.0.0.5:8500/v1", undefined],
    ["10.0.0.5:8501", "https", "https://10.0.0.5:8501/v1", undefined],
    ["https://consul.example:8501", undefined, "https://consul.example:8501/v1", undefined],
    ["http://[::1]:8500", "http", "http://[::1]:8500/v1", undefined],
    ["unix:///var/run/consul.sock", undefined, "http://localhost/v1", "/var/run/consul.sock"],
  ])("address %j, scheme %j → %s", (address, scheme, baseUrl, socketPath) => {
    const e = resolveEndpoint(address, scheme);
    expect(e.baseUrl).toBe(baseUrl);
    expect(e.socketPath).toBe(socketPath);
    expect(e.secure).toBe(baseUrl.startsWith("https"));
  });

  it.each([
    ["https://h:1", "http", "scheme", /says https:\/\/: drop one of them/],
    ["ftp://h:1", undefined, "address", /unsupported scheme "ftp:\/\/"/],
    ["h:1", "gopher", "scheme", /must be "http" or "https"/],
    ["http://h:1/consul", undefined, "address", /has a path/],
    ["unix://", undefined, "address", /needs a socket path/],
    ["  ", undefined, "address", /is empty/],
    ["http://", undefined, "address", /not a valid address/],
  ])("address %j, scheme %j → error on %s", (address, scheme, field, message) => {
    const err = configError(() => resolveEndpoint(address, scheme));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });
});

describe("normalizePath (Vault's rules)", () => {
  it.each([
    [undefined, "bulwark/"],
    ["vault", "vault/"],
    ["/vault/", "vault/"],
    ["a/b", "a/b/"],
    ["", ""],
  ])("%j → %j", (input, want) => {
    expect(normalizePath(input)).toBe(want);
  });

  it.each(["a//b", "../x", "a/./b"])("rejects %j", (p) => {
    expect(configError(() => normalizePath(p)).field).toBe("path");
  });
});

describe("resolveOptions", () => {
  it("has Vault's defaults and max_parallel 64", () => {
    const r = resolveOptions({});
    expect(r).toMatchObject({
      path: "bulwark/",
      consistent: false,
      maxParallel: 64,
      sessionTtlMs: 15_000,
      lockWaitTimeMs: 15_000,
      lockDelayMs: 15_000,
      txnMaxRequestBytes: 524_288,
      haLockKey: "core/lock",
      token: undefined,
      tls: { minVersion: "TLSv1.2", rejectUnauthorized: true },
    });
  });

  it.each([
    [{ maxParallel: 0 }, "max_parallel", /≥ 1/],
    [{ sessionTtlMs: 500 }, "session_ttl", /must be at least 1s, got 500ms/],
    [{ lockWaitTimeMs: 11 * 60_000 }, "lock_wait_time", /10m/],
    [{ lockDelayMs: 61_000 }, "lock_delay", /0s to 60s/],
    [{ consistencyMode: "eventual" as "strong" }, "consistency_mode", /"default" or "strong"/],
    [{ tlsMinVersion: "ssl3" as "tls12" }, "tls_min_version", /tls10, tls11, tls12, tls13/],
    [{ tlsCertFile: "/c.pem" }, "tls_key_file", /needs both tls_cert_file and tls_key_file/],
    [{ haLockKey: "a//b" }, "ha_lock_key", /not a valid key/],
  ])("%j → error on %s", (opts, field, message) => {
    const err = configError(() => resolveOptions(opts));
    expect(err.field).toBe(field);
    expect(err.message).toMatch(message);
  });

  it("reads TLS files for https and names the file it cannot read", () => {
    const dir = mkdtempSync(join(tmpdir(), "bulwark-consul-cfg-"));
    writeFileSync(join(dir, "ca.pem"), "PEM");
    const r = resolveOptions({
      address: "https://h:8501",
      tlsCaFile: join(dir, "ca.pem"),
      tlsSkipVerify: true,
    });
    expect(r.tls.ca?.toString()).toBe("PEM");
    expect(r.tls.rejectUnauthorized).toBe(false);
    const err = configError(() =>
      resolveOptions({ address: "https://h:8501", tlsCaFile: join(dir, "missing.pem") }),
    );
    expect(err.field).toBe("tls_ca_file");
    expect(err.message).toMatch(/cannot read ".*missing\.pem"/);
    // Like Vault, TLS files do not matter for plain http.
    expect(resolveOptions({ address: "h:8500", tlsCaFile: join(dir, "missing.pem") }).tls.ca).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("createConsulBackend", () => {
  it("builds a backend from a Vault storage block and the environment", async () => {
    const b = createConsulBackend({ path: "vault" }, { CONSUL_HTTP_ADDR: "https://consul.example:8501" });
    expect(b).toBeInstanceOf(ConsulBackend);
    expect(b.path).toBe("vault/");
    expect(b.address).toBe("https://consul.example:8501");
    expect(b.transactionLimits).toEqual({ maxEntries: 63, maxBytes: 131_072 });
    await b.close();
  });

  it("a duration below its minimum is reported as a duration, in the units the block uses", () => {
    const ttl = configError(() => createConsulBackend({ session_ttl: "500ms" }, {}));
    expect(ttl.field).toBe("session_ttl");
    expect(ttl.message).toBe('storage "consul": session_ttl: must be at least 1s, got 500ms');
    const wait = configError(() => createConsulBackend({ lock_wait_time: "50ms" }, {}));
    expect(wait.message).toBe('storage "consul": lock_wait_time: must be at least 100ms, got 50ms');
    const timeout = configError(() => createConsulBackend({ request_timeout: "0s" }, {}));
    expect(timeout.message).toBe('storage "consul": request_timeout: must be at least 1ms, got 0s');
  });

  it("throws ConsulConfigError for a bad block", () => {
    expect(configError(() => createConsulBackend({ session_ttl: "x" }, {})).field).toBe("session_ttl");
  });

  it("throws a CodedError of domain storage, code invalid_config, with its own kind", () => {
    const err = configError(() => createConsulBackend({ session_ttl: "x" }, {}));
    expect(err).toBeInstanceOf(CodedError);
    expect({ name: err.name, domain: err.domain, code: err.code }).toEqual({
      name: "ConsulConfigError",
      domain: "storage",
      code: "invalid_config",
    });
    expect(ConsulConfigError.kind).toBe("@bulwark/storage-consul:ConsulConfigError");
    expect(errorKinds(err)[0]).toBe("@bulwark/storage-consul:ConsulConfigError");
  });
});

describe("checkConsulConfig (every problem of the block at once)", () => {
  it("reports unknown settings, bad values and settings that need each other together, in check order", () => {
    const issues = checkConsulConfig(
      {
        adress: "127.0.0.1:8500",
        session_ttl: "soon",
        max_parallel: "lots",
        consistency_mode: "eventual",
        tls_cert_file: "/c.pem",
        lock_delay: "2m",
      },
      {},
    );
    expect(issues.map((i) => i.field)).toEqual([
      "adress",
      "session_ttl",
      "max_parallel",
      "consistency_mode",
      "lock_delay",
      "tls_key_file",
    ]);
    expect(issues[0]?.message).toMatch(/^unknown setting; known settings are address, scheme/);
    expect(issues[1]?.message).toMatch(/"soon" is not a duration/);
    expect(issues[3]?.message).toBe('must be "default" or "strong", got "eventual"');
    expect(issues[5]?.message).toMatch(/needs both tls_cert_file and tls_key_file/);
  });

  it("the first problem is the error the throwing functions throw", () => {
    const config = { session_ttl: "soon", max_parallel: "lots" };
    const err = configError(() => createConsulBackend(config, {}));
    expect([err.field, err.detail]).toEqual([
      checkConsulConfig(config, {})[0]?.field,
      checkConsulConfig(config, {})[0]?.message,
    ]);
  });

  it("a setting that failed to parse is not reported again by what depends on it", () => {
    const issues = checkConsulConfig({ tls_cert_file: 5, tls_key_file: "/k.pem" }, {});
    expect(issues).toEqual([{ field: "tls_cert_file", message: "expected a string, got number 5" }]);
  });

  it("a good block has no issues, and every accepted key is listed", () => {
    expect(
      checkConsulConfig({ address: "h:1", path: "vault/", service: "vault", sessionTtlMs: 15000 }, {}),
    ).toEqual([]);
    for (const k of ["address", "session_ttl", "sessionTtlMs", "service", "ha_enabled"])
      expect(CONSUL_CONFIG_KEYS).toContain(k);
  });

  it("never throws on arbitrary settings", () => {
    const keys = fc.constantFrom(
      "address",
      "scheme",
      "path",
      "max_parallel",
      "session_ttl",
      "tls_key_file",
      "x",
    );
    fc.assert(
      fc.property(
        fc.dictionary(keys, fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null))),
        (cfg) => {
          for (const issue of checkConsulConfig(cfg, {})) expect(typeof issue.message).toBe("string");
        },
      ),
    );
  });

  it("agrees with createConsulBackend on any block: no issues iff it builds, else its error first (property)", () => {
    const value = fc.oneof(
      fc.constantFrom(
        "",
        "h:1",
        "https://h:1",
        "ftp://h",
        "http",
        "gopher",
        "15s",
        "soon",
        "2m",
        "x",
        "strong",
        "tls13",
      ),
      fc.integer({ min: -1, max: 100 }),
      fc.boolean(),
    );
    const key = fc.constantFrom(
      "address",
      "scheme",
      "path",
      "consistency_mode",
      "max_parallel",
      "session_ttl",
      "lock_delay",
      "tls_min_version",
      "tls_key_file",
      "sessionTtlMs",
      "adress",
    );
    fc.assert(
      fc.property(fc.dictionary(key, value), (block) => {
        const issues = checkConsulConfig(block, {});
        let thrown: ConsulConfigError | undefined;
        try {
          createConsulBackend(block, {});
        } catch (err) {
          expect(err).toBeInstanceOf(ConsulConfigError);
          thrown = err as ConsulConfigError;
        }
        if (thrown === undefined) expect(issues).toEqual([]);
        else expect(issues[0]).toEqual({ field: thrown.field, message: thrown.detail });
      }),
    );
  });
});
