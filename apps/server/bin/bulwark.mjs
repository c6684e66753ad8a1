#!/usr/bin/env node
// The `bulwark` command: everything lives in the built CLI module.
const { main } = await import("../dist/index.js");
const code = await main(process.argv);
process.exitCode = code;
// A clean run leaves nothing scheduled and Node exits by itself; if a provider SDK keeps a socket
// or timer alive after the work is done, exit anyway instead of hanging.
setTimeout(() => process.exit(code), 5000).unref();
