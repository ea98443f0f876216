import { describe, expect, it } from "vitest";
import type { AlertRule } from "../../config/alerts-schema";
import { type AlertFigures, observe } from "./alert-conditions";

const quiet: AlertFigures = {
  queue: { depth: 0, maxQueue: 100, oldestWaitMs: 0 },
  lastMinute: { budgetDenied: 0, deadLetters: 0, ttftSamples: 0 },
  budgets: [],
  backends: [
    { id: "a", breaker: "closed", openedAt: 0, failures: 0, successes: 5 },
    { id: "b", breaker: "closed", openedAt: 0, failures: 0, successes: 5 },
  ],
};
const active = (rule: AlertRule, figures: Partial<AlertFigures>, since = 0) =>
  observe([rule], { ...quiet, ...figures }, since).map((o) => [o.key, o.active]);

describe("alert conditions", () => {
  it("breaker_open: one alert per watched backend, active while not closed or when it opened since the last look", () => {
    const rule: AlertRule = { id: "br", kind: "breaker_open", forSeconds: 0 };
    const open = [{ id: "a", breaker: "open" as const, openedAt: 10, failures: 5, successes: 0 }, quiet.backends[1]!];
    expect(active(rule, { backends: open })).toEqual([
      ["br/a", true],
      ["br/b", false],
    ]);
    const reclosed = [{ id: "a", breaker: "closed" as const, openedAt: 10, failures: 0, successes: 1 }];
    expect(active(rule, { backends: reclosed }, 5)).toEqual([["br/a", true]]);
    expect(active(rule, { backends: reclosed }, 10)).toEqual([["br/a", false]]);
    expect(active({ ...rule, backends: ["b"] }, { backends: open })).toEqual([["br/b", false]]);
    const [o] = observe([rule], { ...quiet, backends: open }, 0);
    expect(o).toMatchObject({ subject: "a", figures: { breaker: "open", failures: 5, successes: 0 } });
    expect(o!.summary).toBe("The circuit breaker of backend a is open: 5 of 5 recent attempts failed.");
    // Opened and closed again since the last look: it held as "open", and is closed now.
    const [blip] = observe([rule], { ...quiet, backends: reclosed }, 5);
    expect(blip).toMatchObject({ active: true, figures: { breaker: "open" }, cleared: { figures: { breaker: "closed" } } });
    expect(blip!.summary).toBe("The circuit breaker of backend a opened: 0 of 1 recent attempts failed.");
    expect(blip!.cleared!.summary).toBe("The circuit breaker of backend a is closed.");
  });

  it("budget: one alert per budget, active past its soft threshold (or spent, without one)", () => {
    const rule: AlertRule = { id: "spend", kind: "budget", forSeconds: 0 };
    const budgets = [
      { id: "tenant/daily", name: "daily", unit: "usd" as const, spent: 16.5, limit: 20, threshold: 16 },
      { id: "key/0123456789abcdef/tok", name: "tok", unit: "tokens" as const, spent: 10, limit: 100, threshold: 100 },
    ];
    expect(active(rule, { budgets })).toEqual([
      ["spend/tenant/daily", true],
      ["spend/key/0123456789abcdef/tok", false],
    ]);
    expect(active({ ...rule, budgets: ["tok"] }, { budgets })).toEqual([["spend/key/0123456789abcdef/tok", false]]);
    const [o, k] = observe([rule], { ...quiet, budgets }, 0);
    expect(o).toMatchObject({ subject: "tenant/daily", figures: { spent: 16.5, limit: 20, threshold: 16, unit: "usd" } });
    expect(o!.summary).toBe('Budget "daily" of the tenant has spent $16.5 of $20 (alert at $16).');
    expect(k!.summary).toBe('Budget "tok" of API key 0123456789abcdef has spent 10 tokens of 100 tokens (alert at 100 tokens).');
  });

  it("queue_saturated: by depth share, by the oldest wait, or either", () => {
    const deep: AlertRule = { id: "q", kind: "queue_saturated", forSeconds: 0, depthShare: 0.8 };
    const slow: AlertRule = { id: "q", kind: "queue_saturated", forSeconds: 0, waitMs: 2_000 };
    expect(active(deep, { queue: { depth: 79, maxQueue: 100, oldestWaitMs: 9_000 } })).toEqual([["q", false]]);
    expect(active(deep, { queue: { depth: 80, maxQueue: 100, oldestWaitMs: 0 } })).toEqual([["q", true]]);
    expect(active(slow, { queue: { depth: 1, maxQueue: 100, oldestWaitMs: 1_999 } })).toEqual([["q", false]]);
    expect(active(slow, { queue: { depth: 1, maxQueue: 100, oldestWaitMs: 2_000 } })).toEqual([["q", true]]);
    expect(active({ ...deep, waitMs: 2_000 }, { queue: { depth: 1, maxQueue: 100, oldestWaitMs: 2_500 } })).toEqual([["q", true]]);
    // A tenant with no queue (maxQueue 0) is never "saturated" by depth.
    expect(active(deep, { queue: { depth: 0, maxQueue: 0, oldestWaitMs: 0 } })).toEqual([["q", false]]);
  });

  it("retry_budget_exhausted, dead_letters and ttft_p99 read the last minute", () => {
    const budget: AlertRule = { id: "r", kind: "retry_budget_exhausted", forSeconds: 0 };
    const dead: AlertRule = { id: "d", kind: "dead_letters", forSeconds: 0, perMinute: 3 };
    const ttft: AlertRule = { id: "t", kind: "ttft_p99", forSeconds: 0, thresholdMs: 1_000, minSamples: 10 };
    const minute = (m: Partial<AlertFigures["lastMinute"]>) => ({ lastMinute: { ...quiet.lastMinute, ...m } });
    expect(active(budget, minute({ budgetDenied: 0 }))).toEqual([["r", false]]);
    expect(active(budget, minute({ budgetDenied: 1 }))).toEqual([["r", true]]);
    expect(active(dead, minute({ deadLetters: 2 }))).toEqual([["d", false]]);
    expect(active(dead, minute({ deadLetters: 3 }))).toEqual([["d", true]]);
    expect(active(ttft, minute({ ttftP99Ms: 1_500, ttftSamples: 9 }))).toEqual([["t", false]]);
    expect(active(ttft, minute({ ttftP99Ms: 999, ttftSamples: 50 }))).toEqual([["t", false]]);
    expect(active(ttft, minute({ ttftP99Ms: 1_000, ttftSamples: 10 }))).toEqual([["t", true]]);
    expect(observe([ttft], { ...quiet, ...minute({ ttftP99Ms: 1_200, ttftSamples: 40 }) }, 0)[0]!.figures).toEqual({
      ttftP99Ms: 1_200,
      ttftSamples: 40,
      thresholdMs: 1_000,
    });
  });
});
