// The gate core with a recording host: admission and the queue, twins, retries and their routing,
// leases and their reclaim. Every case runs in microseconds: time is an argument.
import { describe, expect, it } from "vitest";
import { LEASE_TTL_MS } from "./lease-timing";
import { STALE_TICKET_MS } from "./tickets";
import { admit, failure, leaseOf, request, success, testBackend, testConfig, testCore } from "./test-host";

const oneSlot = (limits: Record<string, number> = {}) =>
  testConfig({ limits: { maxConcurrency: 1, maxQueue: 8, maxQueueWaitMs: 10_000, ...limits } });
const fresh = { deliveredChunks: 0, mustContinue: false };

describe("admission and the queue", () => {
  it("serves queued requests by priority, FIFO within a priority", () => {
    const { core, host } = testCore(oneSlot());
    const first = leaseOf(admit(core, host, request("first"), 0));
    const names = ["low1:low", "normal1:normal", "low2:low", "high1:high", "normal2:normal"] as const;
    for (const n of names) {
      const [id, priority] = n.split(":") as [string, "low" | "normal" | "high"];
      expect(admit(core, host, request(id, { priority }), 1).kind).toBe("queued");
    }
    const order: string[] = [];
    let current = first.leaseId;
    for (let i = 0; i < names.length; i++) {
      core.settle(current, success("a"), "complete", undefined, 10 + i);
      const next = host.delivered[i]!;
      order.push(next.ticket);
      current = leaseOf(next.result).leaseId;
    }
    expect(order).toEqual(["high1", "normal1", "normal2", "low1", "low2"]);
  });

  it("answers 429 with Retry-After when full, and lets a higher priority displace the newest lower one", () => {
    const { core, host } = testCore(oneSlot({ maxQueue: 1 }));
    leaseOf(admit(core, host, request("held"), 0));
    expect(admit(core, host, request("low", { priority: "low" }), 1).kind).toBe("queued");
    const full = admit(core, host, request("low2", { priority: "low" }), 2);
    expect(full).toMatchObject({ kind: "reject", status: 429, code: "queue_full" });
    expect(full.kind === "reject" && full.retryAfterSec).toBeGreaterThanOrEqual(1);
    expect(admit(core, host, request("high", { priority: "high" }), 3).kind).toBe("queued");
    expect(host.verdict("low")).toMatchObject({ status: 429, message: expect.stringMatching(/displaced/) });
    expect(core.stats("t", { entries: 0, bytes: 0 }, 4).counters).toMatchObject({ rejectedQueueFull: 2, queued: 2 });
  });

  it("answers 504 once the queue wait runs out, at the time it asked to be woken", () => {
    const { core, host } = testCore(oneSlot({ maxQueueWaitMs: 150 }));
    leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, request("waiting"), 10);
    expect(host.wakes).toContain(160);
    core.wake(159);
    expect(host.verdict("waiting")).toBeUndefined();
    core.wake(160);
    expect(host.verdict("waiting")).toMatchObject({
      kind: "reject",
      status: 504,
      code: "queue_timeout",
      message: expect.stringMatching(/150 ms/),
    });
  });

  it("keeps a verdict nobody was listening for until the next poll, and forgets it once stale", () => {
    const { core, host } = testCore(oneSlot());
    const held = leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, request("w"), 1);
    core.pollEnded("w", 2_001);
    host.listening.delete("w");
    core.settle(held.leaseId, success("a"), "complete", undefined, 2_002);
    expect(host.verdict("w")).toBeUndefined();
    expect(core.poll("w", 2_003).kind).toBe("lease");
    expect(core.poll("w", 2_004)).toEqual({ kind: "unknown" });
  });

  it("drops a queued request nobody polls, and gives its rate-limit charge back", () => {
    const { core, host } = testCore(oneSlot({ requestsPerMinute: 2 }));
    leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, request("gone"), 1);
    core.pollEnded("gone", 2_000);
    host.listening.delete("gone");
    core.wake(2_000 + STALE_TICKET_MS + 1);
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 9_000);
    expect(stats.counters.abandonedInQueue).toBe(1);
    expect(stats.queue.depth).toBe(0);
    expect(stats.rateLimit?.requests?.available).toBe(1);
  });

  it("fails queued requests at once when every breaker of their plan opens", () => {
    const config = testConfig({
      models: { chat: { route: ["a"] } },
      limits: { maxConcurrency: 1 },
      breaker: { consecutiveFailures: 1, minRequests: 100 },
    });
    const { core, host } = testCore(config);
    const held = leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, request("w"), 1);
    expect(core.retry(held.leaseId, failure("a"), fresh, 2)).toMatchObject({
      kind: "exhausted",
      status: 503,
      code: "no_backend_available",
    });
    core.settle(held.leaseId, null, "failed", undefined, 3);
    expect(host.verdict("w")).toMatchObject({ kind: "reject", status: 503, code: "no_backend_available" });
  });
});

