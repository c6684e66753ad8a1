import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { JsonNumber } from "../json/lossless.js";
import { clientIdOf, compareUtf8, hashData, hasherFor, identifiedHmac, isGoTimeText } from "./hash.js";

// OpenBao's own vector (internal/audit/hashstructure_test.go TestHashString: salt "foo", value "foo").
const FOO_FOO = "hmac-sha256:08ba357e274f528065766c770a639abf6809b39ccfd37c2a3157c7f51954da0a";

describe("identifiedHmac / hasherFor", () => {
  it("is OpenBao's salt.GetIdentifiedHMAC (its test vector, and RFC 4231 case 2)", () => {
    expect(identifiedHmac("foo", "foo")).toBe(FOO_FOO);
    expect(hasherFor("foo")("foo")).toBe(FOO_FOO);
    const rfc4231 = "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    expect(identifiedHmac("Jefe", "what do ya want for nothing?")).toBe(rfc4231);
    expect(hasherFor("Jefe")("what do ya want for nothing?")).toBe(rfc4231);
  });

  it("hashes the UTF-8 bytes, the empty string included, and the bound hasher agrees with the one-shot one", () => {
    const h = hasherFor("a-salt-ü");
    for (const v of ["", "é", "😀", "s.abc", "x".repeat(300)]) {
      expect(h(v)).toBe(identifiedHmac("a-salt-ü", v));
      expect(h(v)).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    }
    expect(h("")).not.toBe(h(" "));
    // An empty salt still hashes (HMAC with an empty key).
    expect(hasherFor("")("foo")).toBe(identifiedHmac("", "foo"));
    expect(hasherFor("")("foo")).not.toBe(identifiedHmac("foo", "foo"));
  });
});

describe("hasherFor's memo", () => {
  it("gives the same results past its bound, for long values and after being cleared", () => {
    const h = hasherFor("memo-salt");
    const long = "L".repeat(1000);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 300; i++) expect(h(`v${i}`)).toBe(identifiedHmac("memo-salt", `v${i}`));
      expect(h(long)).toBe(identifiedHmac("memo-salt", long));
    }
    // Two hashers never share results.
    expect(hasherFor("other")("v1")).toBe(identifiedHmac("other", "v1"));
  });
});

describe("clientIdOf", () => {
  it("is the client_id OpenBao wrote for a root token (policies [root], no entity)", () => {
    // fixtures/openbao-2.6.2/default.log, every record made with the root token.
    expect(clientIdOf({ policies: ["root"] })).toBe("0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8=");
  });

  it("is the entity id when there is one", () => {
    expect(clientIdOf({ entityId: "e-1", policies: ["root"] })).toBe("e-1");
  });

  it("sorts the policies and drops the leading delimiter", () => {
    const sha = (s: string) => createHash("sha256").update(s).digest("base64");
    expect(clientIdOf({ policies: ["web", "default"] })).toBe(sha("default\x7fweb\x00root"));
    expect(clientIdOf({ policies: ["default", "web"] })).toBe(clientIdOf({ policies: ["web", "default"] }));
    // No policies: Go drops the '\x00' then.
    expect(clientIdOf({ policies: [] })).toBe(sha("root"));
  });
});

describe("compareUtf8", () => {
  it("orders as UTF-8 bytes (Go), not UTF-16 code units", () => {
    expect(["b", "a", "B", "ab", "a"].sort(compareUtf8)).toEqual(["B", "a", "a", "ab", "b"]);
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (4 bytes, F0 …) in Go, after it in UTF-16.
    expect(["😀", "～"].sort(compareUtf8)).toEqual(["～", "😀"]);
    expect(["😀", "～"].sort()).toEqual(["😀", "～"]);
  });
});

