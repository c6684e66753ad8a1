/** `bulwark token …`: create, lookup, revoke. */
import type { Command } from "commander";
import {
  type ClientFlags,
  type CommandDeps,
  clientOf,
  collect,
  integer,
  withClientFlags,
} from "../command.js";
import { parseKeyValues } from "../input.js";
import { dataOf, formatDuration, type Io, json, parseFormat, rowsOf, table, UsageError } from "../output.js";

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, deps: CommandDeps): void {
  const token = program.command("token").description("tokens: create, lookup, revoke");
  create(token, deps);
  lookup(token, deps);
  revoke(token, deps);
}

/** `token create`: a child (or -orphan) token of the current one. */
function create(token: Command, { io, act }: CommandDeps): void {
  withClientFlags(token.command("create").description("create a child token of the current token"))
    .option("--policy <name>", "policy (repeatable)", collect, [])
    .option("--ttl <duration>", "time to live, e.g. 1h")
    .option("--explicit-max-ttl <duration>", "hard limit on the TTL")
    .option("--period <duration>", "periodic token renewal period")
    .option("--renewable <bool>", "whether the token can be renewed (default true)")
    .option("--display-name <name>", "name shown in lookups")
    .option("--orphan", "no parent token")
    .option("--no-default-policy", "leave out the default policy")
    .option("--id <id>", "the token value to use (root only)")
    .option("--metadata <k=v>", "metadata (repeatable)", collect, [])
    .option("--use-limit <n>", "number of uses (0 = unlimited)", integer("use-limit"))
    .action(
      act(async (flags: CreateFlags) => {
        const format = parseFormat(flags.format, io.env);
        const body = await createRequest(flags, io);
        const res = await clientOf(flags, io).request(
          "POST",
          flags.orphan ? "auth/token/create-orphan" : "auth/token/create",
          {
            body,
          },
        );
        if (format === "json") {
          io.stdout.write(json(res.body));
          return 0;
        }
        const auth = ((res.body as { auth?: Record<string, unknown> }).auth ?? {}) as Record<string, unknown>;
        io.stdout.write(
          table([
            ["token", auth.client_token],
            ["token_accessor", auth.accessor],
            ["token_duration", formatDuration(Number(auth.lease_duration ?? 0))],
            ["token_renewable", auth.renewable],
            ["token_policies", auth.token_policies ?? auth.policies],
            ["identity_policies", auth.identity_policies ?? []],
            ["policies", auth.policies],
          ]),
        );
        return 0;
      }),
    );
}

interface CreateFlags extends ClientFlags {
  policy: string[];
  ttl?: string;
  explicitMaxTtl?: string;
  period?: string;
  renewable?: string;
  displayName?: string;
  orphan?: boolean;
  defaultPolicy: boolean;
  id?: string;
  metadata: string[];
  useLimit?: number;
}

/** The auth/token/create body for `token create`'s flags (only the ones given). */
async function createRequest(flags: CreateFlags, io: Io): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  if (flags.policy.length > 0) body.policies = flags.policy;
  if (flags.ttl !== undefined) body.ttl = flags.ttl;
  if (flags.explicitMaxTtl !== undefined) body.explicit_max_ttl = flags.explicitMaxTtl;
  if (flags.period !== undefined) body.period = flags.period;
  if (flags.renewable !== undefined) {
    if (!/^(true|false)$/.test(flags.renewable)) throw new UsageError("-renewable must be true or false");
    body.renewable = flags.renewable === "true";
  }
  if (flags.displayName !== undefined) body.display_name = flags.displayName;
  if (flags.orphan) body.no_parent = true;
  if (!flags.defaultPolicy) body.no_default_policy = true;
  if (flags.id !== undefined) body.id = flags.id;
  if (flags.useLimit !== undefined) body.num_uses = flags.useLimit;
  if (flags.metadata.length > 0) body.meta = await parseKeyValues(flags.metadata, io);
  return body;
}

/** `token lookup`: a token's properties, by value, -accessor, or your own. */
function lookup(token: Command, { io, act }: CommandDeps): void {
  withClientFlags(
    token.command("lookup").description("show a token's properties (default: the current token)"),
  )
    .argument("[token]", "token to look up (default: your own)")
    .option("--accessor", "the argument is an accessor")
    .action(
      act(async (arg: string | undefined, flags: ClientFlags & { accessor?: boolean }) => {
        const format = parseFormat(flags.format, io.env);
        const client = clientOf(flags, io);
        const res =
          arg === undefined
            ? await client.request("GET", "auth/token/lookup-self")
            : flags.accessor
              ? await client.request("POST", "auth/token/lookup-accessor", { body: { accessor: arg } })
              : await client.request("POST", "auth/token/lookup", { body: { token: arg } });
        io.stdout.write(format === "json" ? json(res.body) : table(rowsOf(dataOf(res.body))));
        return 0;
      }),
    );
}

/** `token revoke`: a token, -accessor, or -self. */
function revoke(token: Command, { io, act }: CommandDeps): void {
  withClientFlags(token.command("revoke").description("revoke a token and its children"))
    .argument("[token]", "token to revoke")
    .option("--self", "revoke the current token")
    .option("--accessor", "the argument is an accessor")
    .action(
      act(async (arg: string | undefined, flags: ClientFlags & { self?: boolean; accessor?: boolean }) => {
        const client = clientOf(flags, io);
        if (flags.self) await client.request("POST", "auth/token/revoke-self");
        else if (arg === undefined) throw new UsageError("token revoke needs a token (or -self)");
        else if (flags.accessor)
          await client.request("POST", "auth/token/revoke-accessor", { body: { accessor: arg } });
        else await client.request("POST", "auth/token/revoke", { body: { token: arg } });
        io.stdout.write("Success! Revoked token (if it existed)\n");
        return 0;
      }),
    );
}
