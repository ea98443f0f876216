// Where waiters become leases: whether a request has a slot of its tenant's (and, for background
// work, of limits.background), the grant of a lease on the first backend of its plan that can take
// it, and the hand-out of free slots to the queue, highest priority first.
import type { TenantConfig } from "../../config/schema";
import type { Attempts } from "./attempts";
import { breakersOpenFor, pickBackend } from "./backend-picker";
import { type LeaseTable, newLease } from "./leases";
import type { GateMetrics } from "./metrics";
import type { GateHost } from "./ports";
import type { AdmitRequest, AdmitResult } from "./protocol";
import { rejections } from "./rejections";
import { routeReason } from "./route-reason";
import { type TenantPolicies, backgroundLimit } from "./tenant-policies";
import type { TicketBook, Waiter } from "./tickets";
import type { WaitingRoom } from "./waiting-room";
import type { SyncReply, SyncReport } from "../../pool/core/credit-ledger";

/** The parts of the gate core the desk works with. */
export interface DeskParts {
  readonly host: GateHost;
  readonly policies: TenantPolicies;
  readonly leases: LeaseTable;
  readonly tickets: TicketBook;
  readonly metrics: GateMetrics;
  readonly attempts: Attempts;
  readonly waiting: WaitingRoom;
}

export class SlotDesk {
  constructor(private readonly core: DeskParts) {}

  /** A slot of the tenant's; for background work, also one of limits.background (see backgroundLimit). */
  hasSlotFor(request: AdmitRequest, config: TenantConfig): boolean {
    const { leases } = this.core;
    if (leases.size >= config.limits.maxConcurrency) return false;
    return request.priority !== "background" || leases.background < backgroundLimit(config);
  }

  /**
   * Asks the pools for credits when more could start a waiter: one has a slot of its tenant's (see
   * hasSlotFor). A waiter held back by limits.background or maxConcurrency waits as long with more,
   * and asking at every hand-out then synced 40 times a second for nothing while a batch waited for
   * its limit (the pools still hear its demand at each renewal).
   */
  askPoolsIfShort(config: TenantConfig): void {
    const { host, policies, leases, tickets } = this.core;
    if (policies.pools.size === 0 || leases.size >= config.limits.maxConcurrency) return;
    const interactive = tickets.queue.sizeAtOrAbove("low");
    if (interactive > 0 || (tickets.queue.sizeOf("background") > 0 && leases.background < backgroundLimit(config))) host.poolsWanted();
  }

  /** Grants a lease if a backend of the plan can take an attempt now; undefined otherwise. */
  grant(waiter: Waiter, now: number): AdmitResult | undefined {
    const { host, policies, leases, attempts, metrics } = this.core;
    const config = policies.config!;
    const continuing = (waiter.resumeFrom?.tokens ?? 0) > 0;
    const pick = pickBackend(policies, waiter.plan, 0, continuing, now);
    if (!pick.ok) return undefined;
    const { request } = waiter;
    const lease = newLease(host.newId(), waiter, pick.cursor, now);
    leases.add(lease);
    const record = request.record;
    if (record) host.journal.begin(record.key, record.kind, record.bodyHash, request.requestId, lease.id, config.idempotency, now);
    const route = routeReason(config, waiter.plan, pick.cursor, { affinity: request.affinity !== undefined, byLoad: pick.byLoad === true });
    const grant = attempts.start(lease, pick.cursor, 0, continuing, route, now);
    metrics.countFor(request.surface, "admitted");
    metrics.count("promptTokens", request.promptTokens);
    const queueMs = now - waiter.enqueuedAt;
    metrics.queued(queueMs, now);
    return {
      kind: "lease",
      leaseId: lease.id,
      queueMs,
      grant,
      degradations: waiter.degradations,
      timeouts: { ...config.timeouts },
      resumeFrom: waiter.resumeFrom,
    };
  }

  /**
   * Hands free slots to waiters, highest priority first; fails waiters no backend can serve. While
   * some still wait that credits could start (see askPoolsIfShort), the pools are asked for them.
   */
  handOut(now: number): void {
    const { policies, leases, tickets, waiting } = this.core;
    const config = policies.config;
    if (!config || tickets.queue.size === 0) return;
    waiting.dropStale(now);
    const closedFor = (w: Waiter) => breakersOpenFor(policies, w.plan, now);
    for (const entry of tickets.queue.removeWhere((e) => closedFor(e.value) !== undefined)) {
      waiting.answer(entry.value, this.noBackend(closedFor(entry.value)!), now);
    }
    while (leases.size < config.limits.maxConcurrency) {
      const canStart = (w: Waiter) =>
        this.hasSlotFor(w.request, config) && pickBackend(policies, w.plan, 0, (w.resumeFrom?.tokens ?? 0) > 0, now).ok;
      const entry = tickets.queue.takeFirst((e) => canStart(e.value));
      if (!entry) break;
      waiting.answer(entry.value, this.grant(entry.value, now)!, now);
    }
    this.askPoolsIfShort(config);
  }

  /**
   * A pool answered this gate's report (see pool-credits.ts), or could not be reached (`reply` null):
   * its backends' loads are noted, and waiters may start. Says whether the gate is still short of
   * its share with no more credits than before (its next report may wait longer).
   */
  poolAnswered(pool: string, report: SyncReport, reply: SyncReply | null, sentAt: number, now: number): boolean {
    const { credits, pools } = this.core.policies;
    const stalled = reply ? credits.granted(pool, report, reply, sentAt) : false;
    if (!reply)
      credits.unreachable(
        pool,
        report,
        (pools.get(pool) ?? []).map((b) => b.id),
        now,
      );
    for (const [id, load] of Object.entries(reply?.loads ?? {})) this.core.policies.reportLoad(id, load, now - load.ageMs);
    this.handOut(now);
    return stalled;
  }

  /** Every backend of a request's plan is shut (its breaker open) for `retryAfterMs`. */
  noBackend(retryAfterMs: number) {
    this.core.metrics.count("rejectedNoBackend");
    return rejections.noBackend(retryAfterMs);
  }
}
