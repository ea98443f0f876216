// `npm run bench:burst [-- --streams 100] [-- --rounds 6] [-- --tokens 20]`: TTFT of bursts of N
// streams sent at once, js-relay (a naive relay that reads every token) and sluice in
// alternating rounds in one run, so a change to the relay or the gate can be judged in seconds.
// The first round of each is a warm-up and is not counted.
import { parseArgs } from "node:util";
import { callOnce, MODEL, type Target } from "./load";
import { createTenant, startMeasuringFleet, startPassthrough, startSluice } from "./stack";
import { percentiles } from "./summary";
import { uniformCalls } from "./traffic";

const { values: args } = parseArgs({
  options: {
    streams: { type: "string", default: "100" },
    rounds: { type: "string", default: "6" },
    tokens: { type: "string", default: "20" },
  },
});
const streams = Number(args.streams);
const rounds = Number(args.rounds);

const fleet = await startMeasuringFleet();
const sluice = await startSluice();
const relay = await startPassthrough(
  fleet.specs.map((_, i) => fleet.url(i)),
  "js-relay",
);
try {
  const key = await createTenant(sluice.url, "burst", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
  const targets: Target[] = [
    { name: "js-relay", baseUrl: `${relay.url}/v1`, headers: {}, model: MODEL },
    { name: "sluice", baseUrl: `${sluice.url}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" },
  ];
  const ttft = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) {
      const results = await Promise.all(uniformCalls(streams, Number(args.tokens), `burst-${round}`).map((call) => callOnce(target, call)));
      const failed = results.filter((r) => r.outcome !== "exact").length;
      if (failed > 0) console.log(`[burst] ${target.name}, round ${round + 1}: ${failed} of ${streams} calls not exact`);
      if (round > 0) ttft.get(target.name)!.push(...results.flatMap((r) => (r.ttftMs === undefined ? [] : [r.ttftMs])));
      await new Promise((r) => setTimeout(r, 300)); // let the streams' ends settle
    }
    process.stdout.write(`\r[burst] round ${round + 1} of ${rounds}`);
  }
  console.log("");
  for (const [name, values] of ttft) {
    const p = percentiles(values);
    console.log(
      `${name.padEnd(9)} TTFT p50 ${p.p50?.toFixed(1)} ms, p95 ${p.p95?.toFixed(1)} ms, p99 ${p.p99?.toFixed(1)} ms (${values.length} streams in bursts of ${streams})`,
    );
  }
} finally {
  await Promise.all([sluice.stop(), relay.stop()]);
  await fleet.stop();
}
