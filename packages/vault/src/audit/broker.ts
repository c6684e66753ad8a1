/**
 * The audit broker of one store (OpenBao 2.6's internal/vault/audit.go + audit_broker.go): the
 * audit table (table.ts), the devices it names, and every record written to them.
 *
 * Devices are open on the active node only, for one active term: the first call of a term reads
 * the table, opens every device (a salt missing from `audit/<uuid>/salt` is created) and applies
 * the server config's `audit` blocks; every later request of the term is served from memory (no
 * storage read). When the term ends (the node steps down or seals, or another term began) the
 * devices are closed: a poll of the store's `activeTerm` notices it within `termWatchMs` (the
 * store has no events), and any call notices it at once. A standby answers {@link enabled} from
 * the stored table (read at most once per `standbyCacheMs`) so the HTTP server can forward.
 *
 * Writes go to every device at once; a record is logged when at least one device took it (as
 * OpenBao's broker). When devices are enabled and none took it, the call rejects with
 * `audit_failed` naming each device and why: the request must not run (fail-closed). A device
 * that failed is tried again with the next record, so one that recovers is used again.
 *
 * At the start of a term, a device that cannot be opened is logged and left out; when none of the
 * table's devices can be opened, every audited request is refused (`audit_failed`) until one can
 * (`reopen()`, i.e. SIGHUP, tries again). OpenBao fails the unseal instead (errLoadAuditFailed);
 * Bulwark's store is unsealed before the logical layer runs, so refusing the requests is how it
 * keeps the same promise: nothing is served unaudited. Likewise when the config's `audit` blocks
 * cannot be applied at the start of a term (OpenBao's post-unseal setup fails).
 */

import { randomUUID } from "node:crypto";
import type { Backend } from "@bulwark/storage";
import { BadRequestError, VaultError, VaultStateError } from "../errors.js";
import type { MountEntry } from "../kv/mounts.js";
import { formatRequestRecord, formatResponseRecord, parseFormatOptions } from "./format.js";
import { hasherFor } from "./hash.js";
import {
  API_AUDIT_TABLE,
  AUDIT_VIEW_PREFIX,
  auditSaltKey,
  CONFIG_AUDIT_TABLE,
  loadSalt,
  newAuditEntry,
  normalizeAuditPath,
  readAuditTables,
  saltRecord,
  writeAuditTables,
} from "./table.js";
import {
  type AuditBroker,
  type AuditDevice,
  type AuditDeviceFactory,
  type AuditDeviceInfo,
  AuditOptionError,
  type AuditSettings,
  type EnableAuditRequest,
  type FormatConfig,
  type Hasher,
  type LogInput,
} from "./types.js";

/** Where the broker reports (the server's pino logger fits). */
export interface AuditBrokerLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/** How records are made (H1's format.ts/hash.ts by default). */
export interface AuditRecordFormatter {
  /** A device's format options (`log_raw`, `hmac_accessor`, `format`, `prefix`, …); throws AuditOptionError. */
  parseOptions(options: Readonly<Record<string, string>>): FormatConfig;
  /** `hmac-sha256:<hex>` with `salt`. */
  hasher(salt: string): Hasher;
  request(input: LogInput, config: FormatConfig, hash: Hasher): Uint8Array;
  response(input: LogInput, config: FormatConfig, hash: Hasher): Uint8Array;
}

/** Vault's audit records (format.ts) and salted HMAC (hash.ts). */
export const AUDIT_FORMATTER: AuditRecordFormatter = Object.freeze({
  parseOptions: parseFormatOptions,
  hasher: hasherFor,
  request: (input: LogInput, config: FormatConfig, hash: Hasher) => formatRequestRecord(input, config, hash),
  response: (input: LogInput, config: FormatConfig, hash: Hasher) =>
    formatResponseRecord(input, config, hash),
});

/** What the broker needs of the store (a SealedStore fits). */
export interface AuditStore {
  readonly storage: Backend;
  readonly activeTerm: number | undefined;
  readonly sealed: boolean;
  /** Whether other nodes may serve this storage as standbys (SealedStore's leader()). */
  leader?(): Promise<{ haEnabled: boolean }>;
}

