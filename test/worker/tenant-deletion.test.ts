// Deleting a tenant erases everything it owned, in every gate, and ends its requests at once.
import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { gateName } from "../../src/admission/gate-naming";
import { MAX_SHARDS } from "../../src/config/schema";
import { SseTranscript } from "../support/sse-transcript";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectError,
  gateOf,
  gateStats,
  holder,
  MESSAGES,
  readSse,
  release,
  resetSims,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

const deleteTenant = (tenant: string) => SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN });

/** Rows left in each of the tenant's gates, table by table, and whether an alarm is set. */
async function leftovers(tenant: string): Promise<string[]> {
  const found: string[] = [];
  for (let shard = 0; shard < MAX_SHARDS; shard++) {
    await runInDurableObject(gateOf(gateName(tenant, shard)), async (_gate, state) => {
      const tables = state.storage.sql
        .exec<{ name: string }>(
          `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'`,
        )
        .toArray();
      for (const { name } of tables) {
        const n = state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM "${name}"`).one().n;
        if (n > 0) found.push(`shard ${shard}: ${n} rows in ${name}`);
      }
      if ((await state.storage.getAlarm()) !== null) found.push(`shard ${shard}: an alarm`);
    });
  }
  return found;
}

/**
 * A gate that had requests in flight keeps one row marking the deletion, and an alarm to erase it
 * (TenantGate.erase): checks that this is all, then lets the mark run out and the alarm erase it.
 */
async function expireDeletionMark(tenant: string): Promise<void> {
  expect(await leftovers(tenant)).toEqual(["shard 0: 1 rows in meta", "shard 0: an alarm"]);
  await runInDurableObject(gateOf(tenant), (_gate, state) => {
    expect(state.storage.sql.exec<{ key: string }>(`SELECT key FROM meta`).one().key).toBe("deleted");
    state.storage.sql.exec(`UPDATE meta SET value = ? WHERE key = 'deleted'`, String(Date.now() - 1));
  });
  await abortAllDurableObjects();
  expect(await runDurableObjectAlarm(gateOf(tenant))).toBe(true);
}

const deadLetterRows = async (tenant: string) =>
  (await env.DB.prepare(`SELECT count(*) AS n FROM dead_letters WHERE tenant = ?`).bind(tenant).first<{ n: number }>())!.n;

describe("DELETE /admin/tenants/{tenant}", () => {
  it("erases the journal, dedup entries, counters, breakers and dead letters of every shard; a re-created id starts empty", async () => {
    const tenant = `del-${crypto.randomUUID().slice(0, 8)}`;
    // Four gates first, then two: the two left behind still hold entries.
    const wide = simConfig(["a"], { limits: { shards: 4, maxConcurrency: 8 }, dedup: { semantic: true } });
    const old = await createTenant(wide, tenant);
    const config = simConfig(["a"], { limits: { shards: 2, maxConcurrency: 8 }, dedup: { semantic: true } });
    // Stored answers: several Idempotency-Keys (spread over both shards) and a deterministic body.
    const keys = Array.from({ length: 12 }, (_, i) => `k-del-${i}`);
    for (const k of keys) await (await chat(old.key, { model: "chat", messages: MESSAGES }, { "idempotency-key": k })).arrayBuffer();
    const gatesWithEntries = async () => (await leftovers(tenant)).filter((l) => l.endsWith("rows in journal")).length;
    await eventually(async () => (await gatesWithEntries()) > 2);
    const narrowed = await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, {
      method: "PUT",
      headers: { ...ADMIN, "content-type": "application/json" },
      body: JSON.stringify(config),
    });
    expect(narrowed.status).toBe(200);
    const deterministic = { model: "chat", messages: MESSAGES, temperature: 0 };
    await (await chat(old.key, deterministic)).arrayBuffer();
    // A dead letter and an open breaker.
    await simControl("a", { failRate: 1, failStatus: 500 });
    // Each failure after attempts leaves a dead letter; a 503 from an open breaker at admission does not.
    let exhausted = 0;
    for (let i = 0; i < 6; i++) {
      const res = await chat(old.key, { model: "chat", messages: MESSAGES });
      if (res.status >= 500 && Number(res.headers.get("x-sluice-attempts")) > 0) exhausted++;
      await res.arrayBuffer();
    }
    await simControl("a", { failRate: 0 });
    // Written after each answer (waitUntil): all of them, before the DELETE, or a late one would outlive it.
    expect(exhausted).toBeGreaterThan(0);
    await eventually(async () => (await deadLetterRows(tenant)) === exhausted);
    expect((await gateStats(tenant)).journal.entries).toBeGreaterThan(0);
    expect(await leftovers(tenant)).not.toEqual([]);

    expect((await deleteTenant(tenant)).status).toBe(200);
    expect(await leftovers(tenant)).toEqual([]);
    expect(await deadLetterRows(tenant)).toBe(0);

    const renewed = await createTenant(config, tenant);
    const before = (await simStats("a")).requests;
    for (const k of keys) {
      const res = await chat(renewed.key, { model: "chat", messages: MESSAGES }, { "idempotency-key": k });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-sluice-replay")).toBeNull();
      await res.arrayBuffer();
    }
    const fresh = await chat(renewed.key, deterministic);
    expect(fresh.headers.get("x-sluice-replay")).toBeNull();
    await fresh.arrayBuffer();
    expect((await simStats("a")).requests).toBe(before + keys.length + 1);
    const stats = await gateStats(tenant);
    expect(stats.counters).toMatchObject({ completed: keys.length + 1, failed: 0, admitted: keys.length + 1 });
    expect(stats.backends[0]).toMatchObject({ breaker: "closed", failures: 0 });
    const dead: any = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters`, { headers: ADMIN })).json();
    expect(dead.data).toEqual([]);
  });

  it("answers queued requests 410 tenant_deleted at once, not after maxQueueWaitMs", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { maxConcurrency: 1, maxQueue: 8, maxQueueWaitMs: 600_000 } }));
    const running = holder(key, "del-queued");
    await eventually(async () => (await simStats("a")).held === 1);
    const queued = chat(key, { model: "chat", messages: MESSAGES });
    await eventually(async () => (await gateStats(tenant)).queue.depth === 1);

    expect((await deleteTenant(tenant)).status).toBe(200);
    await expectError(await queued, 410, "tenant_deleted", /deleted/);
    await release("del-queued");
    await (await running).arrayBuffer();
    // A request sent after the deletion with the old key is refused at the door.
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 401, "invalid_api_key");
  });

  /** A stream whose backend goes quiet after two tokens, of a tenant deleted before its first token. */
  async function deletedMidStream(config: Parameters<typeof simConfig>[1], hold: string) {
    const { tenant, key } = await createTenant(simConfig(["a"], config));
    const running = chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { hold, hang: true, hang_after: 2 } });
    await eventually(async () => (await simStats("a")).held === 1);
    expect((await deleteTenant(tenant)).status).toBe(200);
    await release(hold);
    const sse = await readSse(await running);
    expect(sse.done).toBe(false);
    expect(sse.error?.error.code).toBe("tenant_deleted");
    await expireDeletionMark(tenant);
    expect(await leftovers(tenant)).toEqual([]);
  }

  it("ends a request in flight with tenant_deleted at its next call to the gate: the first token, where it is told", async () => {
    // A hedged model's attempts tell their first tokens. The backend is quiet after two tokens
    // until the idle timeout (10 s): the stream can only end through the gate's answer to the first
    // token, however slow the machine.
    await deletedMidStream({ hedging: { enabled: true } }, "del-inflight");
  });

  it("ends a request in flight with tenant_deleted at its lease renewal, where the first token is not told", async () => {
    // No idle timeout for a minute: the renewal (every 10 s) is the request's next call (or its
    // first token, told if it came over 250 ms after the attempt started, on a slow machine).
    await deletedMidStream({ timeouts: { idleMs: 60_000 } }, "del-renewal");
  }, 40_000);

  it("ends a journaled stream mid-way at its next checkpoint, and the upstream generation is cancelled", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"]));
    await simControl("a", { tokensPerSecond: 20 });
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 2_000 }, { "idempotency-key": "k-del-mid" });
    expect(res.status).toBe(200);
    const sse = new SseTranscript();
    const reading = readSse(res, undefined, sse);
    await eventually(async () => sse.chunks >= 2);
    expect((await deleteTenant(tenant)).status).toBe(200);
    await reading;
    expect(sse.error).toMatchObject({ error: { code: "tenant_deleted" }, partial: true });
    await eventually(async () => (await simStats("a")).active === 0);
    await expireDeletionMark(tenant);
    expect(await leftovers(tenant)).toEqual([]);
  });
});
