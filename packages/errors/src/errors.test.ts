import { describe, expect, it } from "vitest";
import { CodedError, errorKinds, isCodedError } from "./index.js";

class FooError extends CodedError<"a" | "b"> {
  static override readonly kind: string = "test:FooError";
  override name = "FooError";
  constructor(code: "a" | "b", message: string) {
    super("foo", code, message);
  }
}
class FooBarError extends FooError {
  static override readonly kind: string = "test:FooBarError";
  override name = "FooBarError";
}

/** A second copy of the classes, as a duplicate install would load them (same kinds, other identity). */
function secondCopy() {
  class CodedError2 extends Error {
    static readonly kind: string = "@bulwark/errors:CodedError";
  }
  class FooError2 extends CodedError2 {
    static override readonly kind: string = "test:FooError";
  }
  const e = new FooError2("from the other copy");
  Object.defineProperty(e, Symbol.for("@bulwark/errors:kinds"), {
    value: ["test:FooError", "@bulwark/errors:CodedError"],
    enumerable: false,
  });
  return e;
}

describe("CodedError", () => {
  it("carries domain, code, message and cause", () => {
    const cause = new Error("root");
    const e = new CodedError("x", "some_code", "it broke", { cause });
    expect(e.domain).toBe("x");
    expect(e.code).toBe("some_code");
    expect(e.message).toBe("it broke");
    expect(e.cause).toBe(cause);
    expect(e).toBeInstanceOf(Error);
    expect("cause" in new CodedError("x", "c", "m")).toBe(false);
  });

  it("records the kinds of its class chain, most specific first", () => {
    expect(errorKinds(new FooBarError("a", "m"))).toEqual([
      "test:FooBarError",
      "test:FooError",
      "@bulwark/errors:CodedError",
    ]);
    expect(errorKinds(new Error("plain"))).toEqual([]);
    expect(errorKinds(undefined)).toEqual([]);
  });

  it("instanceof holds across copies by kind, and only for the kinds the error has", () => {
    const foreign = secondCopy();
    expect(foreign instanceof FooError).toBe(true);
    expect(foreign instanceof CodedError).toBe(true);
    expect(foreign instanceof FooBarError).toBe(false);
    expect(isCodedError(foreign)).toBe(true);
    expect(new FooError("a", "m") instanceof FooBarError).toBe(false);
    expect(isCodedError(new Error("plain"))).toBe(false);
    expect(isCodedError({ code: "a", domain: "foo" })).toBe(false);
  });

  it("the kinds are not enumerable (JSON and logs do not show them)", () => {
    const e = new FooError("b", "m");
    expect(Object.keys(e)).not.toContain(Symbol.for("@bulwark/errors:kinds"));
    expect(JSON.stringify(e)).not.toContain("test:FooError");
  });
});
