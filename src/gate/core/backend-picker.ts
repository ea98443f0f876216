// Which backend of a request's plan takes its next attempt. The first attempt takes the first
// backend that can take it now (or, of its model, one whose server reports a shorter queue of its
// own), unless a backend of its model is half-open and wants its probe; a retry steers away from
// what just failed (see pickBackend).
import type { BackendConfig } from "../../config/schema";
import type { CircuitBreaker } from "./breaker";
import type { PlanEntry } from "./plan";

/** What the picker reads of the gate's state. */
export interface BackendView {
  backend(id: string): BackendConfig | undefined;
  breaker(id: string): CircuitBreaker | undefined;
  inFlight(id: string): number;
  /** Attempts it may hold now: its maxConcurrency, or the limit learned below it (adaptive-limit.ts). */
  capacity(id: string): number;
  /** Until when the backend asked to be left alone (its Retry-After), if it did. */
  notBefore(id: string): number | undefined;
  /** Requests the backend's server lately said are queued inside it (its /metrics); 0 without a reading. */
  waiting(id: string, now: number): number;
}

/** What a retry steers away from. */
export interface RetryAvoid {
  /** Region of the backend that just failed. */
  region?: string;
  /** Backends that already failed for this request. */
  failed: readonly string[];
}

export type Pick =
  /** `byLoad`: a first attempt's pick passed over a backend of its model whose server reports a longer queue (or is full because it queues). */
  | { ok: true; cursor: number; delayMs: number; byLoad?: true }
  | { ok: false; reason: "breaker"; retryAfterMs: number }
  | { ok: false; reason: "capacity" | "none" };

/**
 * A backend counts as failing for retries, though its circuit is closed, when its breaker window
 * holds at least this many failures and no more successes, or when this many of its attempts in a
 * row failed: the start of an outage, while the window still holds the successes before it.
 */
export const FAILING_MIN_FAILURES = 3;

/**
 * The next backend of the plan from `from` on (cyclically) that can take an attempt now; for a first
 * attempt, when its server reports requests waiting inside it, a later one of the same model whose
 * server reports fewer (a server whose queue grows loses traffic before it starts failing). A retry
 * (`retry` given) prefers, in turn: a backend in another region than the one that just failed; one
 * in the same region; one that failed for this request, is failing (see failingMostly; its breaker
 * not yet open), or is on probation (half-open: a probe should be a fresh request, not one that
 * already failed). Last comes a backend that asked to be left alone for a while (Retry-After), with
 * the wait.
 */
export function pickBackend(
  view: BackendView,
  plan: readonly PlanEntry[],
  from: number,
  mustResume: boolean,
  now: number,
  retry?: RetryAvoid,
): Pick {
  let deferred: { cursor: number; delayMs: number } | undefined;
  /** A first attempt's pick when no half-open backend of the requested model wants its probe. */
  let first: number | undefined;
  /** Requests queued inside the server of `first`, as it reported them. */
  let firstWaiting = 0;
  let byLoad = false;
  const waitingAt = (id: string) => view.waiting(id, now);
  let sameRegion: number | undefined;
  let lastResort: number | undefined;
  let breakerWaitMs: number | undefined;
  let capacityBlocked = false;
  for (let k = 0; k < plan.length; k++) {
    const cursor = (from + k) % plan.length;
    const backend = view.backend(plan[cursor]!.backendId);
    const breaker = backend && view.breaker(backend.id);
    if (!backend || !breaker || (mustResume && !backend.resume)) continue;
    if (!breaker.allows(now)) {
      const wait = breaker.retryAfterMs(now);
      breakerWaitMs = breakerWaitMs === undefined ? wait : Math.min(breakerWaitMs, wait);
      continue;
    }
    if (view.inFlight(backend.id) >= view.capacity(backend.id)) {
      capacityBlocked = true;
      // Full because its server queues (reported-capacity.ts): a first attempt passes it over by load.
      if (!retry && first === undefined && waitingAt(backend.id) > 0) byLoad = true;
      continue;
    }
    const waitMs = (view.notBefore(backend.id) ?? 0) - now;
    if (waitMs > 0) {
      if (!deferred || waitMs < deferred.delayMs) deferred = { cursor, delayMs: waitMs };
    } else if (!retry) {
      // A backend on probation gets its probe from a fresh request of its own model: otherwise one
      // behind a healthy backend of its region would never be tried again, nor its alert resolved.
      if (breaker.stateAt(now) === "half-open" && plan[cursor]!.alias === plan[from % plan.length]!.alias)
        return { ok: true, cursor, delayMs: 0 };
      // A server that queues requests of its own loses them to another of the same model that queues fewer.
      if (first === undefined) {
        first = cursor;
        firstWaiting = waitingAt(backend.id);
      } else if (firstWaiting > 0 && plan[cursor]!.alias === plan[first]!.alias && waitingAt(backend.id) < firstWaiting) {
        first = cursor;
        firstWaiting = waitingAt(backend.id);
        byLoad = true;
      }
    } else if (retry.failed.includes(backend.id) || breaker.stateAt(now) === "half-open" || failingMostly(breaker, now))
      lastResort ??= cursor;
    else if (backend.region === retry.region) sameRegion ??= cursor;
    else return { ok: true, cursor, delayMs: 0 };
  }
  if (first !== undefined) {
    const passed = byLoad && plan[first]!.alias === plan[from % plan.length]!.alias;
    return { ok: true, cursor: first, delayMs: 0, ...(passed ? { byLoad: true as const } : {}) };
  }
  const fallback = sameRegion ?? lastResort;
  if (fallback !== undefined) return { ok: true, cursor: fallback, delayMs: 0 };
  if (deferred) return { ok: true, ...deferred };
  if (capacityBlocked) return { ok: false, reason: "capacity" };
  if (breakerWaitMs !== undefined) return { ok: false, reason: "breaker", retryAfterMs: breakerWaitMs };
  return { ok: false, reason: "none" };
}

/** When every breaker of the plan is open: ms until the first lets a probe through. */
export function breakersOpenFor(view: BackendView, plan: readonly PlanEntry[], now: number): number | undefined {
  let retryAfterMs = Number.POSITIVE_INFINITY;
  for (const e of plan) {
    const breaker = view.breaker(e.backendId);
    if (!breaker || breaker.allows(now)) return undefined;
    retryAfterMs = Math.min(retryAfterMs, breaker.retryAfterMs(now));
  }
  return retryAfterMs;
}

/** Closed, but its last attempts or most of its recent ones failed (see FAILING_MIN_FAILURES). */
function failingMostly(breaker: CircuitBreaker, now: number): boolean {
  if (breaker.failureStreak >= FAILING_MIN_FAILURES) return true;
  const { successes, failures } = breaker.counts(now);
  return failures >= FAILING_MIN_FAILURES && failures >= successes;
}
