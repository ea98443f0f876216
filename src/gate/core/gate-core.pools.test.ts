// The gate core with fleet backends (shared pools): it starts attempts on them only with credits
// from their pool, asks for credits when requests wait, gives back what it holds above its fair
// share as attempts end, reports tokens served, and stops using credits its pool stopped answering for.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { SyncReply } from "../../pool/core/credit-ledger";
import { poolReports, RENEW_MS } from "./pool-credits";
import { admit, leaseOf, request, success, testBackend, testConfig, testCore } from "./test-host";

/** A tenant whose alias routes to fleet backend "gpu" (pool "p"), as the config store resolves it. */
function fleetCore(background?: number) {
  const config = testConfig({
    backends: [testBackend("gpu", "us-east", { maxConcurrency: 16 })],
    models: { chat: { route: ["gpu"] } },
    limits: { maxConcurrency: 32, maxQueue: 32, maxQueueWaitMs: 60_000, ...(background === undefined ? {} : { background }) },
    pools: { p: { weight: 3 } },
  });
  return testCore({ ...config, backends: config.backends.map((b) => ({ ...b, pool: "p" })) });
}

const who = { holder: "t/0", tenant: "t" };
const reply = (held: number, target = held): SyncReply => ({ backends: { gpu: { held, target } }, ttlMs: 30_000 });

