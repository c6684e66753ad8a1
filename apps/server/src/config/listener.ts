/** `listener "tcp"` blocks: their settings, Vault's defaults and the TLS rules. */
import { type HclBlockEntry, type HclPosition, type HclValue, toPlain } from "@bulwark/hcl";
import type { ListenerConfig } from "../contracts.js";
import { entrySource, type FileReader } from "./reader.js";
import {
  DEFAULT_LISTENER_ADDRESS,
  DEFAULT_MAX_REQUEST_SIZE,
  IGNORED_LISTENER,
  LISTENER_KEYS,
} from "./schema.js";
import { parseBoolean, rememberSource, suggest } from "./source.js";

/** `host:port` or `[v6]:port`; returns an error message or undefined. */
export function checkListenAddress(address: string): string | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(address);
  if (!m)
    return `must be host:port (like "127.0.0.1:8200" or "[::1]:8200"), found ${JSON.stringify(address)}`;
  if (Number(m[3]) > 65535) return `port ${m[3]} is out of range (0-65535)`;
  return undefined;
}

/** One `listener` block as a {@link ListenerConfig}, or undefined when it has a problem (reported to `r`). */
export function parseListener(r: FileReader, entry: HclBlockEntry): ListenerConfig | undefined {
  const type = entry.labels[0];
  if (type !== "tcp") {
    r.problem(
      entry.labelPositions[0] ?? entry.pos,
      `listener ${JSON.stringify(type)} is not supported: only listener "tcp" { … } (unix sockets are not)`,
    );
    return undefined;
  }
  const listener: ListenerConfig = {
    address: DEFAULT_LISTENER_ADDRESS,
    tlsDisable: false,
    maxRequestSize: DEFAULT_MAX_REQUEST_SIZE,
    // OpenBao 2.6's safer default: the unauthenticated share-holder endpoints are off.
    disableUnauthedRekeyEndpoints: true,
    disableUnauthedGenerateRootEndpoints: true,
  };
  const seen = new Map<string, HclPosition>();
  let ok = true;
  const fail = (pos: HclPosition, message: string) => {
    ok = false;
    r.problem(pos, message);
  };
  for (const item of entry.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (IGNORED_LISTENER.has(key)) {
      r.warn(item.pos, `listener "tcp": \`${key}\` is a Vault setting with no effect in Bulwark (ignored)`);
      continue;
    }
    if (key === "tls_require_and_verify_client_cert") {
      // Ignoring a request for client-certificate checks would silently weaken the listener.
      const on = item.kind === "attribute" ? parseBoolean(toPlain(item.value)) : undefined;
      if (on === false)
        r.warn(item.pos, 'listener "tcp": `tls_require_and_verify_client_cert = false` (ignored)');
      else
        fail(
          item.pos,
          "client certificate verification is not supported: remove tls_require_and_verify_client_cert",
        );
      continue;
    }
    if (!LISTENER_KEYS.has(key)) {
      fail(item.pos, `unknown listener setting \`${key}\`${suggest(key, LISTENER_KEYS)}`);
      continue;
    }
    if (item.kind === "block") {
      fail(item.pos, `\`${key}\` is a setting, not a block: write ${key} = …`);
      continue;
    }
    const first = seen.get(key);
    if (first !== undefined) {
      fail(item.pos, `\`${key}\` is set twice in this listener (first at line ${first.line})`);
      continue;
    }
    seen.set(key, item.pos);
    if (!readListenerSetting(r, listener, key, item.value)) ok = false;
  }
  if (!checkTls(r, entry, listener)) ok = false;
  if (!ok) return undefined;
  rememberSource(listener, entrySource(entry));
  return listener;
}

/** Reads one known listener setting into `listener`; false when it has a problem (reported to `r`). */
function readListenerSetting(r: FileReader, listener: ListenerConfig, key: string, v: HclValue): boolean {
  switch (key) {
    case "address": {
      const s = r.string(key, v);
      if (s === undefined) return false;
      const bad = checkListenAddress(s);
      if (bad !== undefined) {
        r.problem(v.pos, `listener address ${bad}`);
        return false;
      }
      listener.address = s;
      return true;
    }
    case "tls_disable": {
      const b = r.boolean(key, v);
      if (b === undefined) return false;
      listener.tlsDisable = b;
      return true;
    }
    case "disable_unauthed_rekey_endpoints":
    case "disable_unauthed_generate_root_endpoints": {
      const b = r.boolean(key, v);
      if (b === undefined) return false;
      if (key === "disable_unauthed_rekey_endpoints") listener.disableUnauthedRekeyEndpoints = b;
      else listener.disableUnauthedGenerateRootEndpoints = b;
      return true;
    }
    case "tls_cert_file":
    case "tls_key_file": {
      const s = r.string(key, v);
      if (s === undefined) return false;
      if (key === "tls_cert_file") listener.tlsCertFile = s;
      else listener.tlsKeyFile = s;
      return true;
    }
    case "tls_min_version":
      return readTlsMinVersion(r, listener, v);
    case "max_request_size": {
      const n = r.integer(key, v);
      if (n === undefined) return false;
      // Vault: 0 means the default (32 MiB); only a negative size turns the limit off.
      listener.maxRequestSize = n === 0 ? DEFAULT_MAX_REQUEST_SIZE : n < 0 ? Number.MAX_SAFE_INTEGER : n;
      if (n < 0) r.warn(v.pos, 'listener "tcp": a negative max_request_size turns the body size limit off');
      return true;
    }
  }
  return true;
}

function readTlsMinVersion(r: FileReader, listener: ListenerConfig, v: HclValue): boolean {
  const s = r.string("tls_min_version", v);
  if (s === undefined) return false;
  if (s === "tls12" || s === "tls13") {
    listener.tlsMinVersion = s;
    return true;
  }
  r.problem(
    v.pos,
    s === "tls10" || s === "tls11"
      ? `tls_min_version "${s}" is not supported: TLS below 1.2 is refused; use "tls12" or "tls13"`
      : `tls_min_version must be "tls12" or "tls13", found ${JSON.stringify(s)}`,
  );
  return false;
}

/** TLS on needs a certificate and a key; TLS 1.2 is the floor when none is set. */
function checkTls(r: FileReader, entry: HclBlockEntry, listener: ListenerConfig): boolean {
  if (listener.tlsDisable) return true;
  let ok = true;
  if (listener.tlsCertFile === undefined || listener.tlsKeyFile === undefined) {
    ok = false;
    r.problem(
      entry.pos,
      'listener "tcp" has TLS on but no certificate: set tls_cert_file and tls_key_file, or tls_disable = true',
    );
  }
  if (listener.tlsMinVersion === undefined) listener.tlsMinVersion = "tls12";
  return ok;
}
