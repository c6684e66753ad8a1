import type { Options } from "tsup";

/**
 * The build every @bulwark library shares: ESM + CJS + type declarations for Node 22.12 and later
 * (`engines`), one file per entry (so each entry's dist is self-contained), vendor SDKs and native
 * addons kept external.
 */
export function libraryConfig(entry: string[]): Options {
  return {
    entry,
    format: ["esm", "cjs"],
    dts: true,
    sourcemap: true,
    clean: true,
    target: "node22",
    platform: "node",
    splitting: false,
  };
}
