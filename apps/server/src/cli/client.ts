/**
 * The CLI's HTTP client: Vault's API over Node's global `fetch`. Address and token come from
 * flags, then `BULWARK_ADDR`/`BULWARK_TOKEN`, then Vault's `VAULT_ADDR`/`VAULT_TOKEN`.
 */

export type Env = Record<string, string | undefined>;

/** The CLI's default server: the default config's plain-HTTP listener. */
export const DEFAULT_ADDRESS = "http://127.0.0.1:8200";

export interface ClientOptions {
  address?: string | undefined;
  token?: string | undefined;
  env: Env;
}

export interface ApiResponse {
  status: number;
  /** Parsed JSON body; `undefined` for an empty body (204). */
  body: unknown;
}

/** The server answered with an error status (Vault's `{"errors": […]}`). */
export class ApiError extends Error {
  override name = "ApiError";
  readonly code = "api_error";
  readonly status: number;
  readonly errors: readonly string[];
  readonly method: string;
  readonly url: string;

  constructor(method: string, url: string, status: number, errors: readonly string[]) {
    super(
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
export class ConnectionError extends Error {
  override name = "ConnectionError";
  readonly code = "connection_failed";
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
      init.body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (err) {
      throw new ConnectionError(`${httpMethod} ${url}: ${causeText(err)}`, { cause: err });
    }
    const text = await res.text();
    let body: unknown;
    if (text.trim() !== "") {
      try {
        body = JSON.parse(text);
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
