import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatencyHistogram } from "./histogram";
import { RecentActivity, SLOT_MS, SLOTS, mergeRecent } from "./recent";

const T0 = 1_800_000_000_000;

describe("RecentActivity", () => {
  it("sums the last minute and the last five, and forgets what is older", () => {
    const r = new RecentActivity();
    // Six minutes ago: out of both windows. Three minutes ago: in the five. Now: in both.
    r.queued(999, T0 - 6 * 60_000);
    r.ended(9, T0 - 6 * 60_000);
    r.queued(100, T0 - 3 * 60_000);
    r.ended(3, T0 - 3 * 60_000);
    r.attemptEnded("a", true, undefined, T0 - 3 * 60_000);
    r.attemptEnded("a", true, undefined, T0 - 3 * 60_000);
    r.queued(10, T0);
    r.ended(1, T0);
    r.attemptEnded("a", false, 40, T0);
    r.budgetDenied(T0);
    const { lastMinute, last5Minutes } = r.summary(T0 + 1_000);
    expect(lastMinute).toMatchObject({
      requests: 1,
      attemptsPerRequest: 1,
      budgetDenied: 1,
      backends: { a: { attempts: 1, failures: 0, failureRate: 0 } },
    });
    expect(lastMinute.ttftMs.p99).toBeGreaterThanOrEqual(40);
    expect(lastMinute.queueMs.p99).toBeLessThan(20);
    expect(last5Minutes).toMatchObject({
      requests: 2,
      attemptsPerRequest: 2,
      budgetDenied: 1,
      backends: { a: { attempts: 3, failures: 2, failureRate: 0.667 } },
    });
    expect(last5Minutes.queueMs.p99).toBeGreaterThanOrEqual(100);
    expect(last5Minutes.queueMs.p99).toBeLessThan(999);
    // Later on, all of it has aged out.
    expect(r.summary(T0 + SLOTS * SLOT_MS + 1).last5Minutes).toMatchObject({ requests: 0, attemptsPerRequest: 0, backends: {} });
  });

  it("a window holds exactly the samples of its slots (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 10 * 60_000 }), fc.integer({ min: 0, max: 60_000 })), { maxLength: 200 }),
        (events) => {
          const r = new RecentActivity();
          const sorted = [...events].sort((x, y) => x[0] - y[0]);
          for (const [at, ms] of sorted) r.queued(ms, T0 + at);
          const now = T0 + (sorted.at(-1)?.[0] ?? 0);
          const current = Math.floor(now / SLOT_MS);
          const inWindow = (at: number, slots: number) => Math.floor((T0 + at) / SLOT_MS) > current - slots;
          for (const [slots, window] of [
            [60_000 / SLOT_MS, r.summary(now).lastMinute],
            [SLOTS, r.summary(now).last5Minutes],
          ] as const) {
            const expected = new LatencyHistogram();
            for (const [at, ms] of sorted) if (inWindow(at, slots)) expected.record(ms);
            expect(window.queueMs).toEqual({ p50: expected.quantile(0.5), p99: expected.quantile(0.99) });
          }
        },
      ),
      { numRuns: 500, seed: 20261202 },
    );
  });
});

describe("mergeRecent", () => {
  it("adds counts, weighs attempts per request, keeps the worst percentile", () => {
    const x = new RecentActivity();
    const y = new RecentActivity();
    x.queued(10, T0);
    x.ended(1, T0);
    x.attemptEnded("a", false, 20, T0);
    y.queued(500, T0);
    y.ended(3, T0);
    y.ended(1, T0);
    y.attemptEnded("a", true, undefined, T0);
    const merged = mergeRecent([x.summary(T0), y.summary(T0)]).lastMinute;
    expect(merged).toMatchObject({
      requests: 3,
      attemptsPerRequest: 1.667,
      backends: { a: { attempts: 2, failures: 1, failureRate: 0.5 } },
    });
    expect(merged.queueMs.p99).toBe(y.summary(T0).lastMinute.queueMs.p99);
    expect(merged.ttftMs.p99).toBe(x.summary(T0).lastMinute.ttftMs.p99);
  });
});
