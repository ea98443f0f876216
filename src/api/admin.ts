// Admin API: tenant configs (admin-config.ts) and keys (admin-keys.ts) in KV, alerts (admin-alerts.ts), live stats from the
// tenants' gates (JSON, or Prometheus' text format: metrics.ts), dead letters from D1. The operator
// may call every route; a tenant admin key its own tenant's (admin-scope.ts).
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { adminAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { listTenants, readTenantConfig } from "../config/store";
import { listDeadLetters } from "../observe/dead-letters";
import { redact, redactionsOf } from "../observe/redact";
import type { Env } from "../env";
import { fleetMetricsRoute, PROMETHEUS_CONTENT_TYPE, statsOf } from "./metrics";
import { prometheusText, type GateStats } from "../observe/prometheus";
import { operatorOnly, tenantNotFound, tenantScope } from "./admin-scope";
import { tenantConfigRoute } from "./admin-config";
import { adminKeysRoute, apiKeysRoute } from "./admin-keys";
import { alertsRoute } from "./admin-alerts";
import { spendRoute } from "./admin-spend";
import { adminGenerationsRoute, deadLettersRoute } from "./admin-dead-letters";
import { adminWorkflowsRoute } from "./admin-workflows";
import { workflowFamilies, workflowSummary } from "../workflows/summary";
import { pageLimit, readPage } from "./admin-paging";
import { fleetBackendsRoute, poolsRoute } from "./admin-fleet";

/** The tenant's live stats, or null when it has no config. */
async function tenantStats(env: Env, tenant: string, options: { histograms: boolean }): Promise<GateStats | null> {
  const config = await readTenantConfig(env, tenant);
  return config && statsOf(env, tenant, config, options);
}

export const adminRoute = new Hono<AppEnv>()
  .use("*", adminAuth)
  .use("/metrics", operatorOnly("read every tenant's metrics"))
  .route("/metrics", fleetMetricsRoute)
  .get("/tenants", operatorOnly("list the tenants"), async (c) => {
    const page = await readPage(c.req.query(), (limit, cursor) => listTenants(c.env, limit, cursor));
    if (page instanceof Response) return page;
    return c.json({ object: "list", data: page.tenants.map((tenant) => ({ tenant })), next_cursor: page.cursor });
  })
  .use("/backends", operatorOnly("manage fleet backends"))
  .use("/backends/*", operatorOnly("manage fleet backends"))
  .use("/pools", operatorOnly("manage pools"))
  .use("/pools/*", operatorOnly("manage pools"))
  .route("/backends", fleetBackendsRoute)
  .route("/pools", poolsRoute)
  .use("/tenants/:tenant", tenantScope)
  .use("/tenants/:tenant/*", tenantScope)
  .route("/tenants", tenantConfigRoute)
  .route("/tenants/:tenant/keys", apiKeysRoute)
  .route("/tenants/:tenant/admin-keys", adminKeysRoute)
  .route("/tenants/:tenant/alerts", alertsRoute)
  .route("/tenants/:tenant/spend", spendRoute)
  .route("/tenants/:tenant/dead-letters", deadLettersRoute)
  .route("/tenants/:tenant/generations", adminGenerationsRoute)
  .route("/tenants/:tenant/workflows", adminWorkflowsRoute)
  .get("/tenants/:tenant/stats", async (c) => {
    const stats = await tenantStats(c.env, c.req.param("tenant"), { histograms: false });
    return stats ? c.json(stats) : tenantNotFound(c.req.param("tenant"));
  })
  .get("/tenants/:tenant/metrics", async (c) => {
    const stats = await tenantStats(c.env, c.req.param("tenant"), { histograms: true });
    if (!stats) return tenantNotFound(c.req.param("tenant"));
    const workflows = workflowFamilies(c.req.param("tenant"), await workflowSummary(c.env.DB, c.req.param("tenant")));
    return c.body(prometheusText([stats], workflows), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  })
  .get("/tenants/:tenant/dead-letters", async (c) => {
    const limit = pageLimit(c.req.query("limit"));
    const before = c.req.query("before");
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 1000.");
    if (before !== undefined && !/^\d+$/.test(before)) return errorResponse(400, "invalid_before", "before must be a dead letter id.");
    const tenant = c.req.param("tenant");
    let items = await listDeadLetters(c.env.DB, tenant, limit, before === undefined ? undefined : Number(before));
    // A tenant admin reads what backends said without the operator's keys and hosts (the operator reads it whole).
    if (c.get("admin").kind === "tenant") {
      const r = redactionsOf((await readTenantConfig(c.env, tenant))?.backends ?? []);
      items = items.map((l) => ({
        ...l,
        attempts: l.attempts.map((a) => (a.errorDetail === undefined ? a : { ...a, errorDetail: redact(a.errorDetail, r) })),
      }));
    }
    return c.json({ object: "list", data: items, next_before: items.length === limit ? items[items.length - 1]!.id : null });
  });
