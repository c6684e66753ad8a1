import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import { HCL_ERROR_CODES, HclParseError, parseHcl } from "./index.js";

describe("HclParseError", () => {
  it("is a CodedError of domain hcl; its instance kind still says syntax or structure", () => {
    const e = (() => {
      try {
        parseHcl('path "x" { capabilities = [', "policy.hcl");
      } catch (err) {
        if (err instanceof HclParseError) return err;
        throw err;
      }
      throw new Error("bad HCL parsed");
    })();
    expect(e).toBeInstanceOf(CodedError);
    expect(e.domain).toBe("hcl");
    expect(HCL_ERROR_CODES).toContain(e.code);
    expect(e.code).toBe("hcl_parse");
    expect(e.kind).toBe("syntax");
    expect(e.message).toMatch(/^policy\.hcl:1:\d+: /);
    expect(errorKinds(e)).toEqual(["@bulwark/hcl:HclParseError", "@bulwark/errors:CodedError"]);
  });
});
