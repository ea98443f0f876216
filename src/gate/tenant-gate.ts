// TenantGate: one Durable Object per tenant. It owns the tenant's bookkeeping: concurrency slots,
// the bounded priority queue, leases, circuit breakers, the retry budget and per-backend load.
// It never touches token bytes; the Worker streams those. Every call here is short and
// synchronous apart from waiting in the queue, so one object serves many requests per second.
import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import type { BackendConfig, TenantConfig } from "../config/schema";
import { readTenantConfig } from "../config/store";
import { buildRoutePlan, type PlanEntry } from "../dispatch/plan";
import { backoffDelayMs } from "../dispatch/backoff";
import { BoundedPriorityQueue, PRIORITIES } from "./queue";
import { CircuitBreaker, type BreakerOptions, type BreakerSnapshot } from "./breaker";
import { RetryBudget } from "./budget";
import { TenantRateLimit, type RateVerdict } from "./rate-limit";
import { DrainRate } from "./drain-rate";
import { GateMetrics, METRICS_SAVE_MS, type SavedMetrics } from "./metrics";
import { LEASE_TTL_MS } from "./lease";
import { shardConfig } from "./shards";
import { LeaseRows } from "./lease-rows";
import { ReplayJournal, type EntrySnapshot, type EntryState } from "./journal";
import type {
  AdmitRequest,
  AdmitResult,
  AttemptGrant,
  AttemptReport,
  Checkpoint,
  FollowResult,
  Rejection,
  RetryNeeds,
  RetryResult,
  SettleOutcome,
} from "./protocol";


/** The longest a backend's Retry-After keeps it out of plans. */
const MAX_RETRY_AFTER_MS = 60_000;
/** How long a retry waits before asking again when every eligible backend is full. */
const CAPACITY_POLL_MS = 50;

interface Lease {
  id: string;
  requestId: string;
  plan: PlanEntry[];
  /** Attempts granted so far. */
  attempts: number;
  /** Of those, attempts that delivered text before they failed (see retry). */
  progressed?: number;
  /** Plan index of the current attempt. */
  cursor: number;
  backendId: string | null;
  probe: boolean;
  grantedAt: number;
  deadline: number;
  /** Journal key the request records its chunks under, if any. */
  recordKey?: string;
  /** The current attempt produced a first token (its breaker already counted the success). */
  answered?: boolean;
  /** Backends that failed an attempt of this request: its retries try them last. */
  failed?: string[];
  /** Completion tokens the attempts reported so far. */
  tokens?: number;
  /** Tokens charged to the tenant's rate limit at admission, and the prompt's share of them (settled at the end). */
  rateTokens?: number;
  promptTokens?: number;
}

/** What a retry steers away from (see pickBackend). */
interface RetryAvoid {
  /** Region of the backend that just failed. */
  region?: string;
  /** Backends that already failed for this request. */
  failed: string[];
}

/**
 * A backend counts as failing for retries, though its circuit is closed, when its breaker window
 * holds at least this many failures and no more successes, or when this many of its attempts in a
 * row failed: the start of an outage, while the window still holds the successes before it.
 */
const FAILING_MIN_FAILURES = 3;

interface Waiter {
  request: AdmitRequest;
  plan: PlanEntry[];
  degradations: string[];
  /** Entry to carry on from (a takeover after the previous run stopped mid-way). */
  resumeFrom?: EntrySnapshot;
  enqueuedAt: number;
  /** Tokens charged to the tenant's rate limit (an estimate), when it has one; refunded if the request gets no slot. */
  rateTokens?: number;
}

/**
 * A queued request's ticket. The Worker holds an admit or poll call open for at most POLL_MS at a
 * time, so a gate that restarts (losing its in-memory queue) is noticed within one poll, and a
 * Worker that stops polling (client gone, Worker dead) is dropped from the queue.
 */
interface Ticket extends Waiter {
  /** The verdict, once there is one and nobody was waiting to take it. */
  result?: AdmitResult;
  /** The open admit/poll call, if any. */
  deliver?: (result: AdmitResult) => void;
  pollTimer?: ReturnType<typeof setTimeout>;
  lastPolledAt: number;
  queueTimer: ReturnType<typeof setTimeout>;
}

/** Longest an admit or poll call stays open while the request waits in the queue. */
export const POLL_MS = 2_000;
/** A queued ticket nobody polled for this long is dropped. */
const STALE_TICKET_MS = 3 * POLL_MS;

type Pick =
  | { ok: true; cursor: number; delayMs: number }
  | { ok: false; reason: "breaker"; retryAfterMs: number }
  | { ok: false; reason: "capacity" | "none" };

