import { InvalidKeyError } from "./errors.js";

/**
 * Rejects keys no backend may accept: empty, leading `/`, a `.` or `..` segment (path traversal in the
 * file backend), empty segments, NUL bytes, or a trailing `/` (that names a folder, not a key).
 */
export function validateKey(key: string): void {
  if (typeof key !== "string") throw new InvalidKeyError(String(key), "keys must be strings");
  if (key.length === 0) throw new InvalidKeyError(key, "keys must not be empty");
  if (key.startsWith("/")) throw new InvalidKeyError(key, "keys must be relative (no leading '/')");
  if (key.endsWith("/"))
    throw new InvalidKeyError(key, "a key ending in '/' names a folder; drop the trailing '/'");
  if (key.includes("\0")) throw new InvalidKeyError(key, "keys must not contain NUL bytes");
  for (const seg of key.split("/")) {
    if (seg === "..") throw new InvalidKeyError(key, "keys must not contain '..' segments");
    // A '.' segment names the same file as the key without it in a file layout: two keys, one file.
    if (seg === ".") throw new InvalidKeyError(key, "keys must not contain '.' segments");
    if (seg === "") throw new InvalidKeyError(key, "keys must not contain empty segments ('//')");
  }
}

/** A list prefix is `""` or a folder path ending in `/`, with the same segment rules as keys. */
export function validatePrefix(prefix: string): void {
  if (prefix === "") return;
  if (!prefix.endsWith("/")) {
    throw new InvalidKeyError(prefix, "a list prefix must be empty or end in '/'");
  }
  validateKey(prefix.slice(0, -1));
}

/** Direct children of `prefix` among sorted keys: names, with `/` after sub-folders, deduplicated, sorted. */
export function directChildren(prefix: string, keys: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const k of keys) {
    if (!k.startsWith(prefix)) continue;
    const rest = k.slice(prefix.length);
    const slash = rest.indexOf("/");
    out.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  return [...out].sort();
}
