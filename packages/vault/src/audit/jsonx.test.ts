import { describe, expect, it } from "vitest";
import { toJsonx, xmlEscapeText } from "./jsonx.js";

describe("toJsonx (Vault's JSONx writer: github.com/jefferai/jsonx EncodeJSONBytes)", () => {
  it("reproduces Vault's own vector (audit/format_jsonx_test.go TestFormatJSONx_formatRequest)", () => {
    // The JSON Vault's AuditRequestEntry of that test marshals to (that version had no omitempty on
    // these fields; the member order does not matter: jsonx sorts).
    const json = JSON.stringify({
      type: "request",
      auth: { client_token: "", accessor: "", display_name: "", policies: ["root"], metadata: null },
      request: {
        id: "",
        operation: "update",
        client_token: "",
        client_token_accessor: "",
        path: "/foo",
        data: null,
        remote_address: "127.0.0.1",
        wrap_ttl: 60,
      },
      error: "this is an error",
    });
    expect(toJsonx(json)).toBe(
      '<json:object name="auth"><json:string name="accessor"></json:string><json:string name="client_token"></json:string><json:string name="display_name"></json:string><json:null name="metadata" /><json:array name="policies"><json:string>root</json:string></json:array></json:object><json:string name="error">this is an error</json:string><json:object name="request"><json:string name="client_token"></json:string><json:string name="client_token_accessor"></json:string><json:null name="data" /><json:string name="id"></json:string><json:string name="operation">update</json:string><json:string name="path">/foo</json:string><json:string name="remote_address">127.0.0.1</json:string><json:number name="wrap_ttl">60</json:number></json:object><json:string name="type">request</json:string>',
    );
  });

  it("writes numbers as their JSON text, booleans, nulls and arrays (members unnamed)", () => {
    expect(toJsonx('{"n":[12345678901234567890,1E+2,-0,0.5,true,false,null,[],{}]}')).toBe(
      '<json:array name="n"><json:number>12345678901234567890</json:number><json:number>1E+2</json:number><json:number>-0</json:number><json:number>0.5</json:number><json:boolean>true</json:boolean><json:boolean>false</json:boolean><json:null /><json:array></json:array><json:object></json:object></json:array>',
    );
  });

  it("sorts members in UTF-8 byte order at every level; a repeated name keeps its last value", () => {
    expect(toJsonx('{"b":{"z":1,"a":2},"a":"x","B":"y","😀":1,"～":2,"a":"last"}')).toBe(
      '<json:string name="B">y</json:string><json:string name="a">last</json:string><json:object name="b"><json:number name="a">2</json:number><json:number name="z">1</json:number></json:object><json:number name="～">2</json:number><json:number name="😀">1</json:number>',
    );
  });

  it('escapes names as Go\'s xml.EscapeText, and a member named "" has no name attribute', () => {
    expect(toJsonx('{"a<\\"&\'>\\t\\n\\r":1,"":"e"}')).toBe(
      '<json:string>e</json:string><json:number name="a&lt;&#34;&amp;&#39;&gt;&#x9;&#xA;&#xD;">1</json:number>',
    );
  });

  it("decodes JSON escapes in values (Go's HTML-safe \\u003c) and escapes them for XML", () => {
    expect(toJsonx('{"p":"secret/\\u003cx\\u003e \\u0026 \\"q\\" \\u2028"}')).toBe(
      '<json:string name="p">secret/&lt;x&gt; &amp; &#34;q&#34; \u2028</json:string>',
    );
  });

  it("ignores whitespace and refuses what is not one JSON object", () => {
    expect(toJsonx(' { "a" : [ 1 , 2 ] }\n')).toBe(
      '<json:array name="a"><json:number>1</json:number><json:number>2</json:number></json:array>',
    );
    for (const bad of [
      "[]",
      '"s"',
      "{",
      '{"a":}',
      '{"a":1}x',
      '{"a":01}',
      '{"a":tru}',
      '{"a" 1}',
      '{"a":[1 2]}',
    ]) {
      expect(() => toJsonx(bad), bad).toThrow(/jsonx:/);
    }
  });
});

describe("xmlEscapeText (Go's encoding/xml EscapeText)", () => {
  it.each([
    ["plain é 😀", "plain é 😀"],
    [`"'&<>`, "&#34;&#39;&amp;&lt;&gt;"],
    ["\t\n\r", "&#x9;&#xA;&#xD;"],
    ["a\u0000b\u001fc", "a\ufffdb\ufffdc"],
    ["\ufffe\uffff", "\ufffd\ufffd"],
    ["lone \ud800 \udc00", "lone \ufffd \ufffd"],
    ["\u007f\u0085", "\u007f\u0085"],
  ])("%j → %j", (s, expected) => {
    expect(xmlEscapeText(s)).toBe(expected);
  });
});