describe("the gate core on a shared pool", () => {
  it("queues a request until its pool grants a credit, asking at once, and reports the demand", () => {
    const { core, host } = fleetCore();
    expect(admit(core, host, request("r1"), 0).kind).toBe("queued");
    expect(host.poolRequests).toBe(1);
    const [sync] = poolReports(core, who, 1);
    expect(sync).toEqual({
      pool: "p",
      report: {
        ...who,
        share: { weight: 3, min: 0 },
        backends: { gpu: { inFlight: 0, want: 1, wantBackground: 0, headroom: 1, tokens: 0 } },
      },
    });
    core.poolAnswered("p", sync!.report, reply(2), 1, 2);
    expect(host.delivered).toHaveLength(1);
    expect(host.delivered[0]!.result).toMatchObject({ kind: "lease", grant: { backend: { id: "gpu" } } });
    // The second credit is used at once, with no call to the pool.
    expect(admit(core, host, request("r2"), 3).kind).toBe("lease");
    expect(admit(core, host, request("r3"), 4).kind).toBe("queued");
  });

  it("asks its pool only while credits could start a waiter, not while a batch waits for limits.background", () => {
    const { core, host } = fleetCore(1);
    const background = (id: string) => request(id, { priority: "background" });
    admit(core, host, request("r0"), 0);
    core.poolAnswered("p", poolReports(core, who, 0)[0]!.report, reply(3), 0, 1);
    const first = leaseOf(host.delivered[0]!.result);
    const asked = host.poolRequests;
    // Credits in hand: a line starts, the next waits for the background limit; the pool is not asked.
    const line = leaseOf(admit(core, host, background("b1"), 2));
    expect(admit(core, host, background("b2"), 3).kind).toBe("queued");
    core.settle(first.leaseId, success("gpu"), "complete", undefined, 4);
    expect(host.poolRequests).toBe(asked);
    // The line ends: the waiting one takes its slot, still without asking.
    core.settle(line.leaseId, success("gpu"), "complete", undefined, 5);
    expect(host.delivered.at(-1)!.result).toMatchObject({ kind: "lease" });
    expect(host.poolRequests).toBe(asked);
    // An interactive request short of credits (3 held, 3 in flight) asks at once.
    leaseOf(admit(core, host, request("r1"), 6));
    leaseOf(admit(core, host, request("r2"), 7));
    expect(admit(core, host, request("r3"), 8).kind).toBe("queued");
    expect(host.poolRequests).toBe(asked + 1);
  });

  it("starts no more than its target while it holds more, and reports tokens served on the pool's backends", () => {
    const { core, host } = fleetCore();
    // Idle, holding nothing: no report at all.
    expect(poolReports(core, who, 0)).toEqual([]);
    admit(core, host, request("r0"), 0);
    core.poolAnswered("p", poolReports(core, who, 0)[0]!.report, reply(4, 4), 0, 1);
    const leases = [host.delivered[0]!.result, ...["r1", "r2", "r3"].map((id) => admit(core, host, request(id), 2))].map(leaseOf);
    // Another tenant waits: the pool says 2 is this gate's share. Two attempts end; none starts.
    core.poolAnswered("p", poolReports(core, who, 3)[0]!.report, reply(4, 2), 3, 4);
    for (const l of leases.slice(0, 2)) core.settle(l.leaseId, { ...success("gpu"), chunks: 40 }, "complete", undefined, 5);
    expect(admit(core, host, request("r4"), 6).kind).toBe("queued");
    const report = poolReports(core, who, 7)[0]!.report.backends.gpu!;
    // It wants 3 now (2 in flight, 1 waiting), 4 at its peak since its last report.
    expect(report).toMatchObject({ inFlight: 2, want: 4, tokens: 2 * (10 + 40) });
    // Tokens are reported once.
    expect(poolReports(core, who, 8)[0]!.report.backends.gpu!.tokens).toBe(0);
  });

  it("stops starting attempts once its pool has not answered for the credits' lifetime", () => {
    const { core, host } = fleetCore();
    admit(core, host, request("r0"), 0);
    core.poolAnswered("p", poolReports(core, who, 0)[0]!.report, reply(8), 0, 1);
    expect(admit(core, host, request("r1"), 2).kind).toBe("lease");
    const report = poolReports(core, who, 3)[0]!.report;
    // Unreachable, but within the lifetime: credits still count.
    core.poolAnswered("p", report, null, 3, 10_000);
    expect(admit(core, host, request("r2"), 10_001).kind).toBe("lease");
    // Past it (less a margin): nothing more starts on the pool's backends.
    core.poolAnswered("p", poolReports(core, who, 30_000)[0]!.report, null, 30_000, 30_000);
    expect(admit(core, host, request("r3"), 30_001).kind).toBe("queued");
  });

  it("reports background work apart, so the pool gives it only what interactive demand leaves", () => {
    const { core, host } = fleetCore();
    admit(core, host, request("chat"), 0);
    admit(core, host, request("line-1", { priority: "background" }), 0);
    admit(core, host, request("line-2", { priority: "background" }), 0);
    expect(poolReports(core, who, 1)[0]!.report.backends.gpu).toMatchObject({ want: 1, wantBackground: 2 });
  });

  it("holds nothing on a backend its pool no longer answers for, and says when it is short with nothing more", () => {
    const { core, host } = fleetCore();
    admit(core, host, request("r0"), 0);
    const report = poolReports(core, who, 0)[0]!.report;
    // Short of its share (1 of 4) and granted more than before: not stalled.
    expect(core.poolAnswered("p", report, reply(1, 4), 0, 1)).toBe(false);
    // Still 1 of 4: stalled, its sync backs off.
    expect(core.poolAnswered("p", poolReports(core, who, 2)[0]!.report, reply(1, 4), 2, 3)).toBe(true);
    // The backend left the pool (deleted, or moved): nothing starts on it.
    core.poolAnswered("p", poolReports(core, who, 4)[0]!.report, { backends: {}, ttlMs: 30_000 }, 4, 5);
    expect(core.policies.capacity("gpu")).toBe(0);
  });

  it("reports its most in flight since the last report, so a report between two requests gives no credit back", () => {
    const { core, host } = fleetCore();
    for (const id of ["r0", "r1", "r2", "r3"]) admit(core, host, request(id), 0);
    core.poolAnswered("p", poolReports(core, who, 0)[0]!.report, reply(4), 0, 1);
    const leases = host.delivered.map((d) => leaseOf(d.result));
    expect(leases).toHaveLength(4);
    expect(poolReports(core, who, 2)[0]!.report.backends.gpu).toMatchObject({ inFlight: 4, want: 4 });
    // Long after (its peak forgotten), one request ends and its client has not sent the next yet.
    core.settle(leases[0]!.leaseId, success("gpu"), "complete", undefined, 5_000);
    expect(poolReports(core, who, 5_001)[0]!.report.backends.gpu).toMatchObject({ inFlight: 3, want: 4 });
    // The next report, with nothing more in flight meanwhile, says 3.
    expect(poolReports(core, who, 10_000)[0]!.report.backends.gpu).toMatchObject({ inFlight: 3, want: 3 });
  });

  it("keeps a peak's credits through a lull, then lets them go", () => {
    const { core, host } = fleetCore();
    const ids = Array.from({ length: 8 }, (_, i) => `r${i}`);
    for (const id of ids) admit(core, host, request(id), 0);
    core.poolAnswered("p", poolReports(core, who, 0)[0]!.report, reply(9), 0, 1);
    for (const d of host.delivered) core.settle(leaseOf(d.result).leaseId, success("gpu"), "complete", undefined, 2);
    // Nothing in flight or waiting, but 8 at its peak a moment ago: it still wants 8 (and 1 to grow).
    expect(poolReports(core, who, 3)[0]!.report.backends.gpu).toMatchObject({ inFlight: 0, want: 8, headroom: 1 });
    core.poolAnswered("p", poolReports(core, who, 4)[0]!.report, reply(8), 4, 5);
    // Past the peak's memory: it wants nothing, and once the pool took its credits back, it stops reporting.
    const later = 4 + RENEW_MS * 3;
    expect(poolReports(core, who, later)[0]!.report.backends.gpu).toMatchObject({ want: 0, headroom: 0 });
    core.poolAnswered("p", poolReports(core, who, later)[0]!.report, reply(0, 0), later, later + 1);
    expect(poolReports(core, who, later + 2)).toEqual([]);
  });
});

