// Background work (batch lines) in the gate: it takes only the slots interactive requests leave
// free, at most limits.background of them, and never stands in an interactive request's way.
import { describe, expect, it } from "vitest";
import { admit, leaseOf, request, success, testConfig, testCore } from "./test-host";

const background = (id: string) => request(id, { priority: "background" });
const limits = (l: Record<string, number>) => testConfig({ limits: { maxQueue: 8, maxQueueWaitMs: 60_000, ...l } });

describe("background work in the gate", () => {
  it("holds at most limits.background slots; interactive requests take the free ones at once", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 4, background: 2 }));
    leaseOf(admit(core, host, background("b1"), 0));
    leaseOf(admit(core, host, background("b2"), 0));
    expect(admit(core, host, background("b3"), 0).kind).toBe("queued");
    // A background request waits; an interactive one is not held behind it.
    leaseOf(admit(core, host, request("i1"), 1));
    leaseOf(admit(core, host, request("i2", { priority: "low" }), 1));
    expect(core.leases.size).toBe(4);
    expect(core.leases.background).toBe(2);
  });

  it("defaults to half the tenant's slots", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 5 }));
    for (const id of ["b1", "b2", "b3"]) leaseOf(admit(core, host, background(id), 0));
    expect(admit(core, host, background("b4"), 0).kind).toBe("queued");
  });

  it("gives a freed slot to a waiting interactive request before a background one that waited longer", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 1, background: 1 }));
    const first = leaseOf(admit(core, host, request("i0"), 0));
    expect(admit(core, host, background("b1"), 1).kind).toBe("queued");
    expect(admit(core, host, request("i1", { priority: "low" }), 2).kind).toBe("queued");
    core.settle(first.leaseId, success("a"), "complete", undefined, 3);
    expect(host.delivered.map((d) => [d.ticket, d.result.kind])).toEqual([["i1", "lease"]]);
    core.settle((host.verdict("i1") as { leaseId: string }).leaseId, success("a"), "complete", undefined, 4);
    expect(host.delivered.map((d) => [d.ticket, d.result.kind])).toEqual([
      ["i1", "lease"],
      ["b1", "lease"],
    ]);
  });

  it("a freed background slot goes to the next background request only while under the limit", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 4, background: 1 }));
    const b1 = leaseOf(admit(core, host, background("b1"), 0));
    expect(admit(core, host, background("b2"), 0).kind).toBe("queued");
    const i1 = leaseOf(admit(core, host, request("i1"), 1));
    core.settle(i1.leaseId, success("a"), "complete", undefined, 2);
    expect(host.delivered).toEqual([]); // a slot freed, but background is at its limit
    core.settle(b1.leaseId, success("a"), "complete", undefined, 3);
    expect(host.delivered.map((d) => d.ticket)).toEqual(["b2"]);
  });

  it("is displaced from a full queue by an interactive newcomer, never the other way round", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 1, maxQueue: 1, background: 1 }));
    leaseOf(admit(core, host, request("i0"), 0));
    expect(admit(core, host, background("b1"), 1).kind).toBe("queued");
    expect(admit(core, host, request("i1", { priority: "low" }), 2).kind).toBe("queued");
    expect(host.verdict("b1")).toMatchObject({ kind: "reject", status: 429, code: "queue_full" });
    expect(admit(core, host, background("b2"), 3)).toMatchObject({ kind: "reject", status: 429 });
  });

  it("counts background leases restored after a restart against the limit", () => {
    const { core, host } = testCore(limits({ maxConcurrency: 4, background: 1 }));
    leaseOf(admit(core, host, background("b1"), 0));
    const { core: restarted, host: host2 } = testCore(limits({ maxConcurrency: 4, background: 1 }));
    restarted.leases.restore(host.stored.values());
    expect(restarted.leases.background).toBe(1);
    expect(admit(restarted, host2, background("b2"), 1).kind).toBe("queued");
  });
});
