// Circuit breaker for one backend. Explicit states:
//   closed    -> open       when the failure rate over the window reaches `failureRate` with at
//                           least `minRequests` outcomes, or after `consecutiveFailures` in a row
//   open      -> half-open  when the cooldown has passed (cooldown doubles per re-open, capped)
//   half-open -> closed     when a probe succeeds;  half-open -> open when a probe fails
//   (failures of attempts started before the trip are stragglers and change nothing)
// Attempts still running that have not told how they went (`Unheard`: their first token is not
// reported; see Attempts.judge) count as successes when a failure weighs the trip: a backend that
// fails a few requests fast while it streams to many others is not down.
// Time is passed in (`now`), never read, so the machine is deterministic under test.
import { SlidingWindowCounter, type WindowSnapshot } from "./window";

export type BreakerState = "closed" | "open" | "half-open";

export interface BreakerOptions {
  failureRate: number;
  minRequests: number;
  windowMs: number;
  cooldownMs: number;
  maxCooldownMs: number;
  consecutiveFailures: number;
  halfOpenProbes: number;
}

export interface BreakerSnapshot {
  state: BreakerState;
  openedAt: number;
  /** Opens since the breaker last closed; sets the cooldown. */
  reopenCount: number;
  consecutiveFailures: number;
  /** When the first failed attempt of the current run of failures started (absent in older rows). */
  streakSince?: number;
  window: WindowSnapshot;
}

/**
 * What a failure's breaker has not heard: attempts on the backend that do not tell their first
 * token and have run at least as long as the failed one (started by `startedAt`). Had they told,
 * they would count as successes by now.
 */
export interface Unheard {
  /** When the failed attempt started. */
  startedAt: number;
  /** Of those attempts, the ones that may have answered at `since` or later (all of them for -Infinity). */
  since(since: number): number;
}

const SUCCESS = 0;
const FAILURE = 1;

export class CircuitBreaker {
  private state: BreakerState = "closed";
  private openedAt = 0;
  private reopenCount = 0;
  private consecutive = 0;
  private streakSince = Number.NEGATIVE_INFINITY;
  private probesInFlight = 0;
  private readonly window: SlidingWindowCounter;

  constructor(private readonly opts: BreakerOptions) {
    this.window = new SlidingWindowCounter(opts.windowMs, 2);
  }

  /** The state at `now`: an open breaker whose cooldown has passed reads as half-open. */
  stateAt(now: number): BreakerState {
    // Probes still in flight from an earlier half-open spell keep their places: a hung one ends
    // (its timeout, or its lease's reclaim) before another may take it.
    if (this.state === "open" && now >= this.openedAt + this.cooldownMs()) this.state = "half-open";
    return this.state;
  }

  /** Whether a new attempt may go to the backend now. */
  allows(now: number): boolean {
    const s = this.stateAt(now);
    return s === "closed" || (s === "half-open" && this.probesInFlight < this.opts.halfOpenProbes);
  }

  /**
   * Records that an attempt starts. Returns whether it is a half-open probe (its outcome decides
   * the state). Call only after `allows` said yes.
   */
  onAttempt(now: number): { probe: boolean } {
    if (this.stateAt(now) === "half-open") {
      this.probesInFlight++;
      return { probe: true };
    }
    return { probe: false };
  }

  onSuccess(now: number, probe = false): void {
    if (probe) this.probesInFlight = Math.max(0, this.probesInFlight - 1);
    this.consecutive = 0;
    if (this.stateAt(now) === "half-open") {
      this.state = "closed";
      this.reopenCount = 0;
      this.window.reset();
    }
    this.window.add(now, SUCCESS);
  }

  /**
   * An attempt failed. The attempts its breaker has not heard from (`unheard`) count as successes:
   * all of them in the failure rate; and a run of failures does not trip while one runs that may
   * have answered since the run began, as its first token would have broken the run (a long
   * stream from before the run, which answered before it began, does not hold it).
   */
  onFailure(now: number, probe = false, unheard?: Unheard): void {
    if (probe) this.probesInFlight = Math.max(0, this.probesInFlight - 1);
    if (this.consecutive++ === 0) this.streakSince = unheard?.startedAt ?? now;
    const s = this.stateAt(now);
    // Only a probe speaks for a half-open backend. A failure of an attempt started before the
    // trip is a straggler with no new information: reopening on it would double the cooldown
    // and forget the probe still in flight (a run of them kept whole regions' circuits open).
    if (s === "half-open") {
      if (probe) this.open(now);
      return;
    }
    if (s === "open") return;
    this.window.add(now, FAILURE);
    const [ok = 0, failed = 0] = this.window.totals(now);
    const total = ok + failed;
    // Asked only when it decides (it scans the gate's leases).
    const unheardSince = (since: number) => unheard?.since(since) ?? 0;
    const streak = this.consecutive >= this.opts.consecutiveFailures && unheardSince(this.streakSince) === 0;
    if (streak || (total >= this.opts.minRequests && failed / (total + unheardSince(Number.NEGATIVE_INFINITY)) >= this.opts.failureRate)) {
      this.open(now);
    }
  }

  /** An attempt that ended without a verdict on the backend (client left): frees its probe. */
  onAbandon(probe: boolean): void {
    if (probe) this.probesInFlight = Math.max(0, this.probesInFlight - 1);
  }

  /** Milliseconds until the breaker lets a probe through; 0 when it already does. */
  retryAfterMs(now: number): number {
    if (this.stateAt(now) !== "open") return 0;
    return Math.max(0, this.openedAt + this.cooldownMs() - now);
  }

  cooldownMs(): number {
    return Math.min(this.opts.maxCooldownMs, this.opts.cooldownMs * 2 ** Math.max(0, this.reopenCount - 1));
  }

  /** When the breaker last opened (0: never). */
  get lastOpenedAt(): number {
    return this.openedAt;
  }

  /** Failures since the last success. */
  get failureStreak(): number {
    return this.consecutive;
  }

  counts(now: number): { successes: number; failures: number } {
    const [successes = 0, failures = 0] = this.window.totals(now);
    return { successes, failures };
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.state,
      openedAt: this.openedAt,
      reopenCount: this.reopenCount,
      consecutiveFailures: this.consecutive,
      ...(this.consecutive > 0 ? { streakSince: this.streakSince } : {}),
      window: this.window.snapshot(),
    };
  }

  static restore(opts: BreakerOptions, snap: BreakerSnapshot): CircuitBreaker {
    const b = new CircuitBreaker(opts);
    // Probes in flight died with the old instance; half-open starts again with none.
    b.state = snap.state;
    b.openedAt = snap.openedAt;
    b.reopenCount = snap.reopenCount;
    b.consecutive = snap.consecutiveFailures;
    b.streakSince = snap.streakSince ?? Number.NEGATIVE_INFINITY;
    b.window.restore(snap.window);
    return b;
  }

  private open(now: number): void {
    this.state = "open";
    this.openedAt = now;
    this.reopenCount++;
    this.consecutive = 0;
  }
}
