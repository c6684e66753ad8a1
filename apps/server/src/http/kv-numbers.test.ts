/**
 * Numbers in secrets keep what Vault keeps: KV v1 stores and returns each number's exact text
 * (Vault decodes with UseNumber), KV v2 stores the exact text too but returns what OpenBao's KV v2
 * returns (it decodes a version's data into float64 when reading). The expected bytes below were taken from OpenBao 2.6.2 (`bao server -dev`,
 * the same writes through HTTP to `secret/` (kv v2) and a kv v1 mount, read back with curl).
 */
import { createHash } from "node:crypto";
import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli } from "../../test/cli-helpers.js";
import { LogSink } from "../../test/helpers/app.js";
import type { RunningServer } from "../contracts.js";
import { createLogger } from "../logging.js";
import { createRootToken, mountKv, startHttpServer } from "./server.js";

/** The secret written (keys in Go's sorted order: OpenBao returns map keys sorted). */
const WRITTEN =
  '{"a":9007199254740993,"b":9223372036854775807,"c":-0,"d":1e-400,"e":0.1,"f":1E+2,"g":123456789012345678901234567890,"h":-0.0,"i":1.50,"j":-12.5e+3,"k":[1e2,{"x":-1E-2}],"l":1.0,"m":100000000000000000000000,"n":1e21,"o":0.0000001,"p":"9007199254740993","q":0,"r":42,"s":true,"t":null}';

/** OpenBao 2.6.2, KV v1 read of WRITTEN: `data` is the text as sent. */
const OPENBAO_V1_DATA = WRITTEN;

/** OpenBao 2.6.2, KV v2 read of WRITTEN: `data.data` (float64 on the way through). */
const OPENBAO_V2_DATA =
  '{"a":9007199254740992,"b":9223372036854776000,"c":-0,"d":0,"e":0.1,"f":100,"g":1.2345678901234568e+29,"h":-0,"i":1.5,"j":-12500,"k":[100,{"x":-0.01}],"l":1,"m":1e+23,"n":1e+21,"o":1e-7,"p":"9007199254740993","q":0,"r":42,"s":true,"t":null}';

/** OpenBao 2.6.2 answers 400 to a number beyond float64 in KV v1 and v2 alike. */
const TOO_LARGE = ['{"v":1e400}', '{"v":-1E309}'];

let server: RunningServer;
let store: SealedStore;
let root: string;

async function http(
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; text: string; type: string | null }> {
  const r = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { "x-vault-token": root, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body }),
  });
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") };
}

/** The text of the JSON value right after `"<field>":` in `text` (strings and nesting respected). */
function valueAfter(text: string, prefix: string): string {
  const at = text.indexOf(prefix);
  if (at < 0) throw new Error(`${prefix} not in ${text}`);
  const start = at + prefix.length;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      if (depth === 0) return text.slice(start, i);
      depth--;
      if (depth === 0) return text.slice(start, i + 1);
    } else if (c === "," && depth === 0) return text.slice(start, i);
  }
  return text.slice(start);
}

/** A storage entry below a mount, decrypted (what the barrier holds for it). */
async function storedText(mount: string, rest: string): Promise<string | undefined> {
  const v = await store.get(`logical/${mount}/${rest}`);
  return v === undefined ? undefined : Buffer.from(v).toString("utf8");
}

/**
 * The secret's JSON that KV v2 stores for version `n` of `key`: OpenBao's layout, a protobuf
 * Version (field 1 = the data) at `<backend_aware_uuid>/versions/<h[0:3]>/<h[3:]>` with
 * h = sha256(salt + key + "|" + n).
 */
