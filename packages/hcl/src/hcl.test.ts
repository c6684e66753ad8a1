import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  attribute,
  blocks,
  formatHcl,
  HCL_MAX_DEPTH,
  type HclBody,
  type HclItem,
  HclParseError,
  type HclValue,
  parseHcl,
  parseHclJson,
  parseHclOrJson,
  toPlain,
} from "./index.js";

const VAULT_CONFIG = `# Vault server config
ui = true
/* block comment
   over lines */
storage "file" {
  path = "/opt/vault/data" // trailing comment
}

listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = 1
}

seal "pkcs11" {
  lib            = "/usr/vendor/pkcs11/lib/libCryptoki2_64.so"
  slot           = "2305843009213693953"
  pin            = "AAAA-BBBB-CCCC-DDDD"
  key_label      = "vault-hsm-key"
  hmac_key_label = "vault-hsm-hmac-key"
}

max_lease_ttl = "768h"
api_addr = "https://vault.example.com:8200"
`;

function errorOf(fn: () => unknown): HclParseError {
  try {
    fn();
  } catch (err) {
    if (err instanceof HclParseError) return err;
    throw err;
  }
  throw new Error("expected an HclParseError");
}

describe("parseHcl: Vault configs", () => {
  it("reads a typical Vault server config into blocks and attributes", () => {
    const doc = parseHcl(VAULT_CONFIG, "vault.hcl");
    expect(toPlain(doc)).toEqual({
      ui: true,
      storage: { file: { path: "/opt/vault/data" } },
      listener: { tcp: { address: "0.0.0.0:8200", tls_disable: 1 } },
      seal: {
        pkcs11: {
          lib: "/usr/vendor/pkcs11/lib/libCryptoki2_64.so",
          slot: "2305843009213693953",
          pin: "AAAA-BBBB-CCCC-DDDD",
          key_label: "vault-hsm-key",
          hmac_key_label: "vault-hsm-hmac-key",
        },
      },
      max_lease_ttl: "768h",
      api_addr: "https://vault.example.com:8200",
    });
  });

  it("records the line and column of every key and block", () => {
    const doc = parseHcl(VAULT_CONFIG, "vault.hcl");
    const [storage] = blocks(doc, "storage");
    expect(storage).toMatchObject({ labels: ["file"], line: 5, column: 1, filename: "vault.hcl" });
    const path = attribute(storage!.body, "path");
    expect(path?.pos).toMatchObject({ line: 6, column: 3 });
    expect(path?.value.pos).toMatchObject({ line: 6, column: 10 });
    const [listener] = blocks(doc, "listener");
    expect(listener?.labelPositions[0]).toMatchObject({ line: 9, column: 10 });
  });

  it("keeps repeated blocks in order (several listeners, several seals)", () => {
    const doc = parseHcl(`
listener "tcp" { address = "127.0.0.1:8200" }
listener "tcp" { address = "10.0.0.1:8200" }
seal "awskms" { kms_key_id = "alias/old"
  disabled = "true" }
seal "pkcs11" { lib = "/lib.so" }
`);
    expect(blocks(doc, "listener").map((b) => toPlain(b.body))).toEqual([
      { address: "127.0.0.1:8200" },
      { address: "10.0.0.1:8200" },
    ]);
    expect(blocks(doc, "seal").map((b) => b.labels[0])).toEqual(["awskms", "pkcs11"]);
  });

  it("reads an ACL policy with path blocks and capability lists", () => {
    const doc = parseHcl(`
path "secret/data/app/*" {
  capabilities = ["read", "list",]
}
path "secret/+/admin" { capabilities = ["deny"] }
path "sys/*" {
  policy = "sudo"
}
`);
    const entries = blocks(doc, "path");
    expect(entries.map((e) => [e.labels[0], e.line, toPlain(e.body)])).toEqual([
      ["secret/data/app/*", 2, { capabilities: ["read", "list"] }],
      ["secret/+/admin", 5, { capabilities: ["deny"] }],
      ["sys/*", 6, { policy: "sudo" }],
    ]);
  });
});

