// TenantGate: one Durable Object per tenant (or per shard of one). A shell around the gate core
// (core/gate-core.ts), which holds every policy decision: this file restores the core from SQLite,
// loads the tenant's config, answers RPC calls by calling the core with the time, writes what the
// core asks to store, runs the alarm and the timers, and holds open the calls of queued requests
// and of followers of a live generation. It never touches token bytes; the Worker streams those.
import { DurableObject } from "cloudflare:workers";
import type { TenantConfig } from "../config/schema";
import { forgetTenantConfig } from "../config/store";
import { GateCore } from "./core/gate-core";
import type { EntrySnapshot } from "./core/journal-entry";
import type { Lease } from "./core/leases";
import { METRICS_SAVE_MS, type SavedMetrics } from "./core/metrics";
import type { GateHost } from "./core/ports";
import type {
  AdmitRequest,
  AdmitResult,
  AttemptReport,
  Checkpoint,
  CheckpointAck,
  FollowResult,
  HedgeKept,
  HedgeResult,
  KeyRef,
  LeaseCheck,
  LeaseClaim,
  RecordSpec,
  RetryNeeds,
  RequestCost,
  RetryResult,
  SettleOutcome,
} from "./core/protocol";
import type { GateStats } from "./core/stats";
import { ReplayJournal } from "./journal";
import { LeaseRows } from "./lease-rows";
import { ALERT_EVALUATE_MS, type AlertMessage } from "./core/gate-alerts";
import type { SavedAlerts } from "./core/alert-tracker";
import { AlertOutbox, AlertRuns } from "./alert-outbox";
import { AlarmClocks } from "./alarm-clocks";
import { OpenCalls } from "./open-calls";
import { LEASE_TTL_MS } from "./core/lease-timing";
import { MAX_TOTAL_MS } from "../config/schema";
import type { PoolGate } from "../pool/pool-gate";
import { PoolSync } from "./pool-sync";
import { Followers, followRead } from "./followers";
import { LoadPoller } from "../pool/load-poller";
import { FlushTimer } from "./flush-timer";
import { WakeTimer } from "./wake-timer";
import { keyedTable } from "./keyed-table";
import { SpendRows } from "./spend-rows";
import type { SpendEntry } from "./core/spend-ledger";
import type { Amount, BudgetStatus } from "./core/spend-budget";
import type { HeldCharge } from "./core/spend-desk";
import { BudgetLink } from "./budget-link";
import { GateTenancy } from "./gate-tenancy";

/** How long a deleted tenant's mark is kept: past the longest a request of it may still run. */
const TOMBSTONE_MS = MAX_TOTAL_MS + LEASE_TTL_MS;

/** The bindings the gate uses (a subset of the Worker's). */
export interface GateEnv {
  CONFIG: KVNamespace;
  CONFIG_CACHE_TTL_SECONDS?: string;
  /** Where alert messages go; the Worker's consumer posts them to webhooks (observe/alerts). */
  ALERTS: Queue<AlertMessage>;
  /** Shared pools: the gate holds credits on their backends (pool-sync.ts). */
  POOL_GATE: DurableObjectNamespace<PoolGate>;
  /** A sharded tenant's other gates: shard 0 holds its budgets (budget-link.ts). */
  TENANT_GATE: DurableObjectNamespace<TenantGate>;
}

