#!/usr/bin/env node
// The `bulwark` command: everything lives in the built CLI module.
const { main } = await import("../dist/index.js");
process.exitCode = await main(process.argv);