describe("parseHcl: values", () => {
  it("decodes Go-style escapes in strings", () => {
    const doc = parseHcl(String.raw`s = "a\"b\\c\n\t\u00e9\U0001F600\x41\101\a\v"`);
    expect(toPlain(doc)).toEqual({ s: 'a"b\\c\n\té😀AA\x07\v' });
  });

  it("keeps HCL1 interpolations literally, quotes inside included", () => {
    const interpolation = "$" + '{lookup(var.m, "k")}';
    const doc = parseHcl(`s = "x-${interpolation}-y"`);
    expect(toPlain(doc)).toEqual({ s: `x-${interpolation}-y` });
  });

  it("reads heredocs with their line breaks, and <<- strips the anchor's indentation", () => {
    const doc = parseHcl(
      'a = <<EOF\nline 1\n  line 2\nEOF\nb = <<-POLICY\n    path "x" {}\n      nested\n    POLICY\nc = 1\n',
    );
    expect(toPlain(doc)).toEqual({ a: "line 1\n  line 2\n", b: 'path "x" {}\n  nested\n', c: 1 });
    expect(attribute(doc.body, "a")?.value).toMatchObject({ kind: "string", heredoc: true });
  });

  it("reads numbers as HCL1 does: decimal, hex, octal, floats, exponents, negatives", () => {
    const doc = parseHcl("a = 42\nb = 0x1F\nc = 0755\nd = -3.5\ne = 1e3\nf = -0x10\ng = 0");
    expect(toPlain(doc)).toEqual({ a: 42, b: 31, c: 493, d: -3.5, e: 1000, f: -16, g: 0 });
  });

  it("keeps integers beyond 2^53 exact as decimal strings (HSM slot ids)", () => {
    const doc = parseHcl("slot = 2305843009213693953\nhex = 0x2000000000000001");
    expect(toPlain(doc)).toEqual({ slot: "2305843009213693953", hex: "2305843009213693953" });
  });

  it("reads bools, nested lists and object values", () => {
    const doc = parseHcl('a = true\nb = [[1, 2], ["x"], []]\nc = { d = false, e = { f = "g" } }');
    expect(toPlain(doc)).toEqual({ a: true, b: [[1, 2], ["x"], []], c: { d: false, e: { f: "g" } } });
  });

  it("turns a repeated key into an array of its values", () => {
    expect(toPlain(parseHcl('a = 1\na = "two"\na = [3]'))).toEqual({ a: [1, "two", [3]] });
  });

  it("never lets a key reach an object prototype", () => {
    const plain = toPlain(
      parseHcl('__proto__ = { polluted = true }\nconstructor "prototype" { x = 1 }'),
    ) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect(Object.hasOwn(plain, "__proto__")).toBe(true);
    expect(plain.constructor).toEqual({ prototype: { x: 1 } });
  });
});

