// An end-to-end stack: sims in two regions plus the router on workerd, driven over real HTTP.
import { SimServer } from "../../sim/server";
import { startRouter, type RunningRouter } from "../../scripts/router-on-miniflare";
import { createTenantWithKey } from "../../scripts/tenant-admin";

export const ADMIN_TOKEN = "e2e-admin-token";

export interface Stack {
  router: RunningRouter;
  sims: Record<string, SimServer>;
  admin(path: string, init?: RequestInit): Promise<Response>;
  createTenant(name: string, config: unknown, key: string): Promise<void>;
  close(): Promise<void>;
}

export async function startStack(simIds: string[]): Promise<Stack> {
  const sims: Record<string, SimServer> = {};
  for (const id of simIds) {
    sims[id] = new SimServer({ id, port: 0, tokensPerSecond: 400, firstTokenMs: 5 });
    await sims[id].listen();
  }
  const router = await startRouter({ adminToken: ADMIN_TOKEN, vars: { CONFIG_CACHE_TTL_SECONDS: "1" } });
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${router.url}/admin${path}`, {
      ...init,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...(init.headers ?? {}) },
    });
  return {
    router,
    sims,
    admin,
    createTenant: (name, config, key) => createTenantWithKey({ fetch, baseUrl: router.url, adminToken: ADMIN_TOKEN, name, config, key }),
    async close() {
      await router.dispose();
      await Promise.all(Object.values(sims).map((s) => s.close()));
    },
  };
}
