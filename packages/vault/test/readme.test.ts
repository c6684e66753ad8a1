/** The README's example runs as written (through the same module resolution as the tests). */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { afterEach, expect, it, vi } from "vitest";

const example = new URL("./readme-example.generated.ts", import.meta.url);

afterEach(() => {
  rmSync(example, { force: true });
  vi.restoreAllMocks();
});

it("the README's example writes a secret and reads it back without HTTP", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code).toContain("vault.handle(");
  writeFileSync(example, code ?? "");
  const logged: unknown[] = [];
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    logged.push(...args);
  });
  await import(example.href);
  expect(logged).toEqual([{ user: "app", password: "s3cr3t" }]);
});
