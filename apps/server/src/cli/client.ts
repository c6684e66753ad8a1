/**
 * The CLI's HTTP client: Vault's API over Node's global `fetch`. Address and token come from
 * flags, then `BULWARK_ADDR`/`BULWARK_TOKEN`, then Vault's `VAULT_ADDR`/`VAULT_TOKEN`. For HTTPS
 * with a private CA (`-ca-cert`, `BULWARK_CACERT`/`VAULT_CACERT`) or without verification
 * (`-tls-skip-verify`, `BULWARK_SKIP_VERIFY`/`VAULT_SKIP_VERIFY`) requests go through `node:https`,
 * whose TLS options fetch does not expose.
 */
import { readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { FALSE_WORDS, TRUE_WORDS } from "@bulwark/settings";
import { parseJson, stringify } from "@bulwark/vault";

export type Env = Record<string, string | undefined>;

/** The CLI's default server: the default config's plain-HTTP listener. */
const DEFAULT_ADDRESS = "http://127.0.0.1:8200";

export interface ClientOptions {
  address?: string | undefined;
  token?: string | undefined;
  /** PEM file of the CA that signed the server's certificate (Vault's `-ca-cert`). */
  caCert?: string | undefined;
  /** Do not verify the server's certificate (Vault's `-tls-skip-verify`; never in production). */
  tlsSkipVerify?: boolean | undefined;
  env: Env;
}

/** Go's strconv.ParseBool (the settings kernel's words, as written), which Vault uses for VAULT_SKIP_VERIFY. */
function envBool(name: string, v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  if (TRUE_WORDS.includes(v)) return true;
  if (FALSE_WORDS.includes(v)) return false;
  throw new ConnectionError(`${name} must be true or false, got ${JSON.stringify(v)}`);
}

export interface ApiResponse {
  status: number;
  /** Parsed JSON body; `undefined` for an empty body (204). */
  body: unknown;
}

/** The server answered with an error status (Vault's `{"errors": […]}`). */
export class ApiError extends CodedError<"api_error"> {
  static override readonly kind: string = "@bulwark/server:ApiError";
  override name = "ApiError";
  readonly status: number;
  readonly errors: readonly string[];
  readonly method: string;
  readonly url: string;

  constructor(method: string, url: string, status: number, errors: readonly string[]) {
    super(
      "cli",
      "api_error",
      `Error making API request.\n\nURL: ${method} ${url}\nCode: ${status}. Errors:\n\n${
        errors.length > 0 ? errors.map((e) => `* ${e}`).join("\n") : "* (no error message)"
      }`,
    );
    this.method = method;
    this.url = url;
    this.status = status;
    this.errors = errors;
  }
}

/** The server could not be reached (refused, DNS, TLS). */
export class ConnectionError extends CodedError<"connection_failed"> {
  static override readonly kind: string = "@bulwark/server:ConnectionError";
  override name = "ConnectionError";
  constructor(message: string, options?: CodedErrorOptions) {
    super("cli", "connection_failed", message, options);
  }
}

function pick(env: Env, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n];
    if (v !== undefined && v.trim() !== "") return v.trim();
  }
  return undefined;
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (cause !== undefined && typeof cause.message === "string") {
    return typeof cause.code === "string" ? `${cause.code}: ${cause.message}` : cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export class ApiClient {
  readonly address: string;
  readonly #token: string | undefined;
  /** TLS options for `node:https`; `undefined` = plain fetch. */
  readonly #tls: { ca?: Buffer; rejectUnauthorized: boolean } | undefined;

  constructor(opts: ClientOptions) {
    const address = opts.address ?? pick(opts.env, "BULWARK_ADDR", "VAULT_ADDR") ?? DEFAULT_ADDRESS;
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      throw new ConnectionError(
        `invalid address ${JSON.stringify(address)}: use a URL like ${DEFAULT_ADDRESS}`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConnectionError(
        `invalid address ${JSON.stringify(address)}: it must start with http:// or https://`,
      );
    }
    this.address = address.replace(/\/+$/, "");
    this.#token = opts.token ?? pick(opts.env, "BULWARK_TOKEN", "VAULT_TOKEN");
    const skipName = opts.env.BULWARK_SKIP_VERIFY !== undefined ? "BULWARK_SKIP_VERIFY" : "VAULT_SKIP_VERIFY";
    const skip = opts.tlsSkipVerify === true || envBool(skipName, pick(opts.env, skipName)) === true;
    const caName =
      opts.caCert !== undefined
        ? "-ca-cert"
        : opts.env.BULWARK_CACERT !== undefined
          ? "BULWARK_CACERT"
          : "VAULT_CACERT";
    const caFile = opts.caCert ?? pick(opts.env, "BULWARK_CACERT", "VAULT_CACERT");
    let ca: Buffer | undefined;
    if (caFile !== undefined) {
      try {
        ca = readFileSync(caFile);
      } catch (err) {
        throw new ConnectionError(`${caName}: cannot read the CA certificate ${caFile}: ${causeText(err)}`);
      }
    }
    if (url.protocol === "https:" && (skip || ca !== undefined)) {
      this.#tls = ca === undefined ? { rejectUnauthorized: !skip } : { ca, rejectUnauthorized: !skip };
    }
  }

  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** `path` is below `/v1/`, e.g. `sys/seal-status`. `LIST` is sent as `GET ?list=true`, which Vault treats the same. */
  async request(
    method: "GET" | "PUT" | "POST" | "DELETE" | "LIST",
    path: string,
    opts: { body?: unknown; query?: Record<string, string>; okStatuses?: readonly number[] } = {},
  ): Promise<ApiResponse> {
    const query = new URLSearchParams(opts.query ?? {});
    if (method === "LIST") query.set("list", "true");
    const qs = query.toString();
    // Each segment percent-encoded: a name holding '#', '?', '%' or a space is a name, not URL
    // syntax (unencoded, "a#b" would reach the server as "a", "a?x" as "a" with a query).
    const encoded = path.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/");
    const url = `${this.address}/v1/${encoded}${qs ? `?${qs}` : ""}`;
    const httpMethod = method === "LIST" ? "GET" : method;
    const headers: Record<string, string> = {};
    if (this.#token !== undefined) headers["X-Vault-Token"] = this.#token;
    const init: RequestInit = { method: httpMethod, headers };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      // Numbers read from JSON input keep their exact text (see @bulwark/vault's json/lossless.ts).
      init.body = stringify(opts.body);
    }
    let res: { status: number; ok: boolean; text: string };
    try {
      if (this.#tls !== undefined)
        res = await tlsRequest(url, httpMethod, headers, init.body as string | undefined, this.#tls);
      else {
        const r = await fetch(url, init);
        res = { status: r.status, ok: r.ok, text: await r.text() };
      }
    } catch (err) {
      throw new ConnectionError(`${httpMethod} ${url}: ${causeText(err)}`, { cause: err });
    }
    const text = res.text;
    let body: unknown;
    if (text.trim() !== "") {
      try {
        // Lossless: `kv get -format=json` prints numbers exactly as the server sent them.
        body = parseJson(text);
      } catch {
        body = text;
      }
    }
    if (res.ok || opts.okStatuses?.includes(res.status)) return { status: res.status, body };
    const errors =
      typeof body === "object" && body !== null && Array.isArray((body as { errors?: unknown }).errors)
        ? ((body as { errors: unknown[] }).errors.map(String) as string[])
        : typeof body === "string"
          ? [body]
          : [];
    throw new ApiError(httpMethod, url, res.status, errors);
  }
}

/** One request over `node:https` with explicit TLS options (a private CA, or no verification). */
function tlsRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  tls: { ca?: Buffer; rejectUnauthorized: boolean },
): Promise<{ status: number; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method, headers, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const status = res.statusCode ?? 0;
        resolve({ status, ok: status >= 200 && status < 300, text: Buffer.concat(chunks).toString("utf8") });
      });
    });
    req.on("error", (err) => reject(new Error(err.message, { cause: err })));
    req.end(body);
  });
}
