// Scenario: a noisy neighbour on a shared pool. Tenants A and B share four backends (16 GPU slots
// each, weight 1 each); A offers half its share (16 closed-loop clients) throughout, and B joins
// halfway, offering five times its share (160 clients; what its queue cannot hold is refused with
// 429). Reported: A's TTFT alone and beside B (goal: p99 within 20%), each sim's peak of open
// generations against the capacity the pool grants (goal: never above it), backend utilisation
// while anyone waits (goal: at least 95%), B's 429s, and the tokens the pool served each.
import { closedLoop, type CallResult, type Target } from "./load";
import { uniformCalls } from "./traffic";
import { percentiles, round, type Percentiles } from "./summary";
import { ADMIN_TOKEN, createPool, createPoolTenant, type Fleet } from "./stack";
import { configureFleet, NO_FAULTS, gateStats, progress, settle } from "./measure";

export interface NoisyNeighbourRun {
  /** A's TTFT (ms), alone and beside B. */
  ttftMs: { alone: Percentiles; beside: Percentiles };
  /** A's calls not answered in full (beside B). */
  aFailed: number;
  aCalls: number;
  bCalls: number;
  b429: number;
  /** Most generations open at once on each sim (generating, and waiting inside it), against what the pool grants. */
  peakOpen: number[];
  capacityPerBackend: number;
  gpuSlotsPerBackend: number;
  /** Mean of the sims' busy slots over their GPU slots while A or B had requests queued. */
  utilisationWhileWaiting: number;
  /** Tokens the pool served each tenant. */
  tokens: { a: number; b: number };
  /**
   * The quiet tenant's wait in its gate for a slot (a credit of the pool) while the noisy one ran, as
   * its gate's queue-wait histogram counts it: the bucket bounds (ms) its p50 and p99 fall under.
   */
  aQueueMs: { p50?: number; p99?: number };
}

const GPU_SLOTS = 16;
const POOL = "bench-nn";

export async function noisyNeighbourScenario(fleet: Fleet, sluiceUrl: string, options: { phaseMs: number }): Promise<NoisyNeighbourRun> {
  await configureFleet(fleet, { ...NO_FAULTS, maxConcurrency: GPU_SLOTS, tokensPerSecond: 100 });
  // The pool grants each backend's GPU slots and no more: a request waits in sluice's queue, in its
  // tenant's share, rather than inside a GPU server behind another tenant's.
  const ids = await createPool(sluiceUrl, POOL, fleet, GPU_SLOTS);
  const capacity = GPU_SLOTS * fleet.specs.length;
  const limits = (maxQueue: number) => ({ limits: { maxConcurrency: capacity, maxQueue, maxQueueWaitMs: 60_000 } });
  const target = (key: string): Target => ({
    name: "sluice",
    baseUrl: `${sluiceUrl}/v1`,
    headers: { authorization: `Bearer ${key}` },
    model: "chat",
  });
  const a = target(await createPoolTenant(sluiceUrl, "nn-a", POOL, ids, limits(5_000)));
  const b = target(await createPoolTenant(sluiceUrl, "nn-b", POOL, ids, limits(128)));
  const share = capacity / 2;
  const sessions = (tag: string) => uniformCalls(1_000_000, 40, tag).map((c, i) => ({ id: `${tag}-${i}`, calls: [c] }));
  let count = 0;
  for (let i = 0; i < fleet.specs.length; i++) await fleet.resetStats(i);
  // A runs throughout; B joins for the second half, as a neighbour turning noisy would.
  const stop = progress(`noisy neighbour: A (${share / 2} clients), B (${share * 5} clients) joining halfway`, () => count);
  const quiet = closedLoop(a, sessions("nn-a"), share / 2, 2 * options.phaseMs, () => count++);
  await new Promise((r) => setTimeout(r, options.phaseMs));
  const joinedAt = performance.now();
  const waitsBefore = await queueWaitBuckets(sluiceUrl, "nn-a");
  let sampling = true;
  const busy: number[] = [];
  const sampler = (async () => {
    while (sampling) {
      const [ga, gb] = await Promise.all([gateStats(sluiceUrl, "nn-a"), gateStats(sluiceUrl, "nn-b")]);
      let active = 0;
      for (let i = 0; i < fleet.specs.length; i++) active += (await fleet.stats(i)).active;
      if (ga.queue.depth + gb.queue.depth > 0) busy.push(Math.min(1, active / capacity));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const noisy = await closedLoop(b, sessions("nn-b"), share * 5, options.phaseMs, () => count++);
  sampling = false;
  const waitsBeside = await queueWaitBuckets(sluiceUrl, "nn-a");
  const quietResults = await quiet;
  stop();
  await sampler;
  const alone = quietResults.filter((r) => r.startedAt < joinedAt);
  const beside = quietResults.filter((r) => r.startedAt >= joinedAt);
  const peakOpen: number[] = [];
  for (let i = 0; i < fleet.specs.length; i++) peakOpen.push((await fleet.stats(i)).peakOpen);
  await settle(fleet);
  const pool = (await (
    await fetch(`${sluiceUrl}/admin/pools/${POOL}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).json()) as {
    stats: { tenants: Array<{ tenant: string; tokens: number }> };
  };
  const tokensOf = (t: string) => pool.stats.tenants.find((x) => x.tenant === t)?.tokens ?? 0;
  await configureFleet(fleet, { maxConcurrency: 5_000 });
  const ttfts = (rs: CallResult[]) => percentiles(rs.filter((r) => r.ttftMs !== undefined).map((r) => r.ttftMs!));
  return {
    ttftMs: { alone: ttfts(alone), beside: ttfts(beside) },
    aFailed: beside.filter((r) => r.outcome !== "exact").length,
    aCalls: beside.length,
    bCalls: noisy.length,
    b429: noisy.filter((r) => r.status === 429).length,
    peakOpen,
    capacityPerBackend: GPU_SLOTS,
    gpuSlotsPerBackend: GPU_SLOTS,
    utilisationWhileWaiting: busy.length ? round(busy.reduce((x, y) => x + y, 0) / busy.length, 3) : 0,
    tokens: { a: tokensOf("nn-a"), b: tokensOf("nn-b") },
    aQueueMs: { p50: bucketOf(waitsBefore, waitsBeside, 0.5), p99: bucketOf(waitsBefore, waitsBeside, 0.99) },
  };
}

/** The tenant's queue-wait histogram (Prometheus), as cumulative counts by bucket bound in ms. */
async function queueWaitBuckets(sluiceUrl: string, tenant: string): Promise<Array<[number, number]>> {
  const text = await (
    await fetch(`${sluiceUrl}/admin/tenants/${tenant}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).text();
  return [...text.matchAll(/^sluice_queue_wait_seconds_bucket\{[^}]*le="([^"]+)"\} (\d+)$/gm)].map((m) => [
    m[1] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[1]) * 1000,
    Number(m[2]),
  ]);
}

/** The bucket bound (ms) under which quantile `q` of the waits between two readings falls. */
function bucketOf(before: Array<[number, number]>, after: Array<[number, number]>, q: number): number | undefined {
  const counts = after.map(([le, n], i): [number, number] => [le, n - (before[i]?.[1] ?? 0)]);
  const total = counts.at(-1)?.[1] ?? 0;
  return total === 0 ? undefined : counts.find(([, n]) => n >= q * total)?.[0];
}
