// Tenant gates' stats in Prometheus' text exposition format (0.0.4), for a scraper:
// `GET /admin/tenants/{tenant}/metrics` (one tenant) and `GET /admin/metrics` (all of them). Every
// sample has a `tenant` label; each family is declared once, with all tenants' samples under it,
// as the format requires. Counters keep counting across gate restarts (they are stored), so rates
// over them hold. Latencies are Prometheus histograms in seconds (`_seconds_bucket`, `_sum`,
// `_count`, since the gate started counting), so a scraper computes any window and percentile with
// rate() and histogram_quantile(). Names follow Prometheus's conventions (promtool check metrics):
// base units, counters ending in `_total`.
import type { BreakerState } from "../gate/core/breaker";
import { COUNTER_HELP, SURFACE_COUNTERS, SURFACES, WASTE_CAUSES, type CounterName } from "../gate/core/metrics";
import type { GateStats } from "../gate/core/stats";
import { EXPORTED_BOUNDS_MS, LatencyHistogram, type SavedHistogram } from "../gate/core/histogram";

export type { GateStats };
export type Labels = Record<string, string>;

const BREAKER_STATES: readonly BreakerState[] = ["closed", "half-open", "open"];

/** One metric: its samples, each with its labels (and, in a histogram, its name's suffix: `_bucket`, `_sum`, `_count`). */
export interface MetricFamily {
  name: string;
  type: "counter" | "gauge" | "histogram";
  help: string;
  samples: Array<[Labels, number] | [Labels, number, string]>;
}

type AddFamily = (name: string, type: MetricFamily["type"], help: string, samples: MetricFamily["samples"]) => void;

/** The stats of one or more tenants (in the order given), and any further families, as one exposition. */
export function prometheusText(tenants: GateStats[], more: MetricFamily[] = []): string {
  const families = new Map<string, MetricFamily>();
  const add: AddFamily = (name, type, help, samples) => {
    const known = families.get(name);
    if (known) known.samples.push(...samples);
    else families.set(name, { name, type, help, samples: [...samples] });
  };
  for (const stats of tenants) addTenant(stats, add);
  for (const f of more) add(f.name, f.type, f.help, f.samples);
  const out: string[] = [];
  for (const { name, type, help, samples } of families.values()) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value, suffix] of samples) out.push(`${name}${suffix ?? ""}${labelText(labels)} ${value}`);
  }
  return `${out.join("\n")}\n`;
}

