// TenantGate: one Durable Object per tenant (or per shard of one). A shell around the gate core
// (core/gate-core.ts), which holds every policy decision: this file restores the core from SQLite,
// loads the tenant's config, answers RPC calls by calling the core with the time, writes what the
// core asks to store, runs the alarm and the timers, and holds open the calls of queued requests
// and of followers of a live generation. It never touches token bytes; the Worker streams those.
import { DurableObject } from "cloudflare:workers";
import type { TenantConfig } from "../config/schema";
import { forgetTenantConfig, readTenantConfig } from "../config/store";
import type { BreakerSnapshot } from "./core/breaker";
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
  LeaseCheck,
  RetryNeeds,
  RetryResult,
  SettleOutcome,
} from "./core/protocol";
import type { GateStats } from "./core/stats";
import { POLL_MS } from "./core/tickets";
import { ReplayJournal } from "./journal";
import { logError } from "../log";
import { LeaseRows } from "./lease-rows";
import { ALERT_EVALUATE_MS, type AlertMessage } from "./core/gate-alerts";
import type { SavedAlerts } from "./core/alert-tracker";
import { AlertOutbox } from "./alert-outbox";

/** The bindings the gate uses (a subset of the Worker's). */
export interface GateEnv {
  CONFIG: KVNamespace;
  CONFIG_CACHE_TTL_SECONDS?: string;
  /** Where alert messages go; the Worker's consumer posts them to webhooks (observe/alerts). */
  ALERTS: Queue<AlertMessage>;
}

