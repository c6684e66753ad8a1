/** The audit device types Bulwark has (OpenBao 2.6's builtin audit backends), by type name. */
import type { AuditDeviceFactory } from "../types.js";
import { fileDevice } from "./file.js";
import { socketDevice } from "./socket.js";
import { syslogDevice } from "./syslog.js";

export const AUDIT_DEVICE_FACTORIES: Readonly<Record<string, AuditDeviceFactory>> = Object.freeze({
  file: fileDevice,
  socket: socketDevice,
  syslog: syslogDevice,
});

export { fileDevice } from "./file.js";
export { socketDevice } from "./socket.js";
export { syslogDevice } from "./syslog.js";
