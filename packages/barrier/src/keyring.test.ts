import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ABSOLUTE_OPERATION_MAXIMUM, ABSOLUTE_OPERATION_MINIMUM } from "./constants.js";
import { BarrierError } from "./errors.js";
import { GoTime } from "./go-time.js";
import { deserializeKey, Keyring, serializeKey } from "./keyring.js";
import { hex, seq, text } from "./test-helpers.js";

// Written by Go's encoding/json from Vault's EncodedKeyring/Key/KeyRotationConfig structs:
// root key 0x00..0x1f, term 1 = 0x20..0x3f, term 2 = 0x40..0x5f, interval 720h.
const GO_KEYRING =
  '{"MasterKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","Keys":[' +
  '{"Term":1,"Version":1,"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","InstallTime":"2024-03-01T10:20:30.123456789Z"},' +
  '{"Term":2,"Version":1,"Value":"QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=","InstallTime":"2024-03-01T11:20:30.5+01:00","encryptions":74718331}],' +
  '"RotationConfig":{"Disabled":false,"MaxOperations":3865470566,"Interval":2592000000000000}}';
// Go's json.Marshal(&Key{Term: 1, Version: 1, Value: root}) — the core/master record.
const GO_ROOT_RECORD =
  '{"Term":1,"Version":1,"Value":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","InstallTime":"0001-01-01T00:00:00Z"}';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BarrierError);
    return (e as BarrierError).code;
  }
  return undefined;
}