export class TenantGate extends DurableObject<GateEnv> {
  private core!: GateCore;
  private journal!: ReplayJournal;
  private leaseRows!: LeaseRows<Lease>;
  private readonly openCalls = new OpenCalls((ticket) => this.core.pollEnded(ticket, Date.now()));
  /** Followers (joined twins) waiting for a journal entry to change, by key. */
  private readonly followers = new Followers();
  private readonly wakeTimer = new WakeTimer((now) => this.core.wake(now));
  /** Stores the metrics a moment after a change, once for a burst of changes (see METRICS_SAVE_MS); a failed write waits for the next change. */
  private readonly metricsSave = new FlushTimer(
    () => this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('metrics', ?)`, JSON.stringify(this.core.metrics)),
    METRICS_SAVE_MS,
    "gate metrics",
    () => false,
  );
  private alertRuns!: AlertRuns;
  private spendRows!: SpendRows;
  /** The one durable alarm: lease deadlines, alert evaluations, a deleted tenant's mark. */
  private readonly clocks = new AlarmClocks(this.ctx.storage);
  /** Whose gate this is, and the tenant's config in the core. */
  private readonly tenancy = new GateTenancy(this.ctx.storage, this.env, this.clocks, () => this.core);
  /** Reads the tenant's own backends' load from their /metrics while requests come (a pool reads its own). */
  private readonly loadPoller = new LoadPoller(
    () => this.core.policies.backendList().filter((b) => b.pool === undefined),
    (id, load, at) => this.core.policies.reportLoad(id, load, at),
  );
  private readonly budgets = new BudgetLink(this.env.TENANT_GATE, () => {
    const { tenant, shard } = this.tenancy;
    return tenant === null ? null : { tenant, shard };
  });
  private readonly poolSync = new PoolSync(
    this.env.POOL_GATE,
    () => this.core,
    () => {
      const { tenant, shard } = this.tenancy;
      return tenant === null ? null : { holder: `${tenant}/${shard}`, tenant };
    },
  );

  constructor(ctx: DurableObjectState, env: GateEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.open();
      if (this.tenancy.tenant) await this.tenancy.load(this.tenancy.tenant);
      // Attempts in flight on shared backends (restored leases) are reported to their pools.
      if (this.core.policies.pools.size > 0) this.poolSync.wanted();
    });
  }

  /** Creates the tables if need be and restores the core from them. */
  private open(): void {
    const sql = this.ctx.storage.sql;
    keyedTable(this.ctx.storage, "meta", "key TEXT PRIMARY KEY, value TEXT NOT NULL");
    keyedTable(this.ctx.storage, "breakers", "backend_id TEXT PRIMARY KEY, data TEXT NOT NULL");
    // Followers hear of appended chunks once they are written, and of a run's end.
    this.journal = new ReplayJournal(this.ctx.storage, (keys) => {
      for (const key of keys) this.followers.wake(key);
    });
    const meta = new Map(
      sql
        .exec<{ key: string; value: string }>(`SELECT key, value FROM meta`)
        .toArray()
        .map((r) => [r.key, r.value]),
    );
    this.tenancy.restore(meta);
    const saved = meta.get("metrics");
    const alerts = meta.get("alerts");
    this.alertRuns = new AlertRuns(new AlertOutbox(sql), this.clocks, this.env.ALERTS);
    this.spendRows = new SpendRows(this.ctx.storage);
    this.core = new GateCore(
      this.host(),
      saved === undefined ? undefined : (JSON.parse(saved) as SavedMetrics),
      alerts === undefined ? undefined : (JSON.parse(alerts) as SavedAlerts),
      this.spendRows.budgets(),
    );
    // A pending or firing alert (or an unsent message) is looked at again soon after a restart.
    if (this.core.alerts.active().length > 0 || this.alertRuns.unsent > 0) {
      this.clocks.set("alerts", Date.now() + ALERT_EVALUATE_MS);
    }
    this.leaseRows = new LeaseRows<Lease>(this.ctx.storage);
    this.core.leases.restore(this.leaseRows.load());
    const deleted = meta.get("deleted");
    if (deleted !== undefined) {
      this.core.markDeleted();
      this.clocks.set("tombstone", Number(deleted));
    }
  }

  // ---- RPC ---------------------------------------------------------------------------------------

  /** Admits a request: a lease, a replay, a join, a rejection, or (after POLL_MS in the queue) a ticket to poll. */
  async admit(request: AdmitRequest): Promise<AdmitResult> {
    await this.tenancy.ensure(request.tenant, request.shard ?? 0);
    this.loadPoller.active();
    const charged = await this.budgets.charge(this.core, request);
    if ("refused" in charged) return charged.refused;
    return this.openCalls.hold(this.core.admit(charged.request, Date.now()));
  }

  /** Shard 0 of a sharded tenant: another shard charges a request to the budgets held here (budget-link.ts). */
  async chargeBudget(request: Pick<AdmitRequest, "requestId" | "key" | "alias">, estimate: Amount): Promise<HeldCharge> {
    return this.core.spend.chargeHeld(request, estimate, Date.now());
  }

  /** ... and tells its end: what it cost, "charged" (unknown), or "release" (it never ran). */
  async settleBudget(holdId: string, actual: Amount | "charged" | "release", keyId?: string): Promise<void> {
    this.core.spend.settleHeld(holdId, actual, Date.now(), keyId);
  }

  /** A queued request asks again. "unknown": the gate restarted or dropped it; the Worker admits it anew. */
  async poll(ticketId: string): Promise<AdmitResult> {
    return this.openCalls.hold(this.core.poll(ticketId, Date.now()));
  }

  async retry(leaseId: string, report: AttemptReport | null, needs: RetryNeeds): Promise<RetryResult> {
    return this.core.retry(leaseId, report, needs, Date.now());
  }

  /** A live request claims a lease this gate does not know (see GateCore.adopt). */
  async adopt(claim: LeaseClaim): Promise<LeaseCheck> {
    await this.tenancy.ensure(claim.admit.tenant, claim.admit.shard ?? 0);
    return this.core.adopt(claim, Date.now());
  }

  async renew(leaseId: string): Promise<LeaseCheck> {
    return this.core.renew(leaseId, Date.now());
  }

  async firstToken(leaseId: string, ttftMs?: number): Promise<LeaseCheck> {
    return this.core.firstToken(leaseId, Date.now(), ttftMs);
  }

  async hedge(leaseId: string): Promise<HedgeResult> {
    return this.core.hedge(leaseId, Date.now());
  }

  async hedgeEnded(leaseId: string, kept: HedgeKept, dropped: AttemptReport): Promise<void> {
    this.core.hedgeEnded(leaseId, kept, dropped, Date.now());
  }

  /** Commits relayed chunks; answered once they are written, so the caller may forget them. */
  async checkpoint(leaseId: string, progress: Checkpoint): Promise<CheckpointAck> {
    const ack = this.core.checkpoint(leaseId, progress, Date.now());
    if (ack.recorded !== null) await this.journal.flushed();
    return ack;
  }

  async settle(
    leaseId: string,
    report: AttemptReport | null,
    outcome: SettleOutcome,
    progress?: Checkpoint,
    failureStatus?: number,
  ): Promise<RequestCost | null> {
    const stored = this.leaseRows.holds(leaseId);
    const cost = this.core.settle(leaseId, report, outcome, progress, Date.now(), failureStatus);
    // The row's delete is written before the reply: a restart must not bring a settled lease back.
    // Settles that arrive together share the write (a failed one fails the call, which is resent).
    if (stored) await this.leaseRows.flushed();
    return cost;
  }

  /** The spend ledger's rows of days `from` to `to` (YYYY-MM-DD), and where each budget stands. */
  async spend(from: string, to: string, keys: KeyRef[] = []): Promise<{ rows: SpendEntry[]; budgets: BudgetStatus[] }> {
    const now = Date.now();
    const budgets = [undefined, ...keys].flatMap((key) => this.core.spend.status(key, now));
    return { rows: this.spendRows.rows(from, to), budgets: budgets.filter((b, i) => budgets.findIndex((o) => o.id === b.id) === i) };
  }

  /** Stops the request queued or running under the record's journal key (see GateCore.cancel); says whether there was one. */
  async cancel(record: Pick<RecordSpec, "key" | "kind" | "bodyHash">): Promise<boolean> {
    const found = this.core.cancel(record, Date.now());
    // As at a settle: the lease row's delete is written before the reply.
    if (found) await this.leaseRows.flushed();
    return found;
  }

  /**
   * For a joined twin: the entry's chunks from index `from`, waiting up to `waitMs` for news while
   * the entry is running and has nothing new.
   */
  async follow(key: string, from: number, waitMs: number): Promise<FollowResult> {
    const entryRead = followRead(from, (entry) => this.core.isLive(entry));
    const read = () => entryRead(this.journal.get(key, Date.now()));
    const now = read();
    if (now) return now;
    await this.followers.wait(key, waitMs);
    return read() ?? { chunks: [], state: "running", tokens: 0 };
  }

  /** A stored complete answer for `key`, for stale-if-error; null when there is none. */
  async storedAnswer(key: string): Promise<EntrySnapshot | null> {
    const entry = this.journal.get(key, Date.now());
    return entry && entry.state === "complete" && !entry.overflow ? entry : null;
  }

  /** Adopts a config just written by the admin API, without waiting for the KV cache. */
  async applyConfig(tenant: string, config: TenantConfig | null, shard = 0): Promise<void> {
    await this.tenancy.apply(tenant, config, shard);
  }

  /**
   * The tenant is deleted: queued requests are answered `tenant_deleted` at once, and everything
   * stored (journal, leases, breakers, counters) is erased. Leases in flight end at their Worker's
   * next call (a checkpoint, a renewal, the first token), which is answered `tenant_deleted`, after
   * a restart too: while leases were in flight, one row marks the deletion until TOMBSTONE_MS has
   * passed, when the alarm erases it. A tenant re-created under the same id starts empty.
   */
  async erase(): Promise<void> {
    // Only a request holding a lease can call again after this: a gate with none keeps no mark.
    const inFlight = this.core.leases.size > 0;
    this.core.endForDeletion();
    this.journal.discard();
    this.leaseRows.discard();
    this.spendRows.discard();
    this.wakeTimer.cancel();
    this.metricsSave.cancel();
    this.poolSync.stop();
    this.loadPoller.stop();
    if (this.tenancy.tenant) forgetTenantConfig(this.tenancy.tenant);
    await this.clocks.clear();
    await this.ctx.storage.deleteAll();
    this.open();
    this.core.markDeleted();
    if (inFlight) {
      // The mark outlives a restart: a request still in flight then ends tenant_deleted, not lease_lost.
      const until = Date.now() + TOMBSTONE_MS;
      this.ctx.storage.sql.exec(`INSERT INTO meta (key, value) VALUES ('deleted', ?)`, String(until));
      this.clocks.set("tombstone", until);
    }
    this.tenancy.loaded(Date.now());
    // Followers read their entry again: it is gone.
    this.followers.wakeAll();
  }

  /** A sharded tenant's gates send their histograms too (`histograms: true`): percentiles do not add up. */
  async stats(options: { histograms?: boolean } = {}): Promise<GateStats> {
    return this.core.stats(this.tenancy.tenant, this.journal.stats(), Date.now(), options);
  }

  /** Reclaims leases whose Worker went silent; evaluates the alert rules and sends what changed. */
  override async alarm(): Promise<void> {
    this.clocks.fired();
    const now = Date.now();
    const tombstone = this.clocks.get("tombstone");
    if (tombstone !== undefined && now >= tombstone) {
      // Every request of the deleted tenant has ended by now: nothing of it is left.
      await this.clocks.clear();
      await this.ctx.storage.deleteAll();
      this.open();
      return;
    }
    this.core.reclaimExpired(now);
    const alerts = this.clocks.get("alerts");
    if (alerts !== undefined && now >= alerts) await this.alertRuns.evaluate(this.core, this.tenancy.tenant, this.tenancy.shard, now);
  }

  // ---- wiring ------------------------------------------------------------------------------------

  private host(): GateHost {
    const { storage } = this.ctx;
    return {
      newId: () => crypto.randomUUID(),
      random: Math.random,
      journal: this.journal,
      // A lease a journal entry points to is written at once the first time (see GateHost.saveLease).
      saveLease: (lease) => this.leaseRows.save(lease, lease.recordKey !== undefined && !this.leaseRows.holds(lease.id)),
      dropLease: (id) => this.leaseRows.remove(id),
      setAlarm: (at) => this.clocks.set("leases", at),
      saveBreaker: (id, snapshot) =>
        storage.sql.exec(`INSERT OR REPLACE INTO breakers (backend_id, data) VALUES (?, ?)`, id, JSON.stringify(snapshot)),
      dropBreaker: (id) => storage.sql.exec(`DELETE FROM breakers WHERE backend_id = ?`, id),
      metricsChanged: () => this.metricsSave.schedule(),
      deliver: (ticketId, result) => this.openCalls.deliver(ticketId, result),
      wakeAt: (at) => this.wakeTimer.at(at),
      alertsWanted: (now) => this.alertRuns.wanted(now),
      poolsWanted: () => this.poolSync.wanted(),
      recordSpend: (entries) => this.spendRows.record(entries),
      saveBudget: (id, spent) => this.spendRows.saveBudget(id, spent),
      settleHeldBudget: (holdId, actual, keyId) => this.budgets.settle(holdId, actual, keyId),
    };
  }
}
