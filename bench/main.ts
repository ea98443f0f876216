// `npm run bench [-- --quick] [-- --seed N] [-- --no-peer]`: sluice at 1,000 concurrent sessions,
// side by side with direct calls to the backends, a bare pass-through Worker (the floor, and the
// naive baseline) and the Portkey gateway. Starts everything itself; exits non-zero when an
// invariant (README, "Benchmark") is broken in sluice's runs. This file starts the systems, runs the
// scenarios (one a file: overhead, overload, chaos, batch, workflow) and writes the report.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { MODEL, type Target } from "./load";
import { round } from "./summary";
import {
  createTenant,
  ensurePeers,
  getFreePort,
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
import { batchScenario } from "./batch";
import { workflowScenario } from "./workflow";
import { running, type TargetList } from "./measure";
import { fixedCpu, overhead, surfaceCpu } from "./overhead";
import { overloadScenario } from "./overload";
import { chaosScenario } from "./chaos";
import { slowPoolScenario } from "./slow-pool";
import { noisyNeighbourScenario } from "./noisy-neighbour";
import { multiTurnScenario } from "./multi-turn";
import { slowStartsScenario } from "./slow-starts";
import { growingQueueScenario } from "./growing-queue";

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
    "Usage: npm run bench [-- --quick] [-- --seed N] [-- --no-peer] [-- --only overhead,overload,chaos,slow-pool,multi-turn,slow-starts,growing-queue,noisy-neighbour,batch,batch-pool,workflow] [-- --out DIR]",
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
      surfaceCalls: 150,
      slowPoolMs: 16_000,
      slowPoolWorkers: 96,
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
      surfaceCalls: 500,
      // The slow half is a minute.
      slowPoolMs: 120_000,
      slowPoolWorkers: 96,
    };

const SIMS: SimSpec[] = [
  { id: "use1-a", region: "us-east" },
  { id: "use1-b", region: "us-east" },
  { id: "euw1-a", region: "eu-west" },
  { id: "euw1-b", region: "eu-west" },
].map((s, i) => ({ ...s, tokensPerSecond: 100, firstTokenMs: 5, maxConcurrency: 5_000, seed: SEED * 10 + i }));

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
    if (wanted("overhead")) {
      results.overhead = await overhead(fleet, sluice.url, targets, P);
      const list = targets(await createTenant(sluice.url, "surfaces", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } }), true);
      const target = list.find((t) => t.system === sluice)!.target as Target;
      results.surfaceCpu = await surfaceCpu(sluice, target, { calls: P.surfaceCalls, concurrency: 50, rounds: 3 }, violations);
      // Portkey is left out: its process is Node, whose CPU is not the same kind of figure.
      const relays = list.flatMap((t) => (t.system && t.system !== portkey ? [{ system: t.system, target: t.target as Target }] : []));
      results.fixedCpu = await fixedCpu(relays, { calls: P.surfaceCalls, concurrency: 100, rounds: 3 }, violations);
    }
    results.overload = wanted("overload") ? await overloadScenario(fleet, sluice.url, targets, P) : {};
    results.chaos = wanted("chaos") ? await chaosScenario(fleet, sluice.url, targets, violations, { ...P, seed: SEED }) : {};
    if (wanted("slow-pool")) results.slowPool = await slowPoolScenario(fleet, sluice, P);
    if (wanted("multi-turn"))
      results.multiTurn = await multiTurnScenario(
        fleet,
        sluice.url,
        QUICK ? { conversations: 20, turns: 5 } : { conversations: 100, turns: 10 },
      );
    if (wanted("slow-starts"))
      results.slowStarts = await slowStartsScenario(
        fleet,
        sluice.url,
        QUICK ? { calls: 400, concurrency: 20 } : { calls: 3_000, concurrency: 50 },
      );
    if (wanted("growing-queue")) results.growingQueue = await growingQueueScenario(fleet, sluice.url, { phaseMs: QUICK ? 8_000 : 30_000 });
    if (wanted("noisy-neighbour"))
      results.noisyNeighbour = await noisyNeighbourScenario(fleet, sluice.url, { phaseMs: QUICK ? 8_000 : 30_000 });
    if (wanted("batch"))
      results.batch = await batchScenario(
        fleet,
        sluice.url,
        { lines: QUICK ? 200 : 2_000, phaseMs: QUICK ? 5_000 : 20_000 },
        (l) => console.log(`[bench] ${l}`),
        violations,
      );
    if (wanted("batch-pool"))
      results.batchPool = await batchScenario(
        fleet,
        sluice.url,
        { lines: QUICK ? 200 : 2_000, phaseMs: QUICK ? 5_000 : 20_000, pool: "bench-batch" },
        (l) => console.log(`[bench] pool ${l}`),
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

function portkeyConfig(fleet: Fleet): string {
  return JSON.stringify({
    strategy: { mode: "fallback" },
    retry: { attempts: 2, on_status_codes: [429, 500, 502, 503, 504] },
    targets: fleet.specs.map((_, i) => ({ provider: "openai", custom_host: fleet.url(i), api_key: "unused" })),
  });
}

main().catch((err: unknown) => {
  console.error(`[bench] failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(2);
});
