import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TenantConfigSchema } from "../config/schema";
import type { BreakerState } from "../gate/core/breaker";
import { LatencyHistogram } from "../gate/core/histogram";
import { GateMetrics } from "../gate/core/metrics";
import type { BackendStats, GateStats } from "../gate/core/stats";
import { mergeShardStats } from "./shard-stats";

const config = TenantConfigSchema.parse({
  backends: [
    { id: "a", region: "us-east", url: "http://127.0.0.1:1/a", model: "m", maxConcurrency: 10 },
    { id: "b", region: "eu-west", url: "http://127.0.0.1:1/b", model: "m", maxConcurrency: 20 },
  ],
  models: { chat: { route: ["a", "b"] } },
  limits: { maxConcurrency: 40 },
});

const histogramOf = (samples: number[]) => {
  const h = new LatencyHistogram();
  for (const ms of samples) h.record(ms);
  return h;
};

function backend(id: string, breaker: BreakerState, n: number, ttft: number[] = []): BackendStats {
  const h = histogramOf(ttft);
  return {
    id,
    region: id === "a" ? "us-east" : "eu-west",
    breaker,
    breakerRetryAfterMs: breaker === "open" ? n * 100 : 0,
    window: { successes: n, failures: 1 },
    inFlight: n,
    maxConcurrency: 99,
    limit: n + 1,
    attempts: n * 2,
    successes: n,
    failures: 1,
    cancelled: n,
    abandoned: 1,
    authFailures: n,
    hedged: n,
    hedges: 2 * n,
    tokens: n * 10,
    wastedTokens: { regenerated: n, restarted: 2 * n },
    ttftMs: h.summary(),
    ttftHistogram: h.toJSON(),
  };
}

/** One gate's stats as `stats({ histograms: true })` gives them. */
function shard(n: number, options: { queueMs?: number[]; backends?: BackendStats[]; oldestWaitMs?: number } = {}): GateStats {
  const metrics = new GateMetrics(() => {});
  metrics.count("completed", n - 1);
  metrics.countFor("responses", "completed");
  metrics.count("rejectedQueueFull", 1);
  const queue = histogramOf(options.queueMs ?? []);
  return {
    tenant: "acme",
    queue: {
      depth: n,
      byPriority: { high: 1, normal: n - 1, low: 0, background: 0 },
      oldestWaitMs: options.oldestWaitMs ?? 0,
      drainPerSecond: 0.125,
    },
    inFlight: n,
    backgroundInFlight: n - 1,
    limits: { ...config.limits, maxConcurrency: 20 },
    counters: { ...metrics.counters },
    surfaces: metrics.surfaces,
    spend: { chat: { served: n, wasted: 1 } },
    retryBudget: { requests: n * 10, retries: n, allowed: n * 2 },
    rateLimit: { requests: { perMinute: 300, available: 300 - n }, tokens: null },
    journal: { entries: n, bytes: n * 100 },
    alerts: [{ key: "budget", rule: "budget", kind: "retry_budget_exhausted", state: "firing", since: n }],
    latencyMs: { queue: queue.summary(), total: { count: 0 } },
    recent: metrics.recent.summary(0),
    backends: options.backends ?? [backend("a", "closed", n), backend("b", "closed", n)],
    histograms: { queue: queue.toJSON(), total: [] },
  };
}

