import { describe, expect, it } from "vitest";
import { assertBackend } from "./assert-backend.js";

const ok = {
  get: async () => undefined,
  put: async () => {},
  delete: async () => {},
  list: async () => [],
};

describe("assertBackend", () => {
  it("accepts an object with get, put, delete and list", () => {
    expect(() => assertBackend(ok, "ok")).not.toThrow();
  });

  it("accepts a class instance whose methods live on the prototype", () => {
    class B {
      async get() {
        return undefined;
      }
      async put() {}
      async delete() {}
      async list() {
        return [];
      }
    }
    expect(() => assertBackend(new B(), "class")).not.toThrow();
  });

  it.each(["get", "put", "delete", "list"])("names the missing method %s", (method) => {
    const broken: Record<string, unknown> = { ...ok };
    delete broken[method];
    expect(() => assertBackend(broken, "my-plugin")).toThrow(
      new RegExp(`my-plugin is not a storage backend: method ${method}\\(`),
    );
  });

  it("rejects a non-object and says what it got", () => {
    expect(() => assertBackend(null, "p")).toThrow(/got null/);
    expect(() => assertBackend("x", "p")).toThrow(/got string/);
  });

  it("accepts an optional probe() method and rejects a probe that is not one", () => {
    expect(() => assertBackend({ ...ok, probe: async () => {} }, "p")).not.toThrow();
    expect(() => assertBackend({ ...ok, probe: true }, "p")).toThrow(/probe must be a method probe\(\)/);
  });

  it("accepts an optional close() method and rejects a close that is not one", () => {
    expect(() => assertBackend({ ...ok, close: async () => {} }, "p")).not.toThrow();
    expect(() => assertBackend({ ...ok, close: "soon" }, "p")).toThrow(
      /p: close must be a method close\(\), found string/,
    );
  });

  it("rejects transaction() without valid transactionLimits", () => {
    const tx = { ...ok, transaction: async () => {} };
    expect(() => assertBackend(tx, "tx")).toThrow(/transactionLimits/);
    expect(() => assertBackend({ ...tx, transactionLimits: { maxEntries: 0, maxBytes: 10 } }, "tx")).toThrow(
      /positive integers/,
    );
    expect(() =>
      assertBackend({ ...tx, transactionLimits: { maxEntries: 63, maxBytes: 131072 } }, "tx"),
    ).not.toThrow();
    expect(() => assertBackend({ ...ok, transaction: 5 }, "tx")).toThrow(/transaction must be a method/);
  });
});