async function storedVersion(key: string, n: number): Promise<string | undefined> {
  const [bu] = await store.list(`logical/${v2Uuid}/`);
  const salt = await storedText(v2Uuid, `${bu}salt`);
  const h = createHash("sha256").update(`${salt}${key}|${n}`).digest("hex");
  const v = await store.get(`logical/${v2Uuid}/${bu}versions/${h.slice(0, 3)}/${h.slice(3)}`);
  if (v === undefined) return undefined;
  // Field 1 (tag 0x0a) comes first: a varint length, then the bytes.
  if (v[0] !== 0x0a) throw new Error("not a KV v2 Version record");
  let len = 0;
  let i = 1;
  for (let shift = 0; ; shift += 7) {
    const b = v[i++] as number;
    len += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  return Buffer.from(v.subarray(i, i + len)).toString("utf8");
}

let v1Uuid: string;
let v2Uuid: string;

beforeAll(async () => {
  store = await SealedStore.open({ storage: new MemoryBackend(), autoRotateCheckMs: 0 });
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  await store.unseal(init.keys[0] as string);
  root = await createRootToken(store);
  v2Uuid = (await mountKv(store, "secret", { version: 2 })).uuid;
  v1Uuid = (await mountKv(store, "kv1", { version: 1 })).uuid;
  server = await startHttpServer({
    store,
    listener: { address: "127.0.0.1:0", tlsDisable: true, maxRequestSize: 32 * 1024 * 1024 },
    clusterName: "c",
    logger: createLogger({ level: "error", destination: new LogSink() }),
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await store?.close();
});

describe("numbers in secrets over HTTP (as OpenBao 2.6.2)", () => {
  it("KV v1 returns and stores every number with the exact text sent", async () => {
    expect((await http("POST", "kv1/matrix", WRITTEN)).status).toBe(204);
    const r = await http("GET", "kv1/matrix");
    expect(r.status).toBe(200);
    expect(valueAfter(r.text, '"data":')).toBe(OPENBAO_V1_DATA);
    expect(await storedText(v1Uuid, "matrix")).toBe(WRITTEN);
  });

  it("KV v2 returns what OpenBao's KV v2 returns, and stores the exact text", async () => {
    expect((await http("POST", "secret/data/matrix", `{"data":${WRITTEN},"options":{"cas":0}}`)).status).toBe(
      200,
    );
    const r = await http("GET", "secret/data/matrix");
    expect(r.status).toBe(200);
    expect(valueAfter(r.text, '"data":{"data":')).toBe(OPENBAO_V2_DATA);
    // Stored as sent (keys in Go's order already): OpenBao 2.6.2 stores these exact bytes too
    // (read through its sys/raw) and goes through float64 only when reading.
    expect(await storedVersion("matrix", 1)).toBe(WRITTEN);
  });

  it("a number beyond float64 is a 400 naming the problem (not stored as null)", async () => {
    for (const body of TOO_LARGE) {
      for (const [path, b] of [
        ["kv1/big", body],
        ["secret/data/big", `{"data":${body}}`],
      ] as const) {
        const r = await http("POST", path, b);
        expect(r.status, path).toBe(400);
        expect(JSON.parse(r.text).errors[0]).toMatch(/too large for a 64-bit float: send it as a string/);
        expect((await http("GET", path)).status).toBe(404);
      }
    }
  });

  it("fields the server reads stay strictly checked", async () => {
    for (const cas of ["1.0", "1E0", "9007199254740993", "-0.0"]) {
      const r = await http("POST", "secret/data/cas", `{"data":{"v":1},"options":{"cas":${cas}}}`);
      expect(r.status, cas).toBe(400);
      expect(r.text).toContain('field \\"cas\\" must be an integer, got number');
    }
    const meta = await http("POST", "secret/metadata/cas", '{"max_versions":5.5}');
    expect(meta.status).toBe(400);
    const destroy = await http("POST", "secret/destroy/cas", '{"versions":[1E0]}');
    expect(destroy.status).toBe(400);
    // A body that is a number is not an object.
    expect((await http("POST", "kv1/n", "1E+2")).status).toBe(400);
    expect((await http("POST", "secret/data/cas", '{"data":1E+2}')).status).toBe(400);
    expect((await http("POST", "secret/data/cas", '{"data":{"v":1},"options":{"cas":0}}')).status).toBe(200);
  });

  it("JSON responses carry exactly application/json, as Vault's", async () => {
    const cases = [
      await http("GET", "kv1/matrix"),
      await http("GET", "secret/data/matrix"),
      await http("GET", "secret/data/none"),
      await http("GET", "sys/mounts"),
      await http("POST", "kv1/x", "{not json"),
      await http("GET", "nothing/mounted"),
      await http("GET", "sys/seal-status"),
    ];
    for (const r of cases) expect(r.type, r.text).toBe("application/json");
  });
});

describe("numbers through node-vault (a client nobody here wrote)", () => {
  it("reads OpenBao's values back and round-trips what JavaScript can hold", async () => {
    const vault = nodeVault({ endpoint: server.address, apiVersion: "v1", token: root });
    // node-vault parses with JSON.parse: it gets the float64 of each exact text.
    const v1 = (await vault.read("kv1/matrix")) as { data: Record<string, unknown> };
    expect(v1.data).toEqual(JSON.parse(OPENBAO_V1_DATA));
    const v2 = (await vault.read("secret/data/matrix")) as { data: { data: Record<string, unknown> } };
    expect(v2.data.data).toEqual(JSON.parse(OPENBAO_V2_DATA));
    const value = {
      big: 2 ** 63 - 1,
      half: 0.5,
      neg: -12500,
      tiny: 5e-324,
      max: Number.MAX_VALUE,
      list: [1, 2.5],
    };
    await vault.write("kv1/node", value);
    await vault.write("secret/data/node", { data: value });
    expect(((await vault.read("kv1/node")) as { data: unknown }).data).toEqual(value);
    expect(((await vault.read("secret/data/node")) as { data: { data: unknown } }).data.data).toEqual(value);
    // What it sent is what is stored: JavaScript's text for its numbers.
    expect(await storedText(v1Uuid, "node")).toBe(JSON.stringify(value));
    // KV v2 stores Go's json.Marshal of it, as OpenBao does: the same numbers, keys sorted.
    expect(await storedVersion("node", 1)).toBe(
      JSON.stringify(Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1)))),
    );
  });
});

