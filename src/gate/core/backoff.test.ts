import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { backoffDelayMs } from "./backoff";

describe("backoffDelayMs", () => {
  const opts = { baseDelayMs: 50, maxDelayMs: 5_000 };
  it("grows exponentially under full jitter and respects the cap (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (retry, random) => {
        const d = backoffDelayMs(retry, opts, random);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (retry - 1)) + 1);
      }),
    );
    expect(backoffDelayMs(1, opts, 0.999)).toBe(49);
    expect(backoffDelayMs(3, opts, 0.5)).toBe(100);
    expect(backoffDelayMs(20, opts, 0.999)).toBe(4_995);
  });

  it("honours Retry-After as a floor, capped at maxDelayMs", () => {
    expect(backoffDelayMs(1, opts, 0, 1_200)).toBe(1_200);
    expect(backoffDelayMs(1, opts, 0, 60_000)).toBe(5_000);
  });
});
