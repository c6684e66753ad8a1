/**
 * Vault clients list with the HTTP method `LIST`. Node's HTTP parser (llhttp) knows a fixed set
 * of methods and rejects `LIST` before any route sees it (`HPE_INVALID_METHOD`). This client-error
 * handler catches exactly that case: it reads the request line and headers from the rejected
 * packet, runs the request through the app as `GET …?list=true` (Vault treats the two the same)
 * and writes the answer on the socket with `Connection: close` — the parser of that connection is
 * gone, so the client reconnects for its next request. Every other client error gets a Vault-style
 * 400 (or 431/408) and the socket is closed.
 */
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";

/** What Node passes to 'clientError' (fastify's ConnectionError types rawPacket loosely). */
interface ClientError extends Error {
  code?: string | undefined;
  rawPacket?: unknown;
}

const MAX_HEAD = 64 * 1024;

function writeResponse(
  socket: Socket,
  status: number,
  headers: Record<string, unknown>,
  body: string | Buffer,
): void {
  if (!socket.writable) return;
  const payload = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`];
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (["connection", "transfer-encoding", "content-length", "keep-alive"].includes(key) || v === undefined)
      continue;
    for (const item of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${String(item)}`);
  }
  lines.push(`content-length: ${payload.length}`, "connection: close", "", "");
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), payload]));
}

function vaultError(message: string): { headers: Record<string, string>; body: string } {
  return { headers: { "content-type": "application/json" }, body: JSON.stringify({ errors: [message] }) };
}

/** Parses `LIST <target> HTTP/1.x` + headers from a raw packet; `undefined` if it is not one. */
export function parseListRequest(raw: Buffer): { url: string; headers: Record<string, string> } | undefined {
  const text = raw.subarray(0, MAX_HEAD).toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (!text.startsWith("LIST ") || end < 0) return undefined;
  const [requestLine, ...headerLines] = text.slice(0, end).split("\r\n");
  const m = /^LIST (\/\S*) HTTP\/1\.[01]$/.exec(requestLine ?? "");
  if (m === null) return undefined;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const i = line.indexOf(":");
    if (i <= 0) return undefined;
    const name = line.slice(0, i).trim().toLowerCase();
    // The body of a LIST is ignored; its framing headers must not reach the injected GET.
    if (name === "content-length" || name === "transfer-encoding" || name === "content-type") continue;
    headers[name] = line.slice(i + 1).trim();
  }
  const target = m[1] as string;
  const url = `${target}${target.includes("?") ? "&" : "?"}list=true`;
  return { url, headers };
}

export function clientErrorHandler(getApp: () => FastifyInstance) {
  return (err: ClientError, socket: Socket): void => {
    if (err.code === "ECONNRESET" || socket.destroyed) {
      socket.destroy();
      return;
    }
    if (err.code === "HPE_INVALID_METHOD" && Buffer.isBuffer(err.rawPacket)) {
      const list = parseListRequest(err.rawPacket);
      if (list !== undefined) {
        getApp()
          .inject({ method: "GET", url: list.url, headers: list.headers })
          .then(
            (res) => writeResponse(socket, res.statusCode, res.headers, res.rawPayload),
            () => {
              const e = vaultError("internal error while serving LIST");
              writeResponse(socket, 500, e.headers, e.body);
            },
          );
        return;
      }
    }
    const status =
      err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    const e = vaultError(status === 400 ? "malformed HTTP request" : (STATUS_CODES[status] ?? "error"));
    writeResponse(socket, status, e.headers, e.body);
  };
}
