import type { ProviderSettings, SealProviderContext } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { awsKmsSealProvider } from "./provider.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const ctx: SealProviderContext = {
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  warn() {},
  // The awskms module reads its settings with its own parser, not the host's reader.
  settings: {} as ProviderSettings,
};

describe("awsKmsSealProvider", () => {
  it("has the module shape", () => {
    expect(awsKmsSealProvider.type).toBe("awskms");
    expect(awsKmsSealProvider.settings).toEqual(expect.arrayContaining(["kms_key_id", "region", "endpoint"]));
  });

  it("builds an uninitialised KMS seal (no call to KMS until init)", async () => {
    const seal = await awsKmsSealProvider.create(
      { kms_key_id: "alias/bulwark", region: "us-east-1", endpoint: "http://127.0.0.1:1" },
      {},
      ctx,
    );
    expect(seal.type).toBe("awskms");
    await seal.finalize();
  });

  it("check names each setting at fault", async () => {
    const issues = await awsKmsSealProvider.check?.({ kms_key_id: "k", regoin: "x" }, {}, ctx);
    expect(issues).toEqual(
      expect.arrayContaining([{ field: "regoin", message: expect.stringMatching(/^`regoin`: /) }]),
    );
  });
});
