import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProtoReader, ProtoWriter, WireType } from "../encoding/protobuf.js";
import { VaultError } from "../errors.js";
import { formatGoDuration } from "../request/fields.js";
import { openbaoKv2 } from "./test-helpers.js";
import {
  type Configuration,
  decodeConfiguration,
  decodeKeyMetadata,
  decodeUpgradeInfo,
  decodeVersion,
  durationFromSeconds,
  durationToSeconds,
  encodeConfiguration,
  encodeKeyMetadata,
  encodeUpgradeInfo,
  encodeVersion,
  formatTime,
  type KeyMetadata,
  nowTime,
  type PbTime,
  timeFromMs,
  timeToMs,
  type UpgradeInfo,
  type Version,
  type VersionMeta,
} from "./v2-records.js";

const fixture = openbaoKv2;

const b64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function recordsOf(mount: string, kind: string): [string, Uint8Array][] {
  const m = fixture.mounts[mount];
  if (m === undefined) throw new Error(`no mount ${mount} in the fixture`);
  return Object.entries(m.records)
    .filter(([p]) => p.startsWith(`${m.backend_uuid}/${kind}`))
    .map(([p, v]) => [p, b64(v)]);
}

/** The top-level fields of a message as hex chunks, sorted (Go writes map entries in any order). */
function fieldSet(b: Uint8Array): string[] {
  const r = new ProtoReader(b, "test");
  const out: string[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    out.push(hex(r.skip(field, wire, start)));
  }
  return out.sort();
}

interface ApiMetadata {
  cas_required: boolean;
  created_time: string;
  current_metadata_version: number;
  current_version: number;
  custom_metadata: Record<string, string> | null;
  delete_version_after: string;
  max_versions: number;
  metadata_cas_required: boolean;
  oldest_version: number;
  updated_time: string;
  versions: Record<string, { created_time: string; deletion_time: string; destroyed: boolean }>;
}

/** What OpenBao's `GET <mount>/metadata/<key>` prints for a record (before delete_version_after). */
function asApi(m: KeyMetadata): ApiMetadata {
  const versions: ApiMetadata["versions"] = {};
  for (const [n, v] of m.versions) {
    versions[String(n)] = {
      created_time: formatTime(v.created_time),
      deletion_time: formatTime(v.deletion_time),
      destroyed: v.destroyed,
    };
  }
  return {
    cas_required: m.cas_required,
    created_time: formatTime(m.created_time),
    current_metadata_version: m.current_metadata_version,
    current_version: m.current_version,
    custom_metadata: m.custom_metadata.size === 0 ? null : Object.fromEntries(m.custom_metadata),
    delete_version_after: formatGoDuration(durationToSeconds(m.delete_version_after) * 1000),
    max_versions: m.max_versions,
    metadata_cas_required: m.metadata_cas_required,
    oldest_version: m.oldest_version,
    updated_time: formatTime(m.updated_time),
    versions,
  };
}

