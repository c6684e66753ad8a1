// The provider module the server loads: its shape, and that it builds the same seal as createSeal.

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SealConfigError, type SealProviderContext } from "@bulwark/seal";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSeal, KEY_FILE_ENV, KeyFileSeal, sealProvider } from "../src/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "keyfile-provider-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

// The server gives every module a context; this plugin parses its settings itself and needs none of it.
const context = {} as SealProviderContext;

describe("sealProvider", () => {
  it("has the provider module shape: type, description, settings, create", () => {
    expect(sealProvider.type).toBe("keyfile");
    expect(sealProvider.description).toMatch(/key/);
    expect(sealProvider.settings).toEqual(["key_file", "previous_key_files", "strict_permissions"]);
    expect(typeof sealProvider.create).toBe("function");
  });

  it("builds the same seal as createSeal, from the block or the environment", async () => {
    const keyFile = join(dir, "a.key");
    await writeFile(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
    const fromModule = await sealProvider.create({}, { [KEY_FILE_ENV]: keyFile }, context);
    expect(fromModule).toBeInstanceOf(KeyFileSeal);
    const fromFactory = createSeal({ key_file: keyFile }, {});
    await Promise.all([fromModule.init(), fromFactory.init()]);
    expect(fromModule.keyId()).toBe(fromFactory.keyId());
    await Promise.all([fromModule.finalize(), fromFactory.finalize()]);
  });

  it("refuses a bad setting by name, as the factory does", () => {
    expect(() => sealProvider.create({ key_flie: "/x" }, {}, context)).toThrow(SealConfigError);
  });
});
