import { describe, expect, it } from "vitest";
import { assertSeal } from "./assert-seal.js";
import { ShamirSeal } from "./shamir-seal.js";
import { StaticKeySeal } from "./static-key-seal.js";

const good = {
  type: "x",
  autoUnseal: true,
  supportsSealWrap: false,
  init: async () => {},
  finalize: async () => {},
  keyId: () => "",
  encrypt: async () => ({}),
  decrypt: async () => new Uint8Array(),
};

describe("assertSeal", () => {
  it("accepts the Seal shape, a plain object or a BaseSeal subclass (methods on the prototype)", () => {
    expect(() => assertSeal(good, "s")).not.toThrow();
    expect(() => assertSeal({ ...good, health: async () => ({ healthy: true }) }, "s")).not.toThrow();
    expect(() => assertSeal(new StaticKeySeal({ key: "11".repeat(32), keyId: "a" }), "s")).not.toThrow();
    expect(() => assertSeal(new ShamirSeal(), "s")).not.toThrow();
  });

  it("rejects a non-object and says what it got", () => {
    expect(() => assertSeal(null, "s")).toThrow(
      /s is not a seal: expected an object implementing Seal, got null/,
    );
    expect(() => assertSeal([], "s")).toThrow(/s is not a seal: `type` must be a non-empty string/);
    expect(() => assertSeal("seal", "s")).toThrow(/got string/);
  });

  it("names the first thing missing or mistyped", () => {
    expect(() => assertSeal({ ...good, type: "" }, "s")).toThrow(/`type` must be a non-empty string/);
    expect(() => assertSeal({ ...good, autoUnseal: "yes" }, "s")).toThrow(
      /`autoUnseal` must be a boolean \(found string\)/,
    );
    expect(() => assertSeal({ ...good, supportsSealWrap: undefined }, "s")).toThrow(
      /`supportsSealWrap` must be a boolean \(found undefined\)/,
    );
    expect(() => assertSeal({ ...good, keyId: "k" }, "s")).toThrow(
      /method keyId\(\) is missing \(found string\)/,
    );
    const { decrypt: _decrypt, ...noDecrypt } = good;
    expect(() => assertSeal(noDecrypt, "plugin p")).toThrow(
      /plugin p is not a seal: method decrypt\(blob, opts\?\) is missing \(found undefined\)/,
    );
    expect(() => assertSeal({ ...good, health: 1 }, "s")).toThrow(/health must be a method/);
  });
});
