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

/**
 * Two tenants over the stack's "use1" and "euw1" sims (model llama-sim, alias "chat"): `resumable`
 * routes over both, each able to resume a cut stream; `plain` over use1 alone, one attempt and no
 * resume, so a cut stream has nowhere to go.
 */
export async function resumeTenants(stack: Stack, name: string, keys: { resumable: string; plain: string }): Promise<void> {
  const url = (id: string) => `http://127.0.0.1:${stack.sims[id]!.port}/v1`;
  const backends = (resume: boolean) => [
    { id: "use1", region: "us-east", url: url("use1"), model: "llama-sim", resume },
    { id: "euw1", region: "eu-west", url: url("euw1"), model: "llama-sim", resume },
  ];
  await stack.createTenant(
    name,
    { backends: backends(true), models: { chat: { route: ["use1", "euw1"], order: "pinned" } } },
    keys.resumable,
  );
  await stack.createTenant(
    `${name}-plain`,
    { backends: backends(false), models: { chat: { route: ["use1"] } }, retry: { maxAttempts: 1 } },
    keys.plain,
  );
}
