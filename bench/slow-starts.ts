// Scenario: slow starts. Four backends with a 100 ms first-token delay; on one, 10% of generations
// take ten times as long to start (a long prefill ahead of them, a throttled GPU). The same traffic
// runs without hedging and with it (`hedging.enabled`, its default budget of 5% of requests).
// Reported: TTFT p50/p99 of each (goal: p99 at least halved with hedging), upstream attempts per
// request (goal: at most 5% more with hedging), and the hedges started and won.
import { closedLoop, type Target } from "./load";
import { uniformCalls } from "./traffic";
import { percentiles, round, type Percentiles } from "./summary";
import { createTenant, type Fleet } from "./stack";
import { configureFleet, NO_FAULTS, fleetRequests, gateStats, progress, settle } from "./measure";

export interface SlowStartsRun {
  calls: number;
  /** Calls not answered in full. */
  failed: number;
  ttftMs: Percentiles;
  /** Upstream attempts (requests the sims saw) per call. */
  attemptsPerCall: number;
  hedges: { started: number; won: number; denied: number };
}

export const SLOW_START_RATE = 0.1;
export const SLOW_START_FACTOR = 10;
const FIRST_TOKEN_MS = 100;

export async function slowStartsScenario(
  fleet: Fleet,
  sluiceUrl: string,
  options: { calls: number; concurrency: number },
): Promise<Record<"plain" | "hedged", SlowStartsRun>> {
  await configureFleet(fleet, {
    ...NO_FAULTS,
    maxConcurrency: 5_000,
    tokensPerSecond: 100,
    firstTokenMs: FIRST_TOKEN_MS,
  });
  await fleet.control(0, { slowStartRate: SLOW_START_RATE, slowStartFactor: SLOW_START_FACTOR });
  const out: Partial<Record<"plain" | "hedged", SlowStartsRun>> = {};
  for (const mode of ["plain", "hedged"] as const) {
    const tenant = `slow-starts-${mode}`;
    const key = await createTenant(sluiceUrl, tenant, fleet, {
      limits: { maxConcurrency: 5_000, maxQueue: 5_000, maxQueueWaitMs: 60_000 },
      hedging: { enabled: mode === "hedged" },
    });
    const target: Target = { name: "sluice", baseUrl: `${sluiceUrl}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
    for (let i = 0; i < fleet.specs.length; i++) await fleet.resetStats(i);
    let count = 0;
    const stop = progress(`slow starts (${options.calls} calls, 1 backend in 4 slow to start 1 time in 10), ${mode}`, () => count);
    // Each call its own prompt: affinity spreads them over the four backends.
    const sessions = uniformCalls(options.calls, 20, tenant).map((c, i) => ({ id: `${tenant}-${i}`, calls: [c] }));
    const results = await closedLoop(target, sessions, options.concurrency, 30 * 60_000, () => count++);
    stop();
    const { counters } = await gateStats(sluiceUrl, tenant);
    out[mode] = {
      calls: results.length,
      failed: results.filter((r) => r.outcome !== "exact").length,
      ttftMs: percentiles(results.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!)),
      attemptsPerCall: round((await fleetRequests(fleet)) / Math.max(1, results.length), 3),
      hedges: { started: counters.hedgesStarted ?? 0, won: counters.hedgesWon ?? 0, denied: counters.hedgesDenied ?? 0 },
    };
    await settle(fleet);
  }
  await configureFleet(fleet, { firstTokenMs: 5, slowStartRate: 0 });
  return out as Record<"plain" | "hedged", SlowStartsRun>;
}