describe("numbers through the CLI", () => {
  const env = () => ({ BULWARK_ADDR: server.address, BULWARK_TOKEN: root });

  it("kv get -format=json prints each number as stored", async () => {
    const v1 = await cli(["kv", "get", "-format=json", "kv1/matrix"], { env: env() });
    expect(v1.code, v1.stderr).toBe(0);
    expect(v1.stdout).toContain(`"f": 1E+2,`);
    expect(v1.stdout).toContain(`"g": 123456789012345678901234567890,`);
    expect(v1.stdout).toContain(`"a": 9007199254740993,`);
    expect(v1.stdout).toContain(`"h": -0.0,`);
    expect(v1.stdout).toContain(`"d": 1e-400,`);
    const v2 = await cli(["kv", "get", "-format=json", "secret/matrix"], { env: env() });
    expect(v2.code, v2.stderr).toBe(0);
    expect(v2.stdout).toContain(`"c": -0,`);
    expect(v2.stdout).toContain(`"g": 1.2345678901234568e+29,`);
    const field = await cli(["kv", "get", "-format=json", "-field=k", "kv1/matrix"], { env: env() });
    expect(field.stdout).toBe('[1e2,{"x":-1E-2}]\n');
    const table = await cli(["kv", "get", "kv1/matrix"], { env: env() });
    expect(table.stdout).toMatch(/\nb\s+9223372036854775807\n/);
  });

  it("kv put k=v sends a string (as bao does); JSON input keeps the numbers' text", async () => {
    expect((await cli(["kv", "put", "kv1/cli", "n=9007199254740993"], { env: env() })).code).toBe(0);
    expect(valueAfter((await http("GET", "kv1/cli")).text, '"data":')).toBe('{"n":"9007199254740993"}');
    const put = await cli(["kv", "put", "kv1/cli", "-"], {
      env: env(),
      stdin: '{"n": 9007199254740993, "f": 1E+2}\n',
    });
    expect(put.code, put.stderr).toBe(0);
    expect(valueAfter((await http("GET", "kv1/cli")).text, '"data":')).toBe(
      '{"n":9007199254740993,"f":1E+2}',
    );
    const put2 = await cli(["kv", "put", "secret/cli", "-"], {
      env: env(),
      stdin: '{"n": 9007199254740993, "z": -0}',
    });
    expect(put2.code, put2.stderr).toBe(0);
    expect(valueAfter((await http("GET", "secret/data/cli")).text, '"data":{"data":')).toBe(
      '{"n":9007199254740992,"z":-0}',
    );
  });
});
