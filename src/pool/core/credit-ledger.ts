// The pool's ledger of credits: how many attempts on each shared backend each tenant gate (a
// holder: one gate, one shard of a tenant) may have in flight. A gate reports its demand off the
// request path (sync), and hands its credits out locally; the ledger answers with what it holds
// now and what it should hold (its target: its fair share of the backend, fair-share.ts).
// Invariant: the credits held on a backend never add up to more than its capacity, as long as no
// gate has more in flight than it was granted (an adopted request is counted, whatever it costs).
// Credits of a holder that stops syncing lapse after CREDIT_TTL_MS and go back to the pool.
import { fairShares } from "./fair-share";
import type { BackendLoad } from "./backend-load";

/** A holder that has not synced for this long loses its credits (a gate renews far more often). */
export const CREDIT_TTL_MS = 30_000;

/** A tenant's share of the pool (config/schema.ts PoolShareSchema). */
export interface PoolShare {
  weight: number;
  min: number;
  max?: number;
}

/** What a holder reports of one backend. */
export interface BackendDemand {
  /** Its attempts in flight on the backend now. */
  inFlight: number;
  /** Interactive slots it wants: in flight and waiting. */
  want: number;
  /** Background slots it wants (batch lines, async generations): they get what interactive work leaves. */
  wantBackground: number;
  /**
   * Slots it would keep beyond those, from what nobody wants now: for its next requests, and
   * through a lull between two bursts (see gate/core/pool-credits.ts).
   */
  headroom: number;
  /** Tokens (prompt and completion) its requests on the backend used since its last report. */
  tokens: number;
}

export interface SyncReport {
  holder: string;
  tenant: string;
  share: PoolShare;
  /** By backend id: only the pool's backends count; others are answered with nothing. */
  backends: Record<string, BackendDemand>;
}

export interface BackendGrant {
  /** Attempts it may have in flight now. */
  held: number;
  /** Its fair share: it gives back what it holds above this as its attempts end. */
  target: number;
}

export interface SyncReply {
  backends: Record<string, BackendGrant>;
  /** Its credits lapse this long after it sent the report, unless it syncs again. */
  ttlMs: number;
  /** What the pool's backends last said of their own load, and how long ago (the pool's gate adds these). */
  loads?: Record<string, BackendLoad & { ageMs: number }>;
}

interface Holding {
  held: number;
  inFlight: number;
  want: number;
  wantBackground: number;
  headroom: number;
}

export interface SavedTenant {
  share: PoolShare;
  tokens: Record<string, number>;
}

export interface SavedHolder {
  tenant: string;
  share: PoolShare;
  expiresAt: number;
  backends: Record<string, Holding>;
}

interface Holder {
  tenant: string;
  share: PoolShare;
  expiresAt: number;
  backends: Map<string, Holding>;
}

/** A backend's slots and how they are held, for stats. */
export interface BackendLedgerView {
  id: string;
  capacity: number;
  held: number;
  inFlight: number;
  holders: { holder: string; tenant: string; held: number; target: number; inFlight: number; waiting: number }[];
}

export class CreditLedger {
  private readonly capacities = new Map<string, number>();
  private readonly holders = new Map<string, Holder>();
  /** Each tenant that synced: its share (as last reported) and the tokens served to it per backend. */
  private readonly tenants = new Map<string, { share: PoolShare; tokens: Map<string, number> }>();

  /** Sets a backend's capacity (its maxConcurrency); 0 or less removes it. */
  setBackend(id: string, capacity: number): void {
    if (capacity > 0) this.capacities.set(id, capacity);
    else {
      this.capacities.delete(id);
      for (const h of this.holders.values()) h.backends.delete(id);
    }
  }

  backendIds(): string[] {
    return [...this.capacities.keys()];
  }

  capacity(id: string): number {
    return this.capacities.get(id) ?? 0;
  }

  /** A holder's report: its credits now and its targets (see the file's head). */
  sync(report: SyncReport, now: number): SyncReply {
    this.expire(now);
    const holder = this.holders.get(report.holder) ?? { tenant: report.tenant, share: report.share, expiresAt: 0, backends: new Map() };
    holder.tenant = report.tenant;
    holder.share = report.share;
    holder.expiresAt = now + CREDIT_TTL_MS;
    this.holders.set(report.holder, holder);
    const reply: SyncReply = { backends: {}, ttlMs: CREDIT_TTL_MS };
    for (const [id, demand] of Object.entries(report.backends)) {
      if (!this.capacities.has(id)) continue;
      this.note(report.tenant, report.share, id, demand.tokens);
      const holding = holder.backends.get(id) ?? { held: 0, inFlight: 0, want: 0, wantBackground: 0, headroom: 0 };
      holding.inFlight = demand.inFlight;
      holding.want = demand.want;
      holding.wantBackground = demand.wantBackground;
      holding.headroom = demand.headroom;
      holder.backends.set(id, holding);
      const target = this.targets(id).get(report.holder) ?? 0;
      const othersHeld = this.heldOn(id) - holding.held;
      const available = Math.max(0, this.capacity(id) - othersHeld);
      // What is in flight is held, whatever the target: those attempts occupy the backend.
      holding.held = Math.max(demand.inFlight, Math.min(target, available));
      reply.backends[id] = { held: holding.held, target };
      if (holding.held === 0 && holding.want + holding.wantBackground + holding.headroom === 0) holder.backends.delete(id);
    }
    if (holder.backends.size === 0) this.holders.delete(report.holder);
    return reply;
  }

