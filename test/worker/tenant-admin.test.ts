// Tenants configure their own routes: scoped admin keys, JSON Merge Patch with If-Match, the config
// history and rollback. Real KV, ConfigLog and gates; real sims behind the routes.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_CONFIG_VERSIONS } from "../../src/admin/config-log";
import { ADMIN, chat, createTenant, expectError, MESSAGES, resetSims, simConfig, simUrl } from "./helpers";

beforeEach(resetSims);

const BASE = "https://sluice.test/admin/tenants";

function admin(token: string | Record<string, string>, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const auth = typeof token === "string" ? { authorization: `Bearer ${token}` } : token;
  const { json, ...rest } = init;
  const headers: Record<string, string> = { ...auth, ...(rest.headers as Record<string, string>) };
  if (json !== undefined) headers["content-type"] ??= "application/json";
  return SELF.fetch(`${BASE}${path}`, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json) });
}

/** An admin key issued by the operator for `tenant`. */
async function issueAdminKey(tenant: string): Promise<{ key: string; id: string }> {
  const res = await admin(ADMIN, `/${tenant}/admin-keys`, { method: "POST" });
  expect(res.status).toBe(201);
  return (await res.json()) as { key: string; id: string };
}

const patch = (token: string | Record<string, string>, tenant: string, body: unknown, headers: Record<string, string> = {}) =>
  admin(token, `/${tenant}`, { method: "PATCH", json: body, headers: { "content-type": "application/merge-patch+json", ...headers } });

/**
 * Alias "chat" on sim a (which fails when told), falling back to "viaB" then "viaC". Three regions:
 * a retry prefers another region than the one that failed, so the fallback order alone decides.
 */
const fallbackConfig = () => ({
  ...simConfig(["a", "b", "c"]),
  backends: (["a", "b", "c"] as const).map((s, i) => ({
    id: s,
    region: ["us-east", "eu-west", "ap-northeast"][i]!,
    url: simUrl(s),
    model: "sim-model",
  })),
  models: {
    chat: { route: ["a"], fallbacks: ["viaB", "viaC"], order: "pinned" as const },
    viaB: { route: ["b"], order: "pinned" as const },
    viaC: { route: ["c"], order: "pinned" as const },
  },
});

/** The backend that answered a chat whose first backend (a) fails. */
async function servedBy(key: string): Promise<string | null> {
  const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return res.headers.get("x-sluice-backend");
}

