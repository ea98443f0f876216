// Admin API: tenant configs and keys in KV, live stats from the tenants' gates (JSON, or
// Prometheus' text format: metrics.ts), dead letters from D1.
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import * as z from "zod";
import type { AppEnv } from "./context";
import { adminAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { boundedBody, jsonBody, validJson } from "./validation";
import { TenantConfigSchema, type TenantConfig } from "../config/schema";
import { backendUrlProblem } from "../config/backend-url";
import {
  TENANT_ID_PATTERN,
  addTenantKey,
  deleteTenant,
  forgetTenantGates,
  listTenantKeys,
  noteTenantGates,
  tenantGateCount,
  listTenants,
  readTenantConfig,
  revokeTenantKey,
  writeTenantConfig,
} from "../config/store";
import { deleteDeadLetters, listDeadLetters } from "../observe/dead-letters";
import type { Env } from "../env";
import { fleetMetricsRoute, gatesOf, PROMETHEUS_CONTENT_TYPE, statsOf } from "./metrics";
import { prometheusText, type GateStats } from "../observe/prometheus";

const KeySchema = z.object({
  key: z.string().min(12, "keys must be at least 12 characters").max(256).regex(/^\S+$/, "keys cannot contain whitespace"),
});

/** Admin bodies are small: a config of 64 backends and 256 aliases fits many times over. */
const ADMIN_BODY_LIMITS = { maxBytes: 256 * 1024, readTimeoutMs: 30_000 };
const adminBody = boundedBody(() => ADMIN_BODY_LIMITS);

const validTenantId = createMiddleware<AppEnv>(async (c, next) => {
  if (!TENANT_ID_PATTERN.test(c.req.param("tenant") ?? ""))
    return errorResponse(
      400,
      "invalid_tenant_id",
      "Tenant ids are 1-63 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit.",
    );
  await next();
});

/** Tells each of the tenant's gates of its new config (null: deleted), as its shard's share. */
async function applyToGates(env: Env, tenant: string, config: TenantConfig | null, count: number): Promise<void> {
  await Promise.all(gatesOf(env, tenant, count).map((gate, shard) => gate.applyConfig(tenant, config, shard)));
}

/** The tenant's live stats, or null when it has no config. */
async function tenantStats(env: Env, tenant: string): Promise<GateStats | null> {
  const config = await readTenantConfig(env, tenant);
  return config && statsOf(env, tenant, config);
}

/** A listing's `limit` query parameter (100 when absent), or null when it is not 1-1000. */
function pageLimit(value: string | undefined): number | null {
  const limit = Number(value ?? "100");
  return Number.isInteger(limit) && limit >= 1 && limit <= 1000 ? limit : null;
}

const tenantNotFound = (tenant: string) => errorResponse(404, "tenant_not_found", `No tenant "${tenant}".`);

export const adminRoute = new Hono<AppEnv>()
  .use("*", adminAuth)
  .route("/metrics", fleetMetricsRoute)
  .get("/tenants", async (c) => {
    const limit = pageLimit(c.req.query("limit"));
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 1000.");
    const cursor = c.req.query("cursor");
    // KV refuses a cursor it did not hand out; any other failure is KV's, not the caller's.
    const page = await listTenants(c.env, limit, cursor).catch((err: unknown) => {
      if (cursor === undefined) throw err;
      return null;
    });
    if (!page) return errorResponse(400, "invalid_cursor", "cursor must be the next_cursor of an earlier page.");
    return c.json({ object: "list", data: page.tenants.map((tenant) => ({ tenant })), next_cursor: page.cursor });
  })
  .use("/tenants/:tenant", validTenantId)
  .use("/tenants/:tenant/*", validTenantId)
  .put("/tenants/:tenant", jsonBody, adminBody, validJson(TenantConfigSchema), async (c) => {
    const tenant = c.req.param("tenant");
    const config = c.req.valid("json");
    const policy = { allowLocal: c.env.ALLOW_LOCAL_BACKENDS === "true", routerHost: new URL(c.req.url).host };
    for (const [i, backend] of config.backends.entries()) {
      const problem = backendUrlProblem(backend.url, policy);
      if (problem) return errorResponse(400, "invalid_backend_url", `backends.${i}.url (backend "${backend.id}") ${problem}.`);
    }
    const previous = await readTenantConfig(c.env, tenant);
    await noteTenantGates(c.env, tenant, config.limits.shards);
    await writeTenantConfig(c.env, tenant, config);
    // Gates left over after the count was lowered get no new requests, only a share of nothing.
    await applyToGates(c.env, tenant, config, Math.max(config.limits.shards, previous?.limits.shards ?? 1));
    return c.json(config);
  })
  .get("/tenants/:tenant", async (c) => {
    const config = await readTenantConfig(c.env, c.req.param("tenant"));
    return config ? c.json(config) : tenantNotFound(c.req.param("tenant"));
  })
  .delete("/tenants/:tenant", async (c) => {
    const tenant = c.req.param("tenant");
    const [previous, recorded] = await Promise.all([readTenantConfig(c.env, tenant), tenantGateCount(c.env, tenant)]);
    // A recorded gate count without a config: an earlier DELETE stopped before its erase finished.
    if (!(await deleteTenant(c.env, tenant)) && recorded === null) return tenantNotFound(tenant);
    // Every gate the tenant ever used (its shard count may have been higher once), then its dead
    // letters: what a request still in flight writes lands before this erase, not after.
    const gates = Math.max(recorded ?? 1, previous?.limits.shards ?? 1);
    await Promise.all(gatesOf(c.env, tenant, gates).map((gate) => gate.erase()));
    await deleteDeadLetters(c.env.DB, tenant);
    await forgetTenantGates(c.env, tenant);
    return c.json({ deleted: tenant });
  })
  .post("/tenants/:tenant/keys", jsonBody, adminBody, validJson(KeySchema), async (c) => {
    const tenant = c.req.param("tenant");
    if (!(await readTenantConfig(c.env, tenant)))
      return errorResponse(404, "tenant_not_found", `No tenant "${tenant}"; PUT its config first.`);
    const { key } = c.req.valid("json");
    const added = await addTenantKey(c.env, tenant, key);
    if (!added.ok && added.reason === "taken")
      return errorResponse(409, "key_taken", "This key belongs to another tenant; choose another.");
    if (!added.ok) return errorResponse(409, "key_limit", "This tenant has the maximum number of keys.");
    // The key is shown this once; only its SHA-256 hash is stored.
    return c.json({ tenant, key, id: added.id }, 201);
  })
  .get("/tenants/:tenant/keys", async (c) => {
    const tenant = c.req.param("tenant");
    if (!(await readTenantConfig(c.env, tenant))) return tenantNotFound(tenant);
    return c.json({ object: "list", data: (await listTenantKeys(c.env, tenant)).map((id) => ({ id })) });
  })
  .delete("/tenants/:tenant/keys/:id", async (c) => {
    const { tenant, id } = c.req.param();
    if (!/^[0-9a-f]{16}$/.test(id))
      return errorResponse(400, "invalid_key_id", "A key id is the 16 hex digits GET /admin/tenants/{tenant}/keys lists.");
    if (!(await revokeTenantKey(c.env, tenant, id))) return errorResponse(404, "key_not_found", `Tenant "${tenant}" has no key ${id}.`);
    return c.json({ revoked: id });
  })
  .get("/tenants/:tenant/stats", async (c) => {
    const stats = await tenantStats(c.env, c.req.param("tenant"));
    return stats ? c.json(stats) : tenantNotFound(c.req.param("tenant"));
  })
  .get("/tenants/:tenant/metrics", async (c) => {
    const stats = await tenantStats(c.env, c.req.param("tenant"));
    if (!stats) return tenantNotFound(c.req.param("tenant"));
    return c.body(prometheusText([stats]), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  })
  .get("/tenants/:tenant/dead-letters", async (c) => {
    const limit = pageLimit(c.req.query("limit"));
    const before = c.req.query("before");
    if (limit === null) return errorResponse(400, "invalid_limit", "limit must be an integer from 1 to 1000.");
    if (before !== undefined && !/^\d+$/.test(before)) return errorResponse(400, "invalid_before", "before must be a dead letter id.");
    const items = await listDeadLetters(c.env.DB, c.req.param("tenant"), limit, before === undefined ? undefined : Number(before));
    return c.json({ object: "list", data: items, next_before: items.length === limit ? items[items.length - 1]!.id : null });
  });
