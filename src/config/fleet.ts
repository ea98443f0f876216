// Fleet backends and pools: operator-level backends shared by tenants (README, "Shared pools"), in KV.
//   fleet-backend:<id>   a fleet backend: a tenant backend's fields plus its `pool`
//   fleet-pool:<id>      a pool: where its PoolGate lives; the gate owns its backends' capacity
// A tenant's route names a fleet backend by id; resolveTenantConfig adds the fleet backends a
// config names to its `backends`, so everything past the config store sees one list.
import * as z from "zod";
import { BackendSchema, type BackendConfig, type TenantConfig } from "./schema";
import { TtlCache } from "./cache";
import { type StoreEnv, cacheTtlMs } from "./store-env";
import { type ConfigIssue, backendRefIssues, idsToLookUp, referencedBackendIds } from "./backend-refs";

export const FleetBackendSchema = BackendSchema.extend({
  // The id comes from the path; a body that names one must name the same.
  id: BackendSchema.shape.id.optional(),
  pool: BackendSchema.shape.id,
});
export type FleetBackend = BackendConfig & { pool: string };

/** Where a Durable Object may be placed (Cloudflare's location hints). */
export const LOCATION_HINTS = ["wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me"] as const;

export const PoolSchema = z.object({
  /** Where the pool's gate is placed, near its backends: set at the pool's first write, kept after. */
  locationHint: z.enum(LOCATION_HINTS).optional(),
  description: z.string().max(500).optional(),
});
export type Pool = z.output<typeof PoolSchema>;

/** Fleet backends and pools listed per page at most (the listing's `limit` is 1-1000). */
const fleetBackends = new TtlCache<FleetBackend | null>(1_000);

const backendKey = (id: string) => `fleet-backend:${id}`;
const poolKey = (id: string) => `fleet-pool:${id}`;

export async function readFleetBackend(env: StoreEnv, id: string): Promise<FleetBackend | null> {
  const cached = fleetBackends.get(id);
  if (cached !== undefined) return cached;
  const raw = await env.CONFIG.get(backendKey(id), "json");
  const parsed = raw === null ? null : BackendSchema.safeParse(raw);
  const backend = parsed?.success && parsed.data.pool !== undefined ? (parsed.data as FleetBackend) : null;
  fleetBackends.set(id, backend, cacheTtlMs(env));
  return backend;
}

export async function writeFleetBackend(env: StoreEnv, backend: FleetBackend): Promise<void> {
  await env.CONFIG.put(backendKey(backend.id), JSON.stringify(backend));
  fleetBackends.set(backend.id, backend, cacheTtlMs(env));
}

export async function deleteFleetBackend(env: StoreEnv, id: string): Promise<void> {
  await env.CONFIG.delete(backendKey(id));
  fleetBackends.delete(id);
}

export async function readPool(env: StoreEnv, id: string): Promise<Pool | null> {
  const raw = await env.CONFIG.get(poolKey(id), "json");
  const parsed = raw === null ? null : PoolSchema.safeParse(raw);
  return parsed?.success ? parsed.data : null;
}

export async function writePool(env: StoreEnv, id: string, pool: Pool): Promise<void> {
  await env.CONFIG.put(poolKey(id), JSON.stringify(pool));
}

export async function deletePool(env: StoreEnv, id: string): Promise<void> {
  await env.CONFIG.delete(poolKey(id));
}

export interface FleetPage {
  ids: string[];
  /** Pass back to get the next page; null on the last one. */
  cursor: string | null;
}

/** A page of fleet backend ids ("backend") or pool ids ("pool"), in KV's (eventually consistent) key order. */
export async function listFleet(env: StoreEnv, kind: "backend" | "pool", limit: number, cursor?: string): Promise<FleetPage> {
  const prefix = kind === "backend" ? "fleet-backend:" : "fleet-pool:";
  const page = await env.CONFIG.list({ prefix, limit, cursor });
  return { ids: page.keys.map((k) => k.name.slice(prefix.length)), cursor: page.list_complete ? null : page.cursor };
}

/** Every pool's id (the operator keeps a few: they are read in pages of 1,000). */
export async function allPools(env: StoreEnv): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listFleet(env, "pool", 1000, cursor);
    ids.push(...page.ids);
    cursor = page.cursor ?? undefined;
  } while (cursor !== undefined);
  return ids;
}

/**
 * The config with the fleet backends it names added to its backends (its own backends win an id
 * they share, which the admin API refuses anyway). A fleet backend deleted since is left out: its
 * routes go on with their other backends.
 */
export async function resolveTenantConfig(env: StoreEnv, config: TenantConfig): Promise<TenantConfig> {
  const named = referencedBackendIds(config);
  if (named.size === 0) return config;
  const found = await Promise.all([...named].map((id) => readFleetBackend(env, id)));
  const fleet = found.filter((b): b is FleetBackend => b !== null);
  return fleet.length === 0 ? config : { ...config, backends: [...config.backends, ...fleet] };
}

/** What is wrong with the backend ids and pools a config names, once the fleet is asked (see backend-refs.ts). */
export async function fleetIssues(env: StoreEnv, config: TenantConfig): Promise<ConfigIssue[]> {
  const ids = idsToLookUp(config);
  const [backends, pools] = await Promise.all([
    Promise.all(ids.backends.map(async (id) => ((await readFleetBackend(env, id)) ? id : null))),
    Promise.all(ids.pools.map(async (id) => ((await readPool(env, id)) ? id : null))),
  ]);
  const present = (found: (string | null)[]) => new Set(found.filter((id): id is string => id !== null));
  return backendRefIssues(config, { backends: present(backends), pools: present(pools) });
}
