// The tenant gate's policy: admission, the queue, leases and their attempts, backend choice, retry
// accounting, breakers and rate limits. Synchronous and clock-free: every entry point takes the
// time, and ids, randomness, storage, the alarm and timers come through the host (ports.ts). The
// TenantGate Durable Object (../tenant-gate.ts) wires it to the platform.
import type { TenantConfig } from "../../config/schema";
import { Attempts } from "./attempts";
import { breakersOpenFor } from "./backend-picker";
import type { BreakerSnapshot } from "./breaker";
import { DrainRate } from "./drain-rate";
import type { EntrySnapshot } from "./journal-entry";
import { LeaseTable } from "./leases";
import { GateMetrics, type SavedMetrics } from "./metrics";
import { GateAlerts } from "./gate-alerts";
import type { SavedAlerts } from "./alert-tracker";
import { buildRoutePlan } from "./plan";
import type { GateHost } from "./ports";
import type {
  AdmitRequest,
  AdmitResult,
  AttemptReport,
  Checkpoint,
  CheckpointAck,
  HedgeKept,
  HedgeResult,
  LeaseCheck,
  LeaseClaim,
  LeaseEnded,
  RetryNeeds,
  RecordSpec,
  RequestCost,
  RetryResult,
  SettleOutcome,
} from "./protocol";
import { exhausted, leaseEnded, leaseLost, rejections } from "./rejections";
import { adoptedLease, EndedLeases, regrant } from "./lease-recovery";
import { replayDecision } from "./replay-decision";
import { buildStats, type GateStats } from "./stats";
import { TenantPolicies } from "./tenant-policies";
import { TicketBook, type Waiter } from "./tickets";
import { WaitingRoom } from "./waiting-room";
import { SlotDesk } from "./slot-desk";
import { LeaseEnds } from "./lease-ends";
import type { SyncReply, SyncReport } from "../../pool/core/credit-ledger";
import { SpendDesk } from "./spend-desk";
import type { BudgetSpent } from "./spend-budget";

export class GateCore {
  readonly policies: TenantPolicies;
  readonly leases: LeaseTable;
  readonly tickets: TicketBook;
  readonly metrics: GateMetrics;
  readonly alerts: GateAlerts;
  readonly spend: SpendDesk;
  private readonly attempts: Attempts;
  private readonly drain = new DrainRate();
  private readonly waiting: WaitingRoom;
  private readonly slots: SlotDesk;
  private readonly ends: LeaseEnds;
  /** Leases settled lately: never claimed back (see EndedLeases). */
  private readonly ended = new EndedLeases();
  /** The tenant was deleted (see endForDeletion) and no config has been installed since. */
  private deleted = false;

  constructor(
    private readonly host: GateHost,
    saved?: SavedMetrics,
    savedAlerts?: SavedAlerts,
    savedBudgets?: Iterable<readonly [string, BudgetSpent]>,
  ) {
    this.leases = new LeaseTable(host);
    this.policies = new TenantPolicies(
      host,
      (id) => this.leases.inFlight(id),
      () => this.alerts.breakerOpened(),
    );
    this.tickets = new TicketBook(host, () => this.policies.config?.limits.maxQueue ?? 0);
    const changed = () => {
      host.metricsChanged();
      this.alerts.noteActivity();
    };
    this.metrics = saved ? GateMetrics.restore(saved, changed) : new GateMetrics(changed);
    this.spend = new SpendDesk(this.policies, this.metrics, host, savedBudgets);
    const sources = { policies: this.policies, metrics: this.metrics, queue: this.tickets.queue, spend: this.spend };
    this.alerts = new GateAlerts(sources, (now) => host.alertsWanted(now), savedAlerts);
    this.attempts = new Attempts(this.policies, this.leases, this.metrics, () => host.random(), this.spend);
    this.waiting = new WaitingRoom(this.tickets, this.metrics, this.drain, this.policies, host.journal, this.spend);
    const { policies, leases, tickets, metrics, attempts, waiting } = this;
    this.slots = new SlotDesk({ host, policies, leases, tickets, metrics, attempts, waiting });
    const { spend, slots, drain, ended } = this;
    this.ends = new LeaseEnds({ host, policies, leases, metrics, attempts, waiting, spend, slots, drain, ended });
  }

