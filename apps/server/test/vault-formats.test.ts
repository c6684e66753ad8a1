/**
 * One data set, two servers (issue 13): a real OpenBao 2.6.2 and `bulwark server` take turns on
 * the SAME storage, with the same unseal shares (or the same static seal key), and every read —
 * secrets, versions, metadata, policies, token lookups with the tokens either server issued,
 * capabilities, mounts, through the HTTP API and the stock `bao` CLI — must answer the same on
 * both (helpers/openbao-scenario.ts; only request ids are dropped, TTLs compared with the time
 * between the reads as tolerance).
 *
 * - OpenBao → Bulwark → OpenBao (Shamir, and the static seal): OpenBao writes the history,
 *   Bulwark reads it, then renews, revokes, writes, rotates; OpenBao reads all of it again.
 * - Bulwark → OpenBao → Bulwark: the other way round.
 * - Consul: OpenBao's file data set moves to Consul with `bulwark operator migrate`, Bulwark serves
 *   and extends it there, it moves back to a file directory, and OpenBao reads everything.
 *
 * A 2 s token made by the first server is refused by both; a parent revoked by the second server
 * takes its child with it on the first. The binaries are installed by tooling/services/install.sh;
 * without them the suite is skipped locally and fails under CI=true.
 */

import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { ConsulAgent } from "../../../packages/storage-consul/test/consul-agent.js";
import {
  api,
  apiOk,
  BAO,
  CONSUL,
  type Kind,
  migrate,
  type SealSpec,
  type StorageSpec,
  startNode,
  type VaultNode,
} from "./helpers/openbao-nodes.js";
import {
  carryOn,
  compareAnswers,
  createToken,
  type DataSet,
  initialise,
  newDataSet,
  populate,
  type ReadSet,
  readAll,
  statusOf,
  unseal,
} from "./helpers/openbao-scenario.js";
import { serviceGate, tempDir } from "./helpers/server-process.js";

// Three to five server starts and ~250 requests per test on a loaded 2-core machine.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 60_000 });

const missing =
  serviceGate("vault formats suite", BAO, "the bao binary") ??
  serviceGate("vault formats suite", CONSUL, "the consul binary");

const other = (k: Kind): Kind => (k === "openbao" ? "bulwark" : "openbao");

/** Runs `fn` on a server started on `storage` and unsealed, and stops it however `fn` ends. */
async function withServer<T>(
  kind: Kind,
  work: string,
  storage: StorageSpec,
  ds: DataSet,
  fn: (node: VaultNode) => Promise<T>,
  fresh = false,
): Promise<T> {
  const node = await startNode(kind, work, storage, ds.seal);
  try {
    if (fresh) await initialise(node, ds);
    else await unseal(node, ds);
    return await fn(node);
  } catch (err) {
    const log = node.output().split("\n").slice(-40).join("\n");
    throw new Error(`${(err as Error).message}\n--- last lines of the ${kind} log ---\n${log}`);
  } finally {
    await node.stop();
  }
}

/** What the server that wrote the history must itself answer (the harness checks itself). */
function selfChecks(r: ReadSet, who: string): string[] {
  const out: string[] = [];
  const want = (name: string, status: number) => {
    const got = statusOf(r, name);
    if (got !== status)
      out.push(
        `${who}: ${name} answered ${got}, expected ${status}: ${JSON.stringify(r.answers[name]).slice(0, 400)}`,
      );
  };
  want("http kv2 get other", 200);
  want("http kv2 get app/db v2", 200);
  want("http kv2 get app/db v1", 404);
  want("http kv2 metadata app/db", 200);
  want("http kv1 get plain", 200);
  want("http token lookup ttl", 200);
  want("http token lookup periodic", 200);
  want("http as ttl: kv2 get other", 200);
  want("http as ttl: kv2 write other (denied)", 403);
  want("http as orphan: sys/mounts", 403);
  want("http gone short: lookup-self", 403);
  want("http sys/policy/reader", 200);
  want("cli kv get kv2/other", 0);
  want("cli token lookup ttl", 0);
  return out;
}