export class TenantGate extends DurableObject<Env> {
  private tenant: string | null = null;
  /** Which of the tenant's gates this is (see shards.ts): it enforces that share of the limits. */
  private shard = 0;
  private config: TenantConfig | null = null;
  private backendsById = new Map<string, BackendConfig>();
  private configLoadedAt = 0;
  private alarmAt: number | undefined;
  private readonly leases = new Map<string, Lease>();
  private leaseRows!: LeaseRows<Lease>;
  private readonly backendInFlight = new Map<string, number>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly notBefore = new Map<string, number>();
  private readonly breakerSavedAt = new Map<string, number>();
  private readonly queue = new BoundedPriorityQueue<Ticket>(() => this.config?.limits.maxQueue ?? 0);
  private readonly tickets = new Map<string, Ticket>();
  /** Queued requests with a shared journal key, and the twins (same key) waiting behind each. */
  private readonly queuedByKey = new Map<string, { ticket: Ticket; twins: Ticket[] }>();
  private budget: RetryBudget | null = null;
  /** Null when the tenant sets no rate limit. In memory only: a restarted gate starts with full buckets. */
  private rateLimit: TenantRateLimit | null = null;
  private readonly drain = new DrainRate();
  private metrics = new GateMetrics(() => this.scheduleMetricsSave());
  private metricsSaveTimer: ReturnType<typeof setTimeout> | undefined;
  private journal!: ReplayJournal;
  /** Followers (joined twins) waiting for a journal entry to change, by key. */
  private readonly followers = new Map<string, Set<() => void>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      const sql = ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
      sql.exec(`CREATE TABLE IF NOT EXISTS breakers (backend_id TEXT PRIMARY KEY, data TEXT NOT NULL)`);
      // Followers hear of appended chunks once they are written.
      this.journal = new ReplayJournal(sql, (keys) => keys.forEach((key) => this.wake(key)));
      for (const row of sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'tenant'`)) this.tenant = row.value;
      for (const row of sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'shard'`)) this.shard = Number(row.value);
      for (const row of sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'metrics'`)) {
        this.metrics = GateMetrics.restore(JSON.parse(row.value) as SavedMetrics, () => this.scheduleMetricsSave());
      }
      this.leaseRows = new LeaseRows<Lease>(ctx.storage);
      for (const lease of this.leaseRows.load()) {
        this.leases.set(lease.id, lease);
        if (lease.backendId) this.addInFlight(lease.backendId, 1);
      }
      if (this.tenant) await this.loadConfig(this.tenant);
      this.rescheduleAlarm();
    });
  }

  // ---- RPC: admission -------------------------------------------------------------------------

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    if (request.shedByWorker) {
      this.metrics.count("rejectedQueueFull", request.shedByWorker);
      this.metrics.count("shedByWorker", request.shedByWorker);
    }
    const config = await this.ensureConfig(request.tenant, request.shard ?? 0);
    if (!config) return { kind: "reject", status: 404, code: "tenant_not_found", message: "This tenant has no configuration." };
    const now = Date.now();
    const plan = buildRoutePlan(config, {
      alias: request.alias,
      origin: request.origin,
      promptTokens: request.promptTokens,
      maxTokens: request.maxTokens,
      inFlight: (id) => this.backendInFlight.get(id) ?? 0,
    });
    if (!plan.ok) return { kind: "reject", status: plan.status, code: plan.code, message: plan.message };
    const closedFor = this.breakersOpenFor(plan.entries, now);
    if (closedFor !== undefined) return this.noBackendRejection(closedFor);

    let resumeFrom: EntrySnapshot | undefined;
    if (request.record) {
      const entry = this.journal.get(request.record.key, now);
      const decision = entry && this.journalDecision(entry, request, plan.entries);
      if (decision && decision.kind !== "takeover") return decision;
      // The key's first request is still queued: this one waits for it rather than starting a
      // second generation.
      const queuedTwin = request.record.shared ? this.queuedByKey.get(request.record.key) : undefined;
      // (An admission retried with the same request id goes the usual way: see enqueue.)
      if (queuedTwin && !this.tickets.has(request.requestId)) return this.waitBehindTwin(queuedTwin, request, config, now);
      if (decision?.kind === "takeover") resumeFrom = decision.entry;
      // A stored-only answer (stale-if-error) is kept until it expires, and a run already
      // recording one is left alone: this request then records nothing.
      if (entry && !request.record.shared && (entry.state === "complete" || this.isLive(entry))) request = { ...request, record: undefined };
    }

    // Only a request that will call a backend counts: replays, joins and twins above cost none.
    const rateTokens = request.promptTokens + (request.maxTokens ?? 0);
    const rate = this.rateLimit?.admit(rateTokens, now);
    if (rate && !rate.ok) return this.rateLimited(rate);

    this.budget!.recordRequest(now);
    const waiter: Waiter = { request, plan: plan.entries, degradations: plan.degradations, enqueuedAt: now, resumeFrom, rateTokens: rate ? rateTokens : undefined };
    if (this.queue.size === 0 && this.leases.size < config.limits.maxConcurrency) {
      const granted = this.tryGrant(waiter, now);
      if (granted) return granted;
    }
    return this.enqueue(waiter, config, now);
  }

  /** What an existing journal entry means for a new request with the same key. */
  private journalDecision(entry: EntrySnapshot, request: AdmitRequest, plan: PlanEntry[]): AdmitResult | { kind: "takeover"; entry: EntrySnapshot } | undefined {
    const record = request.record!;
    if (entry.bodyHash !== record.bodyHash) return keyReused();
    if (!record.shared) return undefined;
    if (this.isLive(entry)) return { kind: "join", entry };
    if (entry.state === "complete") {
      if (entry.overflow) return { kind: "reject", status: 409, code: "replay_unavailable", message: "The answer for this key was too large to store; it cannot be replayed." };
      return { kind: "replay", entry };
    }
    if (entry.tokens === 0 && !entry.overflow) return { kind: "takeover", entry: { ...entry, chunks: [] } };
    // Part of the answer exists: carry on by continuation, or hand back what there is.
    const resumable = plan.some((e) => this.backendsById.get(e.backendId)?.resume);
    if (resumable && !entry.overflow) return { kind: "takeover", entry };
    return { kind: "replay", entry };
  }

  private enqueue(waiter: Waiter, config: TenantConfig, now: number): Promise<AdmitResult> | AdmitResult {
    const tooBusy = (message = `The queue for this tenant is full (${config.limits.maxQueue} waiting). Retry later.`, shedForMs?: number): Rejection => ({
      kind: "reject",
      status: 429,
      code: "queue_full",
      message,
      retryAfterSec: this.drain.retryAfterSeconds(now, this.queue.size),
      ...(shedForMs ? { shedForMs } : {}),
    });
    const id = waiter.request.requestId;
    // A full queue stays full for a moment: Workers may repeat this verdict themselves meanwhile.
    const shedForMs = config.limits.shedHintMs;
    if (config.limits.maxQueue === 0 || this.tickets.has(id)) {
      this.metrics.count("rejectedQueueFull");
      this.refundRate(waiter, now);
      return tooBusy(undefined, config.limits.maxQueue === 0 ? shedForMs : undefined);
    }
    const ticket: Ticket = {
      ...waiter,
      lastPolledAt: now,
      queueTimer: setTimeout(() => {
        if (!this.queue.remove(id)) return;
        this.metrics.count("rejectedQueueTimeout");
        this.settleTicket(ticket, queueTimeout(config));
      }, config.limits.maxQueueWaitMs),
    };
    const offered = this.queue.offer({ id, priority: waiter.request.priority, enqueuedAt: now, value: ticket });
    if (!offered.accepted) {
      clearTimeout(ticket.queueTimer);
      this.metrics.count("rejectedQueueFull");
      this.refundRate(waiter, now);
      return tooBusy(undefined, shedForMs);
    }
    this.tickets.set(id, ticket);
    if (waiter.request.record?.shared) this.queuedByKey.set(waiter.request.record.key, { ticket, twins: [] });
    this.metrics.count("queued");
    if (offered.displaced) {
      this.metrics.count("rejectedQueueFull");
      this.settleTicket(offered.displaced.value, tooBusy("The queue is full and this request was displaced by higher-priority traffic. Retry later."));
    }
    return this.await(ticket);
  }

  /**
   * A request whose key's first request is queued: it takes no place in the queue and shares that
   * request's fate (see releaseTwins), within its own queue wait limit.
   */
  private waitBehindTwin(queued: { ticket: Ticket; twins: Ticket[] }, request: AdmitRequest, config: TenantConfig, now: number): Promise<AdmitResult> | AdmitResult {
    if (queued.ticket.request.record!.bodyHash !== request.record!.bodyHash) return keyReused();
    const ticket: Ticket = {
      request,
      plan: queued.ticket.plan,
      degradations: queued.ticket.degradations,
      enqueuedAt: now,
      lastPolledAt: now,
      queueTimer: setTimeout(() => {
        queued.twins.splice(queued.twins.indexOf(ticket), 1);
        this.metrics.count("rejectedQueueTimeout");
        this.settleTicket(ticket, queueTimeout(config));
      }, config.limits.maxQueueWaitMs),
    };
    queued.twins.push(ticket);
    this.tickets.set(request.requestId, ticket);
    this.metrics.count("queuedTwins");
    return this.await(ticket);
  }

  /**
   * A queued request left the queue with `result` (undefined: dropped, nobody polled it): its
   * twins join its generation if it got a slot, get its verdict if it was turned away, and are
   * admitted anew ("unknown") if it was dropped, so one of them takes its place.
   */
  private releaseTwins(ticket: Ticket, result: AdmitResult | undefined): void {
    const key = ticket.request.record?.key;
    const queued = key === undefined ? undefined : this.queuedByKey.get(key);
    if (!queued || queued.ticket !== ticket) return;
    this.queuedByKey.delete(key!);
    const entry = result?.kind === "lease" ? this.journal.get(key!, Date.now()) : undefined;
    const verdict: AdmitResult = entry ? { kind: "join", entry } : result?.kind === "reject" ? result : { kind: "unknown" };
    for (const twin of queued.twins) this.settleTicket(twin, verdict);
  }

  /** Waits up to POLL_MS for the ticket's verdict; answers "queued" to be polled again. */
  private await(ticket: Ticket): Promise<AdmitResult> | AdmitResult {
    ticket.lastPolledAt = Date.now();
    if (ticket.result) {
      this.tickets.delete(ticket.request.requestId);
      return ticket.result;
    }
    return new Promise<AdmitResult>((resolve) => {
      ticket.deliver = resolve;
      ticket.pollTimer = setTimeout(() => {
        ticket.deliver = undefined;
        ticket.lastPolledAt = Date.now();
        resolve({ kind: "queued", ticket: ticket.request.requestId });
      }, POLL_MS);
    });
  }

  /** Gives the ticket its verdict: to the open call if there is one, else kept for the next poll. */
  private settleTicket(ticket: Ticket, result: AdmitResult): void {
    clearTimeout(ticket.queueTimer);
    if (result.kind !== "lease") this.refundRate(ticket, Date.now());
    this.releaseTwins(ticket, result);
    if (ticket.deliver) {
      if (ticket.pollTimer !== undefined) clearTimeout(ticket.pollTimer);
      ticket.deliver(result);
      ticket.deliver = undefined;
      this.tickets.delete(ticket.request.requestId);
    } else {
      ticket.result = result;
    }
  }

  /**
   * RPC: a queued request asks again. "unknown" means the gate restarted (or dropped the ticket):
   * the Worker admits the request anew.
   */
  async poll(ticketId: string): Promise<AdmitResult> {
    const ticket = this.tickets.get(ticketId);
    if (!ticket) return { kind: "unknown" };
    return this.await(ticket);
  }

  /** Grants a lease if a backend of the plan can take an attempt now; undefined otherwise. */
  private tryGrant(waiter: Waiter, now: number): AdmitResult | undefined {
    const config = this.config!;
    const continuing = (waiter.resumeFrom?.tokens ?? 0) > 0;
    const pick = this.pickBackend(waiter.plan, 0, continuing, now);
    if (!pick.ok) return undefined;
    const lease: Lease = {
      id: crypto.randomUUID(),
      requestId: waiter.request.requestId,
      plan: waiter.plan,
      attempts: 0,
      cursor: pick.cursor,
      backendId: null,
      probe: false,
      grantedAt: now,
      deadline: now + LEASE_TTL_MS,
      recordKey: waiter.request.record?.key,
      ...(waiter.rateTokens !== undefined ? { rateTokens: waiter.rateTokens, promptTokens: waiter.request.promptTokens } : {}),
    };
    this.leases.set(lease.id, lease);
    const record = waiter.request.record;
    if (record) this.journal.begin(record.key, record.kind, record.bodyHash, waiter.request.requestId, lease.id, config.idempotency, now);
    const grant = this.startAttempt(lease, pick.cursor, 0, continuing, now);
    this.metrics.count("admitted");
    this.metrics.count("promptTokens", waiter.request.promptTokens);
    const queueMs = now - waiter.enqueuedAt;
    this.metrics.queued(queueMs);
    return { kind: "lease", leaseId: lease.id, queueMs, grant, degradations: waiter.degradations, timeouts: { ...config.timeouts }, resumeFrom: waiter.resumeFrom };
  }

  // ---- RPC: attempts ----------------------------------------------------------------------------

  /**
   * Reports a failed attempt and asks for the next one. The gate applies maxAttempts, the retry
   * budget, breakers, backend capacity and backoff, and answers with the next attempt or why not.
   */
  async retry(leaseId: string, report: AttemptReport | null, needs: RetryNeeds): Promise<RetryResult> {
    const lease = this.leases.get(leaseId);
    const config = this.config;
    if (!lease || !config) return { kind: "exhausted", status: 502, code: "lease_lost", message: "The request's lease expired." };
    const now = Date.now();
    if (report) this.recordAttempt(lease, report, now);
    if (report?.outcome === "failure" && report.chunks > 0) lease.progressed = (lease.progressed ?? 0) + 1;

    // maxAttempts counts the attempts that delivered nothing: a long answer whose streams keep
    // breaking after delivering text carries on, up to twice maxAttempts calls in all.
    const fruitless = lease.attempts - (lease.progressed ?? 0);
    if (fruitless >= config.retry.maxAttempts || lease.attempts >= 2 * config.retry.maxAttempts) {
      return { kind: "exhausted", status: 502, code: "max_attempts", message: `All ${lease.attempts} attempts failed.` };
    }
    // After a backend failure, another region goes first: failures cluster by region (outages,
    // network), so the neighbour of a failed backend is the likeliest to fail next.
    const failedRegion = report?.outcome === "failure" ? this.backendsById.get(report.backendId)?.region : undefined;
    const pick = this.pickBackend(lease.plan, lease.cursor + 1, needs.mustContinue, now, { region: failedRegion, failed: lease.failed ?? [] });
    // Every eligible backend is busy: wait for a slot rather than overload one.
    if (!pick.ok && pick.reason === "capacity") return { kind: "wait", delayMs: CAPACITY_POLL_MS };
    if (!pick.ok) {
      if (pick.reason === "breaker")
        return { kind: "exhausted", status: 503, code: "no_backend_available", message: "Every backend for this model is unavailable (circuit open).", retryAfterSec: Math.max(1, Math.ceil(pick.retryAfterMs / 1000)) };
      this.pump(now);
      const message = needs.mustContinue ? "No backend that can resume the stream is available." : "No backend is available for another attempt.";
      return { kind: "exhausted", status: 502, code: needs.mustContinue ? "no_resumable_backend" : "no_backend_available", message };
    }
    if (!this.budget!.tryRetry(now)) {
      this.metrics.count("budgetDenied");
      return { kind: "exhausted", status: 502, code: "retry_budget_exhausted", message: "The tenant's retry budget is spent; not retrying so an outage does not multiply load." };
    }
    this.metrics.count("retries");
    const backoff = backoffDelayMs(fruitless, config.retry, Math.random(), report?.retryAfterMs);
    const grant = this.startAttempt(lease, pick.cursor, Math.max(backoff, pick.delayMs), needs.deliveredChunks > 0, now);
    this.pump(now);
    return { kind: "attempt", grant };
  }

  /** Keeps a lease alive while the Worker relays; false when it was already reclaimed. */
  async renew(leaseId: string): Promise<boolean> {
    const lease = this.leases.get(leaseId);
    if (!lease) return false;
    lease.deadline = Date.now() + LEASE_TTL_MS;
    this.persistLease(lease);
    return true;
  }

  /**
   * The current attempt produced its first token: the backend answered. Its breaker hears of the
   * success now, not when the stream ends: failures arrive fast (before a first token) and
   * successes slowly (after a whole generation), and waiting for the end would let a burst of
   * early failures open a healthy backend's circuit. A half-open probe closes the circuit here too.
   */
  async firstToken(leaseId: string): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease?.backendId || lease.answered) return;
    const now = Date.now();
    const breaker = this.breakers.get(lease.backendId);
    if (!breaker) return;
    const before = breaker.stateAt(now);
    breaker.onSuccess(now, lease.probe);
    lease.probe = false;
    lease.answered = true;
    this.persistBreaker(lease.backendId, breaker, before, now);
    if (before !== "closed") this.pump(now);
  }

  /** Commits relayed chunks to the request's journal entry (and renews the lease). */
  async checkpoint(leaseId: string, progress: Checkpoint): Promise<boolean> {
    const lease = this.leases.get(leaseId);
    if (!lease) return false;
    const now = Date.now();
    lease.deadline = now + LEASE_TTL_MS;
    this.persistLease(lease);
    // "Recorded" only once the chunks are written: the caller then forgets them.
    if (lease.recordKey && this.config && this.journal.append(lease.recordKey, lease.id, progress.from, progress.chunks, progress.text, progress.tokens, this.config.idempotency, now)) {
      await this.journal.flushed();
    }
    return true;
  }

  /**
   * For a joined twin: the entry's chunks from index `from`, waiting up to `waitMs` for news
   * while the entry is running and has nothing new.
   */
  async follow(key: string, from: number, waitMs: number): Promise<FollowResult> {
    const read = (): FollowResult | undefined => {
      const entry = this.journal.get(key, Date.now());
      if (!entry) return { chunks: [], state: "gone", tokens: 0 };
      const live = this.isLive(entry);
      if (entry.chunks.length > from || !live) {
        return { chunks: entry.chunks.slice(from), state: live ? "running" : entry.state === "running" ? "abandoned" : entry.state, tokens: entry.tokens };
      }
      return undefined;
    };
    const now = read();
    if (now) return now;
    await new Promise<void>((resolve) => {
      const set = this.followers.get(key) ?? new Set();
      this.followers.set(key, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0) this.followers.delete(key);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      set.add(done);
    });
    return read() ?? { chunks: [], state: "running", tokens: 0 };
  }

  /** A stored complete answer for `key`, for stale-if-error; null when there is none. */
  async storedAnswer(key: string): Promise<EntrySnapshot | null> {
    const entry = this.journal.get(key, Date.now());
    return entry && entry.state === "complete" && !entry.overflow ? entry : null;
  }

  /** Ends a request: records the last attempt, frees the slot and lets the next waiter in. */
  async settle(leaseId: string, report: AttemptReport | null, outcome: SettleOutcome, progress?: Checkpoint): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease) return; // already settled or reclaimed: settle is idempotent
    const now = Date.now();
    if (lease.recordKey && this.config) {
      if (progress) this.journal.append(lease.recordKey, lease.id, progress.from, progress.chunks, progress.text, progress.tokens, this.config.idempotency, now);
      const state: EntryState = outcome === "complete" ? "complete" : outcome === "partial" ? "partial" : outcome === "cancelled" ? "abandoned" : "failed";
      this.journal.finish(lease.recordKey, lease.id, state, now);
      this.wake(lease.recordKey);
    }
    if (report) this.recordAttempt(lease, report, now);
    else this.endAttempt(lease);
    // The estimate charged at admission becomes what the attempts generated (a lease reclaimed
    // from a dead Worker keeps the estimate).
    if (lease.rateTokens !== undefined) this.rateLimit?.settle(lease.rateTokens, lease.promptTokens! + (lease.tokens ?? 0), now);
    this.metrics.count(outcome === "complete" ? "completed" : outcome === "stale" ? "servedStale" : outcome);
    this.metrics.finished(now - lease.grantedAt);
    this.releaseLease(lease, now);
  }

  // ---- RPC: administration ----------------------------------------------------------------------

  /** Adopts a config just written by the admin API, without waiting for the KV cache. */
  async applyConfig(tenant: string, config: TenantConfig | null, shard = 0): Promise<void> {
    this.rememberTenant(tenant, shard);
    this.installConfig(config);
    this.pump(Date.now());
  }

  /**
   * The gate's state and counters. A sharded tenant's stats merge those of all its gates, which
   * then also send their histograms (`histograms: true`), as percentiles do not add up.
   */
  async stats(options: { histograms?: boolean } = {}) {
    const now = Date.now();
    const config = this.config;
    return {
      tenant: this.tenant,
      queue: {
        depth: this.queue.size,
        byPriority: Object.fromEntries(PRIORITIES.map((p) => [p, this.queue.sizeOf(p)])),
        oldestWaitMs: this.queue.oldestEnqueuedAt() === undefined ? 0 : now - this.queue.oldestEnqueuedAt()!,
        drainPerSecond: Math.round(this.drain.perSecond(now) * 100) / 100,
      },
      inFlight: this.leases.size,
      limits: config?.limits ?? null,
      counters: { ...this.metrics.counters },
      retryBudget: this.budget?.usage(now) ?? null,
      rateLimit: this.rateLimit?.usage(now) ?? null,
      journal: this.journal.stats(),
      latencyMs: { queue: this.metrics.queueMs.summary(), total: this.metrics.totalMs.summary() },
      backends: (config?.backends ?? []).map((b) => {
        const breaker = this.breakers.get(b.id);
        const c = this.metrics.backendCounters(b.id);
        return {
          id: b.id,
          region: b.region,
          breaker: breaker?.stateAt(now) ?? "closed",
          breakerRetryAfterMs: breaker?.retryAfterMs(now) ?? 0,
          window: breaker?.counts(now) ?? { successes: 0, failures: 0 },
          inFlight: this.backendInFlight.get(b.id) ?? 0,
          maxConcurrency: b.maxConcurrency,
          attempts: c?.attempts ?? 0,
          successes: c?.successes ?? 0,
          failures: c?.failures ?? 0,
          tokens: c?.tokens ?? 0,
          ttftMs: c?.ttft.summary() ?? { count: 0 },
          ...(options.histograms ? { ttftHistogram: c?.ttft.toJSON() ?? [] } : {}),
        };
      }),
      ...(options.histograms ? { histograms: { queue: this.metrics.queueMs.toJSON(), total: this.metrics.totalMs.toJSON() } } : {}),
    };
  }

  /** Reclaims leases whose Worker went silent past their deadline. Idempotent, as alarms repeat. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.alarmAt = undefined;
    for (const lease of [...this.leases.values()]) {
      if (lease.deadline > now) continue;
      this.endAttempt(lease);
      this.metrics.count("abandoned");
      if (lease.recordKey) {
        this.journal.finish(lease.recordKey, lease.id, "abandoned", now);
        this.wake(lease.recordKey);
      }
      this.releaseLease(lease, now);
    }
    this.rescheduleAlarm();
  }

  // ---- internals ----------------------------------------------------------------------------------

  private async ensureConfig(tenant: string, shard: number): Promise<TenantConfig | null> {
    this.rememberTenant(tenant, shard);
    const ttlMs = Number(this.env.CONFIG_CACHE_TTL_SECONDS ?? "5") * 1000;
    if (!this.config || Date.now() - this.configLoadedAt > ttlMs) await this.loadConfig(tenant);
    return this.config;
  }

  private async loadConfig(tenant: string): Promise<void> {
    this.installConfig(await readTenantConfig(this.env, tenant));
  }

  private rememberTenant(tenant: string, shard: number): void {
    if (this.tenant === tenant && this.shard === shard) return;
    this.tenant = tenant;
    this.shard = shard;
    this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('tenant', ?), ('shard', ?)`, tenant, String(shard));
  }

  /** Installs the tenant's config, as this shard's share of it. */
  private installConfig(tenantConfig: TenantConfig | null): void {
    const config = tenantConfig && shardConfig(tenantConfig, this.shard);
    const previous = this.config;
    this.config = config;
    this.configLoadedAt = Date.now();
    this.backendsById = new Map((config?.backends ?? []).map((b) => [b.id, b]));
    if (!config) return;
    if (!this.budget || JSON.stringify(previous?.retry) !== JSON.stringify(config.retry)) {
      this.budget = new RetryBudget({ ratio: config.retry.budgetRatio, minRetries: config.retry.budgetMinRetries, windowMs: config.retry.budgetWindowMs });
    }
    const { requestsPerMinute, tokensPerMinute } = config.limits;
    if (requestsPerMinute !== previous?.limits.requestsPerMinute || tokensPerMinute !== previous?.limits.tokensPerMinute) {
      this.rateLimit = requestsPerMinute || tokensPerMinute ? new TenantRateLimit({ requestsPerMinute, tokensPerMinute }, Date.now()) : null;
    }
    const ids = new Set(config.backends.map((b) => b.id));
    const stored = new Map<string, BreakerSnapshot>();
    for (const row of this.ctx.storage.sql.exec<{ backend_id: string; data: string }>(`SELECT backend_id, data FROM breakers`)) {
      if (ids.has(row.backend_id)) stored.set(row.backend_id, JSON.parse(row.data) as BreakerSnapshot);
      else this.ctx.storage.sql.exec(`DELETE FROM breakers WHERE backend_id = ?`, row.backend_id);
    }
    const opts: BreakerOptions = { ...config.breaker };
    for (const id of ids) {
      const current = this.breakers.get(id)?.snapshot() ?? stored.get(id);
      this.breakers.set(id, current ? CircuitBreaker.restore(opts, current) : new CircuitBreaker(opts));
    }
    for (const id of [...this.breakers.keys()]) if (!ids.has(id)) this.breakers.delete(id);
  }

  /**
   * The next backend of the plan from `from` on (cyclically) that can take an attempt now. A retry
   * (`retry` given) prefers, in turn: a backend in another region than the one that just failed;
   * one in the same region; one that failed for this request, is failing (see failingMostly; its
   * breaker not yet open), or is on probation (half-open: a probe should be a fresh
   * request, not one that already failed). Last comes a backend that asked to be left alone for a
   * while (Retry-After), with the wait.
   */
  private pickBackend(plan: PlanEntry[], from: number, mustResume: boolean, now: number, retry?: RetryAvoid): Pick {
    const backends = this.backendsById;
    let deferred: { cursor: number; delayMs: number } | undefined;
    let sameRegion: number | undefined;
    let lastResort: number | undefined;
    let breakerWaitMs: number | undefined;
    let capacityBlocked = false;
    for (let k = 0; k < plan.length; k++) {
      const cursor = (from + k) % plan.length;
      const entry = plan[cursor]!;
      const backend = backends.get(entry.backendId);
      if (!backend || (mustResume && !backend.resume)) continue;
      const breaker = this.breakers.get(backend.id)!;
      if (!breaker.allows(now)) {
        const wait = breaker.retryAfterMs(now);
        breakerWaitMs = breakerWaitMs === undefined ? wait : Math.min(breakerWaitMs, wait);
        continue;
      }
      if ((this.backendInFlight.get(backend.id) ?? 0) >= backend.maxConcurrency) {
        capacityBlocked = true;
        continue;
      }
      const waitMs = (this.notBefore.get(backend.id) ?? 0) - now;
      if (waitMs > 0) {
        if (!deferred || waitMs < deferred.delayMs) deferred = { cursor, delayMs: waitMs };
      } else if (!retry) return { ok: true, cursor, delayMs: 0 };
      else if (retry.failed.includes(backend.id) || breaker.stateAt(now) === "half-open" || failingMostly(breaker, now)) lastResort ??= cursor;
      else if (backend.region === retry.region) sameRegion ??= cursor;
      else return { ok: true, cursor, delayMs: 0 };
    }
    const fallback = sameRegion ?? lastResort;
    if (fallback !== undefined) return { ok: true, cursor: fallback, delayMs: 0 };
    if (deferred) return { ok: true, ...deferred };
    if (capacityBlocked) return { ok: false, reason: "capacity" };
    if (breakerWaitMs !== undefined) return { ok: false, reason: "breaker", retryAfterMs: breakerWaitMs };
    return { ok: false, reason: "none" };
  }

  private startAttempt(lease: Lease, cursor: number, delayMs: number, continuation: boolean, now: number): AttemptGrant {
    const entry = lease.plan[cursor]!;
    const backend = this.backendsById.get(entry.backendId)!;
    const breaker = this.breakers.get(backend.id)!;
    const { probe } = breaker.onAttempt(now);
    lease.attempts++;
    lease.cursor = cursor;
    lease.backendId = backend.id;
    lease.probe = probe;
    this.addInFlight(backend.id, 1);
    this.metrics.attemptStarted(backend.id, continuation);
    this.persistLease(lease);
    return {
      attempt: lease.attempts,
      backend: { id: backend.id, url: backend.url, model: backend.model, apiKey: backend.apiKey, resume: backend.resume, alias: entry.alias },
      delayMs,
      probe,
      continuation,
    };
  }

  private recordAttempt(lease: Lease, report: AttemptReport, now: number): void {
    const breaker = this.breakers.get(report.backendId);
    const stateBefore = breaker?.stateAt(now);
    if (report.outcome === "failure") {
      breaker?.onFailure(now, lease.probe);
      if (!lease.failed?.includes(report.backendId)) (lease.failed ??= []).push(report.backendId);
      if (report.retryAfterMs !== undefined) this.notBefore.set(report.backendId, now + Math.min(report.retryAfterMs, MAX_RETRY_AFTER_MS));
    } else if (report.outcome === "cancelled") {
      breaker?.onAbandon(lease.probe);
    } else {
      // A 4xx for a bad request still shows the backend is up. A stream that answered was
      // counted at its first token.
      if (!lease.answered) breaker?.onSuccess(now, lease.probe);
    }
    lease.tokens = (lease.tokens ?? 0) + report.chunks;
    this.metrics.attemptEnded(report.backendId, report.outcome, report.ttftMs, report.chunks);
    if (breaker) this.persistBreaker(report.backendId, breaker, stateBefore, now);
    this.endAttempt(lease, false);
  }

  /** Frees the backend slot of the lease's current attempt. */
  private endAttempt(lease: Lease, abandonProbe = true): void {
    if (!lease.backendId) return;
    if (abandonProbe) this.breakers.get(lease.backendId)?.onAbandon(lease.probe);
    this.addInFlight(lease.backendId, -1);
    lease.backendId = null;
    lease.probe = false;
    lease.answered = false;
  }

  private releaseLease(lease: Lease, now: number): void {
    this.leases.delete(lease.id);
    this.leaseRows.remove(lease.id);
    this.drain.record(now);
    this.pump(now);
  }

  /** Hands free slots to waiters, highest priority first; fails waiters no backend can serve. */
  private pump(now: number): void {
    const config = this.config;
    if (!config) return;
    if (this.queue.size === 0) return;
    // Tickets nobody polls any more belong to clients or Workers that are gone.
    for (const entry of this.queue.removeWhere((w) => !w.value.deliver && now - w.value.lastPolledAt > STALE_TICKET_MS)) {
      clearTimeout(entry.value.queueTimer);
      this.tickets.delete(entry.id);
      this.metrics.count("abandonedInQueue");
      this.refundRate(entry.value, now);
      this.releaseTwins(entry.value, undefined);
    }
    for (const entry of this.queue.removeWhere((w) => this.breakersOpenFor(w.value.plan, now) !== undefined)) {
      this.settleTicket(entry.value, this.noBackendRejection(this.breakersOpenFor(entry.value.plan, now)!));
    }
    while (this.leases.size < config.limits.maxConcurrency) {
      const entry = this.queue.takeFirst((w) => this.pickBackend(w.value.plan, 0, (w.value.resumeFrom?.tokens ?? 0) > 0, now).ok);
      if (!entry) break;
      this.settleTicket(entry.value, this.tryGrant(entry.value, now)!);
    }
  }

  /** When every breaker of the plan is open: ms until the first lets a probe through. */
  private breakersOpenFor(plan: PlanEntry[], now: number): number | undefined {
    let retryAfterMs = Number.POSITIVE_INFINITY;
    for (const e of plan) {
      const breaker = this.breakers.get(e.backendId);
      if (!breaker || breaker.allows(now)) return undefined;
      retryAfterMs = Math.min(retryAfterMs, breaker.retryAfterMs(now));
    }
    return retryAfterMs;
  }

  private rateLimited(verdict: Exclude<RateVerdict, { ok: true }>): Rejection {
    this.metrics.count("rejectedRateLimited");
    const what = verdict.limit === "requests" ? "requests" : "tokens (prompt plus max_tokens, estimated)";
    return {
      kind: "reject",
      status: 429,
      code: "rate_limited",
      message: `This tenant's limit of ${what} per minute is reached. Retry later.`,
      retryAfterSec: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)),
    };
  }

  /** A request charged to the rate limit got no slot after all: it gives its charge back. */
  private refundRate(waiter: Waiter, now: number): void {
    if (waiter.rateTokens !== undefined) this.rateLimit?.refund(waiter.rateTokens, now);
    waiter.rateTokens = undefined;
  }

  private noBackendRejection(retryAfterMs: number): Rejection {
    this.metrics.count("rejectedNoBackend");
    return {
      kind: "reject",
      status: 503,
      code: "no_backend_available",
      message: "Every backend for this model is unavailable (circuit open). Retry later.",
      retryAfterSec: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    };
  }

  /**
   * Stores a breaker's snapshot when its state changed, or at most once a second otherwise: the
   * state (and its cooldown) must survive a restart; the window counts may lag a second.
   */
  private persistBreaker(id: string, breaker: CircuitBreaker, stateBefore: string | undefined, now: number): void {
    if (breaker.stateAt(now) === stateBefore && now - (this.breakerSavedAt.get(id) ?? 0) < 1_000) return;
    this.breakerSavedAt.set(id, now);
    this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO breakers (backend_id, data) VALUES (?, ?)`, id, JSON.stringify(breaker.snapshot()));
  }

  /** A running entry whose lease is still held: its generation is going on right now. */
  private isLive(entry: EntrySnapshot): boolean {
    return entry.state === "running" && entry.leaseId !== null && this.leases.has(entry.leaseId);
  }

  private wake(key: string): void {
    for (const done of [...(this.followers.get(key) ?? [])]) done();
  }

  private persistLease(lease: Lease): void {
    // A lease a journal entry points to is stored at once: after a restart, a twin must still
    // see its generation as live rather than start a second one.
    // Renewals of such a lease can wait for the next flush: its row exists.
    this.leaseRows.save(lease, lease.recordKey !== undefined && !this.leaseRows.holds(lease.id));
    // Deadlines only move forward, so an alarm already set earlier still fires in time.
    if (this.alarmAt === undefined || lease.deadline < this.alarmAt) {
      this.alarmAt = lease.deadline;
      void this.ctx.storage.setAlarm(lease.deadline);
    }
  }

  /** Sets the one alarm to the earliest lease deadline (or clears it): after a restart or an alarm. */
  private rescheduleAlarm(): void {
    let earliest: number | undefined;
    for (const l of this.leases.values()) if (earliest === undefined || l.deadline < earliest) earliest = l.deadline;
    this.alarmAt = earliest;
    if (earliest === undefined) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(earliest);
  }

  private addInFlight(backendId: string, delta: number): void {
    this.backendInFlight.set(backendId, Math.max(0, (this.backendInFlight.get(backendId) ?? 0) + delta));
  }

  /** Stores the metrics a moment after a change, once for a burst of changes (see METRICS_SAVE_MS). */
  private scheduleMetricsSave(): void {
    this.metricsSaveTimer ??= setTimeout(() => {
      this.metricsSaveTimer = undefined;
      try {
        this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('metrics', ?)`, JSON.stringify(this.metrics));
      } catch (err) {
        // The next change tries again; say so rather than leave an uncaught exception in a timer.
        console.error(JSON.stringify({ level: "error", tenant: this.tenant, msg: "gate metrics not stored", error: String(err) }));
      }
    }, METRICS_SAVE_MS);
  }
}

function keyReused(): Rejection {
  return { kind: "reject", status: 422, code: "idempotency_key_reused", message: "This Idempotency-Key was used with a different request body." };
}

function queueTimeout(config: TenantConfig): Rejection {
  return { kind: "reject", status: 504, code: "queue_timeout", message: `The request waited ${config.limits.maxQueueWaitMs} ms in the queue without a free slot.` };
}

/** Closed, but its last attempts or most of its recent ones failed (see FAILING_MIN_FAILURES). */
function failingMostly(breaker: CircuitBreaker, now: number): boolean {
  if (breaker.failureStreak >= FAILING_MIN_FAILURES) return true;
  const { successes, failures } = breaker.counts(now);
  return failures >= FAILING_MIN_FAILURES && failures >= successes;
}
