/** Input of the commands: secrets read hidden from a terminal, and `key=value` data arguments. */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { JsonNumber, parseJson } from "@bulwark/vault";
import { type Io, UsageError } from "./output.js";

/** Reads one secret: the argument, else a hidden prompt on a terminal, else the first line of stdin. */
export async function readSecret(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  if (stdin.isTTY && typeof stdin.setRawMode === "function") {
    io.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    try {
      return await new Promise<string>((resolve, reject) => {
        let value = "";
        const onData = (chunk: Buffer | string) => {
          for (const ch of chunk.toString()) {
            if (ch === "\r" || ch === "\n") {
              stdin.off("data", onData);
              io.stderr.write("\n");
              resolve(value);
              return;
            }
            if (ch === "\u0003") {
              stdin.off("data", onData);
              reject(new UsageError("interrupted"));
              return;
            }
            if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
            else value += ch;
          }
        };
        stdin.on("data", onData);
      });
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
  const rl = createInterface({ input: stdin, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) return line.trim();
  } finally {
    rl.close();
  }
  throw new UsageError("no input on stdin: pass the value as an argument");
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString("utf8");
}

/** `k=v`, `k=@file`, `k=-` (stdin), or a single `-` / `@file.json` holding a JSON object. */
export async function parseKeyValues(args: readonly string[], io: Io): Promise<Record<string, unknown>> {
  if (args.length === 1 && (args[0] === "-" || (args[0]?.startsWith("@") && !args[0].includes("=")))) {
    const text =
      args[0] === "-" ? await readAll(io.stdin) : await readFile((args[0] as string).slice(1), "utf8");
    let parsed: unknown;
    try {
      // Numbers keep their exact text (`bao kv put p -` sends them as written).
      parsed = parseJson(text);
    } catch (err) {
      throw new UsageError(`the input is not JSON: ${(err as Error).message}`);
    }
    if (
      typeof parsed !== "object" ||
      parsed === null ||
      Array.isArray(parsed) ||
      parsed instanceof JsonNumber
    )
      throw new UsageError("the JSON input must be an object");
    return parsed as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  for (const arg of args) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new UsageError(`${JSON.stringify(arg)} is not key=value`);
    const key = arg.slice(0, eq);
    let value = arg.slice(eq + 1);
    if (value === "-") value = (await readAll(io.stdin)).replace(/\n$/, "");
    else if (value.startsWith("@")) value = await readFile(value.slice(1), "utf8");
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
