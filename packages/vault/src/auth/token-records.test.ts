import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OPENBAO, shape } from "./fixtures/openbao-tokens.js";
import {
  AUTH_FIELDS,
  encodeLeaseRecord,
  encodeTokenRecord,
  GO_ZERO_TIME,
  goJson,
  goTime,
  LEASE_FIELDS,
  legacyCubbyholeKey,
  newLeaseRecord,
  newTokenRecord,
  parseAccessorRecord,
  parseGoTime,
  parseLeaseRecord,
  parseTokenRecord,
  renewedLeaseRecord,
  saltId,
  TOKEN_FIELDS,
  TokenRecordError,
} from "./token-records.js";

const SALT = OPENBAO.records["sys/token/salt"] as string;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const keysOf = (prefix: string) => Object.keys(OPENBAO.records).filter((k) => k.startsWith(prefix));

describe("salted ids (TokenStore.SaltID) against OpenBao's storage names", () => {
  it("every service token's entry is at h + HMAC-SHA256(salt, id), the legacy custom id at SHA1(salt + id)", () => {
    for (const [name, token] of Object.entries(OPENBAO.tokens)) {
      if (name === "batch") continue;
      const salted = saltId(SALT, token);
      expect(salted).toMatch(token.includes(".") ? /^h[0-9a-f]{64}$/ : /^[0-9a-f]{40}$/);
      expect(OPENBAO.records[`sys/token/id/${salted}`], name).toBeDefined();
    }
  });

  it("every accessor index is at SHA1(salt + accessor) and names its token", () => {
    for (const key of keysOf("sys/token/accessor/")) {
      const a = parseAccessorRecord(key, bytes(OPENBAO.records[key] as string));
      expect(key).toBe(`sys/token/accessor/${saltId(SALT, a.accessor_id)}`);
      expect(OPENBAO.records[`sys/token/id/${saltId(SALT, a.token_id)}`]).toBeDefined();
      expect(a.namespace_id).toBe("root");
      // Byte for byte what OpenBao wrote.
      expect(OPENBAO.records[key]).toBe(
        text(goJson({ token_id: a.token_id, accessor_id: a.accessor_id, namespace_id: "root" })),
      );
    }
  });

  it("the child index is parent/<salted parent>/<salted child>, empty", () => {
    const child = saltId(SALT, OPENBAO.tokens.child as string);
    const parent = saltId(SALT, OPENBAO.tokens.parent as string);
    expect(OPENBAO.records[`sys/token/parent/${parent}/${child}`]).toBe("");
  });

  it("a legacy token's cubbyhole is SHA1(cubbyhole uuid + salted id); an s. token's is its cubbyhole_id", () => {
    const legacy = legacyCubbyholeKey(OPENBAO.cubbyhole_uuid, saltId(SALT, "legacy-custom-id"));
    expect(OPENBAO.records[`logical/${OPENBAO.cubbyhole_uuid}/${legacy}/legacy`]).toBe('{"v":"2"}');
    const orphan = parseTokenRecord(
      "x",
      bytes(OPENBAO.records[`sys/token/id/${saltId(SALT, OPENBAO.tokens.orphan as string)}`] as string),
    );
    expect(orphan.cubbyhole_id).toMatch(/^[0-9A-Za-z]{24}$/);
    expect(OPENBAO.records[`logical/${OPENBAO.cubbyhole_uuid}/${orphan.cubbyhole_id}/mine`]).toBe(
      '{"v":"1"}',
    );
  });
});