function addTenant(stats: GateStats, family: AddFamily): void {
  const tenant = { tenant: stats.tenant ?? "" };
  for (const [name, value] of Object.entries(stats.counters) as Array<[CounterName, number]>) {
    family(`sluice_${snakeCase(name)}_total`, "counter", COUNTER_HELP[name], [[tenant, value]]);
  }
  family(
    "sluice_surface_requests_total",
    "counter",
    "Requests by the API their client spoke (surface): given a slot (outcome admitted), and how they ended.",
    SURFACES.flatMap((surface) =>
      SURFACE_COUNTERS.map((c) => [{ ...tenant, surface, outcome: snakeCase(c) }, stats.surfaces[surface][c]] as [Labels, number]),
    ),
  );
  family(
    "sluice_spend_usd_total",
    "counter",
    'US dollars spent, by model alias and kind: served (attempts whose output reached a client) or wasted (README, "Spend and budgets").',
    Object.entries(stats.spend ?? {}).flatMap(([model, s]) =>
      (["served", "wasted"] as const).map((kind) => [{ ...tenant, model, kind }, s[kind]] as [Labels, number]),
    ),
  );
  family(
    "sluice_queue_depth",
    "gauge",
    "Requests waiting in the queue, by priority.",
    Object.entries(stats.queue.byPriority).map(([priority, n]) => [{ ...tenant, priority }, n]),
  );
  family("sluice_queue_oldest_wait_seconds", "gauge", "How long the oldest queued request has waited.", [
    [tenant, stats.queue.oldestWaitMs / 1000],
  ]);
  family("sluice_queue_drain_per_second", "gauge", "Slots freed per second, recently.", [[tenant, stats.queue.drainPerSecond]]);
  family("sluice_in_flight", "gauge", "Requests holding a slot.", [[tenant, stats.inFlight]]);
  family("sluice_background_in_flight", "gauge", "Background work (batch lines, async generations) holding a slot.", [
    [tenant, stats.backgroundInFlight],
  ]);
  if (stats.limits) family("sluice_max_concurrency", "gauge", "The tenant's slot limit.", [[tenant, stats.limits.maxConcurrency]]);
  if (stats.retryBudget) {
    family("sluice_retry_budget_retries", "gauge", "Retries in the retry budget's window.", [[tenant, stats.retryBudget.retries]]);
    family("sluice_retry_budget_allowed", "gauge", "Retries the budget allows in its window.", [[tenant, stats.retryBudget.allowed]]);
  }
  for (const limit of ["requests", "tokens"] as const) {
    const usage = stats.rateLimit?.[limit];
    if (!usage) continue;
    family("sluice_rate_limit_per_minute", "gauge", "The tenant's rate limit (limits.requestsPerMinute, limits.tokensPerMinute).", [
      [{ ...tenant, limit }, usage.perMinute],
    ]);
    family(
      "sluice_rate_limit_available",
      "gauge",
      "What the rate limit's bucket holds now (negative: tokens used beyond the estimate, being paid back).",
      [[{ ...tenant, limit }, usage.available]],
    );
  }
  family("sluice_journal_entries", "gauge", "Replay journal entries stored.", [[tenant, stats.journal.entries]]);
  family("sluice_journal_bytes", "gauge", "Bytes of chunks in the replay journal.", [[tenant, stats.journal.bytes]]);
  if (stats.histograms) {
    family("sluice_queue_wait_seconds", "histogram", "Time from admission to a slot.", histogram(tenant, stats.histograms.queue));
    family(
      "sluice_request_duration_seconds",
      "histogram",
      "Time from a slot to the request's end.",
      histogram(tenant, stats.histograms.total),
    );
  }

  const backends = stats.backends.map((b) => [{ ...tenant, backend: b.id, region: b.region }, b] as const);
  family(
    "sluice_backend_in_flight",
    "gauge",
    "Attempts running on the backend.",
    backends.map(([l, b]) => [l, b.inFlight]),
  );
  family(
    "sluice_backend_max_concurrency",
    "gauge",
    "The backend's attempt limit.",
    backends.map(([l, b]) => [l, b.maxConcurrency]),
  );
  family(
    "sluice_backend_concurrency_limit",
    "gauge",
    "Attempts the backend may hold now: its maxConcurrency, or the limit learned below it from its time to first token (adaptiveConcurrency).",
    backends.map(([l, b]) => [l, b.limit]),
  );
  const reported = backends.filter(([, b]) => b.reported !== undefined);
  family(
    "sluice_backend_reported_running",
    "gauge",
    "Requests the backend's server says it is running (its /metrics: vLLM, SGLang or TGI), beside sluice's own count, sluice_backend_in_flight.",
    reported.map(([l, b]) => [l, b.reported!.running]),
  );
  family(
    "sluice_backend_reported_waiting",
    "gauge",
    "Requests the backend's server says are queued inside it; a server whose queue grows gets fewer new requests.",
    reported.map(([l, b]) => [l, b.reported!.waiting]),
  );
  family(
    "sluice_backend_reported_kv_cache_usage_ratio",
    "gauge",
    "Share of its KV cache the backend's server says is in use (0-1).",
    reported.flatMap(([l, b]) => (b.reported!.kvCacheUsage === undefined ? [] : [[l, b.reported!.kvCacheUsage] as [Labels, number]])),
  );
  family(
    "sluice_backend_reported_prefix_cache_hit_ratio",
    "gauge",
    "Share of prompt tokens the backend's server found in its prefix cache between its last two readings (vLLM's prefix_cache counters).",
    reported.flatMap(([l, b]) => (b.reported!.prefixHitRate === undefined ? [] : [[l, b.reported!.prefixHitRate] as [Labels, number]])),
  );
  family(
    "sluice_backend_pool_credits",
    "gauge",
    "Of a fleet backend (a shared pool's): credits this tenant's gates hold from the pool, the most attempts they may run on it.",
    backends.flatMap(([l, b]) => (b.pool ? [[{ ...l, pool: b.pool.id }, b.pool.credits] as [Labels, number]] : [])),
  );
  family(
    "sluice_backend_breaker_state",
    "gauge",
    "1 for the circuit breaker's current state.",
    backends.flatMap(([l, b]) => BREAKER_STATES.map((state) => [{ ...l, state }, b.breaker === state ? 1 : 0] as [Labels, number])),
  );
  family(
    "sluice_backend_attempts_total",
    "counter",
    "Attempts sent to the backend: successes + failures + cancelled + abandoned + those in flight.",
    backends.map(([l, b]) => [l, b.attempts]),
  );
  family(
    "sluice_backend_successes_total",
    "counter",
    "Attempts the backend answered (a 4xx counts: the backend is up).",
    backends.map(([l, b]) => [l, b.successes]),
  );
  family(
    "sluice_backend_failures_total",
    "counter",
    "Attempts the backend failed.",
    backends.map(([l, b]) => [l, b.failures]),
  );
  family(
    "sluice_backend_cancelled_total",
    "counter",
    "Attempts stopped because the client went away (or the gate ended the request).",
    backends.map(([l, b]) => [l, b.cancelled]),
  );
  family(
    "sluice_backend_abandoned_total",
    "counter",
    "Attempts that ended without a report: their Worker stopped (reclaimed) or failed unexpectedly.",
    backends.map(([l, b]) => [l, b.abandoned]),
  );
  family(
    "sluice_backend_auth_failures_total",
    "counter",
    "Of the failures: the backend refused sluice's credentials (401/403); its apiKey is wrong or revoked.",
    backends.map(([l, b]) => [l, b.authFailures]),
  );
  family(
    "sluice_backend_hedged_total",
    "counter",
    "Attempts on the backend whose first token was late enough to be hedged on another backend.",
    backends.map(([l, b]) => [l, b.hedged]),
  );
  family(
    "sluice_backend_hedges_total",
    "counter",
    "Hedge attempts the backend took for another backend's late first token.",
    backends.map(([l, b]) => [l, b.hedges]),
  );
  family(
    "sluice_backend_tokens_total",
    "counter",
    "Completion tokens relayed from the backend.",
    backends.map(([l, b]) => [l, b.tokens]),
  );
  family(
    "sluice_backend_wasted_tokens_total",
    "counter",
    "Tokens the backend generated that no client got: regenerated (a prefix generated again to resume reasoning or tool calls), restarted (a non-streaming answer dropped to start over).",
    backends.flatMap(([l, b]) => WASTE_CAUSES.map((cause): [Labels, number] => [{ ...l, cause }, b.wastedTokens[cause]])),
  );
  family(
    "sluice_backend_ttft_seconds",
    "histogram",
    "Time from an attempt's start to the backend's first token.",
    backends.flatMap(([l, b]) => (b.ttftHistogram ? histogram(l, b.ttftHistogram) : [])),
  );
}

/**
 * A histogram's samples: cumulative counts at each bound (seconds; a sample up to ~9% under a
 * bound may count under the next, the gate's buckets being log-spaced), then `+Inf`, the sum and the count.
 */
function histogram(labels: Labels, saved: SavedHistogram): Array<[Labels, number, string]> {
  const h = new LatencyHistogram();
  h.restore(saved);
  const { cumulative, count, sumMs } = h.exported();
  return [
    ...EXPORTED_BOUNDS_MS.map((bound, i): [Labels, number, string] => [{ ...labels, le: String(bound / 1000) }, cumulative[i]!, "_bucket"]),
    [{ ...labels, le: "+Inf" }, count, "_bucket"],
    [labels, sumMs / 1000, "_sum"],
    [labels, count, "_count"],
  ];
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
