// Who may call which admin route. The operator (ADMIN_TOKEN) may call all of them; a tenant admin
// key reaches its own tenant's routes, except those marked operator-only. A tenant key naming
// another tenant gets the same 404 as a tenant that does not exist: no way to learn which exist.
import { createMiddleware } from "hono/factory";
import type { AdminPrincipal, AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import { TENANT_ID_PATTERN } from "../config/store";
import type { Actor } from "../admin/config-log";

export const tenantNotFound = (tenant: string) => errorResponse(404, "tenant_not_found", `No tenant "${tenant}".`);

/** A well-formed tenant id, within the caller's reach. */
export const tenantScope = createMiddleware<AppEnv>(async (c, next) => {
  const tenant = c.req.param("tenant") ?? "";
  if (!TENANT_ID_PATTERN.test(tenant))
    return errorResponse(
      400,
      "invalid_tenant_id",
      "Tenant ids are 1-63 characters: lowercase letters, digits, '_' and '-', starting with a letter or digit.",
    );
  const admin = c.get("admin");
  if (admin.kind === "tenant" && admin.tenant !== tenant) return tenantNotFound(tenant);
  await next();
});

/** Routes only the operator may call: `what` completes "Only the operator (ADMIN_TOKEN) may ...". */
export const operatorOnly = (what: string) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.get("admin").kind !== "operator") return errorResponse(403, "operator_only", `Only the operator (ADMIN_TOKEN) may ${what}.`);
    await next();
  });

/** How a change is recorded in the config history. */
export function actorOf(admin: AdminPrincipal): Actor {
  return admin.kind === "operator" ? "operator" : `admin-key:${admin.keyId}`;
}