export interface AuditBrokerOptions {
  /** The device types (the services give AUDIT_DEVICE_FACTORIES: file, socket, syslog). */
  factories: Readonly<Record<string, AuditDeviceFactory>>;
  /** Default: {@link AUDIT_FORMATTER}. */
  formatter?: AuditRecordFormatter;
  /** Read on every use (the server's logger may be given after the broker is made). */
  logger?: () => Partial<AuditBrokerLogger> | undefined;
  /** How long a standby reuses what it read of the table (default 1000 ms). */
  standbyCacheMs?: number;
  /** How often the end of an active term is checked for, to close its devices (default 1000 ms). */
  termWatchMs?: number;
}

/** One opened device of the table. */
interface OpenDevice {
  entry: MountEntry;
  device: AuditDevice;
  format: FormatConfig;
  hash: Hasher;
}

/** The table and devices of one active term. Arrays are replaced, never changed in place. */
interface TermState {
  term: number;
  /** The table in OpenBao's order: core/audit, then core/local-audit. */
  entries: MountEntry[];
  /** The devices that are open, in table order. */
  devices: OpenDevice[];
  /** Devices of the table that could not be opened: path → why. */
  openErrors: Map<string, string>;
  /** Hashers by entry uuid (sys/audit-hash works for a device that could not be opened too). */
  hashers: Map<string, Hasher>;
  /** Why the config's audit blocks could not be applied at the start of the term (fail-closed). */
  configError: string | undefined;
}

/**
 * Whether requests go through the devices: at least one is in the table, or the config's audit
 * blocks could not be applied (then they are refused rather than served unaudited).
 */
function audits(st: TermState): boolean {
  return st.entries.length > 0 || st.configError !== undefined;
}