describe("OpenBao's records", () => {
  for (const mount of ["kv2", "kv3"]) {
    it(`decode every KeyMetadata of ${mount} to what OpenBao answers for it`, () => {
      const api = fixture.mounts[mount]?.api ?? {};
      const expected = Object.entries(api)
        .filter(([k]) => k.startsWith("metadata:"))
        .map(([k, v]) => [k.slice("metadata:".length), v]);
      const got = recordsOf(mount, "metadata/").map(([, b]) => {
        const m = decodeKeyMetadata(b);
        return [m.key, asApi(m)];
      });
      expect(expected.length).toBeGreaterThan(1);
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));
    });

    it(`decode every Version of ${mount} to the data OpenBao answers`, () => {
      const api = fixture.mounts[mount]?.api ?? {};
      // The version path hides key and number, so compare the (created_time, data) pairs.
      const expected = Object.entries(api)
        .filter(([k, v]) => k.startsWith("data:") && v !== null)
        .map(([, v]) => {
          const d = v as { data: unknown; metadata: { created_time: string } };
          return `${d.metadata.created_time} ${JSON.stringify(d.data)}`;
        });
      const got = recordsOf(mount, "versions/").map(([, b]) => {
        const v = decodeVersion(b);
        expect(v.deletion_time).toBeUndefined();
        return `${formatTime(v.created_time)} ${JSON.stringify(JSON.parse(Buffer.from(v.data).toString("utf8")))}`;
      });
      // The soft-deleted app/db version 4 is still stored but OpenBao answers 404 for its data.
      for (const e of expected) expect(got).toContain(e);
      expect(got.length).toBe(expected.length + (mount === "kv2" ? 1 : 0));
    });
  }

  it("decode the app/db metadata with its destroyed, deleted and undeleted versions", () => {
    const [, b] = recordsOf("kv2", "metadata/").find(([, r]) => decodeKeyMetadata(r).key === "app/db") ?? [];
    const m = decodeKeyMetadata(b as Uint8Array);
    expect([...m.versions.keys()].sort()).toEqual([1, 2, 3, 4]);
    expect(m.versions.get(1)?.destroyed).toBe(true);
    expect(m.versions.get(2)?.deletion_time).toBeUndefined();
    expect(m.versions.get(4)?.deletion_time?.seconds).toBeGreaterThan(0);
    expect(m.delete_version_after).toEqual({ seconds: 259_200, nanos: 0 });
    expect(m.current_metadata_version).toBe(1);
    expect(m.custom_metadata).toEqual(
      new Map([
        ["env", "prod"],
        ["owner", "ops"],
      ]),
    );
    expect(m.unknown).toBeUndefined();
  });

  it("decode the Configuration and UpgradeInfo records, including OpenBao's field 400", () => {
    const [[, c2]] = recordsOf("kv2", "config") as [[string, Uint8Array]];
    expect(hex(c2)).toBe("080a1a0308d804");
    expect(decodeConfiguration(c2)).toEqual({
      max_versions: 10,
      cas_required: false,
      delete_version_after: { seconds: 600, nanos: 0 },
      metadata_cas_required: false,
    });
    const [[, c3]] = recordsOf("kv3", "config") as [[string, Uint8Array]];
    expect(decodeConfiguration(c3)).toEqual({
      max_versions: 3,
      cas_required: false,
      metadata_cas_required: true,
    });
    for (const mount of ["kv2", "kv3"]) {
      const [[, u]] = recordsOf(mount, "upgrading") as [[string, Uint8Array]];
      const info = decodeUpgradeInfo(u);
      expect(info.done).toBe(true);
      expect(formatTime(info.started_time)).toMatch(/^2026-12-07T23:5\d:\d\d(\.\d+)?Z$/);
    }
  });

  it("re-encode to OpenBao's exact bytes (KeyMetadata: the same fields, map entries in any order)", () => {
    for (const mount of ["kv2", "kv3"]) {
      for (const [p, b] of recordsOf(mount, "versions/")) {
        expect(hex(encodeVersion(decodeVersion(b))), p).toBe(hex(b));
      }
      for (const [p, b] of recordsOf(mount, "metadata/")) {
        expect(fieldSet(encodeKeyMetadata(decodeKeyMetadata(b))), p).toEqual(fieldSet(b));
      }
      for (const [, b] of recordsOf(mount, "config"))
        expect(hex(encodeConfiguration(decodeConfiguration(b)))).toBe(hex(b));
      for (const [, b] of recordsOf(mount, "upgrading"))
        expect(hex(encodeUpgradeInfo(decodeUpgradeInfo(b)))).toBe(hex(b));
    }
  });
});

describe("proto3 encoding", () => {
  it("omits zero values: an all-zero record is empty", () => {
    const empty: KeyMetadata = {
      key: "",
      versions: new Map(),
      current_version: 0,
      oldest_version: 0,
      max_versions: 0,
      cas_required: false,
      custom_metadata: new Map(),
      metadata_cas_required: false,
      current_metadata_version: 0,
    };
    expect(encodeKeyMetadata(empty).length).toBe(0);
    expect(decodeKeyMetadata(new Uint8Array())).toEqual(empty);
    expect(encodeVersion({ data: new Uint8Array() }).length).toBe(0);
    expect(
      encodeConfiguration({ max_versions: 0, cas_required: false, metadata_cas_required: false }).length,
    ).toBe(0);
    expect(encodeUpgradeInfo({ done: false }).length).toBe(0);
  });

  it("writes a present zero Duration as an empty message, as Go does for a non-nil one", () => {
    const c = {
      max_versions: 0,
      cas_required: false,
      delete_version_after: { seconds: 0, nanos: 0 },
      metadata_cas_required: false,
    };
    expect(hex(encodeConfiguration(c))).toBe("1a00");
    expect(decodeConfiguration(encodeConfiguration(c))).toEqual(c);
  });

  it("writes map entries with their zero key and value, as Go's map codec does", () => {
    const m = decodeKeyMetadata(new Uint8Array());
    m.custom_metadata.set("", "");
    m.versions.set(1, { destroyed: false });
    expect(hex(encodeKeyMetadata(m))).toBe("1204080112005204" + "0a001200");
  });

  it("refuses to encode values the fields cannot hold", () => {
    const c: Configuration = { max_versions: 2 ** 32, cas_required: false, metadata_cas_required: false };
    expect(() => encodeConfiguration(c)).toThrow(/max_versions must be an integer in 0\.\.4294967295/);
    const v: Version = { data: new Uint8Array(), created_time: { seconds: 1, nanos: 1e9 } };
    expect(() => encodeVersion(v)).toThrow(/created_time: Timestamp nanos 1000000000 is outside/);
    const m = decodeKeyMetadata(new Uint8Array());
    m.current_version = 2 ** 53;
    expect(() => encodeKeyMetadata(m)).toThrow(/current_version must be an integer/);
  });
});