describe("twins while the first is queued", () => {
  const keyed = (id: string, hash = "h", extra = {}) =>
    request(id, { record: { key: "idem:k", kind: "idempotency", bodyHash: hash, shared: true }, ...extra });

  it("waits behind the queued request, outside the queue, and joins its generation", () => {
    const { core, host } = testCore(oneSlot());
    const held = leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, keyed("first"), 1);
    expect(admit(core, host, keyed("twin"), 2).kind).toBe("queued");
    expect(core.stats("t", { entries: 0, bytes: 0 }, 3)).toMatchObject({ queue: { depth: 1 }, counters: { queuedTwins: 1 } });
    core.settle(held.leaseId, success("a"), "complete", undefined, 4);
    expect(host.verdict("first")?.kind).toBe("lease");
    expect(host.verdict("twin")).toMatchObject({ kind: "join", entry: { key: "idem:k", state: "running" } });
  });

  it("answers 422 to a twin with another body, and shares a displacement", () => {
    const { core, host } = testCore(oneSlot({ maxQueue: 1 }));
    leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, keyed("first", "h", { priority: "low" }), 1);
    expect(admit(core, host, keyed("other", "h2"), 2)).toMatchObject({ status: 422, code: "idempotency_key_reused" });
    admit(core, host, keyed("twin", "h", { priority: "low" }), 3);
    admit(core, host, request("high", { priority: "high" }), 4);
    expect(host.verdict("first")).toMatchObject({ status: 429, message: expect.stringMatching(/displaced/) });
    expect(host.verdict("twin")).toEqual(host.verdict("first"));
  });

  it("lets a twin take the place of a first request whose client left", () => {
    const { core, host } = testCore(oneSlot());
    const held = leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, keyed("first"), 1);
    admit(core, host, keyed("twin"), 2);
    core.pollEnded("first", 2_000);
    host.listening.delete("first");
    core.wake(2_000 + STALE_TICKET_MS + 1);
    expect(host.verdict("twin")).toEqual({ kind: "unknown" });
    // Admitted anew, it queues as the key's first request and gets the slot.
    expect(admit(core, host, keyed("twin"), 8_100).kind).toBe("queued");
    core.settle(held.leaseId, success("a"), "complete", undefined, 8_200);
    expect(host.delivered.at(-1)).toMatchObject({ ticket: "twin", result: { kind: "lease" } });
  });
});

