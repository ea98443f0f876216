import { describe, expect, it } from "vitest";
import { GateMetrics } from "../gate/core/metrics";
import { prometheusText, type GateStats } from "./prometheus";

function sampleStats(): GateStats {
  const metrics = new GateMetrics(() => {});
  metrics.count("completed", 3);
  metrics.countFor("messages", "admitted");
  metrics.countFor("messages", "partial");
  metrics.count("rejectedQueueFull", 2);
  metrics.queued(12, 0);
  metrics.queued(700, 0);
  metrics.queued(3, 0);
  return {
    tenant: "acme",
    queue: { depth: 2, byPriority: { high: 0, normal: 2, low: 0, background: 0 }, oldestWaitMs: 40, drainPerSecond: 1.5 },
    inFlight: 4,
    backgroundInFlight: 3,
    limits: null,
    counters: { ...metrics.counters },
    surfaces: metrics.surfaces,
    spend: { chat: { served: 1.5, wasted: 0.25 } },
    retryBudget: { requests: 10, retries: 1, allowed: 5 },
    rateLimit: { requests: { perMinute: 600, available: 598 }, tokens: null },
    journal: { entries: 7, bytes: 2048 },
    latencyMs: { queue: metrics.queueMs.summary(), total: metrics.totalMs.summary() },
    recent: metrics.recent.summary(0),
    alerts: [],
    histograms: { queue: metrics.queueMs.toJSON(), total: metrics.totalMs.toJSON() },
    backends: [
      {
        id: "use1-a",
        region: 'us "east"\\1',
        breaker: "half-open",
        breakerRetryAfterMs: 0,
        window: { successes: 1, failures: 3 },
        inFlight: 2,
        maxConcurrency: 8,
        limit: 6,
        baselineTtftMs: 40,
        attempts: 12,
        successes: 6,
        failures: 3,
        cancelled: 1,
        abandoned: 0,
        authFailures: 2,
        hedged: 4,
        hedges: 1,
        tokens: 120,
        wastedTokens: { regenerated: 7, restarted: 0 },
        ttftMs: { count: 6, p50: 45, p95: 90, p99: 90 },
      },
    ],
  };
}

