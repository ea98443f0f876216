// Tenant configs in KV, memoised per isolate for CONFIG_CACHE_TTL_SECONDS (keys: keyring.ts).
//   tenant:<id>        the tenant's config (JSON, as validated); written by its ConfigLog, which keeps the versions
//   tenant-gates:<id>  the most gates (limits.shards) the tenant ever had, so deleting it erases them all
import { TenantConfigSchema, type TenantConfig } from "./schema";
import { TtlCache } from "./cache";
import { adminKeys, apiKeys } from "./keyring";
import { type StoreEnv, cacheTtlMs } from "./store-env";
import { resolveTenantConfig } from "./fleet";

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const configs = new TtlCache<TenantConfig | null>(1_000);

/**
 * Each cached config's resolved form (resolveTenantConfig), while the cache holds the same object: a
 * config naming no fleet backend is its own; one naming some is resolved again after the cache's TTL.
 */
const resolved = new WeakMap<TenantConfig, { config: TenantConfig; until: number }>();

/** The tenant's config with the fleet backends its routes name among its backends (see resolveTenantConfig). */
export async function readTenantConfig(env: StoreEnv, tenant: string): Promise<TenantConfig | null> {
  const stored = await readStoredTenantConfig(env, tenant);
  if (!stored) return null;
  const known = resolved.get(stored);
  if (known && known.until > Date.now()) return known.config;
  const config = await resolveTenantConfig(env, stored);
  resolved.set(stored, { config, until: config === stored ? Number.POSITIVE_INFINITY : Date.now() + cacheTtlMs(env) });
  return config;
}

/** The tenant's config as stored: only its own backends (what the admin API reads and versions). */
export async function readStoredTenantConfig(env: StoreEnv, tenant: string): Promise<TenantConfig | null> {
  const cached = configs.get(tenant);
  if (cached !== undefined) return cached;
  const raw = await env.CONFIG.get(`tenant:${tenant}`, "json");
  // Re-parse so configs stored before a new field existed get its default.
  const parsed = raw === null ? null : TenantConfigSchema.safeParse(raw);
  const config = parsed?.success ? parsed.data : null;
  configs.set(tenant, config, cacheTtlMs(env));
  return config;
}

export async function writeTenantConfig(env: StoreEnv, tenant: string, config: TenantConfig): Promise<void> {
  await env.CONFIG.put(`tenant:${tenant}`, JSON.stringify(config));
  configs.set(tenant, config, cacheTtlMs(env));
}

/**
 * The most gates the tenant ever had (a higher shard count, lowered since, left gates holding data),
 * or null when none is recorded (a tenant stored before the count was, or one fully deleted).
 */
export async function tenantGateCount(env: StoreEnv, tenant: string): Promise<number | null> {
  const recorded = await env.CONFIG.get(`tenant-gates:${tenant}`);
  return recorded === null ? null : Number(recorded);
}

/** Notes that the tenant uses `count` gates now, if that is more than ever before. */
export async function noteTenantGates(env: StoreEnv, tenant: string, count: number): Promise<void> {
  if (count > ((await tenantGateCount(env, tenant)) ?? 0)) await env.CONFIG.put(`tenant-gates:${tenant}`, String(count));
}

/** Forgets the tenant's gate count, once its gates are erased. */
export async function forgetTenantGates(env: StoreEnv, tenant: string): Promise<void> {
  await env.CONFIG.delete(`tenant-gates:${tenant}`);
}

/** Deletes the tenant's config and revokes all its API and admin keys. Returns whether it existed. */
export async function deleteTenant(env: StoreEnv, tenant: string): Promise<boolean> {
  const existed = (await env.CONFIG.get(`tenant:${tenant}`)) !== null;
  await Promise.all([apiKeys.revokeAll(env, tenant), adminKeys.revokeAll(env, tenant), env.CONFIG.delete(`tenant:${tenant}`)]);
  configs.delete(tenant);
  return existed;
}

/** Drops this isolate's cached config of the tenant, so the next read asks KV (a gate erasing a deleted tenant). */
export function forgetTenantConfig(tenant: string): void {
  configs.delete(tenant);
}

export interface TenantPage {
  tenants: string[];
  /** Pass back to get the next page; null on the last one. */
  cursor: string | null;
}

/**
 * A page of tenant ids in KV's key order. KV's listings are eventually consistent: a tenant
 * created or deleted in the last minute may be missing or still listed.
 */
export async function listTenants(env: StoreEnv, limit: number, cursor?: string): Promise<TenantPage> {
  const page = await env.CONFIG.list({ prefix: "tenant:", limit, cursor });
  return {
    tenants: page.keys.map((k) => k.name.slice("tenant:".length)),
    cursor: page.list_complete ? null : page.cursor,
  };
}
