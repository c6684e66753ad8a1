import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { BadRequestError } from "../errors.js";
import { JsonNumber, parseJson } from "../json/lossless.js";
import { formatRequestRecord, formatResponseRecord, goJsonString, parseFormatOptions } from "./format.js";
import { clientIdOf, hasherFor } from "./hash.js";
import { toJsonx } from "./jsonx.js";
import {
  type AuditAuthInput,
  AuditOptionError,
  type AuditRequestInput,
  type FormatConfig,
  type LogInput,
} from "./types.js";

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "openbao-2.6.2");
const SALT = "a-known-test-salt";
const hash = hasherFor(SALT);
const dec = new TextDecoder();
const HMAC = /^hmac-sha256:[0-9a-f]{64}$/;

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Fixture lines → LogInput: the values OpenBao had, except that every HMAC it wrote is replaced
// by a plaintext stand-in (its salt is gone): a record rebuilt with a known salt must then HMAC
// exactly the stand-ins, and leave every other string as OpenBao wrote it.

interface Standins {
  /** The HMAC the fixture had → the stand-in put in its place (one per distinct HMAC). */
  byHmac: Map<string, string>;
}

function unhash<T>(v: T, s: Standins): T {
  if (typeof v === "string" && HMAC.test(v)) {
    let plain = s.byHmac.get(v);
    if (plain === undefined) {
      plain = `standin-${s.byHmac.size}`;
      s.byHmac.set(v, plain);
    }
    return plain as T;
  }
  if (Array.isArray(v)) return v.map((x) => unhash(x, s)) as T;
  if (v !== null && typeof v === "object" && !(v instanceof JsonNumber)) {
    const out: Json = {};
    for (const [k, x] of Object.entries(v)) out[k] = unhash(x, s);
    return out as T;
  }
  return v;
}

/** The object without its undefined members (the input types have exact optional properties). */
function defined<T>(o: Record<string, unknown>): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o as T;
}

function authInput(a: Json): AuditAuthInput {
  const pr = a.policy_results as
    | { allowed: boolean; granting_policies?: { name: string; namespace_id: string; type: string }[] }
    | undefined;
  return defined<AuditAuthInput>({
    clientToken: a.client_token as string | undefined,
    accessor: a.accessor as string | undefined,
    displayName: a.display_name as string | undefined,
    policies: a.policies as string[] | undefined,
    tokenPolicies: a.token_policies as string[] | undefined,
    identityPolicies: a.identity_policies as string[] | undefined,
    noDefaultPolicy: a.no_default_policy as boolean | undefined,
    policyResults: pr && {
      allowed: pr.allowed,
      grantingPolicies: (pr.granting_policies ?? []).map((p) => ({
        name: p.name,
        namespaceId: p.namespace_id,
        type: p.type,
      })),
    },
    metadata: a.metadata as Record<string, string> | undefined,
    numUses: a.num_uses as number | undefined,
    remainingUses: a.remaining_uses as number | undefined,
    entityId: a.entity_id as string | undefined,
    tokenType: a.token_type as string,
    tokenTtl: a.token_ttl as number | undefined,
    tokenIssueTime: a.token_issue_time as string | undefined,
  });
}

/** Undoes elide_list_responses: a count becomes that many keys again (OpenBao counted them). */
function unelide(data: Json): Json {
  const out = { ...data };
  if (typeof out.keys === "number") out.keys = Array.from({ length: out.keys }, (_, i) => `k${i}/`);
  if (typeof out.key_info === "number") {
    out.key_info = Object.fromEntries(Array.from({ length: out.key_info }, (_, i) => [`k${i}/`, { n: i }]));
  }
  return out;
}

function logInputOf(record: Json, config: FormatConfig): LogInput {
  const r = record.request as Json;
  const request = defined<AuditRequestInput>({
    id: r.id as string,
    clientId: r.client_id as string | undefined,
    operation: r.operation as string,
    mountPoint: r.mount_point as string | undefined,
    mountType: r.mount_type as string | undefined,
    mountAccessor: r.mount_accessor as string | undefined,
    mountRunningVersion: r.mount_running_version as string | undefined,
    mountClass: r.mount_class as string | undefined,
    clientToken: r.client_token as string | undefined,
    clientTokenAccessor: r.client_token_accessor as string | undefined,
    path: r.path as string,
    data: r.data as Json | undefined,
    remoteAddress: r.remote_address as string | undefined,
    remotePort: r.remote_port as number | undefined,
    headers: r.headers as Record<string, string[]> | undefined,
    forwardedFrom: record.forwarded_from as string | undefined,
  });
  const input: LogInput = { type: record.type as string, auth: authInput(record.auth as Json), request };
  if (record.error !== undefined) input.error = record.error as string;
  const resp = record.response as Json | undefined;
  if (resp !== undefined) {
    let data = resp.data as Json | undefined;
    if (data && config.elideListResponses && request.operation === "list") data = unelide(data);
    input.response = defined({
      auth: resp.auth ? authInput(resp.auth as Json) : undefined,
      secret: resp.secret ? { leaseId: (resp.secret as Json).lease_id as string } : undefined,
      data,
      warnings: resp.warnings as string[] | undefined,
      redirect: resp.redirect as string | undefined,
      headers: resp.headers as Record<string, string[]> | undefined,
    });
  }
  return input;
}

function format(input: LogInput, config: FormatConfig, now?: Date): string {
  const f = input.type === "response" ? formatResponseRecord : formatRequestRecord;
  return dec.decode(f(input, config, hash, now));
}

interface Fixture {
  file: string;
  config: FormatConfig;
}

