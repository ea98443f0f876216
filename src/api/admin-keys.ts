// A tenant's keys through the admin API: API keys for its clients (the operator or the tenant's
// admin key manage them), and admin keys for the tenant's own admin routes (the operator issues them).
import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { readTenantConfig } from "../config/store";
import { KEY_ID_PATTERN, type Keyring, adminKeys, apiKeys, newAdminKey } from "../config/keyring";
import { adminBody } from "./admin-config";
import { operatorOnly, tenantNotFound } from "./admin-scope";

const KeySchema = z.object({
  key: z.string().min(12, "keys must be at least 12 characters").max(256).regex(/^\S+$/, "keys cannot contain whitespace"),
});

/** Listing and revoking, the same for both kinds of key. */
function keyringRoutes(keyring: Keyring, noun: string) {
  return new Hono<AppEnv>()
    .get("/", async (c) => {
      const tenant = c.req.param("tenant")!;
      if (!(await readTenantConfig(c.env, tenant))) return tenantNotFound(tenant);
      return c.json({ object: "list", data: (await keyring.list(c.env, tenant)).map((id) => ({ id })) });
    })
    .delete("/:id", async (c) => {
      const tenant = c.req.param("tenant")!;
      const id = c.req.param("id");
      if (!KEY_ID_PATTERN.test(id)) return errorResponse(400, "invalid_key_id", `A key id is the 16 hex digits the ${noun} listing shows.`);
      if (!(await keyring.revoke(c.env, tenant, id)))
        return errorResponse(404, "key_not_found", `Tenant "${tenant}" has no ${noun} ${id}.`);
      return c.json({ revoked: id });
    });
}

export const apiKeysRoute = new Hono<AppEnv>()
  .post("/", jsonBody, adminBody, validJson(KeySchema), async (c) => {
    const tenant = c.req.param("tenant")!;
    if (!(await readTenantConfig(c.env, tenant)))
      return errorResponse(404, "tenant_not_found", `No tenant "${tenant}"; PUT its config first.`);
    const { key } = c.req.valid("json");
    const added = await apiKeys.add(c.env, tenant, key);
    if (!added.ok && added.reason === "taken")
      return errorResponse(409, "key_taken", "This key belongs to another tenant; choose another.");
    if (!added.ok) return errorResponse(409, "key_limit", `This tenant has the maximum number of keys (${apiKeys.maxPerTenant}).`);
    // The key is shown this once; only its SHA-256 hash is stored.
    return c.json({ tenant, key, id: added.id }, 201);
  })
  .route("/", keyringRoutes(apiKeys, "API key"));

export const adminKeysRoute = new Hono<AppEnv>()
  .use("*", operatorOnly("issue, list or revoke admin keys"))
  .post("/", async (c) => {
    const tenant = c.req.param("tenant")!;
    if (!(await readTenantConfig(c.env, tenant)))
      return errorResponse(404, "tenant_not_found", `No tenant "${tenant}"; PUT its config first.`);
    const key = newAdminKey();
    const added = await adminKeys.add(c.env, tenant, key);
    if (!added.ok) return errorResponse(409, "key_limit", `This tenant has the maximum number of admin keys (${adminKeys.maxPerTenant}).`);
    // Generated here and shown this once; only its SHA-256 hash is stored.
    return c.json({ tenant, key, id: added.id }, 201);
  })
  .route("/", keyringRoutes(adminKeys, "admin key"));