describe("malformed records are refused with the record and field named", () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      "key sent as a varint",
      () => decodeKeyMetadata(Buffer.from("0801", "hex")),
      /KV v2 KeyMetadata.*field 1 \(key\): expected wire type length-delimited/,
    ],
    [
      "key not UTF-8",
      () => decodeKeyMetadata(Buffer.from("0a01ff", "hex")),
      /KV v2 KeyMetadata.*field 1 \(key\): string is not valid UTF-8/,
    ],
    [
      "truncated versions entry",
      () => decodeKeyMetadata(Buffer.from("120508011202", "hex")),
      /KV v2 KeyMetadata.*field 2 \(versions\): length 5 runs past the end/,
    ],
    [
      "version timestamp with nanos ≥ 1e9",
      () =>
        decodeKeyMetadata(
          new ProtoWriter()
            .messageField(2, (e) =>
              e
                .tag(1, WireType.VARINT)
                .uint(3)
                .messageField(2, (v) => v.messageField(1, (t) => t.intField(1, 1).intField(2, 1e9))),
            )
            .finish(),
        ),
      /KV v2 KeyMetadata field 2 \(versions\) entry for version 3, created_time.*Timestamp nanos 1000000000 is outside 0\.\.999999999/,
    ],
    [
      "Version timestamp with negative nanos",
      () => decodeVersion(new ProtoWriter().messageField(2, (t) => t.intField(2, -1)).finish()),
      /KV v2 Version field 2 \(created_time\).*Timestamp nanos -1 is outside/,
    ],
    [
      "Duration with mixed signs",
      () =>
        decodeConfiguration(
          new ProtoWriter().messageField(3, (w) => w.intField(1, 5).intField(2, -1)).finish(),
        ),
      /Configuration field 3 \(delete_version_after\).*different signs/,
    ],
    [
      "current_version above 2^53",
      () => decodeKeyMetadata(Buffer.from("188080808080808010", "hex")),
      /field 3 \(current_version\): value 9007199254740992 is above/,
    ],
    [
      "done truncated",
      () => decodeUpgradeInfo(Buffer.from("1080", "hex")),
      /KV v2 UpgradeInfo.*field 2 \(done\): varint is truncated/,
    ],
    [
      "data sent as fixed32",
      () => decodeVersion(Buffer.from("0d01020304", "hex")),
      /KV v2 Version.*field 1 \(data\): expected wire type length-delimited, found fixed32/,
    ],
  ];
  it.each(cases)("%s", (_, fn, re) => {
    expect(fn).toThrow(VaultError);
    expect(fn).toThrow(re);
  });

  it("any truncation of an OpenBao record is refused or decodes, never crashes", () => {
    const all = [...recordsOf("kv2", "metadata/"), ...recordsOf("kv2", "versions/")].map(([, b]) => b);
    for (const b of all) {
      for (let cut = 1; cut < b.length; cut++) {
        try {
          decodeKeyMetadata(b.subarray(0, cut));
        } catch (e) {
          expect(e).toBeInstanceOf(VaultError);
        }
      }
    }
  });
});