describe("parseHcl: errors carry file:line:column and say what was expected", () => {
  const cases: Array<[string, string, number, number, RegExp]> = [
    [
      "missing =",
      'storage "file" {\n  path "/data"\n}',
      3,
      1,
      /expected "\{" to open the `path` block, found "\}" \(to set a value, write path = "\/data"\)/,
    ],
    ["unknown bare value", "a = read", 1, 5, /found identifier `read` — quote it: "read"/],
    [
      "unterminated string",
      'a = "abc\nb = 1',
      1,
      5,
      /unterminated string: expected a closing " before the end of the line/,
    ],
    [
      "unterminated block",
      'storage "file" {\n  path = "x"\n',
      3,
      1,
      /expected a key .* or "\}", found end of file/,
    ],
    ["list without comma", 'a = ["x" "y"]', 1, 10, /expected "," or "\]" in the list, found string "y"/],
    ["unterminated comment", "a = 1\n/* never closed", 2, 1, /unterminated comment: expected \*\//],
    ["unterminated heredoc", "a = <<EOF\ntext\n", 1, 5, /unterminated heredoc: expected a line with EOF/],
    ["bad escape", 'a = "\\q"', 1, 6, /invalid escape \\q/],
    ["octal with 8", "a = 0758", 1, 5, /leading 0 means octal/],
    ["malformed number", "a = 1.2.3", 1, 5, /malformed number/],
    ["stray brace", "}", 1, 1, /expected a key \(identifier or "string"\), found "\}"/],
    ["single quotes", "a = 'x'", 1, 5, /strings use double quotes/],
    ["key without value", "a =", 1, 4, /expected a value .*found end of file/],
  ];
  for (const [name, src, line, column, message] of cases) {
    it(name, () => {
      const err = errorOf(() => parseHcl(src, "cfg.hcl"));
      expect(err).toMatchObject({ code: "hcl_parse", kind: "syntax", filename: "cfg.hcl", line, column });
      expect(err.message.startsWith(`cfg.hcl:${line}:${column}: `)).toBe(true);
      expect(err.detail).toMatch(message);
    });
  }

  it("refuses nesting deeper than HCL_MAX_DEPTH instead of overflowing the stack", () => {
    const deep = `a = ${"[".repeat(HCL_MAX_DEPTH + 5)}${"]".repeat(HCL_MAX_DEPTH + 5)}`;
    expect(errorOf(() => parseHcl(deep)).detail).toMatch(/nesting deeper than/);
    const deepBlocks = `${"a {".repeat(HCL_MAX_DEPTH + 5)}${"}".repeat(HCL_MAX_DEPTH + 5)}`;
    expect(errorOf(() => parseHcl(deepBlocks)).detail).toMatch(/nesting deeper than/);
    const json = `{"a": ${"[".repeat(HCL_MAX_DEPTH + 5)}${"]".repeat(HCL_MAX_DEPTH + 5)}}`;
    expect(errorOf(() => parseHclJson(json)).detail).toMatch(/nesting deeper than/);
  });
});

describe("parseHclJson", () => {
  it("reads Vault's JSON config form with positions, and blocks() reads it like HCL", () => {
    const src = `{
  "storage": {"consul": {"address": "127.0.0.1:8500", "path": "vault/"}},
  "listener": [{"tcp": {"address": "127.0.0.1:8200", "tls_disable": true}}],
  "seal": {"awskms": {"kms_key_id": "alias/v", "region": "us-east-1"}},
  "x": null
}`;
    const doc = parseHclJson(src, "vault.json");
    const [storage] = blocks(doc, "storage");
    expect(storage?.labels).toEqual(["consul"]);
    expect(toPlain(storage!.body)).toEqual({ address: "127.0.0.1:8500", path: "vault/" });
    expect(attribute(storage!.body, "path")?.pos).toMatchObject({ line: 2, column: 55 });
    expect(blocks(doc, "listener").map((b) => [b.labels, toPlain(b.body)])).toEqual([
      [["tcp"], { address: "127.0.0.1:8200", tls_disable: true }],
    ]);
    expect(attribute(doc.body, "x")?.value.kind).toBe("null");
  });

  it("is strict JSON: trailing commas, comments and bare words are errors", () => {
    expect(errorOf(() => parseHclJson('{"a": 1,}')).detail).toMatch(/expected a member name/);
    expect(errorOf(() => parseHclJson('{"a": 1} // c')).detail).toMatch(/unexpected "\/"/);
    expect(errorOf(() => parseHclJson('{"a": yes}')).detail).toMatch(/expected a JSON value/);
    expect(errorOf(() => parseHclJson("[1]")).detail).toMatch(/JSON object/);
    expect(errorOf(() => parseHclJson('{"a": 01}')).detail).toMatch(/malformed number/);
  });

  it("parseHclOrJson picks JSON for a leading { and HCL otherwise", () => {
    expect(parseHclOrJson(' \n{"path": {"a/*": {"capabilities": ["read"]}}}').format).toBe("json");
    expect(parseHclOrJson('path "a/*" { capabilities = ["read"] }').format).toBe("hcl");
    const json = blocks(parseHclOrJson('{"path": {"a/*": {"capabilities": ["read"]}}}'), "path");
    expect(json.map((e) => [e.labels, toPlain(e.body)])).toEqual([[["a/*"], { capabilities: ["read"] }]]);
  });
});

describe("blocks(): HCL1's equivalent spellings", () => {
  const spellings = [
    'storage "file" { path = "/d" }',
    'storage file { path = "/d" }',
    'storage { file { path = "/d" } }',
    'storage = { file = { path = "/d" } }',
    'storage = [{ file = { path = "/d" } }]',
    'storage { file = [{ path = "/d" }] }',
  ];
  for (const src of spellings) {
    it(src, () => {
      const entries = blocks(parseHcl(src), "storage");
      expect(entries.map((e) => [e.labels, toPlain(e.body)])).toEqual([[["file"], { path: "/d" }]]);
    });
  }

  it("supports 0 and 2 labels", () => {
    const doc = parseHcl('telemetry { statsd_address = "x" }\nauth "approle" "main" { a = 1 }');
    expect(blocks(doc, "telemetry", 0).map((e) => toPlain(e.body))).toEqual([{ statsd_address: "x" }]);
    expect(blocks(doc, "auth", 2).map((e) => e.labels)).toEqual([["approle", "main"]]);
  });

  it("names the expected form when a block has the wrong shape", () => {
    const noLabel = errorOf(() => blocks(parseHcl("seal {}", "c.hcl"), "seal"));
    expect(noLabel).toMatchObject({ kind: "structure", line: 1, column: 1 });
    expect(noLabel.detail).toMatch(/`seal` needs 1 label\(s\): write seal "<label>" \{ … \}/);
    const tooMany = errorOf(() => blocks(parseHcl('\nseal "a" "b" {}', "c.hcl"), "seal"));
    expect(tooMany).toMatchObject({ line: 2, column: 10 });
    expect(tooMany.detail).toMatch(/takes 1 label, found 2/);
    const scalar = errorOf(() => blocks(parseHcl('storage = "file"'), "storage"));
    expect(scalar.detail).toMatch(/`storage` must be a block/);
    const attrInside = errorOf(() => blocks(parseHcl('storage { path = "/x" }'), "storage"));
    expect(attrInside.detail).toMatch(/found `path = …`/);
  });
});

// ------------------------------------------------------------------------- properties

type Shape = unknown;

/** The structure without positions, to compare a parse with the tree it was printed from. */
function shape(body: HclBody): Shape {
  return body.items.map((i: HclItem) =>
    i.kind === "attribute"
      ? { a: i.key, v: valueShape(i.value) }
      : { b: i.type, labels: i.labels, body: shape(i.body) },
  );
}

function valueShape(v: HclValue): Shape {
  switch (v.kind) {
    case "list":
      return { list: v.items.map(valueShape) };
    case "object":
      return { object: shape(v.body) };
    case "null":
      return null;
    default:
      return v.value;
  }
}

const P = { line: 1, column: 1, offset: 0 };
const noInterpolation = (s: string) => !s.includes("${");
const anyKey = fc.oneof(
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,8}$/),
  fc.string({ maxLength: 8 }).filter(noInterpolation),
);
const scalar: fc.Arbitrary<HclValue> = fc.oneof(
  fc
    .string({ maxLength: 12, unit: "binary" })
    .filter(noInterpolation)
    .map((value) => ({
      kind: "string" as const,
      value,
      heredoc: false,
      pos: P,
    })),
  fc
    .oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.maxSafeInteger())
    .map((n) => {
      const value = Object.is(n, -0) ? 0 : n;
      return { kind: "number" as const, value, raw: String(value), pos: P };
    }),
  fc.boolean().map((value) => ({ kind: "bool" as const, value, pos: P })),
);