const FIXTURE_FILES: Fixture[] = [
  { file: "default.log", config: parseFormatOptions({}) },
  { file: "errors-unauthenticated-seal.log", config: parseFormatOptions({}) },
  {
    file: "no-hmac-accessor-elide.log",
    config: parseFormatOptions({ hmac_accessor: "false", elide_list_responses: "true" }),
  },
  {
    file: "raw-prefix-elide.log",
    config: parseFormatOptions({
      log_raw: "true",
      hmac_accessor: "false",
      elide_list_responses: "true",
      prefix: "PFX ",
    }),
  },
];

function fixtureLines(file: string): string[] {
  return fs
    .readFileSync(path.join(FIXTURES, file), "utf8")
    .split("\n")
    .filter((l) => l !== "");
}

/** Same keys in the same order at every level, same types; strings equal or, where OpenBao wrote an HMAC, ours. */
function compareStructure(ours: unknown, theirs: unknown, s: Standins, at: string): void {
  if (typeof theirs === "string") {
    expect(typeof ours, at).toBe("string");
    if (at === "$.time") return;
    if (HMAC.test(theirs)) {
      // OpenBao hashed it: we hashed the stand-in put in its place.
      const plain = s.byHmac.get(theirs);
      expect(plain, `${at}: a stand-in for ${theirs}`).toBeDefined();
      expect(ours, at).toBe(hash(plain as string));
    } else {
      expect(ours, at).toBe(theirs);
    }
    return;
  }
  if (Array.isArray(theirs)) {
    expect(Array.isArray(ours), at).toBe(true);
    const o = ours as unknown[];
    expect(o.length, at).toBe(theirs.length);
    for (const [i, t] of theirs.entries()) compareStructure(o[i], t, s, `${at}[${i}]`);
    return;
  }
  if (theirs !== null && typeof theirs === "object" && !(theirs instanceof JsonNumber)) {
    expect(ours !== null && typeof ours === "object" && !Array.isArray(ours), at).toBe(true);
    const o = ours as Json;
    expect(Object.keys(o), at).toEqual(Object.keys(theirs));
    for (const [k, t] of Object.entries(theirs)) compareStructure(o[k], t, s, `${at}.${k}`);
    return;
  }
  const norm = (v: unknown) => (v instanceof JsonNumber ? v.text : v);
  expect(norm(ours), at).toEqual(norm(theirs));
}

