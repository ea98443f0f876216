// Authentication: tenant API keys for /v1; for /admin, the ADMIN_TOKEN secret or a tenant admin key.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { readTenantConfig } from "../config/store";
import { adminKeys, apiKeys } from "../config/keyring";
import { expired } from "../config/key-rules";

function bearer(header: string | undefined): string | null {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match ? match[1]! : null;
}

/**
 * Resolves the tenant from `Authorization: Bearer <key>` or `x-api-key: <key>` (what the Anthropic
 * SDK sends) and loads its config.
 */
export const tenantAuth = createMiddleware<AppEnv>(async (c, next) => {
  const key = bearer(c.req.header("authorization")) ?? c.req.header("x-api-key")?.trim();
  if (!key)
    return errorResponse(401, "missing_api_key", "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.");
  const found = await apiKeys.lookup(c.env, key);
  const config = found ? await readTenantConfig(c.env, found.tenant) : null;
  if (!found || !config) return errorResponse(401, "invalid_api_key", "Invalid API key.");
  const { record } = found;
  if (expired(record, Date.now()))
    return errorResponse(401, "expired_api_key", `This API key expired at ${record.expiresAt}; ask for a new one.`);
  c.set("tenant", found.tenant);
  c.set("config", config);
  c.set("apiKey", { ref: { id: found.id, ...record.limits }, name: record.name });
  c.get("requestLog")?.set({ apiKey: record.name ?? found.id });
  await next();
});

/**
 * Admin routes: the operator's `Authorization: Bearer <ADMIN_TOKEN>` (compared in constant time),
 * or a tenant admin key, which reaches its own tenant's routes only (api/admin-scope.ts).
 */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) return errorResponse(401, "admin_disabled", "The admin API is disabled: the ADMIN_TOKEN secret is not set.");
  const given = bearer(c.req.header("authorization"));
  if (!given)
    return errorResponse(401, "missing_admin_token", "Missing admin token: send it as 'Authorization: Bearer <ADMIN_TOKEN or admin key>'.");
  if (await constantTimeEqual(given, expected)) c.set("admin", { kind: "operator" });
  else {
    const key = await adminKeys.lookup(c.env, given);
    if (!key) return errorResponse(401, "invalid_admin_token", "Invalid admin token.");
    c.set("admin", { kind: "tenant", tenant: key.tenant, keyId: key.id });
  }
  await next();
});

/** Compares digests, so neither the length nor the content of the secret leaks through timing. */
async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [da, db] = await Promise.all([crypto.subtle.digest("SHA-256", enc.encode(a)), crypto.subtle.digest("SHA-256", enc.encode(b))]);
  return crypto.subtle.timingSafeEqual(da, db);
}