describe("token entries", () => {
  it("every entry OpenBao wrote re-encodes byte for byte (field order, ns durations, null maps)", () => {
    const ids = keysOf("sys/token/id/");
    expect(ids.length).toBeGreaterThan(8);
    for (const key of ids) {
      const stored = OPENBAO.records[key] as string;
      const r = parseTokenRecord(key, bytes(stored));
      expect(Object.keys(r.raw)).toEqual([...TOKEN_FIELDS]);
      expect(text(encodeTokenRecord(r.raw))).toBe(stored);
      expect(r.type).toBe(1);
      expect(r.namespace_id).toBe("root");
    }
  });

  it("reads the fields the store uses (durations in ns, parent in clear)", () => {
    const child = parseTokenRecord(
      "x",
      bytes(OPENBAO.records[`sys/token/id/${saltId(SALT, OPENBAO.tokens.child as string)}`] as string),
    );
    expect(child).toMatchObject({
      id: OPENBAO.tokens.child,
      parent: OPENBAO.tokens.parent,
      policies: ["default", "reader"],
      path: "auth/token/create",
      ttl: 7200 * 1e9,
      period: 0,
      display_name: "token",
    });
  });

  it("a new entry has OpenBao's exact shape (same keys, order and types as its own entries)", () => {
    const theirs = JSON.parse(
      OPENBAO.records[`sys/token/id/${saltId(SALT, OPENBAO.tokens.parent as string)}`] as string,
    );
    const ours = newTokenRecord({
      id: "s.abcdefghijklmnopqrstuvwx",
      accessor: "A".repeat(24),
      parent: "s.parentparentparentparen",
      policies: ["default", "reader"],
      path: "auth/token/create",
      meta: { team: "ops" },
      display_name: "token-par",
      num_uses: 0,
      creation_time: 1_796_687_866,
      ttlS: 3600,
      explicitMaxTtlS: 0,
      periodS: 0,
      cubbyhole_id: "B".repeat(24),
    });
    expect(shape(JSON.parse(text(goJson(ours))))).toEqual(shape(theirs));
    expect(ours.ttl).toBe(theirs.ttl);
  });

  it("a rewrite keeps fields Bulwark does not use and folds Vault's deprecated duplicates in", () => {
    const raw = {
      ...JSON.parse(OPENBAO.records[`sys/token/id/${saltId(SALT, OPENBAO.tokens.ttl as string)}`] as string),
      meta: { a: "<&>" },
      internal_meta: { x: "y" },
      bound_cidrs: ["10.0.0.0/8"],
      entity_id: "e-1",
      role: "r",
      inline_policy: 'path "x" {}',
      DisplayName: "old",
      display_name: "",
      NumUses: 2,
      num_uses: 5,
      extra_future_field: [1, { b: 9007199254740993n.toString() }],
    };
    const out = JSON.parse(text(encodeTokenRecord(raw, { parent: "" })));
    expect(out).toMatchObject({
      parent: "",
      meta: { a: "<&>" },
      internal_meta: { x: "y" },
      bound_cidrs: ["10.0.0.0/8"],
      entity_id: "e-1",
      role: "r",
      inline_policy: 'path "x" {}',
      display_name: "old",
      DisplayName: "",
      num_uses: 2,
      NumUses: 0,
    });
    expect(Object.keys(out).slice(0, TOKEN_FIELDS.length)).toEqual([...TOKEN_FIELDS]);
    expect(out.extra_future_field).toEqual(raw.extra_future_field);
    // Go escapes <, > and & inside strings.
    expect(text(encodeTokenRecord(raw))).toContain('"a":"\\u003c\\u0026\\u003e"');
  });

  it("an integer beyond 2^53 in a field Bulwark does not use survives a rewrite exactly", () => {
    const stored = (
      OPENBAO.records[`sys/token/id/${saltId(SALT, OPENBAO.tokens.ttl as string)}`] as string
    ).replace('"explicit_max_ttl":0', '"explicit_max_ttl":9007199254740993');
    const r = parseTokenRecord("x", bytes(stored));
    expect(text(encodeTokenRecord(r.raw))).toBe(stored);
  });

  it("a record that is not a token entry is refused with the field named", () => {
    expect(() => parseTokenRecord("sys/token/id/x", bytes("nope"))).toThrow(TokenRecordError);
    expect(() => parseTokenRecord("sys/token/id/x", bytes('{"policies":"root"}'))).toThrow(/policies/);
    expect(() => parseTokenRecord("sys/token/id/x", bytes('{"num_uses":"1"}'))).toThrow(/num_uses/);
  });
});

