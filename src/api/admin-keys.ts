// A tenant's keys through the admin API: API keys for its clients, each with its own rules (a name,
// metadata, an expiry, limits and budgets: config/key-rules.ts), managed by the operator or the
// tenant's admin keys; and admin keys for the tenant's own admin routes, issued by the operator.
import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { readTenantConfig } from "../config/store";
import { KEY_ID_PATTERN, type KeyRecord, type Keyring, adminKeys, apiKeys, newKey } from "../config/keyring";
import { KeyRulesSchema } from "../config/key-rules";
import { adminBody } from "./admin-config";
import { operatorOnly, tenantNotFound } from "./admin-scope";

const NewKeySchema = KeyRulesSchema.extend({
  /** The key itself; one is generated when absent. */
  key: z.string().min(12, "keys must be at least 12 characters").max(256).regex(/^\S+$/, "keys cannot contain whitespace").optional(),
}).strict();

/** A key as listings show it: its id and rules, never the key. */
const keyView = (id: string, record: KeyRecord) => {
  const { tenant: _tenant, ...rules } = record;
  return { id, ...rules };
};

const badKeyId = (noun: string) => errorResponse(400, "invalid_key_id", `A key id is the 16 hex digits the ${noun} listing shows.`);

/** Listing and revoking, the same for both kinds of key. */
function keyringRoutes(keyring: Keyring, noun: string) {
  return new Hono<AppEnv>()
    .get("/", async (c) => {
      const tenant = c.req.param("tenant")!;
      if (!(await readTenantConfig(c.env, tenant))) return tenantNotFound(tenant);
      return c.json({ object: "list", data: (await keyring.records(c.env, tenant)).map((k) => keyView(k.id, k.record)) });
    })
    .delete("/:id", async (c) => {
      const tenant = c.req.param("tenant")!;
      const id = c.req.param("id");
      if (!KEY_ID_PATTERN.test(id)) return badKeyId(noun);
      if (!(await keyring.revoke(c.env, tenant, id)))
        return errorResponse(404, "key_not_found", `Tenant "${tenant}" has no ${noun} ${id}.`);
      return c.json({ revoked: id });
    });
}

export const apiKeysRoute = new Hono<AppEnv>()
  .post("/", jsonBody, adminBody, validJson(NewKeySchema), async (c) => {
    const tenant = c.req.param("tenant")!;
    if (!(await readTenantConfig(c.env, tenant)))
      return errorResponse(404, "tenant_not_found", `No tenant "${tenant}"; PUT its config first.`);
    const { key = newKey("sluice-"), ...rules } = c.req.valid("json");
    const added = await apiKeys.add(c.env, tenant, key, rules);
    if (!added.ok && added.reason === "taken")
      return errorResponse(409, "key_taken", "This key belongs to another tenant; choose another.");
    if (!added.ok) return errorResponse(409, "key_limit", `This tenant has the maximum number of keys (${apiKeys.maxPerTenant}).`);
    // The key is shown this once; only its SHA-256 hash is stored.
    return c.json({ tenant, key, id: added.id, ...rules }, 201);
  })
  // Replaces the key's rules: fields left out are cleared (send the listing's entry back, changed).
  .put("/:id", jsonBody, adminBody, validJson(KeyRulesSchema), async (c) => {
    const tenant = c.req.param("tenant")!;
    const id = c.req.param("id");
    if (!KEY_ID_PATTERN.test(id)) return badKeyId("API key");
    const record = await apiKeys.update(c.env, tenant, id, c.req.valid("json"));
    if (!record) return errorResponse(404, "key_not_found", `Tenant "${tenant}" has no API key ${id}.`);
    return c.json(keyView(id, record));
  })
  .route("/", keyringRoutes(apiKeys, "API key"));

export const adminKeysRoute = new Hono<AppEnv>()
  .use("*", operatorOnly("issue, list or revoke admin keys"))
  .post("/", async (c) => {
    const tenant = c.req.param("tenant")!;
    if (!(await readTenantConfig(c.env, tenant)))
      return errorResponse(404, "tenant_not_found", `No tenant "${tenant}"; PUT its config first.`);
    const key = newKey("sluice-admin-");
    const added = await adminKeys.add(c.env, tenant, key);
    if (!added.ok) return errorResponse(409, "key_limit", `This tenant has the maximum number of admin keys (${adminKeys.maxPerTenant}).`);
    // Generated here and shown this once; only its SHA-256 hash is stored.
    return c.json({ tenant, key, id: added.id }, 201);
  })
  .route("/", keyringRoutes(adminKeys, "admin key"));
