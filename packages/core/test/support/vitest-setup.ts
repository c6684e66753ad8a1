/**
 * vitest `setupFiles` entry for every project whose tests start processes (see processes.ts):
 * each test runs in its own scope, and whatever it started and did not stop is stopped after it —
 * also when it failed or timed out (vitest runs afterEach hooks then, but not the rest of the
 * test's body, so cleanup at the end of a test body is not enough). What the file's hooks started
 * is stopped after the file's own afterAll hooks.
 *
 * Hooks registered here run after the test file's own (vitest's default `sequence.hooks: "stack"`
 * runs after-hooks innermost first, and last-registered first at one level), so a file's graceful
 * stop gets its chance before this one finds leftovers.
 */
import { afterAll, afterEach, beforeEach } from "vitest";
import { DEFAULT_GRACE_MS, enterTestScope, fileScope, leaveTestScope, type Scope } from "./processes.js";

// Must outlast the grace period (SIGTERM, wait, SIGKILL, wait for the reap) even on a loaded machine.
const CLEANUP_TIMEOUT_MS = DEFAULT_GRACE_MS + 25_000;

function report(when: string, left: string[]): void {
  if (left.length > 0)
    console.warn(`stopped ${left.length} process group(s) left running ${when}: ${left.join("; ")}`);
}

const scopes = new WeakMap<object, Scope>();

beforeEach((ctx) => {
  scopes.set(ctx.task, enterTestScope(`test "${ctx.task.name}"`));
}, CLEANUP_TIMEOUT_MS);

afterEach(async (ctx) => {
  const scope = scopes.get(ctx.task);
  if (scope !== undefined) report(`by test "${ctx.task.name}"`, await leaveTestScope(scope));
}, CLEANUP_TIMEOUT_MS);

afterAll(async () => {
  report("by the test file's hooks", await fileScope.close());
}, CLEANUP_TIMEOUT_MS);
