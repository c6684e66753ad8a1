/**
 * Direct pkcs11js access to a SoftHSM token for tests: look at what the seal created, plant keys,
 * and break things underneath the seal (close its sessions, log it out, change the PIN).
 *
 * It loads its own pkcs11js instance of the same library. The library state (initialisation,
 * sessions, login) is per process, so this sees and affects the seal's sessions. Create it before
 * the first seal initialises: then this helper owns C_Initialize and the seals adopt it.
 */
import pkcs11js from "pkcs11js";

type Handle = Buffer;

function rv(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

export class RawToken {
  readonly lib: pkcs11js.PKCS11;
  readonly ownsInit: boolean;

  constructor(libPath: string) {
    this.lib = new pkcs11js.PKCS11();
    this.lib.load(libPath);
    let owns = true;
    try {
      this.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      if (rv(err) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) throw err;
      owns = false;
    }
    this.ownsInit = owns;
  }

  slotOf(label: string): Handle {
    for (const slot of this.lib.C_GetSlotList(true)) {
      if (this.lib.C_GetTokenInfo(slot).label.trim() === label) return slot;
    }
    throw new Error(`no token labelled ${label}`);
  }

  /** A logged-in read-write session (CKR_USER_ALREADY_LOGGED_IN is fine: login is per token). */
  session(label: string, pin: string): Handle {
    const s = this.lib.C_OpenSession(
      this.slotOf(label),
      pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION,
    );
    try {
      this.lib.C_Login(s, pkcs11js.CKU_USER, pin);
    } catch (err) {
      if (rv(err) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw err;
    }
    return s;
  }

  find(session: Handle, template: pkcs11js.Template): Handle[] {
    this.lib.C_FindObjectsInit(session, template);
    try {
      return this.lib.C_FindObjects(session, 100);
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  /** Imports a known AES-256 key (sensitive, not extractable) so tests can check ciphertexts. */
  importAesKey(session: Handle, label: string, id: Buffer, value: Buffer): Handle {
    return this.lib.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_VALUE, value: value },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    ]);
  }

  /** Generates an AES-256 token key with the given label/id (no seal involved). */
  generateAesKey(session: Handle, label: string, id: Buffer): Handle {
    return this.lib.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    ]);
  }

  attributes(session: Handle, object: Handle, types: number[]): Map<number, Buffer> {
    const out = new Map<number, Buffer>();
    for (const a of this.lib.C_GetAttributeValue(
      session,
      object,
      types.map((type) => ({ type })),
    )) {
      if (a.value instanceof Buffer) out.set(a.type, a.value);
    }
    return out;
  }

  destroy(session: Handle, label: string): number {
    const found = this.find(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
    for (const h of found) this.lib.C_DestroyObject(session, h);
    return found.length;
  }

  /** Changes CKA_LABEL of every object labelled `label` (hides a key from label lookups). */
  relabel(session: Handle, label: string, newLabel: string): number {
    const found = this.find(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
    for (const h of found)
      this.lib.C_SetAttributeValue(session, h, [{ type: pkcs11js.CKA_LABEL, value: newLabel }]);
    return found.length;
  }

  /** Closes every session of this process on the token — the seal's included. */
  closeAllSessions(label: string): void {
    this.lib.C_CloseAllSessions(this.slotOf(label));
  }

  finalize(): void {
    if (this.ownsInit) {
      try {
        this.lib.C_Finalize();
      } catch {
        // Already finalised.
      }
    }
    this.lib.close();
  }
}
