// Gate calls resent after a lost reply, leases claimed after a restart, and replays decided before
// any backend's availability. Every case runs in microseconds: time is an argument.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ENDED_MEMORY_MS, EndedLeases, MAX_ENDED } from "./lease-recovery";
import type { LeaseClaim } from "./protocol";
import { admit, failure, leaseOf, request, success, testConfig, testCore } from "./test-host";

const keyed = (id: string, hash = "h") => request(id, { record: { key: "idem:k", kind: "idempotency", bodyHash: hash, shared: true } });
const inFlight = (core: ReturnType<typeof testCore>["core"]) => core.stats("t", { entries: 0, bytes: 0 }, 0).inFlight;

describe("an admission resent after its reply was lost", () => {
  it("gets the same lease, plain or keyed, and holds one slot", () => {
    for (const req of [request("r"), keyed("r")]) {
      const { core, host } = testCore();
      const first = leaseOf(admit(core, host, req, 0));
      const again = leaseOf(admit(core, host, req, 1));
      expect(again).toMatchObject({ leaseId: first.leaseId, grant: { attempt: 1, backend: { id: first.grant.backend.id } } });
      expect(inFlight(core)).toBe(1);
      core.settle(first.leaseId, success("a"), "complete", undefined, 2);
      expect(inFlight(core)).toBe(0);
    }
  });

  it("of a queued request keeps its place instead of being turned away as a duplicate", () => {
    const { core, host } = testCore(testConfig({ limits: { maxConcurrency: 1, maxQueue: 1 } }));
    const held = leaseOf(admit(core, host, request("held"), 0));
    expect(admit(core, host, request("w"), 1).kind).toBe("queued");
    expect(admit(core, host, request("w"), 2)).toEqual({ kind: "queued", ticket: "w" });
    core.settle(held.leaseId, success("a"), "complete", undefined, 3);
    expect(host.verdict("w")?.kind).toBe("lease");
  });
});

describe("a retry resent after its reply was lost", () => {
  it("gets the attempt the first call started, and counts the failure once", () => {
    const { core, host } = testCore();
    const lease = leaseOf(admit(core, host, request("r"), 0));
    const needs = { deliveredChunks: 0, mustContinue: false, attempt: 1 };
    const next = core.retry(lease.leaseId, failure("a"), needs, 1);
    const again = core.retry(lease.leaseId, failure("a"), needs, 2);
    expect(next).toMatchObject({ kind: "attempt", grant: { attempt: 2, backend: { id: "b" } } });
    expect(again).toMatchObject({ kind: "attempt", grant: { attempt: 2, backend: { id: "b" } } });
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 3);
    expect(stats.counters).toMatchObject({ attempts: 2, retries: 1 });
    expect(stats.backends.map((b) => [b.id, b.inFlight])).toEqual([
      ["a", 0],
      ["b", 1],
      ["c", 0],
    ]);
  });
});

