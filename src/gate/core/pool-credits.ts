// A gate's credits on shared backends (fleet backends, owned by their pool's PoolGate: see
// pool/core/credit-ledger.ts). The gate hands its credits out locally, as slots of those backends,
// so a request takes no extra round trip; off the request path it reports its demand to each pool
// and adopts what the pool grants (sync). Demand is taken at its peak since the last report and over
// PEAK_MS, so a tenant keeps the credits of a steady load instead of giving one back each time a
// report falls between two of its requests.
import type { BackendConfig } from "../../config/schema";
import type { BackendDemand, PoolShare, SyncReply, SyncReport } from "../../pool/core/credit-ledger";
import type { Lease, LeaseTable } from "./leases";
import type { BoundedPriorityQueue, QueueEntry } from "./queue";
import type { TenantPolicies } from "./tenant-policies";
import type { Waiter } from "./tickets";

/** How often a gate that holds or wants credits syncs with their pool, at least. */
export const RENEW_MS = 1_000;
/** Demand is taken as its highest over this long (and since the last report). */
export const PEAK_MS = 1_000;
/** Credits stop being used this long before the pool would let them lapse (clocks and latency). */
const LAPSE_MARGIN_MS = 5_000;

interface Credit {
  held: number;
  target: number;
}

/** Slots wanted on a backend now: in flight and waiting, interactive and background. */
export interface Demand {
  inFlight: number;
  interactive: number;
  background: number;
  /** The most attempts it had in flight since the last report (its demand between two samples). */
  highWater?: number;
}

export class PoolCredits {
  private readonly credits = new Map<string, Credit>();
  private readonly peaks = new Map<string, { interactive: number; at: number }>();
  /** Tokens served on each fleet backend since the last report that reached its pool. */
  private readonly tokens = new Map<string, number>();
  /** When each pool's credits lapse (gate-local time). */
  private readonly validUntil = new Map<string, number>();

  /** Attempts the gate may have in flight on the fleet backend. */
  held(backendId: string): number {
    return this.credits.get(backendId)?.held ?? 0;
  }

  /**
   * Attempts the gate may start up to: its credits, and no more than its fair share while it holds
   * more (it gives the rest back as its attempts end).
   */
  usable(backendId: string): number {
    const c = this.credits.get(backendId);
    return c ? Math.min(c.held, c.target) : 0;
  }

  target(backendId: string): number {
    return this.credits.get(backendId)?.target ?? 0;
  }

  served(backendId: string, tokens: number): void {
    if (tokens > 0) this.tokens.set(backendId, (this.tokens.get(backendId) ?? 0) + tokens);
  }

  /**
   * The report for one pool: each of its backends' interactive demand at its peak over PEAK_MS (so a
   * tenant does not give back, between two requests, the credit its next one needs), background
   * demand now, and a little headroom for a growing load.
   */
  report(
    who: { holder: string; tenant: string; share: PoolShare },
    backends: readonly BackendConfig[],
    demand: (id: string) => Demand,
    cap: number,
    now: number,
  ): SyncReport {
    const out: Record<string, BackendDemand> = {};
    for (const b of backends) {
      const d = demand(b.id);
      const sample = Math.max(d.interactive, (d.highWater ?? 0) - d.background);
      const peak = this.peaks.get(b.id);
      if (!peak || now - peak.at > PEAK_MS || sample >= peak.interactive) this.peaks.set(b.id, { interactive: sample, at: now });
      const want = Math.min(cap, Math.max(sample, this.peaks.get(b.id)!.interactive));
      // The pool gives headroom only from what nobody wants.
      const growth = want > 0 ? Math.max(1, Math.ceil(want / 8)) : 0;
      out[b.id] = {
        inFlight: d.inFlight,
        want,
        wantBackground: Math.min(cap, d.background),
        headroom: Math.min(cap - want, growth),
        tokens: this.tokens.get(b.id) ?? 0,
      };
      this.tokens.delete(b.id);
    }
    return { ...who, backends: out };
  }

  /**
   * The pool's answer to `report`, sent at `sentAt`: a backend the report named and the answer does
   * not (the pool no longer has it) holds no credits. Says whether the gate is still short: it
   * got no more credits and holds fewer than its share of some backend (others' attempts must end first).
   */
  granted(pool: string, report: SyncReport, reply: SyncReply, sentAt: number): boolean {
    let grew = false;
    let short = false;
    for (const id of Object.keys(report.backends)) {
      const grant = Object.hasOwn(reply.backends, id) ? reply.backends[id]! : { held: 0, target: 0 };
      if (grant.held > this.held(id)) grew = true;
      if (grant.held < grant.target) short = true;
      this.credits.set(id, { ...grant });
    }
    this.validUntil.set(pool, sentAt + reply.ttlMs - LAPSE_MARGIN_MS);
    return short && !grew;
  }

