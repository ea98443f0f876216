// `npm run bench [-- --quick] [-- --seed N] [-- --no-peer]`: sluice at 1,000 concurrent sessions,
// side by side with direct calls to the backends, a bare pass-through Worker (the floor, and the
// naive baseline) and the Portkey gateway. Starts everything itself; exits non-zero when an
// invariant (README, "Benchmark") is broken in sluice's runs.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { callOnce, closedLoop, MODEL, pick, type CallResult, type Target, type TargetChoice } from "./load";
import { trafficMix, uniformCalls, type Session } from "./traffic";
import { percentiles, round, summarize, type SystemRun } from "./summary";
import {
  ADMIN_TOKEN,
  createTenant,
  ensurePeers,
  getFreePort,
  processUsage,
  startFleet,
  startPassthrough,
  startPortkey,
  startSluice,
  type Fleet,
  type SimSpec,
  type System,
} from "./stack";
import { writeReport } from "./report";
import { judgeTargets, type RunResults } from "./targets";
import { AlertWatch } from "./alert-watch";
import { batchScenario } from "./batch";
import { workflowScenario } from "./workflow";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    seed: { type: "string", default: "7" },
    "no-peer": { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  console.log(
    "Usage: npm run bench [-- --quick] [-- --seed N] [-- --no-peer] [-- --only overhead,overload,chaos,batch,workflow] [-- --out DIR]",
  );
  process.exit(0);
}

const QUICK = args.quick;
const SEED = Number(args.seed);
const P = QUICK
  ? {
      levels: [1, 50, 200],
      serialCalls: 10,
      rounds: { 1: 1, 50: 1, 200: 1 } as Record<number, number>,
      longTokens: 300,
      overloadMs: 5_000,
      chaosMs: 8_000,
      chaosWorkers: 24,
      overloadWorkers: 128,
    }
  : // Bursts of 100 are short: more rounds of them even out a noisy machine at little cost.
    {
      levels: [1, 100, 1000],
      serialCalls: 40,
      rounds: { 1: 2, 100: 6, 1000: 2 } as Record<number, number>,
      longTokens: 2_000,
      overloadMs: 20_000,
      chaosMs: 40_000,
      chaosWorkers: 100,
      overloadWorkers: 128,
    };

const SIMS: SimSpec[] = [
  { id: "use1-a", region: "us-east" },
  { id: "use1-b", region: "us-east" },
  { id: "euw1-a", region: "eu-west" },
  { id: "euw1-b", region: "eu-west" },
].map((s, i) => ({ ...s, tokensPerSecond: 100, firstTokenMs: 5, maxConcurrency: 5_000, seed: SEED * 10 + i }));

