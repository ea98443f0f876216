// The gate's waiting room: requests queued for a slot and the twins waiting behind them (same key,
// one generation for both), and how each gets its verdict. A verdict other than a slot gives the
// request's rate-limit, key and budget charges back; a queued request's twins share its fate.
import type { TenantConfig } from "../../config/schema";
import type { DrainRate } from "./drain-rate";
import type { GateMetrics } from "./metrics";
import type { JournalPort } from "./ports";
import type { AdmitRequest, AdmitResult } from "./protocol";
import { rejections } from "./rejections";
import type { TenantPolicies } from "./tenant-policies";
import type { Ticket, TicketBook, TwinGroup, Waiter } from "./tickets";
import type { SpendDesk } from "./spend-desk";

export class WaitingRoom {
  constructor(
    private readonly tickets: TicketBook,
    private readonly metrics: GateMetrics,
    private readonly drain: DrainRate,
    private readonly policies: TenantPolicies,
    private readonly journal: JournalPort,
    private readonly spend: SpendDesk,
  ) {}

  /** Puts the request in the queue, or turns it away (full; a lower priority may be displaced). */
  enqueue(waiter: Waiter, config: TenantConfig, now: number): AdmitResult {
    const full = (shedForMs?: number) => {
      this.metrics.count("rejectedQueueFull");
      this.refund(waiter, now);
      return rejections.queueFull(config.limits.maxQueue, this.drain.retryAfterSeconds(now, this.tickets.queue.size), shedForMs);
    };
    // A full queue stays full for a moment: Workers may repeat this verdict themselves meanwhile.
    const shedForMs = config.limits.shedHintMs;
    if (config.limits.maxQueue === 0) return full(shedForMs);
    const ticket = this.tickets.ticket(waiter, now + config.limits.maxQueueWaitMs, now);
    const offered = this.tickets.enqueue(ticket);
    if (!offered.accepted) return full(shedForMs);
    this.metrics.count("queued");
    if (offered.displaced) {
      this.metrics.count("rejectedQueueFull");
      this.answer(offered.displaced.value, rejections.displaced(this.drain.retryAfterSeconds(now, this.tickets.queue.size)), now);
    }
    return { kind: "queued", ticket: waiter.request.requestId };
  }

  /** A request whose key's first request is queued takes no place in the queue and shares its fate. */
  waitBehind(group: TwinGroup, request: AdmitRequest, config: TenantConfig, now: number): AdmitResult {
    if (group.ticket.request.record!.bodyHash !== request.record!.bodyHash) return rejections.keyReused();
    const waiter: Waiter = { request, plan: group.ticket.plan, degradations: group.ticket.degradations, enqueuedAt: now };
    this.tickets.addTwin(group, this.tickets.ticket(waiter, now + config.limits.maxQueueWaitMs, now));
    this.metrics.count("queuedTwins");
    return { kind: "queued", ticket: request.requestId };
  }

  /** Gives a queued request its verdict, and its twins theirs (see releaseTwins). */
  answer(ticket: Ticket, result: AdmitResult, now: number): void {
    if (result.kind !== "lease") this.refund(ticket, now);
    this.releaseTwins(ticket, result, now);
    this.tickets.give(ticket, result);
  }

  /** The queued request with journal key `key` is cancelled: it and its twins are refused. Says whether there was one. */
  cancel(key: string, now: number): boolean {
    const group = this.tickets.group(key);
    if (!group) return false;
    this.tickets.queue.remove(group.ticket.request.requestId);
    this.answer(group.ticket, rejections.cancelled(), now);
    return true;
  }

  /** Queued requests nobody polls any more leave the queue; a twin of one takes its place. */
  dropStale(now: number): void {
    for (const ticket of this.tickets.takeStale(now)) {
      this.metrics.count("abandonedInQueue");
      this.refund(ticket, now);
      this.releaseTwins(ticket, undefined, now);
    }
  }

  /** A request charged to the rate limit (and its key's limits and budgets) got no slot after all: it gives its charges back. */
  refund(waiter: Waiter, now: number): void {
    if (waiter.rateTokens !== undefined) this.policies.rateLimit?.refund(waiter.rateTokens, now);
    waiter.rateTokens = undefined;
    this.spend.refund(waiter.request.requestId, now);
  }

  /**
   * A queued request left the queue with `result` (undefined: dropped, nobody polled it): its twins
   * join its generation if it got a slot, get its verdict if it was turned away, and are admitted
   * anew ("unknown") if it was dropped, so one of them takes its place.
   */
  private releaseTwins(ticket: Ticket, result: AdmitResult | undefined, now: number): void {
    const twins = this.tickets.releaseGroup(ticket);
    if (twins.length === 0) return;
    const entry = result?.kind === "lease" ? this.journal.get(ticket.request.record!.key, now) : undefined;
    const verdict: AdmitResult = entry ? { kind: "join", entry } : result?.kind === "reject" ? result : { kind: "unknown" };
    for (const twin of twins) this.answer(twin, verdict, now);
  }
}