  get config(): TenantConfig | null {
    return this.policies.config;
  }

  /** Installs a (re)loaded config, shard `shard`'s share of it; `stored`: breakers from storage. */
  loadConfig(config: TenantConfig | null, shard: number, stored: ReadonlyMap<string, BreakerSnapshot>, now: number): void {
    this.policies.install(config, shard, stored, now);
    if (config) this.deleted = false;
  }

  /** A config the admin API just wrote: installed, and waiters it lets in get their slots. */
  applyConfig(config: TenantConfig | null, shard: number, stored: ReadonlyMap<string, BreakerSnapshot>, now: number): void {
    this.loadConfig(config, shard, stored, now);
    this.slots.handOut(now);
  }

  /** The tenant is being deleted: queued requests and twins get `tenant_deleted` now (then see markDeleted). */
  endForDeletion(): void {
    for (const ticket of this.tickets.takeAll()) this.tickets.give(ticket, rejections.tenantDeleted());
  }

  /** A fresh core after a deletion: requests and leases it does not know get `tenant_deleted`. */
  markDeleted(): void {
    this.deleted = true;
  }

  // ---- admission -------------------------------------------------------------------------------

  /** A lease, a replay, a join or a rejection; or "queued": the caller holds the call open (see tickets.ts). */
  admit(request: AdmitRequest, now: number): AdmitResult {
    // A resent admission (its reply was lost) gets what the first one got, its place in the queue or
    // its lease, and counts nothing again.
    if (this.tickets.has(request.requestId)) return this.tickets.listen(request.requestId, now);
    const held = this.leases.ofRequest(request.requestId);
    const again = held && regrant(held, this.policies, this.host.journal, now);
    if (again) return again;
    if (request.shedByWorker) {
      this.metrics.count("rejectedQueueFull", request.shedByWorker);
      this.metrics.count("shedByWorker", request.shedByWorker);
    }
    const config = this.policies.config;
    if (!config) return this.deleted ? rejections.tenantDeleted() : rejections.tenantNotFound();
    const budgetRoute = this.spend.softRoute(request, now);
    const plan = buildRoutePlan(config, { ...request, budgetRoute, inFlight: (id) => this.leases.inFlight(id) });
    if (!plan.ok) return { kind: "reject", status: plan.status, code: plan.code, message: plan.message };

    // A stored answer, a key reused with another body and a live twin are decided before any
    // backend's availability: a replay calls no backend.
    let resumeFrom: EntrySnapshot | undefined;
    const record = request.record;
    if (record) {
      const entry = this.host.journal.get(record.key, now);
      const resumable = plan.entries.some((e) => this.policies.backend(e.backendId)?.resume === true);
      const decision = entry && replayDecision(entry, record, { live: this.isLive(entry), resumable });
      if (decision && decision.kind !== "takeover") return decision;
      // The key's first request is still queued: this one waits for it rather than starting a
      // second generation. (An admission retried with the same request id goes the usual way.)
      const group = record.shared ? this.tickets.group(record.key) : undefined;
      if (group) return this.waiting.waitBehind(group, request, config, now);
      if (decision?.kind === "takeover") resumeFrom = decision.entry;
      // A stored-only answer (stale-if-error) is kept until it expires, and a run already
      // recording one is left alone: this request then records nothing.
      if (entry && !record.shared && (entry.state === "complete" || this.isLive(entry))) request = { ...request, record: undefined };
    }
    const closedFor = breakersOpenFor(this.policies, plan.entries, now);
    if (closedFor !== undefined) return this.slots.noBackend(closedFor);

    // Only a request that will call a backend counts: replays, joins and twins above cost none.
    const rateTokens = request.promptTokens + (request.maxTokens ?? 0);
    const rate = this.policies.rateLimit?.admit(rateTokens, now);
    if (rate && !rate.ok) {
      this.metrics.count("rejectedRateLimited");
      return rejections.rateLimited(rate);
    }
    const refused = this.spend.admit(request, plan.entries, now);
    if (refused) {
      if (rate) this.policies.rateLimit?.refund(rateTokens, now);
      return refused;
    }
    this.policies.budget!.recordRequest(now);
    this.policies.hedging!.requestAdmitted(now);
    const waiter: Waiter = {
      request,
      plan: plan.entries,
      degradations: plan.degradations,
      enqueuedAt: now,
      resumeFrom,
      rateTokens: rate ? rateTokens : undefined,
    };
    // Waiters of a lower priority (held back by their backends, or background work by its limit) are not passed over.
    if (this.tickets.queue.sizeAtOrAbove(request.priority) === 0 && this.slots.hasSlotFor(request, config)) {
      const granted = this.slots.grant(waiter, now);
      if (granted) return granted;
    }
    const queued = this.waiting.enqueue(waiter, config, now);
    this.slots.askPoolsIfShort(config);
    return queued;
  }