describe("Keyring JSON (Vault format)", () => {
  it("parses a keyring written by Go and re-serializes it byte for byte", () => {
    const ring = Keyring.deserialize(GO_KEYRING);
    expect(ring.activeTerm).toBe(2);
    expect(ring.terms()).toEqual([1, 2]);
    expect(hex(ring.rootKey.bytes)).toBe(hex(seq(0, 32)));
    expect(hex(ring.term(1)?.value.bytes ?? new Uint8Array())).toBe(hex(seq(32, 32)));
    expect(ring.term(1)?.installTime.format()).toBe("2024-03-01T10:20:30.123456789Z");
    expect(ring.term(2)?.installTime.format()).toBe("2024-03-01T11:20:30.5+01:00");
    expect(ring.term(2)?.installTime.toDate().toISOString()).toBe("2024-03-01T10:20:30.500Z");
    expect(ring.activeKey().encryptions).toBe(74718331);
    expect(ring.rotationConfig()).toEqual({
      disabled: false,
      maxOperations: ABSOLUTE_OPERATION_MAXIMUM,
      intervalMs: 720 * 3600 * 1000,
    });
    expect(text(ring.serialize())).toBe(GO_KEYRING);
  });

  it("writes exactly Vault's field names and order, omitting encryptions when 0", () => {
    const ring = new Keyring(seq(0, 32));
    ring.addKey({ term: 1, value: seq(32, 32), installTime: new Date("2024-03-01T10:20:30.123Z") });
    expect(text(ring.serialize())).toBe(
      '{"MasterKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","Keys":[{"Term":1,"Version":1,' +
        '"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","InstallTime":"2024-03-01T10:20:30.123Z"}],' +
        '"RotationConfig":{"Disabled":false,"MaxOperations":3865470566,"Interval":0}}',
    );
    ring.activeKey().encryptions = 5;
    expect(text(ring.serialize())).toContain('"InstallTime":"2024-03-01T10:20:30.123Z","encryptions":5}');
    const parsed = JSON.parse(text(ring.serialize())) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["MasterKey", "Keys", "RotationConfig"]);
    expect(Object.keys((parsed.Keys as object[])[0] as object)).toEqual([
      "Term",
      "Version",
      "Value",
      "InstallTime",
      "encryptions",
    ]);
    expect(Object.keys(parsed.RotationConfig as object)).toEqual(["Disabled", "MaxOperations", "Interval"]);
  });

  it("serializes the root-key record like Go, with the zero InstallTime Vault writes", () => {
    const rec = { term: 1, version: 1, value: seq(0, 32), installTime: GoTime.ZERO, encryptions: 0 };
    expect(text(serializeKey(rec))).toBe(GO_ROOT_RECORD);
    const back = deserializeKey(GO_ROOT_RECORD);
    expect(back.installTime.isZero()).toBe(true);
    expect(hex(back.value)).toBe(hex(seq(0, 32)));
    expect(text(serializeKey(back))).toBe(GO_ROOT_RECORD);
  });

  it("decodes like Go: case-insensitive names, unknown fields ignored, missing fields zero", () => {
    const ring = Keyring.deserialize(
      '{"masterkey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","extra":[1,2],' +
        '"keys":[{"term":3,"value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","Whatever":true}]}',
    );
    expect(ring.activeTerm).toBe(3);
    expect(ring.activeKey().version).toBe(0);
    expect(ring.activeKey().installTime.isZero()).toBe(true);
    // A keyring without RotationConfig (Vault < 1.10) gets Vault's defaults after Sanitize.
    expect(ring.rotationConfig()).toEqual({
      disabled: false,
      maxOperations: ABSOLUTE_OPERATION_MAXIMUM,
      intervalMs: 0,
    });
  });

  it.each([
    [0, 0, ABSOLUTE_OPERATION_MAXIMUM, 0],
    [5, 3600_000_000_000, ABSOLUTE_OPERATION_MINIMUM, 24 * 3600 * 1000],
    [9_999_999_999, -5, ABSOLUTE_OPERATION_MAXIMUM, 0],
    [2_000_000, 48 * 3600_000_000_000, 2_000_000, 48 * 3600 * 1000],
  ])("clamps MaxOperations %d / Interval %dns like Vault's Sanitize", (max, interval, wantMax, wantMs) => {
    const ring = Keyring.deserialize(
      `{"MasterKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","Keys":[{"Term":1,"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}],"RotationConfig":{"Disabled":true,"MaxOperations":${max},"Interval":${interval}}}`,
    );
    expect(ring.rotationConfig()).toEqual({ disabled: true, maxOperations: wantMax, intervalMs: wantMs });
  });

  const ROOT = '"MasterKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="';
  const KEY1 = '{"Term":1,"Version":1,"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="';
  it.each([
    ["not JSON", "{"],
    ["not an object", "[]"],
    ["no MasterKey", `{"Keys":[${KEY1}}]}`],
    ["short MasterKey", `{"MasterKey":"AAEC","Keys":[${KEY1}}]}`],
    ["no keys", `{${ROOT},"Keys":[]}`],
    ["Keys not an array", `{${ROOT},"Keys":{}}`],
    [
      "term as string",
      `{${ROOT},"Keys":[{"Term":"1","Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}]}`,
    ],
    [
      "fractional term",
      `{${ROOT},"Keys":[{"Term":1.5,"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}]}`,
    ],
    ["term 0", `{${ROOT},"Keys":[{"Term":0,"Value":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}]}`],
    ["term beyond uint32", `{${ROOT},"Keys":[{"Term":4294967296,"Value":"AA=="}]}`],
    ["short term key", `{${ROOT},"Keys":[{"Term":1,"Value":"AAEC"}]}`],
    ["bad base64", `{${ROOT},"Keys":[{"Term":1,"Value":"!!!!"}]}`],
    ["bad InstallTime", `{${ROOT},"Keys":[${KEY1},"InstallTime":"yesterday"}]}`],
    ["negative encryptions", `{${ROOT},"Keys":[${KEY1},"encryptions":-1}]}`],
    ["Disabled not a boolean", `{${ROOT},"Keys":[${KEY1}}],"RotationConfig":{"Disabled":1}}`],
  ])("refuses a keyring with %s (invalid_keyring)", (_what, json) => {
    expect(code(() => Keyring.deserialize(json))).toBe("invalid_keyring");
  });

  it("round-trips any keyring through its JSON", () => {
    const keyArb = fc.record({
      term: fc.integer({ min: 1, max: 0xffffffff }),
      value: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      // Whole seconds plus nanoseconds, at any minute offset.
      sec: fc.integer({ min: 0, max: 4_000_000_000 }),
      nanos: fc.integer({ min: 0, max: 999_999_999 }),
      offMin: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
    });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uniqueArray(keyArb, { minLength: 1, maxLength: 6, selector: (k) => k.term }),
        fc.nat({ max: 2 ** 40 }),
        fc.record({
          disabled: fc.boolean(),
          maxOperations: fc.integer({ min: ABSOLUTE_OPERATION_MINIMUM, max: ABSOLUTE_OPERATION_MAXIMUM }),
          intervalMs: fc.oneof(fc.constant(0), fc.integer({ min: 86_400_000, max: 10 * 365 * 86_400_000 })),
        }),
        (root, keys, encryptions, rc) => {
          const ring = new Keyring(root);
          for (const k of keys) {
            const wall = new Date((k.sec + k.offMin * 60) * 1000).toISOString().slice(0, 19);
            const abs = Math.abs(k.offMin);
            const off =
              k.offMin === 0
                ? "Z"
                : `${k.offMin < 0 ? "-" : "+"}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
            ring.addKey({
              term: k.term,
              value: k.value,
              installTime: GoTime.parse(`${wall}.${String(k.nanos).padStart(9, "0")}${off}`),
            });
          }
          ring.activeKey().encryptions = encryptions;
          ring.setRotationConfig(rc);
          const json = ring.serialize();
          const back = Keyring.deserialize(json);
          expect(text(back.serialize())).toBe(text(json));
          expect(back.activeTerm).toBe(Math.max(...keys.map((k) => k.term)));
          expect(back.rotationConfig()).toEqual(rc);
          // Plain JSON.parse agrees on the structure and values.
          const plain = JSON.parse(text(json)) as { MasterKey: string; Keys: Array<{ Term: number }> };
          expect(plain.MasterKey).toBe(Buffer.from(root).toString("base64"));
          expect(plain.Keys.map((k) => k.Term)).toEqual([...keys.map((k) => k.term)].sort((a, b) => a - b));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("Keyring operations", () => {
  it("addKey installs the highest term as active and resets the others' counts", () => {
    const ring = new Keyring(seq(0, 32));
    expect(ring.activeTerm).toBe(0);
    expect(ring.addKey({ term: 1, value: seq(1, 32), encryptions: 10 })).toBe(true);
    expect(ring.activeKey().encryptions).toBe(10);
    ring.addKey({ term: 2, value: seq(2, 32), encryptions: 3 });
    expect(ring.activeTerm).toBe(2);
    expect(ring.term(1)?.encryptions).toBe(0);
    expect(ring.term(2)?.encryptions).toBe(3);
  });

  it("addKey refuses a conflicting value for an installed term and accepts the same one", () => {
    const ring = new Keyring(seq(0, 32));
    ring.addKey({ term: 1, value: seq(1, 32) });
    expect(ring.addKey({ term: 1, value: seq(1, 32) })).toBe(false);
    expect(code(() => ring.addKey({ term: 1, value: seq(9, 32) }))).toBe("key_conflict");
  });

  it("addKey sets a missing or zero install time to now", () => {
    const ring = new Keyring(seq(0, 32));
    const before = Date.now();
    ring.addKey({ term: 1, value: seq(1, 32), installTime: GoTime.ZERO });
    expect(ring.activeKey().installTime.toDate().getTime()).toBeGreaterThanOrEqual(before);
  });

  it("addKey validates term and key size", () => {
    const ring = new Keyring(seq(0, 32));
    expect(code(() => ring.addKey({ term: 0, value: seq(1, 32) }))).toBe("invalid_argument");
    expect(code(() => ring.addKey({ term: 2 ** 32, value: seq(1, 32) }))).toBe("invalid_argument");
    expect(code(() => ring.addKey({ term: 1, value: seq(1, 16) }))).toBe("invalid_argument");
    expect(code(() => new Keyring(seq(0, 31)))).toBe("invalid_argument");
  });

  it("removeKey refuses the active term and removes (wiping) others", () => {
    const ring = new Keyring(seq(0, 32));
    ring.addKey({ term: 1, value: seq(1, 32) });
    ring.addKey({ term: 2, value: seq(2, 32) });
    const old = ring.term(1)?.value;
    expect(code(() => ring.removeKey(2))).toBe("active_key_removal");
    expect(ring.removeKey(1)).toBe(true);
    expect(ring.term(1)).toBeUndefined();
    expect(old?.isZeroed).toBe(true);
    expect(ring.removeKey(1)).toBe(false);
  });

  it("clone owns its key material; zero wipes root and term keys", () => {
    const ring = new Keyring(seq(0, 32));
    ring.addKey({ term: 1, value: seq(1, 32) });
    const copy = ring.clone();
    const rootRef = ring.rootKey;
    const termRef = ring.term(1)?.value;
    ring.zero();
    expect(rootRef.isZeroed).toBe(true);
    expect(termRef?.isZeroed).toBe(true);
    expect(ring.terms()).toEqual([]);
    expect(hex(copy.rootKey.bytes)).toBe(hex(seq(0, 32)));
    expect(hex(copy.term(1)?.value.bytes ?? new Uint8Array())).toBe(hex(seq(1, 32)));
  });

  it("setRootKey replaces and wipes the old root key", () => {
    const ring = new Keyring(seq(0, 32));
    const old = ring.rootKey;
    ring.setRootKey(seq(50, 32));
    expect(old.isZeroed).toBe(true);
    expect(ring.hasRootKey(seq(50, 32))).toBe(true);
    expect(ring.hasRootKey(seq(0, 32))).toBe(false);
  });

  it("an empty keyring serializes Keys as null, like Go's nil slice", () => {
    expect(text(new Keyring(seq(0, 32)).serialize())).toContain('"Keys":null');
    expect(code(() => new Keyring(seq(0, 32)).activeKey())).toBe("invalid_keyring");
  });
});
