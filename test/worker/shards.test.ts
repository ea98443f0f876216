// A tenant spread over several gates (limits.shards): each gate enforces its share of the limits,
// keyed requests always meet their twins and stored answers in one gate, and the admin API shows
// the gates added up.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectedText,
  gateOf,
  gateStats,
  holder,
  MESSAGES,
  readSse,
  release,
  resetSims,
  simConfig,
} from "./helpers";
import { gateName, shardFor } from "../../src/admission/gate-naming";
import type { TenantGate } from "../../src/gate/tenant-gate";

beforeEach(resetSims);

/** Idempotency-Keys whose requests go to shard `shard` of `shards`. */
function keysFor(shard: number, shards: number, count: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) if (shardFor(`idem:k${i}`, shards) === shard) keys.push(`k${i}`);
  return keys;
}

const twoShards = (limits: Record<string, number> = {}) =>
  simConfig(["a"], {
    backends: [{ ...simConfig(["a"]).backends[0]!, maxConcurrency: 2 }],
    limits: { maxConcurrency: 2, maxQueue: 0, shards: 2, ...limits },
  });

describe("sharded gates", () => {
  it("gives each shard its share of the limits: one shard full does not stop the other", async () => {
    const { tenant, key } = await createTenant(twoShards());
    const [k0, k0b] = keysFor(0, 2, 2);
    const [k1] = keysFor(1, 2, 1);
    // Shard 0's one slot is held...
    const held = holder(key, "slot", {}, { "idempotency-key": k0! });
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    // ...so another request for shard 0 is turned away (no queue), while shard 1 serves.
    const rejected = await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": k0b! });
    expect(rejected.status).toBe(429);
    const served = await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": k1! });
    expect(served.status).toBe(200);
    await release("slot");
    expect((await held).status).toBe(200);
  });

  it("replays an Idempotency-Key from the shard that recorded it", async () => {
    const { key } = await createTenant(twoShards({ maxQueue: 4 }));
    for (const k of [...keysFor(0, 2, 1), ...keysFor(1, 2, 1)]) {
      const first = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true }, { "idempotency-key": k }));
      const again = await chat(key, { model: "chat", messages: MESSAGES, stream: true }, { "idempotency-key": k });
      expect(again.headers.get("x-sluice-replay")).toBe("stored");
      expect((await readSse(again)).text).toBe(first.text);
      expect(first.text).toBe(expectedText());
    }
  });

  it("spreads requests without a key over the shards, and adds the shards up in stats and metrics", async () => {
    const { tenant, key } = await createTenant(twoShards({ maxConcurrency: 8, maxQueue: 16 }));
    const keyed = [...keysFor(0, 2, 2), ...keysFor(1, 2, 2)];
    await Promise.all([
      ...keyed.map((k) => chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": k }).then((r) => r.arrayBuffer())),
      ...Array.from({ length: 4 }, () => chat(key, { model: "chat", messages: MESSAGES }).then((r) => r.arrayBuffer())),
    ]);
    await eventually(async () => (await gateStats(tenant)).counters.completed === 8);
    const stats = await gateStats(tenant);
    expect(stats.shards).toHaveLength(2);
    for (const shard of stats.shards) expect(shard.counters.completed).toBeGreaterThanOrEqual(2);
    expect(stats.counters.admitted).toBe(8);
    expect(stats.latencyMs.total.count).toBe(8);
    expect(stats.limits).toMatchObject({ maxConcurrency: 8, shards: 2 });
    expect(stats.backends[0]).toMatchObject({ id: "a", maxConcurrency: 2, attempts: 8, successes: 8, breaker: "closed" });
    expect(stats.backends[0].ttftMs.count).toBe(8);
    expect(stats.histograms).toBeUndefined();
    const metrics = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain(`sluice_completed_total{tenant="${tenant}"} 8`);
  });

  it("tells every gate of a new config, and a gate left over after fewer shards takes nothing new", async () => {
    const { tenant } = await createTenant(twoShards());
    const put = (shards: number) =>
      SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, {
        method: "PUT",
        headers: { ...ADMIN, "content-type": "application/json" },
        body: JSON.stringify({ ...twoShards(), limits: { maxConcurrency: 4, shards } }),
      });
    expect((await put(1)).status).toBe(200);
    const leftOver = gateOf(gateName(tenant, 1));
    const limitOf = async (stub: DurableObjectStub<TenantGate>) => (await stub.stats()).limits?.maxConcurrency;
    expect(await limitOf(leftOver)).toBe(0);
    expect(await limitOf(gateOf(tenant))).toBe(4);
    const bad = await put(4);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.message).toContain("backends.0.maxConcurrency: must be at least limits.shards (4)");
  });
});
