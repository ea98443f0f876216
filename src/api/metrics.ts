// Live stats from the tenants' gates: one tenant's (JSON or Prometheus' text format, admin.ts) or
// every tenant's in one Prometheus scrape (`GET /admin/metrics`). A scrape asks every listed
// tenant's gates, so it wakes each of them: scrape every 30-60 s, not every second.
import { Hono } from "hono";
import pLimit, { type LimitFunction } from "p-limit";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import type { TenantConfig } from "../config/schema";
import { listTenants, readTenantConfig } from "../config/store";
import type { Env } from "../env";
import { gatesOf } from "../admission/gate-client";
import { fnv1a } from "../hash";
import { prometheusText, type GateStats, type MetricFamily } from "../observe/prometheus";
import { workflowFamilies, workflowSummary } from "../workflows/summary";
import { mergeShardStats, withoutHistograms } from "../observe/shard-stats";
import { allPools } from "../config/fleet";
import { poolFamilies } from "../observe/pool-metrics";
import { poolGateOf } from "../pool/pool-gate";

/** Tenants one scrape reads, at most. Each costs a config read and a call per gate; a request may make about 10,000 subrequests. */
export const MAX_SCRAPE_TENANTS = 1_000;
/** Gate calls one scrape makes, at most (a sharded tenant has several gates). */
export const MAX_SCRAPE_GATES = 4_000;
/** Tenants read at once during a scrape. */
const SCRAPE_CONCURRENCY = 8;
/** `part=k/n` splits a fleet's scrape over at most this many scrape jobs. */
const MAX_PARTS = 64;

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/**
 * The tenant's live stats: a sharded tenant's gates added up. With `histograms` (Prometheus), the
 * latency histograms behind the percentiles come too; a sharded tenant's gates send theirs anyway,
 * to be merged, and the JSON API leaves them out.
 */
export async function statsOf(env: Env, tenant: string, config: TenantConfig, options: { histograms: boolean }): Promise<GateStats> {
  const gates = gatesOf(env.TENANT_GATE, tenant, config.limits.shards);
  const merged =
    gates.length === 1
      ? await gates[0]!.stats(options)
      : mergeShardStats(await Promise.all(gates.map((g) => g.stats({ histograms: true }))), config);
  const stats = options.histograms ? merged : withoutHistograms(merged);
  // Labelled by the id it was asked for, even if a gate never heard its tenant's name.
  return { ...stats, tenant };
}

/** `part=k/n` (1 <= k <= n): the scrape covers the tenants whose id hashes to part k of n. */
export function parsePart(value: string | undefined): { k: number; n: number } | null {
  if (value === undefined) return { k: 1, n: 1 };
  const match = /^(\d{1,2})\/(\d{1,2})$/.exec(value);
  if (!match) return null;
  const k = Number(match[1]);
  const n = Number(match[2]);
  return k >= 1 && k <= n && n <= MAX_PARTS ? { k, n } : null;
}

async function allTenants(env: Env): Promise<string[]> {
  const tenants: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listTenants(env, 1000, cursor);
    tenants.push(...page.tenants);
    cursor = page.cursor ?? undefined;
  } while (cursor);
  return tenants;
}

/** Every pool's families; a pool that does not answer costs its samples (`sluice_pool_up` says which). */
async function poolFamiliesOf(env: Env, limit: LimitFunction): Promise<MetricFamily[]> {
  const ids = await allPools(env);
  const read = await Promise.all(
    ids.map((pool) =>
      limit(() =>
        poolGateOf(env.POOL_GATE, pool)
          .stats(pool)
          .then(
            (stats) => ({ pool, stats }),
            () => ({ pool, stats: null }),
          ),
      ),
    ),
  );
  const up: MetricFamily = {
    name: "sluice_pool_up",
    type: "gauge",
    help: "1 when the pool's gate answered this scrape, 0 when it did not (its other samples are then missing).",
    samples: read.map(({ pool, stats }) => [{ pool }, stats ? 1 : 0]),
  };
  return read.length === 0 ? [] : [up, ...poolFamilies(read.flatMap((r) => (r.stats ? [r.stats] : [])))];
}

export const fleetMetricsRoute = new Hono<AppEnv>().get("/", async (c) => {
  const part = parsePart(c.req.query("part"));
  if (!part) return errorResponse(400, "invalid_part", `part must be k/n with 1 <= k <= n <= ${MAX_PARTS}, e.g. part=2/4.`);
  const tenants = (await allTenants(c.env)).filter((t) => part.n === 1 || fnv1a(t) % part.n === part.k - 1);
  const tooLarge = (what: string) =>
    errorResponse(
      422,
      "scrape_too_large",
      `This scrape would read ${what}. Split it over several scrape jobs with ?part=1/n ... ?part=n/n.`,
    );
  if (tenants.length > MAX_SCRAPE_TENANTS) return tooLarge(`${tenants.length} tenants, more than ${MAX_SCRAPE_TENANTS}`);

  const limit = pLimit(SCRAPE_CONCURRENCY);
  // Tenants deleted since the listing drop out here.
  const configs = (
    await Promise.all(tenants.map((tenant) => limit(async () => ({ tenant, config: await readTenantConfig(c.env, tenant) }))))
  ).filter((t): t is { tenant: string; config: TenantConfig } => t.config !== null);
  const gates = configs.reduce((n, t) => n + t.config.limits.shards, 0);
  if (gates > MAX_SCRAPE_GATES) return tooLarge(`${gates} gates, more than ${MAX_SCRAPE_GATES}`);

  // A gate that does not answer costs its tenant's samples, not the whole scrape: `sluice_tenant_up` says which.
  const read = await Promise.all(
    configs.map(({ tenant, config }) =>
      limit(() =>
        statsOf(c.env, tenant, config, { histograms: true }).then(
          (stats) => ({ tenant, stats }),
          () => ({ tenant, stats: null }),
        ),
      ),
    ),
  );
  const up: MetricFamily = {
    name: "sluice_tenant_up",
    type: "gauge",
    help: "1 when the tenant's gates answered this scrape, 0 when one did not (its other samples are then missing).",
    samples: read.map(({ tenant, stats }) => [{ tenant }, stats ? 1 : 0]),
  };
  const stats = read.flatMap((r) => (r.stats ? [r.stats] : []));
  // Each tenant's workflow gauges (D1); a tenant whose read fails loses them, not the scrape.
  const workflows = await Promise.all(
    configs.map(({ tenant }) =>
      limit(() =>
        workflowSummary(c.env.DB, tenant).then(
          (summary) => workflowFamilies(tenant, summary),
          () => [],
        ),
      ),
    ),
  );
  // The pools' families come once, with the first part of a split scrape.
  const pools = part.k === 1 ? await poolFamiliesOf(c.env, limit) : [];
  return c.body(prometheusText(stats, [up, ...workflows.flat(), ...pools]), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
});
