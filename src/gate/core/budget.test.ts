import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { RetryBudget } from "./budget";

describe("RetryBudget", () => {
  it("allows the floor, then ratio x requests, over the window", () => {
    const b = new RetryBudget({ ratio: 0.2, minRetries: 2, windowMs: 10_000 });
    expect(b.tryRetry(0)).toBe(true);
    expect(b.tryRetry(0)).toBe(true);
    expect(b.tryRetry(0)).toBe(false);
    for (let i = 0; i < 20; i++) b.recordRequest(1);
    expect(b.tryRetry(2)).toBe(true); // allowed = max(2, 4) = 4, 3 used
    expect(b.tryRetry(2)).toBe(true);
    expect(b.tryRetry(2)).toBe(false);
    expect(b.tryRetry(20_000)).toBe(true); // the window moved on
  });

  it("keeps retries within max(floor, ratio x requests) in every window (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 500 }), retry: fc.boolean() }), { maxLength: 300 }),
        (ratio, floor, events) => {
          const windowMs = 5_000;
          const b = new RetryBudget({ ratio, minRetries: floor, windowMs });
          let now = 0;
          const log: Array<{ at: number; retry: boolean }> = [];
          for (const e of events) {
            now += e.dt;
            if (e.retry) {
              if (b.tryRetry(now)) log.push({ at: now, retry: true });
            } else {
              b.recordRequest(now);
              log.push({ at: now, retry: false });
            }
            // Bucketed windows may hold up to one bucket more than windowMs: count generously.
            const recent = log.filter((l) => l.at > now - windowMs - windowMs / 10);
            const requests = recent.filter((l) => !l.retry).length;
            const retries = log.filter((l) => l.retry && l.at > now - windowMs + windowMs / 10).length;
            expect(retries).toBeLessThanOrEqual(Math.max(floor, Math.floor(requests * ratio)));
          }
        },
      ),
    );
  });
});