const { body: bodyArb } = fc.letrec<{ body: HclBody; value: HclValue; item: HclItem }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("value"), { maxLength: 3 }).map((items) => ({ kind: "list" as const, items, pos: P })),
    tie("body").map((body) => ({ kind: "object" as const, body, pos: P })),
  ),
  item: fc.oneof(
    fc.record({ key: anyKey, value: tie("value") }).map(({ key, value }) => ({
      kind: "attribute" as const,
      key,
      value,
      pos: P,
    })),
    fc
      .record({
        type: anyKey,
        labels: fc.array(fc.string({ maxLength: 10 }).filter(noInterpolation), { maxLength: 2 }),
        body: tie("body"),
      })
      .map(({ type, labels, body }) => ({
        kind: "block" as const,
        type,
        labels,
        labelPositions: labels.map(() => P),
        body,
        pos: P,
      })),
  ),
  body: fc.array(tie("item"), { maxLength: 4 }).map((items) => ({ items, pos: P, filename: "gen" })),
}));

/** Vault-like configs: storage, listeners, seals with plausible keys and values. */
const vaultConfig = fc
  .record({
    storageType: fc.constantFrom("file", "consul", "inmem"),
    path: fc.string({ maxLength: 20 }).filter(noInterpolation),
    listeners: fc.array(
      fc.record({
        address: fc.string({ maxLength: 20 }).filter(noInterpolation),
        tls: fc.boolean(),
        size: fc.nat(),
      }),
      { maxLength: 3 },
    ),
    seals: fc.array(fc.record({ type: fc.constantFrom("pkcs11", "awskms"), disabled: fc.boolean() }), {
      maxLength: 2,
    }),
    ui: fc.boolean(),
  })
  .map((c) => {
    const str = (value: string): HclValue => ({ kind: "string", value, heredoc: false, pos: P });
    const attr = (key: string, value: HclValue): HclItem => ({ kind: "attribute", key, value, pos: P });
    const block = (type: string, label: string, items: HclItem[]): HclItem => ({
      kind: "block",
      type,
      labels: [label],
      labelPositions: [P],
      body: { items, pos: P, filename: "gen" },
      pos: P,
    });
    const items: HclItem[] = [
      block("storage", c.storageType, [attr("path", str(c.path))]),
      ...c.listeners.map((l) =>
        block("listener", "tcp", [
          attr("address", str(l.address)),
          attr("tls_disable", { kind: "bool", value: l.tls, pos: P }),
          attr("max_request_size", { kind: "number", value: l.size, raw: String(l.size), pos: P }),
        ]),
      ),
      ...c.seals.map((s) =>
        block("seal", s.type, [attr("disabled", { kind: "bool", value: s.disabled, pos: P })]),
      ),
      attr("ui", { kind: "bool", value: c.ui, pos: P }),
    ];
    return { items, pos: P, filename: "gen" } satisfies HclBody;
  });