describe("retries", () => {
  it("goes to another region after a failure, and to the failed backend last", () => {
    const { core, host } = testCore();
    const lease = leaseOf(admit(core, host, request("r"), 0));
    expect(lease.grant.backend.id).toBe("a");
    const second = core.retry(lease.leaseId, failure("a"), fresh, 1);
    expect(second).toMatchObject({ kind: "attempt", grant: { backend: { id: "b" }, attempt: 2 } });
    const third = core.retry(lease.leaseId, failure("b"), fresh, 2);
    expect(third).toMatchObject({ kind: "attempt", grant: { backend: { id: "c" } } });
    expect(core.retry(lease.leaseId, failure("c"), fresh, 3)).toMatchObject({ kind: "exhausted", code: "max_attempts" });
  });

  it("keeps a stream that broke mid-way on resumable backends, up to twice maxAttempts calls", () => {
    const config = testConfig({
      backends: ["a", "b"].map((id) => testBackend(id, "us-east", { resume: true })),
      models: { chat: { route: ["a", "b"] } },
    });
    const { core, host } = testCore(config);
    const lease = leaseOf(admit(core, host, request("r"), 0));
    const mid = { deliveredChunks: 5, mustContinue: true };
    let calls = 1;
    for (let t = 1; ; t++) {
      const next = core.retry(lease.leaseId, failure(calls % 2 ? "a" : "b", { chunks: 2 }), mid, t);
      if (next.kind !== "attempt") {
        expect(next).toMatchObject({ kind: "exhausted", code: "max_attempts" });
        break;
      }
      expect(next.grant.continuation).toBe(true);
      calls++;
    }
    expect(calls).toBe(6);
  });

  it("waits for a slot when every eligible backend is full, and stops when the budget is spent", () => {
    const config = testConfig({
      backends: [testBackend("a", "us-east", { maxConcurrency: 1 })],
      models: { chat: { route: ["a"] } },
      retry: { budgetMinRetries: 1, budgetRatio: 0 },
    });
    const { core, host } = testCore(config);
    const one = leaseOf(admit(core, host, request("one"), 0));
    const two = admit(core, host, request("two"), 0);
    expect(two.kind).toBe("queued");
    expect(core.retry(one.leaseId, failure("a"), fresh, 1)).toMatchObject({ kind: "attempt" });
    expect(core.retry(one.leaseId, failure("a"), fresh, 2)).toMatchObject({ kind: "exhausted", code: "retry_budget_exhausted" });
    core.settle(one.leaseId, null, "failed", undefined, 3);
    const lease = leaseOf(host.verdict("two")!);
    expect(core.stats("t", { entries: 0, bytes: 0 }, 4).backends[0]!.inFlight).toBe(1);
    core.settle(lease.leaseId, success("a"), "complete", undefined, 5);
    expect(core.stats("t", { entries: 0, bytes: 0 }, 6).backends[0]!.inFlight).toBe(0);
  });

  it("holds a backend that sent Retry-After out of first choice for that long", () => {
    const { core, host } = testCore();
    const lease = leaseOf(admit(core, host, request("r"), 0));
    expect(core.retry(lease.leaseId, failure("a", { retryAfterMs: 1_000, httpStatus: 429 }), fresh, 10)).toMatchObject({
      grant: { backend: { id: "b" } },
    });
    expect(leaseOf(admit(core, host, request("s"), 20)).grant.backend.id).toBe("b");
    expect(leaseOf(admit(core, host, request("t"), 1_011)).grant.backend.id).toBe("a");
  });

  it("waits no longer than retry.maxDelayMs for a backend whose Retry-After is longer, when it is the only one", () => {
    const config = testConfig({
      backends: [testBackend("a", "us-east")],
      models: { chat: { route: ["a"] } },
      retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 },
    });
    const { core, host } = testCore(config);
    const lease = leaseOf(admit(core, host, request("r"), 0));
    const next = core.retry(lease.leaseId, failure("a", { retryAfterMs: 60_000, httpStatus: 503 }), fresh, 10);
    expect(next).toMatchObject({ kind: "attempt", grant: { backend: { id: "a" }, delayMs: 2_000 } });
  });
});

