// The learned concurrency limit: cut when first tokens come late, grown back while answers are
// fast and the limit is in full use, always within [min(4, max), max]; timeouts from a backend that
// answers lately are slow, from one that answers nothing failing.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ADAPTIVE_DEFAULTS, AdaptiveLimit } from "./adaptive-limit";

const FAST = 50;
/** Beyond 2x the baseline plus 250 ms. */
const SLOW = 2 * FAST + 251;

describe("AdaptiveLimit", () => {
  it("starts at maxConcurrency and stays there while first tokens come in time", () => {
    const l = new AdaptiveLimit(16);
    for (let t = 0; t < 100; t++) l.answered(FAST + (t % 7), 16, t * 10);
    expect(l.limit).toBe(16);
    expect(l.baselineMs()).toBe(FAST);
  });

  it("cuts the limit once per congestion event when first tokens come late, down to its floor", () => {
    const l = new AdaptiveLimit(16);
    l.answered(FAST, 1, 0);
    // Ten late answers within one cooldown: one cut.
    for (let i = 1; i <= 10; i++) l.answered(SLOW, 16, i);
    expect(l.limit).toBe(14);
    for (let s = 1; s <= 40; s++) l.answered(SLOW, 16, s * ADAPTIVE_DEFAULTS.cooldownMs);
    expect(l.limit).toBe(4);
  });

  it("grows back by about one a round of fast answers that use it in full", () => {
    const l = new AdaptiveLimit(16);
    l.answered(FAST, 1, 0);
    for (let s = 1; s <= 10; s++) l.answered(SLOW, 16, s * 1_000);
    const cut = l.limit;
    expect(cut).toBeLessThan(10);
    // Answers while the backend holds fewer than the limit do not grow it.
    for (let i = 0; i < 100; i++) l.answered(FAST, cut - 1, 20_000 + i);
    expect(l.limit).toBe(cut);
    let answers = 0;
    while (l.limit < 16 && answers < 1_000) l.answered(FAST, l.limit, 21_000 + answers++);
    expect(l.limit).toBe(16);
    // One round of `limit` answers per step: the sum of the limits on the way up, give or take rounding.
    const rounds = Array.from({ length: 16 - cut }, (_, i) => cut + i).reduce((a, b) => a + b, 0);
    expect(answers).toBeLessThanOrEqual(rounds + 16);
  });

  it("calls a timeout slow while the backend answers lately (and cuts), failing once it answered nothing for a window", () => {
    const l = new AdaptiveLimit(16);
    expect(l.timedOut(0)).toBe("failing");
    l.answered(FAST, 1, 1_000);
    expect(l.timedOut(2_000)).toBe("slow");
    expect(l.limit).toBe(14);
    expect(l.timedOut(1_000 + ADAPTIVE_DEFAULTS.windowMs + 1)).toBe("failing");
  });

  it("never goes below maxConcurrency when that is under the floor, and follows a new maxConcurrency", () => {
    const small = new AdaptiveLimit(3);
    small.answered(FAST, 1, 0);
    for (let s = 1; s <= 20; s++) small.answered(SLOW, 3, s * 1_000);
    expect(small.limit).toBe(3);
    const l = new AdaptiveLimit(16);
    l.resize(8);
    expect(l.limit).toBe(8);
    l.resize(32);
    expect(l.limit).toBe(8);
  });

  it("property: the limit stays within [min(4, max), max], and late answers never raise it", () => {
    const event = fc.oneof(
      fc.record({
        kind: fc.constant("answer" as const),
        ttft: fc.integer({ min: 1, max: 5_000 }),
        inFlight: fc.integer({ min: 0, max: 64 }),
      }),
      fc.record({ kind: fc.constant("timeout" as const) }),
      fc.record({ kind: fc.constant("resize" as const), max: fc.integer({ min: 1, max: 64 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(fc.tuple(event, fc.integer({ min: 0, max: 5_000 }))), (max, events) => {
        const l = new AdaptiveLimit(max);
        let now = 0;
        let cap = max;
        for (const [e, dt] of events) {
          now += dt;
          const before = l.limit;
          if (e.kind === "answer") {
            const late = l.baselineMs() !== undefined && e.ttft > l.baselineMs()! * 2 + 250;
            l.answered(e.ttft, e.inFlight, now);
            if (late) expect(l.limit).toBeLessThanOrEqual(before);
          } else if (e.kind === "timeout") {
            l.timedOut(now);
            expect(l.limit).toBeLessThanOrEqual(before);
          } else {
            cap = e.max;
            l.resize(cap);
          }
          expect(l.limit).toBeGreaterThanOrEqual(Math.min(4, cap));
          expect(l.limit).toBeLessThanOrEqual(cap);
        }
      }),
    );
  });
});
