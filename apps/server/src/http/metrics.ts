/**
 * Prometheus metrics for `GET /v1/sys/metrics` (text exposition format 0.0.4): request counts and
 * latency histograms per method, route pattern and status, plus seal/keyring gauges read from the
 * store at scrape time. Route patterns (not raw URLs) keep label cardinality bounded.
 */
import type { SealedStore } from "@bulwark/core";

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface RouteStats {
  /** `method="…",route="…"` */
  labels: string;
  codes: Map<number, number>;
  count: number;
  sum: number;
  buckets: number[];
}

function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export class Metrics {
  /** Keyed by method and route pattern: a bounded set (routes are patterns, not URLs). */
  readonly #routes = new Map<string, RouteStats>();
  readonly #started = Date.now();

  /** Records one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route}`;
    let s = this.#routes.get(key);
    if (s === undefined) {
      s = {
        labels: `method="${label(method)}",route="${label(route)}"`,
        codes: new Map(),
        count: 0,
        sum: 0,
        buckets: BUCKETS_S.map(() => 0),
      };
      this.#routes.set(key, s);
    }
    s.codes.set(status, (s.codes.get(status) ?? 0) + 1);
    s.count++;
    s.sum += seconds;
    for (let i = 0; i < BUCKETS_S.length; i++) {
      if (seconds <= (BUCKETS_S[i] as number)) s.buckets[i] = (s.buckets[i] as number) + 1;
    }
  }

  /** The whole exposition text, gauges read from `store` now. */
  render(store: SealedStore): string {
    const out: string[] = [];
    out.push("# HELP bulwark_http_requests_total HTTP requests handled, by method, route and status code.");
    out.push("# TYPE bulwark_http_requests_total counter");
    for (const s of this.#routes.values()) {
      for (const [code, n] of s.codes)
        out.push(`bulwark_http_requests_total{${s.labels},code="${code}"} ${n}`);
    }
    out.push("# HELP bulwark_http_request_duration_seconds HTTP request latency.");
    out.push("# TYPE bulwark_http_request_duration_seconds histogram");
    for (const s of this.#routes.values()) {
      BUCKETS_S.forEach((le, i) => {
        out.push(`bulwark_http_request_duration_seconds_bucket{${s.labels},le="${le}"} ${s.buckets[i]}`);
      });
      out.push(`bulwark_http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      out.push(`bulwark_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      out.push(`bulwark_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    const st = store.status();
    const gauge = (name: string, help: string, value: number) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    };
    gauge(
      "bulwark_core_initialized",
      "1 when the storage holds an initialized barrier.",
      st.initialized ? 1 : 0,
    );
    gauge(
      "bulwark_core_unsealed",
      "1 when the barrier is unsealed (Vault: vault_core_unsealed).",
      st.sealed ? 0 : 1,
    );
    gauge("bulwark_core_active", "1 when this node is the active node.", st.active ? 1 : 0);
    gauge("bulwark_core_unseal_progress", "Key shares submitted towards the unseal threshold.", st.progress);
    gauge("bulwark_core_migration", "1 while a seal migration is pending.", st.migration ? 1 : 0);
    if (!st.sealed) {
      const ks = store.keyStatus();
      gauge("bulwark_barrier_key_term", "The active barrier key term.", ks.term);
      gauge("bulwark_barrier_key_encryptions", "Encryptions performed with the active term.", ks.encryptions);
    }
    gauge(
      "bulwark_uptime_seconds",
      "Seconds since the HTTP server started.",
      Math.floor((Date.now() - this.#started) / 1000),
    );
    return `${out.join("\n")}\n`;
  }
}