describe("tenant admin keys", () => {
  it("let a tenant change its fallback order, used by the next request, and roll it back", async () => {
    const { tenant, key } = await createTenant(fallbackConfig());
    const { key: own, id } = await issueAdminKey(tenant);
    expect(own).toMatch(/^sluice-admin-[A-Za-z0-9_-]{43}$/);
    expect(await servedBy(key)).toBe("b");

    const changed = await patch(own, tenant, { models: { chat: { fallbacks: ["viaC", "viaB"] } } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).toBe('"2"');
    expect(await servedBy(key)).toBe("c");

    const history: any = await (await admin(own, `/${tenant}/config/history`)).json();
    expect(history.data.map((v: any) => [v.version, v.actor, v.kind])).toEqual([
      [2, `admin-key:${id}`, "patch"],
      [1, "operator", "put"],
    ]);
    expect(history.data[0].diff).toEqual({ models: { chat: { fallbacks: ["viaC", "viaB"] } } });
    // The tenant's view of the first version (the whole config) shows no backend URL.
    expect(JSON.stringify(history.data[1].diff)).not.toContain(simUrl("a"));
    expect(history.data[1].diff.backends[0]).toMatchObject({ id: "a", region: "us-east", model: "sim-model" });

    const rolledBack = await admin(own, `/${tenant}/config/rollback`, { method: "POST", json: { version: 1 } });
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.headers.get("etag")).toBe('"3"');
    expect(await servedBy(key)).toBe("b");
    const latest: any = await (await admin(ADMIN, `/${tenant}/config/history?limit=1`)).json();
    expect(latest.data[0]).toMatchObject({ version: 3, kind: "rollback", rollback_of: 1, actor: `admin-key:${id}` });
    expect(latest.next_before).toBe(3);
  });

  it("reach their own tenant only: another tenant's routes answer 404, as for one that does not exist", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const { tenant: other } = await createTenant(simConfig(["a"]));
    const { key: own } = await issueAdminKey(tenant);
    for (const [method, path] of [
      ["GET", `/${other}`],
      ["PATCH", `/${other}`],
      ["GET", `/${other}/stats`],
      ["GET", `/${other}/keys`],
      ["GET", `/${other}/config/history`],
      ["GET", "/no-such-tenant"],
    ] as const) {
      const res = await admin(own, path, method === "PATCH" ? { method, json: { retry: { maxAttempts: 1 } } } : { method });
      await expectError(res, 404, "tenant_not_found");
    }
    // Its own tenant's stats, keys and dead letters are its to read.
    for (const path of [`/${tenant}/stats`, `/${tenant}/keys`, `/${tenant}/dead-letters`, `/${tenant}/metrics`])
      expect((await admin(own, path)).status, path).toBe(200);
  });

  it("cannot set operator-only fields (403 naming them) nor call operator-only routes", async () => {
    const { tenant } = await createTenant(simConfig(["a", "b"]));
    const { key: own } = await issueAdminKey(tenant);
    await expectError(
      await patch(own, tenant, { limits: { maxConcurrency: 1000, requestsPerMinute: 60 } }),
      403,
      "operator_only_fields",
      /limits\.maxConcurrency, limits\.requestsPerMinute/,
    );
    await expectError(
      await patch(own, tenant, { backends: [{ id: "a", region: "us-east", url: "https://evil.example/v1", model: "m" }] }),
      403,
      "operator_only_fields",
      /backends/,
    );
    // A tenant sees its backends by id, without URLs or credentials.
    const seen: any = await (await admin(own, `/${tenant}`)).json();
    expect(seen.backends.map((b: any) => [b.id, b.url])).toEqual([
      ["a", undefined],
      ["b", undefined],
    ]);
    await expectError(await admin(own, `/${tenant}`, { method: "PUT", json: simConfig(["a"]) }), 403, "operator_only");
    await expectError(await admin(own, `/${tenant}`, { method: "DELETE" }), 403, "operator_only");
    await expectError(await admin(own, `/${tenant}/admin-keys`, { method: "POST" }), 403, "operator_only");
    await expectError(await admin(own, `/${tenant}/admin-keys`), 403, "operator_only");
    await expectError(await admin(own, ""), 403, "operator_only");
    await expectError(
      await SELF.fetch("https://sluice.test/admin/metrics", { headers: { authorization: `Bearer ${own}` } }),
      403,
      "operator_only",
    );
    // The operator may.
    expect((await patch(ADMIN, tenant, { limits: { maxConcurrency: 1000 } })).status).toBe(200);
  });

  it("cannot make sluice call private addresses: effect hosts and webhooks there need the operator's allowance", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const { key: own } = await issueAdminKey(tenant);
    // The deployment allows local backends (ALLOW_LOCAL_BACKENDS = "true" in these tests); that is not enough.
    for (const host of ["127.0.0.1", "localhost", "10.0.0.8", "[::1]"])
      await expectError(
        await patch(own, tenant, { workflows: { effectHosts: [host] } }),
        400,
        "invalid_effect_host",
        /outbound\.allowPrivateHosts/,
      );
    await expectError(
      await patch(own, tenant, { alerts: { webhooks: [{ id: "x", url: "http://127.0.0.1:9999/internal/admin" }] } }),
      400,
      "invalid_webhook_url",
      /outbound\.allowPrivateHosts/,
    );
    await expectError(await patch(own, tenant, { outbound: { allowPrivateHosts: true } }), 403, "operator_only_fields", /outbound/);
    expect((await patch(own, tenant, { workflows: { effectHosts: ["hooks.example.com"] } })).status).toBe(200);
    // The operator allows it for this tenant: then the tenant's admin may.
    expect((await patch(ADMIN, tenant, { outbound: { allowPrivateHosts: true } })).status).toBe(200);
    expect((await patch(own, tenant, { workflows: { effectHosts: ["127.0.0.1"] } })).status).toBe(200);
    // The operator cannot take the allowance back while the tenant's config still relies on it.
    await expectError(await patch(ADMIN, tenant, { outbound: { allowPrivateHosts: false } }), 400, "invalid_effect_host");
  });

  it("learn nothing of the operator's backends through the Host header: an unchanged backend is not judged again", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const { key: own } = await issueAdminKey(tenant);
    const sim = new URL(simUrl("a")).host;
    // As a request whose Host names the sim reaches the router on Cloudflare: that host is its URL's.
    for (const [i, host] of [sim, `localhost:${new URL(simUrl("a")).port}`, "sluice.test"].entries()) {
      const res = await SELF.fetch(`http://${host}/admin/tenants/${tenant}`, {
        method: "PATCH",
        headers: { authorization: `Bearer ${own}`, "content-type": "application/merge-patch+json", host },
        body: JSON.stringify({ retry: { maxAttempts: 2 + i } }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.text()).not.toContain("router itself");
    }
  });

  it("are never API keys, and API keys are never admin keys", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    const { key: own } = await issueAdminKey(tenant);
    await expectError(await chat(own, { model: "chat", messages: MESSAGES }), 401, "invalid_api_key");
    await expectError(await admin(key, `/${tenant}`), 401, "invalid_admin_token");
  });

  it("stop working once revoked (the cache time is 0 in these tests), and go with their tenant", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const first = await issueAdminKey(tenant);
    const second = await issueAdminKey(tenant);
    const listed: any = await (await admin(ADMIN, `/${tenant}/admin-keys`)).json();
    expect(listed.data).toEqual([
      { id: first.id, createdAt: expect.any(String) },
      { id: second.id, createdAt: expect.any(String) },
    ]);
    expect((await admin(ADMIN, `/${tenant}/admin-keys/${first.id}`, { method: "DELETE" })).status).toBe(200);
    await expectError(await admin(first.key, `/${tenant}`), 401, "invalid_admin_token");
    expect((await admin(second.key, `/${tenant}`)).status).toBe(200);
    await expectError(await admin(ADMIN, `/${tenant}/admin-keys/${first.id}`, { method: "DELETE" }), 404, "key_not_found");

    // Deleting the tenant revokes its admin keys and erases its history.
    expect((await admin(ADMIN, `/${tenant}`, { method: "DELETE" })).status).toBe(200);
    await expectError(await admin(second.key, `/${tenant}`), 401, "invalid_admin_token");
    await createTenant(simConfig(["a"]), tenant);
    const history: any = await (await admin(ADMIN, `/${tenant}/config/history`)).json();
    expect(history.data.map((v: any) => v.version)).toEqual([1]);
  });
});

