import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import type { HclPosition } from "@bulwark/hcl";

/** One problem in a config file: where it is and what to do about it. */
export interface ConfigProblem {
  filename?: string;
  line?: number;
  column?: number;
  /** The block the problem is in, as messages name it (`storage "file"`), when it is in one. */
  block?: string;
  /** The setting to fix (`path`), when one is to blame. */
  setting?: string;
  /** The full text: what is wrong and how to fix it (it already names the block and setting). */
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  if (p.filename === undefined) return p.message;
  if (p.line === undefined) return `${p.filename}: ${p.message}`;
  return `${p.filename}:${p.line}:${p.column ?? 1}: ${p.message}`;
}

/** Stable codes of the server's configuration errors (domain "config"). */
export const CONFIG_ERROR_CODES = ["invalid_config"] as const;

export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];

/**
 * The configuration cannot be used. `problems` lists every issue found (not only the first), each
 * with its file, line and column when it comes from a file; the message joins them.
 */
export class ConfigError extends CodedError<ConfigErrorCode> {
  static override readonly kind: string = "@bulwark/server:ConfigError";
  override name = "ConfigError";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], options?: CodedErrorOptions) {
    const lines = problems.map(formatProblem);
    const only = lines.length === 1 ? lines[0] : undefined;
    super(
      "config",
      "invalid_config",
      only ?? `${lines.length} config problems:\n  ${lines.join("\n  ")}`,
      options,
    );
    this.problems = problems;
  }

  static at(
    filename: string,
    pos: Pick<HclPosition, "line" | "column"> | undefined,
    message: string,
    cause?: unknown,
  ): ConfigError {
    const problem: ConfigProblem = { filename, message };
    if (pos !== undefined) {
      problem.line = pos.line;
      problem.column = pos.column;
    }
    return new ConfigError([problem], cause === undefined ? undefined : { cause });
  }
}
