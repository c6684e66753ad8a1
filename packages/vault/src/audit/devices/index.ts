/** The audit device types Bulwark has (OpenBao 2.6's builtin audit backends), by type name. */
import type { AuditDeviceFactory } from "../types.js";
import { fileDevice } from "./file.js";
import { socketDevice } from "./socket.js";
import { syslogDevice } from "./syslog.js";

// A null-prototype object: a device type read from a request ("constructor", "toString") finds
// nothing instead of an Object.prototype function.
export const AUDIT_DEVICE_FACTORIES: Readonly<Record<string, AuditDeviceFactory>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, AuditDeviceFactory>, {
    file: fileDevice,
    socket: socketDevice,
    syslog: syslogDevice,
  }),
);

export { fileDevice } from "./file.js";
export { socketDevice } from "./socket.js";
export { syslogDevice } from "./syslog.js";
