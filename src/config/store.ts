// Tenant configs and API keys in KV, memoised per isolate for CONFIG_CACHE_TTL_SECONDS.
//   tenant:<id>        the tenant's config (JSON, as validated)
//   key:<sha256 hex>   the tenant id an API key belongs to (keys are never stored in clear)
//   tenant-keys:<id>   the key hashes of a tenant, so deleting a tenant revokes them
//   tenant-gates:<id>  the most gates (limits.shards) the tenant ever had, so deleting it erases them all
import { TenantConfigSchema, type TenantConfig } from "./schema";
import { TtlCache } from "./cache";

interface StoreEnv {
  CONFIG: KVNamespace;
  CONFIG_CACHE_TTL_SECONDS?: string;
}

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** A tenant may hold this many API keys at once. */
export const MAX_KEYS_PER_TENANT = 100;

const configs = new TtlCache<TenantConfig | null>(1_000);
const keyOwners = new TtlCache<string | null>(10_000);
/** API key -> its hash, so a known key costs no digest per request (isolate memory only). */
const keyHashes = new TtlCache<string>(10_000);

function ttlMs(env: StoreEnv): number {
  const seconds = Number(env.CONFIG_CACHE_TTL_SECONDS ?? "5");
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 5000;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function readTenantConfig(env: StoreEnv, tenant: string): Promise<TenantConfig | null> {
  const cached = configs.get(tenant);
  if (cached !== undefined) return cached;
  const raw = await env.CONFIG.get(`tenant:${tenant}`, "json");
  // Re-parse so configs stored before a new field existed get its default.
  const parsed = raw === null ? null : TenantConfigSchema.safeParse(raw);
  const config = parsed?.success ? parsed.data : null;
  configs.set(tenant, config, ttlMs(env));
  return config;
}

export async function writeTenantConfig(env: StoreEnv, tenant: string, config: TenantConfig): Promise<void> {
  await env.CONFIG.put(`tenant:${tenant}`, JSON.stringify(config));
  configs.set(tenant, config, ttlMs(env));
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

/** Deletes the tenant's config and revokes all its keys. Returns whether it existed. */
export async function deleteTenant(env: StoreEnv, tenant: string): Promise<boolean> {
  const existed = (await env.CONFIG.get(`tenant:${tenant}`)) !== null;
  const hashes = await tenantKeyHashes(env, tenant);
  await Promise.all([
    ...hashes.map((h) => env.CONFIG.delete(`key:${h}`)),
    env.CONFIG.delete(`tenant-keys:${tenant}`),
    env.CONFIG.delete(`tenant:${tenant}`),
  ]);
  for (const h of hashes) keyOwners.delete(h);
  configs.delete(tenant);
  return existed;
}

/** Drops this isolate's cached config of the tenant, so the next read asks KV (a gate erasing a deleted tenant). */
export function forgetTenantConfig(tenant: string): void {
  configs.delete(tenant);
}

export type AddKeyResult = { ok: true; id: string } | { ok: false; reason: "taken" | "limit" };

/**
 * A key's id: the first 16 hex digits of its SHA-256 hash. It names a key in listings and
 * revocations without revealing it (the key itself is shown once, when it is added).
 */
export const keyId = (hash: string): string => hash.slice(0, 16);

async function tenantKeyHashes(env: StoreEnv, tenant: string): Promise<string[]> {
  return ((await env.CONFIG.get(`tenant-keys:${tenant}`, "json")) as string[] | null) ?? [];
}

/** The ids of the tenant's keys, in the order they were added. */
export async function listTenantKeys(env: StoreEnv, tenant: string): Promise<string[]> {
  return (await tenantKeyHashes(env, tenant)).map(keyId);
}

/**
 * Revokes the tenant's key with this id. Returns whether it had one. Isolates that looked the key
 * up in the last CONFIG_CACHE_TTL_SECONDS may still accept it until their cache expires.
 */
export async function revokeTenantKey(env: StoreEnv, tenant: string, id: string): Promise<boolean> {
  const hashes = await tenantKeyHashes(env, tenant);
  const hash = hashes.find((h) => keyId(h) === id);
  if (!hash) return false;
  await env.CONFIG.delete(`key:${hash}`);
  await env.CONFIG.put(`tenant-keys:${tenant}`, JSON.stringify(hashes.filter((h) => h !== hash)));
  keyOwners.delete(hash);
  return true;
}

export async function addTenantKey(env: StoreEnv, tenant: string, key: string): Promise<AddKeyResult> {
  const hash = await sha256Hex(key);
  const owner = await env.CONFIG.get(`key:${hash}`);
  if (owner !== null && owner !== tenant) return { ok: false, reason: "taken" };
  const hashes = await tenantKeyHashes(env, tenant);
  if (!hashes.includes(hash)) {
    if (hashes.length >= MAX_KEYS_PER_TENANT) return { ok: false, reason: "limit" };
    hashes.push(hash);
    await env.CONFIG.put(`tenant-keys:${tenant}`, JSON.stringify(hashes));
  }
  await env.CONFIG.put(`key:${hash}`, tenant);
  keyOwners.set(hash, tenant, ttlMs(env));
  return { ok: true, id: keyId(hash) };
}

/** The tenant an API key belongs to, or null. */
export async function tenantForKey(env: StoreEnv, key: string): Promise<string | null> {
  let hash = keyHashes.get(key);
  if (hash === undefined) keyHashes.set(key, (hash = await sha256Hex(key)), ttlMs(env));
  const cached = keyOwners.get(hash);
  if (cached !== undefined) return cached;
  const owner = await env.CONFIG.get(`key:${hash}`);
  keyOwners.set(hash, owner, ttlMs(env));
  return owner;
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
