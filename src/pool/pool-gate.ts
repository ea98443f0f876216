// PoolGate: one Durable Object per shared pool (README, "Shared pools"), placed near its backends
// (the pool's locationHint, given at its first write). It owns its backends' capacity for every
// tenant: tenant gates hold credits on them and sync off the request path (core/credit-ledger.ts
// holds the policy; this shell stores the ledger in SQLite, so a restart neither forgets a holder's
// credits nor hands them out twice).
import { DurableObject } from "cloudflare:workers";
import { CreditLedger, type SavedHolder, type SavedTenant, type SyncReply, type SyncReport } from "./core/credit-ledger";
import { type PoolStats, poolStats } from "./core/pool-stats";
import { type BackendLoad, LOAD_FRESH_MS } from "./core/backend-load";
import { LoadPoller, type LoadSource } from "./load-poller";
import { keyedTable } from "../gate/keyed-table";

/** A pool's gate by the pool's id; `locationHint` places it, on its first call only. */
export function poolGateOf(
  namespace: DurableObjectNamespace<PoolGate>,
  pool: string,
  locationHint?: DurableObjectLocationHint,
): DurableObjectStub<PoolGate> {
  return namespace.get(namespace.idFromName(pool), locationHint ? { locationHint } : undefined);
}

export class PoolGate extends DurableObject<Record<string, never>> {
  private readonly ledger = new CreditLedger();
  /** Where each backend's metrics are read. */
  private readonly sources = new Map<string, LoadSource>();
  /** What each backend last said of its load, and when (in memory: read again within seconds). */
  private readonly loads = new Map<string, { load: BackendLoad; at: number }>();
  private readonly loadPoller = new LoadPoller(
    () => [...this.sources.values()],
    (id, load, at) => (load ? this.loads.set(id, { load, at }) : this.loads.delete(id)),
  );

  constructor(ctx: DurableObjectState, env: Record<string, never>) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => this.open());
  }

  private open(): void {
    const sql = this.ctx.storage.sql;
    keyedTable(this.ctx.storage, "backends", "id TEXT PRIMARY KEY, capacity INTEGER NOT NULL, source TEXT");
    keyedTable(this.ctx.storage, "holders", "holder TEXT PRIMARY KEY, data TEXT NOT NULL");
    keyedTable(this.ctx.storage, "tenants", "tenant TEXT PRIMARY KEY, data TEXT NOT NULL");
    for (const r of sql.exec<{ id: string; capacity: number; source: string | null }>(`SELECT id, capacity, source FROM backends`)) {
      this.ledger.setBackend(r.id, r.capacity);
      // Where its metrics are read comes back too, so a restarted pool goes on reading them.
      if (r.source) this.sources.set(r.id, JSON.parse(r.source) as LoadSource);
    }
    const holders = sql.exec<{ holder: string; data: string }>(`SELECT holder, data FROM holders`).toArray();
    const tenants = sql.exec<{ tenant: string; data: string }>(`SELECT tenant, data FROM tenants`).toArray();
    this.ledger.restore(
      holders.map((r) => [r.holder, JSON.parse(r.data) as SavedHolder]),
      tenants.map((r) => [r.tenant, JSON.parse(r.data) as SavedTenant]),
    );
  }

  /** A tenant gate's report: the credits it holds now, and its targets (see CreditLedger.sync). */
  async sync(report: SyncReport): Promise<SyncReply> {
    const now = Date.now();
    const reply: SyncReply = { ...this.ledger.sync(report, now), loads: this.freshLoads(now) };
    this.loadPoller.active();
    const sql = this.ctx.storage.sql;
    const saved = this.ledger.saved(report.holder);
    if (saved) sql.exec(`INSERT OR REPLACE INTO holders (holder, data) VALUES (?, ?)`, report.holder, JSON.stringify(saved));
    else sql.exec(`DELETE FROM holders WHERE holder = ?`, report.holder);
    const tenant = this.ledger.savedTenant(report.tenant);
    if (tenant) sql.exec(`INSERT OR REPLACE INTO tenants (tenant, data) VALUES (?, ?)`, report.tenant, JSON.stringify(tenant));
    return reply;
  }

  /** A fleet backend joins the pool, or changed (its capacity; where its metrics are read). */
  async setBackend(id: string, capacity: number, source: LoadSource): Promise<void> {
    this.ledger.setBackend(id, capacity);
    this.sources.set(id, source);
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO backends (id, capacity, source) VALUES (?, ?, ?)`,
      id,
      capacity,
      JSON.stringify(source),
    );
  }

  /** A fleet backend left the pool (deleted, or moved to another pool). */
  async dropBackend(id: string): Promise<void> {
    this.ledger.setBackend(id, 0);
    this.sources.delete(id);
    this.loads.delete(id);
    this.ctx.storage.sql.exec(`DELETE FROM backends WHERE id = ?`, id);
    this.saveHolders();
  }

  async backendCount(): Promise<number> {
    return this.ledger.backendIds().length;
  }

  /** The tenant is deleted: its gates' credits go back, and its counts are forgotten. */
  async forgetTenant(tenant: string): Promise<void> {
    this.ledger.forgetTenant(tenant);
    this.ctx.storage.sql.exec(`DELETE FROM tenants WHERE tenant = ?`, tenant);
    this.saveHolders();
  }

  async stats(pool: string): Promise<PoolStats> {
    return poolStats(pool, this.ledger, this.freshLoads(Date.now()), Date.now());
  }

  /** The pool is deleted (it has no backends left): nothing of it stays. */
  async erase(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.ledger.forgetAll();
    this.loadPoller.stop();
    this.sources.clear();
    this.loads.clear();
    this.open();
  }

  /** The backends' loads read lately (within LOAD_FRESH_MS), with their age. */
  private freshLoads(now: number): Record<string, BackendLoad & { ageMs: number }> {
    const out: Record<string, BackendLoad & { ageMs: number }> = {};
    for (const [id, { load, at }] of this.loads) if (now - at <= LOAD_FRESH_MS) out[id] = { ...load, ageMs: now - at };
    return out;
  }

  /** Rewrites the holders table from the ledger (after a change that touched many holders). */
  private saveHolders(): void {
    const sql = this.ctx.storage.sql;
    const rows = sql.exec<{ holder: string }>(`SELECT holder FROM holders`).toArray();
    for (const { holder } of rows) {
      const saved = this.ledger.saved(holder);
      if (saved) sql.exec(`UPDATE holders SET data = ? WHERE holder = ?`, JSON.stringify(saved), holder);
      else sql.exec(`DELETE FROM holders WHERE holder = ?`, holder);
    }
  }
}
