import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { firstVariable, pickSetting } from "./precedence.js";

const VARS = ["BULWARK_X", "VAULT_X"] as const;

describe("environment versus block", () => {
  it("a provider's own variables override the block, the first set one winning", () => {
    const env = { BULWARK_X: "b", VAULT_X: "v" };
    expect(pickSetting({ key: "x", block: "blk", env, variables: VARS, role: "overrides" })).toEqual({
      value: "b",
      from: "BULWARK_X",
      fromEnvironment: true,
    });
    expect(
      pickSetting({ key: "x", block: "blk", env: { VAULT_X: "v" }, variables: VARS, role: "overrides" })
        ?.from,
    ).toBe("VAULT_X");
    expect(pickSetting({ key: "x", block: "blk", env: {}, variables: VARS, role: "overrides" })).toEqual({
      value: "blk",
      from: "x",
      fromEnvironment: false,
    });
  });

  it("disallow_env_vars turns every variable off", () => {
    const env = { BULWARK_X: "b" };
    for (const role of ["overrides", "fills-in"] as const) {
      expect(
        pickSetting({ key: "x", block: "blk", env, variables: VARS, role, disallowEnv: true })?.value,
      ).toBe("blk");
      expect(
        pickSetting({ key: "x", block: undefined, env, variables: VARS, role, disallowEnv: true }),
      ).toBeUndefined();
    }
  });

  it("general-purpose variables only fill in what the block leaves unset", () => {
    const env = { AWS_REGION: "eu-west-1" };
    expect(
      pickSetting({ key: "region", block: "us-east-1", env, variables: ["AWS_REGION"], role: "fills-in" })
        ?.value,
    ).toBe("us-east-1");
    expect(
      pickSetting({ key: "region", block: undefined, env, variables: ["AWS_REGION"], role: "fills-in" }),
    ).toEqual({
      value: "eu-west-1",
      from: "AWS_REGION",
      fromEnvironment: true,
    });
  });

  it("empty settings and empty or blank variables count as unset", () => {
    for (const block of [undefined, null, ""]) {
      expect(
        pickSetting({
          key: "x",
          block,
          env: { BULWARK_X: "  ", VAULT_X: "v" },
          variables: VARS,
          role: "fills-in",
        })?.from,
      ).toBe("VAULT_X");
      expect(
        pickSetting({ key: "x", block, env: { BULWARK_X: "" }, variables: VARS, role: "overrides" }),
      ).toBeUndefined();
    }
    expect(firstVariable({ A: " a " }, ["A"])).toEqual({ name: "A", value: " a " });
  });

  it("the two roles differ only when both the block and a variable are set (property)", () => {
    const maybe = fc.option(fc.stringMatching(/^[a-z]{1,4}$/), { nil: undefined });
    fc.assert(
      fc.property(maybe, maybe, (block, variable) => {
        const env = variable === undefined ? {} : { BULWARK_X: variable };
        const over = pickSetting({ key: "x", block, env, variables: VARS, role: "overrides" });
        const fill = pickSetting({ key: "x", block, env, variables: VARS, role: "fills-in" });
        if (block !== undefined && variable !== undefined) {
          expect(over?.value).toBe(variable);
          expect(fill?.value).toBe(block);
        } else expect(over).toEqual(fill);
      }),
    );
  });
});
