/**
 * KV v2's storage records, encoded as OpenBao 2.6.2's `builtin/logical/kv/types.proto` (package
 * `kv`; Vault's `vault-plugin-secrets-kv` uses the same field numbers 1–10, and 400/401 are
 * OpenBao's additions, which Vault keeps as unknown fields). See docs/vault-storage-formats.md §6.2.
 *
 * Proto3 rules: scalar fields holding their zero value are omitted; a present Timestamp/Duration is
 * written even when zero (Go writes a non-nil empty message as a zero-length field). Fields a record
 * holds that this version does not know are kept verbatim in `unknown` and written back after the
 * known ones, so a record written by a newer Vault or OpenBao survives a read-modify-write here.
 */
import { hrtime } from "node:process";
import { joinChunks, ProtoReader, ProtoWriter, WireType } from "../encoding/protobuf.js";
import { VaultError } from "../errors.js";

/** A protobuf Timestamp or Duration: seconds and nanoseconds (both 0 = unset/zero). */
export interface PbTime {
  seconds: number;
  nanos: number;
}

export interface VersionMeta {
  created_time?: PbTime;
  deletion_time?: PbTime;
  destroyed: boolean;
}

export interface KeyMetadata {
  key: string;
  versions: Map<number, VersionMeta>;
  current_version: number;
  oldest_version: number;
  created_time?: PbTime;
  updated_time?: PbTime;
  max_versions: number;
  cas_required: boolean;
  delete_version_after?: PbTime; // a Duration
  custom_metadata: Map<string, string>;
  metadata_cas_required: boolean;
  current_metadata_version: number;
  /** Fields this version does not know, kept verbatim (re-encoded after the known ones). */
  unknown?: Uint8Array;
}

export interface Version {
  data: Uint8Array;
  created_time?: PbTime;
  deletion_time?: PbTime;
  unknown?: Uint8Array;
}

export interface Configuration {
  max_versions: number;
  cas_required: boolean;
  delete_version_after?: PbTime;
  metadata_cas_required: boolean;
  unknown?: Uint8Array;
}

export interface UpgradeInfo {
  started_time?: PbTime;
  done: boolean;
}

// ---- Timestamp / Duration ------------------------------------------------------------------

const NANOS_PER_SECOND = 1_000_000_000;
/** google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. */
const MIN_TIMESTAMP_S = -62_135_596_800;
const MAX_TIMESTAMP_S = 253_402_300_799;
const MAX_UINT32 = 0xffff_ffff;

type TimeKind = "Timestamp" | "Duration";

function decodeTime(
  r: ProtoReader,
  kind: TimeKind,
  what: string | (() => string),
  prev: PbTime | undefined,
): PbTime {
  const sub = new ProtoReader(r.bytes(), what);
  // A message field seen twice is merged (Go's proto.Unmarshal), so start from the previous one.
  const t: PbTime = { seconds: prev?.seconds ?? 0, nanos: prev?.nanos ?? 0 };
  while (!sub.done) {
    const start = sub.pos;
    const { field, wire } = sub.tag();
    if (field === 1) {
      sub.field(1, "seconds", WireType.VARINT, wire);
      t.seconds = sub.int64();
    } else if (field === 2) {
      sub.field(2, "nanos", WireType.VARINT, wire);
      t.nanos = sub.int32();
    } else {
      // Timestamp and Duration have no other fields; anything else is dropped as Go's well-known
      // types would keep it but nothing ever reads it.
      sub.skip(field, wire, start);
    }
  }
  checkTime(t, kind, (d) => sub.fail(d));
  return t;
}

function checkTime(t: PbTime, kind: TimeKind, fail: (detail: string) => Error): void {
  if (!Number.isSafeInteger(t.seconds)) throw fail(`${kind} seconds ${t.seconds} is not an integer`);
  if (!Number.isInteger(t.nanos)) throw fail(`${kind} nanos ${t.nanos} is not an integer`);
  if (kind === "Timestamp") {
    if (t.nanos < 0 || t.nanos >= NANOS_PER_SECOND)
      throw fail(`Timestamp nanos ${t.nanos} is outside 0..999999999`);
  } else if (t.nanos <= -NANOS_PER_SECOND || t.nanos >= NANOS_PER_SECOND) {
    throw fail(`Duration nanos ${t.nanos} is outside ±999999999`);
  } else if ((t.seconds > 0 && t.nanos < 0) || (t.seconds < 0 && t.nanos > 0)) {
    throw fail(`Duration seconds ${t.seconds} and nanos ${t.nanos} have different signs`);
  }
}

function writeTime(w: ProtoWriter, field: number, t: PbTime | undefined, kind: TimeKind, name: string): void {
  if (t === undefined) return;
  checkTime(t, kind, (d) => new RangeError(`${name}: ${d}`));
  w.messageField(field, (m) =>
    m.intField(1, t.seconds, `${name}.seconds`).intField(2, t.nanos, `${name}.nanos`),
  );
}

