/**
 * The `bulwark` command line (commander 14), shaped like Vault's: `server`, `status`,
 * `operator …`, `kv …`, `secrets …`, `audit …`, `token …`, and raw `read`/`write`/`delete`/`list`.
 * Flags are written the Vault way (`-key-shares=5`); exit codes follow Vault: 0 success, 1
 * local/usage error, 2 remote error; `status` gives 2 when sealed. Each command group lives in `commands/<group>.ts` and
 * registers itself with `register(program, deps)`; this file assembles them (in the order `-h`
 * lists them) and maps errors to exit codes.
 */
import { VERSION } from "@bulwark/core";
import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/errors.js";
import { ProviderError } from "../registry/errors.js";
import { normaliseArgs } from "./argv.js";
import { ApiError, ConnectionError } from "./client.js";
import type { CommandDeps } from "./command.js";
import * as audit from "./commands/audit.js";
import * as kv from "./commands/kv.js";
import * as operator from "./commands/operator.js";
import * as paths from "./commands/paths.js";
import * as secrets from "./commands/secrets.js";
import * as server from "./commands/server.js";
import * as status from "./commands/status.js";
import * as token from "./commands/token.js";
import { type Io, UsageError } from "./output.js";

/** The command groups, in the order the help lists them. */
const GROUPS: ReadonlyArray<{ register(program: Command, deps: CommandDeps): void }> = [
  server,
  status,
  operator,
  kv,
  secrets,
  audit,
  token,
  paths,
];

/** Builds the program; `exit` receives each command's exit code. */
export function buildProgram(io: Io, exit: (code: number) => void): Command {
  const program = new Command("bulwark");
  program
    .description("Bulwark: a Vault-compatible sealed-storage server and its CLI")
    .version(`Bulwark v${VERSION}`, "-v, --version")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError("(run with -h for usage)");

  /** Wraps an action so errors print Vault-style and map to exit codes. */
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>, errorCode = 2) =>
    async (...args: A): Promise<void> => {
      try {
        exit(await fn(...args));
      } catch (err) {
        exit(report(err, io, errorCode));
      }
    };

  for (const group of GROUPS) group.register(program, { io, act });
  return program;
}

/** Prints an error the way Vault's CLI does and returns the exit code. */
function report(err: unknown, io: Io, remoteCode: number): number {
  if (err instanceof UsageError) {
    io.stderr.write(`Error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof ApiError) {
    io.stderr.write(`${err.message}\n`);
    return remoteCode;
  }
  if (err instanceof ConnectionError) {
    io.stderr.write(
      `Error: cannot reach the server: ${err.message}\n(set BULWARK_ADDR or -address to the server's URL)\n`,
    );
    return remoteCode;
  }
  if (err instanceof ConfigError || err instanceof ProviderError) {
    io.stderr.write(`Error loading the configuration: ${err.message}\n`);
    return 1;
  }
  if (err instanceof CommanderError) throw err;
  io.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
  return remoteCode === 2 ? 2 : 1;
}

/**
 * Runs the CLI. `argv` is `process.argv` (node, script, args…). Resolves with the exit code;
 * never calls `process.exit` (except a second Ctrl-C while the server shuts down).
 */
export async function main(argv: readonly string[], io?: Partial<Io>): Promise<number> {
  const fullIo: Io = {
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    stdin: io?.stdin ?? process.stdin,
    env: io?.env ?? process.env,
  };
  let code = 0;
  const program = buildProgram(fullIo, (c) => {
    code = c;
  });
  const args = normaliseArgs(argv.slice(2));
  if (args.length === 0) {
    program.outputHelp();
    return 1;
  }
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    return report(err, fullIo, 1);
  }
  return code;
}