describe("token leases (sys/expire/id/<path>/<salted id>)", () => {
  it("every lease OpenBao wrote re-encodes byte for byte; its id is <path>/<salted id>", () => {
    const leases = keysOf("sys/expire/id/");
    expect(leases.length).toBeGreaterThan(8);
    for (const key of leases) {
      const stored = OPENBAO.records[key] as string;
      const l = parseLeaseRecord(key, bytes(stored));
      expect(key).toBe(`sys/expire/id/${l.lease_id}`);
      expect(l.lease_id.endsWith(`/${saltId(SALT, l.client_token)}`)).toBe(true);
      expect(Object.keys(l.raw)).toEqual([...LEASE_FIELDS]);
      expect(Object.keys(l.auth ?? {})).toEqual([...AUTH_FIELDS]);
      expect(text(encodeLeaseRecord(l.raw))).toBe(stored);
    }
  });

  it("a new lease has OpenBao's exact shape, and expires issue + TTL", () => {
    const key = `sys/expire/id/auth/token/create/${saltId(SALT, OPENBAO.tokens.orphan as string)}`;
    const theirs = JSON.parse(OPENBAO.records[key] as string);
    const now = Date.UTC(2026, 11, 7, 23, 57, 42, 470);
    const ours = newLeaseRecord({
      leaseId: "auth/token/create/hxyz",
      token: "s.abcdefghijklmnopqrstuvwx",
      accessor: "A".repeat(24),
      path: "auth/token/create",
      policies: ["default", "reader"],
      meta: null,
      display_name: "token",
      ttlS: 1800,
      renewable: true,
      periodS: 0,
      explicitMaxTtlS: 0,
      num_uses: 0,
      orphan: true,
      nowMs: now,
    });
    const parsed = JSON.parse(text(ours));
    expect(shape(parsed)).toEqual(shape(theirs));
    expect(parsed.auth.lease).toBe(theirs.auth.lease);
    expect(parsed).toMatchObject({
      token_type: 0,
      version: 1,
      revokeErr: "",
      login_role: "",
      last_renewal_time: GO_ZERO_TIME,
      issue_time: "2026-12-07T23:57:42.47Z",
      expire_time: "2026-12-08T00:27:42.47Z",
    });
    expect(parsed.auth).toMatchObject({
      token_type: 1,
      renewable: true,
      orphan: true,
      creation_path: "auth/token/create",
    });
  });

  it("a renewal changes expire_time, last_renewal_time and auth.lease only", () => {
    const key = `sys/expire/id/auth/token/create/${saltId(SALT, OPENBAO.tokens.child as string)}`;
    const l = parseLeaseRecord(key, bytes(OPENBAO.records[key] as string));
    const now = l.issue + 60_000;
    const out = JSON.parse(text(renewedLeaseRecord(l, 600, now)));
    const before = JSON.parse(OPENBAO.records[key] as string);
    expect(out.expire_time).toBe(goTime(now + 600_000));
    expect(out.last_renewal_time).toBe(goTime(now));
    expect(out.auth.lease).toBe(600 * 1e9);
    expect({ ...out, expire_time: 0, last_renewal_time: 0, auth: { ...out.auth, lease: 0 } }).toEqual({
      ...before,
      expire_time: 0,
      last_renewal_time: 0,
      auth: { ...before.auth, lease: 0 },
    });
  });
});

describe("Go times", () => {
  it("parses OpenBao's RFC 3339 with ns and any offset; Go's zero time is 0", () => {
    expect(parseGoTime("p", "t", "2026-12-08T01:57:46.3580351Z")).toBe(Date.UTC(2026, 11, 8, 1, 57, 46, 358));
    expect(parseGoTime("p", "t", "2026-12-08T02:57:46.5+01:00")).toBe(Date.UTC(2026, 11, 8, 1, 57, 46, 500));
    expect(parseGoTime("p", "t", GO_ZERO_TIME)).toBe(0);
    expect(() => parseGoTime("p", "expire_time", "yesterday")).toThrow(/expire_time/);
  });

  it("writes RFC3339Nano (trailing zeros dropped) and reads it back", () => {
    expect(goTime(Date.UTC(2026, 0, 1, 0, 0, 0, 0))).toBe("2026-01-01T00:00:00Z");
    expect(goTime(Date.UTC(2026, 0, 1, 0, 0, 0, 300))).toBe("2026-01-01T00:00:00.3Z");
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4_102_444_800_000 }), (ms) => {
        expect(parseGoTime("p", "t", goTime(ms))).toBe(ms);
      }),
    );
  });
});
