// The benchmark's own verdicts on the targets: each threshold, and a run that lacks a figure.
import { describe, expect, it } from "vitest";
import type { SystemRun, Summary } from "../../bench/summary";
import { judgeTargets, type RunResults } from "../../bench/targets";

function run(
  system: string,
  s: Partial<Summary> & { ttft?: [number, number]; extra?: Record<string, unknown> },
  more: Partial<SystemRun> = {},
): SystemRun {
  const summary: Summary = {
    calls: 100,
    outcomes: { exact: 100 },
    ttftMs: { p50: s.ttft?.[0], p95: s.ttft?.[1], p99: s.ttft?.[1] },
    e2eMs: {},
    tokensPerSec: 1000,
    exactShare: 1,
    errors: {},
    ...s,
  };
  return { system, summary, attemptsPerCall: 1, utilisation: [], extra: s.extra, ...more };
}

const verdict = (results: RunResults, target: string) => judgeTargets(results).find((v) => v.target.startsWith(target));

describe("judgeTargets", () => {
  it("holds the 1-stream budget of +1 ms, and the ratios at higher concurrency", () => {
    const results: RunResults = {
      overhead: {
        c1: {
          direct: run("direct", { ttft: [4, 6] }),
          passthrough: run("passthrough", { ttft: [7, 9] }),
          sluice: run("sluice", { ttft: [8, 12] }),
        },
        c100: {
          direct: run("direct", { ttft: [30, 40] }),
          passthrough: run("passthrough", { ttft: [50, 80] }),
          sluice: run("sluice", { ttft: [76, 160], tokensPerSec: 899 }),
        },
      },
    };
    expect(verdict(results, "1 stream: TTFT p50")?.met).toBe(true);
    expect(verdict(results, "100 streams: TTFT p50")).toMatchObject({ met: false, measured: "76 ms vs 50 ms (1.52x)" });
    expect(verdict(results, "100 streams: TTFT p99")).toMatchObject({ met: true, measured: "160 ms vs 80 ms (2.00x)" });
    expect(verdict(results, "100 streams: tokens/s")).toMatchObject({ met: false, measured: "899 vs 1000 (89.90%)" });
    expect(verdict(results, "100 streams: zero transport errors")?.met).toBe(true);
  });

  it("weighs sluice's added TTFT against Portkey's at the median and at p99", () => {
    const results: RunResults = {
      overhead: {
        c100: {
          passthrough: run("passthrough", { ttft: [50, 80] }),
          sluice: run("sluice", { ttft: [90, 200] }),
          portkey: run("portkey", { ttft: [100, 190] }),
        },
      },
    };
    expect(verdict(results, "100 streams: less added TTFT p50 than Portkey")).toMatchObject({ met: true, measured: "+40.0 vs +50.0 ms" });
    expect(verdict(results, "100 streams: less added TTFT p99 than Portkey")).toMatchObject({
      met: false,
      measured: "+120.0 vs +110.0 ms",
    });
  });

  it("holds sluice's fixed CPU per request to the JS relay's plus a quarter of a millisecond", () => {
    const split = (fixedMs: number, perTokenMs = 0.04) => ({ fixedMs, perTokenMs });
    const judged = (sluice: number) =>
      verdict({ fixedCpu: { sluice: split(sluice), "js-relay": split(0.7), passthrough: split(0.5, 0.01) } }, "overhead: fixed CPU");
    expect(judged(0.95)).toMatchObject({
      met: true,
      measured: "0.95 ms vs 0.7 ms (+0.250 ms; per token 40 vs 40 µs; pass-through 0.5 ms)",
    });
    expect(judged(0.951)?.met).toBe(false);
    expect(verdict({ fixedCpu: { sluice: split(0.9) } }, "overhead: fixed CPU")).toBeUndefined();
  });

  it("counts transport errors only at the highest concurrency", () => {
    const sluice = run("sluice", { ttft: [10, 10], outcomes: { exact: 99, transport_error: 1 } });
    const results: RunResults = { overhead: { c1: { sluice }, c1000: { sluice } } };
    expect(verdict(results, "1000 streams: zero transport errors")).toMatchObject({ met: false, measured: "1" });
    expect(verdict(results, "1 stream: zero transport errors")).toBeUndefined();
  });

  it("judges chaos and overload, with the 429 bound on the p99", () => {
    const results: RunResults = {
      chaos: {
        sluice: run("sluice", { exactShare: 0.9991, extra: { leakedSlots: 0 } }, { attemptsPerCall: 1.31 }),
        portkey: run("portkey", { exactShare: 0.95 }),
      },
      overload: { sluice: run("sluice", {}, { utilisationWhileQueued: 0.95, rejected429Ms: { p50: 5, p99: 21 } }) },
    };
    expect(verdict(results, "chaos: at least")?.met).toBe(true);
    expect(verdict(results, "chaos: at most 1.3")?.met).toBe(false);
    expect(verdict(results, "chaos: zero truncated")?.met).toBe(true);
    expect(verdict(results, "chaos: more exact answers than Portkey")?.met).toBe(true);
    expect(verdict(results, "overload: backend utilisation")?.met).toBe(true);
    expect(verdict(results, "overload: 429s")).toMatchObject({ met: false, measured: "p50 5 ms, p99 21 ms" });
  });

  it("judges the agent sessions over each translated API, and its CPU per request against chat's", () => {
    const results: RunResults = {
      chaos: {
        "sluice-messages": run("sluice over /v1/messages", { calls: 50, outcomes: { exact: 48, partial_with_error: 1, rejected: 1 } }),
        "sluice-responses": run("sluice over /v1/responses", { calls: 50, outcomes: { exact: 49, corrupted_tool_call: 1 } }),
      },
      surfaceCpu: { chat: 2, messages: 2.2, responses: 2.3 },
    };
    expect(verdict(results, "chaos over /v1/messages")).toMatchObject({
      met: true,
      measured: "100.00% (48 exact, 2 explicit errors of 50), 0 corrupted",
    });
    expect(verdict(results, "chaos over /v1/responses")?.met).toBe(false);
    expect(verdict(results, "overhead: CPU per request over /v1/messages")).toMatchObject({
      met: true,
      measured: "2.2 ms vs 2 ms (1.10x)",
    });
    expect(verdict(results, "overhead: CPU per request over /v1/responses")?.met).toBe(false);
  });

  it("judges the slow pool by adaptiveConcurrency's run: nothing failed, TTFT back within 10 s", () => {
    const pool = (failed: number, recoveredAfterMs?: number) => ({
      summary: run("sluice", {}).summary,
      failed,
      retryBudgetExhausted: 0,
      ttftMs: { before: {}, slow: {}, after: {} },
      recoveredAfterMs,
      slowTimeouts: 3,
    });
    const results: RunResults = { slowPool: { fixed: pool(40), adaptive: pool(0, 2_000) } };
    expect(verdict(results, "slow pool: no retry_budget_exhausted")?.met).toBe(true);
    expect(verdict(results, "slow pool: TTFT back")).toMatchObject({ met: true, measured: "2000 ms (fixed maxConcurrency: never)" });
    const worse: RunResults = { slowPool: { fixed: pool(40), adaptive: pool(1, 12_000) } };
    expect(verdict(worse, "slow pool: no retry_budget_exhausted")?.met).toBe(false);
    expect(verdict(worse, "slow pool: TTFT back")?.met).toBe(false);
  });

  it("says neither met nor missed when the run lacks the figure", () => {
    const results: RunResults = { chaos: { sluice: run("sluice", { outcomes: { exact: 90, truncated: 1 } }) } };
    expect(verdict(results, "chaos: zero truncated")).toMatchObject({ met: undefined, measured: "1 / 0 / –" });
    expect(judgeTargets({}).length).toBe(0);
  });
});
