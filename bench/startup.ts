// `npm run bench:startup [-- --runs 7]`: the Worker's size and startup CPU. The size is what
// `wrangler deploy --dry-run` would upload; the startup CPU is the busy (non-idle) time of the CPU
// profile `wrangler check startup` records while workerd evaluates the bundle's top level, the part
// of a cold start the code controls. Reports the median and the range over the runs.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";

const { values: args } = parseArgs({ options: { runs: { type: "string", default: "7" } } });
const runs = Number(args.runs);

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Milliseconds of samples that were not idle. */
export function busyMs(profile: CpuProfile): number {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === "(idle)").map((n) => n.id));
  let micros = 0;
  profile.samples.forEach((node, i) => {
    if (!idle.has(node)) micros += profile.timeDeltas[i] ?? 0;
  });
  return micros / 1000;
}

const wrangler = (...argv: string[]) =>
  execFileSync("npx", ["wrangler", ...argv], { stdio: "pipe", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } }).toString();

const dir = mkdtempSync(join(tmpdir(), "sluice-startup-"));
try {
  wrangler("deploy", "--dry-run", "--outdir", dir);
  const bundle = readFileSync(join(dir, "index.js"));
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const outfile = join(dir, `startup-${i}.cpuprofile`);
    wrangler("check", "startup", "--outfile", outfile);
    samples.push(busyMs(JSON.parse(readFileSync(outfile, "utf8")) as CpuProfile));
  }
  samples.sort((a, b) => a - b);
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`bundle: ${kib(statSync(join(dir, "index.js")).size)} (${kib(gzipSync(bundle).length)} gzipped)`);
  console.log(
    `startup CPU over ${runs} runs: median ${samples[samples.length >> 1]?.toFixed(1)} ms, ` +
      `range ${samples[0]?.toFixed(1)}-${samples[samples.length - 1]?.toFixed(1)} ms`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