describe("mergeShardStats", () => {
  it("adds up counts and gauges, keeps the longest wait, and reports the tenant's whole limits", () => {
    const merged = mergeShardStats([shard(2, { oldestWaitMs: 40 }), shard(3, { oldestWaitMs: 900 })], config);
    expect(merged.queue).toEqual({
      depth: 5,
      byPriority: { high: 2, normal: 3, low: 0, background: 0 },
      oldestWaitMs: 900,
      drainPerSecond: 0.25,
    });
    expect(merged.inFlight).toBe(5);
    expect(merged.backgroundInFlight).toBe(3);
    expect(merged.counters.completed).toBe(5);
    expect(merged.counters.rejectedQueueFull).toBe(2);
    expect(merged.surfaces.responses.completed).toBe(2);
    expect(merged.surfaces.chat).toMatchObject({ admitted: 0, completed: 0 });
    expect(merged.spend).toEqual({ chat: { served: 5, wasted: 2 } });
    expect(merged.retryBudget).toEqual({ requests: 50, retries: 5, allowed: 10 });
    expect(merged.rateLimit).toEqual({ requests: { perMinute: 600, available: 595 }, tokens: null });
    expect(merged.journal).toEqual({ entries: 5, bytes: 500 });
    expect(merged.limits).toEqual(config.limits);
    expect(merged.limits?.maxConcurrency).toBe(40);
  });

  it("lists every gate's alerts, each with the shard that holds it", () => {
    const merged = mergeShardStats([shard(2), shard(3)], config);
    expect(merged.alerts.map((a) => [a.shard, a.since])).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });

  it("reports no retry budget or rate limit when no gate has one", () => {
    const none = { ...shard(1), retryBudget: null, rateLimit: null };
    const merged = mergeShardStats([none, { ...none }], config);
    expect(merged.retryBudget).toBeNull();
    expect(merged.rateLimit).toBeNull();
  });

  it("adds a backend's rows across gates, with its configured capacity, and counts a gate that lacks the row as nothing", () => {
    const merged = mergeShardStats([shard(2), shard(3, { backends: [backend("a", "closed", 3)] })], config);
    const [a, b] = merged.backends;
    expect(a).toMatchObject({
      id: "a",
      region: "us-east",
      inFlight: 5,
      attempts: 10,
      cancelled: 5,
      abandoned: 2,
      tokens: 50,
      authFailures: 5,
      hedged: 5,
      hedges: 10,
      maxConcurrency: 10,
      // Each gate's own limit (learned or its share of maxConcurrency), added up.
      limit: 7,
      wastedTokens: { regenerated: 5, restarted: 10 },
    });
    expect(a?.window).toEqual({ successes: 5, failures: 2 });
    expect(b).toMatchObject({ id: "b", inFlight: 2, attempts: 4, maxConcurrency: 20 });
  });

  it("shows the breaker state most gates hold, ties going to the less healthy state", () => {
    const withA = (...states: BreakerState[]) =>
      mergeShardStats(
        states.map((s, i) => shard(1, { backends: [backend("a", s, i + 1)] })),
        config,
      ).backends[0];
    expect(withA("closed", "closed", "open")?.breaker).toBe("closed");
    expect(withA("open", "open", "closed")?.breaker).toBe("open");
    expect(withA("closed", "half-open")?.breaker).toBe("half-open");
    expect(withA("half-open", "open")?.breaker).toBe("open");
    expect(withA("closed", "open", "open")?.breakerRetryAfterMs).toBe(300);
    expect(mergeShardStats([shard(1, { backends: [] })], config).backends[0]?.breaker).toBe("closed");
  });

  it("computes percentiles over all gates' samples, not as a percentile of percentiles", () => {
    const fast = Array.from({ length: 99 }, () => 10);
    const merged = mergeShardStats([shard(1, { queueMs: fast }), shard(1, { queueMs: [5_000] })], config);
    expect(merged.latencyMs.queue).toEqual(histogramOf([...fast, 5_000]).summary());
    expect(merged.latencyMs.queue.count).toBe(100);
    expect(merged.latencyMs.queue.p50).toBeLessThan(20);
  });

  it("merged percentiles equal one histogram of every sample, however the samples are split over gates", () => {
    const samples = fc.array(fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 50 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(samples, (perShard) => {
        const merged = mergeShardStats(
          perShard.map((ms) => shard(1, { queueMs: ms, backends: [backend("a", "closed", 1, ms)] })),
          config,
        );
        const whole = histogramOf(perShard.flat()).summary();
        expect(merged.latencyMs.queue).toEqual(whole);
        expect(merged.backends[0]?.ttftMs).toEqual(whole);
      }),
      { numRuns: 1_000, seed: 20261201 },
    );
  });

  it("keeps each gate's own stats under shards, without the raw histograms", () => {
    const merged = mergeShardStats([shard(2, { queueMs: [5] }), shard(3)], config);
    expect(merged.shards.map((s) => s.inFlight)).toEqual([2, 3]);
    for (const s of merged.shards) {
      expect(s).not.toHaveProperty("histograms");
      for (const b of s.backends) expect(b).not.toHaveProperty("ttftHistogram");
    }
  });
});
