// How a request's lease ends: settled by its Worker, reclaimed when its Worker went silent, or
// cancelled by its journal key. Each ends its attempt and its journal entry, counts the outcome,
// settles its rate-limit and spend charges, and hands its slot to the next waiter.
import type { Attempts } from "./attempts";
import type { DrainRate } from "./drain-rate";
import { closeEntry, markCancelled } from "./entry-close";
import type { EndedLeases } from "./lease-recovery";
import type { Lease, LeaseTable } from "./leases";
import type { GateMetrics, SurfaceCounter } from "./metrics";
import type { GateHost } from "./ports";
import { type AttemptReport, type Checkpoint, type RecordSpec, type RequestCost, type SettleOutcome, writesDeadLetter } from "./protocol";
import { CANCELLED } from "./rejections";
import type { SlotDesk } from "./slot-desk";
import type { SpendDesk } from "./spend-desk";
import type { TenantPolicies } from "./tenant-policies";
import type { WaitingRoom } from "./waiting-room";

/** The parts of the gate core a lease's end works with. */
export interface EndParts {
  readonly host: GateHost;
  readonly policies: TenantPolicies;
  readonly leases: LeaseTable;
  readonly metrics: GateMetrics;
  readonly attempts: Attempts;
  readonly waiting: WaitingRoom;
  readonly spend: SpendDesk;
  readonly slots: SlotDesk;
  readonly drain: DrainRate;
  /** Leases settled lately: never claimed back (see EndedLeases). */
  readonly ended: EndedLeases;
}

export class LeaseEnds {
  constructor(private readonly core: EndParts) {}

  /**
   * Ends a request: its last attempt, its journal entry and its slot, which goes to the next waiter.
   * `failureStatus`: what the client was told of a failure (see writesDeadLetter).
   */
  settle(
    leaseId: string,
    report: AttemptReport | null,
    outcome: SettleOutcome,
    progress: Checkpoint | undefined,
    now: number,
    failureStatus?: number,
  ): RequestCost | null {
    this.core.ended.note(leaseId, now);
    const lease = this.core.leases.get(leaseId);
    if (!lease) return null; // already settled or reclaimed: settle is idempotent
    const config = this.core.policies.config;
    if (lease.recordKey && config)
      closeEntry(this.core.host.journal, { key: lease.recordKey, leaseId: lease.id }, outcome, progress, config.idempotency, now);
    if (report) this.core.attempts.record(lease, report, now);
    else this.core.attempts.end(lease);
    const counted = outcome === "complete" ? "completed" : outcome === "stale" ? "servedStale" : outcome;
    this.close(lease, counted, now, !lease.background && writesDeadLetter(outcome, failureStatus));
    return lease.spent ?? { usd: 0, tokens: 0, estimated: false };
  }

  /** Reclaims leases whose Worker went silent past their deadline. Idempotent, as alarms repeat. */
  reclaimExpired(now: number): void {
    for (const lease of this.core.leases.expired(now)) {
      this.core.attempts.end(lease);
      this.core.spend.settle(lease, now, true);
      this.core.metrics.countFor(lease.surface, "abandoned");
      if (lease.recordKey) this.core.host.journal.finish(lease.recordKey, lease.id, "abandoned", now);
      this.release(lease, now);
    }
    this.core.leases.rescheduleAlarm();
  }

  /**
   * Stops the request queued or running under `record`'s journal key (a background generation's
   * cancel). A queued one is refused, and its twins with it; a running one loses its lease (its
   * Worker hears why at its next renewal or checkpoint, and stops the backend call) and its entry
   * ends cancelled. With neither (its job not yet admitted), the key gets a cancelled entry. Later
   * requests with the key replay it as cancelled, so nothing runs it again. Says whether a request
   * was stopped.
   */
  cancel(record: Pick<RecordSpec, "key" | "kind" | "bodyHash">, now: number): boolean {
    const queued = this.core.waiting.cancel(record.key, now);
    const lease = this.core.leases.withRecordKey(record.key);
    if (lease) {
      this.core.ended.note(lease.id, now, CANCELLED);
      this.core.attempts.end(lease);
      this.core.host.journal.finish(record.key, lease.id, "cancelled", now);
      this.close(lease, "cancelled", now);
      return true;
    }
    const config = this.core.policies.config;
    if (config) markCancelled(this.core.host.journal, record, this.core.host.newId(), config.idempotency, now);
    return queued;
  }

  /** A lease ends, counted as `outcome`: the rate limit's estimate becomes what it generated, its slot goes to the next waiter. */
  private close(lease: Lease, outcome: SurfaceCounter, now: number, deadLettered = false): void {
    if (lease.rateTokens !== undefined)
      this.core.policies.rateLimit?.settle(lease.rateTokens, lease.promptTokens! + (lease.tokens ?? 0), now);
    this.core.spend.settle(lease, now);
    const served = lease.plan[lease.cursor]?.backendId;
    if (served !== undefined && this.core.policies.backend(served)?.pool !== undefined)
      this.core.policies.credits.served(served, (lease.promptTokens ?? 0) + (lease.tokens ?? 0));
    this.core.metrics.countFor(lease.surface, outcome);
    this.core.metrics.finished(now - lease.grantedAt, lease.attempts, now, deadLettered);
    this.release(lease, now);
  }

  private release(lease: Lease, now: number): void {
    this.core.attempts.dropHedge(lease);
    this.core.leases.remove(lease);
    this.core.drain.record(now);
    this.core.slots.handOut(now);
  }
}
