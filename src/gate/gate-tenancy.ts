// Which tenant and shard a gate serves, and the tenant's config in its core: read from KV once the
// copy the gate holds is older than CONFIG_CACHE_TTL_SECONDS, adopted at once when the admin API
// writes one. The identity is stored once the gate has a config, so a restarted gate knows whose it
// is, and a deleted tenant's requests (no config) write nothing.
import type { TenantConfig } from "../config/schema";
import { resolveTenantConfig } from "../config/fleet";
import { readTenantConfig } from "../config/store";
import { cacheTtlMs, type StoreEnv } from "../config/store-env";
import type { AlarmClocks } from "./alarm-clocks";
import type { BreakerSnapshot } from "./core/breaker";
import type { GateCore } from "./core/gate-core";

export class GateTenancy {
  tenant: string | null = null;
  /** Which of the tenant's gates this is (admission/gate-naming.ts): it enforces that share of the limits. */
  shard = 0;
  private identityStored = false;
  private loadedAt = 0;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: StoreEnv,
    private readonly clocks: AlarmClocks,
    private readonly core: () => GateCore,
  ) {}

  /** The identity in the gate's meta rows (at start-up, and after an erase). */
  restore(meta: Map<string, string>): void {
    this.tenant = meta.get("tenant") ?? null;
    this.shard = Number(meta.get("shard") ?? 0);
    this.identityStored = this.tenant !== null;
  }

  /** Before a request's call: the tenant's config in the core, read again once the held one is stale. */
  async ensure(tenant: string, shard: number): Promise<void> {
    this.remember(tenant, shard);
    if (!this.core().config || Date.now() - this.loadedAt > cacheTtlMs(this.env)) await this.load(tenant);
  }

  async load(tenant: string): Promise<void> {
    const config = await readTenantConfig(this.env, tenant);
    this.core().loadConfig(config, this.shard, this.storedBreakers(), Date.now());
    this.loaded(Date.now());
  }

  /** A config just written by the admin API (null: deleted), without waiting for KV. */
  async apply(tenant: string, config: TenantConfig | null, shard: number): Promise<void> {
    this.remember(tenant, shard);
    const resolved = config && (await resolveTenantConfig(this.env, config));
    this.core().applyConfig(resolved, shard, this.storedBreakers(), Date.now());
    this.loaded(Date.now());
  }

  /** The core's config is as current as KV's at `now` (after a load, an apply, or an erase). */
  loaded(now: number): void {
    this.loadedAt = now;
    this.storeIdentity();
  }

  private storedBreakers(): Map<string, BreakerSnapshot> {
    const rows = this.storage.sql.exec<{ backend_id: string; data: string }>(`SELECT backend_id, data FROM breakers`).toArray();
    return new Map(rows.map((r) => [r.backend_id, JSON.parse(r.data) as BreakerSnapshot]));
  }

  private remember(tenant: string, shard: number): void {
    if (this.tenant === tenant && this.shard === shard) return;
    this.tenant = tenant;
    this.shard = shard;
    this.identityStored = false;
  }

  /** Stores the identity once the gate has a config; a re-created tenant's config lifts the deletion mark. */
  private storeIdentity(): void {
    const core = this.core();
    if (core.config && this.clocks.get("tombstone") !== undefined) {
      this.storage.sql.exec(`DELETE FROM meta WHERE key = 'deleted'`);
      this.clocks.set("tombstone", undefined);
    }
    if (this.identityStored || !core.config || this.tenant === null) return;
    this.storage.sql.exec(`INSERT OR REPLACE INTO meta (key, value) VALUES ('tenant', ?), ('shard', ?)`, this.tenant, String(this.shard));
    this.identityStored = true;
  }
}
