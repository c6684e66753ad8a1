// A throwaway npm registry for the @bulwark (and @acme) scopes, serving the packed tarballs in a
// folder: node registry.mjs <tarball dir> <port file>. npm looks up the manifests of dependencies
// while it builds its tree, even when a tarball on the command line provides them; against an
// unreachable registry each lookup costs minutes of retries, against npmjs.org it would ask
// strangers' packages. This answers from the tarballs themselves and 404s everything else.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const [dir, portFile] = process.argv.slice(2);
const packuments = new Map();
const files = new Map();

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).slice(1);
  const tarball = files.get(path);
  if (tarball !== undefined) {
    res.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(tarball));
    return;
  }
  const doc = packuments.get(path);
  if (doc !== undefined) {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc));
    return;
  }
  res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
});

server.listen(0, "127.0.0.1", () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".tgz"))) {
    const full = join(dir, f);
    const bytes = readFileSync(full);
    const manifest = JSON.parse(
      execFileSync("tar", ["-xzOf", full, "package/package.json"], { encoding: "utf8" }),
    );
    files.set(`-/${f}`, full);
    packuments.set(manifest.name, {
      name: manifest.name,
      "dist-tags": { latest: manifest.version },
      versions: {
        [manifest.version]: {
          ...manifest,
          _id: `${manifest.name}@${manifest.version}`,
          dist: {
            tarball: `${base}/-/${f}`,
            shasum: createHash("sha1").update(bytes).digest("hex"),
            integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
          },
        },
      },
    });
  }
  writeFileSync(portFile, base);
});