describe("prometheusText", () => {
  const text = prometheusText([sampleStats()]);
  const lines = text.split("\n");

  it("exports every gate counter as a counter family with its help", () => {
    expect(lines).toContain("# TYPE sluice_completed_total counter");
    expect(lines).toContain('sluice_completed_total{tenant="acme"} 3');
    expect(lines).toContain('sluice_rejected_queue_full_total{tenant="acme"} 2');
    expect(lines).toContain('sluice_queued_twins_total{tenant="acme"} 0');
  });

  it("counts requests per surface: given a slot, and how they ended", () => {
    expect(lines).toContain("# TYPE sluice_surface_requests_total counter");
    expect(lines).toContain('sluice_spend_usd_total{tenant="acme",model="chat",kind="served"} 1.5');
    expect(lines).toContain('sluice_spend_usd_total{tenant="acme",model="chat",kind="wasted"} 0.25');
    expect(lines).toContain('sluice_surface_requests_total{tenant="acme",surface="messages",outcome="admitted"} 1');
    expect(lines).toContain('sluice_surface_requests_total{tenant="acme",surface="messages",outcome="partial"} 1');
    expect(lines).toContain('sluice_surface_requests_total{tenant="acme",surface="chat",outcome="served_stale"} 0');
    expect(lines.filter((l) => l.startsWith("sluice_surface_requests_total{"))).toHaveLength(4 * 7);
  });

  it("exports a backend's learned concurrency limit beside its maxConcurrency", () => {
    expect(lines).toContain('sluice_backend_concurrency_limit{tenant="acme",backend="use1-a",region="us \\"east\\"\\\\1"} 6');
  });

  it("exports gauges, percentiles and per-backend families with labels", () => {
    expect(lines).toContain('sluice_queue_depth{tenant="acme",priority="normal"} 2');
    expect(lines).toContain('sluice_in_flight{tenant="acme"} 4');
    expect(lines).toContain('sluice_background_in_flight{tenant="acme"} 3');
    expect(lines).toContain('sluice_rate_limit_per_minute{tenant="acme",limit="requests"} 600');
    expect(lines).toContain('sluice_rate_limit_available{tenant="acme",limit="requests"} 598');
    // A limit the tenant does not set has no samples.
    expect(lines.some((l) => l.includes('limit="tokens"'))).toBe(false);
    // Percentiles come from the histograms (histogram_quantile): no gauge carries a quantile label, no name a unit abbreviation.
    expect(lines.some((l) => l.includes("quantile=") || /^sluice_\w+_ms[{ ]/.test(l))).toBe(false);
    const backend = 'tenant="acme",backend="use1-a",region="us \\"east\\"\\\\1"';
    expect(lines).toContain(`sluice_backend_breaker_state{${backend},state="half-open"} 1`);
    expect(lines).toContain(`sluice_backend_breaker_state{${backend},state="open"} 0`);
    expect(lines).toContain(`sluice_backend_failures_total{${backend}} 3`);
    // Attempts add up: successes + failures + cancelled + abandoned + in flight.
    expect(lines).toContain(`sluice_backend_attempts_total{${backend}} 12`);
    expect(lines).toContain(`sluice_backend_cancelled_total{${backend}} 1`);
    expect(lines).toContain(`sluice_backend_abandoned_total{${backend}} 0`);
    expect(lines).toContain(`sluice_backend_auth_failures_total{${backend}} 2`);
    expect(lines).toContain(`sluice_backend_tokens_total{${backend}} 120`);
    expect(lines).toContain(`sluice_backend_wasted_tokens_total{${backend},cause="regenerated"} 7`);
    expect(lines).toContain(`sluice_backend_wasted_tokens_total{${backend},cause="restarted"} 0`);
    expect(lines).toContain(`sluice_backend_hedged_total{${backend}} 4`);
    expect(lines).toContain(`sluice_backend_hedges_total{${backend}} 1`);
  });

  it("exports latencies as histograms a scraper can window: cumulative buckets in seconds, +Inf, sum and count", () => {
    expect(lines).toContain("# TYPE sluice_queue_wait_seconds histogram");
    const bucket = (le: string) =>
      Number(lines.find((l) => l.startsWith(`sluice_queue_wait_seconds_bucket{tenant="acme",le="${le}"} `))?.split(" ")[1]);
    // Samples of 3, 12 and 700 ms.
    expect([bucket("0.005"), bucket("0.01"), bucket("0.025"), bucket("0.5"), bucket("1"), bucket("+Inf")]).toEqual([1, 1, 2, 2, 3, 3]);
    expect(lines).toContain('sluice_queue_wait_seconds_sum{tenant="acme"} 0.715');
    expect(lines).toContain('sluice_queue_wait_seconds_count{tenant="acme"} 3');
    expect(lines).toContain('sluice_request_duration_seconds_bucket{tenant="acme",le="+Inf"} 0');
  });

  it("is well-formed: every sample belongs to the family declared before it, and ends with a newline", () => {
    expect(text.endsWith("\n")).toBe(true);
    let family = "";
    for (const line of lines.filter(Boolean)) {
      const declared = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (declared) family = declared[1]!;
      else if (!line.startsWith("# HELP ")) expect(line).toMatch(new RegExp(`^${family}(_bucket|_sum|_count)?(\\{[^}]*\\})? -?[0-9.e+]+$`));
    }
  });

  it("declares each family once over several tenants, with every tenant's samples under it, and adds further families", () => {
    const other = { ...sampleStats(), tenant: "globex", inFlight: 1 };
    const both = prometheusText(
      [sampleStats(), other],
      [
        {
          name: "sluice_tenant_up",
          type: "gauge",
          help: "Up.",
          samples: [
            [{ tenant: "acme" }, 1],
            [{ tenant: "globex" }, 0],
          ],
        },
      ],
    ).split("\n");
    expect(both.filter((l) => l === "# TYPE sluice_in_flight gauge")).toHaveLength(1);
    const at = both.indexOf("# TYPE sluice_in_flight gauge");
    expect(both.slice(at + 1, at + 3)).toEqual(['sluice_in_flight{tenant="acme"} 4', 'sluice_in_flight{tenant="globex"} 1']);
    expect(both.filter((l) => l.startsWith("sluice_backend_failures_total{"))).toHaveLength(2);
    expect(both.slice(-5)).toEqual([
      "# HELP sluice_tenant_up Up.",
      "# TYPE sluice_tenant_up gauge",
      'sluice_tenant_up{tenant="acme"} 1',
      'sluice_tenant_up{tenant="globex"} 0',
      "",
    ]);
  });
});
