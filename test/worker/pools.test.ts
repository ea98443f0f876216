// Shared pools against a real sim: one fleet backend's capacity held for every tenant by its
// PoolGate. However many tenants send, the sim never runs more than the backend's maxConcurrency;
// a saturated backend is divided by weight; one tenant alone gets all of it; credits come back when
// tenants go idle and after gates restart.
import { abortAllDurableObjects, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, chat, createTenant, eventually, gateStats, MESSAGES, release, resetSims, simStats, simUrl, storedLeases } from "./helpers";

beforeEach(resetSims);

const WAIT_MS = 60_000;
const TEST_MS = 3 * WAIT_MS;
let counter = 0;

const admin = (path: string, method = "GET", body?: unknown) =>
  SELF.fetch(`https://sluice.test/admin${path}`, {
    method,
    headers: { ...ADMIN, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/** A fresh pool with one fleet backend on sim a, `capacity` generations at once. */
async function sharedBackend(capacity: number): Promise<{ pool: string; backend: string }> {
  const n = counter++;
  const pool = `pool-${n}-${Date.now().toString(36)}`;
  const backend = `gpu-${n}-${Date.now().toString(36)}`;
  expect((await admin(`/pools/${pool}`, "PUT", { locationHint: "enam" })).status).toBe(200);
  const put = await admin(`/backends/${backend}`, "PUT", {
    region: "us-east",
    url: simUrl("a"),
    model: "sim-model",
    maxConcurrency: capacity,
    pool,
  });
  expect(put.status).toBe(200);
  return { pool, backend };
}

/** A tenant with no backends of its own, routing to the fleet backend. */
const fleetTenant = (backend: string, extra: Record<string, unknown> = {}) =>
  createTenant({
    models: { chat: { route: [backend] } },
    limits: { maxConcurrency: 16, maxQueue: 64, maxQueueWaitMs: WAIT_MS },
    ...extra,
  } as never);

const poolStats = async (pool: string) => ((await (await admin(`/pools/${pool}`)).json()) as any).stats;
const tenantIn = async (pool: string, tenant: string) =>
  (await poolStats(pool)).tenants.find((t: { tenant: string }) => t.tenant === tenant);

/** Sends `n` requests held in the sim under `hold`; resolves each to its status once its body is read. */
const held = (key: string, hold: string, n: number) =>
  Array.from({ length: n }, async () => {
    const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4, sim_fault: { hold } });
    await res.arrayBuffer();
    return res.status;
  });

/** Releases `hold` until every request ended; all must have answered 200. */
async function drain(hold: string, requests: Promise<number>[]): Promise<void> {
  let ended = false;
  const all = Promise.all(requests).finally(() => (ended = true));
  await eventually(async () => {
    await release(hold);
    return ended;
  }, WAIT_MS);
  expect((await all).every((s) => s === 200)).toBe(true);
}

describe("shared pools", () => {
  it("never runs more than the backend's capacity for two tenants, gives one alone all of it, and splits it by weight", {
    timeout: TEST_MS,
  }, async () => {
    const { pool, backend } = await sharedBackend(4);
    const heavy = await fleetTenant(backend, { pools: { [pool]: { weight: 3 } } });
    const light = await fleetTenant(backend);
    // Alone, the heavy tenant gets all four slots (work-conserving).
    const first = held(heavy.key, "p1", 10);
    await eventually(async () => (await simStats("a")).held === 4, WAIT_MS);
    // (The pool hears of attempts in flight at the gate's next report.)
    await eventually(async () => (await tenantIn(pool, heavy.tenant))?.inFlight === 4, WAIT_MS);
    // The light tenant waits in its own queue, not in the backend's.
    const second = held(light.key, "p1", 6);
    await eventually(async () => (await tenantIn(pool, light.tenant))?.waiting > 0, WAIT_MS);
    expect((await simStats("a")).held).toBe(4);
    // The first four end: the backend is shared 3:1 while both have requests waiting.
    await release("p1");
    await eventually(async () => (await simStats("a")).held === 4 && (await simStats("a")).completed >= 4, WAIT_MS);
    const shares = async () => [await tenantIn(pool, heavy.tenant), await tenantIn(pool, light.tenant)];
    await eventually(async () => (await shares()).every((t) => t.inFlight === t.target), WAIT_MS);
    const [h, l] = await shares();
    expect([h.inFlight, l.inFlight]).toEqual([3, 1]);
    expect([h.target, l.target]).toEqual([3, 1]);
    expect((await simStats("a")).held).toBe(4);
    await drain("p1", [...first, ...second]);
    expect((await simStats("a")).peakActive).toBe(4);
    // Idle again: every credit goes back to the pool, and the tokens served are counted per tenant.
    await eventually(async () => (await poolStats(pool)).held === 0, WAIT_MS);
    expect((await tenantIn(pool, heavy.tenant)).tokens).toBeGreaterThan(0);
    expect((await tenantIn(pool, light.tenant)).tokens).toBeGreaterThan(0);
  });

  it("never runs more than the capacity for ten tenants at once", { timeout: TEST_MS }, async () => {
    const { backend } = await sharedBackend(4);
    const tenants = await Promise.all(Array.from({ length: 10 }, () => fleetTenant(backend)));
    const requests = tenants.flatMap((t) => held(t.key, "p10", 3));
    await eventually(async () => (await simStats("a")).held === 4, WAIT_MS);
    await drain("p10", requests);
    expect((await simStats("a")).completed).toBe(30);
    expect((await simStats("a")).peakActive).toBe(4);
  });

  it("keeps the count across a gate restart: attempts in flight stay counted, and their credits come back when they end", {
    timeout: TEST_MS,
  }, async () => {
    const { pool, backend } = await sharedBackend(4);
    const one = await fleetTenant(backend);
    const other = await fleetTenant(backend);
    const first = held(one.key, "pr", 4);
    await eventually(async () => (await simStats("a")).held === 4, WAIT_MS);
    await eventually(async () => (await storedLeases(one.tenant)) === 4);
    // Every object restarts (the gates and the pool): the ledger and the leases come back from storage.
    await abortAllDurableObjects();
    const second = held(other.key, "pr", 4);
    await eventually(async () => (await tenantIn(pool, other.tenant))?.waiting > 0, WAIT_MS);
    expect((await simStats("a")).held).toBe(4);
    expect((await poolStats(pool)).held).toBe(4);
    // The restarted pool goes on reading its backend's /metrics (its readings are not kept: this one is new).
    await eventually(async () => (await poolStats(pool)).backends[0].reported?.running === 4, WAIT_MS);
    await drain("pr", [...first, ...second]);
    expect((await simStats("a")).peakActive).toBe(4);
    await eventually(async () => (await poolStats(pool)).held === 0, WAIT_MS);
  });
});

describe("shared pools: sharded tenants and metrics", () => {
  it("never runs more than the capacity for a sharded tenant, and shows the pool in stats and Prometheus", {
    timeout: TEST_MS,
  }, async () => {
    const { pool, backend } = await sharedBackend(4);
    const sharded = await fleetTenant(backend, { limits: { maxConcurrency: 16, maxQueue: 64, maxQueueWaitMs: WAIT_MS, shards: 2 } });
    const requests = held(sharded.key, "ps", 10);
    await eventually(async () => (await simStats("a")).held === 4, WAIT_MS);
    await eventually(async () => (await tenantIn(pool, sharded.tenant))?.inFlight === 4, WAIT_MS);
    const stats = await gateStats(sharded.tenant);
    expect(stats.backends.find((b: { id: string }) => b.id === backend)).toMatchObject({ inFlight: 4, pool: { id: pool, credits: 4 } });
    const scrape = await (await admin("/metrics")).text();
    expect(scrape).toContain(`sluice_pool_capacity{pool="${pool}",backend="${backend}"} 4`);
    expect(scrape).toContain(`sluice_pool_tenant_credits_held{pool="${pool}",tenant="${sharded.tenant}"} 4`);
    expect(scrape).toContain(`sluice_pool_up{pool="${pool}"} 1`);
    const own = await (await admin(`/tenants/${sharded.tenant}/metrics`)).text();
    expect(own).toMatch(
      new RegExp(`sluice_backend_pool_credits\\{tenant="${sharded.tenant}",backend="${backend}",region="us-east",pool="${pool}"\\} 4`),
    );
    await drain("ps", requests);
    expect((await simStats("a")).peakActive).toBe(4);
  });
});

describe("fleet admin", () => {
  it("keeps a fleet backend's key write-only, and refuses what does not add up", async () => {
    const { pool, backend } = await sharedBackend(2);
    const put = await admin(`/backends/${backend}`, "PUT", {
      region: "us-east",
      url: simUrl("a"),
      model: "sim-model",
      apiKey: "sk-upstream",
      pool,
    });
    expect(await put.json()).toMatchObject({ id: backend, pool, hasApiKey: true });
    const read = (await (await admin(`/backends/${backend}`)).json()) as Record<string, unknown>;
    expect(read).not.toHaveProperty("apiKey");
    expect(JSON.stringify(await (await admin("/backends")).json())).not.toContain("sk-upstream");
    // A PUT without a key keeps the stored one.
    await admin(`/backends/${backend}`, "PUT", { region: "us-east", url: simUrl("a"), model: "sim-model", pool });
    expect(await (await admin(`/backends/${backend}`)).json()).toMatchObject({ hasApiKey: true });

    const refused = async (res: Response, status: number, message: RegExp) => {
      expect(res.status).toBe(status);
      expect(((await res.json()) as any).error.message).toMatch(message);
    };
    await refused(
      await admin(`/backends/x-${backend}`, "PUT", { region: "r", url: simUrl("a"), model: "m", pool: "nope" }),
      400,
      /unknown pool "nope"/,
    );
    await refused(
      await admin(`/backends/${backend}`, "PUT", { id: "other", region: "r", url: simUrl("a"), model: "m", pool }),
      400,
      /names backend "other"/,
    );
    const tenantConfig = (extra: Record<string, unknown>) => ({ models: { chat: { route: [backend] } }, ...extra });
    await refused(
      await admin("/tenants/fleet-bad-1", "PUT", { models: { chat: { route: ["no-such-gpu"] } } }),
      400,
      /models\.chat\.route\.0: unknown backend "no-such-gpu"/,
    );
    await refused(
      await admin("/tenants/fleet-bad-2", "PUT", tenantConfig({ backends: [{ id: backend, region: "r", url: simUrl("a"), model: "m" }] })),
      400,
      /backends\.0\.id: .* is a fleet backend's id/,
    );
    await refused(
      await admin("/tenants/fleet-bad-3", "PUT", tenantConfig({ pools: { nowhere: { weight: 2 } } })),
      400,
      /pools\.nowhere: unknown pool "nowhere"/,
    );
    await refused(await admin(`/pools/${pool}`, "DELETE"), 409, /has 1 backend/);
    expect((await admin(`/backends/${backend}`, "DELETE")).status).toBe(200);
    expect((await admin(`/backends/${backend}`)).status).toBe(404);
    expect((await admin(`/pools/${pool}`, "DELETE")).status).toBe(200);
    expect((await admin(`/pools/${pool}`)).status).toBe(404);
  });

  it("leaves fleet backends, pools and weights to the operator", async () => {
    const { pool, backend } = await sharedBackend(2);
    const { tenant } = await fleetTenant(backend);
    const issued = await admin(`/tenants/${tenant}/admin-keys`, "POST");
    expect(issued.status).toBe(201);
    const { key } = (await issued.json()) as { key: string };
    const asTenant = (path: string, method: string, body?: unknown) =>
      SELF.fetch(`https://sluice.test/admin${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    expect((await asTenant("/backends", "GET")).status).toBe(403);
    expect((await asTenant(`/pools/${pool}`, "GET")).status).toBe(403);
    const patch = await asTenant(`/tenants/${tenant}`, "PATCH", { pools: { [pool]: { weight: 100 } } });
    expect(patch.status).toBe(403);
    expect(((await patch.json()) as any).error.message).toMatch(/pools/);
  });

  it("serves a tenant through a fleet backend, reads its load, and a deleted tenant leaves nothing in the pool", {
    timeout: TEST_MS,
  }, async () => {
    const { pool, backend } = await sharedBackend(2);
    const { tenant, key } = await fleetTenant(backend);
    const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 4 });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await eventually(async () => (await tenantIn(pool, tenant))?.tokens > 0, WAIT_MS);
    // The pool reads its backend's /metrics, and its gates get the reading with their credits.
    await eventually(async () => (await poolStats(pool)).backends[0].reported !== undefined, WAIT_MS);
    expect((await poolStats(pool)).backends[0].reported).toMatchObject({ running: expect.any(Number), waiting: expect.any(Number) });
    await eventually(
      async () => (await gateStats(tenant)).backends.find((b: { id: string }) => b.id === backend)?.reported !== undefined,
      WAIT_MS,
    );
    expect((await admin(`/tenants/${tenant}`, "DELETE")).status).toBe(200);
    expect(await tenantIn(pool, tenant)).toBeUndefined();
  });
});