// ---- KeyMetadata ---------------------------------------------------------------------------

export function encodeKeyMetadata(m: KeyMetadata): Uint8Array {
  const w = new ProtoWriter(96 + m.key.length * 3 + m.versions.size * 40 + (m.unknown?.length ?? 0));
  w.stringField(1, m.key);
  // Go writes map entries in random order; ascending versions make our records deterministic.
  for (const n of [...m.versions.keys()].sort((a, b) => a - b)) {
    const v = m.versions.get(n) as VersionMeta;
    w.messageField(2, (e) => {
      // Go's map codec writes an entry's key and value even when zero.
      e.tag(1, WireType.VARINT).uint(n, "versions key");
      e.messageField(2, (vm) => {
        writeTime(vm, 1, v.created_time, "Timestamp", `versions[${n}].created_time`);
        writeTime(vm, 2, v.deletion_time, "Timestamp", `versions[${n}].deletion_time`);
        vm.boolField(3, v.destroyed);
      });
    });
  }
  w.uintField(3, m.current_version, "current_version");
  w.uintField(4, m.oldest_version, "oldest_version");
  writeTime(w, 5, m.created_time, "Timestamp", "created_time");
  writeTime(w, 6, m.updated_time, "Timestamp", "updated_time");
  w.uintField(7, uint32(m.max_versions, "max_versions"));
  w.boolField(8, m.cas_required);
  writeTime(w, 9, m.delete_version_after, "Duration", "delete_version_after");
  for (const [k, v] of m.custom_metadata) {
    w.messageField(10, (e) => {
      e.tag(1, WireType.LEN).string(k);
      e.tag(2, WireType.LEN).string(v);
    });
  }
  w.boolField(400, m.metadata_cas_required);
  w.uintField(401, m.current_metadata_version, "current_metadata_version");
  if (m.unknown !== undefined) w.raw(m.unknown);
  return w.finish();
}

export function decodeKeyMetadata(b: Uint8Array): KeyMetadata {
  const what = "KV v2 KeyMetadata";
  const r = new ProtoReader(b, what);
  const m: KeyMetadata = {
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
  const unknown: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.field(1, "key", WireType.LEN, wire);
        m.key = r.string();
        break;
      case 2: {
        r.field(2, "versions", WireType.LEN, wire);
        // A repeated key replaces the earlier entry (Go's map semantics), it does not merge.
        const [n, v] = decodeVersionEntry(r, `${what} field 2 (versions) entry`);
        m.versions.set(n, v);
        break;
      }
      case 3:
        r.field(3, "current_version", WireType.VARINT, wire);
        m.current_version = r.uint();
        break;
      case 4:
        r.field(4, "oldest_version", WireType.VARINT, wire);
        m.oldest_version = r.uint();
        break;
      case 5:
        r.field(5, "created_time", WireType.LEN, wire);
        m.created_time = decodeTime(r, "Timestamp", `${what} field 5 (created_time)`, m.created_time);
        break;
      case 6:
        r.field(6, "updated_time", WireType.LEN, wire);
        m.updated_time = decodeTime(r, "Timestamp", `${what} field 6 (updated_time)`, m.updated_time);
        break;
      case 7:
        r.field(7, "max_versions", WireType.VARINT, wire);
        m.max_versions = r.uint32();
        break;
      case 8:
        r.field(8, "cas_required", WireType.VARINT, wire);
        m.cas_required = r.bool();
        break;
      case 9:
        r.field(9, "delete_version_after", WireType.LEN, wire);
        m.delete_version_after = decodeTime(
          r,
          "Duration",
          `${what} field 9 (delete_version_after)`,
          m.delete_version_after,
        );
        break;
      case 10: {
        r.field(10, "custom_metadata", WireType.LEN, wire);
        const [k, v] = decodeStringEntry(r, `${what} field 10 (custom_metadata) entry`);
        m.custom_metadata.set(k, v);
        break;
      }
      case 400:
        r.field(400, "metadata_cas_required", WireType.VARINT, wire);
        m.metadata_cas_required = r.bool();
        break;
      case 401:
        r.field(401, "current_metadata_version", WireType.VARINT, wire);
        m.current_metadata_version = r.uint();
        break;
      default:
        unknown.push(r.skip(field, wire, start));
    }
  }
  const u = joinChunks(unknown);
  if (u !== undefined) m.unknown = u;
  return m;
}

