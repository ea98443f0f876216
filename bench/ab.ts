// `npm run bench:ab -- --base <commit> [--concurrency 1000] [--calls 2000] [--tokens 20] [--rounds 6] [--pool]`:
// sluice's CPU per request, the working tree against a commit, in alternating rounds on one machine.
// With --pool, the working tree's tenant routes to a shared pool's fleet backends (the base's to
// its own backends): what credits from a pool cost a request.
// This machine's speed drifts more between runs than most changes move the figures, so only
// rounds taken side by side, in turns, can show a small change. The base is checked out as a git
// worktree under bench/tmp (it resolves packages from this tree's node_modules).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { cpuPerCall, createPool, createPoolTenant, createTenant, startMeasuringFleet, startSluice, type System } from "./stack";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    concurrency: { type: "string", default: "1000" },
    calls: { type: "string", default: "2000" },
    tokens: { type: "string", default: "20" },
    rounds: { type: "string", default: "6" },
    pool: { type: "boolean", default: false },
  },
});
if (!args.base) {
  console.error("Usage: npm run bench:ab -- --base <commit> [--concurrency N] [--calls N] [--tokens N] [--rounds N]");
  process.exit(2);
}
const concurrency = Number(args.concurrency);
const calls = Number(args.calls);
const rounds = Number(args.rounds);

const commit = execFileSync("git", ["rev-parse", "--short", args.base], { encoding: "utf8" }).trim();
const baseDir = path.resolve("bench/tmp/ab-base");
if (existsSync(baseDir)) execFileSync("git", ["worktree", "remove", "--force", baseDir]);
execFileSync("git", ["worktree", "add", "--detach", baseDir, commit], { stdio: "ignore" });

const fleet = await startMeasuringFleet();
const systems = [await startSluice(path.join(baseDir, "src/index.ts"), `base ${commit}`), await startSluice(undefined, "working tree")];
const limits = { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } };
const keys = await Promise.all(
  systems.map(async (s, i) =>
    args.pool && i === 1
      ? createPoolTenant(s.url, `ab${i}`, "ab-pool", await createPool(s.url, "ab-pool", fleet, 5_000), limits)
      : createTenant(s.url, `ab${i}`, fleet, limits),
  ),
);
const cpuMs: number[][] = systems.map(() => []);

function round(system: System, key: string, tag: string) {
  const target = { name: system.name, baseUrl: `${system.url}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };
  return cpuPerCall(system, target, { calls, tokens: Number(args.tokens), concurrency, tag });
}

try {
  for (let r = 0; r <= rounds; r++) {
    // Round 0 warms both up; the order alternates so neither always runs first.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      const { msPerCall, tokensPerSec } = await round(systems[i]!, keys[i]!, `ab-${r}`);
      if (r > 0) cpuMs[i]!.push(msPerCall);
      console.log(
        `[ab] round ${r}${r === 0 ? " (warm-up)" : ""} ${systems[i]!.name.padEnd(14)} ${msPerCall.toFixed(3)} ms CPU per call, ${tokensPerSec.toFixed(0)} tokens/s`,
      );
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [a, b] = cpuMs.map(mean) as [number, number];
  const wins = cpuMs[1]!.filter((v, i) => v < cpuMs[0]![i]!).length;
  console.log(
    `[ab] mean CPU per call: base ${a.toFixed(3)} ms, working tree ${b.toFixed(3)} ms (${(((b - a) / a) * 100).toFixed(1)}%); the working tree was cheaper in ${wins} of ${rounds} rounds`,
  );
} finally {
  await Promise.all(systems.map((s) => s.stop()));
  await fleet.stop();
  execFileSync("git", ["worktree", "remove", "--force", baseDir]);
}