let progressTimer: ReturnType<typeof setInterval> | undefined;
function progress(label: string, count: () => number): () => void {
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
type TargetList = Array<{ target: TargetChoice; system?: System }>;

async function main(): Promise<void> {
  const startedAt = new Date();
  const fleet = await startFleet(SIMS);
  console.log(`[bench] ${SIMS.length} sims up (${SIMS.map((s) => `${s.id}/${s.region}`).join(", ")})`);
  const sluice = await startSluice();
  const passthrough = await startPassthrough(SIMS.map((_, i) => fleet.url(i)));
  const jsRelay = await startPassthrough(
    SIMS.map((_, i) => fleet.url(i)),
    "js-relay",
  );
  const systems: System[] = [sluice, passthrough, jsRelay];
  let portkey: System | undefined;
  if (!args["no-peer"] && ensurePeers(console.log)) {
    try {
      portkey = await startPortkey(await getFreePort());
      systems.push(portkey);
    } catch (err) {
      console.log(`[bench] Portkey not started: ${String(err)}`);
    }
  }
  running.push(...systems);
  console.log(`[bench] systems: direct, ${systems.map((s) => s.name).join(", ")}${QUICK ? " (quick run)" : ""}`);

  /** `withFloor`: also the JS relay, the floor for a relay that reads each event (overhead only). */
  const targets = (tenantKey: string, withFloor = false): TargetList => {
    const direct = (i: number): Target => ({ name: "direct", baseUrl: fleet.url(i % SIMS.length), headers: {}, model: MODEL });
    const list: TargetList = [
      { target: direct },
      { target: { name: "passthrough", baseUrl: `${passthrough.url}/v1`, headers: {}, model: MODEL }, system: passthrough },
      ...(withFloor ? [{ target: { name: "js-relay", baseUrl: `${jsRelay.url}/v1`, headers: {}, model: MODEL }, system: jsRelay }] : []),
      {
        target: { name: "sluice", baseUrl: `${sluice.url}/v1`, headers: { authorization: `Bearer ${tenantKey}` }, model: "chat" },
        system: sluice,
      },
    ];
    if (portkey)
      list.push({
        target: {
          name: "portkey",
          baseUrl: `${portkey.url}/v1`,
          headers: { "x-portkey-config": portkeyConfig(fleet), authorization: "Bearer unused" },
          model: MODEL,
        },
        system: portkey,
      });
    return list;
  };

  const results: RunResults = {};
  const violations: string[] = [];
  try {
    const only = args.only?.split(",");
    const wanted = (name: string) => !only || only.includes(name);
    results.overhead = wanted("overhead") ? await overhead(fleet, sluice.url, targets) : {};
    results.overload = wanted("overload") ? await overloadScenario(fleet, sluice.url, targets) : {};
    results.chaos = wanted("chaos") ? await chaosScenario(fleet, sluice.url, targets, violations) : {};
    if (wanted("batch"))
      results.batch = await batchScenario(
        fleet,
        sluice.url,
        { lines: QUICK ? 200 : 2_000, phaseMs: QUICK ? 5_000 : 20_000 },
        (l) => console.log(`[bench] ${l}`),
        violations,
      );
    if (wanted("workflow"))
      results.workflow = await workflowScenario(
        fleet,
        sluice.url,
        { runs: QUICK ? 50 : 200 },
        (l) => console.log(`[bench] ${l}`),
        violations,
      );
  } finally {
    await Promise.all(systems.map((s) => s.stop().catch(() => {})));
    await fleet.stop();
  }

  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGb: round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
  const run = { startedAt: startedAt.toISOString(), quick: QUICK, seed: SEED, machine, results, violations };
  const outDir = args.out ?? path.join("bench/results", QUICK ? "quick" : startedAt.toISOString().replace(/[:.]/g, "-"));
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, "results.json"), JSON.stringify(run, null, 2));
  const files = await writeReport(run, outDir);
  if (!QUICK && !args.only) {
    // A full run becomes the published figures.
    mkdirSync("docs", { recursive: true });
    const report = readFileSync(path.join(outDir, "report.md"), "utf8").replace("(chart.png)", "(benchmarks-chart.png)");
    writeFileSync(
      "docs/benchmarks.md",
      `${report}\n\nProduced by \`npm run bench\` (full run); raw figures in \`${path.join(outDir, "results.json")}\`.\n`,
    );
    if (existsSync(path.join(outDir, "chart.png"))) copyFileSync(path.join(outDir, "chart.png"), "docs/benchmarks-chart.png");
    files.push("docs/benchmarks.md");
  }
  console.log(`[bench] wrote ${[path.join(outDir, "results.json"), ...files].join(", ")}`);
  const verdicts = judgeTargets(results);
  console.log(
    `[bench] targets${QUICK ? " (quick run: smaller loads than the targets name)" : ""}: ${verdicts.filter((v) => v.met).length} met, ${verdicts.filter((v) => v.met === false).length} missed`,
  );
  for (const v of verdicts) console.log(`  ${v.met === undefined ? "–" : v.met ? "met   " : "missed"}  ${v.target}: ${v.measured}`);
  if (violations.length) {
    console.error(`[bench] INVARIANTS BROKEN:\n  ${violations.join("\n  ")}`);
    process.exit(1);
  }
  console.log("[bench] invariants held: nothing lost, truncated or duplicated; no slot leaked");
}