describe("isGoTimeText (Go's time.Time.UnmarshalText as OpenBao 2.6.2 runs it)", () => {
  // Each string below was sent in a KV write to a real OpenBao 2.6.2 with a file audit device:
  // "kept" ones were written as sent, the others as an HMAC.
  it.each([
    "2024-01-02T03:04:05Z",
    "2026-12-08T02:28:01.52504326Z",
    "2024-01-02T03:04:05.123456789123Z",
    "2024-01-02T03:04:05-23:59",
    "0000-01-01T00:00:00Z",
    // Go's lenient time.Parse (the strict RFC 3339 checks are off in its Go):
    "2024-01-02T3:04:05Z",
    "2024-01-02T03:04:05,5Z",
    "2024-01-02T03:04:05+24:00",
    "2024-01-02T03:04:05+05:60",
    "2024-01-02T03:04:05.5+05:30",
  ])("keeps %s", (s) => expect(isGoTimeText(s)).toBe(true));

  it.each([
    "2024-02-30T03:04:05Z",
    "2024-01-02T03:04:05+25:00",
    "2024-01-02T03:04:05+05:61",
    "2024-01-02T03:04:05.Z",
    "2024-1-02T03:04:05Z",
    "2024-01-02T03:04:05+05:30x",
    "2024-01-02T24:04:05Z",
    "2024-01-02T003:04:05Z",
    "2024-01-02T03:04:60Z",
    "2024-13-02T03:04:05Z",
    "2024-01-02T03:04:05z",
    "2023-02-29T03:04:05Z",
    "2024-01-02T03:04:05 Z",
    "+024-01-02T03:04:05Z",
    // Not sent to OpenBao; refused by the same parse:
    "2024-01-02",
    "2024-01-02T03:04:05",
    "2024-01-02T03:04",
    "2024-01-02T3:04:05",
    "2024-01-02T03:04:05,Z",
    "2024-01-02T03:04:05+0530",
    "2024-01-02T03:04:05Z ",
    "2024-00-02T03:04:05Z",
  ])("hashes %s", (s) => expect(isGoTimeText(s)).toBe(false));
});

describe("hashData (OpenBao's HashStructure after the JSON round trip)", () => {
  const h = hasherFor("foo");

  it("hashes every string value, not keys; keeps numbers, booleans and null", () => {
    const input = { foo: "foo", n: 1.5, t: true, f: false, z: null, "": "" };
    expect(hashData(input, h)).toEqual({ foo: FOO_FOO, n: 1.5, t: true, f: false, z: null, "": h("") });
    expect(Object.keys(hashData(input, h))).toEqual(Object.keys(input));
  });

  it("walks nested maps and arrays (arrays of arrays too), and does not change the input", () => {
    const input = { a: { b: { c: "foo" } }, list: ["foo", 2, ["foo", { d: "foo" }]] };
    const copy = structuredClone(input);
    expect(hashData(input, h)).toEqual({
      a: { b: { c: FOO_FOO } },
      list: [FOO_FOO, 2, [FOO_FOO, { d: FOO_FOO }]],
    });
    expect(input).toEqual(copy);
  });

  it("keeps Go time text", () => {
    expect(hashData({ when: "2024-01-02T03:04:05Z", not: "2024-01-02" }, h)).toEqual({
      when: "2024-01-02T03:04:05Z",
      not: h("2024-01-02"),
    });
  });

  it("keeps the values under a non-HMAC key, matched on the immediate key only", () => {
    const input = {
      keep: "foo",
      other: "foo",
      list: ["foo"],
      nested: { keep: "foo", x: "foo" },
      keepMap: { x: "foo" },
    };
    expect(hashData(input, h, ["keep", "list", "keepMap"])).toEqual({
      keep: "foo",
      other: FOO_FOO,
      list: ["foo"],
      nested: { keep: "foo", x: FOO_FOO },
      // Go's walker looks at the nearest map key: "x", not "keepMap".
      keepMap: { x: FOO_FOO },
    });
  });

  it("turns JsonNumbers into float64s as Go's round trip does", () => {
    const out = hashData({ big: new JsonNumber("12345678901234567890"), e: new JsonNumber("1E+2") }, h);
    expect(out).toEqual({ big: 12345678901234567000, e: 100 });
  });
});
