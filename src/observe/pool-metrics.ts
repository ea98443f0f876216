// Shared pools' stats (pool/core/pool-stats.ts) as Prometheus families, for `GET /admin/metrics`:
// per backend its capacity, the credits held on it, attempts in flight and slots wanted; per tenant
// its weight, what it holds against its fair share, what it waits for and the tokens it was served.
import type { PoolStats } from "../pool/core/pool-stats";
import type { Labels, MetricFamily } from "./prometheus";

export function poolFamilies(pools: readonly PoolStats[]): MetricFamily[] {
  const backends = pools.flatMap((p) => p.backends.map((b) => [{ pool: p.pool, backend: b.id }, b] as const));
  const tenants = pools.flatMap((p) => p.tenants.map((t) => [{ pool: p.pool, tenant: t.tenant }, t] as const));
  const gauge = (name: string, help: string, samples: [Labels, number][]): MetricFamily => ({ name, type: "gauge", help, samples });
  return [
    gauge(
      "sluice_pool_capacity",
      "A fleet backend's capacity (its maxConcurrency), which its pool divides among tenants.",
      backends.map(([l, b]) => [l, b.capacity]),
    ),
    gauge(
      "sluice_pool_credits_held",
      "Credits tenant gates hold on the backend: never more than its capacity (but for requests adopted after a restart).",
      backends.map(([l, b]) => [l, b.held]),
    ),
    gauge(
      "sluice_pool_in_flight",
      "Attempts running on the backend, as its holders last reported.",
      backends.map(([l, b]) => [l, b.inFlight]),
    ),
    gauge(
      "sluice_pool_waiting",
      "Slots the backend's holders want beyond what they run.",
      backends.map(([l, b]) => [l, b.waiting]),
    ),
    gauge(
      "sluice_pool_tenant_weight",
      "The tenant's weight on the pool (pools.<pool>.weight in its config).",
      tenants.map(([l, t]) => [l, t.weight]),
    ),
    gauge(
      "sluice_pool_tenant_credits_held",
      "Credits the tenant's gates hold on the pool's backends.",
      tenants.map(([l, t]) => [l, t.held]),
    ),
    gauge(
      "sluice_pool_tenant_credits_target",
      "The tenant's fair share of the pool's slots now: it gives back what it holds above it as its attempts end.",
      tenants.map(([l, t]) => [l, t.target]),
    ),
    gauge(
      "sluice_pool_tenant_waiting",
      "Slots the tenant wants on the pool beyond what it runs.",
      tenants.map(([l, t]) => [l, t.waiting]),
    ),
    gauge(
      "sluice_pool_tenant_share_ratio",
      "Share of the pool's capacity the tenant holds (0-1).",
      tenants.map(([l, t]) => [l, t.share]),
    ),
    gauge(
      "sluice_pool_tenant_weight_share_ratio",
      "Share of the pool the tenant's weight entitles it to among tenants holding or wanting slots now (0-1).",
      tenants.map(([l, t]) => [l, t.weightShare]),
    ),
    {
      name: "sluice_pool_tenant_tokens_total",
      type: "counter",
      help: "Prompt and completion tokens of the tenant's requests served by the pool's backends.",
      samples: tenants.map(([l, t]) => [l, t.tokens]),
    },
  ];
}