describe("leases", () => {
  it("reclaims a lease whose Worker went silent, once, and keeps the alarm at the earliest deadline", () => {
    const { core, host } = testCore();
    const lease = leaseOf(
      admit(core, host, request("r", { record: { key: "idem:x", kind: "idempotency", bodyHash: "h", shared: true } }), 0),
    );
    expect(host.alarm).toBe(LEASE_TTL_MS);
    core.reclaimExpired(LEASE_TTL_MS - 1);
    expect(core.stats("t", { entries: 0, bytes: 0 }, 1).inFlight).toBe(1);
    core.reclaimExpired(LEASE_TTL_MS);
    core.reclaimExpired(LEASE_TTL_MS + 1);
    const stats = core.stats("t", { entries: 0, bytes: 0 }, LEASE_TTL_MS + 2);
    expect(stats).toMatchObject({ inFlight: 0, counters: { abandoned: 1 } });
    expect(stats.backends.every((b) => b.inFlight === 0)).toBe(true);
    expect(host.journal.get("idem:x", 1)?.state).toBe("abandoned");
    expect(host.stored.has(lease.leaseId)).toBe(false);
    expect(host.alarm).toBeUndefined();
    core.settle(lease.leaseId, success("a"), "complete", undefined, LEASE_TTL_MS + 3); // too late: nothing
    expect(core.stats("t", { entries: 0, bytes: 0 }, 1).counters.completed).toBe(0);
  });

  it("answers a checkpoint with what the journal holds", () => {
    const { core, host } = testCore();
    const lease = leaseOf(
      admit(core, host, request("r", { record: { key: "idem:x", kind: "idempotency", bodyHash: "h", shared: true } }), 0),
    );
    expect(core.checkpoint(lease.leaseId, { from: 0, chunks: ["1", "2"], text: "ab", tokens: 2 }, 1)).toEqual({ held: true, recorded: 2 });
    expect(core.checkpoint(lease.leaseId, { from: 3, chunks: ["4"], text: "abcd", tokens: 4 }, 2)).toEqual({ held: true, recorded: 2 });
    expect(core.checkpoint("nope", { from: 0, chunks: [], text: "", tokens: 0 }, 3)).toMatchObject({
      held: false,
      recorded: null,
      ended: { code: "lease_unknown" },
    });
    core.settle(lease.leaseId, success("a"), "complete", { from: 3, chunks: ["4"], text: "abcd", tokens: 4 }, 4);
    expect(
      admit(core, host, request("again", { record: { key: "idem:x", kind: "idempotency", bodyHash: "h", shared: true } }), 5),
    ).toMatchObject({ status: 409, code: "replay_unavailable" });
  });
});

describe("tenant deletion", () => {
  it("answers every queued request and twin tenant_deleted; a fresh core says the same of leases and admissions until a config arrives", () => {
    const { core, host } = testCore(oneSlot());
    const held = leaseOf(admit(core, host, request("held"), 0));
    const record = { key: "k", bodyHash: "h", kind: "idempotency" as const, shared: true };
    expect(admit(core, host, request("queued", { record }), 1).kind).toBe("queued");
    expect(admit(core, host, request("twin", { record }), 2).kind).toBe("queued");
    core.endForDeletion();
    for (const id of ["queued", "twin"]) expect(host.verdict(id)).toMatchObject({ kind: "reject", status: 410, code: "tenant_deleted" });
    expect(core.tickets.queue.size).toBe(0);

    const { core: after, host: afterHost } = testCore(oneSlot());
    after.loadConfig(null, 0, new Map(), 3);
    expect(after.renew(held.leaseId, 3)).toMatchObject({ held: false, ended: { status: 502, code: "lease_unknown" } });
    after.markDeleted();
    const gone = { held: false, ended: { status: 410, code: "tenant_deleted" } };
    expect(after.renew(held.leaseId, 4)).toMatchObject(gone);
    expect(after.firstToken(held.leaseId, 4)).toMatchObject(gone);
    expect(after.checkpoint(held.leaseId, { from: 0, chunks: ["{}"], text: "x", tokens: 1 }, 4)).toMatchObject({ ...gone, recorded: null });
    expect(after.retry(held.leaseId, failure("a"), fresh, 4)).toMatchObject({ kind: "exhausted", status: 410, code: "tenant_deleted" });
    expect(admit(after, afterHost, request("late"), 5)).toMatchObject({ kind: "reject", status: 410, code: "tenant_deleted" });
    after.loadConfig(oneSlot(), 0, new Map(), 6);
    expect(admit(after, afterHost, request("new owner"), 7).kind).toBe("lease");
  });
});

