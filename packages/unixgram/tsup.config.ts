import { cpSync, mkdirSync } from "node:fs";
import type { Options } from "tsup";
import { libraryConfig } from "../../tooling/tsconfig/tsup.base.js";

const config: Options = {
  ...libraryConfig(["src/index.ts"]),
  // The addon is found next to the module (import.meta.url), in the ESM and the CJS build alike.
  shims: true,
  // The addon's sources ship in dist/native: the package's install script compiles them there
  // (node-gyp) on the user's machine; in this repository it compiles native/ itself.
  onSuccess: async () => {
    mkdirSync("dist/native", { recursive: true });
    for (const f of ["binding.gyp", "unixgram.c", "install.cjs"]) cpSync(`native/${f}`, `dist/native/${f}`);
  },
};

export default config;
