import { describe, expect, it } from "vitest";
import { GateMetrics } from "./metrics";
import { LatencyHistogram } from "./histogram";

describe("GateMetrics", () => {
  it("comes back from its stored form with the same counters, histograms and backend counts", () => {
    let changes = 0;
    const m = new GateMetrics(() => changes++);
    m.count("admitted", 3);
    m.count("rejectedQueueFull");
    m.queued(12, 0);
    m.finished(250, 1, 0);
    m.finished(4_000, 2, 0);
    m.attemptStarted("a", false);
    m.attemptStarted("a", true);
    m.attemptEnded({ backendId: "a", outcome: "success", ttftMs: 40 }, 20, 0);
    m.attemptEnded({ backendId: "a", outcome: "failure", errorCode: "upstream_auth_failed" }, 0, 0);
    m.attemptEnded({ backendId: "a", outcome: "cancelled", ttftMs: 15 }, 3, 0);
    // A continuation on b that regenerated 4 tokens, and dropped 6 that a had gathered.
    m.attemptEnded(
      {
        backendId: "b",
        outcome: "success",
        waste: [
          { backendId: "b", cause: "regenerated", tokens: 4 },
          { backendId: "a", cause: "restarted", tokens: 6 },
        ],
      },
      0,
      0,
    );
    expect(changes).toBe(11);

    const back = GateMetrics.restore(JSON.parse(JSON.stringify(m)), () => {});
    expect(back.counters).toEqual(m.counters);
    expect(back.counters).toMatchObject({ admitted: 3, rejectedQueueFull: 1, attempts: 2, continuations: 1, completionTokens: 23 });
    expect(back.queueMs.summary()).toEqual(m.queueMs.summary());
    expect(back.totalMs.summary()).toEqual(m.totalMs.summary());
    const a = back.backendCounters("a")!;
    const { attempts, successes, failures, authFailures, tokens } = a;
    expect({ attempts, successes, failures, authFailures, tokens }).toEqual({
      attempts: 2,
      successes: 1,
      failures: 1,
      authFailures: 1,
      tokens: 23,
    });
    expect(a.wasted).toEqual({ regenerated: 0, restarted: 6 });
    expect(back.backendCounters("b")!.wasted).toEqual({ regenerated: 4, restarted: 0 });
    expect(back.counters.wastedTokens).toBe(10);
    expect(a.ttft.summary()).toEqual(m.backendCounters("a")!.ttft.summary());
    expect(a.ttft.count).toBe(2);
  });

  it("starts counters it has no stored value for at zero (a newer version added them)", () => {
    const back = GateMetrics.restore({ counters: { completed: 7 }, queueMs: [], totalMs: [], backends: {} }, () => {});
    expect(back.counters.completed).toBe(7);
    expect(back.counters.queuedTwins).toBe(0);
  });

  it("starts a backend's token count at zero when its stored counts predate it", () => {
    const back = GateMetrics.restore(
      { counters: {}, queueMs: [], totalMs: [], backends: { a: { attempts: 2, successes: 2, failures: 0, ttft: [] } } },
      () => {},
    );
    expect(back.backendCounters("a")).toMatchObject({ attempts: 2, tokens: 0, wasted: { regenerated: 0, restarted: 0 } });
  });
});

describe("LatencyHistogram stored form", () => {
  it("keeps only buckets with counts and ignores stored buckets out of range", () => {
    const h = new LatencyHistogram();
    for (const ms of [1, 5, 5, 900]) h.record(ms);
    // Three buckets, and the sum of the samples.
    expect(h.toJSON()).toHaveLength(4);
    expect(h.toJSON().at(-1)).toEqual([-1, 911]);
    const back = new LatencyHistogram();
    back.restore([...h.toJSON(), [10_000, 2], [3, 0], [-7, 3]]);
    expect(back.count).toBe(4);
    expect(back.summary()).toEqual(h.summary());
    expect(back.exported()).toEqual(h.exported());
  });
});
