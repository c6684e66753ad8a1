import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as settings from "./index.js";

/** The README's example, run against this package's source: it prints exactly its `// →` lines. */
describe("README example", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const block = /```js\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  const importLine = /import \{([^}]*)\} from "@bulwark\/settings";/.exec(block);
  const names = (importLine?.[1] ?? "")
    .split(",")
    .map((n) => n.trim())
    .filter((n) => n !== "");

  it("imports only what the package exports", () => {
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(settings).toHaveProperty(name);
  });

  it("prints what its comments say", () => {
    const program = block.replace(importLine?.[0] ?? "", `const { ${names.join(", ")} } = settings;`);
    const printed: string[] = [];
    const log = (...args: unknown[]) => printed.push(args.map(String).join(" "));
    new Function("settings", "console", program)(settings, { log });
    const expected = [...block.matchAll(/\/\/ → (.*)$/gm)].map((m) => m[1]);
    expect(expected.length).toBeGreaterThan(5);
    expect(printed).toEqual(expected);
  });
});
