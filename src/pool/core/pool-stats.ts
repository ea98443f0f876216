// What the operator sees of a pool: each backend's capacity, credits held and attempts in flight,
// and each tenant's share of the pool against its weight, what it waits for and tokens served.
import type { CreditLedger } from "./credit-ledger";
import type { BackendLoad } from "./backend-load";

export interface PoolBackendStats {
  id: string;
  capacity: number;
  /** Credits the tenant gates hold on it (never more than capacity, but for adopted requests). */
  held: number;
  inFlight: number;
  /** Slots its holders want beyond what is in flight. */
  waiting: number;
  /** What its server last said of its own load (its /metrics), when fresh. */
  reported?: BackendLoad & { ageMs: number };
}

export interface PoolTenantStats {
  tenant: string;
  weight: number;
  min: number;
  max: number | null;
  held: number;
  /** Its fair share now, summed over the pool's backends. */
  target: number;
  inFlight: number;
  waiting: number;
  /** Share of the pool's capacity it holds (0-1). */
  share: number;
  /** Share its weight entitles it to among the tenants holding or wanting slots now (0-1). */
  weightShare: number;
  /** Prompt and completion tokens of its requests on the pool's backends. */
  tokens: number;
}

export interface PoolStats {
  pool: string;
  capacity: number;
  held: number;
  inFlight: number;
  backends: PoolBackendStats[];
  tenants: PoolTenantStats[];
}

export function poolStats(
  pool: string,
  ledger: CreditLedger,
  loads: Readonly<Record<string, BackendLoad & { ageMs: number }>>,
  now: number,
): PoolStats {
  const views = ledger.view(now);
  const shares = ledger.shares();
  const tokens = ledger.tokensByTenant();
  const tenants = new Map<string, PoolTenantStats>();
  const tenant = (name: string) => {
    let t = tenants.get(name);
    if (!t) {
      const s = shares.get(name);
      t = {
        tenant: name,
        weight: s?.weight ?? 1,
        min: s?.min ?? 0,
        max: s?.max ?? null,
        held: 0,
        target: 0,
        inFlight: 0,
        waiting: 0,
        share: 0,
        weightShare: 0,
        tokens: tokens.get(name) ?? 0,
      };
      tenants.set(name, t);
    }
    return t;
  };
  for (const v of views)
    for (const h of v.holders) {
      const t = tenant(h.tenant);
      t.held += h.held;
      t.target += h.target;
      t.inFlight += h.inFlight;
      t.waiting += h.waiting;
    }
  for (const name of shares.keys()) tenant(name);
  const capacity = views.reduce((s, v) => s + v.capacity, 0);
  const active = [...tenants.values()].filter((t) => t.held + t.waiting > 0);
  const weights = active.reduce((s, t) => s + t.weight, 0);
  for (const t of tenants.values()) {
    t.share = capacity === 0 ? 0 : t.held / capacity;
    t.weightShare = weights === 0 || t.held + t.waiting === 0 ? 0 : t.weight / weights;
  }
  return {
    pool,
    capacity,
    held: views.reduce((s, v) => s + v.held, 0),
    inFlight: views.reduce((s, v) => s + v.inFlight, 0),
    backends: views.map((v) => ({
      id: v.id,
      capacity: v.capacity,
      held: v.held,
      inFlight: v.inFlight,
      waiting: v.holders.reduce((s, h) => s + h.waiting, 0),
      ...(Object.hasOwn(loads, v.id) ? { reported: loads[v.id] } : {}),
    })),
    tenants: [...tenants.values()].sort((a, b) => (a.tenant < b.tenant ? -1 : 1)),
  };
}
