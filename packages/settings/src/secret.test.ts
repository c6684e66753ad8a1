import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { isSecretReference, parseSecret, resolveSecret } from "./secret.js";
import { SettingsError } from "./settings-error.js";

const dir = mkdtempSync(join(tmpdir(), "bulwark-settings-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function thrown(fn: () => unknown): SettingsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error("expected a SettingsError");
}

describe("secret references", () => {
  it("env://NAME is the variable, exactly as set", () => {
    expect(resolveSecret("pin", "env://MY_PIN", { MY_PIN: " 12 34 " })).toBe(" 12 34 ");
  });

  it("file://PATH is the file, one trailing newline removed", () => {
    expect(resolveSecret("pin", `file://${write("a", "s3cret\n")}`, {})).toBe("s3cret");
    expect(resolveSecret("pin", `file://${write("b", "s3cret\r\n")}`, {})).toBe("s3cret");
    expect(resolveSecret("pin", `file://${write("c", "s3cret")}`, {})).toBe("s3cret");
    expect(resolveSecret("pin", `file://${write("d", "two\nlines\n\n")}`, {})).toBe("two\nlines\n");
    expect(resolveSecret("pin", `file://${write("e", " spaced ")}`, {})).toBe(" spaced ");
  });

  it("string://VALUE is VALUE itself, as written (Vault's third form: a literal that looks like a reference)", () => {
    expect(resolveSecret("pin", "string://1234", {})).toBe("1234");
    expect(resolveSecret("pin", "string://env://X", { X: "no" })).toBe("env://X");
    expect(resolveSecret("pin", "string://file:///etc/passwd", {})).toBe("file:///etc/passwd");
    expect(resolveSecret("pin", "string:// spaced \n", {})).toBe(" spaced \n");
    expect(resolveSecret("pin", "string://string://x", {})).toBe("string://x");
    expect(isSecretReference("string://x")).toBe(true);
    expect(parseSecret("token", "string://env://T", { T: "no" })).toBe("env://T");
    // Case matters, as for the other schemes.
    expect(resolveSecret("pin", "STRING://x", {})).toBe("STRING://x");
  });

  it("an empty string:// is an error naming the field (an empty secret is no secret)", () => {
    const e = thrown(() => resolveSecret("password", "string://", {}));
    expect(e.code).toBe("unresolved_reference");
    expect(e.field).toBe("password");
    expect(e.detail).toMatch(/string:\/\/ gives no value/);
  });

  it("anything else is the value itself (property)", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        fc.pre(!s.startsWith("env://") && !s.startsWith("file://") && !s.startsWith("string://"));
        expect(isSecretReference(s)).toBe(false);
        expect(resolveSecret("pin", s, {})).toBe(s);
      }),
    );
    expect(resolveSecret("pin", "ENV://X", { X: "no" })).toBe("ENV://X");
    expect(resolveSecret("pin", " env://X", { X: "no" })).toBe(" env://X");
  });

  it("an unset or empty variable is an error naming the field, the variable and the fix", () => {
    for (const env of [{}, { NOPE: "" }]) {
      const e = thrown(() => resolveSecret("secret_key", "env://NOPE", env));
      expect(e.field).toBe("secret_key");
      expect(e.code).toBe("unresolved_reference");
      expect(e.message).toBe(
        "invalid setting `secret_key`: environment variable NOPE (from env://NOPE) is not set; export NOPE or write the value itself",
      );
    }
    expect(thrown(() => resolveSecret("pin", "env://", {})).detail).toMatch(/names no variable/);
  });

  it("a missing, unreadable or empty file is an error naming the field, the file and the fix", () => {
    const missing = thrown(() => resolveSecret("token", "file:///no/such/secret", {}));
    expect(missing.field).toBe("token");
    expect(missing.detail).toMatch(/^cannot read \/no\/such\/secret \(ENOENT.*\); fix the file:\/\/ path/);
    expect(missing.cause).toBeInstanceOf(Error);
    const directory = thrown(() => resolveSecret("token", `file://${dir}`, {}));
    expect(directory.detail).toMatch(/EISDIR/);
    const empty = thrown(() => resolveSecret("token", `file://${write("empty", "\n")}`, {}));
    expect(empty.detail).toMatch(/is empty; put the secret in the file/);
    expect(thrown(() => resolveSecret("pin", "file://", {})).detail).toMatch(/names no file/);
  });

  it("never puts a secret in a message", () => {
    const e = thrown(() => resolveSecret("pin", "env://UNSET", { OTHER: "hunter2" }));
    expect(e.message).not.toContain("hunter2");
    const reader = () => {
      throw new Error("denied");
    };
    expect(thrown(() => resolveSecret("pin", "file:///x", {}, reader)).detail).toBe(
      "cannot read /x (denied); fix the file:// path (file:///absolute/path) or write the value itself",
    );
    expect(resolveSecret("pin", "file:///x", {}, () => "from-reader\n")).toBe("from-reader");
  });
});

describe("parseSecret: a secret setting as written in a block", () => {
  it("takes strings, references resolved, and whole numbers as their decimal text", () => {
    expect(parseSecret("pin", "1234", {})).toBe("1234");
    expect(parseSecret("pin", 1234, {})).toBe("1234");
    expect(parseSecret("pin", 0, {})).toBe("0");
    expect(parseSecret("pin", "env://P", { P: "from-env" })).toBe("from-env");
  });

  it("refuses other values, naming the field", () => {
    for (const v of [true, 1.5, 2 ** 60, Number.NaN, null, undefined, ["a"], { a: 1 }]) {
      const e = thrown(() => parseSecret("secret_key", v, {}));
      expect(e.field).toBe("secret_key");
      expect(e.code).toBe("invalid_value");
      if (v === 1.5) expect(e.detail).toMatch(/got a number:/);
      expect(e.message).not.toContain("1.5");
      expect(e.detail).toMatch(
        /^expected a string, got .*: write the secret, an env:\/\/NAME or a file:\/\/\/path reference in quotes$/,
      );
    }
  });
});
