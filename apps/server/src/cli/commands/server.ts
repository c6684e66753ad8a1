/** `bulwark server`: Vault's `server -config …`, or the in-memory dev server (`-dev`). */

import { tryParseDuration } from "@bulwark/settings";
import type { Command } from "commander";
import { type CommandDeps, collect } from "../command.js";
import { UsageError } from "../output.js";

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, { io, act }: CommandDeps): void {
  program
    .command("server")
    .description("run the server from config files (Vault's -config), or an in-memory dev server (-dev)")
    .option("--config <path>", "config file or directory (repeatable; merged like Vault)", collect, [])
    .option("--dev", "in-memory, initialised with one key share, unsealed; prints the root token")
    .option("--dev-listen-address <addr>", "dev listener address", "127.0.0.1:8200")
    .option("--dev-root-token-id <id>", "with -dev: this root token instead of a random one (Vault's flag)")
    .option("--log-level <level>", "trace, debug, info, warn or error (default: config, BULWARK_LOG_LEVEL)")
    .action(
      act(
        async (opts: {
          config: string[];
          dev?: boolean;
          devListenAddress: string;
          devRootTokenId?: string;
          logLevel?: string;
        }) => {
          if (opts.config.length === 0 && !opts.dev) {
            throw new UsageError(
              "server needs -config <file or directory> (or -dev for an in-memory dev server)",
            );
          }
          if (opts.devRootTokenId !== undefined && !opts.dev)
            throw new UsageError("-dev-root-token-id needs -dev (it sets the dev server's root token)");
          const deadlineMs = shutdownDeadlineMs(io.env);
          const { holdSignalsWhileStarting, runUntilSignal, startServer } = await import("../../main.js");
          const release = holdSignalsWhileStarting();
          let server: Awaited<ReturnType<typeof startServer>>;
          try {
            server = await startServer({
              configPaths: opts.config,
              dev: opts.dev === true,
              devListenAddress: opts.devListenAddress,
              ...(opts.devRootTokenId === undefined ? {} : { devRootTokenId: opts.devRootTokenId }),
              ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
              env: io.env,
              out: io.stdout,
            });
          } catch (err) {
            release();
            throw err;
          }
          const pendingSignal = release();
          return runUntilSignal(server, {
            ...(deadlineMs === undefined ? {} : { deadlineMs }),
            ...(pendingSignal === undefined ? {} : { pendingSignal }),
          });
        },
        1,
      ),
    );
}

/**
 * `BULWARK_SHUTDOWN_TIMEOUT`: how long `server` may take to stop in order after SIGTERM/SIGINT
 * before it exits anyway ("30s", "1500ms", or seconds: the settings kernel's duration grammar);
 * unset = the default (10 s).
 */
export function shutdownDeadlineMs(env: Record<string, string | undefined>): number | undefined {
  const raw = env.BULWARK_SHUTDOWN_TIMEOUT;
  if (raw === undefined || raw.trim() === "") return undefined;
  const ms = tryParseDuration(raw);
  if (ms === undefined || ms <= 0 || ms > 86_400_000) {
    throw new UsageError(
      `BULWARK_SHUTDOWN_TIMEOUT must be a duration like "10s" or "1500ms" (or seconds), more than 0 and at most 24h; found ${JSON.stringify(raw)}`,
    );
  }
  return Math.round(ms);
}
