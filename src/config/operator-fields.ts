// What a tenant admin key may change, and what it sees. The operator (ADMIN_TOKEN) owns the fields
// that point at infrastructure or protect the fleet; a tenant owns how its traffic is routed.
import type { TenantConfig } from "./schema";
import { type Json, mergePatchBetween, patchedPaths } from "./merge-patch";

/**
 * Operator-only: `backends` (URLs, credentials, capacity: a tenant names backends by id in its
 * routes), `limits` (concurrency, queue, rate limits, shards, body size), `outbound` (whether the
 * tenant's webhooks and effects may reach private addresses) and `pools` (its weight on shared pools).
 */
export const OPERATOR_FIELDS = ["backends", "limits", "outbound", "pools"] as const;

const isOperatorPath = (path: string) => OPERATOR_FIELDS.some((f) => path === f || path.startsWith(`${f}.`));

/** The operator-only fields `next` changes from `current`, as dotted paths (none: the change is the tenant's to make). */
export function operatorFieldsChanged(current: TenantConfig, next: TenantConfig): string[] {
  return patchedPaths(mergePatchBetween(current as unknown as Json, next as unknown as Json)).filter(isOperatorPath);
}

/** `config` with the operator-only fields of `from`: a tenant's rollback restores its own fields only. */
export function withOperatorFields(config: TenantConfig, from: TenantConfig): TenantConfig {
  return { ...config, backends: from.backends, limits: from.limits, outbound: from.outbound, pools: from.pools };
}

/** What a tenant admin sees of backends: their ids and traits, not their URLs or credentials. */
export function redactBackends<T extends object>(document: T): T {
  const listed = (document as { backends?: unknown }).backends;
  if (!Array.isArray(listed)) return document;
  const backends = listed.map((b: Record<string, unknown>) => {
    const { url: _url, apiKey: _apiKey, ...visible } = b;
    return visible;
  });
  return { ...document, backends };
}
