// Idempotency-Key replay and join, reconnect with Last-Event-ID, lease takeover by continuation,
// semantic dedup, stale-if-error, tenant isolation and bounded storage.
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { TenantGate } from "../../src/gate/tenant-gate";
import {
  chat,
  createTenant,
  expectError,
  expireLeases,
  gateOf,
  eventually,
  expectedText,
  gateStats,
  holder,
  MESSAGES,
  oneSlot,
  readSse,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

/** Reads SSE until `count` chunk events arrived, then drops the connection. */
const readThenDrop = (res: Response, count: number) => readSse(res, (t) => t.lastId >= count);

describe("Idempotency-Key", () => {
  it("replays a completed answer without calling a backend, as SSE or JSON", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const body = { model: "chat", messages: MESSAGES, stream: true };
    const first = await readSse(await chat(key, body, { "idempotency-key": "k-replay-1" }));
    expect(first.text).toBe(expectedText());
    const res = await chat(key, body, { "idempotency-key": "k-replay-1" });
    expect(res.headers.get("x-sluice-replay")).toBe("stored");
    const again = await readSse(res);
    expect(again.text).toBe(first.text);
    expect(again.done).toBe(true);
    expect(again.events.map((e) => e.data)).toEqual(first.events.map((e) => e.data));
    const json: any = await (await chat(key, { ...body, stream: false }, { "idempotency-key": "k-replay-1" })).json();
    expect(json.choices[0].message.content).toBe(first.text);
    expect((await simStats("a")).requests).toBe(1);
  });

  it("answers 422 when the key comes back with a different body", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    await (await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": "k-422" })).arrayBuffer();
    const res = await chat(key, { model: "chat", messages: [{ role: "user", content: "something else" }] }, { "idempotency-key": "k-422" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).error.code).toBe("idempotency_key_reused");
  });

  it("lets a concurrent twin join the live generation: one upstream call, identical texts", async () => {
    await simControl("a", { tokensPerSecond: 60 });
    const { key } = await createTenant(simConfig(["a"]));
    const body = { model: "chat", messages: MESSAGES, stream: true, max_tokens: 30 };
    const one = chat(key, body, { "idempotency-key": "k-join" });
    await eventually(async () => (await simStats("a")).active === 1);
    const twoRes = await chat(key, body, { "idempotency-key": "k-join" });
    expect(twoRes.headers.get("x-sluice-replay")).toBe("joined");
    const [a, b] = await Promise.all([one.then(readSse), readSse(twoRes)]);
    expect(a.text).toBe(expectedText(MESSAGES, 30));
    expect(b.text).toBe(a.text);
    expect(b.done).toBe(true);
    expect((await simStats("a")).requests).toBe(1);
  });

  it("lets a dropped client reconnect with Last-Event-ID and get exactly the rest", async () => {
    await simControl("a", { tokensPerSecond: 40 });
    const { key } = await createTenant(simConfig(["a"]));
    const body = { model: "chat", messages: MESSAGES, stream: true, max_tokens: 40 };
    const head = await readThenDrop(await chat(key, body, { "idempotency-key": "k-reconnect" }), 8);
    expect(head.lastId).toBe(8);
    const tail = await readSse(await chat(key, body, { "idempotency-key": "k-reconnect", "last-event-id": String(head.lastId) }));
    expect(Number(tail.events[0]!.id)).toBe(head.lastId + 1);
    expect(head.text + tail.text).toBe(expectedText(MESSAGES, 40));
    expect(tail.done).toBe(true);
    // The generation was made to finish for the reconnect: one upstream call, never cancelled.
    expect((await simStats("a")).requests).toBe(1);
    expect((await simStats("a")).cancelled).toBe(0);
  });

  it("reclaims an abandoned lease and resumes the retry from its checkpoint by continuation", async () => {
    const { tenant, key } = await createTenant(resumableConfig(["a", "b"], { timeouts: { idleMs: 3_000 } }));
    const body = {
      model: "chat",
      messages: MESSAGES,
      stream: true,
      max_tokens: 30,
      sim_fault: { backend: "a", hang: true, hang_after: 5 },
    };
    // The first Worker relays 5 tokens and then (as far as the gate can tell) dies.
    const firstRes = await chat(key, body, { "idempotency-key": "k-abandon" });
    const head = await readThenDrop(firstRes, 6); // role chunk + 5 tokens
    // A checkpoint holds what the client got; then the Worker is gone for long enough.
    await eventually(async () => (await gateOf(tenant).follow("idem:k-abandon", 0, 0)).chunks.length === 6);
    await expireLeases(tenant, 1);
    await runDurableObjectAlarm(gateOf(tenant));
    const stats = await gateStats(tenant);
    expect(stats.counters.abandoned).toBe(1);
    expect(stats.inFlight).toBe(0);
    // A retry with the same key carries on from the checkpoint instead of starting over.
    await simControl("a", { failRate: 1, failStatus: 503 });
    const retry = await readSse(await chat(key, body, { "idempotency-key": "k-abandon" }));
    expect(retry.done).toBe(true);
    expect(retry.text).toBe(expectedText(MESSAGES, 30));
    expect(retry.text.startsWith(head.text)).toBe(true);
    // Both attempts of the retry were continuations: a (down) and b, which finished it.
    expect((await gateStats(tenant)).counters.continuations).toBe(2);
    expect((await simStats("b")).requests).toBe(1);
  });

  it("keeps keys of different tenants apart", async () => {
    const one = await createTenant(simConfig(["a"]));
    const two = await createTenant(simConfig(["a"]));
    const body = { model: "chat", messages: MESSAGES };
    await (await chat(one.key, body, { "idempotency-key": "shared-key" })).arrayBuffer();
    const res = await chat(two.key, body, { "idempotency-key": "shared-key" });
    expect(res.headers.get("x-sluice-replay")).toBeNull();
    await res.arrayBuffer();
    expect((await simStats("a")).requests).toBe(2);
  });

  it("bounds the journal by entry count", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { idempotency: { maxEntries: 3 } }));
    const send = (i: number) => chat(key, { model: "chat", messages: MESSAGES, max_tokens: 3 }, { "idempotency-key": `k-bound-${i}` });
    for (let i = 0; i < 6; i++) await (await send(i)).arrayBuffer();
    expect((await gateStats(tenant)).journal.entries).toBe(3);
    // The newest answers are kept (a replay), the oldest evicted (generated again).
    const newest = await send(5);
    expect(newest.headers.get("x-sluice-replay")).toBe("stored");
    await newest.arrayBuffer();
    const oldest = await send(0);
    expect(oldest.headers.get("x-sluice-replay")).toBeNull();
    await oldest.arrayBuffer();
    expect((await simStats("a")).requests).toBe(7);
  });

  it("rejects a malformed key and Last-Event-ID without a key", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    expect((await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": "has space" })).status).toBe(400);
    const res = await chat(key, { model: "chat", messages: MESSAGES }, { "last-event-id": "3" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe("invalid_last_event_id");
  });
});

describe("twins while the first is queued", () => {
  const body = { model: "chat", messages: MESSAGES, stream: true, max_tokens: 12 };

  /** A one-slot tenant whose slot a held request takes (until `release("slot")`), and a first request queued behind it. */
  async function firstQueued(headers: Record<string, string>, limits: Record<string, number> = {}, signal?: AbortSignal) {
    const { tenant, key } = await createTenant(oneSlot(limits));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const first = chat(key, body, headers, signal);
    await eventually(async () => (await gateStats(tenant)).queue.depth === 1);
    return { tenant, key, held, first };
  }

  it("waits behind the queued request and joins its generation: one upstream call", async () => {
    const { tenant, key, held, first } = await firstQueued({ "idempotency-key": "k-queued-twin" });
    const second = chat(key, body, { "idempotency-key": "k-queued-twin" });
    await eventually(async () => (await gateStats(tenant)).counters.queuedTwins === 1);
    expect((await gateStats(tenant)).queue.depth).toBe(1); // the twin takes no place in the queue
    await release("slot");
    await (await held).arrayBuffer();
    const secondRes = await second;
    expect(secondRes.headers.get("x-sluice-replay")).toBe("joined");
    const [a, b] = await Promise.all([first.then(readSse), readSse(secondRes)]);
    expect(a.text).toBe(expectedText(MESSAGES, 12));
    expect(b.text).toBe(a.text);
    expect(b.done).toBe(true);
    expect((await simStats("a")).requests).toBe(2); // the held request and one generation for both
  });

  it("answers 422 to a twin with a different body", async () => {
    const { key, held, first } = await firstQueued({ "idempotency-key": "k-queued-422" });
    const res = await chat(key, { ...body, max_tokens: 13 }, { "idempotency-key": "k-queued-422" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).error.code).toBe("idempotency_key_reused");
    await release("slot");
    expect((await readSse(await first)).text).toBe(expectedText(MESSAGES, 12));
    await held;
  });

  it("shares the verdict when the queued request is displaced", async () => {
    const { tenant, key, held, first } = await firstQueued({ "idempotency-key": "k-displaced", "x-priority": "low" }, { maxQueue: 1 });
    const second = chat(key, body, { "idempotency-key": "k-displaced", "x-priority": "low" });
    await eventually(async () => (await gateStats(tenant)).counters.queuedTwins === 1);
    const high = chat(key, { model: "chat", messages: MESSAGES }, { "x-priority": "high" });
    for (const res of [await first, await second]) {
      expect(res.status).toBe(429);
      expect(((await res.json()) as any).error.message).toMatch(/displaced/);
    }
    await release("slot");
    expect((await high).status).toBe(200);
    await held;
    expect((await simStats("a")).requests).toBe(2); // the held request and the high-priority request
  });

  it("takes the queued request's place when its client left", async () => {
    const controller = new AbortController();
    const { tenant, key, held, first } = await firstQueued({ "idempotency-key": "k-left" }, { maxQueueWaitMs: 25_000 }, controller.signal);
    const second = chat(key, body, { "idempotency-key": "k-left" });
    await eventually(async () => (await gateStats(tenant)).counters.queuedTwins === 1);
    controller.abort();
    await first.catch(() => {});
    // The first request's Worker stops polling once its open call returns; its ticket goes stale
    // (STALE_TICKET_MS later) and is dropped, and the twin is admitted anew in its place.
    await eventually(async () => (await gateStats(tenant)).counters.abandonedInQueue === 1, 20_000);
    await eventually(async () => (await gateStats(tenant)).queue.depth === 1);
    await release("slot");
    await (await held).arrayBuffer();
    const res = await second;
    expect(res.headers.get("x-sluice-replay")).toBeNull();
    const answer = await readSse(res);
    expect(answer.text).toBe(expectedText(MESSAGES, 12));
    expect(answer.done).toBe(true);
    expect((await simStats("a")).requests).toBe(2);
  });
});

describe("journal appends, written behind", () => {
  const record = { key: "idem:k-behind", kind: "idempotency" as const, bodyHash: "h", shared: true };
  const chunk = (n: number) => JSON.stringify({ n });
  const progress = (from: number, ns: number[]) => ({
    from,
    chunks: ns.map(chunk),
    text: "x".repeat(from + ns.length),
    tokens: from + ns.length,
  });

  it("answers what the journal holds: a gap is refused, a repeat skipped, another lease's entry is not written", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const gate = gateOf(tenant);
    const admitted = await gate.admit({ tenant, record, requestId: "req-held", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    expect(await gate.checkpoint(admitted.leaseId, progress(0, [1, 2]))).toEqual({ held: true, recorded: 2 });
    // A gap (chunk 4 without 3) is refused: the journal still holds 2, and the Worker sends 3 on.
    expect(await gate.checkpoint(admitted.leaseId, progress(3, [4]))).toEqual({ held: true, recorded: 2 });
    expect(await gate.checkpoint(admitted.leaseId, progress(1, [2, 3, 4]))).toEqual({ held: true, recorded: 4 });
    expect((await gate.follow(record.key, 0, 0)).chunks).toEqual([1, 2, 3, 4].map(chunk));
    // A request without a key records nothing; a lease the gate does not hold is not renewed.
    const unkeyed = await gate.admit({ tenant, requestId: "req-plain", alias: "chat", priority: "normal", promptTokens: 10 });
    if (unkeyed.kind !== "lease") throw new Error("not admitted");
    expect(await gate.checkpoint(unkeyed.leaseId, progress(0, [9]))).toEqual({ held: true, recorded: null });
    expect(await gate.checkpoint("no-such-lease", progress(0, [9]))).toMatchObject({
      held: false,
      recorded: null,
      ended: { code: "lease_unknown" },
    });
    // Settling with a final checkpoint the journal refuses leaves an entry that is not replayed as complete.
    await gate.settle(admitted.leaseId, null, "complete", progress(6, [7]));
    const replay = await gate.admit({ tenant, record, requestId: "req-replay", alias: "chat", priority: "normal", promptTokens: 10 });
    expect(replay).toMatchObject({ kind: "reject", status: 409, code: "replay_unavailable" });
  });

  it("gathers the checkpoints of one window into one write, answers once it is written, and keeps them through a restart", async () => {
    const { tenant } = await createTenant(simConfig(["a"]));
    const gate = gateOf(tenant);
    const admitted = await gate.admit({ tenant, record, requestId: "req-behind", alias: "chat", priority: "normal", promptTokens: 10 });
    if (admitted.kind !== "lease") throw new Error("not admitted");
    // Two checkpoints in the same turn of the gate (so in one write window): one write of three chunks.
    const { acks, rows } = await runInDurableObject(gate, async (object, state) => {
      const instance = object as unknown as TenantGate;
      const both = Promise.all([
        instance.checkpoint(admitted.leaseId, progress(0, [1, 2])),
        instance.checkpoint(admitted.leaseId, progress(2, [3])),
      ]);
      const acks = await both;
      return {
        acks,
        rows: state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM journal_chunks WHERE key = ?`, record.key).one().n,
      };
    });
    expect(acks).toEqual([
      { held: true, recorded: 2 },
      { held: true, recorded: 3 },
    ]);
    expect(rows).toBe(1);
    // What the gate said it recorded survives a restart.
    await abortAllDurableObjects();
    expect((await gateOf(tenant).follow(record.key, 0, 0)).chunks).toEqual([1, 2, 3].map(chunk));
  });
});

describe("Idempotency-Key while every breaker is open", () => {
  it("replays the stored answer without a backend, and refuses the key with another body (422), not 503", async () => {
    const { tenant, key } = await createTenant(
      simConfig(["a"], { retry: { maxAttempts: 2, baseDelayMs: 1 }, breaker: { consecutiveFailures: 2 } }),
    );
    const body = { model: "chat", messages: MESSAGES };
    const first: any = await (await chat(key, body, { "idempotency-key": "k-open" })).json();
    await simControl("a", { failRate: 1, failStatus: 503 });
    await (await chat(key, body)).arrayBuffer();
    expect((await gateStats(tenant)).backends[0].breaker).toBe("open");
    const before = (await simStats("a")).requests;
    const replay = await chat(key, { ...body, stream: true }, { "idempotency-key": "k-open" });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("x-sluice-replay")).toBe("stored");
    expect((await readSse(replay)).text).toBe(first.choices[0].message.content);
    await expectError(await chat(key, { ...body, max_tokens: 3 }, { "idempotency-key": "k-open" }), 422, "idempotency_key_reused");
    expect((await simStats("a")).requests).toBe(before);
    // A request that needs a backend is still told none is available.
    await expectError(await chat(key, body), 503, "no_backend_available");
  });
});

describe("gate restart mid-queue", () => {
  it("leaves no request stuck and no slot leaked", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { maxConcurrency: 1 } }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const queued = chat(key, { model: "chat", messages: MESSAGES, stream: true });
    await eventually(async () => (await gateStats(tenant)).queue.depth === 1);
    await abortAllDurableObjects();
    await release("slot");
    expect((await held).status).toBe(200);
    const res = await queued;
    if (res.status !== 200) throw new Error(await res.text());
    expect((await readSse(res)).text).toBe(expectedText());
    await eventually(async () => (await gateStats(tenant)).inFlight === 0);
  });
});

describe("semantic dedup and stale-if-error", () => {
  it("shares answers of deterministic requests when enabled", async () => {
    const { key } = await createTenant(simConfig(["a"], { dedup: { semantic: true } }));
    const body = { model: "chat", messages: MESSAGES, temperature: 0 };
    const first: any = await (await chat(key, body)).json();
    const res = await chat(key, { ...body, stream: true });
    expect(res.headers.get("x-sluice-replay")).toBe("stored");
    expect((await readSse(res)).text).toBe(first.choices[0].message.content);
    // Not for sampled requests.
    await (await chat(key, { ...body, temperature: 0.7 })).arrayBuffer();
    expect((await simStats("a")).requests).toBe(2);
  });

  it("answers from a stored answer when every backend fails, and says so", async () => {
    const { key } = await createTenant(simConfig(["a"], { dedup: { staleIfError: true } }));
    const body = { model: "chat", messages: MESSAGES, temperature: 0 };
    await (await chat(key, body)).arrayBuffer();
    // Stored only: a healthy backend is still asked.
    await (await chat(key, body)).arrayBuffer();
    expect((await simStats("a")).requests).toBe(2);
    await simControl("a", { failRate: 1, failStatus: 500 });
    const res = await chat(key, { ...body, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-degraded")).toContain("stale-cache");
    expect((await readSse(res)).text).toBe(expectedText());
  });
});
