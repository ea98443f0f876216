// PoolGate: one Durable Object per shared pool (README, "Shared pools"), placed near its backends
// (the pool's locationHint, given at its first write). It owns its backends' capacity for every
// tenant: tenant gates hold credits on them and sync off the request path (core/credit-ledger.ts
// holds the policy; this shell stores the ledger in SQLite, so a restart neither forgets a holder's
// credits nor hands them out twice).
import { DurableObject } from "cloudflare:workers";
import { CreditLedger, type SavedHolder, type SavedTenant, type SyncReply, type SyncReport } from "./core/credit-ledger";
import { type PoolStats, poolStats } from "./core/pool-stats";

export class PoolGate extends DurableObject<Record<string, never>> {
  private readonly ledger = new CreditLedger();

  constructor(ctx: DurableObjectState, env: Record<string, never>) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => this.open());
  }

  private open(): void {
    const sql = this.ctx.storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS backends (id TEXT PRIMARY KEY, capacity INTEGER NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS holders (holder TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS tenants (tenant TEXT PRIMARY KEY, data TEXT NOT NULL)`);
    for (const r of sql.exec<{ id: string; capacity: number }>(`SELECT id, capacity FROM backends`))
      this.ledger.setBackend(r.id, r.capacity);
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
    const reply = this.ledger.sync(report, now);
    const sql = this.ctx.storage.sql;
    const saved = this.ledger.saved(report.holder);
    if (saved) sql.exec(`INSERT OR REPLACE INTO holders (holder, data) VALUES (?, ?)`, report.holder, JSON.stringify(saved));
    else sql.exec(`DELETE FROM holders WHERE holder = ?`, report.holder);
    const tenant = this.ledger.savedTenant(report.tenant);
    if (tenant) sql.exec(`INSERT OR REPLACE INTO tenants (tenant, data) VALUES (?, ?)`, report.tenant, JSON.stringify(tenant));
    return reply;
  }

  /** A fleet backend joins the pool, or its capacity changed. */
  async setBackend(id: string, capacity: number): Promise<void> {
    this.ledger.setBackend(id, capacity);
    this.ctx.storage.sql.exec(`INSERT OR REPLACE INTO backends (id, capacity) VALUES (?, ?)`, id, capacity);
  }

  /** A fleet backend left the pool (deleted, or moved to another pool). */
  async dropBackend(id: string): Promise<void> {
    this.ledger.setBackend(id, 0);
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
    return poolStats(pool, this.ledger, Date.now());
  }

  /** The pool is deleted (it has no backends left): nothing of it stays. */
  async erase(): Promise<void> {
    await this.ctx.storage.deleteAll();
    this.ledger.forgetAll();
    this.open();
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
