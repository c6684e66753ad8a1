/** A throwaway self-signed certificate for 127.0.0.1/localhost, made with the openssl CLI. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
}

export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    // Synchronous (vitest's timeout cannot fire meanwhile): bounded here.
    { stdio: "ignore", timeout: 30_000, killSignal: "SIGKILL" },
  );
  return { dir, certFile, keyFile, cert: readFileSync(certFile) };
}
