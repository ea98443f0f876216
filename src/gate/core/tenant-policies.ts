// What a gate derives from its tenant's config: this shard's share of the limits, the backends by
// id, one circuit breaker per backend (kept across config changes and restarts), the retry and hedge budgets,
// the rate limits, and each backend's Retry-After. Installing a config keeps what still applies.
import type { BackendConfig, TenantConfig } from "../../config/schema";
import type { BackendView } from "./backend-picker";
import { CircuitBreaker, type BreakerSnapshot, type BreakerState } from "./breaker";
import { RetryBudget } from "./budget";
import { Hedging } from "./hedging";
import type { GateHost } from "./ports";
import { TenantRateLimit } from "./rate-limit";
import { shardConfig } from "./shard-share";
import { AdaptiveLimit } from "./adaptive-limit";
import { reportedCapacity } from "./reported-capacity";
import { PoolCredits } from "./pool-credits";
import { type BackendLoad, LOAD_FRESH_MS } from "../../pool/core/backend-load";
import type { PoolShare } from "../../pool/core/credit-ledger";

/** Background work's slots at most: limits.background, or half the tenant's slots. */
export function backgroundLimit(config: TenantConfig): number {
  return config.limits.background ?? Math.ceil(config.limits.maxConcurrency / 2);
}

/** The longest a backend's Retry-After keeps it out of plans. */
export const MAX_RETRY_AFTER_MS = 60_000;
/** A breaker whose state did not change is stored at most this often (its window counts may lag). */
const BREAKER_SAVE_MS = 1_000;

export class TenantPolicies implements BackendView {
  config: TenantConfig | null = null;
  budget: RetryBudget | null = null;
  /** Hedged first tokens: their delays and budget (null before a config is installed). */
  hedging: Hedging | null = null;
  /** Null when the tenant sets no rate limit. In memory only: a restarted gate starts with full buckets. */
  rateLimit: TenantRateLimit | null = null;
  /** Which of the tenant's gates this is (shard 0 holds a sharded tenant's budgets). */
  shard = 0;
  private backends = new Map<string, BackendConfig>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly breakerSavedAt = new Map<string, number>();
  private readonly retryAfterUntil = new Map<string, number>();
  /** Learned limits of the backends with adaptiveConcurrency. In memory: a restarted gate starts at maxConcurrency. */
  private readonly limits = new Map<string, AdaptiveLimit>();
  /** Credits on fleet backends, granted by their pools. In memory: a restarted gate asks again. */
  readonly credits = new PoolCredits();
  /** The config's fleet backends, by pool. */
  pools = new Map<string, BackendConfig[]>();
  /** What each backend last said of its own load (its /metrics), when, its prefix-cache hit rate lately, and the cap its queue set. In memory. */
  private readonly loads = new Map<string, { load: BackendLoad; at: number; prefixHitRate?: number; cap?: number }>();

  constructor(
    private readonly host: Pick<GateHost, "saveBreaker" | "dropBreaker">,
    private readonly inFlightOf: (backendId: string) => number,
    /** A breaker just opened (alerts are evaluated at once). */
    private readonly breakerOpened: () => void = () => {},
  ) {}

  /**
   * Installs the tenant's config as shard `shard`'s share of it. `stored`: the breakers kept in
   * storage, for backends this gate has no breaker for yet (after a restart).
   */
  install(tenantConfig: TenantConfig | null, shard: number, stored: ReadonlyMap<string, BreakerSnapshot>, now: number): void {
    this.shard = shard;
    const config = tenantConfig && shardConfig(tenantConfig, shard);
    const previous = this.config;
    this.config = config;
    this.backends = new Map((config?.backends ?? []).map((b) => [b.id, b]));
    this.pools = new Map();
    for (const b of this.backends.values()) if (b.pool !== undefined) this.pools.set(b.pool, [...(this.pools.get(b.pool) ?? []), b]);
    if (!config) return;
    if (!this.budget || JSON.stringify(previous?.retry) !== JSON.stringify(config.retry)) {
      const { budgetRatio: ratio, budgetMinRetries: minRetries, budgetWindowMs: windowMs } = config.retry;
      this.budget = new RetryBudget({ ratio, minRetries, windowMs });
    }
    if (
      !this.hedging ||
      JSON.stringify(previous?.hedging) !== JSON.stringify(config.hedging) ||
      previous?.retry.budgetWindowMs !== config.retry.budgetWindowMs
    )
      this.hedging = new Hedging(config.hedging, config.retry.budgetWindowMs);
    const { requestsPerMinute, tokensPerMinute } = config.limits;
    if (requestsPerMinute !== previous?.limits.requestsPerMinute || tokensPerMinute !== previous?.limits.tokensPerMinute) {
      this.rateLimit = requestsPerMinute || tokensPerMinute ? new TenantRateLimit({ requestsPerMinute, tokensPerMinute }, now) : null;
    }
    for (const id of stored.keys()) if (!this.backends.has(id)) this.host.dropBreaker(id);
    for (const id of this.backends.keys()) {
      const current = this.breakers.get(id)?.snapshot() ?? stored.get(id);
      this.breakers.set(id, current ? CircuitBreaker.restore(config.breaker, current) : new CircuitBreaker(config.breaker));
    }
    for (const id of [...this.breakers.keys()]) if (!this.backends.has(id)) this.breakers.delete(id);
    for (const b of this.backends.values()) {
      const learned = this.limits.get(b.id);
      if (!b.adaptiveConcurrency) this.limits.delete(b.id);
      else if (learned) learned.resize(b.maxConcurrency);
      else this.limits.set(b.id, new AdaptiveLimit(b.maxConcurrency));
    }
    for (const id of [...this.limits.keys()]) if (!this.backends.has(id)) this.limits.delete(id);
  }

