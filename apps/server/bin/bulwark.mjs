#!/usr/bin/env node
// The `bulwark` command: everything lives in the built CLI module.
import { existsSync } from "node:fs";

const entry = new URL("../dist/index.js", import.meta.url);
if (!existsSync(entry)) {
  // A clone before its first build: say what to do instead of a raw ERR_MODULE_NOT_FOUND.
  process.stderr.write(
    "bulwark is not built yet (apps/server/dist is missing): run `pnpm build` in the repository, then try again\n",
  );
  process.exit(1);
}
const { main } = await import(entry.href);
const code = await main(process.argv);
process.exitCode = code;
// A clean run leaves nothing scheduled and Node exits by itself; if a provider SDK keeps a socket
// or timer alive after the work is done, exit anyway instead of hanging.
setTimeout(() => process.exit(code), 5000).unref();
