// A request's attempts on its lease: starting one on a backend (its slot, a breaker probe), recording
// how one ended (breaker, Retry-After, counters), and deciding whether there is a next one.
import type { AttemptGrant, AttemptReport, HedgeKept, HedgeResult, RetryNeeds, RetryResult } from "./protocol";
import { backoffDelayMs } from "./backoff";
import { pickBackend } from "./backend-picker";
import type { LeaseTable, Lease } from "./leases";
import type { GateMetrics } from "./metrics";
import { exhausted, leaseEnded } from "./rejections";
import { backendTarget } from "./lease-recovery";
import type { TenantPolicies } from "./tenant-policies";
import { pickHedge } from "./hedging";
import { type RouteReason, routeReason } from "./route-reason";
import type { SpendDesk } from "./spend-desk";
import { SILENT_FIRST_TOKEN_MS } from "./lease-timing";

/** How long a retry waits before asking again when every eligible backend is full. */
export const CAPACITY_POLL_MS = 50;

/** How long before a moment a silent attempt may have started and still answer after it (see record). */
const UNHEARD_WINDOW_MS = SILENT_FIRST_TOKEN_MS * 1.5;

export class Attempts {
  constructor(
    private readonly policies: TenantPolicies,
    private readonly leases: LeaseTable,
    private readonly metrics: GateMetrics,
    private readonly random: () => number,
    /** Hears every attempt's report, once: the spend ledger prices it. */
    private readonly spend: Pick<SpendDesk, "attempt">,
  ) {}

  /**
   * Takes a failed attempt's report and answers with the request's next attempt or why there is
   * none: maxAttempts, breakers, backend capacity, the retry budget and backoff decide.
   */
  next(lease: Lease, report: AttemptReport | null, needs: RetryNeeds, now: number): RetryResult {
    const config = this.policies.config;
    if (!config) return exhausted.leaseGone(leaseEnded(false));
    // A race whose end the gate never heard of (the call was lost) ends here: the hedge lost.
    this.dropHedge(lease);
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
    const route = routeReason(config, lease.plan, pick.cursor, null);
    const grant = this.start(lease, pick.cursor, delayMs, needs.deliveredChunks > 0, route, now);
    return { kind: "attempt", grant };
  }

  /** Starts the lease's next attempt on the plan entry at `cursor`: a slot of its backend, maybe a probe. */
  start(lease: Lease, cursor: number, delayMs: number, continuation: boolean, route: RouteReason, now: number): AttemptGrant {
    const entry = lease.plan[cursor]!;
    const backend = this.policies.backend(entry.backendId)!;
    const { probe } = this.policies.breaker(backend.id)!.onAttempt(now);
    lease.cursor = cursor;
    lease.attemptAt = now + delayMs;
    this.leases.occupy(lease, backend.id, probe);
    this.metrics.attemptStarted(backend.id, continuation && backend.resume);
    this.leases.save(lease);
    // Only a resumable backend continues delivered output; any other starts the answer over (a
    // non-streaming one, whose client has seen nothing). Only an answer's first attempts are hedged,
    // and never background work's: nobody waits on its first token.
    const hedged = !continuation && !probe && !lease.background;
    const hedgeAfterMs = hedged ? this.policies.hedging?.delayFor(lease.plan, cursor, now) : undefined;
    const notify = notifiesFirstToken(this.policies, backend.id, probe);
    if (!notify) lease.silent = true;
    return {
      attempt: lease.attempts,
      backend: backendTarget(backend, entry.alias),
      delayMs,
      probe,
      continuation: continuation && backend.resume,
      route,
      ...(hedgeAfterMs !== undefined ? { hedgeAfterMs } : {}),
      ...(notify ? { notifyFirstToken: true as const } : {}),
    };
  }

  /**
   * A hedge of the lease's attempt, whose first token is late (core/hedging.ts): on another backend
   * of its model with a free slot, within the hedge budget, and never while requests wait for slots
   * (`saturated`): a hedge must not take a slot a waiting request would get.
   */
  hedge(lease: Lease, saturated: boolean, now: number): HedgeResult {
    const hedging = this.policies.hedging;
    if (!hedging?.enabled || lease.backendId === null || lease.answered || lease.hedge || lease.background)
      return { kind: "none", reason: "not_waiting" };
    if (saturated) return { kind: "none", reason: "saturated" };
    const cursor = pickHedge(this.policies, lease.plan, lease.cursor, now);
    if (cursor === undefined) return { kind: "none", reason: "no_backend" };
    if (!hedging.trySpend(now)) {
      this.metrics.count("hedgesDenied");
      return { kind: "none", reason: "budget" };
    }
    const entry = lease.plan[cursor]!;
    const backend = this.policies.backend(entry.backendId)!;
    // Its breaker is closed (pickHedge): the hedge is no probe.
    this.metrics.hedgeStarted(lease.backendId, backend.id);
    this.leases.occupyHedge(lease, backend.id, cursor, now);
    this.leases.save(lease);
    const grant = {
      attempt: lease.attempts + 1,
      backend: backendTarget(backend, entry.alias),
      delayMs: 0,
      probe: false,
      continuation: false,
      route: "hedge" as const,
      notifyFirstToken: true as const,
    };
    return { kind: "hedge", grant };
  }

