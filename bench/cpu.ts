// `npm run bench:cpu [-- --concurrency 50] [-- --calls 400] [-- --tokens 20] [-- --gate-process]`:
// workerd CPU per request (from /proc) for the bare pass-through, js-relay and sluice, each serving
// the same streams at a fixed concurrency. A round to warm up, then a measured round per system.
// `--gate-process` adds sluice with its gates in a workerd of their own (Cloudflare's topology),
// its router's CPU and its gates' apart. Last, the price of one Durable Object RPC on this machine
// (sluice makes three per request).
import http from "node:http";
import { parseArgs } from "node:util";
import { MODEL, type Target } from "./load";
import {
  cpuPerCall,
  createTenant,
  processUsage,
  startMeasuringFleet,
  startPassthrough,
  startRpcFloor,
  startSluice,
  type System,
} from "./stack";

const { values: args } = parseArgs({
  options: {
    concurrency: { type: "string", default: "50" },
    calls: { type: "string", default: "400" },
    tokens: { type: "string", default: "20" },
    "gate-process": { type: "boolean", default: false },
  },
});
const concurrency = Number(args.concurrency);
const calls = Number(args.calls);

const fleet = await startMeasuringFleet();
const upstreams = fleet.specs.map((_, i) => fleet.url(i));
const sluice = await startSluice();
const systems: Array<{ system: System; target: Target }> = [
  { system: await startPassthrough(upstreams), target: { name: "passthrough", baseUrl: "", headers: {}, model: MODEL } },
  { system: await startPassthrough(upstreams, "js-relay"), target: { name: "js-relay", baseUrl: "", headers: {}, model: MODEL } },
];
const key = await createTenant(sluice.url, "cpu", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
systems.push({ system: sluice, target: { name: "sluice", baseUrl: "", headers: { authorization: `Bearer ${key}` }, model: "chat" } });
if (args["gate-process"]) {
  const apart = await startSluice(undefined, "sluice, gates apart", true);
  const apartKey = await createTenant(apart.url, "cpu", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
  const headers = { authorization: `Bearer ${apartKey}` };
  systems.push({ system: apart, target: { name: "gates apart", baseUrl: "", headers, model: "chat" } });
}
for (const s of systems) s.target.baseUrl = `${s.system.url}/v1`;

try {
  for (const round of ["warm-up", "measured"]) {
    for (const { system, target } of systems) {
      const m = await cpuPerCall(system, target, { calls, tokens: Number(args.tokens), concurrency, tag: `cpu-${round}` });
      if (round === "measured") {
        const gates = m.gateMsPerCall === undefined ? "" : ` (router) + ${m.gateMsPerCall.toFixed(2)} ms (gates' process)`;
        console.log(
          `${target.name.padEnd(12)} ${m.msPerCall.toFixed(2)} ms CPU per request${gates}, ${m.cores.toFixed(2)} cores, ${m.tokensPerSec.toFixed(0)} tokens/s, ${m.exact} of ${calls} exact`,
        );
      }
    }
  }
  console.log(
    `${"gate RPC".padEnd(12)} ${(await rpcCost()).toFixed(3)} ms CPU per Durable Object call (a bare Worker, ${calls} requests of 0 and 3 calls)`,
  );
} finally {
  await Promise.all(systems.map(({ system }) => system.stop()));
  await fleet.stop();
}

/** CPU per RPC: requests making three calls each against requests making none, same concurrency. */
async function rpcCost(): Promise<number> {
  const floor = await startRpcFloor();
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const get = (k: number) =>
    new Promise<void>((resolve, reject) => {
      http.get(`${floor.url}/?calls=${k}`, { agent }, (res) => res.resume().on("end", resolve)).on("error", reject);
    });
  const cpuPerRequest = async (k: number) => {
    const before = processUsage(floor.pid)!.cpuSec;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < calls) await get(k);
      }),
    );
    return (processUsage(floor.pid)!.cpuSec - before) / calls;
  };
  try {
    await cpuPerRequest(3); // warm-up
    const [none, three] = [await cpuPerRequest(0), await cpuPerRequest(3)];
    return (1000 * (three - none)) / 3;
  } finally {
    agent.destroy();
    await floor.stop();
  }
}
