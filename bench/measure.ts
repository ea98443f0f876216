// What the scenarios share: progress lines, the tenant's gate stats, the fleet's counters, and
// measuring one system's run (its CPU and memory, backend utilisation, upstream attempts per call).
import type { CallResult, TargetChoice } from "./load";
import { round } from "./summary";
import { ADMIN_TOKEN, type Fleet, processUsage, type System } from "./stack";

let progressTimer: ReturnType<typeof setInterval> | undefined;
export function progress(label: string, count: () => number): () => void {
  const started = Date.now();
  // On a terminal one line updates in place; in a log (CI) a line every 5 s.
  const tty = process.stdout.isTTY;
  const line = () => `[bench] ${label}: ${count()} calls, ${((Date.now() - started) / 1000).toFixed(0)} s`;
  const print = () => (tty ? process.stdout.write(`\r${line()}   `) : console.log(line()));
  print();
  progressTimer = setInterval(print, tty ? 1_000 : 5_000);
  return () => {
    clearInterval(progressTimer);
    if (tty) process.stdout.write(`\r${line()}   \n`);
    else console.log(`${line()} (done)`);
  };
}

/** The systems under test: direct calls pick a sim per call index; the others are one URL. */
export type TargetList = Array<{ target: TargetChoice; system?: System }>;

export interface GateStats {
  inFlight: number;
  queue: { depth: number };
  counters: Record<string, number>;
  journal: { entries: number; bytes: number };
  backends: Array<{
    id: string;
    breaker: string;
    breakerRetryAfterMs: number;
    window: { successes: number; failures: number };
    failures: number;
    inFlight: number;
  }>;
}

/** GET `path` of the router's admin API, as the operator. */
export function adminGet(routerUrl: string, path: string): Promise<Response> {
  const get = () => fetch(`${routerUrl}/admin${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  // A GET, so safe to send again: a kept-alive socket the server closed as it was reused fails
  // with "other side closed" (seen once under load, in noisy neighbour's 250 ms stats sampler).
  return get().catch(get);
}

export async function gateStats(routerUrl: string, tenant: string): Promise<GateStats> {
  return (await adminGet(routerUrl, `/tenants/${tenant}/stats`)).json() as never;
}

/**
 * Each dead letter of the tenant as one line: its final code, then every attempt as
 * `backend: outcome/error` (`+` marks a continuation), to show why a request was given up.
 */
export async function deadLetterLines(routerUrl: string, tenant: string): Promise<string[]> {
  const res = await fetch(`${routerUrl}/admin/tenants/${tenant}/dead-letters?limit=20`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const { data } = (await res.json()) as {
    data: Array<{
      code: string;
      attempts: Array<{ backendId: string; continuation: boolean; outcome: string; errorCode?: string; chunks: number }>;
    }>;
  };
  return data.map(
    (d) =>
      `${d.code}: ${d.attempts.map((a) => `${a.continuation ? "+" : ""}${a.backendId} ${a.errorCode ?? a.outcome}${a.chunks ? ` after ${a.chunks} chunks` : ""}`).join(", ")}`,
  );
}

export function diagLine(st: GateStats, startedAt: number): string {
  const backends = st.backends.map(
    (b) =>
      `${b.id}:${b.breaker}${b.breakerRetryAfterMs ? `/${b.breakerRetryAfterMs}ms` : ""} window=${b.window.successes}ok+${b.window.failures}failed in=${b.inFlight}`,
  );
  return `[diag] ${((Date.now() - startedAt) / 1000).toFixed(1)} s queue=${st.queue.depth} inFlight=${st.inFlight} ${backends.join(" ")}`;
}

export async function fleetRequests(fleet: Fleet): Promise<number> {
  let n = 0;
  for (let i = 0; i < fleet.specs.length; i++) n += (await fleet.stats(i)).requests;
  return n;
}

/** The sims with no injected faults (a scenario's starting point, before its own). */
export const NO_FAULTS = { failRate: 0, disconnectRate: 0, hangRate: 0 } as const;

export async function configureFleet(fleet: Fleet, patch: Parameters<Fleet["control"]>[1]): Promise<void> {
  for (let i = 0; i < fleet.specs.length; i++) await fleet.control(i, patch);
}

/** Samples backend utilisation (active / capacity) and, for sluice, the queue depth. */
export function sampler(fleet: Fleet, capacity: number, queueDepth?: () => Promise<number>) {
  const samples: Array<{ t: number; util: number; queue: number }> = [];
  const started = Date.now();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      let active = 0;
      for (let i = 0; i < fleet.specs.length; i++) active += (await fleet.stats(i).catch(() => ({ active: 0 }))).active;
      const queue = queueDepth ? await queueDepth().catch(() => 0) : 0;
      samples.push({ t: (Date.now() - started) / 1000, util: Math.min(1, active / capacity), queue });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    return samples;
  };
}

/** Every system's process, so a measurement can wait until the previous one's work has died down. */
export const running: System[] = [];

/**
 * Waits (at most 15 s) until no system's process uses more than a tenth of a core: a gateway still
 * busy with the last system's streams (Portkey after 1,000 of them) would slow the next one.
 */
export async function quiet(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const before = running.map((s) => processUsage(s.pid)?.cpuSec ?? 0);
    await new Promise((r) => setTimeout(r, 500));
    const busy = running.some((s, i) => (processUsage(s.pid)?.cpuSec ?? 0) - before[i]! > 0.05);
    if (!busy) return;
  }
}

export async function measure(
  system: System | undefined,
  fleet: Fleet,
  work: () => Promise<CallResult[]>,
  capacity: number,
  queueDepth?: () => Promise<number>,
) {
  await quiet();
  const before = processUsage(system?.pid);
  const upstreamBefore = await fleetRequests(fleet);
  const stopSampling = sampler(fleet, capacity, queueDepth);
  const t0 = Date.now();
  let peakRss = before?.rssMb ?? 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, processUsage(system?.pid)?.rssMb ?? 0)), 500);
  const results = await work();
  const wallMs = Date.now() - t0;
  clearInterval(rssTimer);
  const samples = await stopSampling();
  const after = processUsage(system?.pid);
  const upstream = (await fleetRequests(fleet)) - upstreamBefore;
  return {
    results,
    wallMs,
    samples,
    attemptsPerCall: results.length ? round(upstream / results.length, 3) : 0,
    router: before && after ? { cpuCores: round((after.cpuSec - before.cpuSec) / (wallMs / 1000), 2), rssMb: round(peakRss) } : undefined,
  };
}

/** Waits (at most 10 s) until no sim runs or queues a generation. */
export async function settle(fleet: Fleet): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let active = 0;
    for (let s = 0; s < fleet.specs.length; s++) active += (await fleet.stats(s)).active + (await fleet.stats(s)).waiting;
    if (active === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