/** An admit or poll call held open for a queued request. */
interface OpenCall {
  resolve: (result: AdmitResult) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class TenantGate extends DurableObject<GateEnv> {
  private tenant: string | null = null;
  /** Which of the tenant's gates this is (admission/gate-naming.ts): it enforces that share of the limits. */
  private shard = 0;
  private identityStored = false;
  private configLoadedAt = 0;
  private core!: GateCore;
  private journal!: ReplayJournal;
  private leaseRows!: LeaseRows<Lease>;
  private readonly openCalls = new Map<string, OpenCall>();
  /** Followers (joined twins) waiting for a journal entry to change, by key. */
  private readonly followers = new Map<string, Set<() => void>>();
  private wakeTimer: { at: number; handle: ReturnType<typeof setTimeout> } | undefined;
  private metricsSaveTimer: ReturnType<typeof setTimeout> | undefined;
  private outbox!: AlertOutbox;
  /** The one durable alarm serves two clocks: the earliest lease deadline and the next alert evaluation. */
  private leaseAlarmAt: number | undefined;
  private alertAlarmAt: number | undefined;
  /** What the storage alarm was last set to (undefined: none, or not known). */
  private alarmSetAt: number | undefined;

  constructor(ctx: DurableObjectState, env: GateEnv) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.open();
      if (this.tenant) await this.loadConfig(this.tenant);
    });
  }

  /** Creates the tables if need be and restores the core from them. */
  private open(): void {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS breakers (backend_id TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    // Followers hear of appended chunks once they are written, and of a run's end.
    this.journal = new ReplayJournal(sql, (keys) => {
      for (const key of keys) this.wakeFollowers(key);
    });
    const meta = new Map(
      sql
        .exec<{ key: string; value: string }>(`SELECT key, value FROM meta`)
        .toArray()
        .map((r) => [r.key, r.value]),
    );
    this.tenant = meta.get("tenant") ?? null;
    this.shard = Number(meta.get("shard") ?? 0);
    this.identityStored = this.tenant !== null;
    const saved = meta.get("metrics");
    const alerts = meta.get("alerts");
    this.outbox = new AlertOutbox(sql);
    this.core = new GateCore(
      this.host(),
      saved === undefined ? undefined : (JSON.parse(saved) as SavedMetrics),
      alerts === undefined ? undefined : (JSON.parse(alerts) as SavedAlerts),
    );
    // A pending or firing alert (or an unsent message) is looked at again soon after a restart.
    if (this.core.alerts.active().length > 0 || this.outbox.size > 0) {
      this.alertAlarmAt = Date.now() + ALERT_EVALUATE_MS;
      this.applyAlarm();
    }
    this.leaseRows = new LeaseRows<Lease>(this.ctx.storage);
    this.core.leases.restore(this.leaseRows.load());
  }

  // ---- RPC ---------------------------------------------------------------------------------------

  /** Admits a request: a lease, a replay, a join, a rejection, or (after POLL_MS in the queue) a ticket to poll. */
  async admit(request: AdmitRequest): Promise<AdmitResult> {
    await this.ensureConfig(request.tenant, request.shard ?? 0);
    return this.holdWhileQueued(this.core.admit(request, Date.now()));
  }

  /** A queued request asks again. "unknown": the gate restarted or dropped it; the Worker admits it anew. */
  async poll(ticketId: string): Promise<AdmitResult> {
    return this.holdWhileQueued(this.core.poll(ticketId, Date.now()));
  }

  async retry(leaseId: string, report: AttemptReport | null, needs: RetryNeeds): Promise<RetryResult> {
    return this.core.retry(leaseId, report, needs, Date.now());
  }

  async renew(leaseId: string): Promise<LeaseCheck> {
    return this.core.renew(leaseId, Date.now());
  }

  async firstToken(leaseId: string): Promise<LeaseCheck> {
    return this.core.firstToken(leaseId, Date.now());
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
  ): Promise<void> {
    this.core.settle(leaseId, report, outcome, progress, Date.now(), failureStatus);
  }

  /**
   * For a joined twin: the entry's chunks from index `from`, waiting up to `waitMs` for news while
   * the entry is running and has nothing new.
   */
  async follow(key: string, from: number, waitMs: number): Promise<FollowResult> {
    const read = (): FollowResult | undefined => {
      const entry = this.journal.get(key, Date.now());
      if (!entry) return { chunks: [], state: "gone", tokens: 0 };
      const live = this.core.isLive(entry);
      if (entry.chunks.length <= from && live) return undefined;
      const state = live ? "running" : entry.state === "running" ? "abandoned" : entry.state;
      return { chunks: entry.chunks.slice(from), state, tokens: entry.tokens };
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

  /** Adopts a config just written by the admin API, without waiting for the KV cache. */
  async applyConfig(tenant: string, config: TenantConfig | null, shard = 0): Promise<void> {
    this.rememberTenant(tenant, shard);
    this.core.applyConfig(config, shard, this.storedBreakers(), Date.now());
    this.configLoadedAt = Date.now();
    this.storeIdentity();
  }

  /**
   * The tenant is deleted: queued requests are answered `tenant_deleted` at once, and everything
   * stored (journal, leases, breakers, counters) is erased. Leases in flight end at their Worker's
   * next call (a checkpoint, a renewal, the first token), which is answered `tenant_deleted`. A
   * tenant re-created under the same id starts empty.
   */
  async erase(): Promise<void> {
    this.core.endForDeletion();
    this.journal.discard();
    this.leaseRows.discard();
    for (const timer of [this.wakeTimer?.handle, this.metricsSaveTimer]) if (timer !== undefined) clearTimeout(timer);
    this.wakeTimer = this.metricsSaveTimer = undefined;
    if (this.tenant) forgetTenantConfig(this.tenant);
    this.leaseAlarmAt = this.alertAlarmAt = this.alarmSetAt = undefined;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.open();
    this.core.markDeleted();
    this.configLoadedAt = Date.now();
    // Followers read their entry again: it is gone.
    for (const key of [...this.followers.keys()]) this.wakeFollowers(key);
  }

  /** A sharded tenant's gates send their histograms too (`histograms: true`): percentiles do not add up. */
  async stats(options: { histograms?: boolean } = {}): Promise<GateStats> {
    return this.core.stats(this.tenant, this.journal.stats(), Date.now(), options);
  }

  /** Reclaims leases whose Worker went silent; evaluates the alert rules and sends what changed. */
  override async alarm(): Promise<void> {
    this.alarmSetAt = undefined; // the alarm that fired is spent
    const now = Date.now();
    this.core.reclaimExpired(now);
    if (this.alertAlarmAt !== undefined && now >= this.alertAlarmAt) await this.evaluateAlerts(now);
    this.applyAlarm();
  }

  /** Runs the rules; what changed goes to the outbox (stored), then to the alert queue. */
  private async evaluateAlerts(now: number): Promise<void> {
    this.alertAlarmAt = undefined;
    if (this.tenant !== null && this.core.config) {
      const { messages, saved, next } = this.core.alerts.evaluate(this.tenant, this.shard, () => crypto.randomUUID(), now);
      this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('alerts', ?)`, JSON.stringify(saved));
      this.outbox.add(messages, this.tenant);
      this.alertAlarmAt = next;
    }
    // Messages a failed send left behind are tried again at the next evaluation.
    if (!(await this.outbox.send(this.env.ALERTS, this.tenant)))
      this.alertAlarmAt = Math.min(this.alertAlarmAt ?? Infinity, now + ALERT_EVALUATE_MS);
  }

  /** The storage alarm at the earlier of the two clocks (see leaseAlarmAt). */
  private applyAlarm(): void {
    const times = [this.leaseAlarmAt, this.alertAlarmAt].filter((t) => t !== undefined);
    const at = times.length > 0 ? Math.min(...times) : undefined;
    if (at === this.alarmSetAt) return;
    this.alarmSetAt = at;
    void (at === undefined ? this.ctx.storage.deleteAlarm() : this.ctx.storage.setAlarm(at));
  }

  /** The figures changed and the tenant has alert rules: an evaluation within ALERT_EVALUATE_MS, or at once. */
  private alertsWanted(now = false): void {
    const at = Date.now() + (now ? 0 : ALERT_EVALUATE_MS);
    if (this.alertAlarmAt !== undefined && this.alertAlarmAt <= at) return;
    this.alertAlarmAt = at;
    this.applyAlarm();
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
      setAlarm: (at) => {
        this.leaseAlarmAt = at;
        this.applyAlarm();
      },
      saveBreaker: (id, snapshot) =>
        storage.sql.exec(`INSERT OR REPLACE INTO breakers (backend_id, data) VALUES (?, ?)`, id, JSON.stringify(snapshot)),
      dropBreaker: (id) => storage.sql.exec(`DELETE FROM breakers WHERE backend_id = ?`, id),
      metricsChanged: () => this.scheduleMetricsSave(),
      deliver: (ticketId, result) => this.deliver(ticketId, result),
      wakeAt: (at) => this.scheduleWake(at),
      alertsWanted: (now) => this.alertsWanted(now),
    };
  }

  private async ensureConfig(tenant: string, shard: number): Promise<void> {
    this.rememberTenant(tenant, shard);
    const ttlMs = Number(this.env.CONFIG_CACHE_TTL_SECONDS ?? "5") * 1000;
    if (!this.core.config || Date.now() - this.configLoadedAt > ttlMs) await this.loadConfig(tenant);
  }

  private async loadConfig(tenant: string): Promise<void> {
    const config = await readTenantConfig(this.env, tenant);
    this.core.loadConfig(config, this.shard, this.storedBreakers(), Date.now());
    this.configLoadedAt = Date.now();
    this.storeIdentity();
  }

  private storedBreakers(): Map<string, BreakerSnapshot> {
    const rows = this.ctx.storage.sql.exec<{ backend_id: string; data: string }>(`SELECT backend_id, data FROM breakers`).toArray();
    return new Map(rows.map((r) => [r.backend_id, JSON.parse(r.data) as BreakerSnapshot]));
  }

  private rememberTenant(tenant: string, shard: number): void {
    if (this.tenant === tenant && this.shard === shard) return;
    this.tenant = tenant;
    this.shard = shard;
    this.identityStored = false;
  }

  /** Stores which tenant and shard this gate serves once it has a config: a deleted tenant's requests write nothing. */
  private storeIdentity(): void {
    if (this.identityStored || !this.core.config || this.tenant === null) return;
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO meta (key, value) VALUES ('tenant', ?), ('shard', ?)`,
      this.tenant,
      String(this.shard),
    );
    this.identityStored = true;
  }

  /** A queued request's call stays open up to POLL_MS for its verdict, then answers "queued". */
  private holdWhileQueued(result: AdmitResult): AdmitResult | Promise<AdmitResult> {
    if (result.kind !== "queued") return result;
    const id = result.ticket;
    return new Promise((resolve) => {
      const call: OpenCall = {
        resolve,
        timer: setTimeout(() => {
          // A newer call for the same ticket (a repeated poll) took over: this one just ends.
          if (this.openCalls.get(id) === call) {
            this.openCalls.delete(id);
            this.core.pollEnded(id, Date.now());
          }
          resolve(result);
        }, POLL_MS),
      };
      this.openCalls.set(id, call);
    });
  }

  private deliver(ticketId: string, result: AdmitResult): boolean {
    const call = this.openCalls.get(ticketId);
    if (!call) return false;
    clearTimeout(call.timer);
    this.openCalls.delete(ticketId);
    call.resolve(result);
    return true;
  }

  /** One timer, at the earliest time the core asked to be woken. */
  private scheduleWake(at: number): void {
    if (this.wakeTimer && this.wakeTimer.at <= at) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer.handle);
    const handle = setTimeout(() => {
      this.wakeTimer = undefined;
      this.core.wake(Math.max(Date.now(), at));
    }, at - Date.now());
    this.wakeTimer = { at, handle };
  }

  private wakeFollowers(key: string): void {
    for (const done of [...(this.followers.get(key) ?? [])]) done();
  }

  /** Stores the metrics a moment after a change, once for a burst of changes (see METRICS_SAVE_MS). */
  private scheduleMetricsSave(): void {
    this.metricsSaveTimer ??= setTimeout(() => {
      this.metricsSaveTimer = undefined;
      try {
        this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('metrics', ?)`, JSON.stringify(this.core.metrics));
      } catch (err) {
        // The next change tries again; say so rather than leave an uncaught exception in a timer.
        logError(undefined, "gate metrics not stored", err, { tenant: this.tenant });
      }
    }, METRICS_SAVE_MS);
  }
}
