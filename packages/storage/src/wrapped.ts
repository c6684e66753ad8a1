import type { Backend, HABackend, TransactionalBackend } from "./types.js";

/**
 * What a wrapper around `B` offers statically: a `Backend`, plus `transaction`/`transactionLimits`
 * when `B` is transactional and `lockWith` when `B` is an HA backend. At runtime the wrappers add
 * those members only when the inner backend has them, so `isTransactional`/`isHABackend` stay
 * truthful.
 */
export type Wrapped<B extends Backend> = Backend &
  (B extends TransactionalBackend
    ? Pick<TransactionalBackend, "transaction" | "transactionLimits">
    : unknown) &
  (B extends HABackend ? HABackend : unknown);