  /**
   * A report did not reach its pool: its tokens are counted in the next, and past the lapse the
   * gate starts nothing more on the pool's backends (the pool gives the credits to others).
   */
  unreachable(pool: string, report: SyncReport, backendIds: readonly string[], now: number): void {
    for (const [id, d] of Object.entries(report.backends)) this.served(id, d.tokens);
    if (now < (this.validUntil.get(pool) ?? 0)) return;
    for (const id of backendIds) this.credits.delete(id);
  }

  /** Whether the gate must keep syncing with the pool: it holds credits there, wants some, or did lately. */
  active(backendIds: readonly string[], demand: (id: string) => Demand, now: number): boolean {
    return backendIds.some((id) => {
      const d = demand(id);
      const peak = this.peaks.get(id);
      const recent = peak !== undefined && now - peak.at <= PEAK_MS && peak.interactive > 0;
      return this.held(id) > 0 || d.inFlight + d.interactive + d.background > 0 || recent || this.tokens.has(id);
    });
  }
}

/**
 * Each fleet backend's demand: attempts in flight on it, and each waiter counted once, on the first
 * fleet backend of its plan with room for it (its capacity, `capacityOf`, less what is in flight
 * and what waiters before it took), or on its first fleet backend when none has: the way its
 * attempt would be placed, so a tenant asks every backend of its routes for what it would use there.
 */
export function fleetDemand(
  capacityOf: (backendId: string) => number | undefined,
  leases: Iterable<Lease>,
  waiting: Iterable<QueueEntry<Waiter>>,
): Map<string, Demand> {
  const demand = new Map<string, Demand>();
  const of = (id: string) => {
    let d = demand.get(id);
    if (!d) demand.set(id, (d = { inFlight: 0, interactive: 0, background: 0 }));
    return d;
  };
  for (const lease of leases) {
    if (lease.backendId === null || capacityOf(lease.backendId) === undefined) continue;
    const d = of(lease.backendId);
    d.inFlight++;
    if (lease.background) d.background++;
    else d.interactive++;
  }
  for (const entry of waiting) {
    const fleet = entry.value.plan.filter((e) => capacityOf(e.backendId) !== undefined);
    if (fleet.length === 0) continue;
    const room = fleet.find((e) => {
      const d = demand.get(e.backendId);
      return (d ? d.interactive + d.background : 0) < capacityOf(e.backendId)!;
    });
    const d = of((room ?? fleet[0]!).backendId);
    if (entry.priority === "background") d.background++;
    else d.interactive++;
  }
  return demand;
}

/** What of the gate core a pool report reads. */
export interface ReportSources {
  policies: Pick<TenantPolicies, "credits" | "pools" | "share" | "config">;
  leases: Pick<LeaseTable, "all" | "takeHighWater">;
  tickets: { queue: Pick<BoundedPriorityQueue<Waiter>, "entries"> };
}

/**
 * The reports for the pools whose credits the gate holds or wants, `who` being this gate; none
 * when its tenant has no fleet backends.
 */
export function poolReports(
  core: ReportSources,
  who: { holder: string; tenant: string },
  now: number,
): { pool: string; report: SyncReport }[] {
  const { credits, pools } = core.policies;
  if (pools.size === 0) return [];
  // The most slots the gate could use: its share of the tenant's maxConcurrency.
  const cap = core.policies.config?.limits.maxConcurrency ?? 0;
  const capacities = new Map([...pools.values()].flatMap((bs) => bs.map((b) => [b.id, b.maxConcurrency] as const)));
  const demand = fleetDemand((id) => capacities.get(id), core.leases.all(), core.tickets.queue.entries());
  const of = (id: string) => demand.get(id) ?? { inFlight: 0, interactive: 0, background: 0 };
  const reporting = (id: string) => ({ ...of(id), highWater: core.leases.takeHighWater(id) });
  const reports: { pool: string; report: SyncReport }[] = [];
  for (const [pool, backends] of pools) {
    const ids = backends.map((b) => b.id);
    if (credits.active(ids, of, now))
      reports.push({ pool, report: credits.report({ ...who, share: core.policies.share(pool) }, backends, reporting, cap, now) });
  }
  return reports;
}
