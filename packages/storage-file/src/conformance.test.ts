import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBackendConformance } from "@bulwark/storage/testing";
import { FileBackend } from "./file-backend.js";

/** Each test gets its own empty temp folder, removed afterwards. */
function freshBackend(fsync: boolean) {
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), "bulwark-file-conformance-"));
    return {
      backend: new FileBackend({ path: join(dir, "data"), fsync }),
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  };
}

// A zero-byte value is written as {"Value":""} and reads back as zero bytes (only a zero-length
// *file* reads as missing). No transactions and no HA lock, like Vault's file backend.
runBackendConformance("FileBackend", freshBackend(true), {
  emptyValue: "stored",
  transactional: false,
  probe: true,
});

runBackendConformance("FileBackend with fsync: false", freshBackend(false), {
  emptyValue: "stored",
  transactional: false,
  probe: true,
});
