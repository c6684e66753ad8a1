import { describe, expect, it } from "vitest";
import { AUDIT_DEVICE_FACTORIES, fileDevice, socketDevice, syslogDevice } from "./index.js";

describe("AUDIT_DEVICE_FACTORIES", () => {
  it("has OpenBao's three device types and nothing else, not even Object.prototype's names", () => {
    expect(Object.keys(AUDIT_DEVICE_FACTORIES).sort()).toEqual(["file", "socket", "syslog"]);
    expect(AUDIT_DEVICE_FACTORIES.file).toBe(fileDevice);
    expect(AUDIT_DEVICE_FACTORIES.socket).toBe(socketDevice);
    expect(AUDIT_DEVICE_FACTORIES.syslog).toBe(syslogDevice);
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      expect(AUDIT_DEVICE_FACTORIES[name]).toBeUndefined();
    }
    expect(Object.isFrozen(AUDIT_DEVICE_FACTORIES)).toBe(true);
  });
});
