// Admission through the TenantGate: priority order, 429 with Retry-After, 504, slot release.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  chat,
  createTenant,
  eventually,
  expectedText,
  gateStats,
  MESSAGES,
  oneSlot,
  expireLeases,
  gateOf,
  holder,
  readSse,
  release,
  resetSims,
  simStats,
  storedLeases,
} from "./helpers";
import { dispatch } from "../../src/dispatch/dispatch";
import { ReadSizePolicy } from "../../src/dispatch/read-size";
import { JsonSink } from "../../src/stream/json-sink";
import { StreamProgress } from "../../src/stream/relay";
import { LeaseRows } from "../../src/gate/lease-rows";

beforeEach(resetSims);

async function waitForQueue(tenant: string, depth: number): Promise<void> {
  await eventually(async () => (await gateStats(tenant)).queue.depth === depth);
}

describe("admission", () => {
  it("serves queued requests by priority, FIFO within a priority", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const order: string[] = [];
    const send = (name: string, priority: string) =>
      chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": priority }).then(async (r) => {
        expect(r.status).toBe(200);
        await r.arrayBuffer();
        order.push(name);
      });
    const pending: Promise<void>[] = [];
    for (const [i, [name, priority]] of (
      [
        ["low1", "low"],
        ["normal1", "normal"],
        ["low2", "low"],
        ["high1", "high"],
        ["normal2", "normal"],
      ] as const
    ).entries()) {
      pending.push(send(name, priority));
      await waitForQueue(tenant, i + 1);
    }
    await release("slot");
    await held;
    await Promise.all(pending);
    expect(order).toEqual(["high1", "normal1", "normal2", "low1", "low2"]);
  });

  it("answers 429 with Retry-After when the queue is full", async () => {
    const { tenant, key } = await createTenant(oneSlot({ maxQueue: 1 }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const queued = chat(key, { model: "chat", messages: MESSAGES });
    await waitForQueue(tenant, 1);
    const rejected = await chat(key, { model: "chat", messages: MESSAGES, stream: true });
    expect(rejected.status).toBe(429);
    expect(Number(rejected.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(rejected.headers.get("x-request-id")).toBeTruthy();
    const body: any = await rejected.json();
    expect(body.error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
    await release("slot");
    expect((await held).status).toBe(200);
    expect((await queued).status).toBe(200);
  });

  it("repeats a queue-full verdict in the Worker for shedHintMs, except to higher priorities, and counts it", async () => {
    const { tenant, key } = await createTenant(oneSlot({ maxQueue: 1, shedHintMs: 10_000 }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const queued = chat(key, { model: "chat", messages: MESSAGES });
    await waitForQueue(tenant, 1);
    const fromGate = await chat(key, { model: "chat", messages: MESSAGES });
    expect(fromGate.status).toBe(429);
    await fromGate.arrayBuffer();
    // The same verdict, answered without asking the gate: its counter has not moved.
    const fromWorker = await chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "low" });
    expect(fromWorker.status).toBe(429);
    expect(Number(fromWorker.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(fromWorker.headers.get("x-sluice-trace-id")).toMatch(/^[0-9a-f]{32}$/);
    expect(((await fromWorker.json()) as any).error.code).toBe("queue_full");
    expect((await gateStats(tenant)).counters.rejectedQueueFull).toBe(1);
    // A higher priority asks the gate, displaces the queued request, and reports the Worker's 429.
    const high = chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "high" });
    expect((await queued).status).toBe(429);
    await release("slot");
    expect((await high).status).toBe(200);
    const { counters } = await gateStats(tenant);
    expect(counters).toMatchObject({ rejectedQueueFull: 3, shedByWorker: 1 });
    await held;
  });

  it("lets high priority displace the newest low-priority waiter when full", async () => {
    const { tenant, key } = await createTenant(oneSlot({ maxQueue: 1 }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const low = chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "low" });
    await waitForQueue(tenant, 1);
    const high = chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "high" });
    const lowRes = await low;
    expect(lowRes.status).toBe(429);
    expect(((await lowRes.json()) as any).error.message).toMatch(/displaced/);
    await release("slot");
    expect((await high).status).toBe(200);
    await held;
  });

  it("answers 504 when the queue wait is exceeded", async () => {
    const { tenant, key } = await createTenant(oneSlot({ maxQueueWaitMs: 150 }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true });
    expect(res.status).toBe(504);
    expect(((await res.json()) as any).error).toMatchObject({ code: "queue_timeout", type: "timeout_error" });
    await release("slot");
    expect((await held).status).toBe(200);
    const stats = await gateStats(tenant);
    expect(stats.counters.rejectedQueueTimeout).toBe(1);
  });
});

describe("slot release", () => {
  const idle = async (tenant: string) =>
    eventually(async () => {
      const s = await gateStats(tenant);
      return s.inFlight === 0 && s.backends.every((b: any) => b.inFlight === 0);
    });

  it("after success", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    const sse = await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true }));
    expect(sse.text).toBe(expectedText());
    await idle(tenant);
    expect((await gateStats(tenant)).counters.completed).toBe(1);
  });

  it("after every backend failed", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 500 } });
    expect(res.status).toBe(502);
    expect(((await res.json()) as any).error.type).toBe("upstream_error");
    await idle(tenant);
    // The slot is usable again.
    expect((await chat(key, { model: "chat", messages: MESSAGES })).status).toBe(200);
  });

  it("after the client disconnects, and the upstream generation is cancelled", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 400, sim_fault: { tps: 40 } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await eventually(async () => (await simStats("a")).cancelled === 1);
    expect((await simStats("a")).completed).toBe(0);
    await idle(tenant);
    await eventually(async () => (await gateStats(tenant)).counters.cancelled === 1);
  });

  it("after the client stops reading but keeps the connection (timeouts.clientStallMs)", async () => {
    const { tenant, key } = await createTenant({ ...oneSlot(), timeouts: { clientStallMs: 300 } });
    // Far more text than the stream's buffers hold, so writes wait on the client.
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 4_000 });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // then nothing more: the body stays open and unread
    await eventually(async () => (await simStats("a")).cancelled === 1);
    await idle(tenant);
    await eventually(async () => (await gateStats(tenant)).counters.cancelled === 1);
    await reader.cancel();
  });

  it("after the client disconnects while queued", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const controller = new AbortController();
    const queued = chat(key, { model: "chat", messages: MESSAGES, stream: true }, {}, controller.signal).catch((e: unknown) => e);
    await waitForQueue(tenant, 1);
    controller.abort();
    await queued;
    await release("slot");
    await held;
    await idle(tenant);
  });

  it("after an exception inside the dispatch loop", async () => {
    const { tenant } = await createTenant(oneSlot());
    const gate = gateOf(tenant);
    const admit = { tenant, requestId: "req-x", alias: "chat", priority: "normal", promptTokens: 10 } as const;
    const admitted = await gate.admit(admit);
    if (admitted.kind !== "lease") throw new Error("not admitted");
    expect((await gateStats(tenant)).inFlight).toBe(1);
    const sink = new JsonSink(() => ({}));
    await expect(
      dispatch({
        requestId: "req-x",
        gate,
        leaseId: admitted.leaseId,
        admit,
        grant: admitted.grant,
        timeouts: admitted.timeouts,
        body: { model: "chat", messages: MESSAGES },
        sink,
        progress: new StreamProgress("chatcmpl-x", 0),
        signal: new AbortController().signal,
        deadline: Date.now() + 10_000,
        readSizes: new ReadSizePolicy(),
        onAttempt: () => {
          throw new Error("bug in the Worker");
        },
      }),
    ).rejects.toThrow("bug in the Worker");
    await idle(tenant);
    expect((await gateStats(tenant)).counters.failed).toBe(1);
  });

  it("when the Worker dies holding a lease: the alarm reclaims it once it expires", async () => {
    const { tenant } = await createTenant(oneSlot());
    const gate = gateOf(tenant);
    const admitted = await gate.admit({ tenant, requestId: "req-dead", alias: "chat", priority: "normal", promptTokens: 10 });
    expect(admitted.kind).toBe("lease");
    // Nobody renews or settles it. An alarm before the deadline leaves it alone...
    await runDurableObjectAlarm(gate);
    expect((await gateStats(tenant)).inFlight).toBe(1);
    // ...and once the lease is past its deadline, the alarm frees the slot.
    await expireLeases(tenant, 1);
    expect(await runDurableObjectAlarm(gateOf(tenant))).toBe(true);
    const stats = await gateStats(tenant);
    expect(stats.inFlight).toBe(0);
    expect(stats.counters.abandoned).toBe(1);
    expect(stats.backends[0].inFlight).toBe(0);
    // Running the alarm again changes nothing (alarms are at-least-once).
    await runDurableObjectAlarm(gateOf(tenant));
    expect((await gateStats(tenant)).counters.abandoned).toBe(1);
  });

  it("across a gate restart: leases are restored from storage and settle afterwards", async () => {
    const { tenant } = await createTenant(oneSlot());
    const gate = gateOf(tenant);
    const admitted = await gate.admit({ tenant, requestId: "req-restart", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    // Lease rows are written behind (LEASE_FLUSH_MS): wait for this one to reach storage.
    await eventually(async () => (await storedLeases(tenant)) === 1);
    await abortAllDurableObjects();
    const restarted = gateOf(tenant);
    expect((await gateStats(tenant)).inFlight).toBe(1);
    await restarted.settle(admitted.leaseId, { backendId: "a", outcome: "success", durationMs: 5, chunks: 3 }, "complete");
    await idle(tenant);
  });

  // LeaseRows on a gate's own storage (a second instance beside the gate's, driven directly).
  it("a lease removed before its row was written leaves nothing to write; a written one is deleted", async () => {
    const { tenant } = await createTenant(oneSlot());
    const counts = await runInDurableObject(gateOf(tenant), (_instance, state) => {
      const rows = new LeaseRows<{ id: string; deadline: number }>(state.storage, 60_000);
      const stored = () => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM leases`).one().n;
      rows.save({ id: "short", deadline: 1 });
      rows.remove("short");
      rows.flush();
      const afterShort = stored();
      rows.save({ id: "long", deadline: 1 }, true); // written at once
      const afterLong = stored();
      rows.remove("long"); // a DELETE, written with the next flush
      const beforeFlush = stored();
      rows.flush();
      return [afterShort, afterLong, beforeFlush, stored()];
    });
    expect(counts).toEqual([0, 1, 1, 0]);
  });

  it("a failed lease write keeps its rows pending for the next flush", async () => {
    const { tenant } = await createTenant(oneSlot());
    const stored = await runInDurableObject(gateOf(tenant), (_instance, state) => {
      const rows = new LeaseRows<{ id: string; deadline: number }>(state.storage, 60_000);
      state.storage.sql.exec(`DROP TABLE leases`); // every write to it now fails
      rows.save({ id: "kept", deadline: 1 });
      expect(() => rows.flush()).toThrow();
      state.storage.sql.exec(`CREATE TABLE leases (id TEXT PRIMARY KEY, deadline INTEGER NOT NULL, data TEXT NOT NULL)`);
      rows.flush();
      return state.storage.sql
        .exec<{ id: string }>(`SELECT id FROM leases`)
        .toArray()
        .map((r) => r.id);
    });
    expect(stored).toEqual(["kept"]);
  });

  it("a lease a journal entry points to is stored at once, so even an instant restart keeps it", async () => {
    const { tenant } = await createTenant(oneSlot());
    const gate = gateOf(tenant);
    const record = { key: "idem:instant", kind: "idempotency" as const, bodyHash: "h", shared: true };
    const admitted = await gate.admit({ tenant, record, requestId: "req-instant", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    await abortAllDurableObjects();
    expect((await gateStats(tenant)).inFlight).toBe(1);
    await gateOf(tenant).settle(admitted.leaseId, null, "complete");
    await idle(tenant);
  });
});

describe("gate stats", () => {
  it("keep their counters and histograms across a restart", async () => {
    const { tenant, key } = await createTenant(oneSlot());
    expect((await readSse(await chat(key, { model: "chat", messages: MESSAGES, stream: true }))).text).toBe(expectedText());
    // The settle reaches the gate just after the client read the stream's end.
    await eventually(async () => (await gateStats(tenant)).counters.completed === 1);
    const before = await gateStats(tenant);
    expect(before.counters).toMatchObject({ admitted: 1, completed: 1, attempts: 1 });
    // Metrics are stored a moment after a change (METRICS_SAVE_MS): wait for that, then restart.
    const gate = gateOf(tenant);
    const saved = () =>
      runInDurableObject(
        gate,
        (_instance, state) => state.storage.sql.exec(`SELECT value FROM meta WHERE key = 'metrics'`).toArray().length === 1,
      );
    await eventually(saved, undefined, 100);
    await abortAllDurableObjects();
    const after = await gateStats(tenant);
    expect(after.counters).toEqual(before.counters);
    expect(after.latencyMs).toEqual(before.latencyMs);
    expect(after.backends[0]).toMatchObject({ attempts: 1, successes: 1, failures: 0, ttftMs: before.backends[0].ttftMs });
  });
});
