// `npm run bench:profile [-- --streams N] [-- --tokens N] [-- --out FILE]`: a CPU profile of the
// router (workerd's inspector) while N concurrent streams run through it, for finding where the
// relay's time goes. Writes a .cpuprofile (open it in Chrome DevTools) and prints the top
// functions by self time, then the busy time split by part of the request path.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { bundleWorker, startRouter } from "../scripts/router-on-miniflare";
import { splitProfile } from "./profile-split";
import { callOnce } from "./load";
import { ADMIN_TOKEN, createTenant, getFreePort, startMeasuringFleet } from "./stack";
import { uniformCalls } from "./traffic";

const { values: args } = parseArgs({
  options: {
    streams: { type: "string", default: "200" },
    tokens: { type: "string", default: "20" },
    rounds: { type: "string", default: "3" },
    out: { type: "string", default: "bench/results/router.cpuprofile" },
    key: { type: "boolean", default: false },
    heap: { type: "boolean", default: false },
  },
});
const streams = Number(args.streams);

const fleet = await startMeasuringFleet();
const inspectorPort = await getFreePort();
const router = await startRouter({ adminToken: ADMIN_TOKEN, vars: { CONFIG_CACHE_TTL_SECONDS: "60" }, inspectorPort });
const key = await createTenant(router.url, "prof", fleet, { limits: { maxConcurrency: 5_000, maxQueue: 5_000 } });
const target = { name: "sluice", baseUrl: `${router.url}/v1`, headers: { authorization: `Bearer ${key}` }, model: "chat" };

// The Worker's target on the inspector (the first one listed).
const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as Array<{
  webSocketDebuggerUrl: string;
  title?: string;
}>;
console.log(`[profile] inspector targets: ${list.map((t) => t.title ?? t.webSocketDebuggerUrl).join(", ")}`);
// Node 20 has WebSocket behind --experimental-websocket (the npm script passes it).
const ws = new WebSocket(list[0]!.webSocketDebuggerUrl.replace("localhost", "127.0.0.1"));
await new Promise((r) => ws.addEventListener("open", r, { once: true }));
let nextId = 0;
const pending = new Map<number, (v: unknown) => void>();
ws.addEventListener("message", (e: MessageEvent) => {
  const msg = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
  if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
});
const send = (method: string, params: Record<string, unknown> = {}) =>
  new Promise<any>((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve);
    ws.send(JSON.stringify({ id, method, params }));
  });

/** The Worker isolate's heap after a full garbage collection: it must not grow round after round. */
const heapMb = async () => {
  await send("HeapProfiler.collectGarbage");
  const { usedSize } = (await send("Runtime.getHeapUsage")) as { usedSize: number };
  return (usedSize / 2 ** 20).toFixed(1);
};

// Warm up, then profile. Only the rounds count towards tokens/s, not the heap readings between them.
await Promise.all(
  uniformCalls(20, Number(args.tokens), "warm").map((c) =>
    callOnce(target, c, args.key ? { "idempotency-key": `w-${Math.random()}` } : {}),
  ),
);
if (args.heap) console.log(`[profile] heap after warm-up: ${await heapMb()} MB`);
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 200 });
await send("Profiler.start");
let roundsMs = 0;
let tokens = 0;
let ttft: number[] = [];
for (let r = 0; r < Number(args.rounds); r++) {
  const started = Date.now();
  const results = await Promise.all(
    uniformCalls(streams, Number(args.tokens), `prof-${r}`).map((c, i) =>
      callOnce(target, c, args.key ? { "idempotency-key": `p-${r}-${i}` } : {}),
    ),
  );
  roundsMs += Date.now() - started;
  tokens += results.reduce((n, x) => n + x.tokens, 0);
  ttft.push(...results.map((x) => x.ttftMs ?? NaN));
  if (args.heap) console.log(`[profile] heap after round ${r + 1}: ${await heapMb()} MB`);
}
const { profile } = await send("Profiler.stop");
const wall = roundsMs / 1000;
ttft = ttft.sort((a, b) => a - b);
console.log(
  `[profile] ${streams} streams x ${args.rounds}: ${(tokens / wall).toFixed(0)} tokens/s, TTFT p50 ${ttft[Math.floor(ttft.length / 2)]!.toFixed(1)} ms`,
);
writeFileSync(args.out!, JSON.stringify(profile));

// Self time per function, from the samples.
const byId = new Map<number, { callFrame: { functionName: string; url: string; lineNumber: number } }>(
  profile.nodes.map((n: any) => [n.id, n]),
);
const self = new Map<string, number>();
for (const id of profile.samples as number[]) {
  const f = byId.get(id)!.callFrame;
  const name = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}`;
  self.set(name, (self.get(name) ?? 0) + 1);
}
const total = (profile.samples as number[]).length;
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40))
  console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${name}`);
// The same samples by part of the request path (busy time only; see profile-split.ts).
const requests = streams * Number(args.rounds);
console.log(
  `[profile] busy time of the router's JavaScript thread by part of the request path, per request of ${requests} (native work counted for its JavaScript caller):`,
);
for (const { area, share, ms } of splitProfile(profile, await bundleWorker()))
  console.log(`${(100 * share).toFixed(1).padStart(5)}%  ${((1000 * ms) / requests).toFixed(0).padStart(5)} µs  ${area}`);
ws.close();
await router.dispose();
await fleet.stop();
