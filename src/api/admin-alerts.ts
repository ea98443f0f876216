// A tenant's alerts through the admin API: the secret its webhooks are signed with (shown to its
// admins, rotated with a grace period), and the messages that could not be delivered. The rules
// and webhooks themselves are part of the tenant config (PATCH .../{tenant}, "alerts").
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { configLogOf } from "../admin/config-log";
import { listUndelivered, UNDELIVERED_MAX_PER_TENANT } from "../observe/alerts/undelivered";
import { readTenantConfig } from "../config/store";
import { tenantNotFound } from "./admin-scope";

export const alertsRoute = new Hono<AppEnv>()
  .get("/signing-secret", async (c) => {
    const tenant = c.req.param("tenant")!;
    const secrets = await configLogOf(c.env.CONFIG_LOG, tenant).signingSecrets(tenant);
    if (!secrets) return tenantNotFound(tenant);
    return c.json({ tenant, secret: secrets[0], previous: secrets[1] ?? null });
  })
  .post("/signing-secret/rotate", async (c) => {
    const tenant = c.req.param("tenant")!;
    const rotated = await configLogOf(c.env.CONFIG_LOG, tenant).rotateSigningSecret(tenant);
    if (!rotated) return tenantNotFound(tenant);
    return c.json({ tenant, secret: rotated.secret, previous_expires_at: rotated.previousExpiresAt });
  })
  .get("/undelivered", async (c) => {
    const tenant = c.req.param("tenant")!;
    const limit = Number(c.req.query("limit") ?? "20");
    if (!Number.isInteger(limit) || limit < 1 || limit > UNDELIVERED_MAX_PER_TENANT)
      return errorResponse(400, "invalid_limit", `limit must be an integer from 1 to ${UNDELIVERED_MAX_PER_TENANT}.`);
    if (!(await readTenantConfig(c.env, tenant))) return tenantNotFound(tenant);
    return c.json({ object: "list", data: await listUndelivered(c.env.DB, tenant, limit) });
  });