  /** A holder as stored (the pool keeps its ledger across restarts), or undefined when it holds and wants nothing. */
  saved(key: string): SavedHolder | undefined {
    const h = this.holders.get(key);
    return h && { tenant: h.tenant, share: h.share, expiresAt: h.expiresAt, backends: Object.fromEntries(h.backends) };
  }

  /** Holders and counts found in storage at start-up. */
  restore(holders: Iterable<[string, SavedHolder]>, tenants: Iterable<[string, SavedTenant]>): void {
    for (const [key, h] of holders) this.holders.set(key, { ...h, backends: new Map(Object.entries(h.backends)) });
    for (const [tenant, t] of tenants) this.tenants.set(tenant, { share: t.share, tokens: new Map(Object.entries(t.tokens)) });
  }

  /** A tenant's share and tokens served, as stored. */
  savedTenant(tenant: string): SavedTenant | undefined {
    const t = this.tenants.get(tenant);
    return t && { share: t.share, tokens: Object.fromEntries(t.tokens) };
  }

  /** Forgets everything (the pool is deleted). */
  forgetAll(): void {
    this.capacities.clear();
    this.holders.clear();
    this.tenants.clear();
  }

  /** The tenant is deleted: its holders and its counts go. */
  forgetTenant(tenant: string): void {
    for (const [key, h] of this.holders) if (h.tenant === tenant) this.holders.delete(key);
    this.tenants.delete(tenant);
  }

  /** Credits held on the backend, by all holders. */
  heldOn(id: string): number {
    let sum = 0;
    for (const h of this.holders.values()) sum += h.backends.get(id)?.held ?? 0;
    return sum;
  }

  /** Holders whose credits lapsed lose them. */
  expire(now: number): void {
    for (const [key, h] of this.holders) if (h.expiresAt <= now) this.holders.delete(key);
  }

  view(now: number): BackendLedgerView[] {
    this.expire(now);
    return this.backendIds().map((id) => {
      const targets = this.targets(id);
      const holders = [...this.holders]
        .filter(([, h]) => h.backends.has(id))
        .map(([key, h]) => {
          const b = h.backends.get(id)!;
          const waiting = Math.max(0, b.want + b.wantBackground - b.inFlight);
          return { holder: key, tenant: h.tenant, held: b.held, target: targets.get(key) ?? 0, inFlight: b.inFlight, waiting };
        });
      return {
        id,
        capacity: this.capacity(id),
        held: holders.reduce((s, h) => s + h.held, 0),
        inFlight: holders.reduce((s, h) => s + h.inFlight, 0),
        holders,
      };
    });
  }

  /** Tokens served per tenant (summed over the pool's backends). */
  tokensByTenant(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tenant, t] of this.tenants)
      out.set(
        tenant,
        [...t.tokens.values()].reduce((a, b) => a + b, 0),
      );
    return out;
  }

  /** Each tenant's share, as it last reported it. */
  shares(): Map<string, PoolShare> {
    return new Map([...this.tenants].map(([tenant, t]) => [tenant, t.share]));
  }

  /**
   * Each holder's fair share of the backend, in three passes over what is left: interactive demand,
   * divided among tenants by weight (within their min and max); then background demand; then
   * headroom. A tenant's share is divided among its holders (shards) by what each wants.
   */
  private targets(id: string): Map<string, number> {
    const byTenant = new Map<string, { share: PoolShare; holders: [string, Holding][] }>();
    for (const [key, h] of this.holders) {
      const b = h.backends.get(id);
      if (!b) continue;
      const t = byTenant.get(h.tenant) ?? { share: h.share, holders: [] };
      t.holders.push([key, b]);
      byTenant.set(h.tenant, t);
    }
    const targets = new Map<string, number>();
    const given = new Map<string, number>();
    let left = this.capacity(id);
    const passes: [(b: Holding) => number, boolean][] = [
      [(b) => b.want, true],
      [(b) => b.wantBackground, false],
      [(b) => b.headroom, false],
    ];
    for (const [want, floors] of passes) {
      const shares = fairShares(
        left,
        [...byTenant].map(([tenant, t]) => ({
          key: tenant,
          weight: t.share.weight,
          want: t.holders.reduce((s, [, b]) => s + want(b), 0),
          // The tenant's min applies to its interactive demand; its max to everything it holds.
          ...(floors ? { min: t.share.min } : {}),
          max: (t.share.max ?? Infinity) - (given.get(tenant) ?? 0),
        })),
      );
      for (const [tenant, t] of byTenant) {
        const total = shares.get(tenant)!;
        left -= total;
        given.set(tenant, (given.get(tenant) ?? 0) + total);
        const split = fairShares(
          total,
          t.holders.map(([key, b]) => ({ key, weight: 1, want: want(b) })),
        );
        for (const [key] of t.holders) targets.set(key, (targets.get(key) ?? 0) + split.get(key)!);
      }
    }
    return targets;
  }

  /** Notes the tenant's share and counts the tokens it was served on the backend. */
  private note(tenant: string, share: PoolShare, backend: string, tokens: number): void {
    const t = this.tenants.get(tenant) ?? { share, tokens: new Map<string, number>() };
    t.share = share;
    if (tokens > 0) t.tokens.set(backend, (t.tokens.get(backend) ?? 0) + tokens);
    this.tenants.set(tenant, t);
  }
}
