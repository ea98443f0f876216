// Scenario: a growing queue. Four equally near backends, each a GPU server running 16 generations at once and
// queueing the rest inside it; sluice is told each takes 32 (operators rarely know a server's batch
// size, and it changes). Closed-loop clients keep the fleet three-quarters busy. Halfway, backend 0's
// capacity halves (8 at once), so its share of the traffic starts queueing inside it. Run twice:
// with the sims' /metrics (sluice reads each server's queue and passes over the one that grows) and
// without (today's routing without server state: sluice's own count, which never sees the queue).
// Reported, for the second half: the share of requests backend 0 kept, and TTFT p50/p99.
import { closedLoop, type CallResult, type Target } from "./load";
import { uniformCalls } from "./traffic";
import { percentiles, round, type Percentiles } from "./summary";
import { createTenant, type Fleet } from "./stack";
import { configureFleet, NO_FAULTS, progress, settle } from "./measure";

export interface GrowingQueueRun {
  /** Of the requests the sims saw after the change, the share backend 0 got (a quarter before it). */
  shrunkShare: number;
  /** TTFT of the calls started after the change. */
  ttftMs: Percentiles;
  /** Calls after the change not answered in full. */
  failed: number;
  calls: number;
}

const GPU_SLOTS = 16;
const TOLD_CAPACITY = 32;

export async function growingQueueScenario(
  fleet: Fleet,
  sluiceUrl: string,
  options: { phaseMs: number },
): Promise<Record<"serverState" | "ownCount", GrowingQueueRun>> {
  const out: Partial<Record<"serverState" | "ownCount", GrowingQueueRun>> = {};
  const clients = Math.round(GPU_SLOTS * fleet.specs.length * 0.75);
  for (const mode of ["ownCount", "serverState"] as const) {
    await configureFleet(fleet, {
      ...NO_FAULTS,
      maxConcurrency: GPU_SLOTS,
      tokensPerSecond: 100,
      firstTokenMs: 50,
      metrics: mode === "serverState",
    });
    const tenant = `growing-queue-${mode === "ownCount" ? "own-count" : "server-state"}`;
    const key = await createTenant(
      sluiceUrl,
      tenant,
      fleet,
      { limits: { maxConcurrency: 5_000, maxQueue: 5_000, maxQueueWaitMs: 60_000 } },
      // One region: the four are equally near, so the load spreads over all of them.
      { maxConcurrency: TOLD_CAPACITY, region: "us-east" },
    );
    const target: Target = { name: "sluice", baseUrl: `${sluiceUrl}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
    let count = 0;
    const stop = progress(`growing queue (${clients} clients; backend 0 halves halfway), ${mode}`, () => count);
    const sessions = uniformCalls(1_000_000, 40, tenant).map((c, i) => ({ id: `${tenant}-${i}`, calls: [c] }));
    let changedAt = Number.POSITIVE_INFINITY;
    const after: CallResult[] = [];
    const loop = closedLoop(target, sessions, clients, 2 * options.phaseMs, (r) => {
      count++;
      if (r.startedAt >= changedAt) after.push(r);
    });
    await new Promise((r) => setTimeout(r, options.phaseMs));
    for (let i = 0; i < fleet.specs.length; i++) await fleet.resetStats(i);
    await fleet.control(0, { maxConcurrency: GPU_SLOTS / 2 });
    changedAt = performance.now();
    await loop;
    stop();
    const requests: number[] = [];
    for (let i = 0; i < fleet.specs.length; i++) requests.push((await fleet.stats(i)).requests);
    const total = requests.reduce((a, b) => a + b, 0);
    out[mode] = {
      shrunkShare: round(total === 0 ? 0 : requests[0]! / total, 3),
      ttftMs: percentiles(after.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!)),
      failed: after.filter((r) => r.outcome !== "exact").length,
      calls: after.length,
    };
    await settle(fleet);
  }
  await configureFleet(fleet, { maxConcurrency: 5_000, firstTokenMs: 5, metrics: true });
  return out as Record<"serverState" | "ownCount", GrowingQueueRun>;
}