/** Vault's audit test record (generateAuditTestProbe), written to a device before it is enabled. */
function testProbe(): LogInput {
  return { type: "request", request: { id: randomUUID(), operation: "update", path: "sys/audit/test" } };
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class StoreAuditBroker implements AuditBroker {
  readonly #store: AuditStore;
  readonly #factories: Readonly<Record<string, AuditDeviceFactory>>;
  readonly #fmt: AuditRecordFormatter;
  readonly #logger: () => Partial<AuditBrokerLogger> | undefined;
  readonly #standbyCacheMs: number;
  readonly #termWatchMs: number;

  #state: TermState | undefined;
  /** A load of the term's state in progress (shared by concurrent first callers). */
  #loading: Promise<TermState | undefined> | undefined;
  #settings: AuditSettings | undefined;
  #standby: { at: number; entries: MountEntry[] } | undefined;
  #standbyLoading: Promise<MountEntry[]> | undefined;
  #watch: NodeJS.Timeout | undefined;
  /** Serialises everything that changes the table or the open devices. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(store: AuditStore, opts: AuditBrokerOptions) {
    this.#store = store;
    this.#factories = opts.factories;
    this.#fmt = opts.formatter ?? AUDIT_FORMATTER;
    this.#logger = opts.logger ?? (() => undefined);
    this.#standbyCacheMs = opts.standbyCacheMs ?? 1000;
    this.#termWatchMs = opts.termWatchMs ?? 1000;
  }

  // ------------------------------------------------------------------ the request path

  async enabled(): Promise<boolean> {
    const st = this.#state;
    if (st !== undefined && st.term === this.#store.activeTerm) return audits(st);
    if (this.#store.sealed) return false;
    const current = await this.#current();
    if (current !== undefined) return audits(current);
    return (await this.#standbyEntries()).length > 0;
  }

  /**
   * {@link enabled} without waiting, when the answer is in memory (this active term's table);
   * undefined when it must be loaded or read (call enabled()).
   */
  enabledNow(): boolean | undefined {
    const st = this.#state;
    return st !== undefined && st.term === this.#store.activeTerm ? audits(st) : undefined;
  }

  logRequest(input: LogInput): Promise<void> {
    return this.#fast("request", input) ?? this.#log("request", input);
  }

  logResponse(input: LogInput): Promise<void> {
    return this.#fast("response", input) ?? this.#log("response", input);
  }

  /**
   * The common case without an async frame per step: this term's state in memory, one device
   * open, no config error. The record is formatted here and the device's own promise carries the
   * outcome (one promise hop instead of three on every request). Undefined: take #log.
   */
  #fast(kind: "request" | "response", input: LogInput): Promise<void> | undefined {
    const st = this.#state;
    if (st === undefined || st.term !== this.#store.activeTerm || st.configError !== undefined)
      return undefined;
    if (st.devices.length !== 1 || st.entries.length !== 1) return undefined;
    const d = st.devices[0] as OpenDevice;
    let record: Uint8Array;
    try {
      record =
        kind === "request"
          ? this.#fmt.request(input, d.format, d.hash)
          : this.#fmt.response(input, d.format, d.hash);
    } catch {
      return undefined; // #log formats again and reports the failure as it does for any device
    }
    return d.device.write(record).then(undefined, (e: unknown) => {
      this.#logger()?.warn?.(
        { path: d.entry.path, type: d.entry.type, error: message(e) },
        `audit device failed to log the ${kind}`,
      );
      throw new VaultError(
        "audit_failed",
        `no audit device could record the ${kind}: ${d.entry.path}: ${message(e)}`,
      );
    });
  }

  async #log(kind: "request" | "response", input: LogInput): Promise<void> {
    let st = this.#state;
    if (st === undefined || st.term !== this.#store.activeTerm) {
      st = await this.#current();
      if (st === undefined) return this.#logOffTerm(kind);
    }
    if (st.configError !== undefined)
      throw new VaultError(
        "audit_failed",
        `the ${kind} was not audited: the server config's audit blocks could not be applied (${st.configError}); fix the config and reload it (SIGHUP)`,
      );
    if (st.entries.length === 0) return;
    const devices = st.devices;
    if (devices.length === 0)
      throw new VaultError(
        "audit_failed",
        `no audit device could record the ${kind}: none of the table's devices could be opened (${[
          ...st.openErrors,
        ]
          .map(([p, why]) => `${p}: ${why}`)
          .join("; ")}); fix them and send SIGHUP`,
      );
    const failures: string[] = [];
    let logged = 0;
    const write = async (d: OpenDevice): Promise<void> => {
      try {
        const record =
          kind === "request"
            ? this.#fmt.request(input, d.format, d.hash)
            : this.#fmt.response(input, d.format, d.hash);
        await d.device.write(record);
        logged++;
      } catch (e) {
        // The device's or the formatter's error: it names the device and the IO error, never the record.
        failures.push(`${d.entry.path}: ${message(e)}`);
        this.#logger()?.warn?.(
          { path: d.entry.path, type: d.entry.type, error: message(e) },
          `audit device failed to log the ${kind}`,
        );
      }
    };
    if (devices.length === 1) await write(devices[0] as OpenDevice);
    else await Promise.all(devices.map(write));
    if (logged === 0)
      throw new VaultError(
        "audit_failed",
        `no audit device could record the ${kind}: ${failures.join("; ")}`,
      );
  }

  /** A record on a node that is not active: nothing to do when no device is stored, else refused. */
  async #logOffTerm(kind: string): Promise<void> {
    if (this.#store.sealed) throw new VaultStateError("sealed", "the store is sealed");
    if ((await this.#standbyEntries()).length === 0) return;
    throw new VaultError(
      "audit_failed",
      `the ${kind} was not audited: this node is a standby, and audit devices are open on the active node only; forward the request to the active node`,
    );
  }

  // ------------------------------------------------------------------ sys/audit

  async list(): Promise<AuditDeviceInfo[]> {
    const entries = await this.#entries();
    return entries.map((e) => ({
      path: e.path,
      type: e.type,
      description: e.description,
      options: { ...(e.options ?? {}) },
      local: e.local === true,
    }));
  }

  async enable(rawPath: string, request: EnableAuditRequest): Promise<void> {
    // OpenBao's handleEnableAudit checks its 2.6 hardening before anything else.
    const settings = this.#settings;
    if (settings?.unsafeAllowApiAuditCreation !== true)
      throw new BadRequestError(
        "cannot enable audit device via API; use declarative, config-based audit device management instead",
      );
    if (request.options?.prefix !== undefined && settings.allowAuditLogPrefixing !== true)
      throw new BadRequestError("audit log prefixing is not allowed");
    const path = normalizeAuditPath(rawPath);
    let before = 0;
    let after = 0;
    await this.#serial(async () => {
      const st = await this.#activeInQueue();
      before = st.entries.length;
      await this.#enableInto(st, { ...request, path }, API_AUDIT_TABLE);
      after = st.entries.length;
    });
    await this.#standbysSee(before, after);
  }

  /**
   * After the table went from no device to some: a standby that read it empty may serve requests
   * unaudited until its cached read expires (standbyCacheMs). Answer only once that has passed, so
   * every request a standby starts after the enable is forwarded and audited (HA stores only).
   */
  async #standbysSee(before: number, after: number): Promise<void> {
    if (before > 0 || after === 0 || this.#store.leader === undefined) return;
    let ha = false;
    try {
      ha = (await this.#store.leader()).haEnabled;
    } catch {
      ha = true; // cannot tell: wait, it costs one enable a second
    }
    if (ha) await new Promise((resolve) => setTimeout(resolve, this.#standbyCacheMs + 100));
  }

  async disable(rawPath: string): Promise<void> {
    const path = normalizeAuditPath(rawPath, "audit device path must be specified");
    await this.#serial(async () => {
      const st = await this.#activeInQueue();
      const entry = st.entries.find((e) => e.path === path);
      if (entry === undefined) return;
      if (entry.table === CONFIG_AUDIT_TABLE)
        throw new BadRequestError("cannot disable configuration-managed audit device");
      await this.#disableFrom(st, entry);
    });
  }

  async hash(rawPath: string, input: string): Promise<string> {
    if (input === "") throw new BadRequestError('the "input" parameter is empty');
    // OpenBao's sanitizePath: no leading '/', a trailing '/'.
    const path = `${rawPath.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
    const st = await this.#current();
    if (st === undefined) throw this.#notActive("sys/audit-hash");
    const entry = st.entries.find((e) => e.path === path);
    if (entry === undefined) throw new BadRequestError(`unknown audit backend ${JSON.stringify(path)}`);
    let hasher = st.hashers.get(entry.uuid);
    if (hasher === undefined) {
      hasher = this.#fmt.hasher(await loadSalt(this.#store.storage, auditSaltKey(entry.uuid), true));
      st.hashers.set(entry.uuid, hasher);
    }
    return hasher(input);
  }

  // ------------------------------------------------------------------ config, SIGHUP, stop

  async configure(settings: AuditSettings): Promise<void> {
    checkSettings(settings);
    this.#settings = {
      devices: settings.devices.map((d) => ({ ...d, options: { ...(d.options ?? {}) } })),
      unsafeAllowApiAuditCreation: settings.unsafeAllowApiAuditCreation,
      allowAuditLogPrefixing: settings.allowAuditLogPrefixing,
    };
    const applied = this.#settings;
    // Not active: the next active term applies them (OpenBao runs handleAuditLogSetup post-unseal).
    if (this.#store.activeTerm === undefined) return;
    let before = 0;
    let after = 0;
    await this.#serial(async () => {
      const st = await this.#loadInQueue();
      if (st === undefined || this.#settings !== applied) return; // stepped down, or newer settings
      before = st.entries.length;
      await this.#reconcile(st, applied);
      st.configError = undefined;
      after = st.entries.length;
    });
    await this.#standbysSee(before, after);
  }

  async reopen(): Promise<void> {
    await this.#serial(async () => {
      const st = this.#state;
      if (st === undefined || st.term !== this.#store.activeTerm) return;
      await Promise.all(
        st.devices.map(async (d) => {
          try {
            await d.device.reopen();
          } catch (e) {
            this.#logger()?.warn?.(
              { path: d.entry.path, type: d.entry.type, error: message(e) },
              "audit device could not be reopened; its next write tries again",
            );
          }
        }),
      );
      // Devices that could not be opened at the start of the term get another chance.
      if (st.openErrors.size === 0) return;
      const opened = new Map(st.devices.map((d) => [d.entry.uuid, d]));
      for (const entry of st.entries) {
        if (opened.has(entry.uuid)) continue;
        try {
          opened.set(entry.uuid, await this.#open(st, entry));
          st.openErrors.delete(entry.path);
          this.#logger()?.info?.({ path: entry.path, type: entry.type }, "opened audit device");
        } catch (e) {
          st.openErrors.set(entry.path, message(e));
          this.#logger()?.error?.(
            { path: entry.path, type: entry.type, error: message(e) },
            "audit device still cannot be opened",
          );
        }
      }
      st.devices = st.entries.flatMap((e) => opened.get(e.uuid) ?? []);
    });
  }

  /**
   * Closes the term's devices (the server stops). The broker stays usable: a later call opens them
   * again, as at the start of a term (a server started again in the same process on this store).
   */
  async close(): Promise<void> {
    await this.#serial(async () => {
      const st = this.#state;
      if (st !== undefined) await this.#retire(st);
    });
  }

  // ------------------------------------------------------------------ terms

  /** The state of this active term (loaded on first use); undefined when not active. */
  async #current(): Promise<TermState | undefined> {
    const st = this.#state;
    const term = this.#store.activeTerm;
    if (st !== undefined && st.term === term) return st;
    if (term === undefined && st === undefined) return undefined;
    this.#loading ??= this.#serial(() => this.#loadInQueue()).finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /** Within the queue: the term's state, loading it (and closing a past term's devices) if needed. */
  async #loadInQueue(): Promise<TermState | undefined> {
    const term = this.#store.activeTerm;
    const st = this.#state;
    if (st !== undefined && st.term === term) return st;
    if (st !== undefined) await this.#retire(st);
    if (term === undefined) return undefined;
    const next = await this.#openTerm(term);
    if (this.#store.activeTerm !== term) {
      await this.#closeDevices(next.devices);
      return undefined;
    }
    this.#state = next;
    this.#startWatch();
    return next;
  }

  async #activeInQueue(): Promise<TermState> {
    const st = await this.#loadInQueue();
    if (st === undefined) throw this.#notActive("changing the audit table");
    return st;
  }

  #notActive(what: string): VaultError {
    if (this.#store.sealed) return new VaultStateError("sealed", "the store is sealed");
    return new VaultStateError(
      "not_active",
      `${what} needs the active node: this node is a standby; send the request to the active node`,
    );
  }

  /** Reads the table, opens its devices and applies the config's audit blocks, for `term`. */
  async #openTerm(term: number): Promise<TermState> {
    const storage = this.#store.storage;
    const tables = await readAuditTables(storage);
    // OpenBao's loadAudits stores the default (empty) tables when there are none, and persists
    // what its load-time upgrades filled in.
    if (tables.filled || tables.absent) await writeAuditTables(storage, tables.entries, false);
    const st: TermState = {
      term,
      entries: tables.entries,
      devices: [],
      openErrors: new Map(),
      hashers: new Map(),
      configError: undefined,
    };
    const devices: OpenDevice[] = [];
    for (const entry of st.entries) {
      try {
        devices.push(await this.#open(st, entry));
        this.#logger()?.info?.({ path: entry.path, type: entry.type }, "opened audit device");
      } catch (e) {
        st.openErrors.set(entry.path, message(e));
        this.#logger()?.error?.(
          { path: entry.path, type: entry.type, error: message(e) },
          "audit device could not be opened",
        );
      }
    }
    st.devices = devices;
    const settings = this.#settings;
    if (settings !== undefined) {
      try {
        await this.#reconcile(st, settings);
      } catch (e) {
        st.configError = message(e);
        this.#logger()?.error?.(
          { error: st.configError },
          "the server config's audit blocks could not be applied: audited requests are refused until the config is fixed and reloaded",
        );
      }
    }
    if (st.entries.length > 0 && st.devices.length === 0)
      this.#logger()?.error?.(
        { paths: st.entries.map((e) => e.path) },
        "no audit device could be opened: audited requests are refused until one can (fix it and send SIGHUP)",
      );
    return st;
  }

  /** Opens the device of a stored entry (its salt created when missing: this is the active node). */
  async #open(st: TermState, entry: MountEntry): Promise<OpenDevice> {
    const factory = this.#factoryOf(entry.type);
    const options = entry.options ?? {};
    const format = this.#fmt.parseOptions(options);
    let hash = st.hashers.get(entry.uuid);
    if (hash === undefined) {
      hash = this.#fmt.hasher(await loadSalt(this.#store.storage, auditSaltKey(entry.uuid), true));
      st.hashers.set(entry.uuid, hash);
    }
    const device = factory(options, this.#deviceContext(entry.path));
    return { entry, device, format, hash };
  }

  #factoryOf(type: string): AuditDeviceFactory {
    const f = Object.hasOwn(this.#factories, type) ? this.#factories[type] : undefined;
    if (f === undefined)
      throw new BadRequestError(
        `unknown backend type: ${JSON.stringify(type)} (the audit device types are ${Object.keys(this.#factories).join(", ")})`,
      );
    return f;
  }

  #deviceContext(path: string) {
    const logger = this.#logger;
    return {
      path,
      logger: {
        warn: (obj: Record<string, unknown>, msg: string) => logger()?.warn?.(obj, msg),
      },
    };
  }

  /** Closes a past term's devices; the state is forgotten. */
  async #retire(st: TermState): Promise<void> {
    if (this.#state === st) this.#state = undefined;
    this.#stopWatch();
    await this.#closeDevices(st.devices);
  }

  async #closeDevices(devices: readonly OpenDevice[]): Promise<void> {
    await Promise.all(
      devices.map(async (d) => {
        try {
          await d.device.close();
        } catch (e) {
          this.#logger()?.warn?.(
            { path: d.entry.path, error: message(e) },
            "audit device did not close cleanly",
          );
        }
      }),
    );
  }

  /** Polls the store's active term: the devices of an ended term are closed without waiting for a call. */
  #startWatch(): void {
    if (this.#watch !== undefined || this.#termWatchMs <= 0) return;
    this.#watch = setInterval(() => {
      const st = this.#state;
      if (st === undefined) return this.#stopWatch();
      if (st.term === this.#store.activeTerm) return;
      void this.#serial(async () => {
        if (this.#state === st) await this.#retire(st);
      }).catch((e: unknown) =>
        this.#logger()?.warn?.({ error: message(e) }, "closing the audit devices of the ended term failed"),
      );
    }, this.#termWatchMs);
    this.#watch.unref();
  }

  #stopWatch(): void {
    if (this.#watch !== undefined) clearInterval(this.#watch);
    this.#watch = undefined;
  }

  // ------------------------------------------------------------------ the table

  /** The table: this term's on the active node, the stored one (cached) on a standby. */
  async #entries(): Promise<MountEntry[]> {
    const st = await this.#current();
    if (st !== undefined) return st.entries;
    if (this.#store.sealed) throw new VaultStateError("sealed", "the store is sealed");
    return this.#standbyEntries();
  }

  async #standbyEntries(): Promise<MountEntry[]> {
    const c = this.#standby;
    if (c !== undefined && Date.now() - c.at < this.#standbyCacheMs) return c.entries;
    this.#standbyLoading ??= (async () => {
      const { entries } = await readAuditTables(this.#store.storage);
      this.#standby = { at: Date.now(), entries };
      return entries;
    })().finally(() => {
      this.#standbyLoading = undefined;
    });
    return this.#standbyLoading;
  }

  /**
   * OpenBao's enableAudit: the path must not overlap one in use; the type must be known and the
   * options valid; the device takes Vault's test record (unless `skip_test`); then its salt and the
   * table are stored. A device that fails any of it is closed and nothing is stored.
   */
  async #enableInto(
    st: TermState,
    req: EnableAuditRequest & { path: string },
    table: typeof API_AUDIT_TABLE | typeof CONFIG_AUDIT_TABLE,
  ): Promise<void> {
    const path = req.path;
    for (const e of st.entries) {
      if (e.path.startsWith(path) || path.startsWith(e.path))
        throw new BadRequestError("path already in use");
    }
    const factory = this.#factoryOf(req.type);
    const options = stringOptions(req.options);
    const format = this.#fmt.parseOptions(options);
    const entry = newAuditEntry({
      table,
      path,
      type: req.type,
      description: req.description ?? "",
      options,
      local: req.local ?? false,
    });
    let device: AuditDevice;
    try {
      device = factory(options, this.#deviceContext(path));
    } catch (e) {
      // OpenBao answers a device its factory refuses (a file it cannot open…) with 400.
      if (e instanceof VaultError) throw e;
      throw new BadRequestError(message(e), { cause: e });
    }
    try {
      const salt = randomUUID();
      const hash = this.#fmt.hasher(salt);
      if (options.skip_test !== "true") {
        try {
          await device.write(this.#fmt.request(testProbe(), format, hash));
        } catch (e) {
          this.#logger()?.error?.(
            { path, type: req.type, error: message(e) },
            "new audit device failed the test record",
          );
          throw new BadRequestError(`audit backend failed test message: ${message(e)}`, { cause: e });
        }
      }
      const storage = this.#store.storage;
      await storage.put({ key: auditSaltKey(entry.uuid), value: saltRecord(salt) });
      const entries = [...st.entries.filter((e) => !e.local), ...(entry.local ? [] : [entry])];
      entries.push(...st.entries.filter((e) => e.local), ...(entry.local ? [entry] : []));
      try {
        await writeAuditTables(storage, entries, entry.local);
      } catch (e) {
        await this.#deleteView(entry);
        throw new VaultError("internal", `failed to update audit table: ${message(e)}`, { cause: e });
      }
      const opened: OpenDevice = { entry, device, format, hash };
      const devices = new Map(st.devices.map((d) => [d.entry.uuid, d]));
      devices.set(entry.uuid, opened);
      st.entries = entries;
      st.devices = entries.flatMap((e) => devices.get(e.uuid) ?? []);
      st.hashers.set(entry.uuid, hash);
    } catch (e) {
      await device.close().catch(() => undefined);
      throw e;
    }
    this.#logger()?.info?.({ path, type: req.type }, "enabled audit device");
  }

  /** OpenBao's disableAudit: the table without the entry, then the device closed and its salt removed. */
  async #disableFrom(st: TermState, entry: MountEntry): Promise<void> {
    const entries = st.entries.filter((e) => e !== entry);
    try {
      await writeAuditTables(this.#store.storage, entries, entry.local === true);
    } catch (e) {
      throw new VaultError("internal", `failed to update audit table: ${message(e)}`, { cause: e });
    }
    const gone = st.devices.filter((d) => d.entry === entry);
    st.entries = entries;
    st.devices = st.devices.filter((d) => d.entry !== entry);
    st.openErrors.delete(entry.path);
    st.hashers.delete(entry.uuid);
    await this.#closeDevices(gone);
    try {
      await this.#deleteView(entry);
    } catch (e) {
      this.#logger()?.warn?.(
        { path: entry.path, error: message(e) },
        `the disabled audit device's salt could not be removed (${AUDIT_VIEW_PREFIX}${entry.uuid}/)`,
      );
    }
    this.#logger()?.info?.({ path: entry.path }, "disabled audit device");
  }

  /** Removes everything below the device's view (`audit/<uuid>/`: its salt). */
  async #deleteView(entry: MountEntry): Promise<void> {
    const storage = this.#store.storage;
    const walk = async (prefix: string): Promise<void> => {
      for (const name of await storage.list(prefix)) {
        if (name.endsWith("/")) await walk(prefix + name);
        else await storage.delete(prefix + name);
      }
    };
    await walk(`${AUDIT_VIEW_PREFIX}${entry.uuid}/`);
  }

  /**
   * OpenBao's handleAuditLogSetup: each config block is added when missing, checked against its
   * entry when present (an API-created device at its path, or a changed block, is refused), and
   * config devices no longer configured are disabled.
   */
  async #reconcile(st: TermState, settings: AuditSettings): Promise<void> {
    const configured = new Set<string>();
    for (const block of settings.devices) {
      const path = normalizeAuditPath(block.path);
      configured.add(path);
      const entry = st.entries.find((e) => e.path === path);
      if (entry === undefined) {
        this.#logger()?.info?.({ path }, "adding new audit device from the server config");
        try {
          await this.#enableInto(st, { ...block, path }, CONFIG_AUDIT_TABLE);
        } catch (e) {
          throw new BadRequestError(`failed to create new audit device ${path}: ${message(e)}`, { cause: e });
        }
        continue;
      }
      if (entry.table !== CONFIG_AUDIT_TABLE)
        throw new BadRequestError(
          `audit device in configuration (path: ${path}) was already created by API; remove the API audit device before attempting to create a duplicate configuration-based version`,
        );
      const differs = configDifference(entry, block);
      if (differs !== undefined)
        throw new BadRequestError(
          `failed to validate audit device config ${path}: modifications to audit devices are not allowed: ${differs} (to change it, remove the block and reload, which disables the device, then add the changed block and reload again)`,
        );
    }
    for (const entry of st.entries) {
      if (entry.table !== CONFIG_AUDIT_TABLE || configured.has(entry.path)) continue;
      this.#logger()?.info?.({ path: entry.path }, "disabling audit device removed from the server config");
      await this.#disableFrom(st, entry);
    }
  }

  async #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * A device's options as OpenBao keeps them (map[string]string): a number or boolean a JSON body
 * gave is taken as its text, as OpenBao's weakly typed decoding does; anything else is refused.
 */
