/**
 * KV version 1: one JSON object per path at `logical/<uuid>/<path>` (Vault's passthrough layout),
 * stored and returned with every number's exact text (Vault decodes with UseNumber; so does the
 * HTTP layer here for secrets engines' bodies).
 * GET → `{data: {...}}`, PUT/POST replace the object, DELETE removes it, LIST gives the direct
 * children of a folder.
 */
import { SYSTEM_MAX_TTL_S } from "../auth/tokens.js";
import { bodyObject } from "../request/fields.js";
import {
  checkKey,
  type KvEngine,
  KvError,
  type KvRequest,
  type KvResponse,
  listPrefix,
  type PrefixView,
} from "./common.js";

export class KvV1 implements KvEngine {
  readonly #view: PrefixView;
  readonly #defaultLeaseTtl: () => number;

  /** @param defaultLeaseTtl seconds (0 = the system maximum), or a getter for the mount's current value. */
  constructor(view: PrefixView, defaultLeaseTtl: number | (() => number) = 0) {
    this.#view = view;
    this.#defaultLeaseTtl = typeof defaultLeaseTtl === "number" ? () => defaultLeaseTtl : defaultLeaseTtl;
  }

  get #leaseTtl(): number {
    const t = this.#defaultLeaseTtl();
    return t > 0 ? t : SYSTEM_MAX_TTL_S;
  }

  async exists(path: string): Promise<boolean | undefined> {
    if (path === "" || path.endsWith("/")) return false;
    checkKey(path);
    return (await this.#view.get(path)) !== undefined;
  }

  async handle(req: KvRequest): Promise<KvResponse> {
    switch (req.operation) {
      case "list": {
        const keys = await this.#view.list(listPrefix(req.path));
        if (keys.length === 0) throw new KvError("not_found", "");
        return { data: { keys } };
      }
      case "read": {
        checkKey(req.path);
        // Stored as sent (numbers with their exact text, as Vault keeps them): returned verbatim.
        const data = await this.#view.getText(req.path);
        if (data === undefined) throw new KvError("not_found", "");
        return { rawData: data, leaseDuration: this.#leaseTtl };
      }
      case "write": {
        checkKey(req.path);
        const data = bodyObject(req.body);
        if (Object.keys(data).length === 0) throw new KvError("invalid_request", "missing data fields");
        await this.#view.putJson(req.path, data);
        return {};
      }
      case "delete":
        checkKey(req.path);
        await this.#view.delete(req.path);
        return {};
      case "patch":
        // Vault's passthrough backend has no patch operation: its router answers 405.
        throw new KvError("unsupported_operation", "unsupported operation");
    }
  }
}