/** VAULT_FORMATS_DUMP=<prefix>: every read set is written to <prefix>-<label>.json (for debugging). */
function dump(label: string, r: ReadSet): ReadSet {
  const prefix = process.env.VAULT_FORMATS_DUMP;
  if (prefix !== undefined && prefix !== "")
    writeFileSync(`${prefix}-${label}.json`, JSON.stringify(r, null, 1));
  return r;
}

function report(diffs: string[], limit = 120): string {
  return diffs.length <= limit
    ? diffs.join("\n")
    : `${diffs.slice(0, limit).join("\n")}\n… ${diffs.length - limit} more`;
}

/**
 * The storage keys of a file data set with what differs by nature blanked (mount and backend
 * uuids, salted hashes, KV v2's encrypted path segments, version-path buckets), each with its
 * count: two servers that wrote the same history must leave the same layout.
 */
function storageLayout(root: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(join(dir, e.name), path);
      else {
        const shape = path
          .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<uuid>")
          .replace(/\/_?h?[0-9a-f]{40,64}(?=\/|$)/g, "/<hash>")
          .replace(/\/versions\/[0-9a-f]{3}\//g, "/versions/<bucket>/")
          .replace(/\/_?[0-9A-Za-z]{40,}(?=\/|$)/g, "/<encrypted>");
        out[shape] = (out[shape] ?? 0) + 1;
      }
    }
  };
  walk(root, "");
  return out;
}

/** A log line about mounts carried without being served that names identity/ and cubbyhole/. */
function carriedLogged(log: string): boolean {
  return log.split("\n").some((l) => /carr/i.test(l) && l.includes("identity/") && l.includes("cubbyhole/"));
}

/** The layout each server left after writing the same history (Shamir seal), by `<first>-<seal>`. */
const layouts = new Map<string, Record<string, number>>();

/**
 * Runs the stages in order; the first that throws is recorded in `problems` (with the server's
 * log) and ends the run, since every later stage reads what it should have written.
 */
async function stages(problems: string[], list: Array<[string, () => Promise<void>]>): Promise<void> {
  for (const [label, run] of list) {
    try {
      await run();
    } catch (err) {
      problems.push(`${label}: ${(err as Error).message}`);
      return;
    }
  }
}

/**
 * `first` initialises and writes the history, `second` reads it (same answers), writes its own,
 * and `first` reads everything again (same answers as `second` gave).
 */
async function roundTrip(first: Kind, seal: SealSpec): Promise<void> {
  const work = tempDir(`formats-${first}`);
  const storage: StorageSpec = { type: "file", path: join(work, "data") };
  const ds = newDataSet(seal, work);
  const second = other(first);
  const label = `${first}-${seal.type}`;
  const problems: string[] = [];
  let written: ReadSet | undefined;
  let rewritten: ReadSet | undefined;

  await stages(problems, [
    [
      `${first} initialises the data set and writes its history`,
      async () => {
        written = await withServer(
          first,
          work,
          storage,
          ds,
          async (node) => {
            await populate(node, ds);
            return dump(`${label}-1`, await readAll(node, ds));
          },
          true,
        );
        problems.push(...selfChecks(written, first));
        layouts.set(label, storageLayout(storage.path));
      },
    ],
    [
      `${second} reads the same data set, then renews, revokes and writes`,
      async () => {
        await withServer(second, work, storage, ds, async (node) => {
          const read = dump(`${label}-2`, await readAll(node, ds));
          problems.push(
            ...compareAnswers(written as ReadSet, read, [`${first} (wrote it)`, `${second} (read it)`]),
          );
          problems.push(...(await carryOn(node, ds, second)));
          rewritten = dump(`${label}-3`, await readAll(node, ds));
          // The issue: Bulwark says in its log what it carries without serving.
          if (node.kind === "bulwark" && !carriedLogged(node.output()))
            problems.push(
              "bulwark's log does not name the identity/ and cubbyhole/ mounts it carries without serving",
            );
        });
        problems.push(...selfChecks(rewritten as ReadSet, `${second} after its writes`));
      },
    ],
    [
      `${first} reads everything back`,
      async () => {
        const back = await withServer(first, work, storage, ds, async (node) =>
          dump(`${label}-4`, await readAll(node, ds)),
        );
        problems.push(
          ...compareAnswers(rewritten as ReadSet, back, [
            `${second} (wrote last)`,
            `${first} (read it back)`,
          ]),
        );
        for (const name of ["parent", "child", "nodefault", "short"]) {
          const got = statusOf(back, `http gone ${name}: lookup-self`);
          if (got !== 403)
            problems.push(`${first}: the token ${name} (revoked or expired) answered lookup-self ${got}`);
        }
      },
    ],
  ]);
  expect(problems, report(problems)).toEqual([]);
  // Kept for a look when the test fails.
  rmSync(work, { recursive: true, force: true });
}

