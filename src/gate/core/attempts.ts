// A request's attempts on its lease: starting one on a backend (its slot, a breaker probe), recording
// how one ended (breaker, Retry-After, counters), and deciding whether there is a next one.
import type { AttemptGrant, AttemptReport, RetryNeeds, RetryResult } from "./protocol";
import { backoffDelayMs } from "./backoff";
import { pickBackend } from "./backend-picker";
import type { LeaseTable, Lease } from "./leases";
import type { GateMetrics } from "./metrics";
import { exhausted, leaseEnded } from "./rejections";
import { backendTarget } from "./lease-recovery";
import type { TenantPolicies } from "./tenant-policies";

/** How long a retry waits before asking again when every eligible backend is full. */
export const CAPACITY_POLL_MS = 50;

export class Attempts {
  constructor(
    private readonly policies: TenantPolicies,
    private readonly leases: LeaseTable,
    private readonly metrics: GateMetrics,
    private readonly random: () => number,
  ) {}

  /**
   * Takes a failed attempt's report and answers with the request's next attempt or why there is
   * none: maxAttempts, breakers, backend capacity, the retry budget and backoff decide.
   */
  next(lease: Lease, report: AttemptReport | null, needs: RetryNeeds, now: number): RetryResult {
    const config = this.policies.config;
    if (!config) return exhausted.leaseGone(leaseEnded(false));
    // A slow backend's timeout (adaptive-limit.ts) is retried elsewhere without spending the budget.
    const slow = report ? this.record(lease, report, now) === "slow" : false;
    if (report?.outcome === "failure" && report.chunks > 0) lease.progressed = (lease.progressed ?? 0) + 1;
    if (slow) lease.slowed = (lease.slowed ?? 0) + 1;

    // maxAttempts counts the attempts that delivered nothing and failed: a long answer whose streams
    // keep breaking after delivering text, or a request whose backends are slow, not down, carries
    // on, up to twice maxAttempts calls in all.
    const fruitless = lease.attempts - (lease.progressed ?? 0) - (lease.slowed ?? 0);
    if (fruitless >= config.retry.maxAttempts || lease.attempts >= 2 * config.retry.maxAttempts)
      return exhausted.maxAttempts(lease.attempts);
    // After a backend failure, another region goes first: failures cluster by region (outages,
    // network), so the neighbour of a failed backend is the likeliest to fail next.
    const region = report?.outcome === "failure" ? this.policies.backend(report.backendId)?.region : undefined;
    const pick = pickBackend(this.policies, lease.plan, lease.cursor + 1, needs.mustContinue, now, { region, failed: lease.failed ?? [] });
    // Every eligible backend is busy: wait for a slot rather than overload one.
    if (!pick.ok && pick.reason === "capacity") return { kind: "wait", delayMs: CAPACITY_POLL_MS };
    if (!pick.ok) {
      if (pick.reason === "breaker") return exhausted.breakersOpen(pick.retryAfterMs);
      return exhausted.noBackend(needs.mustContinue);
    }
    if (!slow && !this.policies.budget!.tryRetry(now)) {
      this.metrics.budgetDenied(now);
      return exhausted.budget();
    }
    this.metrics.count("retries");
    const backoff = backoffDelayMs(fruitless, config.retry, this.random(), report?.retryAfterMs);
    // A backend's Retry-After (pick.delayMs, when only held-off backends are left) is capped like
    // any backoff: a request never sleeps longer than maxDelayMs while it holds a slot.
    const delayMs = Math.min(Math.max(backoff, pick.delayMs), config.retry.maxDelayMs);
    const grant = this.start(lease, pick.cursor, delayMs, needs.deliveredChunks > 0, now);
    return { kind: "attempt", grant };
  }