// ---- tenants ----------------------------------------------------------------------------------

interface GateStats {
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

async function gateStats(routerUrl: string, tenant: string): Promise<GateStats> {
  return (
    await fetch(`${routerUrl}/admin/tenants/${tenant}/stats`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).json() as never;
}

/**
 * Each dead letter of the tenant as one line: its final code, then every attempt as
 * `backend: outcome/error` (`+` marks a continuation), to show why a request was given up.
 */
async function deadLetterLines(routerUrl: string, tenant: string): Promise<string[]> {
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

function diagLine(st: GateStats, startedAt: number): string {
  const backends = st.backends.map(
    (b) =>
      `${b.id}:${b.breaker}${b.breakerRetryAfterMs ? `/${b.breakerRetryAfterMs}ms` : ""} window=${b.window.successes}ok+${b.window.failures}failed in=${b.inFlight}`,
  );
  return `[diag] ${((Date.now() - startedAt) / 1000).toFixed(1)} s queue=${st.queue.depth} inFlight=${st.inFlight} ${backends.join(" ")}`;
}

function portkeyConfig(fleet: Fleet): string {
  return JSON.stringify({
    strategy: { mode: "fallback" },
    retry: { attempts: 2, on_status_codes: [429, 500, 502, 503, 504] },
    targets: fleet.specs.map((_, i) => ({ provider: "openai", custom_host: fleet.url(i), api_key: "unused" })),
  });
}

async function fleetRequests(fleet: Fleet): Promise<number> {
  let n = 0;
  for (let i = 0; i < fleet.specs.length; i++) n += (await fleet.stats(i)).requests;
  return n;
}

async function configureFleet(fleet: Fleet, patch: Parameters<Fleet["control"]>[1]): Promise<void> {
  for (let i = 0; i < fleet.specs.length; i++) await fleet.control(i, patch);
}

/** Samples backend utilisation (active / capacity) and, for sluice, the queue depth. */
function sampler(fleet: Fleet, capacity: number, queueDepth?: () => Promise<number>) {
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
const running: System[] = [];

/**
 * Waits (at most 15 s) until no system's process uses more than a tenth of a core: a gateway still
 * busy with the last system's streams (Portkey after 1,000 of them) would slow the next one.
 */
async function quiet(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const before = running.map((s) => processUsage(s.pid)?.cpuSec ?? 0);
    await new Promise((r) => setTimeout(r, 500));
    const busy = running.some((s, i) => (processUsage(s.pid)?.cpuSec ?? 0) - before[i]! > 0.05);
    if (!busy) return;
  }
}

async function measure(
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

// ---- scenario 1: overhead ---------------------------------------------------------------------

async function overhead(fleet: Fleet, sluiceUrl: string, targets: (key: string, withFloor?: boolean) => TargetList) {
  await configureFleet(fleet, { failRate: 0, disconnectRate: 0, hangRate: 0, maxConcurrency: 5_000 });
  const key = await createTenant(sluiceUrl, "overhead", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
  const out: Record<string, Record<string, SystemRun>> = {};
  for (const level of P.levels) {
    const runs: Record<
      string,
      {
        results: CallResult[];
        wallMs: number;
        attempts: number[];
        router: Array<{ cpuCores: number; rssMb: number }>;
        util: Array<[number, number]>;
      }
    > = {};
    const stop = progress(`overhead, ${level} concurrent 20-token streams`, () =>
      Object.values(runs).reduce((n, r) => n + r.results.length, 0),
    );
    for (let round_ = 0; round_ < P.rounds[level]!; round_++) {
      // Systems take turns within each round, so drift over time hits them alike.
      for (const { target, system } of targets(key, true)) {
        const name = pick(target, 0).name;
        const calls = uniformCalls(level === 1 ? P.serialCalls : level, 20, `oh-${level}-${round_}-${name}`);
        const m = await measure(
          system,
          fleet,
          async () => {
            if (level === 1) {
              const rs: CallResult[] = [];
              for (const [i, c] of calls.entries()) rs.push(await callOnce(pick(target, i), c));
              return rs;
            }
            return Promise.all(calls.map((c, i) => callOnce(pick(target, i), c)));
          },
          5_000 * fleet.specs.length,
        );
        const r = (runs[name] ??= { results: [], wallMs: 0, attempts: [], router: [], util: [] });
        r.results.push(...m.results);
        r.wallMs += m.wallMs;
        r.attempts.push(m.attemptsPerCall);
        if (m.router) r.router.push(m.router);
      }
    }
    stop();
    out[`c${level}`] = Object.fromEntries(
      Object.entries(runs).map(([name, r]) => [
        name,
        {
          system: name,
          summary: summarize(r.results, r.wallMs),
          attemptsPerCall: round(r.attempts.reduce((a, b) => a + b, 0) / r.attempts.length, 3),
          router: r.router.length
            ? { cpuCores: Math.max(...r.router.map((x) => x.cpuCores)), rssMb: Math.max(...r.router.map((x) => x.rssMb)) }
            : undefined,
          utilisation: [],
        },
      ]),
    );
  }
  return out;
}

// ---- scenario 2: overload ---------------------------------------------------------------------

const PER_SIM_SLOTS = 16;
/**
 * sluice sends each backend this many requests beyond its GPU slots, as README's "Tenant config"
 * advises: the next request already waits inside the server when a generation ends, so the GPU
 * does not idle while the router hands the slot over (measured in docs/performance.md).
 */
const BACKEND_HEADROOM = 2;

async function overloadScenario(fleet: Fleet, sluiceUrl: string, targets: (key: string) => TargetList) {
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

async function settle(fleet: Fleet): Promise<void> {
  for (let i = 0; i < 100; i++) {
    let active = 0;
    for (let s = 0; s < fleet.specs.length; s++) active += (await fleet.stats(s)).active + (await fleet.stats(s)).waiting;
    if (active === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- scenarios 3-5: chaos (sluice, the naive pass-through, the peer) --------------------------

async function chaosScenario(fleet: Fleet, sluiceUrl: string, targets: (key: string) => TargetList, violations: string[]) {
  // The chaos tenant's breaker alerts go to a local webhook receiver: "firing" during the outage, "resolved" after.
  const alerts = await AlertWatch.start();
  const key = await createTenant(
    sluiceUrl,
    "chaos",
    fleet,
    {
      limits: { maxConcurrency: 5_000, maxQueue: 5_000 },
      // Tuned for a fleet whose baseline is 20% failed attempts: a budget that covers it (0.5) and a
      // breaker that trips on outages, not on runs of bad luck. Six attempts: with one region down,
      // a long stream that dies mid-way continues on two backends that fail 20% of attempts and
      // drop 5% of streams, and five attempts left about one request in a thousand exhausted (the
      // dead letters of the runs show exactly that); a sixth costs an attempt only there.
      retry: { maxAttempts: 6, baseDelayMs: 20, budgetRatio: 0.6, budgetWindowMs: 10_000 },
      // An outage of seconds: the cooldown doubles per re-open up to 8 s, so a backend that is back is probed soon.
      breaker: { failureRate: 0.5, minRequests: 10, windowMs: 5_000, cooldownMs: 2_000, maxCooldownMs: 8_000, consecutiveFailures: 8 },
      timeouts: { firstTokenMs: 5_000, idleMs: 5_000 },
      idempotency: { maxEntries: 1_000 },
      alerts: alerts.config(),
    },
    { maxConcurrency: 64 },
  );
  const down = SIMS.slice(0, 2).map((s) => s.id);
  const out: Record<string, SystemRun> = {};
  const sessions = trafficMix(100_000, { seed: SEED, longTokens: P.longTokens });
  for (const { target, system } of targets(key)) {
    const name = pick(target, 0).name;
    if (name === "direct") continue; // direct calls have no failover: the naive pass-through stands for them
    await configureFleet(fleet, { failRate: 0.2, failStatus: 503, disconnectRate: 0.05, hangRate: 0, maxConcurrency: 64 });
    let count = 0;
    const stop = progress(
      `chaos (20% fail before first token, 5% cut mid-stream, us-east down 30-60%), ${name === "passthrough" ? "naive pass-through" : name}`,
      () => count,
    );
    // One region goes down for the middle third of the run and comes back.
    // BENCH_DIAG=1: the gate's queue and each backend's breaker once a second, to see trips as they happen.
    const diagStarted = Date.now();
    const diag =
      process.env.BENCH_DIAG && name === "sluice"
        ? setInterval(
            () =>
              void gateStats(sluiceUrl, "chaos")
                .then((st) => console.log(diagLine(st, diagStarted)))
                .catch(() => {}),
            1000,
          )
        : undefined;
    let outageAt = 0;
    let recoveryAt = 0;
    const outage = setTimeout(() => {
      outageAt = Date.now();
      void Promise.all([0, 1].map((i) => fleet.control(i, { failRate: 1 })));
    }, P.chaosMs * 0.3);
    const recovery = setTimeout(() => {
      recoveryAt = Date.now();
      void Promise.all([0, 1].map((i) => fleet.control(i, { failRate: 0.2 })));
    }, P.chaosMs * 0.6);
    // sluice's clients send an Idempotency-Key, so its journal works (and must stay bounded) under chaos.
    const keys = name === "sluice" ? (id: string, n: number) => ({ "idempotency-key": `${id}-${n}` }) : undefined;
    const m = await measure(
      system,
      fleet,
      () => closedLoop(target, sessions, P.chaosWorkers, P.chaosMs, () => count++, keys),
      64 * fleet.specs.length,
    );
    clearTimeout(outage);
    clearTimeout(recovery);
    clearInterval(diag);
    stop();
    const summary = summarize(m.results, m.wallMs);
    out[name] = {
      system: name,
      summary,
      attemptsPerCall: m.attemptsPerCall,
      router: m.router,
      utilisation: m.samples.map((s) => [s.t, round(s.util, 3)]),
    };
    if (name === "sluice") {
      await configureFleet(fleet, { failRate: 0, disconnectRate: 0 });
      const leaked = await waitForIdle(sluiceUrl, "chaos");
      const stats = await gateStats(sluiceUrl, "chaos");
      out[name]!.extra = {
        leakedSlots: leaked,
        gate: stats.counters,
        journal: stats.journal,
        deadLetters: await deadLetterLines(sluiceUrl, "chaos"),
        alerts: await alerts.check(sluiceUrl, "chaos", down, { outageAt, recoveryAt }, violations, () =>
          callOnce(pick(target, 0), { messages: [{ role: "user", content: "after the outage" }], maxTokens: 4 }),
        ),
      };
      for (const bad of ["truncated", "duplicated", "mismatch", "transport_error", "corrupted_tool_call"] as const) {
        if (summary.outcomes[bad]) violations.push(`chaos/sluice: ${summary.outcomes[bad]} calls ${bad}`);
      }
      if (leaked > 0) violations.push(`chaos/sluice: ${leaked} slots still held after the run`);
    }
    await settle(fleet);
  }
  await configureFleet(fleet, { failRate: 0, disconnectRate: 0 });
  await alerts.close();
  return out;
}

/** In-flight leases left once load stops (after giving stragglers time to settle). */
async function waitForIdle(routerUrl: string, tenant: string): Promise<number> {
  let inFlight = 0;
  for (let i = 0; i < 50; i++) {
    inFlight = (await gateStats(routerUrl, tenant)).inFlight;
    if (inFlight === 0) return 0;
    await new Promise((r) => setTimeout(r, 200));
  }
  return inFlight;
}

main().catch((err: unknown) => {
  console.error(`[bench] failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(2);
});
