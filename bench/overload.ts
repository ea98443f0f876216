// Scenario 2: overload. Twice the backends' capacity in closed-loop clients: backend utilisation
// while requests wait, how fast 429s come, the queue's depth.
import { closedLoop, pick } from "./load";
import { uniformCalls, type Session } from "./traffic";
import { percentiles, round, summarize, type SystemRun } from "./summary";
import { createTenant, type Fleet } from "./stack";
import { configureFleet, gateStats, measure, progress, settle, type TargetList } from "./measure";

export interface OverloadParams {
  overloadWorkers: number;
  overloadMs: number;
}

const PER_SIM_SLOTS = 16;
/**
 * sluice sends each backend this many requests beyond its GPU slots, as README's "Tenant config"
 * advises: the next request already waits inside the server when a generation ends, so the GPU
 * does not idle while the router hands the slot over (measured in docs/performance.md).
 */
const BACKEND_HEADROOM = 2;

export async function overloadScenario(fleet: Fleet, sluiceUrl: string, targets: (key: string) => TargetList, P: OverloadParams) {
  const capacity = PER_SIM_SLOTS * fleet.specs.length;
  await configureFleet(fleet, { failRate: 0, disconnectRate: 0, maxConcurrency: PER_SIM_SLOTS });
  const slots = PER_SIM_SLOTS + BACKEND_HEADROOM;
  const key = await createTenant(
    sluiceUrl,
    "overload",
    fleet,
    { limits: { maxConcurrency: slots * fleet.specs.length, maxQueue: capacity / 2, maxQueueWaitMs: 10_000 } },
    { maxConcurrency: slots },
  );
  const out: Record<string, SystemRun> = {};
  for (const { target, system } of targets(key)) {
    const name = pick(target, 0).name;
    let count = 0;
    const stop = progress(`overload (2x capacity: ${P.overloadWorkers} clients for ${capacity} GPU slots), ${name}`, () => count);
    const sessions = uniformSessions(100_000, `ol-${name}`);
    const m = await measure(
      system,
      fleet,
      () => closedLoop(target, sessions, P.overloadWorkers, P.overloadMs, () => count++),
      capacity,
      name === "sluice" ? async () => (await gateStats(sluiceUrl, "overload")).queue.depth : undefined,
    );
    stop();
    const queued = m.samples.filter((s) => s.queue > 0);
    const rejected = m.results.filter((r) => r.status === 429).map((r) => r.totalMs);
    out[name] = {
      system: name,
      summary: summarize(m.results, m.wallMs),
      attemptsPerCall: m.attemptsPerCall,
      router: m.router,
      utilisation: m.samples.map((s) => [s.t, round(s.util, 3)]),
      utilisationWhileQueued: queued.length ? round(queued.reduce((n, s) => n + s.util, 0) / queued.length, 3) : undefined,
      rejected429Ms: rejected.length ? percentiles(rejected) : undefined,
      maxQueueDepth: Math.max(0, ...m.samples.map((s) => s.queue)),
    };
    await settle(fleet);
  }
  const stats = await gateStats(sluiceUrl, "overload");
  if (out.sluice) out.sluice.extra = { gate: stats.counters, gpuSlotsPerBackend: PER_SIM_SLOTS, sluiceSlotsPerBackend: slots };
  return out;
}

function uniformSessions(count: number, tag: string): Session[] {
  return uniformCalls(count, 40, tag).map((c, i) => ({ id: `${tag}-${i}`, kind: "short" as const, calls: [c] }));
}
