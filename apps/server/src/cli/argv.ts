/**
 * Vault's CLI takes Go-style flags with one dash (`-config=x`, `-key-shares 5`, `-dev`); commander
 * wants two. This turns Vault's spelling into commander's before parsing, so both work.
 */

import { FALSE_WORDS, TRUE_WORDS } from "@bulwark/settings";

/** Flags that are booleans: `-reset=true` becomes `--reset`, `-reset=false` disappears (Go's flag package accepts both). */
export const BOOLEAN_FLAGS: ReadonlySet<string> = new Set([
  "dev",
  "reset",
  "migrate",
  "status",
  "init",
  "cancel",
  "verify",
  "tls-skip-verify",
  "orphan",
  "no-default-policy",
  "self",
  "accessor",
  "cas-required",
  "force",
  "seal-wrap",
  "local",
  "detailed",
  "f",
]);

/**
 * Booleans whose false is a setting of its own (it turns something off on the server): `=false`
 * becomes `--no-<name>` (the command defines that flag) instead of disappearing.
 */
export const NEGATABLE_FLAGS: ReadonlySet<string> = new Set(["cas-required"]);

// Go's flag package reads a boolean's value with strconv.ParseBool: the kernel's words, as written.
const TRUE: ReadonlySet<string> = new Set(TRUE_WORDS);
const FALSE: ReadonlySet<string> = new Set(FALSE_WORDS);

/**
 * Rewrites user arguments (without `node` and the script): `-name` and `-name=value` with a name
 * of two or more characters become `--name…`; booleans written with `=true/false` become bare
 * flags. Single letters (`-h`, `-f`), `-` (stdin), negative numbers and everything after `--`
 * are left alone.
 */
export function normaliseArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  let rest = false;
  for (const arg of args) {
    if (rest || arg === "-" || !arg.startsWith("-") || /^-\d/.test(arg)) {
      out.push(arg);
      continue;
    }
    if (arg === "--") {
      rest = true;
      out.push(arg);
      continue;
    }
    const long = arg.startsWith("--") ? arg : /^-[A-Za-z][A-Za-z0-9-]+(=.*)?$/s.test(arg) ? `-${arg}` : arg;
    const m = /^--([A-Za-z0-9-]+)=(.*)$/s.exec(long);
    if (m && BOOLEAN_FLAGS.has(m[1] as string)) {
      if (TRUE.has(m[2] as string)) out.push(`--${m[1]}`);
      else if (FALSE.has(m[2] as string)) {
        if (NEGATABLE_FLAGS.has(m[1] as string)) out.push(`--no-${m[1]}`);
      } else out.push(long);
      continue;
    }
    out.push(long);
  }
  return out;
}
