/**
 * Query parameters, as Vault's field decoder reads them. Request bodies are parsed by the logical
 * layer (`parseFields` of @bulwark/vault), which the routes call directly.
 */
import { parseField } from "@bulwark/vault";

/** A query parameter as a boolean (Vault's ParseBool); `undefined` when absent. */
export function queryBool(query: Record<string, string | undefined>, name: string): boolean | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  return parseField(name, "bool", v === "" ? "true" : v) as boolean;
}

/** A query parameter as an integer; `undefined` when absent. */
export function queryInt(query: Record<string, string | undefined>, name: string): number | undefined {
  const v = query[name];
  if (v === undefined) return undefined;
  return parseField(name, "int", v) as number;
}