function stringOptions(given: Readonly<Record<string, unknown>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(given ?? {})) {
    if (typeof v === "string") out[k] = v;
    else if (typeof v === "number" || typeof v === "boolean") out[k] = String(v);
    else
      throw new AuditOptionError(k, `option ${k} must be a string (options are text, e.g. "${k}": "value")`);
  }
  return out;
}

/** The checks OpenBao's handleAuditLogSetup makes of the blocks themselves (texts as OpenBao's). */
function checkSettings(settings: AuditSettings): void {
  const seen = new Set<string>();
  settings.devices.forEach((block, index) => {
    const path = `${block.path.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
    if (path === "/") throw new BadRequestError(`audit config ${index} is missing a path`);
    if (seen.has(path))
      throw new BadRequestError(`two audit devices with same path (${path}) exist in config`);
    seen.add(path);
    if (block.options?.prefix !== undefined && !settings.allowAuditLogPrefixing)
      throw new BadRequestError(
        `audit log prefixing is not allowed (the audit block at ${path} has a prefix option; set allow_audit_log_prefixing = true to allow it)`,
      );
  });
}

/** What differs between a config block and its stored entry (OpenBao's validateAuditFromConfig). */
function configDifference(
  entry: MountEntry,
  block: EnableAuditRequest & { path: string },
): string | undefined {
  const path = entry.path;
  if (entry.type !== block.type)
    return `audit device ${path} has different types: ${entry.type} (table) vs ${block.type} (config)`;
  if (entry.description !== (block.description ?? ""))
    return `audit device ${path} has different descriptions: ${entry.description} (table) vs ${block.description ?? ""} (config)`;
  if ((entry.local === true) !== (block.local ?? false))
    return `audit device ${path} has different values for local: ${entry.local === true} (table) vs ${block.local ?? false} (config)`;
  const stored = entry.options ?? {};
  const given = block.options ?? {};
  for (const [k, v] of Object.entries(given)) {
    if (!Object.hasOwn(stored, k))
      return `audit device ${path} is missing option ${k} in the audit table but it is present in the config`;
    if (stored[k] !== v)
      return `audit device ${path} option ${k} differs: ${stored[k]} (table) vs ${v} (config)`;
  }
  for (const k of Object.keys(stored)) {
    if (!Object.hasOwn(given, k))
      return `audit device ${path} has option ${k} in the audit table but it is missing from the config`;
  }
  return undefined;
}
