// The gate core with backends that learn their concurrency (adaptive-limit.ts): a limit cut by late
// first tokens holds fewer attempts, and a slow backend's timeouts spend neither the retry budget,
// nor maxAttempts, nor its breaker's patience, while one that answers nothing fails as before.
import { describe, expect, it } from "vitest";
import { admit, failure, leaseOf, request, success, testBackend, testConfig, testCore } from "./test-host";

const fresh = { deliveredChunks: 0, mustContinue: false };

describe("a backend with adaptiveConcurrency", () => {
  const adaptive = () =>
    testConfig({
      backends: [testBackend("a", "us-east", { maxConcurrency: 8, adaptiveConcurrency: true }), testBackend("b", "eu-west")],
      models: { chat: { route: ["a", "b"], order: "pinned" } },
      limits: { maxConcurrency: 64, maxQueue: 8, maxQueueWaitMs: 60_000 },
      retry: { maxAttempts: 3, budgetMinRetries: 0, budgetRatio: 0 },
    });
  const onA = (id: string) => request(id, { alias: "chat" });

  it("holds fewer attempts once its first tokens come late, and says so in its stats", () => {
    const { core, host } = testCore(adaptive());
    const fast = leaseOf(admit(core, host, onA("fast"), 0));
    expect(fast.grant.backend.id).toBe("a");
    core.firstToken(fast.leaseId, 20);
    core.settle(fast.leaseId, success("a"), "complete", undefined, 30);
    const slow = Array.from({ length: 8 }, (_, i) => leaseOf(admit(core, host, onA(`slow${i}`), 100)));
    expect(slow.every((l) => l.grant.backend.id === "a")).toBe(true);
    core.firstToken(slow[0]!.leaseId, 2_000); // 1,900 ms against a 20 ms baseline: queueing
    const a = core.stats("t", { entries: 0, bytes: 0 }, 2_000).backends.find((b) => b.id === "a")!;
    expect(a).toMatchObject({ maxConcurrency: 8, limit: 7, baselineTtftMs: 20 });
    // Eight held on a limit of seven: the next request goes to b, though a's maxConcurrency has room after a settle.
    core.settle(slow[1]!.leaseId, success("a"), "complete", undefined, 2_001);
    expect(leaseOf(admit(core, host, onA("next"), 2_002)).grant.backend.id).toBe("b");
  });

  it("times out slow, not failing, while it answers lately: retried elsewhere without the budget, its breaker left closed", () => {
    const { core, host } = testCore(adaptive());
    const first = leaseOf(admit(core, host, onA("first"), 0));
    core.firstToken(first.leaseId, 20);
    core.settle(first.leaseId, success("a"), "complete", undefined, 30);
    for (let i = 0; i < 10; i++) {
      const lease = leaseOf(admit(core, host, onA(`t${i}`), 1_000 * (i + 1)));
      expect(lease.grant.backend.id).toBe("a");
      const next = core.retry(lease.leaseId, failure("a", { errorCode: "first_token_timeout" }), fresh, 1_000 * (i + 1) + 500);
      // The budget allows no retry at all (ratio 0): a slow timeout's retry is not one it counts.
      expect(next).toMatchObject({ kind: "attempt", grant: { backend: { id: "b" } } });
      core.settle(lease.leaseId, success("b"), "complete", undefined, 1_000 * (i + 1) + 600);
    }
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 20_000);
    expect(stats.counters).toMatchObject({ slowTimeouts: 10, budgetDenied: 0 });
    expect(stats.backends.find((b) => b.id === "a")).toMatchObject({ breaker: "closed", limit: 4 });
    // Slow timeouts do not use up maxAttempts (3): a request goes on, up to twice that many calls.
    const both = testCore(
      testConfig({
        backends: ["a", "b"].map((id) => testBackend(id, id === "a" ? "us-east" : "eu-west", { adaptiveConcurrency: true })),
        models: { chat: { route: ["a", "b"], order: "pinned" } },
        retry: { maxAttempts: 3 },
      }),
    );
    // Both answer once (a's first attempt fails over to b), so both have answered lately.
    const warm = leaseOf(admit(both.core, both.host, onA("warm"), 0));
    both.core.firstToken(warm.leaseId, 10);
    const onB = both.core.retry(warm.leaseId, failure("a", { errorCode: "upstream_http_503" }), fresh, 20);
    expect(onB).toMatchObject({ kind: "attempt", grant: { backend: { id: "b" } } });
    both.core.firstToken(warm.leaseId, 30);
    both.core.settle(warm.leaseId, success("b"), "complete", undefined, 40);
    expect(both.core.stats("t", { entries: 0, bytes: 0 }, 50).backends.map((b) => b.baselineTtftMs !== undefined)).toEqual([true, true]);
    const patient = leaseOf(admit(both.core, both.host, onA("patient"), 1_000));
    const verdicts = [1, 2, 3, 4, 5, 6].map((n) => {
      const on = both.core.leases.get(patient.leaseId)!.backendId!;
      return both.core.retry(patient.leaseId, failure(on, { errorCode: "first_token_timeout" }), fresh, 1_000 + n * 2_000).kind;
    });
    expect(verdicts).toEqual(["attempt", "attempt", "attempt", "attempt", "attempt", "exhausted"]);

    // Silent for a whole window: a timeout is a failure again, and the budget refuses its retry.
    const late = leaseOf(admit(core, host, onA("late"), 60_000));
    expect(core.retry(late.leaseId, failure("a", { errorCode: "first_token_timeout" }), fresh, 60_500)).toMatchObject({
      kind: "exhausted",
      code: "retry_budget_exhausted",
    });
  });
});