describe("config versions", () => {
  it("lets one of two PATCHes with the same If-Match win; the other gets 412 and changes nothing", async () => {
    const { tenant } = await createTenant(fallbackConfig());
    const etag = (await admin(ADMIN, `/${tenant}`)).headers.get("etag")!;
    expect(etag).toBe('"1"');
    const [x, y] = await Promise.all([
      patch(ADMIN, tenant, { retry: { maxAttempts: 2 } }, { "if-match": etag }),
      patch(ADMIN, tenant, { retry: { maxAttempts: 5 } }, { "if-match": etag }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 412]);
    const [won, lost] = x.status === 200 ? [x, y] : [y, x];
    await expectError(lost, 412, "version_mismatch", /now version 2/);
    const stored: any = await (await admin(ADMIN, `/${tenant}`)).json();
    expect(stored.retry.maxAttempts).toBe(((await won.json()) as any).retry.maxAttempts);
    // A stale If-Match is refused even for a patch that would change nothing.
    await expectError(await patch(ADMIN, tenant, {}, { "if-match": etag }), 412, "version_mismatch");
    // If-Match on a PUT and on a rollback too; "*" matches whatever is current.
    await expectError(
      await admin(ADMIN, `/${tenant}`, { method: "PUT", json: fallbackConfig(), headers: { "if-match": etag } }),
      412,
      "version_mismatch",
    );
    expect(
      (await admin(ADMIN, `/${tenant}`, { method: "PUT", json: fallbackConfig(), headers: { "if-match": "*" } })).headers.get("etag"),
    ).toBe('"3"');
    await expectError(
      await admin(ADMIN, `/${tenant}/config/rollback`, { method: "POST", json: { version: 1 }, headers: { "if-match": '"2"' } }),
      412,
      "version_mismatch",
    );
  });

  it("merges concurrent PATCHes without If-Match: neither change is lost", async () => {
    const { tenant } = await createTenant(fallbackConfig());
    const [x, y] = await Promise.all([
      patch(ADMIN, tenant, { retry: { maxAttempts: 2 } }),
      patch(ADMIN, tenant, { timeouts: { idleMs: 1234 } }),
    ]);
    expect([x.status, y.status]).toEqual([200, 200]);
    const stored: any = await (await admin(ADMIN, `/${tenant}`)).json();
    expect([stored.retry.maxAttempts, stored.timeouts.idleMs]).toEqual([2, 1234]);
  });

  it("refuses a change that breaks routing, naming the field", async () => {
    const { tenant } = await createTenant(fallbackConfig());
    const { key: own } = await issueAdminKey(tenant);
    await expectError(
      await patch(own, tenant, { models: { viaC: { fallbacks: ["chat"] } } }),
      400,
      "invalid_request",
      /models\.chat\.fallbacks: fallback cycle: chat -> viaC -> chat/,
    );
    await expectError(await patch(own, tenant, { models: { chat: { route: [] } } }), 400, "invalid_request", /models\.chat\.route/);
    await expectError(
      await patch(own, tenant, { models: { chat: { route: ["gpu-9"] } } }),
      400,
      "invalid_request",
      /models\.chat\.route\.0: unknown backend "gpu-9"/,
    );
    await expectError(
      await patch(own, tenant, { models: { viaB: null } }),
      400,
      "invalid_request",
      /models\.chat\.fallbacks\.0: unknown model alias "viaB"/,
    );
    await expectError(await patch(own, tenant, ["not", "an", "object"]), 400, "invalid_request");
    // "__proto__" is a key like any other (not a config field): nothing changes, nothing is polluted.
    const proto = await patch(own, tenant, JSON.parse('{"__proto__":{"retry":{"maxAttempts":1}}}'));
    expect(proto.status).toBe(200);
    expect(proto.headers.get("etag")).toBe('"1"');
    expect(({} as Record<string, unknown>).retry).toBeUndefined();
    const stored: any = await (await admin(ADMIN, `/${tenant}`)).json();
    expect(stored.retry.maxAttempts).toBe(3);
    // Nothing was recorded: refused changes and a change that changes nothing make no version.
    expect(((await admin(ADMIN, `/${tenant}/config/history`).then((r) => r.json())) as any).data).toHaveLength(1);
  });

  it(`keeps the last ${MAX_CONFIG_VERSIONS} versions; an older one cannot be rolled back to`, async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    for (let i = 0; i < MAX_CONFIG_VERSIONS; i++)
      expect((await patch(ADMIN, tenant, { retry: { maxAttempts: 1 + (i % 9) } })).status).toBe(200);
    const page: any = await (await admin(ADMIN, `/${tenant}/config/history?limit=100`)).json();
    expect(page.data).toHaveLength(MAX_CONFIG_VERSIONS);
    expect(page.data.at(-1).version).toBe(2);
    expect(((await admin(ADMIN, `/${tenant}/config/history?before=2`).then((r) => r.json())) as any).data).toEqual([]);
    await expectError(await admin(ADMIN, `/${tenant}/config/rollback`, { method: "POST", json: { version: 1 } }), 404, "version_not_found");
  });
});
