import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { reportedCapacity } from "./reported-capacity";

describe("reportedCapacity", () => {
  it("caps a server that queues at what it runs, for this gate's share of what it holds", () => {
    // All 12 it holds are this gate's: it runs 8, so 8 is what this gate may send.
    expect(reportedCapacity({ running: 8, waiting: 4 }, 12, undefined, 32)).toBe(8);
    // Half of what it holds is another's: half of its batch.
    expect(reportedCapacity({ running: 8, waiting: 4 }, 6, undefined, 32)).toBe(4);
    // Never under one, never over the backend's own limit.
    expect(reportedCapacity({ running: 0, waiting: 5 }, 5, undefined, 32)).toBe(1);
    expect(reportedCapacity({ running: 40, waiting: 1 }, 41, undefined, 32)).toBe(32);
  });

  it("gives room back by a quarter a reading without a queue, then lifts the cap", () => {
    const steps: Array<number | undefined> = [8];
    while (steps.at(-1) !== undefined) steps.push(reportedCapacity({ running: 3, waiting: 0 }, 3, steps.at(-1), 32));
    expect(steps).toEqual([8, 10, 13, 17, 22, 28, undefined]);
    expect(reportedCapacity({ running: 3, waiting: 0 }, 3, undefined, 32)).toBeUndefined();
  });

  it("always lies within 1 and the backend's limit, and shrinks on a queue no slower than one reading (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ running: fc.nat(64), waiting: fc.nat(64), inFlight: fc.nat(128) }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 64 }),
        (readings, max) => {
          let cap: number | undefined;
          for (const r of readings) {
            cap = reportedCapacity(r, r.inFlight, cap, max);
            if (cap !== undefined) {
              expect(cap).toBeGreaterThanOrEqual(1);
              expect(cap).toBeLessThanOrEqual(max);
            }
            if (r.waiting > 0) expect(cap).toBeLessThanOrEqual(Math.max(1, r.running));
          }
        },
      ),
    );
  });
});