describe("records rebuilt from the lines OpenBao 2.6.2 wrote", () => {
  for (const { file, config } of FIXTURE_FILES) {
    const lines = fixtureLines(file);

    it(`${file}: the same key order at every level, types and values (HMACs with a known salt) on each of its ${lines.length} lines`, () => {
      expect(lines.length).toBeGreaterThan(5);
      for (const [n, line] of lines.entries()) {
        expect(line.startsWith(config.prefix), `${file}:${n + 1}`).toBe(true);
        const json = line.slice(config.prefix.length);
        const theirs = parseJson(json) as Json;
        const s: Standins = { byHmac: new Map() };
        const input = logInputOf(config.raw ? theirs : unhash(theirs, s), config);
        const text = format(input, config);
        expect(text.startsWith(config.prefix)).toBe(true);
        expect(text.endsWith("}\n")).toBe(true);
        expect(text.slice(0, -1)).not.toContain("\n");
        const ours = parseJson(text.slice(config.prefix.length)) as Json;
        compareStructure(ours, theirs, s, "$");
        if (config.raw) {
          // Raw: the very bytes OpenBao wrote, the time aside.
          const t = theirs.time as string;
          expect(text.replace(`"time":"${ours.time}"`, `"time":"${t}"`), `${file}:${n + 1}`).toBe(
            `${line}\n`,
          );
        }
      }
    });
  }

  it("known-salt/hashed.jsonl: every record byte for byte but its time, rebuilt from its plaintext twin in raw.jsonl with the device's salt", () => {
    const dir = path.join(FIXTURES, "known-salt");
    const read = (f: string) =>
      fs
        .readFileSync(path.join(dir, f), "utf8")
        .split("\n")
        .filter((l) => l !== "");
    const hashedLines = read("hashed.jsonl");
    const raw = new Map<string, Json>();
    for (const l of read("raw.jsonl")) {
      const r = parseJson(l) as Json;
      raw.set(`${(r.request as Json).id} ${r.type}`, r);
    }
    const salted = hasherFor("b5065616-09dc-692c-35ad-e964f780de3c");
    expect(salted("foo")).toBe(
      "hmac-sha256:91342d025734c16053081976be00b3ed77b1bc7e170e61a9f783b68eadf23937",
    );
    const config = parseFormatOptions({});
    let compared = 0;
    for (const line of hashedLines) {
      const theirs = JSON.parse(line) as Json;
      const twin = raw.get(`${(theirs.request as Json).id} ${theirs.type}`);
      if (twin === undefined) continue; // made before or while the raw device was enabled
      const input = logInputOf(twin, config);
      const f = input.type === "response" ? formatResponseRecord : formatRequestRecord;
      const ours = dec.decode(f(input, config, salted, new Date("2026-12-08T00:00:00.000Z")));
      expect(ours.replace('"time":"2026-12-08T00:00:00Z"', `"time":"${theirs.time as string}"`)).toBe(
        `${line}\n`,
      );
      compared++;
    }
    expect(compared).toBe(41);
    // The probe's lone \ud800 reached OpenBao's log as U+FFFD: a JavaScript string holding the lone
    // surrogate (JSON.parse keeps it) hashes and writes the same.
    const probe = hashedLines
      .map((l) => JSON.parse(l) as Json)
      .find((r) => (r.request as Json).path === "kv/probe");
    expect(probe).toBeDefined();
    const lone = (((probe as Json).request as Json).data as Json).lone;
    expect(salted("x\ud800y")).toBe(lone);
    expect(goJsonString("x\ud800y")).toBe('"x\ufffdy"');
  });

  it("the fixtures hold what the checks above rely on", () => {
    const all = FIXTURE_FILES.flatMap((f) => fixtureLines(f.file)).join("\n");
    for (const needle of [
      '"keys":1', // an elided list
      '"keys":["', // a list not elided
      '"big":12345678901234567890', // raw keeps the number's text
      '"big":12345678901234567000', // hashed: Go's float64
      '"when":"2024-01-02T03:04:05Z"', // time text not hashed
      '"error":"1 error occurred:\\n\\t* invalid request\\n\\n"',
      '"auth":{"token_type":"default"}',
      '"accessor":"Xwz34AT8idw99XqTs3SnI4bJ"', // hmac_accessor=false
      '"token_ttl":',
      '"secret":{',
      '"num_uses"',
      '"metadata":{',
    ]) {
      expect(all, needle).toContain(needle);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const base: AuditRequestInput = { id: "req-1", operation: "update", path: "secret/data/x" };
const RAW = parseFormatOptions({ log_raw: "true" });
const HASHED = parseFormatOptions({});
const AT = new Date("2026-12-08T02:28:01.520Z");

type Overrides = Omit<Partial<LogInput>, "request"> & { request?: Partial<AuditRequestInput> };

function req(input: Overrides, config = HASHED): Json {
  const text = dec.decode(
    formatRequestRecord({ ...input, request: { ...base, ...input.request } }, config, hash, AT),
  );
  return JSON.parse(text) as Json;
}
function resp(input: Overrides, config = HASHED): Json {
  const text = dec.decode(
    formatResponseRecord({ ...input, request: { ...base, ...input.request } }, config, hash, AT),
  );
  return JSON.parse(text) as Json;
}

describe("formatRequestRecord / formatResponseRecord", () => {
  it("writes the time as Go's RFC3339Nano in UTC: milliseconds, trailing zeros trimmed", () => {
    expect(req({}).time).toBe("2026-12-08T02:28:01.52Z");
    expect(req({}, HASHED).time).toBe("2026-12-08T02:28:01.52Z");
    const t = (d: string) =>
      (JSON.parse(dec.decode(formatRequestRecord({ request: base }, HASHED, hash, new Date(d)))) as Json)
        .time;
    expect(t("2026-01-01T00:00:00.000Z")).toBe("2026-01-01T00:00:00Z");
    expect(t("2026-01-01T00:00:00.007Z")).toBe("2026-01-01T00:00:00.007Z");
    expect(t("2026-01-01T00:00:00.100+02:00")).toBe("2025-12-31T22:00:00.1Z");
    const now = Date.now();
    const live = Date.parse(
      (JSON.parse(dec.decode(formatRequestRecord({ request: base }, HASHED, hash))) as Json).time as string,
    );
    expect(Math.abs(live - now)).toBeLessThan(5000);
  });

  it("writes a missing auth as Go's zero Auth, and the root namespace on every request", () => {
    const text = dec.decode(formatRequestRecord({ request: base }, HASHED, hash, AT));
    expect(text).toBe(
      '{"time":"2026-12-08T02:28:01.52Z","type":"request","auth":{"token_type":"default"},"request":{"id":"req-1","operation":"update","namespace":{"id":"root"},"path":"secret/data/x"}}\n',
    );
    const r = dec.decode(formatResponseRecord({ request: base }, HASHED, hash, AT));
    expect(r).toBe(
      '{"time":"2026-12-08T02:28:01.52Z","type":"response","auth":{"token_type":"default"},"request":{"id":"req-1","operation":"update","namespace":{"id":"root"},"path":"secret/data/x"},"response":{}}\n',
    );
  });

  it("hashes auth.client_token and request.client_token; accessors only with hmac_accessor; nothing when raw", () => {
    const auth: AuditAuthInput = {
      clientToken: "s.tok",
      accessor: "acc",
      displayName: "root",
      tokenType: "service",
    };
    const request = { clientToken: "s.tok", clientTokenAccessor: "acc" };
    const h = req({ auth, request });
    expect(h.auth).toEqual({
      client_token: hash("s.tok"),
      accessor: hash("acc"),
      display_name: "root",
      token_type: "service",
    });
    expect((h.request as Json).client_token).toBe(hash("s.tok"));
    expect((h.request as Json).client_token_accessor).toBe(hash("acc"));

    const noAcc = req({ auth, request }, parseFormatOptions({ hmac_accessor: "false" }));
    expect((noAcc.auth as Json).client_token).toBe(hash("s.tok"));
    expect((noAcc.auth as Json).accessor).toBe("acc");
    expect((noAcc.request as Json).client_token_accessor).toBe("acc");

    const raw = req({ auth, request }, RAW);
    expect(raw.auth).toEqual({
      client_token: "s.tok",
      accessor: "acc",
      display_name: "root",
      token_type: "service",
    });
    expect((raw.request as Json).client_token).toBe("s.tok");
  });

  it("does not hash the auth's metadata, policies or display name (OpenBao's HashAuth)", () => {
    const auth: AuditAuthInput = {
      tokenType: "service",
      metadata: { b: "2", a: "1" },
      policies: ["default", "p"],
    };
    const text = dec.decode(formatRequestRecord({ auth, request: base }, HASHED, hash, AT));
    expect(text).toContain(
      '"auth":{"policies":["default","p"],"metadata":{"a":"1","b":"2"},"token_type":"service"}',
    );
  });

  it("hashes request and response data with HashStructure, keeping the mount's non-HMAC keys", () => {
    const input: Overrides = {
      request: {
        data: {
          password: "pw",
          keep: "visible",
          when: "2024-01-02T03:04:05Z",
          n: 3,
          list: ["a", 1, true, null],
        },
      },
      response: { data: { value: "v", keep: "resp-keep", "": "" } },
      nonHmacRequestKeys: ["keep"],
      nonHmacResponseKeys: ["keep"],
    };
    const r = resp(input);
    expect((r.request as Json).data).toEqual({
      keep: "visible",
      list: [hash("a"), 1, true, null],
      n: 3,
      password: hash("pw"),
      when: "2024-01-02T03:04:05Z",
    });
    expect((r.response as Json).data).toEqual({ "": hash(""), keep: "resp-keep", value: hash("v") });
    // Request keys do not apply to the response and the other way round.
    const r2 = resp({ ...input, nonHmacRequestKeys: [], nonHmacResponseKeys: ["password"] });
    expect(((r2.request as Json).data as Json).password).toBe(hash("pw"));
    expect(((r2.response as Json).data as Json).keep).toBe(hash("resp-keep"));
  });

  it("sorts data, metadata and header keys as Go does (UTF-8 byte order), at every level", () => {
    const text = dec.decode(
      formatRequestRecord(
        {
          request: {
            ...base,
            data: { b: 1, a: { z: 1, y: 2 }, "😀": 1, "～": 2, B: 0 },
            headers: { x: ["1"], a: ["2"] },
          },
        },
        RAW,
        hash,
        AT,
      ),
    );
    expect(text).toContain('"data":{"B":0,"a":{"y":2,"z":1},"b":1,"～":2,"😀":1}');
    expect(text).toContain('"headers":{"a":["2"],"x":["1"]}');
  });

  it("writes numbers as Go after its JSON round trip when hashing, and as sent when raw", () => {
    const data = {
      big: new JsonNumber("12345678901234567890"),
      e: new JsonNumber("1E+2"),
      z: new JsonNumber("-0"),
      f: 0.1,
    };
    const hashed = dec.decode(formatRequestRecord({ request: { ...base, data } }, HASHED, hash, AT));
    expect(hashed).toContain('"data":{"big":12345678901234567000,"e":100,"f":0.1,"z":-0}');
    const raw = dec.decode(formatRequestRecord({ request: { ...base, data } }, RAW, hash, AT));
    expect(raw).toContain('"data":{"big":12345678901234567890,"e":1E+2,"f":0.1,"z":-0}');
    const small = dec.decode(
      formatRequestRecord({ request: { ...base, data: { a: 1e-7, b: 1e21, c: 123456789 } } }, RAW, hash, AT),
    );
    expect(small).toContain('"data":{"a":1e-7,"b":1e+21,"c":123456789}');
  });

  it('omits empty fields as Go\'s omitempty ("", 0, false, empty maps and slices), but not inside data', () => {
    const r = resp({
      auth: {
        tokenType: "service",
        policies: [],
        metadata: {},
        tokenTtl: 0,
        noDefaultPolicy: false,
        entityId: "",
      },
      request: { data: {}, remotePort: 0, remoteAddress: "", headers: {} },
      response: { data: { inner: {}, list: [], s: "" }, warnings: [] },
    });
    expect(r.auth).toEqual({ token_type: "service" });
    expect(Object.keys(r.request as Json)).toEqual(["id", "operation", "namespace", "path"]);
    expect(r.response).toEqual({ data: { inner: {}, list: [], s: hash("") } });
    expect(Object.keys(resp({ response: { data: {} } }).response as Json)).toEqual([]);
  });

  it("writes policy_results with `allowed` always and the granting policies' fields", () => {
    const auth: AuditAuthInput = {
      tokenType: "service",
      policyResults: { allowed: false, grantingPolicies: [] },
    };
    expect((req({ auth }).auth as Json).policy_results).toEqual({ allowed: false });
    auth.policyResults = {
      allowed: true,
      grantingPolicies: [{ name: "p", namespaceId: "root", type: "acl" }],
    };
    const text = dec.decode(formatRequestRecord({ auth, request: base }, HASHED, hash, AT));
    expect(text).toContain(
      '"policy_results":{"allowed":true,"granting_policies":[{"name":"p","namespace_id":"root","type":"acl"}]}',
    );
  });

  it("writes the issued auth with num_uses (no policy_results, no remaining_uses), hashing its token", () => {
    const issued: AuditAuthInput = {
      clientToken: "s.new",
      accessor: "newacc",
      policies: ["default"],
      numUses: 3,
      remainingUses: 9,
      tokenType: "service",
      tokenTtl: 3600.9,
      policyResults: { allowed: true, grantingPolicies: [] },
    };
    const r = resp({ auth: { tokenType: "service", remainingUses: 2 }, response: { auth: issued } });
    expect((r.response as Json).auth).toEqual({
      client_token: hash("s.new"),
      accessor: hash("newacc"),
      policies: ["default"],
      num_uses: 3,
      token_type: "service",
      token_ttl: 3600,
    });
    expect(r.auth).toEqual({ remaining_uses: 2, token_type: "service" });
  });

  it("writes mount fields (mount_running_version in request, mount_running_plugin_version in response), secret, warnings, redirect, headers in Go's order", () => {
    const text = dec.decode(
      formatResponseRecord(
        {
          request: {
            ...base,
            mountPoint: "secret/",
            mountType: "kv",
            mountAccessor: "kv_1",
            mountRunningVersion: "v1",
            mountClass: "secret",
            remoteAddress: "10.0.0.1",
            remotePort: 5000,
          },
          response: {
            secret: { leaseId: "" },
            data: { a: "b" },
            warnings: ["w<1>"],
            redirect: "/r",
            headers: { h: ["v"] },
          },
        },
        RAW,
        hash,
        AT,
      ),
    );
    const r = JSON.parse(text) as Json;
    expect(Object.keys(r)).toEqual(["time", "type", "auth", "request", "response"]);
    expect(Object.keys(r.request as Json)).toEqual([
      "id",
      "operation",
      "mount_point",
      "mount_type",
      "mount_accessor",
      "mount_running_version",
      "mount_class",
      "namespace",
      "path",
      "remote_address",
      "remote_port",
    ]);
    expect(Object.keys(r.response as Json)).toEqual([
      "mount_point",
      "mount_type",
      "mount_accessor",
      "mount_running_plugin_version",
      "mount_class",
      "secret",
      "data",
      "warnings",
      "redirect",
      "headers",
    ]);
    expect((r.response as Json).secret).toEqual({});
    expect(text).toContain('"warnings":["w\\u003c1\\u003e"]');
  });

  it("writes error, forwarded_from (request) and forwarded (response) last", () => {
    const request = { forwardedFrom: "node-2" };
    const a = dec.decode(
      formatRequestRecord({ request: { ...base, ...request }, error: "permission denied" }, HASHED, hash, AT),
    );
    expect(a.endsWith('},"error":"permission denied","forwarded_from":"node-2"}\n')).toBe(true);
    const b = dec.decode(
      formatResponseRecord({ request: { ...base, ...request }, error: "e" }, HASHED, hash, AT),
    );
    expect(b.endsWith('"response":{},"error":"e","forwarded":true}\n')).toBe(true);
    expect(req({ type: "request" }, HASHED).type).toBe("request");
    expect(req({ type: "custom" }, HASHED).type).toBe("custom");
  });

  it("elides list responses (keys → count, key_info → size) before hashing, on list operations only", () => {
    const data = { keys: ["a", "b", "c"], key_info: { a: {}, b: {} }, other: "x" };
    const elide = parseFormatOptions({ elide_list_responses: "true" });
    const r = resp({ request: { operation: "list" }, response: { data } }, elide);
    expect((r.response as Json).data).toEqual({ key_info: 2, keys: 3, other: hash("x") });
    const raw = resp({ request: { operation: "list" }, response: { data } }, { ...elide, raw: true });
    expect((raw.response as Json).data).toEqual({ key_info: 2, keys: 3, other: "x" });
    // Not a list: untouched; and the input itself is never changed.
    const read = resp({ request: { operation: "read" }, response: { data } }, elide);
    expect((read.response as Json).data).toEqual({
      key_info: { a: {}, b: {} },
      keys: [hash("a"), hash("b"), hash("c")],
      other: hash("x"),
    });
    expect(data.keys).toEqual(["a", "b", "c"]);
    // Without the option: not elided.
    const plain = resp({ request: { operation: "list" }, response: { data } }, HASHED);
    expect(((plain.response as Json).data as Json).keys).toEqual([hash("a"), hash("b"), hash("c")]);
  });

  it("prefixes every record with `prefix`", () => {
    const config = parseFormatOptions({ prefix: "@cee: " });
    expect(
      dec.decode(formatRequestRecord({ request: base }, config, hash, AT)).startsWith('@cee: {"time":'),
    ).toBe(true);
  });

  it("writes the jsonx format as the XML of the same record, prefix first, no newline", () => {
    const config = parseFormatOptions({ format: "jsonx", prefix: "P " });
    const input: LogInput = { request: { ...base, data: { s: "v" } }, error: "e" };
    const xml = dec.decode(formatRequestRecord(input, config, hash, AT));
    const json = dec.decode(formatRequestRecord(input, HASHED, hash, AT));
    expect(xml).toBe(`P ${toJsonx(json)}`);
    expect(
      xml.startsWith(
        'P <json:object name="auth"><json:string name="token_type">default</json:string></json:object>',
      ),
    ).toBe(true);
    expect(xml).toContain(
      `<json:object name="data"><json:string name="s">${hash("v")}</json:string></json:object>`,
    );
  });

  it("never writes a token, accessor or secret in plaintext unless log_raw", () => {
    const secrets = ["s.rootTOKEN", "accessorXYZ", "hunter2", "share-1"] as const;
    const input: LogInput = {
      auth: { clientToken: secrets[0], accessor: secrets[1], tokenType: "service" },
      request: {
        ...base,
        clientToken: secrets[0],
        clientTokenAccessor: secrets[1],
        data: { key: [secrets[3]], p: secrets[2] },
      },
      response: {
        auth: { clientToken: secrets[0], accessor: secrets[1], tokenType: "service" },
        data: { d: { p: secrets[2] } },
      },
    };
    for (const f of [formatRequestRecord, formatResponseRecord]) {
      const text = dec.decode(f(input, HASHED, hash, AT));
      for (const s of secrets) expect(text).not.toContain(s);
    }
  });
});

describe("Go's JSON string escaping", () => {
  it.each([
    ["plain", '"plain"'],
    ["<a & b>", '"\\u003ca \\u0026 b\\u003e"'],
    ["\u2028\u2029", '"\\u2028\\u2029"'],
    ['q"\\', '"q\\"\\\\"'],
    ["\b\f\n\r\t\u0001\u001f", '"\\b\\f\\n\\r\\t\\u0001\\u001f"'],
    ["\u007f é 😀", '"\u007f é 😀"'],
    ["lone \ud800 high", '"lone \ufffd high"'],
    ["lone \udc00 low <", '"lone \ufffd low \\u003c"'],
    ["pair 😀 <", '"pair 😀 \\u003c"'],
  ])("%j → %s", (s, expected) => {
    expect(goJsonString(s)).toBe(expected);
  });

  it("writes keys with the same escaping", () => {
    const text = dec.decode(
      formatRequestRecord({ request: { ...base, data: { "<k>": "<v>" } } }, RAW, hash, AT),
    );
    expect(text).toContain('"data":{"\\u003ck\\u003e":"\\u003cv\\u003e"}');
  });
});

describe("parseFormatOptions", () => {
  it("defaults: json, no prefix, hashed, accessors hashed, lists not elided", () => {
    expect(parseFormatOptions({})).toEqual({
      format: "json",
      prefix: "",
      raw: false,
      hmacAccessor: true,
      elideListResponses: false,
    });
    expect(parseFormatOptions({ file_path: "/x", mode: "0600" }).format).toBe("json");
  });

  it("reads every option, booleans as Go's strconv.ParseBool", () => {
    expect(
      parseFormatOptions({
        format: "jsonx",
        prefix: "PFX ",
        log_raw: "1",
        hmac_accessor: "F",
        elide_list_responses: "True",
      }),
    ).toEqual({ format: "jsonx", prefix: "PFX ", raw: true, hmacAccessor: false, elideListResponses: true });
    for (const t of ["1", "t", "T", "TRUE", "true", "True"])
      expect(parseFormatOptions({ log_raw: t }).raw).toBe(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"])
      expect(parseFormatOptions({ log_raw: f }).raw).toBe(false);
  });

  it.each([
    ["format", "xml", /"format".*"json".*"jsonx"/],
    ["format", "", /"format"/],
    ["format", "JSON", /"format"/],
    ["log_raw", "yes", /"log_raw".*"true" or "false"/],
    ["hmac_accessor", "", /"hmac_accessor"/],
    ["elide_list_responses", "tRUE", /"elide_list_responses"/],
  ])("refuses %s=%j naming the option and the accepted values", (option, value, message) => {
    let err: unknown;
    try {
      parseFormatOptions({ [option]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuditOptionError);
    expect(err).toBeInstanceOf(BadRequestError);
    expect((err as AuditOptionError).option).toBe(option);
    expect((err as Error).message).toMatch(message);
  });
});

describe("clientIdOf on the fixtures", () => {
  it("gives the client_id of every root-token record OpenBao wrote", () => {
    let seen = 0;
    for (const { file, config } of FIXTURE_FILES) {
      for (const line of fixtureLines(file)) {
        const r = JSON.parse(line.slice(config.prefix.length)) as Json;
        const auth = r.auth as Json;
        const cid = (r.request as Json).client_id;
        if (cid === undefined || auth.display_name !== "root") continue;
        expect(clientIdOf({ policies: auth.policies as string[] })).toBe(cid);
        seen++;
      }
    }
    expect(seen).toBeGreaterThan(20);
  });
});

// ---------------------------------------------------------------------------------------------
// The memo of the auth and request objects' text (one request's two records share them)

describe("the two records of one request, made from the same (changing) objects", () => {
  const dir = path.join(FIXTURES, "known-salt");
  const read = (f: string) =>
    fs
      .readFileSync(path.join(dir, f), "utf8")
      .split("\n")
      .filter((l) => l !== "");

  it("known-salt: both records byte for byte, the request's fields changed between them as OpenBao's were", () => {
    const salted = hasherFor("b5065616-09dc-692c-35ad-e964f780de3c");
    const config = parseFormatOptions({});
    const hashed = new Map<string, string>();
    for (const l of read("hashed.jsonl")) {
      const r = JSON.parse(l) as Json;
      hashed.set(`${(r.request as Json).id} ${r.type}`, l);
    }
    const raw = new Map<string, Json>();
    for (const l of read("raw.jsonl")) {
      const r = parseJson(l) as Json;
      raw.set(`${(r.request as Json).id} ${r.type}`, r);
    }
    const at = new Date("2026-12-08T00:00:00.000Z");
    const ours = (bytes: Uint8Array, theirs: string) =>
      dec
        .decode(bytes)
        .replace('"time":"2026-12-08T00:00:00Z"', `"time":"${(JSON.parse(theirs) as Json).time as string}"`);
    let pairs = 0;
    let changed = 0;
    for (const [key, rawReq] of raw) {
      if (rawReq.type !== "request") continue;
      const id = (rawReq.request as Json).id as string;
      const rawResp = raw.get(`${id} response`);
      const lineReq = hashed.get(key);
      const lineResp = hashed.get(`${id} response`);
      if (rawResp === undefined || lineReq === undefined || lineResp === undefined) continue;
      const first = logInputOf(rawReq, config);
      const second = logInputOf(rawResp, config);
      expect(ours(formatRequestRecord(first, config, salted, at), lineReq)).toBe(`${lineReq}\n`);
      // As the server does: the same request object, with what changed set on it in place.
      const shared = first.request as unknown as Record<string, unknown>;
      const next = second.request as unknown as Record<string, unknown>;
      let differs = false;
      for (const k of new Set([...Object.keys(shared), ...Object.keys(next)])) {
        if (JSON.stringify(shared[k]) === JSON.stringify(next[k])) continue;
        differs = true;
        if (next[k] === undefined) delete shared[k];
        else shared[k] = next[k];
      }
      if (differs) changed++;
      const input: LogInput = { ...second, request: first.request };
      if (first.auth !== undefined && JSON.stringify(first.auth) === JSON.stringify(second.auth))
        input.auth = first.auth;
      expect(ours(formatResponseRecord(input, config, salted, at), lineResp)).toBe(`${lineResp}\n`);
      pairs++;
    }
    expect(pairs).toBeGreaterThan(10);
    // Reads: OpenBao's router sets the mount accessor between the records.
    expect(changed).toBeGreaterThan(0);
  });

  const fresh = (input: LogInput): LogInput => structuredClone(input);

  it("writes what the objects hold at each call: a change in place between the calls shows in the next record", () => {
    const auth: AuditAuthInput = {
      clientToken: "tok",
      accessor: "acc",
      displayName: "root",
      policies: ["root"],
      tokenType: "service",
      remainingUses: 3,
    };
    const request: AuditRequestInput = {
      id: "r-1",
      operation: "update",
      path: "secret/data/x",
      mountPoint: "secret/",
      mountType: "kv",
      clientToken: "tok",
      clientTokenAccessor: "acc",
      data: { data: { password: "p1" } },
      remoteAddress: "127.0.0.1",
      remotePort: 1234,
    };
    const input: LogInput = { auth, request };
    const seen = new Set<string>();
    const check = (f: typeof formatRequestRecord) => {
      const text = dec.decode(f(input, HASHED, hash, AT));
      // The same as from new objects that were never formatted before.
      expect(text).toBe(dec.decode(f(fresh(input), HASHED, hash, AT)));
      expect(seen.has(text), text).toBe(false);
      seen.add(text);
      return JSON.parse(text) as Json;
    };
    check(formatRequestRecord);
    const steps: [string, () => void, (r: Json) => unknown, unknown][] = [
      [
        "mount accessor",
        () => (request.mountAccessor = "kv_1"),
        (r) => (r.request as Json).mount_accessor,
        "kv_1",
      ],
      ["operation", () => (request.operation = "create"), (r) => (r.request as Json).operation, "create"],
      ["id", () => (request.id = "r-2"), (r) => (r.request as Json).id, "r-2"],
      [
        "mount class",
        () => (request.mountClass = "secret"),
        (r) => (r.request as Json).mount_class,
        "secret",
      ],
      ["path", () => (request.path = "secret/data/y"), (r) => (r.request as Json).path, "secret/data/y"],
      ["token", () => (request.clientToken = "tok2"), (r) => (r.request as Json).client_token, hash("tok2")],
      [
        "data",
        () => (request.data = { data: { password: "p2" } }),
        (r) => (r.request as Json).data,
        { data: { password: hash("p2") } },
      ],
      ["port", () => (request.remotePort = 4321), (r) => (r.request as Json).remote_port, 4321],
      [
        "headers",
        () => (request.headers = { "x-a": ["b"] }),
        (r) => (r.request as Json).headers,
        { "x-a": ["b"] },
      ],
      ["remaining uses", () => (auth.remainingUses = 2), (r) => (r.auth as Json).remaining_uses, 2],
      ["policies", () => (auth.policies = ["default"]), (r) => (r.auth as Json).policies, ["default"]],
      ["auth token", () => (auth.clientToken = "tok3"), (r) => (r.auth as Json).client_token, hash("tok3")],
      ["accessor", () => (auth.accessor = "acc2"), (r) => (r.auth as Json).accessor, hash("acc2")],
      [
        "mount accessor removed",
        () => delete request.mountAccessor,
        (r) => (r.request as Json).mount_accessor,
        undefined,
      ],
    ];
    for (const [i, [what, change, pick, want]] of steps.entries()) {
      change();
      const f = i % 2 === 0 ? formatResponseRecord : formatRequestRecord;
      expect(pick(check(f)), what).toEqual(want);
    }
    // The mount's non-HMAC keys are read at each call too.
    const before = dec.decode(formatRequestRecord(input, HASHED, hash, AT));
    const keep = dec.decode(
      formatRequestRecord({ ...input, nonHmacRequestKeys: ["password"] }, HASHED, hash, AT),
    );
    expect(before).toContain(hash("p2"));
    expect(keep).toContain('"password":"p2"');
  });

  it("serves a token's auth text to its next requests only while every field, array element and map entry is the same", () => {
    // As the server: a new AuditAuthInput per request, its arrays and metadata the token entry's own.
    const entry = { policies: ["default", "p1"], meta: { user: "alice" } as Record<string, string | null> };
    const authOf = (more: Partial<AuditAuthInput> = {}): AuditAuthInput => ({
      clientToken: "tok-x",
      accessor: "acc-x",
      displayName: "token",
      policies: entry.policies,
      tokenPolicies: entry.policies,
      metadata: entry.meta as Record<string, string>,
      tokenType: "service",
      policyResults: { allowed: true, grantingPolicies: [{ name: "p1", namespaceId: "root", type: "acl" }] },
      ...more,
    });
    let n = 0;
    const record = (auth: AuditAuthInput) => {
      const input: LogInput = { auth, request: { ...base, id: `r-${n++}` } };
      const text = dec.decode(formatRequestRecord(input, HASHED, hash, AT));
      expect(text).toBe(dec.decode(formatRequestRecord(fresh(input), HASHED, hash, AT)));
      return (JSON.parse(text) as Json).auth as Json;
    };
    expect(record(authOf()).policies).toEqual(["default", "p1"]);
    expect(record(authOf()).policies).toEqual(["default", "p1"]);
    entry.policies.push("p2"); // changed in place, the same array
    expect(record(authOf()).policies).toEqual(["default", "p1", "p2"]);
    entry.policies[0] = "p0";
    expect(record(authOf()).token_policies).toEqual(["p0", "p1", "p2"]);
    entry.meta.user = "bob";
    expect(record(authOf()).metadata).toEqual({ user: "bob" });
    entry.meta.team = null;
    expect(record(authOf()).metadata).toEqual({ team: null, user: "bob" });
    entry.meta.team = undefined as unknown as null; // Go has no such entry: not written
    expect(record(authOf()).metadata).toEqual({ user: "bob" });
    delete entry.meta.team;
    expect(record(authOf()).metadata).toEqual({ user: "bob" });
    const granting = (name: string) => ({
      allowed: true,
      grantingPolicies: [{ name, namespaceId: "root", type: "acl" }],
    });
    expect(
      (record(authOf({ policyResults: granting("p2") })).policy_results as Json).granting_policies,
    ).toEqual([{ name: "p2", namespace_id: "root", type: "acl" }]);
    expect(
      (record(authOf({ policyResults: { allowed: false, grantingPolicies: [] } })).policy_results as Json)
        .allowed,
    ).toBe(false);
    expect(record(authOf({ policyResults: undefined as never })).policy_results).toBeUndefined();
    expect(record(authOf({ remainingUses: 4 })).remaining_uses).toBe(4);
    expect(record(authOf({ remainingUses: 3 })).remaining_uses).toBe(3);
    expect(record(authOf({ tokenTtl: 60 })).token_ttl).toBe(60);
    expect(record(authOf({ entityId: "ent" })).entity_id).toBe("ent");
    expect(record(authOf({ noDefaultPolicy: true })).no_default_policy).toBe(true);
    expect(record(authOf({ identityPolicies: ["i"] })).identity_policies).toEqual(["i"]);
    expect(record(authOf({ accessor: "acc-y" })).accessor).toBe(hash("acc-y"));
    expect(record(authOf({ displayName: "other" })).display_name).toBe("other");
    expect(record(authOf({ tokenType: "batch" })).token_type).toBe("batch");
    expect(record(authOf({ tokenIssueTime: "2026-12-08T02:28:01Z" })).token_issue_time).toBe(
      "2026-12-08T02:28:01Z",
    );
    expect(record(authOf()).display_name).toBe("token");
  });

  it("keeps each device's text apart: the same objects through raw, hashed and another salt, alternately", () => {
    const request: AuditRequestInput = { ...base, clientToken: "tok", clientTokenAccessor: "acc" };
    const input: LogInput = { auth: { clientToken: "tok", accessor: "acc", tokenType: "service" }, request };
    const other = hasherFor("another salt");
    const noAccessorHmac = parseFormatOptions({ hmac_accessor: "false" });
    const devices: [FormatConfig, typeof hash][] = [
      [HASHED, hash],
      [RAW, hash],
      [HASHED, other],
      [noAccessorHmac, hash],
    ];
    const texts = new Set<string>();
    for (let round = 0; round < 2; round++) {
      for (const [config, h] of devices) {
        for (const f of [formatRequestRecord, formatResponseRecord]) {
          const text = dec.decode(f(input, config, h, AT));
          expect(text).toBe(dec.decode(f(fresh(input), config, h, AT)));
          if (f === formatRequestRecord) texts.add(text);
        }
      }
    }
    expect(texts.size).toBe(devices.length);
    // A config changed in place (it never is, but then it must not be served stale either).
    const mutable = parseFormatOptions({});
    const a = dec.decode(formatRequestRecord(input, mutable, hash, AT));
    mutable.hmacAccessor = false;
    const b = dec.decode(formatRequestRecord(input, mutable, hash, AT));
    expect(a).toContain(hash("acc"));
    expect(b).toContain('"accessor":"acc"');
  });

  it("writes every millisecond's time as toISOString with the fraction's zeros trimmed (the per-second cache)", () => {
    const reference = (d: Date) => {
      const iso = d.toISOString();
      return iso.replace(/\.?0+Z$/, "Z").replace(/\.Z$/, "Z");
    };
    const instants = [
      0, -1, -999, -1000, -1001, 1, 999, 1000, 253402300799999, 253402300800000, -62198755200001,
    ];
    let t = Date.UTC(2026, 11, 8, 2, 28, 1, 0);
    for (let i = 0; i < 2500; i++) instants.push(t++); // crossing two seconds, every millisecond
    for (let i = 0; i < 500; i++) instants.push(Math.floor((Math.random() - 0.3) * 4e12));
    for (const ms of instants) {
      const d = new Date(ms);
      const r = JSON.parse(dec.decode(formatRequestRecord({ request: base }, HASHED, hash, d))) as Json;
      expect(r.time, String(ms)).toBe(reference(d));
    }
    expect(() => formatRequestRecord({ request: base }, HASHED, hash, new Date(Number.NaN))).toThrow(
      RangeError,
    );
  });

  it("writes strings with nothing to escape as they are, and the rest as Go does, at the fast path's edges", () => {
    for (const s of ["", "a", "secret/data/x", "v2.0.0+builtin.bao", "é", "\u2027", "\u202a", "\ue000", "😀"])
      expect(goJsonString(s), JSON.stringify(s)).toBe(`"${s}"`);
    expect(goJsonString("\u001f")).toBe('"\\u001f"');
    expect(goJsonString(" ")).toBe('" "');
    expect(goJsonString('a"b')).toBe('"a\\"b"');
    expect(goJsonString("a\\b")).toBe('"a\\\\b"');
    expect(goJsonString("\u007f")).toBe('"\u007f"');
    expect(goJsonString("<&>")).toBe('"\\u003c\\u0026\\u003e"');
    expect(goJsonString("\u2028\u2029")).toBe('"\\u2028\\u2029"');
    expect(goJsonString("\udfff")).toBe('"\ufffd"');
  });
});