describe("the gate core on a shared pool: property", () => {
  it("never has more attempts in flight on a fleet backend than its pool granted", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("admit" as const) }),
      fc.record({ kind: fc.constant("settle" as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant("sync" as const), held: fc.nat({ max: 12 }), target: fc.nat({ max: 12 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { core, host } = fleetCore();
        const live: string[] = [];
        let granted = 0;
        let now = 0;
        const track = () => {
          for (const d of host.delivered.splice(0)) if (d.result.kind === "lease") live.push(d.result.leaseId);
        };
        for (const [i, o] of ops.entries()) {
          now += 10;
          if (o.kind === "admit") {
            const r = admit(core, host, request(`r${i}`), now);
            if (r.kind === "lease") live.push(r.leaseId);
          } else if (o.kind === "settle" && live.length > 0) {
            const [id] = live.splice(o.pick % live.length, 1);
            core.settle(id!, success("gpu"), "complete", undefined, now);
          } else if (o.kind === "sync") {
            const reports = poolReports(core, who, now);
            if (reports.length === 0) continue;
            // As the ledger answers: what is in flight is held, whatever else it says.
            granted = Math.max(core.policies.inFlight("gpu"), o.held);
            core.poolAnswered("p", reports[0]!.report, reply(granted, o.target), now, now);
          }
          track();
          expect(core.policies.inFlight("gpu")).toBeLessThanOrEqual(granted);
          expect(core.policies.inFlight("gpu")).toBe(live.length);
        }
      }),
    );
  });
});

describe("a backend's reported load", () => {
  it("keeps the latest reading for LOAD_FRESH_MS, with the prefix-cache hit rate between readings", () => {
    const { core } = testCore();
    const read = (queries: number, hits: number, at: number) =>
      core.policies.reportLoad("a", { running: 3, waiting: 1, prefixCache: { queries, hits } }, at);
    read(100, 0, 0);
    expect(core.policies.load("a", 0)).toEqual({ running: 3, waiting: 1, ageMs: 0 });
    read(300, 150, 1_000);
    expect(core.policies.load("a", 1_500)).toEqual({ running: 3, waiting: 1, prefixHitRate: 0.75, ageMs: 500 });
    // No new queries: the last rate stands.
    read(300, 150, 2_000);
    expect(core.policies.load("a", 2_000)?.prefixHitRate).toBe(0.75);
    expect(core.policies.load("a", 2_000 + 10_001)).toBeUndefined();
    // A backend the config does not have is not noted; a server with no metrics clears its reading.
    core.policies.reportLoad("zz", { running: 1, waiting: 0 }, 0);
    expect(core.policies.load("zz", 0)).toBeUndefined();
    core.policies.reportLoad("a", null, 3_000);
    expect(core.policies.load("a", 3_000)).toBeUndefined();
  });

  it("caps a server of the tenant's that reports a queue at what it runs: new requests go elsewhere, and the room comes back reading by reading", () => {
    const { core, host } = testCore(testConfig({ limits: { maxConcurrency: 64, maxQueue: 8 } }));
    for (let i = 0; i < 6; i++) expect(leaseOf(admit(core, host, request(`r${i}`), 0)).grant.backend.id).toBe("a");
    // a runs 4 of the 6 and queues 2: it is capped at 4, and the next request goes to b.
    core.policies.reportLoad("a", { running: 4, waiting: 2 }, 0);
    expect(core.policies.capacity("a")).toBe(4);
    expect(leaseOf(admit(core, host, request("next"), 0)).grant.backend.id).toBe("b");
    // Readings without a queue give the room back by a quarter each, up to its maxConcurrency.
    core.policies.reportLoad("a", { running: 4, waiting: 0 }, 2_000);
    expect(core.policies.capacity("a")).toBe(5);
    for (let t = 4_000; core.policies.capacity("a") < 32; t += 2_000) core.policies.reportLoad("a", { running: 4, waiting: 0 }, t);
    expect(core.policies.capacity("a")).toBe(32);
    // A server that stops reporting is not held to its last cap.
    core.policies.reportLoad("a", { running: 4, waiting: 2 }, 20_000);
    core.policies.reportLoad("a", null, 22_000);
    expect(core.policies.capacity("a")).toBe(32);
  });
});