  /** Starts the lease's next attempt on the plan entry at `cursor`: a slot of its backend, maybe a probe. */
  start(lease: Lease, cursor: number, delayMs: number, continuation: boolean, now: number): AttemptGrant {
    const entry = lease.plan[cursor]!;
    const backend = this.policies.backend(entry.backendId)!;
    const { probe } = this.policies.breaker(backend.id)!.onAttempt(now);
    lease.cursor = cursor;
    lease.attemptAt = now + delayMs;
    this.leases.occupy(lease, backend.id, probe);
    this.metrics.attemptStarted(backend.id, continuation && backend.resume);
    this.leases.save(lease);
    // Only a resumable backend continues delivered output; any other starts the answer over (a
    // non-streaming one, whose client has seen nothing).
    return {
      attempt: lease.attempts,
      backend: backendTarget(backend, entry.alias),
      delayMs,
      probe,
      continuation: continuation && backend.resume,
    };
  }

  /**
   * The attempt in progress ended as `report` says: its breaker, its counters, its slot. Says
   * "slow" for a timeout of a backend that answers, but late: its learned limit was cut, and its
   * breaker left alone.
   */
  record(lease: Lease, report: AttemptReport, now: number): "slow" | undefined {
    const breaker = this.policies.breaker(report.backendId);
    const before = breaker?.stateAt(now);
    const timedOut = report.errorCode === "connect_timeout" || report.errorCode === "first_token_timeout";
    const slow = report.outcome === "failure" && timedOut && this.policies.learned(report.backendId)?.timedOut(now) === "slow";
    if (report.outcome === "failure") {
      if (!lease.failed?.includes(report.backendId)) (lease.failed ??= []).push(report.backendId);
      // A slow backend's breaker does not count the timeout (adaptive-limit.ts): it answers, late.
      if (slow) {
        breaker?.onAbandon(lease.probe);
        this.metrics.count("slowTimeouts");
      } else breaker?.onFailure(now, lease.probe);
      if (report.retryAfterMs !== undefined) this.policies.holdOff(report.backendId, report.retryAfterMs, now);
    } else if (report.outcome === "cancelled") {
      breaker?.onAbandon(lease.probe);
    } else if (!lease.answered) {
      // A 4xx for a bad request still shows the backend is up. A stream that answered was
      // counted at its first token.
      breaker?.onSuccess(now, lease.probe);
    }
    lease.tokens = (lease.tokens ?? 0) + report.chunks;
    this.metrics.attemptEnded(report, report.chunks, now);
    if (breaker) this.policies.saveBreaker(report.backendId, before, now);
    this.leases.vacate(lease);
    return slow ? "slow" : undefined;
  }

  /**
   * The attempt in progress produced its first token: its breaker hears of the success now, not
   * when the stream ends. Failures arrive fast and successes slowly, and waiting for the end would
   * let a burst of early failures open a healthy backend's circuit. A half-open probe closes it here
   * too. Returns whether the breaker was not closed before (waiters may now get that backend).
   */
  firstToken(lease: Lease, now: number): boolean {
    const backendId = lease.backendId;
    const breaker = backendId ? this.policies.breaker(backendId) : undefined;
    if (!backendId || !breaker || lease.answered) return false;
    // The learned limit hears how long it took: a limit that grew has a slot for a waiter.
    const learned = this.policies.learned(backendId);
    const limitBefore = learned?.limit;
    learned?.answered(now - (lease.attemptAt ?? lease.grantedAt), this.leases.inFlight(backendId), now);
    const before = breaker.stateAt(now);
    breaker.onSuccess(now, lease.probe);
    lease.probe = false;
    lease.answered = true;
    this.policies.saveBreaker(backendId, before, now);
    return before !== "closed" || (learned !== undefined && learned.limit > limitBefore!);
  }

  /** Ends the current attempt without a report (settled without one, or reclaimed): a probe is abandoned. */
  end(lease: Lease): void {
    if (lease.backendId) {
      this.policies.breaker(lease.backendId)?.onAbandon(lease.probe);
      this.metrics.attemptAbandoned(lease.backendId);
    }
    this.leases.vacate(lease);
  }
}
