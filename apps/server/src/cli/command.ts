/**
 * What every command group (commands/*.ts) registers with: the io and the action wrapper it gets
 * from `buildProgram`, Vault's client flags, and commander's parsers for repeatable and integer
 * flags.
 */
import { type Command, InvalidArgumentError } from "commander";
import { ApiClient } from "./client.js";
import type { Io } from "./output.js";

/** What `buildProgram` hands each command group's `register`. */
export interface CommandDeps {
  io: Io;
  /**
   * Wraps an action so errors print Vault-style and map to exit codes: the action resolves with
   * the exit code; `errorCode` is the exit code of a remote error (2, or 1 for local commands).
   */
  act: <A extends unknown[]>(
    fn: (...args: A) => Promise<number>,
    errorCode?: number,
  ) => (...args: A) => Promise<void>;
}

/** Vault's client flags, on every command that calls the server (see withClientFlags). */
export interface ClientFlags {
  address?: string;
  token?: string;
  format?: string;
  caCert?: string;
  tlsSkipVerify?: boolean;
}

/** Commander's parser for a repeatable flag: every value, in order. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Commander's parser for a whole-number flag; anything else is refused naming the flag. */
export function integer(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`-${name} must be a whole number`);
    return Number(value);
  };
}

/** Adds the client flags (address, token, format, TLS) to a command. */
export function withClientFlags(cmd: Command): Command {
  return cmd
    .option("--address <url>", "server address (default: $BULWARK_ADDR, $VAULT_ADDR, http://127.0.0.1:8200)")
    .option("--token <token>", "token (default: $BULWARK_TOKEN, $VAULT_TOKEN)")
    .option("--format <format>", "output format: table or json (default: $BULWARK_FORMAT or table)")
    .option(
      "--ca-cert <file>",
      "PEM CA certificate that signed the server's (default: $BULWARK_CACERT, $VAULT_CACERT)",
    )
    .option(
      "--tls-skip-verify",
      "do not verify the server's certificate (default: $BULWARK_SKIP_VERIFY, $VAULT_SKIP_VERIFY)",
    );
}

/** The API client for a command's flags; what they leave out comes from the environment. */
export function clientOf(flags: ClientFlags, io: Io): ApiClient {
  return new ApiClient({
    address: flags.address,
    token: flags.token,
    caCert: flags.caCert,
    tlsSkipVerify: flags.tlsSkipVerify,
    env: io.env,
  });
}
