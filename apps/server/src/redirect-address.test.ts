import { describe, expect, it } from "vitest";
import type { ListenerConfig, ServerConfig } from "./contracts.js";
import { redirectAddress } from "./main.js";

const config = (listeners: Partial<ListenerConfig>[], apiAddr?: string): ServerConfig => ({
  storage: { type: "inmem", options: {} },
  seals: [],
  listeners: listeners.map((l) => ({ address: "127.0.0.1:8200", tlsDisable: true, maxRequestSize: 1, ...l })),
  clusterName: "",
  logLevel: "info",
  ui: false,
  disableUnauthedRekeyEndpoints: false,
  audit: { devices: [], unsafeAllowApiAuditCreation: false, allowAuditLogPrefixing: false },
  disableSealWrap: false,
  warnings: [],
  ...(apiAddr === undefined ? {} : { apiAddr }),
});

describe("redirectAddress (what the active node advertises to standbys)", () => {
  it("is api_addr when set", () => {
    expect(redirectAddress(config([{}], "https://vault.example:8200"))).toBe("https://vault.example:8200");
  });

  it("else the first listener's address, with the scheme its TLS setting implies", () => {
    expect(redirectAddress(config([{ address: "10.0.0.5:8200" }]))).toBe("http://10.0.0.5:8200");
    expect(redirectAddress(config([{ address: "node1:8201", tlsDisable: false }]))).toBe(
      "https://node1:8201",
    );
    expect(redirectAddress(config([{ address: "[fd00::5]:8200" }]))).toBe("http://[fd00::5]:8200");
  });

  it("is undefined when the listener names no address others can reach", () => {
    for (const address of ["0.0.0.0:8200", "[::]:8200", ":8200", "127.0.0.1:0"]) {
      expect(redirectAddress(config([{ address }]))).toBeUndefined();
    }
    expect(redirectAddress(config([]))).toBeUndefined();
  });
});
