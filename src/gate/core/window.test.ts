import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DrainRate } from "./drain-rate";
import { SlidingWindowCounter } from "./window";

describe("SlidingWindowCounter", () => {
  it("counts what happened within the window, by series (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 400 }), series: fc.integer({ min: 0, max: 1 }) }), { maxLength: 200 }),
        (events) => {
          const w = new SlidingWindowCounter(1_000, 2);
          let now = 0;
          const log: Array<[number, number]> = [];
          for (const e of events) {
            now += e.dt;
            w.add(now, e.series);
            log.push([now, e.series]);
            const totals = w.totals(now);
            for (const s of [0, 1]) {
              // Buckets are a tenth of the window: what is counted lies within one bucket of it.
              const inWindow = log.filter(([t, x]) => x === s && t > now - 1_000).length;
              const inWindowAndBucket = log.filter(([t, x]) => x === s && t > now - 1_100).length;
              expect(totals[s]).toBeGreaterThanOrEqual(inWindow);
              expect(totals[s]).toBeLessThanOrEqual(inWindowAndBucket);
            }
          }
        },
      ),
    );
  });

  it("survives a snapshot, and drops buckets from a clock that went backwards", () => {
    const w = new SlidingWindowCounter(1_000, 1);
    w.add(5_000, 0, 3);
    const copy = new SlidingWindowCounter(1_000, 1);
    copy.restore(w.snapshot());
    expect(copy.totals(5_050)).toEqual([3]);
    expect(copy.totals(100)).toEqual([0]);
  });
});

describe("DrainRate", () => {
  it("turns slots freed per second into a Retry-After for the queue's length, within 1..60 s", () => {
    const d = new DrainRate(10_000);
    expect(d.retryAfterSeconds(0, 4)).toBe(5); // nothing drained yet: one second per place
    for (let i = 0; i < 20; i++) d.record(i * 100);
    expect(d.perSecond(2_000)).toBe(2);
    expect(d.retryAfterSeconds(2_000, 9)).toBe(5);
    expect(d.retryAfterSeconds(2_000, 0)).toBe(1);
    expect(d.retryAfterSeconds(2_000, 10_000)).toBe(60);
  });
});
