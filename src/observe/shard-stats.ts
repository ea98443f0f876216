// One view of a sharded tenant (see admission/gate-naming.ts): the stats of its gates added up. Counts and
// gauges are summed; percentiles come from the gates' histograms added bucket by bucket (a p99 of
// p99s would mean nothing); limits are the tenant's whole limits; a backend's breaker shows the
// state most gates hold it in (ties go to the less healthy state), and `shards` keeps each gate's
// own stats.
import type { BreakerState } from "../gate/core/breaker";
import type { TenantConfig } from "../config/schema";
import { LatencyHistogram, type LatencySummary, type SavedHistogram } from "../gate/core/histogram";
import type { GateStats, RateUsage } from "../gate/core/stats";
import { mergeRecent } from "../gate/core/recent";
import { SURFACES } from "../gate/core/metrics";

export type ShardedStats = GateStats & { shards: GateStats[] };

const HEALTH: readonly BreakerState[] = ["closed", "half-open", "open"];

export function mergeShardStats(parts: GateStats[], config: TenantConfig): ShardedStats {
  const first = parts[0]!;
  const sum = (pick: (s: GateStats) => number) => parts.reduce((n, s) => n + pick(s), 0);
  return {
    tenant: first.tenant,
    queue: {
      depth: sum((s) => s.queue.depth),
      byPriority: sumRecords(parts.map((s) => s.queue.byPriority)),
      oldestWaitMs: Math.max(...parts.map((s) => s.queue.oldestWaitMs)),
      drainPerSecond: Math.round(sum((s) => s.queue.drainPerSecond) * 100) / 100,
    },
    inFlight: sum((s) => s.inFlight),
    backgroundInFlight: sum((s) => s.backgroundInFlight),
    limits: config.limits,
    counters: sumRecords(parts.map((s) => s.counters)) as GateStats["counters"],
    surfaces: Object.fromEntries(SURFACES.map((name) => [name, sumRecords(parts.map((s) => s.surfaces[name]))])) as GateStats["surfaces"],
    spend: mergedSpend(parts.map((s) => s.spend)),
    retryBudget: sumPresent(parts.map((s) => s.retryBudget)),
    rateLimit: mergedRateLimit(parts.map((s) => s.rateLimit)),
    journal: { entries: sum((s) => s.journal.entries), bytes: sum((s) => s.journal.bytes) },
    latencyMs: {
      queue: mergedSummary(parts.map((s) => s.histograms?.queue)),
      total: mergedSummary(parts.map((s) => s.histograms?.total)),
    },
    recent: mergeRecent(parts.map((s) => s.recent)),
    // Each gate watches its share: an alert says which gate holds it.
    alerts: parts.flatMap((s, shard) => s.alerts.map((a) => ({ ...a, shard }))),
    backends: config.backends.map((b) => {
      const rows = parts.map((s) => s.backends.find((x) => x.id === b.id)).filter((x) => x !== undefined);
      const add = (pick: (x: (typeof rows)[number]) => number) => rows.reduce((n, x) => n + pick(x), 0);
      return {
        id: b.id,
        region: b.region,
        breaker: mostHeld(rows.map((x) => x.breaker)),
        breakerRetryAfterMs: Math.max(0, ...rows.map((x) => x.breakerRetryAfterMs)),
        window: { successes: add((x) => x.window.successes), failures: add((x) => x.window.failures) },
        inFlight: add((x) => x.inFlight),
        maxConcurrency: b.maxConcurrency,
        limit: add((x) => x.limit),
        ...(b.pool === undefined
          ? {}
          : { pool: { id: b.pool, credits: add((x) => x.pool?.credits ?? 0), target: add((x) => x.pool?.target ?? 0) } }),
        attempts: add((x) => x.attempts),
        successes: add((x) => x.successes),
        failures: add((x) => x.failures),
        cancelled: add((x) => x.cancelled),
        abandoned: add((x) => x.abandoned),
        authFailures: add((x) => x.authFailures),
        hedged: add((x) => x.hedged),
        hedges: add((x) => x.hedges),
        tokens: add((x) => x.tokens),
        wastedTokens: {
          regenerated: add((x) => x.wastedTokens.regenerated),
          restarted: add((x) => x.wastedTokens.restarted),
        },
        ttftMs: mergedSummary(rows.map((x) => x.ttftHistogram)),
        ttftHistogram: mergedHistogram(rows.map((x) => x.ttftHistogram)),
      };
    }),
    shards: parts.map(withoutHistograms),
    histograms: {
      queue: mergedHistogram(parts.map((s) => s.histograms?.queue)),
      total: mergedHistogram(parts.map((s) => s.histograms?.total)),
    },
  };
}

/** Stats as the JSON API shows them: percentiles, not the histograms behind them (Prometheus gets those). */
export function withoutHistograms<T extends GateStats>({ histograms: _h, ...stats }: T): Omit<T, "histograms"> {
  return { ...stats, backends: stats.backends.map(({ ttftHistogram: _t, ...b }) => b) };
}

/** Each limit's shares added up: the tenant's limit, and what all its gates have left of it. */
function mergedRateLimit(parts: Array<RateUsage | null>): RateUsage | null {
  const present = parts.filter((p) => p !== null);
  if (present.length === 0) return null;
  return { requests: sumPresent(present.map((u) => u.requests)), tokens: sumPresent(present.map((u) => u.tokens)) };
}

/** The records that are there, added up field by field; null when none is. */
function sumPresent<T extends Record<string, number>>(records: Array<T | null>): T | null {
  const present = records.filter((r) => r !== null);
  return present.length ? (sumRecords(present) as T) : null;
}

function mergedSpend(parts: Array<GateStats["spend"]>): GateStats["spend"] {
  const out: GateStats["spend"] = {};
  for (const part of parts)
    for (const [alias, s] of Object.entries(part ?? {})) {
      const sum = Object.hasOwn(out, alias) ? out[alias]! : (out[alias] = { served: 0, wasted: 0 });
      sum.served += s.served;
      sum.wasted += s.wasted;
    }
  return out;
}

function sumRecords(records: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Histograms added up, bucket by bucket (and their sums). */
function mergedHistogram(saved: Array<SavedHistogram | undefined>): SavedHistogram {
  const buckets = new Map<number, number>();
  for (const h of saved) for (const [bucket, n] of h ?? []) buckets.set(bucket, (buckets.get(bucket) ?? 0) + n);
  return [...buckets];
}

function mergedSummary(saved: Array<SavedHistogram | undefined>): LatencySummary {
  const merged = new LatencyHistogram();
  merged.restore(mergedHistogram(saved));
  return merged.summary();
}

function mostHeld(states: BreakerState[]): BreakerState {
  if (states.length === 0) return "closed";
  let best: BreakerState = "closed";
  let bestCount = -1;
  for (const state of HEALTH) {
    const count = states.filter((s) => s === state).length;
    if (count >= bestCount) [best, bestCount] = [state, count];
  }
  return best;
}
