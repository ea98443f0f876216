// A tenant's gate restarts (a deploy, a reset) at the points of a request's life where it once failed,
// leaked or misled: just admitted (lease not yet written), just settled (its row's delete not yet
// written), deleted then restarted, and an admission resent after its reply was lost. Each restart
// is placed exactly: the generation is held at the sim, and the test waits for the lease row.
import { SELF, abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  MESSAGES,
  chat,
  createTenant,
  eventually,
  expectError,
  expectedText,
  gateOf,
  gateStats,
  holder,
  readSse,
  release,
  resetSims,
  simConfig,
  simStats,
  storedLeases,
} from "./helpers";

beforeEach(resetSims);

/** The gate forgets the leases it has not written yet, then restarts: a restart within the write-behind window. */
async function restartBeforeLeaseWrite(tenant: string): Promise<void> {
  await runInDurableObject(gateOf(tenant), (instance, state) => {
    (instance as unknown as { leaseRows: { discard(): void } }).leaseRows.discard();
    state.storage.sql.exec(`DELETE FROM leases`);
  });
  await abortAllDurableObjects();
}

describe("a gate restart just after admission, before the lease is written", () => {
  /** Two requests held at the sim across a restart that forgot their leases; `whileHeld` runs before their release. */
  async function heldAcrossRestart(config: Parameters<typeof simConfig>[1], hold: string, whileHeld: (tenant: string) => Promise<void>) {
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { maxConcurrency: 2 }, ...config }));
    const json = holder(key, hold);
    const sse = holder(key, hold, { stream: true });
    // Both reached the sim, which holds them until released (a release before that would be lost).
    await eventually(async () => (await gateStats(tenant)).inFlight === 2 && (await simStats("a")).held === 2);
    await restartBeforeLeaseWrite(tenant);
    expect((await gateStats(tenant)).inFlight).toBe(0);
    await whileHeld(tenant);
    await release(hold);
    const answered = await json;
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as any).choices[0].message.content).toBe(expectedText());
    const streamed = await readSse(await sse);
    expect(streamed.text).toBe(expectedText());
    expect(streamed.done).toBe(true);
    expect(streamed.error).toBeUndefined();
    const stats = await gateStats(tenant);
    expect(stats.counters.adopted).toBe(2);
    await eventually(async () => (await gateStats(tenant)).inFlight === 0);
  }

  it("adopts the live request at its first token, where it tells it: its answer arrives whole, JSON and SSE, and its slot is counted again", async () => {
    // A hedged model's attempts tell their first tokens.
    await heldAcrossRestart({ hedging: { enabled: true } }, "adopt", async () => {});
  });

  it("adopts the live request at its lease renewal, where it does not tell its first token", async () => {
    // Still held at the sim: the renewal (every 10 s) is its first call to the restarted gate.
    await heldAcrossRestart({}, "adopt-renewal", async (tenant) => {
      await eventually(async () => (await gateStats(tenant)).inFlight === 2, 30_000);
    });
  }, 45_000);
});

describe("a gate restart just after settle", () => {
  it("never brings the settled lease back: settle answers once its row is gone", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const gate = gateOf(tenant);
    const admitted = await gate.admit({ tenant, requestId: "req-settled", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    await eventually(async () => (await storedLeases(tenant)) === 1);
    await gate.settle(admitted.leaseId, { backendId: "a", outcome: "success", durationMs: 5, chunks: 3 }, "complete");
    expect(await storedLeases(tenant)).toBe(0);
    await abortAllDurableObjects();
    expect((await gateStats(tenant)).inFlight).toBe(0);
  });

  it("leaves the one slot free for the next request (no 504 behind a resurrected lease)", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { maxConcurrency: 1, maxQueueWaitMs: 5_000 } }));
    for (const stream of [false, true]) {
      const held = holder(key, "settle", { stream }, { "idempotency-key": `k-settle-${stream}` });
      // Released once the sim holds it: a keyed lease is written at admission, before the call reaches the sim.
      await eventually(async () => (await storedLeases(tenant)) === 1 && (await simStats("a")).held === 1);
      await release("settle");
      await (await held).arrayBuffer();
      await eventually(async () => (await gateStats(tenant)).inFlight === 0);
      await abortAllDurableObjects();
      expect(await storedLeases(tenant)).toBe(0);
      const next = await chat(key, { model: "chat", messages: MESSAGES });
      expect(next.status).toBe(200);
      await next.arrayBuffer();
    }
  });
});

describe("a tenant deleted, then its gate restarted, while a request is in flight", () => {
  it("ends the request 410 tenant_deleted (JSON), or with that error event (SSE), not lease_lost", async () => {
    // A hedged model's attempts tell their first tokens: that call is the one the deletion answers.
    const { tenant, key } = await createTenant(simConfig(["a"], { hedging: { enabled: true } }));
    const json = holder(key, "deleted");
    const sse = holder(key, "deleted", { stream: true });
    // Both reached the sim, which holds them until released (a release before that would be lost).
    await eventually(async () => (await gateStats(tenant)).inFlight === 2 && (await simStats("a")).held === 2);
    const deleted = await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN });
    expect(deleted.status).toBe(200);
    await abortAllDurableObjects();
    await release("deleted");
    await expectError(await json, 410, "tenant_deleted");
    const streamed = await readSse(await sse);
    expect(streamed.done).toBe(false);
    expect(streamed.error?.error.code).toBe("tenant_deleted");
  });
});

describe("an admission resent after its reply was lost", () => {
  it("gets the lease the first one got, plain and keyed, before and after a restart", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const record = { key: "idem:k-resent", kind: "idempotency" as const, bodyHash: "h", shared: true };
    for (const [requestId, extra] of [
      ["req-plain", {}],
      ["req-keyed", { record }],
    ] as const) {
      const admit = { tenant, requestId, alias: "chat", priority: "normal" as const, promptTokens: 10, ...extra };
      const gate = gateOf(tenant);
      const first = await gate.admit(admit);
      if (first.kind !== "lease") throw new Error("not admitted");
      expect(await gate.admit(admit)).toMatchObject({ kind: "lease", leaseId: first.leaseId });
      await eventually(async () => (await storedLeases(tenant)) === 1);
      await abortAllDurableObjects();
      expect(await gateOf(tenant).admit(admit)).toMatchObject({ kind: "lease", leaseId: first.leaseId });
      expect((await gateStats(tenant)).inFlight).toBe(1);
      await gateOf(tenant).settle(first.leaseId, null, "complete");
      expect((await gateStats(tenant)).inFlight).toBe(0);
    }
  });
});
