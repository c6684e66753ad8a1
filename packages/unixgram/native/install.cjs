// The package's install script: compiles the addon with node-gyp in the folder this file is in
// (native/ in the repository, dist/native in the published package). Node-API is ABI-stable, so
// the headers of any Node line will do: when npm_config_nodedir is not set and the running Node
// has its headers installed beside it (official builds, distro packages in /usr), they are used
// instead of a download. A failed compile does not fail the install: the package still loads, and
// what needs the addon says what to install (unixgramAvailable() is false).
const { existsSync } = require("node:fs");
const { join, resolve } = require("node:path");
const { spawnSync } = require("node:child_process");

const args = ["rebuild", `--directory=${__dirname}`];
if (!process.env.npm_config_nodedir) {
  const prefix = resolve(process.execPath, "../..");
  if (existsSync(join(prefix, "include/node/node_api.h"))) args.push(`--nodedir=${prefix}`);
}
const r = spawnSync("node-gyp", args, { stdio: "inherit", shell: process.platform === "win32" });
if (r.status !== 0) {
  console.warn(
    `@bulwark/unixgram: the native addon did not compile (${r.error ? r.error.message : "output above"}); ` +
      "without it the syslog audit device cannot write to a datagram syslog socket. " +
      "Install python3, make and a C compiler, then run: npm rebuild @bulwark/unixgram",
  );
}