function decodeVersionEntry(r: ProtoReader, what: string): [number, VersionMeta] {
  const e = new ProtoReader(r.bytes(), what);
  let n = 0;
  let value: Uint8Array | undefined;
  while (!e.done) {
    const start = e.pos;
    const { field, wire } = e.tag();
    if (field === 1) {
      e.field(1, "key", WireType.VARINT, wire);
      n = e.uint();
    } else if (field === 2) {
      e.field(2, "value", WireType.LEN, wire);
      value = e.bytes();
    } else {
      e.skip(field, wire, start);
    }
  }
  const v: VersionMeta = { destroyed: false };
  if (value === undefined) return [n, v];
  const vr = new ProtoReader(value, () => `${what} for version ${n}`);
  while (!vr.done) {
    const start = vr.pos;
    const { field, wire } = vr.tag();
    switch (field) {
      case 1:
        vr.field(1, "created_time", WireType.LEN, wire);
        v.created_time = decodeTime(
          vr,
          "Timestamp",
          () => `${what} for version ${n}, created_time`,
          v.created_time,
        );
        break;
      case 2:
        vr.field(2, "deletion_time", WireType.LEN, wire);
        v.deletion_time = decodeTime(
          vr,
          "Timestamp",
          () => `${what} for version ${n}, deletion_time`,
          v.deletion_time,
        );
        break;
      case 3:
        vr.field(3, "destroyed", WireType.VARINT, wire);
        v.destroyed = vr.bool();
        break;
      default:
        vr.skip(field, wire, start);
    }
  }
  return [n, v];
}

function decodeStringEntry(r: ProtoReader, what: string): [string, string] {
  const e = new ProtoReader(r.bytes(), what);
  let k = "";
  let v = "";
  while (!e.done) {
    const start = e.pos;
    const { field, wire } = e.tag();
    if (field === 1) {
      e.field(1, "key", WireType.LEN, wire);
      k = e.string();
    } else if (field === 2) {
      e.field(2, "value", WireType.LEN, wire);
      v = e.string();
    } else {
      e.skip(field, wire, start);
    }
  }
  return [k, v];
}

// ---- Version -------------------------------------------------------------------------------

export function encodeVersion(v: Version): Uint8Array {
  const w = new ProtoWriter(v.data.length + 48 + (v.unknown?.length ?? 0));
  w.bytesField(1, v.data);
  writeTime(w, 2, v.created_time, "Timestamp", "created_time");
  writeTime(w, 3, v.deletion_time, "Timestamp", "deletion_time");
  if (v.unknown !== undefined) w.raw(v.unknown);
  return w.finish();
}

export function decodeVersion(b: Uint8Array): Version {
  const what = "KV v2 Version";
  const r = new ProtoReader(b, what);
  const v: Version = { data: new Uint8Array(0) };
  const unknown: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.field(1, "data", WireType.LEN, wire);
        // A copy: the caller may keep the data after the storage buffer is reused.
        v.data = r.bytes().slice();
        break;
      case 2:
        r.field(2, "created_time", WireType.LEN, wire);
        v.created_time = decodeTime(r, "Timestamp", `${what} field 2 (created_time)`, v.created_time);
        break;
      case 3:
        r.field(3, "deletion_time", WireType.LEN, wire);
        v.deletion_time = decodeTime(r, "Timestamp", `${what} field 3 (deletion_time)`, v.deletion_time);
        break;
      default:
        unknown.push(r.skip(field, wire, start));
    }
  }
  const u = joinChunks(unknown);
  if (u !== undefined) v.unknown = u;
  return v;
}

// ---- Configuration -------------------------------------------------------------------------

export function encodeConfiguration(c: Configuration): Uint8Array {
  const w = new ProtoWriter();
  w.uintField(1, uint32(c.max_versions, "max_versions"));
  w.boolField(2, c.cas_required);
  writeTime(w, 3, c.delete_version_after, "Duration", "delete_version_after");
  w.boolField(400, c.metadata_cas_required);
  if (c.unknown !== undefined) w.raw(c.unknown);
  return w.finish();
}

export function decodeConfiguration(b: Uint8Array): Configuration {
  const what = "KV v2 Configuration";
  const r = new ProtoReader(b, what);
  const c: Configuration = { max_versions: 0, cas_required: false, metadata_cas_required: false };
  const unknown: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.field(1, "max_versions", WireType.VARINT, wire);
        c.max_versions = r.uint32();
        break;
      case 2:
        r.field(2, "cas_required", WireType.VARINT, wire);
        c.cas_required = r.bool();
        break;
      case 3:
        r.field(3, "delete_version_after", WireType.LEN, wire);
        c.delete_version_after = decodeTime(
          r,
          "Duration",
          `${what} field 3 (delete_version_after)`,
          c.delete_version_after,
        );
        break;
      case 400:
        r.field(400, "metadata_cas_required", WireType.VARINT, wire);
        c.metadata_cas_required = r.bool();
        break;
      default:
        unknown.push(r.skip(field, wire, start));
    }
  }
  const u = joinChunks(unknown);
  if (u !== undefined) c.unknown = u;
  return c;
}

