// Creates a tenant and its API key through sluice's admin API: the one way worker tests, end-to-end
// tests, the benchmark and `npm run dev` set a tenant up. Web-standard fetch, so it runs in workerd
// (SELF.fetch) and in Node (global fetch) alike.

export interface TenantSetup {
  /** `fetch` to the router: global fetch, or SELF.fetch inside workerd tests. */
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** The router's origin, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  adminToken: string;
  name: string;
  config: unknown;
  key: string;
}

/** PUTs the tenant's config, then adds `key`; throws with the router's answer when either is refused. */
export async function createTenantWithKey(setup: TenantSetup): Promise<void> {
  const headers = { authorization: `Bearer ${setup.adminToken}`, "content-type": "application/json" };
  const tenantUrl = `${setup.baseUrl}/admin/tenants/${encodeURIComponent(setup.name)}`;
  const put = await setup.fetch(tenantUrl, { method: "PUT", headers, body: JSON.stringify(setup.config) });
  if (put.status !== 200) throw new Error(`PUT tenant ${setup.name}: ${put.status} ${await put.text()}`);
  await put.arrayBuffer();
  const post = await setup.fetch(`${tenantUrl}/keys`, { method: "POST", headers, body: JSON.stringify({ key: setup.key }) });
  if (post.status !== 201) throw new Error(`POST key for ${setup.name}: ${post.status} ${await post.text()}`);
  await post.arrayBuffer();
}