describe("times", () => {
  it("formats like Go's RFC3339Nano, trailing zeros trimmed", () => {
    expect(formatTime(undefined)).toBe("");
    expect(formatTime({ seconds: 1_796_685_548, nanos: 713_174_566 })).toBe("2026-12-07T23:19:08.713174566Z");
    expect(formatTime({ seconds: 1_796_685_548, nanos: 219_472_000 })).toBe("2026-12-07T23:19:08.219472Z");
    expect(formatTime({ seconds: 1_796_685_548, nanos: 0 })).toBe("2026-12-07T23:19:08Z");
    expect(formatTime({ seconds: 0, nanos: 0 })).toBe("1970-01-01T00:00:00Z");
    expect(formatTime({ seconds: -62_135_596_800, nanos: 1 })).toBe("0001-01-01T00:00:00.000000001Z");
    expect(() => formatTime({ seconds: 253_402_300_800, nanos: 0 })).toThrow(
      /outside 0001-01-01\.\.9999-12-31/,
    );
  });

  it("converts to and from milliseconds", () => {
    expect(timeFromMs(1_796_685_548_713)).toEqual({ seconds: 1_796_685_548, nanos: 713_000_000 });
    expect(timeFromMs(-1)).toEqual({ seconds: -1, nanos: 999_000_000 });
    expect(timeToMs({ seconds: 1_796_685_548, nanos: 713_174_566 })).toBe(1_796_685_548_713);
    fc.assert(
      fc.property(fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), (ms) => {
        expect(timeToMs(timeFromMs(ms))).toBe(ms);
      }),
    );
  });

  it("nowTime is the wall clock and strictly increases, even within one millisecond", () => {
    const before = Date.now();
    const ts = Array.from({ length: 2000 }, () => nowTime());
    const after = Date.now();
    for (let i = 1; i < ts.length; i++) {
      const a = ts[i - 1] as PbTime;
      const b = ts[i] as PbTime;
      expect(b.seconds > a.seconds || (b.seconds === a.seconds && b.nanos > a.nanos)).toBe(true);
    }
    expect(timeToMs(ts[0] as PbTime)).toBeGreaterThanOrEqual(before);
    expect(timeToMs(ts.at(-1) as PbTime)).toBeLessThanOrEqual(after + 1);
  });

  it("converts durations to and from seconds", () => {
    expect(durationFromSeconds(259_200)).toEqual({ seconds: 259_200, nanos: 0 });
    expect(durationFromSeconds(1.5)).toEqual({ seconds: 1, nanos: 500_000_000 });
    expect(durationFromSeconds(-1.5)).toEqual({ seconds: -1, nanos: -500_000_000 });
    expect(durationFromSeconds(0.9999999999)).toEqual({ seconds: 1, nanos: 0 });
    expect(durationToSeconds(undefined)).toBe(0);
    expect(durationToSeconds({ seconds: 1, nanos: 500_000_000 })).toBe(1.5);
    expect(() => durationFromSeconds(Number.NaN)).toThrow(RangeError);
  });
});

// ---- Round trips of arbitrary records ------------------------------------------------------

const arbTimestamp: fc.Arbitrary<PbTime> = fc.record({
  seconds: fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }),
  nanos: fc.integer({ min: 0, max: 999_999_999 }),
});
const arbDuration: fc.Arbitrary<PbTime> = fc
  .tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 999_999_999 }))
  .map(([s, n]) => ({ seconds: s, nanos: n === 0 || s === 0 ? 0 : s < 0 ? -n : n }));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const safeUint = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

