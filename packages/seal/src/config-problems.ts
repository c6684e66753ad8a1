/**
 * The kit every seal provider uses to report all problems of a config block at once: the
 * throwing parsers throw the first (the error they always threw), the check functions return
 * every one as an issue. Settings read through `@bulwark/settings` throw its `SettingsError`;
 * this is the seal providers' boundary where it becomes a {@link SealConfigError} (same field,
 * same fix).
 */
import { convertSettingsErrors, SettingsError } from "@bulwark/settings";
import { SealConfigError } from "./errors.js";

/** One problem of a seal block: the setting to fix and what to do (without the error's prefix). */
export interface SealConfigIssue {
  field: string;
  message: string;
}

/** A {@link SealConfigError} as an issue: its field and its message without the common prefix. */
export function sealConfigIssue(err: SealConfigError): SealConfigIssue {
  const prefix = `invalid seal configuration \`${err.field}\`: `;
  return {
    field: err.field,
    message: err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message,
  };
}

/** A settings kernel error as the seal providers' configuration error (the kernel's error as cause). */
export function toSealConfigError(err: SettingsError): SealConfigError {
  return new SealConfigError(err.field, err.detail, { cause: err });
}

/** Runs `fn` (which reads settings with `@bulwark/settings`), throwing SealConfigErrors only. */
export function sealSetting<T>(fn: () => T): T {
  return convertSettingsErrors(fn, toSealConfigError);
}

/**
 * Collects configuration problems instead of stopping at the first, so a block with several
 * mistakes is reported whole; the throwing functions throw the first one, which is the error
 * they always threw.
 */
export class SealConfigProblems {
  readonly list: SealConfigError[] = [];
  /** Runs `fn`; a SealConfigError (or SettingsError) it throws is recorded and `undefined` returned. */
  run<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (err instanceof SealConfigError) {
        this.list.push(err);
        return undefined;
      }
      if (err instanceof SettingsError) {
        this.list.push(toSealConfigError(err));
        return undefined;
      }
      throw err;
    }
  }
  add(field: string, message: string): void {
    this.list.push(new SealConfigError(field, message));
  }
  /** Whether one of `fields` already has a problem (then what depends on it is not reported too). */
  has(...fields: string[]): boolean {
    return this.list.some((e) => fields.includes(e.field));
  }
  throwFirst(): void {
    const first = this.list[0];
    if (first !== undefined) throw first;
  }
}