describe("cancel", () => {
  const record = { key: "job:gen:x", bodyHash: "h", kind: "idempotency" as const, shared: true };

  it("ends a running request's lease: its Worker is told at any call, its slot goes to the next, its entry replays as cancelled", () => {
    const { core, host } = testCore(oneSlot());
    const lease = leaseOf(admit(core, host, request("bg", { record, priority: "normal" }), 0));
    core.checkpoint(lease.leaseId, { from: 0, chunks: ["1"], text: "a", tokens: 1 }, 1);
    expect(admit(core, host, request("next"), 2).kind).toBe("queued");
    expect(core.cancel(record, 3)).toBe(true);
    expect(host.verdict("next")?.kind).toBe("lease");
    const cancelled = { status: 409, code: "generation_cancelled" };
    expect(core.renew(lease.leaseId, 4)).toMatchObject({ held: false, ended: cancelled });
    expect(core.checkpoint(lease.leaseId, { from: 1, chunks: ["2"], text: "ab", tokens: 2 }, 4)).toMatchObject({
      held: false,
      ended: cancelled,
    });
    expect(core.retry(lease.leaseId, failure("a"), fresh, 4)).toMatchObject({ kind: "exhausted", ...cancelled });
    // The Worker's claim and its settle after hearing of it change nothing.
    const claim = { leaseId: lease.leaseId, admit: request("bg", { record }), backendId: "a", attempts: 1, answered: false };
    expect(core.adopt(claim, 5)).toMatchObject({ held: false, ended: cancelled });
    core.settle(lease.leaseId, null, "failed", undefined, 6, 409);
    expect(core.renew(lease.leaseId, 7)).toMatchObject({ held: false, ended: cancelled });
    expect(host.journal.get(record.key, 7)).toMatchObject({ state: "cancelled", chunks: ["1"] });
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 8);
    expect(stats.counters).toMatchObject({ cancelled: 1, failed: 0 });
    expect(stats.inFlight).toBe(1);
    // A later request with the key gets what was made, not a new run.
    expect(admit(core, host, request("again", { record }), 9)).toMatchObject({ kind: "replay", entry: { state: "cancelled" } });
    expect(core.cancel(record, 10)).toBe(false);
  });

  it("refuses a queued request and its twins", () => {
    const { core, host } = testCore(oneSlot());
    leaseOf(admit(core, host, request("held"), 0));
    admit(core, host, request("bg", { record }), 1);
    admit(core, host, request("twin", { record }), 2);
    expect(core.cancel(record, 3)).toBe(true);
    for (const id of ["bg", "twin"]) expect(host.verdict(id)).toMatchObject({ kind: "reject", status: 409, code: "generation_cancelled" });
    expect(core.tickets.queue.size).toBe(0);
    expect(core.cancel({ ...record, key: "job:gen:other" }, 4)).toBe(false);
  });

  it("marks a key nothing runs under yet as cancelled, so its job, admitted later, runs nothing", () => {
    const { core, host } = testCore(oneSlot());
    expect(core.cancel(record, 0)).toBe(false);
    expect(admit(core, host, request("late", { record }), 1)).toMatchObject({ kind: "replay", entry: { state: "cancelled", chunks: [] } });
    expect(core.stats("t", { entries: 0, bytes: 0 }, 2).inFlight).toBe(0);
  });
});
