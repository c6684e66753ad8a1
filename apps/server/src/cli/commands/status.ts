/** `bulwark status`: the seal status (and HA mode), as Vault's `status` prints it. */
import type { Command } from "commander";
import type { ApiClient } from "../client.js";
import { type ClientFlags, type CommandDeps, clientOf, withClientFlags } from "../command.js";
import { type Format, type Io, json, parseFormat, table } from "../output.js";

function statusRows(
  s: Record<string, unknown>,
  leader: Record<string, unknown> | undefined,
): Array<[string, unknown]> {
  const rows: Array<[string, unknown]> = [["Seal Type", s.type]];
  if (s.recovery_seal === true) rows.push(["Recovery Seal Type", s.recovery_seal_type ?? "shamir"]);
  rows.push(["Initialized", s.initialized], ["Sealed", s.sealed]);
  rows.push([s.recovery_seal === true ? "Total Recovery Shares" : "Total Shares", s.n], ["Threshold", s.t]);
  if (s.sealed === true) {
    rows.push(
      ["Unseal Progress", `${s.progress}/${s.t}`],
      ["Unseal Nonce", s.nonce === "" ? "n/a" : s.nonce],
    );
  }
  if (s.migration === true) rows.push(["Seal Migration in Progress", true]);
  // Bulwark's own field: auto-unseal is retrying because the HSM/KMS cannot be reached yet.
  const wait = s.bulwark_auto_unseal as Record<string, unknown> | undefined;
  if (typeof wait === "object" && wait !== null) {
    rows.push(
      [
        "Waiting For Seal",
        `${wait.waiting_for} (attempt ${wait.attempts}, next ${wait.next_attempt ?? "soon"})`,
      ],
      ["Last Seal Error", wait.last_error],
    );
  }
  rows.push(["Version", s.version], ["Storage Type", s.storage_type]);
  if (s.cluster_name !== undefined && s.cluster_name !== "") rows.push(["Cluster Name", s.cluster_name]);
  if (s.cluster_id !== undefined && s.cluster_id !== "") rows.push(["Cluster ID", s.cluster_id]);
  if (leader !== undefined) {
    rows.push(["HA Enabled", leader.ha_enabled ?? false]);
    if (leader.ha_enabled === true && s.sealed !== true) {
      rows.push(["HA Mode", leader.is_self === true ? "active" : "standby"]);
      if (leader.leader_address) rows.push(["Active Node Address", leader.leader_address]);
    }
  }
  return rows;
}

/** Prints a seal-status body (with HA mode from sys/leader) as `status` and `operator unseal` show it. */
export async function printStatus(client: ApiClient, io: Io, format: Format, body: unknown): Promise<void> {
  const s = body as Record<string, unknown>;
  if (format === "json") {
    io.stdout.write(json(s));
    return;
  }
  let leader: Record<string, unknown> | undefined;
  try {
    leader = (await client.request("GET", "sys/leader")).body as Record<string, unknown>;
  } catch {
    leader = undefined;
  }
  io.stdout.write(table(statusRows(s, leader)));
}

/** Adds this file's commands to the program (see the file comment). */
export function register(program: Command, { io, act }: CommandDeps): void {
  withClientFlags(
    program.command("status").description("seal status; exit 0 unsealed, 2 sealed, 1 error"),
  ).action(
    act(async (flags: ClientFlags) => {
      const format = parseFormat(flags.format, io.env);
      const client = clientOf(flags, io);
      const res = await client.request("GET", "sys/seal-status");
      await printStatus(client, io, format, res.body);
      return (res.body as { sealed?: unknown }).sealed === true ? 2 : 0;
    }, 1),
  );
}