describe("properties", () => {
  it("round trip: formatHcl then parseHcl gives the same tree (generated configs)", () => {
    fc.assert(
      fc.property(fc.oneof(bodyArb, vaultConfig), (body) => {
        const text = formatHcl(body);
        expect(shape(parseHcl(text, "gen.hcl").body)).toEqual(shape(body));
      }),
      { numRuns: 300 },
    );
  });

  it("round trip: a Vault-like config keeps its blocks through print and parse", () => {
    fc.assert(
      fc.property(vaultConfig, (body) => {
        const back = parseHcl(formatHcl(body));
        expect(blocks(back, "listener").map((b) => toPlain(b.body))).toEqual(
          blocks(body, "listener").map((b) => toPlain(b.body)),
        );
        expect(blocks(back, "seal").map((b) => b.labels)).toEqual(blocks(body, "seal").map((b) => b.labels));
      }),
      { numRuns: 100 },
    );
  });

  it("JSON documents read back as their JSON.parse value", () => {
    const normalise = (v: unknown): unknown => {
      if (typeof v === "number") {
        if (Object.is(v, -0)) return 0;
        return Number.isInteger(v) && !Number.isSafeInteger(v) ? String(v) : v;
      }
      if (Array.isArray(v)) return v.map(normalise);
      if (typeof v === "object" && v !== null) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) {
          Object.defineProperty(out, k, {
            value: normalise(x),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      return v;
    };
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (obj) => {
        const text = JSON.stringify(obj);
        expect(toPlain(parseHclJson(text))).toEqual(normalise(JSON.parse(text)));
      }),
      { numRuns: 300 },
    );
  });

  const expectValueOrParseError = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(HclParseError);
      expect((err as HclParseError).line).toBeGreaterThanOrEqual(1);
    }
  };

  it("random input: a document or an HclParseError, never another exception", () => {
    const alphabet = fc.constantFrom(
      ..."{}[]=:,\"'\\#/*<-\n\t $01x.eE+abEOF".split(""),
      "<<EOF\n",
      "\nEOF\n",
      "${",
      "true",
      "/*",
      "*/",
      "\\u",
      "0x",
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(alphabet, { maxLength: 60 }).map((a) => a.join("")),
        ),
        (src) => {
          expectValueOrParseError(() => parseHcl(src));
          expectValueOrParseError(() => parseHclJson(src));
          expectValueOrParseError(() => {
            const doc = parseHcl(src);
            blocks(doc, "a");
            toPlain(doc);
          });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("mutated valid configs: a document or an HclParseError", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: VAULT_CONFIG.length }),
        fc.nat({ max: 5 }),
        fc.string({ maxLength: 3 }),
        (at, del, insert) => {
          const src = VAULT_CONFIG.slice(0, at) + insert + VAULT_CONFIG.slice(at + del);
          expectValueOrParseError(() => {
            const doc = parseHcl(src);
            for (const t of ["storage", "listener", "seal"]) blocks(doc, t);
          });
        },
      ),
      { numRuns: 1000 },
    );
  });
});