  /**
   * The race between the lease's attempt and its hedge ended: `kept` goes on as the attempt in
   * progress, and `dropped` tells how the other ended (cancelled when it lost, or its failure).
   * `promptTokens` of a cancelled loser count as wasted prefill. A second call is ignored.
   */
  hedgeEnded(lease: Lease, kept: HedgeKept, dropped: AttemptReport, now: number): void {
    const hedge = lease.hedge;
    if (!hedge) return;
    if (dropped.outcome === "cancelled") this.metrics.count("hedgeWastedPromptTokens", lease.promptTokens ?? 0);
    if (kept === "hedge") {
      this.judge(lease, dropped, lease.probe, now);
      this.leases.endHedge(lease, true);
      this.metrics.count("hedgesWon");
    } else {
      this.judge(lease, dropped, false, now);
      this.leases.endHedge(lease, false);
    }
    this.leases.save(lease);
  }

  /**
   * The attempt in progress ended as `report` says: its breaker, its counters, its slot. Says
   * "slow" for a timeout of a backend that answers, but late: its learned limit was cut, and its
   * breaker left alone.
   */
  record(lease: Lease, report: AttemptReport, now: number): "slow" | undefined {
    // An attempt that answered without telling (AttemptGrant.notifyFirstToken) is heard of now,
    // before its end: its breaker sees the success, then a failure after it, as if it had told.
    if (report.ttftMs !== undefined && report.backendId === lease.backendId && !lease.answered) this.firstToken(lease, now, report.ttftMs);
    const slow = this.judge(lease, report, lease.probe, now);
    this.leases.vacate(lease);
    return slow;
  }

  /** What `report` means for its backend's breaker, Retry-After and counters (see record); `probe`: the attempt was its breaker's probe. */
  private judge(lease: Lease, report: AttemptReport, probe: boolean, now: number): "slow" | undefined {
    const breaker = this.policies.breaker(report.backendId);
    const before = breaker?.stateAt(now);
    const timedOut = report.errorCode === "connect_timeout" || report.errorCode === "first_token_timeout";
    const slow = report.outcome === "failure" && timedOut && this.policies.learned(report.backendId)?.timedOut(now) === "slow";
    if (report.outcome === "failure") {
      if (!lease.failed?.includes(report.backendId)) (lease.failed ??= []).push(report.backendId);
      // A slow backend's breaker does not count the timeout (adaptive-limit.ts): it answers, late.
      if (slow) {
        breaker?.onAbandon(probe);
        this.metrics.count("slowTimeouts");
      } else {
        // A silent attempt answers within SILENT_FIRST_TOKEN_MS of its start or tells: one that
        // may have answered at `from` started at most that long before (and a margin for the
        // Worker's clock and the calls' latency).
        const startedAt = now - report.durationMs;
        const since = (from: number) => this.leases.unheard(report.backendId, from - UNHEARD_WINDOW_MS, startedAt, lease);
        breaker?.onFailure(now, probe, { startedAt, since });
      }
      if (report.retryAfterMs !== undefined) this.policies.holdOff(report.backendId, report.retryAfterMs, now);
    } else if (report.outcome === "cancelled") {
      breaker?.onAbandon(probe);
    } else if (!lease.answered) {
      // A 4xx for a bad request still shows the backend is up. A stream that answered was
      // counted at its first token.
      breaker?.onSuccess(now, probe);
    }
    lease.tokens = (lease.tokens ?? 0) + report.chunks;
    this.metrics.attemptEnded(report, report.chunks, now);
    this.spend.attempt(lease, report, now);
    if (breaker) this.policies.saveBreaker(report.backendId, before, now);
    return slow ? "slow" : undefined;
  }

  /**
   * The attempt in progress produced its first token: its breaker hears of the success now, not
   * when the stream ends. Failures arrive fast and successes slowly, and waiting for the end would
   * let a burst of early failures open a healthy backend's circuit. A half-open probe closes it here
   * too. Returns whether the breaker was not closed before (waiters may now get that backend).
   */
  firstToken(lease: Lease, now: number, ttftMs?: number): boolean {
    const backendId = lease.backendId;
    const breaker = backendId ? this.policies.breaker(backendId) : undefined;
    if (!backendId || !breaker || lease.answered) return false;
    const alias = lease.plan[lease.cursor]?.alias;
    if (alias !== undefined) this.policies.hedging?.firstToken(alias, ttftMs ?? now - (lease.attemptAt ?? lease.grantedAt), now);
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

  /** Ends a hedge still racing without a report (the lease ended, or its race's end was never told): abandoned. */
  dropHedge(lease: Lease): void {
    if (!lease.hedge) return;
    this.policies.breaker(lease.hedge.backendId)?.onAbandon(false);
    this.metrics.attemptAbandoned(lease.hedge.backendId);
    this.leases.endHedge(lease, false);
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

/**
 * Whether an attempt on the backend tells its first token when it comes (AttemptGrant.notifyFirstToken):
 * only where something must hear it at once. The rest save the call; their reports tell it.
 */
function notifiesFirstToken(policies: TenantPolicies, backendId: string, probe: boolean): boolean {
  return probe || policies.hedging?.enabled === true || policies.backend(backendId)?.adaptiveConcurrency === true;
}