  backend(id: string): BackendConfig | undefined {
    return this.backends.get(id);
  }

  backendList(): readonly BackendConfig[] {
    return this.config?.backends ?? [];
  }

  breaker(id: string): CircuitBreaker | undefined {
    return this.breakers.get(id);
  }

  inFlight(id: string): number {
    return this.inFlightOf(id);
  }

  capacity(id: string): number {
    const own = this.limits.get(id)?.limit ?? this.backends.get(id)?.maxConcurrency ?? 0;
    if (this.backends.get(id)?.pool !== undefined) return Math.min(own, this.credits.usable(id));
    return Math.min(own, this.loads.get(id)?.cap ?? own);
  }

  /** The tenant's share of a pool (weight 1 when its config says nothing). */
  share(pool: string): PoolShare {
    const shares = this.config?.pools;
    return shares && Object.hasOwn(shares, pool) ? shares[pool]! : { weight: 1, min: 0 };
  }

  /** The backend's learned limit, when it has adaptiveConcurrency. */
  learned(id: string): AdaptiveLimit | undefined {
    return this.limits.get(id);
  }

  /** The backend's own account of its load, read at `at`; null: it has none (no /metrics, or no gauges there). */
  reportLoad(id: string, load: BackendLoad | null, at: number): void {
    if (!load || !this.backends.has(id)) return void this.loads.delete(id);
    // The hit rate between this reading and the last one with new queries (the counters only grow).
    const before = this.loads.get(id);
    const queried = (load.prefixCache?.queries ?? 0) - (before?.load.prefixCache?.queries ?? 0);
    const hit = (load.prefixCache?.hits ?? 0) - (before?.load.prefixCache?.hits ?? 0);
    const prefixHitRate =
      before?.load.prefixCache && load.prefixCache && queried > 0 ? Math.min(1, Math.max(0, hit / queried)) : before?.prefixHitRate;
    // A server of the tenant's own that queues is capped at what it runs (reported-capacity.ts); a
    // shared pool's backends are the pool's to share out.
    const own = this.backends.get(id)!.pool === undefined;
    const limit = this.limits.get(id)?.limit ?? this.backends.get(id)!.maxConcurrency;
    const cap = own ? reportedCapacity(load, this.inFlightOf(id), before?.cap, limit) : undefined;
    this.loads.set(id, { load, at, ...(prefixHitRate === undefined ? {} : { prefixHitRate }), ...(cap === undefined ? {} : { cap }) });
  }

  waiting(id: string, now: number): number {
    const reported = this.loads.get(id);
    return reported && now - reported.at <= LOAD_FRESH_MS ? reported.load.waiting : 0;
  }

  /** The backend's reported load, if it was read within LOAD_FRESH_MS, and how old it is. */
  load(id: string, now: number): (BackendLoad & { ageMs: number; prefixHitRate?: number }) | undefined {
    const reported = this.loads.get(id);
    if (!reported || now - reported.at > LOAD_FRESH_MS) return undefined;
    const { prefixCache: _counters, ...load } = reported.load;
    const rate = reported.prefixHitRate === undefined ? {} : { prefixHitRate: reported.prefixHitRate };
    return { ...load, ...rate, ageMs: Math.max(0, now - reported.at) };
  }

  notBefore(id: string): number | undefined {
    return this.retryAfterUntil.get(id);
  }

  /** The backend asked to be left alone for `retryAfterMs` (capped at MAX_RETRY_AFTER_MS). */
  holdOff(id: string, retryAfterMs: number, now: number): void {
    this.retryAfterUntil.set(id, now + Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
  }

  /**
   * Stores a breaker's snapshot when its state changed since `stateBefore`, or at most once a
   * second otherwise: the state (and its cooldown) must survive a restart; the window counts may lag.
   */
  saveBreaker(id: string, stateBefore: BreakerState | undefined, now: number): void {
    const breaker = this.breakers.get(id);
    if (!breaker) return;
    const state = breaker.stateAt(now);
    if (state === "open" && stateBefore !== "open") this.breakerOpened();
    if (state === stateBefore && now - (this.breakerSavedAt.get(id) ?? 0) < BREAKER_SAVE_MS) return;
    this.breakerSavedAt.set(id, now);
    this.host.saveBreaker(id, breaker.snapshot());
  }
}