describe("a lease the gate does not know", () => {
  const claimOf = (leaseId: string, extra: Partial<LeaseClaim> = {}): LeaseClaim => ({
    leaseId,
    admit: request("r"),
    backendId: "a",
    attempts: 1,
    answered: false,
    ...extra,
  });

  it("is adopted when its request claims it: counted again, on its backend, and settled as any other", () => {
    const { core } = testCore();
    expect(core.renew("lost", 0)).toMatchObject({ held: false, ended: { code: "lease_unknown" } });
    expect(core.adopt(claimOf("lost"), 1)).toEqual({ held: true });
    expect(core.adopt(claimOf("lost"), 2)).toEqual({ held: true });
    const stats = core.stats("t", { entries: 0, bytes: 0 }, 3);
    expect(stats.inFlight).toBe(1);
    expect(stats.counters.adopted).toBe(1);
    expect(stats.backends.find((b) => b.id === "a")?.inFlight).toBe(1);
    expect(core.renew("lost", 4)).toEqual({ held: true });
    // Its next attempt goes on from where it was: attempt 2, elsewhere.
    expect(core.retry("lost", failure("a"), { deliveredChunks: 0, mustContinue: false, attempt: 1 }, 5)).toMatchObject({
      kind: "attempt",
      grant: { attempt: 2, backend: { id: "b" } },
    });
    core.settle("lost", success("b"), "complete", undefined, 6);
    expect(inFlight(core)).toBe(0);
  });

  it("is adopted even past the limits (its backend is already answering)", () => {
    const { core, host } = testCore(testConfig({ limits: { maxConcurrency: 1 } }));
    leaseOf(admit(core, host, request("held"), 0));
    expect(core.adopt(claimOf("lost"), 1)).toEqual({ held: true });
    expect(inFlight(core)).toBe(2);
  });

  it("keeps a backend the config no longer routes to at the head of its plan", () => {
    const { core } = testCore(testConfig({ models: { chat: { route: ["b"], order: "pinned" } } }));
    expect(core.adopt(claimOf("lost", { backendId: "a" }), 1)).toEqual({ held: true });
    expect(core.stats("t", { entries: 0, bytes: 0 }, 2).backends.find((b) => b.id === "a")?.inFlight).toBe(1);
  });

  it("is refused to a journaled request whose entry was reclaimed and taken over: its answer is another's now", () => {
    const { core, host } = testCore();
    const first = leaseOf(admit(core, host, keyed("first"), 0));
    core.reclaimExpired(60_000);
    const takeover = leaseOf(admit(core, host, keyed("again"), 60_001));
    const claim = claimOf(first.leaseId, { admit: keyed("first") });
    expect(core.adopt(claim, 60_002)).toMatchObject({ held: false, ended: { code: "lease_lost" } });
    core.settle(takeover.leaseId, success("a"), "complete", undefined, 60_003);
    expect(core.adopt(claim, 60_004)).toMatchObject({ held: false, ended: { code: "lease_lost" } });
    expect(inFlight(core)).toBe(0);
  });

  it("is refused once its request settled, though the claim arrives after the settle (they crossed)", () => {
    const { core } = testCore();
    core.settle("lost", null, "complete", undefined, 1);
    expect(core.adopt(claimOf("lost"), 2)).toMatchObject({ held: false, ended: { code: "lease_lost" } });
    expect(inFlight(core)).toBe(0);
    // Remembered for a while, then forgotten: the memory is bounded in time (and count).
    expect(core.adopt(claimOf("lost"), 1 + ENDED_MEMORY_MS)).toEqual({ held: true });
  });

  it("property: the memory of settled leases stays within its bounds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 100_000 })), { maxLength: 200 }),
        (notes) => {
          const ended = new EndedLeases();
          let now = 0;
          for (const [id, dt] of notes) {
            now += dt;
            ended.note(`l${id}`, now);
            expect(ended.has(`l${id}`, now)).toBe(true);
          }
          expect(ended.has("never", now)).toBe(false);
        },
      ),
    );
    const many = new EndedLeases();
    for (let i = 0; i <= MAX_ENDED; i++) many.note(`l${i}`, 0);
    expect(many.has("l0", 0)).toBe(false);
    expect(many.has(`l${MAX_ENDED}`, 0)).toBe(true);
  });

  it("is refused for a deleted tenant, which it is told", () => {
    const { core } = testCore();
    core.loadConfig(null, 0, new Map(), 0);
    expect(core.adopt(claimOf("lost"), 1)).toMatchObject({ held: false, ended: { code: "lease_lost" } });
    core.markDeleted();
    expect(core.adopt(claimOf("lost"), 2)).toMatchObject({ held: false, ended: { status: 410, code: "tenant_deleted" } });
  });

  it("property: however calls are resent and leases claimed, the slots in flight are the leases held", () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant("admit" as const), id: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ op: fc.constant("adopt" as const), id: fc.integer({ min: 0, max: 5 }), backend: fc.constantFrom("a", "b", "c") }),
      fc.record({ op: fc.constant("settle" as const), id: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ op: fc.constant("retry" as const), id: fc.integer({ min: 0, max: 5 }), attempt: fc.integer({ min: 1, max: 3 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
        const { core, host } = testCore(testConfig({ limits: { maxConcurrency: 3, maxQueue: 0 } }));
        const leaseIds = new Map<number, string>();
        let now = 0;
        for (const s of steps) {
          now++;
          if (s.op === "admit") {
            const r = admit(core, host, request(`r${s.id}`), now);
            if (r.kind === "lease") leaseIds.set(s.id, r.leaseId);
          } else if (s.op === "adopt") {
            const id = leaseIds.get(s.id) ?? `claimed-${s.id}`;
            if (core.adopt(claimOf(id, { admit: request(`r${s.id}`), backendId: s.backend }), now).held) leaseIds.set(s.id, id);
          } else if (s.op === "settle") {
            const id = leaseIds.get(s.id);
            if (id) core.settle(id, null, "failed", undefined, now);
          } else {
            const id = leaseIds.get(s.id);
            if (id) core.retry(id, failure("a"), { deliveredChunks: 0, mustContinue: false, attempt: s.attempt }, now);
          }
          const stats = core.stats("t", { entries: 0, bytes: 0 }, now);
          const busy = stats.backends.reduce((n, b) => n + b.inFlight, 0);
          expect(busy).toBeLessThanOrEqual(stats.inFlight);
        }
        for (const id of leaseIds.values()) core.settle(id, null, "failed", undefined, ++now);
        const end = core.stats("t", { entries: 0, bytes: 0 }, now);
        expect(end.inFlight).toBe(0);
        expect(end.backends.every((b) => b.inFlight === 0)).toBe(true);
      }),
    );
  });
});

describe("replays come before any backend's availability", () => {
  it("a stored answer is replayed, and a reused key refused, while every breaker is open", () => {
    const config = testConfig({ models: { chat: { route: ["a"] } }, breaker: { consecutiveFailures: 1, minRequests: 100 } });
    const { core, host } = testCore(config);
    const first = leaseOf(admit(core, host, keyed("first"), 0));
    core.checkpoint(first.leaseId, { from: 0, chunks: ["{}"], text: "x", tokens: 1 }, 1);
    core.settle(first.leaseId, success("a"), "complete", { from: 1, chunks: [], text: "x", tokens: 1 }, 2);
    const plain = leaseOf(admit(core, host, request("opens"), 3));
    core.retry(plain.leaseId, failure("a"), { deliveredChunks: 0, mustContinue: false }, 4);
    expect(admit(core, host, request("other"), 5)).toMatchObject({ kind: "reject", status: 503, code: "no_backend_available" });
    expect(admit(core, host, keyed("again"), 6)).toMatchObject({ kind: "replay", entry: { state: "complete" } });
    expect(admit(core, host, keyed("reused", "other body"), 7)).toMatchObject({
      kind: "reject",
      status: 422,
      code: "idempotency_key_reused",
    });
  });
});