// ---- UpgradeInfo ---------------------------------------------------------------------------

export function encodeUpgradeInfo(u: UpgradeInfo): Uint8Array {
  const w = new ProtoWriter();
  writeTime(w, 1, u.started_time, "Timestamp", "started_time");
  w.boolField(2, u.done);
  return w.finish();
}

export function decodeUpgradeInfo(b: Uint8Array): UpgradeInfo {
  const what = "KV v2 UpgradeInfo";
  const r = new ProtoReader(b, what);
  const u: UpgradeInfo = { done: false };
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    switch (field) {
      case 1:
        r.field(1, "started_time", WireType.LEN, wire);
        u.started_time = decodeTime(r, "Timestamp", `${what} field 1 (started_time)`, u.started_time);
        break;
      case 2:
        r.field(2, "done", WireType.VARINT, wire);
        u.done = r.bool();
        break;
      default:
        // The marker is rewritten whole by the upgrade; nothing else is worth keeping.
        r.skip(field, wire, start);
    }
  }
  return u;
}

function uint32(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_UINT32) {
    throw new RangeError(`${name} must be an integer in 0..${MAX_UINT32} (a uint32), got ${n}`);
  }
  return n;
}

// ---- Times ---------------------------------------------------------------------------------

/**
 * Go's time.Time RFC3339Nano as OpenBao's API prints it ("2026-12-07T23:19:08.713174566Z",
 * trailing zeros trimmed); undefined → "".
 */
export function formatTime(t: PbTime | undefined): string {
  if (t === undefined) return "";
  // Outside the range Go's ptypes.Timestamp accepts, OpenBao answers an error too.
  if (!Number.isSafeInteger(t.seconds) || t.seconds < MIN_TIMESTAMP_S || t.seconds > MAX_TIMESTAMP_S) {
    throw new VaultError(
      "internal",
      `KV v2 timestamp ${t.seconds}s is outside 0001-01-01..9999-12-31: the stored record is damaged`,
    );
  }
  if (!Number.isInteger(t.nanos) || t.nanos < 0 || t.nanos >= NANOS_PER_SECOND) {
    throw new VaultError(
      "internal",
      `KV v2 timestamp nanos ${t.nanos} is outside 0..999999999: the stored record is damaged`,
    );
  }
  const base = new Date(t.seconds * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return `${base}Z`;
  return `${base}.${String(t.nanos).padStart(9, "0").replace(/0+$/, "")}Z`;
}

export function timeFromMs(ms: number): PbTime {
  if (!Number.isFinite(ms)) throw new RangeError(`time in milliseconds must be finite, got ${ms}`);
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.min(NANOS_PER_SECOND - 1, Math.round((ms - seconds * 1000) * 1_000_000));
  return { seconds, nanos };
}

export function timeToMs(t: PbTime): number {
  return t.seconds * 1000 + Math.floor(t.nanos / 1_000_000);
}

// The last time nowTime() returned, in nanoseconds since the epoch.
let lastNowNs = 0n;

/** Now, with the sub-millisecond part from a monotonic clock so two calls in one ms differ. */
export function nowTime(): PbTime {
  // Date.now() gives the wall clock to the millisecond; the high-resolution clock's sub-millisecond
  // digits fill in the rest (Go's time.Now has nanoseconds, and OpenBao prints them). A call that
  // would not come after the previous one gets the previous + 1 ns, so times within one process
  // strictly increase; a wall clock set back by more than a second is followed rather than held.
  let ns = BigInt(Date.now()) * 1_000_000n + (hrtime.bigint() % 1_000_000n);
  if (ns <= lastNowNs && lastNowNs - ns < 1_000_000_000n) ns = lastNowNs + 1n;
  lastNowNs = ns;
  return { seconds: Number(ns / 1_000_000_000n), nanos: Number(ns % 1_000_000_000n) };
}

export function durationFromSeconds(s: number): PbTime {
  if (!Number.isFinite(s)) throw new RangeError(`duration in seconds must be finite, got ${s}`);
  const seconds = Math.trunc(s);
  const nanos = Math.round((s - seconds) * NANOS_PER_SECOND);
  // Rounding can reach a whole second (e.g. 0.9999999999 s).
  if (nanos === NANOS_PER_SECOND) return { seconds: seconds + 1, nanos: 0 };
  if (nanos === -NANOS_PER_SECOND) return { seconds: seconds - 1, nanos: 0 };
  return { seconds, nanos: nanos === 0 ? 0 : nanos };
}

export function durationToSeconds(d: PbTime | undefined): number {
  if (d === undefined) return 0;
  return d.seconds + d.nanos / NANOS_PER_SECOND;
}
