// The gate core's side of hedged first tokens: the delay it hands out with a grant, the hedge's
// slot, the race's end (the winner goes on, the loser's slot and breaker), and what it refuses.
import { describe, expect, it } from "vitest";
import type { TenantConfigInput } from "../../config/schema";
import { admit, failure, leaseOf, request, success, testBackend, testConfig, testCore } from "./test-host";

const cancelled = (backendId: string) => ({ backendId, outcome: "cancelled" as const, errorCode: "hedge_lost", durationMs: 5, chunks: 0 });

/** A core with hedging on, that has seen `firstTokens` first tokens of 100 ms on "chat". */
function hedgingCore(extra: Partial<TenantConfigInput> = {}, firstTokens = 20) {
  const config = testConfig({ hedging: { enabled: true, minSamples: 20, minDelayMs: 10, budgetRatio: 0.5 }, ...extra });
  const { core, host } = testCore(config);
  for (let i = 0; i < firstTokens; i++) {
    const { leaseId } = leaseOf(admit(core, host, request(`warm${i}`), 0));
    core.firstToken(leaseId, 0, 100);
    core.settle(leaseId, success("a"), "complete", undefined, 0);
  }
  return { core, host };
}

describe("the gate core's hedged first tokens", () => {
  it("hands out the attempt's hedge delay from its model's first tokens once it has seen enough of them", () => {
    const cold = hedgingCore({}, 19);
    expect(leaseOf(admit(cold.core, cold.host, request("r"), 0)).grant.hedgeAfterMs).toBeUndefined();
    const { core, host } = hedgingCore();
    // Twenty first tokens of 100 ms: twice their median (hedging.ts; the 100 ms bucket ends at 108).
    expect(leaseOf(admit(core, host, request("r"), 2_000)).grant.hedgeAfterMs).toBe(216);
    // Never for background work (a batch line): nobody waits on its first token.
    const background = leaseOf(admit(core, host, request("batch-line", { priority: "background" }), 2_000));
    expect(background.grant.hedgeAfterMs).toBeUndefined();
    expect(core.hedge(background.leaseId, 2_500)).toEqual({ kind: "none", reason: "not_waiting" });
    // Off by default.
    const off = testCore();
    expect(leaseOf(admit(off.core, off.host, request("r"), 0)).grant.hedgeAfterMs).toBeUndefined();
  });

  it("starts a hedge on another backend of the model in a slot of its own; the hedge that wins goes on in the attempt's place", () => {
    const { core, host } = hedgingCore();
    const { leaseId, grant } = leaseOf(admit(core, host, request("r", { promptTokens: 40 }), 2_000));
    expect(grant.backend.id).toBe("a");
    const hedge = core.hedge(leaseId, 2_200);
    expect(hedge).toMatchObject({ kind: "hedge", grant: { attempt: 2, backend: { id: "b" }, continuation: false, delayMs: 0 } });
    expect([core.leases.inFlight("a"), core.leases.inFlight("b")]).toEqual([1, 1]);
    // One race at a time.
    expect(core.hedge(leaseId, 2_200)).toEqual({ kind: "none", reason: "not_waiting" });

    core.hedgeEnded(leaseId, "hedge", cancelled("a"), 2_300);
    expect([core.leases.inFlight("a"), core.leases.inFlight("b")]).toEqual([0, 1]);
    expect(core.leases.get(leaseId)).toMatchObject({ backendId: "b", attempts: 2, hedge: undefined });
    // Told twice (a resent call): nothing more happens.
    core.hedgeEnded(leaseId, "hedge", cancelled("a"), 2_300);
    expect(core.leases.get(leaseId)).toMatchObject({ backendId: "b", attempts: 2 });
    core.settle(leaseId, success("b"), "complete", undefined, 2_400);
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 2_400);
    expect(stats.counters).toMatchObject({ hedgesStarted: 1, hedgesWon: 1, hedgeWastedPromptTokens: 40 });
    const byId = new Map(stats.backends.map((b) => [b.id, b]));
    expect(byId.get("a")).toMatchObject({ cancelled: 1, inFlight: 0 });
    expect(byId.get("b")).toMatchObject({ successes: 1, inFlight: 0 });
  });

  it("frees the hedge's slot when the attempt it hedged goes on, and counts a hedge that failed against its backend", () => {
    const { core, host } = hedgingCore({ breaker: { consecutiveFailures: 1 } });
    const { leaseId } = leaseOf(admit(core, host, request("r"), 2_000));
    expect(core.hedge(leaseId, 2_200)).toMatchObject({ kind: "hedge", grant: { backend: { id: "b" } } });
    core.hedgeEnded(leaseId, "primary", failure("b"), 2_300);
    expect([core.leases.inFlight("a"), core.leases.inFlight("b")]).toEqual([1, 0]);
    expect(core.leases.get(leaseId)).toMatchObject({ backendId: "a", attempts: 1, failed: ["b"] });
    expect(core.stats("t", { entries: 0, bytes: 0 }, 2_300).backends.find((b) => b.id === "b")).toMatchObject({ breaker: "open" });
    // A failed hedge lost nothing to the client: no wasted prefill counted.
    expect(core.stats("t", { entries: 0, bytes: 0 }, 2_300).counters).toMatchObject({ hedgesWon: 0, hedgeWastedPromptTokens: 0 });
  });

  it("gives the hedge's slot back when the request ends while the race is still on", () => {
    const { core, host } = hedgingCore();
    const { leaseId } = leaseOf(admit(core, host, request("r"), 2_000));
    core.hedge(leaseId, 2_200);
    core.settle(leaseId, cancelled("a"), "cancelled", undefined, 2_300);
    expect([core.leases.inFlight("a"), core.leases.inFlight("b")]).toEqual([0, 0]);
    expect(core.stats("t", { entries: 0, bytes: 0 }, 2_300).backends.find((b) => b.id === "b")).toMatchObject({ abandoned: 1 });
  });

  it("never hedges while requests wait for slots, past its budget, with no other backend free, or an attempt that answered", () => {
    const { core, host } = hedgingCore({
      backends: [testBackend("a", "us-east"), testBackend("b", "eu-west", { maxConcurrency: 1 }), testBackend("c", "us-east")],
      models: { chat: { route: ["a", "b"], order: "pinned" }, other: { route: ["c"] } },
      limits: { maxConcurrency: 2, maxQueue: 4 },
    });
    const first = leaseOf(admit(core, host, request("r1"), 2_000)).leaseId;
    const second = leaseOf(admit(core, host, request("r2", { alias: "other" }), 2_000)).leaseId;
    expect(admit(core, host, request("r3", { alias: "other" }), 2_000).kind).toBe("queued");
    expect(core.hedge(first, 2_200)).toEqual({ kind: "none", reason: "saturated" });
    core.settle(second, success("c"), "complete", undefined, 2_200);
    // r3 took c's slot; the queue is empty again.
    expect(core.hedge(first, 2_300)).toMatchObject({ kind: "hedge", grant: { backend: { id: "b" } } });
    core.hedgeEnded(first, "primary", cancelled("b"), 2_400);
    core.firstToken(first, 2_400, 400);
    expect(core.hedge(first, 2_500)).toEqual({ kind: "none", reason: "not_waiting" });
  });

  it("stops at its budget: budgetRatio of the requests in the window, and counts what it refused", () => {
    const { core, host } = hedgingCore({ limits: { maxConcurrency: 64 }, hedging: { enabled: true, minSamples: 1, budgetRatio: 0.1 } }, 0);
    const leases = Array.from({ length: 30 }, (_, i) => leaseOf(admit(core, host, request(`r${i}`), 0)).leaseId);
    const started = leases.map((id) => core.hedge(id, 1)).filter((h) => h.kind === "hedge");
    expect(started).toHaveLength(3);
    expect(core.stats("t", { entries: 0, bytes: 0 }, 1).counters).toMatchObject({ hedgesStarted: 3, hedgesDenied: 27 });
  });

  it("passes over a backend with no free slot, and hedges nothing when the model has no other", () => {
    const { core, host } = hedgingCore({
      backends: [testBackend("a", "us-east"), testBackend("b", "eu-west", { maxConcurrency: 1 })],
      models: { chat: { route: ["a", "b"], order: "pinned" }, solo: { route: ["a"] } },
    });
    const first = leaseOf(admit(core, host, request("r1"), 2_000)).leaseId;
    expect(core.hedge(first, 2_100)).toMatchObject({ kind: "hedge" });
    const second = leaseOf(admit(core, host, request("r2"), 2_000)).leaseId;
    expect(core.hedge(second, 2_100)).toEqual({ kind: "none", reason: "no_backend" });
    const solo = leaseOf(admit(core, host, request("r3", { alias: "solo" }), 2_000));
    expect(solo.grant.hedgeAfterMs).toBeUndefined();
    expect(core.hedge(solo.leaseId, 2_100)).toEqual({ kind: "none", reason: "no_backend" });
  });
});
