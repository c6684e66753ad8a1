/**
 * Pieces the KV and mount-table tests share: request builders, an error's HTTP status, and the
 * KV v2 records a real OpenBao 2.6.2 stored (fixtures/openbao-kv2.json, read with sys/raw).
 * Test-only: nothing in the package imports it.
 */
import { readFileSync } from "node:fs";
import { MemoryBackend } from "@bulwark/storage-memory";
import { KvError, type KvRequest } from "./common.js";

export const req = (
  operation: KvRequest["operation"],
  path: string,
  body?: unknown,
  query: Record<string, string> = {},
): KvRequest => ({ operation, path, body, query });

/** 200 when `p` resolves, else the status of the error it rejects with. */
export async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof KvError) return e.status;
    if ((e as { status?: number }).status !== undefined) return (e as { status: number }).status;
    throw e;
  }
}

/** One KV v2 mount OpenBao wrote: its ids, its records (path below the view → base64) and API answers. */
export interface OpenBaoKvMount {
  uuid: string;
  backend_uuid: string;
  records: Record<string, string>;
  api: Record<string, unknown>;
}

/** Records read from a real OpenBao 2.6.2 with sys/raw (see the fixture's `commands`). */
export const openbaoKv2 = JSON.parse(
  readFileSync(new URL("./fixtures/openbao-kv2.json", import.meta.url), "utf8"),
) as { mounts: Record<string, OpenBaoKvMount> };

/** A memory store holding the records of OpenBao's mount `name` below `logical/<uuid>/`. */
export async function openbaoKvMount(name: string): Promise<{ m: OpenBaoKvMount; memory: MemoryBackend }> {
  const m = openbaoKv2.mounts[name];
  if (m === undefined) throw new Error(`no mount ${name} in the fixture`);
  const memory = new MemoryBackend();
  for (const [path, b64] of Object.entries(m.records))
    await memory.put({ key: `logical/${m.uuid}/${path}`, value: new Uint8Array(Buffer.from(b64, "base64")) });
  return { m, memory };
}