describe.skipIf(missing !== undefined)("one data set served by OpenBao 2.6.2 and by Bulwark", () => {
  it("OpenBao → Bulwark → OpenBao, Shamir seal, file storage", async () => {
    await roundTrip("openbao", { type: "shamir" });
  });

  it("OpenBao → Bulwark → OpenBao, static seal (auto-unseal), file storage", async () => {
    await roundTrip("openbao", { type: "static", keyId: "formats-1", key: randomBytes(32).toString("hex") });
  });

  it("Bulwark → OpenBao → Bulwark, Shamir seal, file storage", async () => {
    await roundTrip("bulwark", { type: "shamir" });
  });

  it("Bulwark → OpenBao → Bulwark, static seal (auto-unseal), file storage", async () => {
    await roundTrip("bulwark", { type: "static", keyId: "formats-2", key: randomBytes(32).toString("hex") });
  });

  // The two Shamir round trips above recorded what each server stored for the same history.
  it("Bulwark stores the same records as OpenBao for the same history (layout of the file data sets)", () => {
    const openbao = layouts.get("openbao-shamir");
    const bulwark = layouts.get("bulwark-shamir");
    expect(openbao, "the OpenBao → Bulwark Shamir test (earlier in this file) records it").toBeDefined();
    expect(bulwark, "the Bulwark → OpenBao Shamir test (earlier in this file) records it").toBeDefined();
    // Left out: the barrier's and seal's own records (root key, keyring, upgrade keys, stored
    // shares: that layer has its own checks against OpenBao), and what OpenBao creates at every
    // unseal for what Bulwark does not serve (the SSC-token HMAC key, its version history, the
    // response-wrapping JWT key, identity's OIDC defaults): OpenBao adds those to a Bulwark data
    // set when it first unseals it.
    const ignored =
      /^\/core\/(_master|_root-key|_keyring|_shamir-kek|_seal-config|_recovery-config|_recovery-key|upgrade\/|hsm\/|_index-header-hmac-key|versions\/|wrapping\/)|^\/logical\/<uuid>\/oidc_(provider|tokens)\//;
    const keep = (l: Record<string, number> | undefined) =>
      Object.fromEntries(Object.entries(l ?? {}).filter(([k]) => !ignored.test(k)));
    const a = keep(openbao);
    const b = keep(bulwark);
    const diffs = [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .sort()
      .filter((k) => a[k] !== b[k])
      .map((k) => `${k}: openbao ${a[k] ?? 0}, bulwark ${b[k] ?? 0}`);
    expect(diffs, diffs.join("\n")).toEqual([]);
  });

  // Batch tokens carry their entry in the token itself (barrier-encrypted with the keyring's
  // current term, nothing stored): a reader of the same keyring must accept one.
  it("a batch token OpenBao issued is served by Bulwark on the same data set", async () => {
    const work = tempDir("formats-batch");
    const storage: StorageSpec = { type: "file", path: join(work, "data") };
    const ds = newDataSet({ type: "shamir" }, work);
    const problems: string[] = [];
    const reads = async (node: VaultNode): Promise<ReadSet> => {
      const t = ds.tokens.batch?.token as string;
      const answers: Record<string, unknown> = {};
      for (const [name, method, path, token, body] of [
        ["lookup", "POST", "auth/token/lookup", ds.root, { token: t }],
        ["lookup-self", "GET", "auth/token/lookup-self", t, undefined],
        ["kv2 get", "GET", "kv2/data/s", t, undefined],
        ["kv2 write (denied)", "POST", "kv2/data/s", t, { data: { no: 1 } }],
      ] as const) {
        answers[`http ${name}`] = await api(node, method, path, {
          token,
          ...(body === undefined ? {} : { body }),
        });
      }
      return { answers, at: Date.now() };
    };
    let written: ReadSet | undefined;
    await stages(problems, [
      [
        "openbao issues a batch token",
        async () => {
          written = await withServer(
            "openbao",
            work,
            storage,
            ds,
            async (node) => {
              await apiOk(node, "POST", "sys/mounts/kv2", {
                token: ds.root,
                body: { type: "kv", options: { version: "2" } },
              });
              await apiOk(node, "POST", "kv2/data/s", { token: ds.root, body: { data: { v: 1 } } });
              await apiOk(node, "PUT", "sys/policies/acl/reader", {
                token: ds.root,
                body: { policy: 'path "kv2/data/*" {\n  capabilities = ["read"]\n}\n' },
              });
              await createToken(node, ds, "batch", { policies: ["reader"], type: "batch", ttl: "20m" });
              return reads(node);
            },
            true,
          );
          if (statusOf(written, "http kv2 get") !== 200)
            problems.push(`openbao: ${JSON.stringify(written.answers)}`);
        },
      ],
      [
        "bulwark serves it",
        async () => {
          const read = await withServer("bulwark", work, storage, ds, reads);
          problems.push(...compareAnswers(written as ReadSet, read, ["openbao (issued it)", "bulwark"]));
        },
      ],
    ]);
    expect(problems, report(problems)).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  });

  it("Consul: OpenBao's data set moved to Consul, extended by Bulwark there, moved back and read by OpenBao", async () => {
    const work = tempDir("formats-consul");
    const file: StorageSpec = { type: "file", path: join(work, "data") };
    const back: StorageSpec = { type: "file", path: join(work, "back") };
    mkdirSync(back.path);
    const ds = newDataSet({ type: "shamir" }, work);
    const problems: string[] = [];
    const agent = await ConsulAgent.start();
    const consul: StorageSpec = { type: "consul", address: agent.address, path: "vault/" };
    let written: ReadSet | undefined;
    let rewritten: ReadSet | undefined;
    try {
      await stages(problems, [
        [
          "openbao initialises a file data set and writes its history",
          async () => {
            written = await withServer(
              "openbao",
              work,
              file,
              ds,
              async (node) => {
                await populate(node, ds);
                return dump("consul-1", await readAll(node, ds));
              },
              true,
            );
            problems.push(...selfChecks(written, "openbao"));
          },
        ],
        ["bulwark operator migrate: file → consul", () => migrate(work, file, consul).then(() => {})],
        [
          "bulwark serves it from Consul, then renews, revokes and writes",
          async () => {
            await withServer("bulwark", work, consul, ds, async (node) => {
              const read = dump("consul-2", await readAll(node, ds));
              problems.push(
                ...compareAnswers(written as ReadSet, read, ["openbao (file)", "bulwark (consul)"]),
              );
              problems.push(...(await carryOn(node, ds, "bulwark-consul")));
              rewritten = dump("consul-3", await readAll(node, ds));
            });
          },
        ],
        ["bulwark operator migrate: consul → file", () => migrate(work, consul, back).then(() => {})],
        [
          "openbao reads the data set migrated back",
          async () => {
            const r = await withServer("openbao", work, back, ds, async (node) =>
              dump("consul-4", await readAll(node, ds)),
            );
            problems.push(
              ...compareAnswers(rewritten as ReadSet, r, [
                "bulwark (consul)",
                "openbao (file, migrated back)",
              ]),
            );
          },
        ],
      ]);
    } finally {
      await agent.stop();
    }
    expect(problems, report(problems)).toEqual([]);
    rmSync(work, { recursive: true, force: true });
  });
});
