import { JOURNAL_PATH } from "@bulwark/barrier";
import type { Backend } from "@bulwark/storage";

/**
 * A rollback journal for lifecycle steps that change several records (init, rekey, seal
 * migration). Before the first write, the previous raw value of every record the step will touch
 * is saved in one record; the step then writes; the journal is deleted last. If the process dies
 * in between, `recover()` (run at open and before every lifecycle step) puts the old values back,
 * so the store is always in the old or the new state, never in a mix.
 *
 * The journal holds raw storage bytes that are already encrypted (keyring, stored keys) or
 * public (seal configs), so it adds nothing an attacker with storage access did not have.
 */
export { JOURNAL_PATH };

interface JournalRecord {
  op: string;
  entries: Array<{ key: string; value: string | null }>;
}

export class Journal {
  constructor(private readonly storage: Backend) {}

  /** Saves the current values of `keys` and returns once the journal is durable. */
  async begin(op: string, keys: readonly string[]): Promise<void> {
    const entries: JournalRecord["entries"] = [];
    for (const key of keys) {
      const e = await this.storage.get(key);
      entries.push({ key, value: e === undefined ? null : Buffer.from(e.value).toString("base64") });
    }
    const body: JournalRecord = { op, entries };
    await this.storage.put({ key: JOURNAL_PATH, value: new TextEncoder().encode(JSON.stringify(body)) });
  }

  /** The step finished: drop the journal. */
  async commit(): Promise<void> {
    await this.storage.delete(JOURNAL_PATH);
  }

  /** Restores the saved values if a journal is present; returns the interrupted operation's name. */
  async recover(): Promise<string | undefined> {
    const e = await this.storage.get(JOURNAL_PATH);
    if (e === undefined) return undefined;
    const rec = JSON.parse(new TextDecoder().decode(e.value)) as JournalRecord;
    for (const { key, value } of rec.entries) {
      if (value === null) await this.storage.delete(key);
      else await this.storage.put({ key, value: new Uint8Array(Buffer.from(value, "base64")) });
    }
    await this.storage.delete(JOURNAL_PATH);
    return rec.op;
  }
}
