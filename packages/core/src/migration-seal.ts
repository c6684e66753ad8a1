import type { BlobInfo, Seal, SealEncryptOptions } from "@bulwark/seal";

/**
 * The seal the seal-wrap layer talks to. Normally it is the configured seal; during and after a
 * seal migration it also decrypts values wrapped by the previous seal (picked by the blob's key
 * id), so entries stay readable until they are re-wrapped.
 */
export class MigrationSeal implements Seal {
  constructor(
    private readonly current: Seal,
    private previous: Seal | undefined,
  ) {}

  /** Sets the migration source (an implicit migration found once the stored config is read). */
  setPrevious(seal: Seal): void {
    this.previous = seal;
  }

  get type(): string {
    return this.current.type;
  }

  get autoUnseal(): boolean {
    return this.current.autoUnseal;
  }

  get supportsSealWrap(): boolean {
    return this.current.supportsSealWrap;
  }

  async init(signal?: AbortSignal): Promise<void> {
    await this.current.init(signal);
    await this.previous?.init(signal);
  }

  async finalize(): Promise<void> {
    await this.current.finalize();
    await this.previous?.finalize();
  }

  keyId(): string {
    return this.current.keyId();
  }

  encrypt(plaintext: Uint8Array, opts?: SealEncryptOptions): Promise<BlobInfo> {
    return this.current.encrypt(plaintext, opts);
  }

  async decrypt(blob: BlobInfo, opts?: SealEncryptOptions): Promise<Uint8Array> {
    const prev = this.previous;
    if (prev === undefined) return this.current.decrypt(blob, opts);
    const id = blob.keyInfo?.keyId;
    const first = safeKeyId(prev) === id && safeKeyId(this.current) !== id ? prev : this.current;
    const second = first === prev ? this.current : prev;
    try {
      return await first.decrypt(blob, opts);
    } catch (e) {
      try {
        return await second.decrypt(blob, opts);
      } catch {
        throw e;
      }
    }
  }
}

function safeKeyId(s: Seal): string | undefined {
  try {
    return s.keyId();
  } catch {
    return undefined;
  }
}
