import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HedgingSchema } from "../../config/schema";
import { Hedging, pickHedge, TTFT_WINDOW_MS } from "./hedging";
import { testBackendView, testConfig } from "./test-host";

const plan = ["a", "b", "c"].map((backendId) => ({ backendId, alias: "chat" }));
const hedging = (extra: Record<string, unknown> = {}) =>
  new Hedging(HedgingSchema.parse({ enabled: true, minSamples: 20, minDelayMs: 10, ...extra }), 10_000);

/** `n` first tokens of `alias`: `ms(i)` each, at time `at`. */
function seen(h: Hedging, n: number, ms: (i: number) => number, at = 0, alias = "chat"): void {
  for (let i = 0; i < n; i++) h.firstToken(alias, ms(i), at);
}

describe("Hedging.delayFor", () => {
  it("is the later of the model's recent TTFT p95 and twice its median, once enough first tokens were seen", () => {
    const h = hedging();
    seen(h, 19, () => 100);
    expect(h.delayFor(plan, 0, 0)).toBeUndefined();
    // All alike: twice the median (the histogram's bucket for 100 ms ends at 108).
    seen(h, 1, () => 100);
    expect(h.delayFor(plan, 0, 0)).toBe(216);
    // A tail past twice the median: its p95 (400 ms: the bucket ends at 431).
    const tail = hedging();
    seen(tail, 100, (i) => (i < 90 ? 100 : 400));
    expect(tail.delayFor(plan, 0, 0)).toBe(431);
    // Worked out again after a second, not at every grant.
    seen(h, 100, () => 1_000);
    expect(h.delayFor(plan, 0, 999)).toBe(216);
    expect(h.delayFor(plan, 0, 1_000)).toBeGreaterThanOrEqual(2_000);
  });

  it("stays in the fast mode when one backend in twenty is slow, where that backend's own p95 would not", () => {
    const h = hedging();
    // 97 fast, 3 ten times slower: the delay is still twice a fast first token.
    seen(h, 100, (i) => (i % 33 === 0 ? 1_000 : 100));
    expect(h.delayFor(plan, 0, 0)).toBe(216);
  });

  it("never goes under minDelayMs", () => {
    const h = hedging({ minDelayMs: 250 });
    seen(h, 50, () => 5);
    expect(h.delayFor(plan, 0, 0)).toBe(250);
  });

  it("forgets first tokens older than two windows", () => {
    const h = hedging();
    seen(h, 50, () => 100);
    expect(h.delayFor(plan, 0, TTFT_WINDOW_MS)).toBeDefined();
    expect(h.delayFor(plan, 0, 3 * TTFT_WINDOW_MS)).toBeUndefined();
  });

  it("is undefined when hedging is off, or the model has no other backend in the plan", () => {
    const off = new Hedging(HedgingSchema.parse({}), 10_000);
    seen(off, 50, () => 100);
    expect(off.delayFor(plan, 0, 0)).toBeUndefined();
    const h = hedging();
    seen(h, 50, () => 100);
    const alone = [
      { backendId: "a", alias: "chat" },
      { backendId: "b", alias: "small" },
    ];
    expect(h.delayFor(alone, 0, 0)).toBeUndefined();
    // Each model's own first tokens: "small" has none.
    expect(
      h.delayFor(
        [
          { backendId: "b", alias: "small" },
          { backendId: "c", alias: "small" },
        ],
        0,
        0,
      ),
    ).toBeUndefined();
  });
});

describe("Hedging budget", () => {
  it("allows budgetRatio of the requests in the window, and at least one", () => {
    const h = hedging({ budgetRatio: 0.1 });
    expect(h.trySpend(0)).toBe(true);
    expect(h.trySpend(0)).toBe(false);
    for (let i = 0; i < 30; i++) h.requestAdmitted(0);
    expect(h.trySpend(0)).toBe(true);
    expect(h.trySpend(0)).toBe(true);
    expect(h.trySpend(0)).toBe(false);
  });

  it("never spends more than max(1, ratio x requests) in a window (property)", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.array(fc.boolean(), { maxLength: 300 }), (ratio, ops) => {
        const h = hedging({ budgetRatio: ratio });
        let spent = 0;
        let requests = 0;
        for (const admit of ops) {
          if (admit) {
            h.requestAdmitted(0);
            requests++;
          } else if (h.trySpend(0)) spent++;
          expect(spent).toBeLessThanOrEqual(Math.max(1, Math.floor(requests * ratio)));
        }
      }),
    );
  });
});

describe("pickHedge", () => {
  const config = testConfig();

  it("takes another backend of the same model with a free slot, the one reporting the shortest queue", () => {
    expect(pickHedge(testBackendView(config).v, plan, 0, 0)).toBe(1);
    expect(pickHedge(testBackendView(config, {}, {}, {}, { b: 3 }).v, plan, 0, 0)).toBe(2);
    expect(pickHedge(testBackendView(config, { b: 32 }).v, plan, 0, 0)).toBe(2);
  });

  it("never the attempt's own backend, a fallback model's, a full one, one held off, or one whose breaker is not closed", () => {
    const withFallback = [
      { backendId: "a", alias: "chat" },
      { backendId: "b", alias: "small" },
    ];
    expect(pickHedge(testBackendView(config).v, withFallback, 0, 0)).toBeUndefined();
    expect(pickHedge(testBackendView(config, { b: 32, c: 32 }).v, plan, 0, 0)).toBeUndefined();
    expect(pickHedge(testBackendView(config, {}, { b: 5_000, c: 5_000 }).v, plan, 0, 0)).toBeUndefined();
    const { v, breakers } = testBackendView(testConfig({ breaker: { consecutiveFailures: 1, cooldownMs: 1_000 } }));
    breakers.get("b")!.onFailure(0);
    breakers.get("c")!.onFailure(0);
    expect(pickHedge(v, plan, 0, 0)).toBeUndefined();
    // Half-open after the cooldown: still not for a hedge.
    expect(pickHedge(v, plan, 0, 1_000)).toBeUndefined();
  });

  it("picks, if anything, a backend of the same model other than the attempt's, with room (property)", () => {
    const ids = ["a", "b", "c"];
    fc.assert(
      fc.property(
        fc.array(fc.record({ backendId: fc.constantFrom(...ids), alias: fc.constantFrom("chat", "small") }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat(),
        fc.dictionary(fc.constantFrom(...ids), fc.nat({ max: 40 })),
        (entries, at, inFlight) => {
          const cursor = at % entries.length;
          const picked = pickHedge(testBackendView(config, inFlight).v, entries, cursor, 0);
          if (picked === undefined) return;
          const e = entries[picked]!;
          expect(e.alias).toBe(entries[cursor]!.alias);
          expect(e.backendId).not.toBe(entries[cursor]!.backendId);
          expect(inFlight[e.backendId] ?? 0).toBeLessThan(32);
        },
      ),
    );
  });
});