/** Unknown fields: numbers no KV v2 message uses, any wire type. */
const arbUnknown: fc.Arbitrary<Uint8Array | undefined> = opt(
  fc
    .array(
      fc.oneof(
        fc
          .tuple(fc.integer({ min: 11, max: 399 }), safeUint)
          .map(([f, n]) => new ProtoWriter().tag(f, WireType.VARINT).uint(n).finish()),
        fc
          .tuple(fc.integer({ min: 402, max: 2 ** 29 - 1 }), fc.uint8Array({ maxLength: 20 }))
          .map(([f, b]) => new ProtoWriter().tag(f, WireType.LEN).bytes(b).finish()),
        fc
          .tuple(fc.integer({ min: 11, max: 399 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
          .map(([f, b]) => new ProtoWriter().tag(f, WireType.I64).raw(b).finish()),
        fc
          .tuple(fc.integer({ min: 11, max: 399 }), fc.uint8Array({ minLength: 4, maxLength: 4 }))
          .map(([f, b]) => new ProtoWriter().tag(f, WireType.I32).raw(b).finish()),
        fc
          .integer({ min: 11, max: 399 })
          .map((f) =>
            new ProtoWriter()
              .tag(f, WireType.SGROUP)
              .tag(1, WireType.VARINT)
              .uint(7)
              .tag(f, WireType.EGROUP)
              .finish(),
          ),
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((chunks) => Buffer.concat(chunks.map((c) => Buffer.from(c))))
    .map((b) => new Uint8Array(b)),
);

function withOptional<T extends object>(base: T, extra: Record<string, unknown>): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out as T;
}

const arbVersionMeta: fc.Arbitrary<VersionMeta> = fc
  .record({ c: opt(arbTimestamp), d: opt(arbTimestamp), destroyed: fc.boolean() })
  .map(({ c, d, destroyed }) => withOptional({ destroyed }, { created_time: c, deletion_time: d }));

const arbKeyMetadata: fc.Arbitrary<KeyMetadata> = fc
  .record({
    key: fc.string({ unit: "binary", maxLength: 30 }),
    versions: fc.array(fc.tuple(safeUint, arbVersionMeta), { maxLength: 6 }),
    current_version: safeUint,
    oldest_version: safeUint,
    created: opt(arbTimestamp),
    updated: opt(arbTimestamp),
    max_versions: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    cas_required: fc.boolean(),
    dva: opt(arbDuration),
    custom: fc.array(
      fc.tuple(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ unit: "binary", maxLength: 12 })),
      { maxLength: 5 },
    ),
    metadata_cas_required: fc.boolean(),
    current_metadata_version: safeUint,
    unknown: arbUnknown,
  })
  .map((r) =>
    withOptional(
      {
        key: r.key,
        versions: new Map(r.versions),
        current_version: r.current_version,
        oldest_version: r.oldest_version,
        max_versions: r.max_versions,
        cas_required: r.cas_required,
        custom_metadata: new Map(r.custom),
        metadata_cas_required: r.metadata_cas_required,
        current_metadata_version: r.current_metadata_version,
      } as KeyMetadata,
      { created_time: r.created, updated_time: r.updated, delete_version_after: r.dva, unknown: r.unknown },
    ),
  );

describe("round trips (properties)", () => {
  it("KeyMetadata: decode(encode(m)) = m, unknown fields kept", () => {
    fc.assert(
      fc.property(arbKeyMetadata, (m) => {
        expect(decodeKeyMetadata(encodeKeyMetadata(m))).toEqual(m);
      }),
    );
  });

  it("Version: decode(encode(v)) = v, and encoding is deterministic", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        opt(arbTimestamp),
        opt(arbTimestamp),
        arbUnknown,
        (data, c, d, unknown) => {
          const v = withOptional<Version>({ data }, { created_time: c, deletion_time: d, unknown });
          const b = encodeVersion(v);
          expect(decodeVersion(b)).toEqual(v);
          expect(hex(encodeVersion(decodeVersion(b)))).toBe(hex(b));
        },
      ),
    );
  });

  it("Configuration and UpgradeInfo: decode(encode(x)) = x", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.boolean(),
        opt(arbDuration),
        fc.boolean(),
        arbUnknown,
        (mv, cas, dva, mcas, unknown) => {
          const c = withOptional<Configuration>(
            { max_versions: mv, cas_required: cas, metadata_cas_required: mcas },
            { delete_version_after: dva, unknown },
          );
          expect(decodeConfiguration(encodeConfiguration(c))).toEqual(c);
        },
      ),
    );
    fc.assert(
      fc.property(opt(arbTimestamp), fc.boolean(), (t, done) => {
        const u = withOptional<UpgradeInfo>({ done }, { started_time: t });
        expect(decodeUpgradeInfo(encodeUpgradeInfo(u))).toEqual(u);
      }),
    );
  });

  it("unknown fields of an OpenBao record survive a read-modify-write", () => {
    const [, b] = recordsOf("kv2", "metadata/")[0] as [string, Uint8Array];
    const extra = new ProtoWriter()
      .tag(500, WireType.LEN)
      .string("from a newer OpenBao")
      .tag(11, WireType.VARINT)
      .uint(3)
      .finish();
    const m = decodeKeyMetadata(Buffer.concat([Buffer.from(b), Buffer.from(extra)]));
    expect(hex(m.unknown as Uint8Array)).toBe(hex(extra));
    m.current_version += 1;
    const again = decodeKeyMetadata(encodeKeyMetadata(m));
    expect(hex(again.unknown as Uint8Array)).toBe(hex(extra));
    expect(again.current_version).toBe(m.current_version);
  });
});
