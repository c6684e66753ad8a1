import { CodedError, errorKinds, isCodedError } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import { parseBool, parseDuration, parseSecret, resolveSecret } from "./index.js";
import { convertSettingsErrors, SETTINGS_ERROR_CODES, SettingsError } from "./settings-error.js";

class ProviderConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`provider: ${field}: ${message}`, options);
  }
}

describe("SettingsError", () => {
  it("is a CodedError of domain settings carrying the field and the fix", () => {
    const e = new SettingsError(
      "invalid_boolean",
      "generate_key",
      '"maybe" is not a boolean: expected true or false',
    );
    expect(e).toBeInstanceOf(CodedError);
    expect(isCodedError(e)).toBe(true);
    expect(e.domain).toBe("settings");
    expect(e.code).toBe("invalid_boolean");
    expect(e.name).toBe("SettingsError");
    expect(e.field).toBe("generate_key");
    expect(e.detail).toBe('"maybe" is not a boolean: expected true or false');
    expect(e.message).toBe(
      'invalid setting `generate_key`: "maybe" is not a boolean: expected true or false',
    );
    expect(errorKinds(e)).toContain("@bulwark/settings:SettingsError");
  });

  it("lists its codes, each one a kernel parser reports", () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err instanceof SettingsError ? err.code : "not a SettingsError";
      }
      return "no error";
    };
    const reported = [
      code(() => parseBool("b", "yes")),
      code(() => parseDuration("d", "soon")),
      code(() => resolveSecret("s", "env://UNSET", {})),
      code(() => parseSecret("s", true, {})),
    ];
    expect(reported).toEqual([...SETTINGS_ERROR_CODES]);
  });

  it("is recognised by kind, as an error from another copy of the package would be", () => {
    const foreign = Object.create(Error.prototype) as Error;
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: ["@bulwark/settings:SettingsError", "@bulwark/errors:CodedError"],
    });
    expect(foreign instanceof SettingsError).toBe(true);
    expect(new Error("x") instanceof SettingsError).toBe(false);
  });

  it("convertSettingsErrors turns it into the provider's error and lets everything else through", () => {
    const toProvider = (e: SettingsError) => new ProviderConfigError(e.field, e.detail, { cause: e });
    const original = new SettingsError("invalid_duration", "session_ttl", "bad");
    let caught: unknown;
    try {
      convertSettingsErrors(() => {
        throw original;
      }, toProvider);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ProviderConfigError);
    expect((caught as ProviderConfigError).message).toBe("provider: session_ttl: bad");
    expect((caught as ProviderConfigError).cause).toBe(original);
    const other = new TypeError("not a setting");
    expect(() =>
      convertSettingsErrors(() => {
        throw other;
      }, toProvider),
    ).toThrow(other);
    expect(convertSettingsErrors(() => 42, toProvider)).toBe(42);
  });
});
