/**
 * The AWS KMS seal's health check: an encrypt+decrypt round trip through the seal (2 KMS calls),
 * run in the background every `healthCheckIntervalMs` (every `healthCheckUnhealthyIntervalMs`
 * while unhealthy), its last result kept for `health()`.
 */
import { constantTimeEqual } from "@bulwark/crypto";
import { SealError, type SealHealth } from "@bulwark/seal";
import type { ResolvedAwsKmsSealOptions } from "./options.js";

/** KMS calls one health check makes (one Encrypt for the data key, one Decrypt). */
export const KMS_CALLS_PER_HEALTH_CHECK = 2;

/** KMS calls per day per node that periodic health checks cost at `intervalMs` (0 = off). */
export function healthCheckCallsPerDay(intervalMs: number): number {
  return intervalMs <= 0 ? 0 : Math.round((86_400_000 / intervalMs) * KMS_CALLS_PER_HEALTH_CHECK);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

export interface HealthState {
  healthy: boolean;
  checkedAt: number;
  lastHealthyAt: number | undefined;
  message: string | undefined;
  roundTripMs: number | undefined;
}

/** What the health check needs of the seal. */
export interface HealthTarget {
  /** Encrypts `data` and decrypts the blob, through the seal's public methods. */
  roundTrip(data: Uint8Array): Promise<Uint8Array>;
  /** Whether the seal is initialised (not yet finalized). */
  initialized(): boolean;
  keyId(): string;
  region(): string | undefined;
}

type HealthOptions = Pick<
  ResolvedAwsKmsSealOptions,
  "endpoint" | "healthCheckIntervalMs" | "healthCheckUnhealthyIntervalMs" | "healthCheckTimeoutMs" | "logger"
>;

const HEARTBEAT = new TextEncoder();

export class HealthMonitor {
  readonly #opts: HealthOptions;
  readonly #target: HealthTarget;
  #state: HealthState | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<SealHealth> | undefined;
  #stopped = false;

  constructor(opts: HealthOptions, target: HealthTarget) {
    this.#opts = opts;
    this.#target = target;
  }

  /** The last result; `undefined` before the first. */
  get state(): HealthState | undefined {
    return this.#state;
  }

  /** Runs a check now; a check already running is shared, not doubled. */
  run(): Promise<SealHealth> {
    // One check at a time: a health() call during the periodic check shares it.
    if (this.#checking !== undefined) return this.#checking;
    const run = this.#check().finally(() => {
      this.#checking = undefined;
    });
    this.#checking = run;
    return run;
  }

  async #check(): Promise<SealHealth> {
    const started = performance.now();
    const heartbeat = HEARTBEAT.encode(`Heartbeat ${Math.floor(Math.random() * 1000)}`);
    let timer: NodeJS.Timeout | undefined;
    let state: HealthState;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SealError(
                "unavailable",
                `health check took longer than ${this.#opts.healthCheckTimeoutMs} ms`,
              ),
            ),
          this.#opts.healthCheckTimeoutMs,
        );
      });
      const roundTrip = this.#target.roundTrip(heartbeat);
      roundTrip.catch(() => undefined);
      const back = await Promise.race([roundTrip, timeout]);
      if (!sameBytes(back, heartbeat))
        throw new SealError("provider_failed", "the heartbeat round trip returned a different value");
      state = this.record(true, undefined, performance.now() - started);
    } catch (err) {
      // finalize() started during the check: KMS did not fail, the seal is closing.
      if (!this.#target.initialized() && this.#state !== undefined) return this.report(this.#state);
      state = this.record(
        false,
        err instanceof Error ? err.message : String(err),
        performance.now() - started,
      );
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    return this.report(state);
  }

  /** Records a check's result (logging a change between healthy and not) and returns it. */
  record(healthy: boolean, message: string | undefined, roundTripMs: number): HealthState {
    const now = Date.now();
    const before = this.#state;
    const state: HealthState = {
      healthy,
      checkedAt: now,
      lastHealthyAt: healthy ? now : before?.lastHealthyAt,
      message,
      roundTripMs: Math.round(roundTripMs * 100) / 100,
    };
    this.#state = state;
    const log = this.#opts.logger;
    if (!healthy && (before === undefined || before.healthy)) {
      log?.warn("AWS KMS seal health check failed; the seal may be unreachable", {
        keyId: this.#target.keyId(),
        error: message,
      });
    } else if (healthy && before !== undefined && !before.healthy) {
      log?.info("AWS KMS seal is healthy again", {
        keyId: this.#target.keyId(),
        unhealthyForMs: now - before.checkedAt,
      });
    }
    return state;
  }

  report(state: HealthState): SealHealth {
    const interval = this.#opts.healthCheckIntervalMs;
    const current = state.healthy ? interval : this.#opts.healthCheckUnhealthyIntervalMs;
    const details: Record<string, unknown> = {
      region: this.#target.region(),
      endpoint: this.#opts.endpoint,
      lastCheckAt: new Date(state.checkedAt).toISOString(),
      lastHealthyAt:
        state.lastHealthyAt === undefined ? undefined : new Date(state.lastHealthyAt).toISOString(),
      unreachableMs:
        state.healthy || state.lastHealthyAt === undefined ? 0 : Date.now() - state.lastHealthyAt,
      roundTripMs: state.roundTripMs,
      checkIntervalMs: interval === 0 ? 0 : current,
      kmsCallsPerCheck: KMS_CALLS_PER_HEALTH_CHECK,
      kmsCallsPerDay: interval === 0 ? 0 : healthCheckCallsPerDay(current),
    };
    return {
      healthy: state.healthy,
      keyId: this.#target.keyId(),
      message: state.healthy
        ? "KMS encrypt/decrypt round trip succeeded"
        : `KMS health check failed: ${state.message ?? "unknown error"}`,
      details,
    };
  }

  /** Allows periodic checks again (init); {@link schedule} starts them. */
  resume(): void {
    this.#stopped = false;
  }

  /** Schedules the next periodic check, unless checks are off or stopped. */
  schedule(): void {
    const opts = this.#opts;
    if (this.#stopped || opts.healthCheckIntervalMs === 0) return;
    const delay =
      this.#state?.healthy === false ? opts.healthCheckUnhealthyIntervalMs : opts.healthCheckIntervalMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // The check records its result before it logs; a logger that throws must not stop the
      // checks or surface as an unhandled rejection.
      this.run()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, delay);
    // A seal must not keep the process alive on its own.
    this.#timer.unref();
  }

  /** Stops periodic checks and waits for one in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#checking?.catch(() => undefined);
  }
}