  /** A queued request asks again: its verdict, "queued" (the caller holds the call open), or "unknown". */
  poll(ticketId: string, now: number): AdmitResult {
    return this.tickets.listen(ticketId, now);
  }

  /** The open call for a queued request ended without a verdict. */
  pollEnded(ticketId: string, now: number): void {
    this.tickets.stopListening(ticketId, now);
  }

  /**
   * Queued requests whose wait ran out get their 504, and those nobody polls any more are dropped;
   * the host is asked to wake the core again for the next one.
   */
  wake(now: number): void {
    for (const ticket of this.tickets.takeDue(now)) {
      this.metrics.count("rejectedQueueTimeout");
      this.waiting.answer(ticket, rejections.queueTimeout(ticket.deadline - ticket.enqueuedAt), now);
    }
    this.waiting.dropStale(now);
    this.tickets.forgetUnclaimed(now);
    const next = this.tickets.nextWake();
    if (next !== undefined) this.host.wakeAt(next);
  }

  /** A pool answered this gate's report, or could not be reached (see SlotDesk.poolAnswered). */
  poolAnswered(pool: string, report: SyncReport, reply: SyncReply | null, sentAt: number, now: number): boolean {
    return this.slots.poolAnswered(pool, report, reply, sentAt, now);
  }

  // ---- attempts --------------------------------------------------------------------------------

  /** A failed attempt's report: the request's next attempt, or why there is none (see Attempts.next). */
  retry(leaseId: string, report: AttemptReport | null, needs: RetryNeeds, now: number): RetryResult {
    const lease = this.leases.get(leaseId);
    if (!lease) return exhausted.leaseGone(this.endedWhy(leaseId, now));
    // Resent after its reply was lost: the attempt that call started, not another one.
    const started =
      needs.attempt !== undefined && lease.attempts > needs.attempt ? regrant(lease, this.policies, this.host.journal, now) : undefined;
    if (started?.kind === "lease")
      return { kind: "attempt", grant: { ...started.grant, continuation: needs.deliveredChunks > 0 && started.grant.backend.resume } };
    const next = this.attempts.next(lease, report, needs, now);
    // A slot of a backend, or a breaker's state, may have changed for waiters in the queue.
    if (next.kind !== "wait") this.slots.handOut(now);
    return next;
  }

  /**
   * A live request the gate does not know (it restarted before writing the lease, or reclaimed it)
   * claims its lease: adopted and counted again, whatever the limits, as its backend is answering.
   * Refused for a deleted tenant, one with no config, a lease settled lately (the claim crossed its
   * settle), and a journaled request whose entry another request took over after a reclaim.
   */
  adopt(claim: LeaseClaim, now: number): LeaseCheck {
    if (this.leases.get(claim.leaseId)) return { held: true };
    if (this.deleted) return this.gone(claim.leaseId, now);
    if (this.ended.has(claim.leaseId, now)) return { held: false, ended: this.ended.why(claim.leaseId, now) ?? leaseLost() };
    if (!this.policies.config) return { held: false, ended: leaseLost() };
    // A journaled request's work is its entry's: one reclaimed and taken over (or ended) by another
    // request is not taken back, or the answer would be generated twice.
    const key = claim.admit.record?.key;
    if (key !== undefined && this.host.journal.get(key, now)?.leaseId !== claim.leaseId) return { held: false, ended: leaseLost() };
    const lease = adoptedLease(claim, this.policies, (id) => this.leases.inFlight(id), now);
    this.leases.add(lease);
    if (claim.backendId !== null) {
      this.leases.occupy(lease, claim.backendId, false);
      lease.attempts = claim.attempts;
    }
    this.leases.save(lease);
    this.metrics.count("adopted");
    return { held: true };
  }

