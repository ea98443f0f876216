// The gate's stats, as the admin API, the Prometheus export and the shard merge read them.
import type { SpendKind } from "./spend-ledger";
import type { TenantConfig } from "../../config/schema";
import type { BreakerState } from "./breaker";
import type { LatencySummary, SavedHistogram } from "./histogram";
import { SURFACES, type Counters, type GateMetrics, type SurfaceCounters, type SurfaceName } from "./metrics";
import { PRIORITIES, type BoundedPriorityQueue, type Priority } from "./queue";
import type { TenantPolicies } from "./tenant-policies";
import type { WasteCause } from "./protocol";
import type { RecentSummary } from "./recent";
import type { ActiveAlert } from "./alert-tracker";
import type { GateAlerts } from "./gate-alerts";

export interface BackendStats {
  id: string;
  region: string;
  breaker: BreakerState;
  breakerRetryAfterMs: number;
  window: { successes: number; failures: number };
  inFlight: number;
  maxConcurrency: number;
  /** Attempts it may hold now: maxConcurrency, or the limit learned below it (adaptiveConcurrency). */
  limit: number;
  /** With adaptiveConcurrency: the unloaded TTFT its limit compares against, once seen. */
  baselineTtftMs?: number;
  /** What the backend's server last reported of its own load (its /metrics), when fresh: beside `inFlight`, sluice's own count. */
  reported?: { running: number; waiting: number; kvCacheUsage?: number; prefixHitRate?: number; ageMs: number };
  /** A fleet backend's pool, and the credits this gate holds there and should hold (its fair share): `limit` is at most `credits`. */
  pool?: { id: string; credits: number; target: number };
  /** successes + failures + cancelled + abandoned + inFlight. */
  attempts: number;
  successes: number;
  failures: number;
  /** Attempts stopped because the client went away (or the gate ended the request). */
  cancelled: number;
  /** Attempts that ended without a report: reclaimed from a silent Worker, or settled after an exception. */
  abandoned: number;
  /** Failures where the backend refused sluice's credentials: a misconfigured apiKey while this grows. */
  authFailures: number;
  /** Attempts on it whose first token was late enough to be hedged, and hedges it took. */
  hedged: number;
  hedges: number;
  tokens: number;
  /** Tokens the backend generated that no client got, by cause (see WasteCause). */
  wastedTokens: Record<WasteCause, number>;
  ttftMs: LatencySummary;
  /** With `histograms: true` (a sharded tenant's gates, merged by the Worker). */
  ttftHistogram?: SavedHistogram;
}

export interface RateUsage {
  requests: { perMinute: number; available: number } | null;
  tokens: { perMinute: number; available: number } | null;
}

export interface GateStats {
  tenant: string | null;
  queue: { depth: number; byPriority: Record<Priority, number>; oldestWaitMs: number; drainPerSecond: number };
  inFlight: number;
  /** Of inFlight: background work (batch lines, async generations), bounded by limits.background. */
  backgroundInFlight: number;
  limits: TenantConfig["limits"] | null;
  counters: Counters;
  /** Requests per client API (chat, messages, responses, embeddings): given a slot, and how they ended. */
  surfaces: Record<SurfaceName, SurfaceCounters>;
  /** US dollars spent per model alias, served and wasted, since the gate began (README, "Spend and budgets"). */
  spend: Record<string, Record<SpendKind, number>>;
  retryBudget: { requests: number; retries: number; allowed: number } | null;
  rateLimit: RateUsage | null;
  journal: { entries: number; bytes: number };
  latencyMs: { queue: LatencySummary; total: LatencySummary };
  /** The last minute and the last five (see RecentActivity); a sharded tenant's are its gates' added up, percentiles the worst gate's. */
  recent: RecentSummary;
  backends: BackendStats[];
  /** Alerts whose condition holds now, pending or firing (docs/operations.md, "Alerts"). */
  alerts: ActiveAlert[];
  histograms?: { queue: SavedHistogram; total: SavedHistogram };
}

/** What the stats are read from. */
export interface StatsSources {
  tenant: string | null;
  policies: TenantPolicies;
  queue: BoundedPriorityQueue<unknown>;
  inFlight: number;
  backgroundInFlight: number;
  drainPerSecond: number;
  metrics: GateMetrics;
  journal: { entries: number; bytes: number };
  alerts: GateAlerts;
}

export function buildStats(s: StatsSources, now: number, options: { histograms?: boolean } = {}): GateStats {
  const { policies, metrics } = s;
  const oldest = s.queue.oldestEnqueuedAt();
  return {
    tenant: s.tenant,
    queue: {
      depth: s.queue.size,
      byPriority: Object.fromEntries(PRIORITIES.map((p) => [p, s.queue.sizeOf(p)])) as Record<Priority, number>,
      oldestWaitMs: oldest === undefined ? 0 : now - oldest,
      drainPerSecond: Math.round(s.drainPerSecond * 100) / 100,
    },
    inFlight: s.inFlight,
    backgroundInFlight: s.backgroundInFlight,
    limits: policies.config?.limits ?? null,
    counters: { ...metrics.counters },
    surfaces: Object.fromEntries(SURFACES.map((name) => [name, { ...metrics.surfaces[name] }])) as GateStats["surfaces"],
    spend: Object.fromEntries([...metrics.spend].map(([alias, s]) => [alias, { ...s }])),
    retryBudget: policies.budget?.usage(now) ?? null,
    rateLimit: policies.rateLimit?.usage(now) ?? null,
    journal: s.journal,
    latencyMs: { queue: metrics.queueMs.summary(), total: metrics.totalMs.summary() },
    recent: metrics.recent.summary(now),
    backends: policies.backendList().map((b) => {
      const breaker = policies.breaker(b.id);
      const c = metrics.backendCounters(b.id);
      return {
        id: b.id,
        region: b.region,
        breaker: breaker?.stateAt(now) ?? "closed",
        breakerRetryAfterMs: breaker?.retryAfterMs(now) ?? 0,
        window: breaker?.counts(now) ?? { successes: 0, failures: 0 },
        inFlight: policies.inFlight(b.id),
        maxConcurrency: b.maxConcurrency,
        limit: policies.capacity(b.id),
        ...baselineOf(policies.learned(b.id)?.baselineMs()),
        ...reportedOf(policies.load(b.id, now)),
        ...(b.pool === undefined
          ? {}
          : { pool: { id: b.pool, credits: policies.credits.held(b.id), target: policies.credits.target(b.id) } }),
        attempts: c?.attempts ?? 0,
        successes: c?.successes ?? 0,
        failures: c?.failures ?? 0,
        cancelled: c?.cancelled ?? 0,
        abandoned: c?.abandoned ?? 0,
        authFailures: c?.authFailures ?? 0,
        hedged: c?.hedged ?? 0,
        hedges: c?.hedges ?? 0,
        tokens: c?.tokens ?? 0,
        wastedTokens: { regenerated: c?.wasted.regenerated ?? 0, restarted: c?.wasted.restarted ?? 0 },
        ttftMs: c?.ttft.summary() ?? { count: 0 },
        ...(options.histograms ? { ttftHistogram: c?.ttft.toJSON() ?? [] } : {}),
      };
    }),
    alerts: s.alerts.active(),
    ...(options.histograms ? { histograms: { queue: metrics.queueMs.toJSON(), total: metrics.totalMs.toJSON() } } : {}),
  };
}

const reportedOf = (load: BackendStats["reported"] | undefined) => (load === undefined ? {} : { reported: load });
const baselineOf = (ms: number | undefined) => (ms === undefined ? {} : { baselineTtftMs: Math.round(ms) });
