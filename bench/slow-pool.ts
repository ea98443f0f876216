// Scenario: a slow pool. Under steady load (1.5x the fleet's GPU slots in closed-loop clients), every
// backend generates 5x slower for the middle half of the run, then recovers. Each sim has 16 GPU
// slots and queues the rest itself, as vLLM does; sluice may send each 32. Run twice: with a fixed
// maxConcurrency, the excess waits inside the servers, first tokens miss firstTokenMs, retries land
// on servers just as loaded, and breakers open or the retry budget runs out; with adaptiveConcurrency, sluice learns
// to send about what the servers generate and keeps the rest in its own queue. Reported: errors by
// code, TTFT before, during and after, and how soon after the recovery TTFT is back.
import { closedLoop, type CallResult, type Target } from "./load";
import { uniformCalls, type Session } from "./traffic";
import { percentiles, round, summarize, type Percentiles, type Summary } from "./summary";
import { createTenant, type Fleet, type System } from "./stack";
import { configureFleet, NO_FAULTS, gateStats, measure, progress, settle } from "./measure";

export interface SlowPoolParams {
  slowPoolMs: number;
  slowPoolWorkers: number;
}

export interface SlowPoolRun {
  summary: Summary;
  /** Calls not answered in full: turned away, or failed. */
  failed: number;
  retryBudgetExhausted: number;
  ttftMs: { before: Percentiles; slow: Percentiles; after: Percentiles };
  /** After the recovery, when the TTFT p50 of a second's first tokens came back within 1.2x (+20 ms) of before; undefined if it never did. */
  recoveredAfterMs?: number;
  slowTimeouts: number;
}

const GPU_SLOTS = 16;
const SLUICE_SLOTS = 32;
const TOKENS_PER_SECOND = 100;
const SLOWDOWN = 5;

export async function slowPoolScenario(
  fleet: Fleet,
  sluice: System,
  P: SlowPoolParams,
): Promise<Record<"fixed" | "adaptive", SlowPoolRun>> {
  const out: Partial<Record<"fixed" | "adaptive", SlowPoolRun>> = {};
  for (const mode of ["fixed", "adaptive"] as const) {
    await configureFleet(fleet, {
      ...NO_FAULTS,
      maxConcurrency: GPU_SLOTS,
      tokensPerSecond: TOKENS_PER_SECOND,
    });
    const tenant = `slow-${mode}`;
    const key = await createTenant(
      sluice.url,
      tenant,
      fleet,
      {
        limits: { maxConcurrency: 5_000, maxQueue: 5_000, maxQueueWaitMs: 60_000 },
        timeouts: { firstTokenMs: 1_000 },
        retry: { maxAttempts: 3 },
      },
      { maxConcurrency: SLUICE_SLOTS, adaptiveConcurrency: mode === "adaptive" },
    );
    const target: Target = { name: "sluice", baseUrl: `${sluice.url}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
    let count = 0;
    const stop = progress(`slow pool (every backend 5x slower for the middle half), ${mode} maxConcurrency`, () => count);
    const startedAt = performance.now();
    const slowAt = P.slowPoolMs * 0.25;
    const backAt = P.slowPoolMs * 0.75;
    const pace = (tokensPerSecond: number, firstTokenMs: number) =>
      Promise.all(fleet.specs.map((_, i) => fleet.control(i, { tokensPerSecond, firstTokenMs })));
    const slow = setTimeout(() => void pace(TOKENS_PER_SECOND / SLOWDOWN, 5 * SLOWDOWN), slowAt);
    const back = setTimeout(() => void pace(TOKENS_PER_SECOND, 5), backAt);
    const sessions: Session[] = uniformCalls(100_000, 40, tenant).map((c, i) => ({ id: `${tenant}-${i}`, kind: "short", calls: [c] }));
    const m = await measure(
      sluice,
      fleet,
      () => closedLoop(target, sessions, P.slowPoolWorkers, P.slowPoolMs, () => count++),
      GPU_SLOTS * fleet.specs.length,
    );
    clearTimeout(slow);
    clearTimeout(back);
    await pace(TOKENS_PER_SECOND, 5);
    stop();
    const at = (r: CallResult) => r.startedAt - startedAt + (r.ttftMs ?? 0);
    const ttfts = (from: number, to: number) =>
      m.results.filter((r) => r.ttftMs !== undefined && at(r) >= from && at(r) < to).map((r) => r.ttftMs!);
    const before = percentiles(ttfts(0, slowAt));
    const stats = await gateStats(sluice.url, tenant);
    out[mode] = {
      summary: summarize(m.results, m.wallMs),
      failed: m.results.filter((r) => r.outcome !== "exact").length,
      retryBudgetExhausted: m.results.filter((r) => r.errorCode?.includes("retry_budget_exhausted")).length,
      ttftMs: { before, slow: percentiles(ttfts(slowAt, backAt)), after: percentiles(ttfts(backAt, Number.POSITIVE_INFINITY)) },
      recoveredAfterMs: recovery(ttfts, before.p50, backAt, P.slowPoolMs),
      slowTimeouts: stats.counters.slowTimeouts ?? 0,
    };
    await settle(fleet);
  }
  await configureFleet(fleet, { maxConcurrency: 5_000 });
  return out as Record<"fixed" | "adaptive", SlowPoolRun>;
}

/** The first second after `backAt` whose first tokens' TTFT p50 is within 1.2x (+20 ms) of `baseline`, in ms after `backAt`. */
function recovery(
  ttfts: (from: number, to: number) => number[],
  baseline: number | undefined,
  backAt: number,
  endAt: number,
): number | undefined {
  if (baseline === undefined) return undefined;
  for (let t = backAt; t < endAt; t += 1_000) {
    const p50 = percentiles(ttfts(t, t + 1_000)).p50;
    if (p50 !== undefined && p50 <= baseline * 1.2 + 20) return round(t - backAt, 0);
  }
  return undefined;
}