  /** Keeps a lease alive while the Worker relays; when it is gone (reclaimed, tenant deleted), says why. */
  renew(leaseId: string, now: number): LeaseCheck {
    const lease = this.leases.get(leaseId);
    if (!lease) return this.gone(leaseId, now);
    this.leases.extend(lease, now);
    return { held: true };
  }

  /** The current attempt produced its first token `ttftMs` after it started (see Attempts.firstToken); says whether the lease is still held. */
  firstToken(leaseId: string, now: number, ttftMs?: number): LeaseCheck {
    const lease = this.leases.get(leaseId);
    if (!lease) return this.gone(leaseId, now);
    if (this.attempts.firstToken(lease, now, ttftMs)) this.slots.handOut(now);
    return { held: true };
  }

  /** The attempt's first token is late: a hedge on another backend, or why not (see Attempts.hedge). */
  hedge(leaseId: string, now: number): HedgeResult {
    const lease = this.leases.get(leaseId);
    return lease ? this.attempts.hedge(lease, this.tickets.queue.size > 0, now) : { kind: "none", reason: "not_waiting" };
  }

  /** A hedge race ended (see Attempts.hedgeEnded): the loser's slot goes to the next waiter. */
  hedgeEnded(leaseId: string, kept: HedgeKept, dropped: AttemptReport, now: number): void {
    const lease = this.leases.get(leaseId);
    if (!lease) return;
    this.attempts.hedgeEnded(lease, kept, dropped, now);
    this.slots.handOut(now);
  }

  /** Commits relayed chunks to the request's journal entry and renews its lease. */
  checkpoint(leaseId: string, progress: Checkpoint, now: number): CheckpointAck {
    const config = this.policies.config;
    const check = this.renew(leaseId, now);
    if (!check.held) return { ...check, recorded: null };
    const key = this.leases.get(leaseId)!.recordKey;
    if (key === undefined || !config) return { held: true, recorded: null };
    return { held: true, recorded: this.host.journal.append(key, leaseId, progress, config.idempotency, now) };
  }

  /** Ends a request (see LeaseEnds.settle); null when it already ended. */
  settle(
    leaseId: string,
    report: AttemptReport | null,
    outcome: SettleOutcome,
    progress: Checkpoint | undefined,
    now: number,
    failureStatus?: number,
  ): RequestCost | null {
    return this.ends.settle(leaseId, report, outcome, progress, now, failureStatus);
  }

  /** Reclaims leases whose Worker went silent past their deadline (see LeaseEnds.reclaimExpired). */
  reclaimExpired(now: number): void {
    this.ends.reclaimExpired(now);
  }

  /** Stops the request queued or running under `record`'s journal key (see LeaseEnds.cancel). */
  cancel(record: Pick<RecordSpec, "key" | "kind" | "bodyHash">, now: number): boolean {
    return this.ends.cancel(record, now);
  }

  /** A running entry whose lease is still held: its generation is going on right now. */
  isLive(entry: EntrySnapshot): boolean {
    return entry.state === "running" && entry.leaseId !== null && this.leases.get(entry.leaseId) !== undefined;
  }

  stats(tenant: string | null, journal: GateStats["journal"], now: number, options: { histograms?: boolean } = {}): GateStats {
    const sources = { tenant, journal, policies: this.policies, metrics: this.metrics, queue: this.tickets.queue, alerts: this.alerts };
    const inFlight = { inFlight: this.leases.size, backgroundInFlight: this.leases.background };
    return buildStats({ ...sources, ...inFlight, drainPerSecond: this.drain.perSecond(now) }, now, options);
  }

  // ---- internals -------------------------------------------------------------------------------

  private gone(leaseId: string, now: number): LeaseCheck {
    return { held: false, ended: this.endedWhy(leaseId, now) };
  }

  /** Why a lease the gate does not hold is gone: the gate ended it (a cancel), the tenant was deleted, or it is unknown. */
  private endedWhy(leaseId: string, now: number): LeaseEnded {
    return this.ended.why(leaseId, now) ?? leaseEnded(this.deleted);
  }
}
