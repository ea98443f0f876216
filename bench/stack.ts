// Everything a benchmark run needs, started and stopped by the harness: a fleet of sims (child
// process), sluice and the pass-through Worker on workerd through Miniflare's API, and the
// Portkey gateway (installed under bench/peers on first use).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { bundleWorker, startRouter, type RunningRouter } from "../scripts/router-on-miniflare";
import type { SimOptions } from "../sim/types";
import { createTenantWithKey } from "../scripts/tenant-admin";
import { callOnce, MODEL, type Target } from "./load";
import { uniformCalls } from "./traffic";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ADMIN_TOKEN = "bench-admin-token";

export interface SimSpec extends Partial<SimOptions> {
  id: string;
  region: string;
}

export interface Fleet {
  specs: SimSpec[];
  ports: number[];
  url(i: number): string;
  control(i: number, patch: Partial<SimOptions>): Promise<void>;
  stats(i: number): Promise<{
    active: number;
    waiting: number;
    requests: number;
    cancelled: number;
    peakOpen: number;
    prefixQueryTokens: number;
    prefixHitTokens: number;
    tokens: number;
    promptTokens: number;
  }>;
  /** Zeroes a sim's counters (its peaks among them). */
  resetStats(i: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The fleet the measuring tools (bench:ab, bench:cpu, bench:burst, bench:profile) run against: four
 * sims in two regions, 100 tokens/s each, room for 5,000 generations, so the router is what is measured.
 */
export function startMeasuringFleet(): Promise<Fleet> {
  return startFleet(
    [0, 1, 2, 3].map((i) => ({
      id: `sim-${i}`,
      region: i < 2 ? "us-east" : "eu-west",
      tokensPerSecond: 100,
      firstTokenMs: 5,
      maxConcurrency: 5_000,
      seed: i,
    })),
  );
}

export async function startFleet(specs: SimSpec[]): Promise<Fleet> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "bench/sim-fleet.ts"), JSON.stringify(specs)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve((JSON.parse(line) as { ports: number[] }).ports);
    });
    child.on("exit", (code) => reject(new Error(`sim fleet exited (${code})`)));
  });
  const base = (i: number) => `http://127.0.0.1:${ports[i]}`;
  return {
    specs,
    ports,
    url: (i) => `${base(i)}/v1`,
    async control(i, patch) {
      await (await fetch(`${base(i)}/control`, { method: "POST", body: JSON.stringify(patch) })).arrayBuffer();
    },
    async stats(i) {
      return (await fetch(`${base(i)}/stats`)).json() as never;
    },
    async resetStats(i) {
      await (await fetch(`${base(i)}/stats/reset`, { method: "POST" })).arrayBuffer();
    },
    stop: () => stopChild(child),
  };
}

/** workerd processes this Node process started, by pid, with when each started: for CPU and memory readings. */
function workerdChildren(): Map<number, number> {
  const pids = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (comm === "workerd" && Number(fields[1]) === process.pid) pids.set(Number(entry), Number(fields[19]));
    } catch {
      /* the process ended meanwhile */
    }
  }
  return pids;
}

/** Runs `start` and tells the workerd processes it started, the first started first. */
async function withNewWorkerd<T>(start: () => Promise<T>): Promise<{ value: T; pids: number[] }> {
  const before = workerdChildren();
  const value = await start();
  const started = [...workerdChildren()].filter(([pid]) => !before.has(pid));
  return { value, pids: started.sort((a, b) => a[1] - b[1]).map(([pid]) => pid) };
}

export interface System {
  name: string;
  url: string;
  /** Process to read CPU and memory of, if we run it. */
  pid?: number;
  /** The gates' own process, when sluice runs them apart (`startSluice`'s `gateProcess`). */
  gatePid?: number;
  stop(): Promise<void>;
}

/**
 * sluice on its own workerd; `entry` bundles another source tree (an A/B run against a commit).
 * `gateProcess`: its gates in a workerd of their own (scripts/router-on-miniflare.ts).
 */
export async function startSluice(entry?: string, name = "sluice", gateProcess = false): Promise<System & { router: RunningRouter }> {
  const { value: router, pids } = await withNewWorkerd(() =>
    startRouter({ adminToken: ADMIN_TOKEN, vars: { CONFIG_CACHE_TTL_SECONDS: "60" }, entry, gateProcess }),
  );
  // The gates' process starts first.
  const [pid, gatePid] = gateProcess ? [pids[1], pids[0]] : [pids[0], undefined];
  return { name, url: router.url, pid, gatePid, router, stop: () => router.dispose() };
}

/**
 * A bare Worker in front of the sims: the pass-through (workerd pipes the body natively) or the
 * JS relay (reads and writes each event in JavaScript, the floor for any token-aware relay).
 */
export function startPassthrough(upstreams: string[], kind: "passthrough" | "js-relay" = "passthrough"): Promise<System> {
  return startBenchWorker(kind, kind === "passthrough" ? "bench/passthrough-worker.ts" : "bench/js-relay-worker.ts", {
    bindings: { UPSTREAMS: upstreams.join(",") },
  });
}

/** The RPC floor: a bare Worker that calls a Durable Object `?calls=k` times per request. */
export function startRpcFloor(): Promise<System> {
  return startBenchWorker("rpc-floor", "bench/rpc-floor-worker.ts", {
    durableObjects: { COUNTER: { className: "Counter", useSQLite: true } },
  });
}

/** A bench-only Worker in a workerd of its own, through Miniflare's API. */
async function startBenchWorker(name: string, file: string, options: Record<string, unknown>): Promise<System> {
  const script = await bundleWorker(path.join(ROOT, file));
  const {
    value: mf,
    pids: [pid],
  } = await withNewWorkerd(async () => {
    const mf = new Miniflare({
      modules: [{ type: "ESModule", path: "index.mjs", contents: script }],
      compatibilityDate: "2026-04-20",
      host: "127.0.0.1",
      port: 0,
      ...options,
    } as ConstructorParameters<typeof Miniflare>[0]);
    await mf.ready;
    return mf;
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { name, url, pid, stop: () => mf.dispose() };
}

/** Installs the peer gateways (bench/peers) if needed; false when that fails. */
export function ensurePeers(log: (s: string) => void): boolean {
  const dir = path.join(ROOT, "bench/peers");
  if (existsSync(path.join(dir, "node_modules/@portkey-ai/gateway/build/start-server.js"))) return true;
  log("installing the Portkey gateway into bench/peers (first run only)...");
  try {
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      stdio: ["ignore", "ignore", "inherit"],
      timeout: 180_000,
    });
    return true;
  } catch (err) {
    log(`could not install the Portkey gateway: ${String(err)}`);
    return false;
  }
}

export async function startPortkey(port: number): Promise<System> {
  const entry = path.join(ROOT, "bench/peers/node_modules/@portkey-ai/gateway/build/start-server.js");
  const child = spawn(process.execPath, [entry, "--headless", `--port=${port}`], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Portkey did not start in 30 s")), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("Ready for connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => reject(new Error(`Portkey exited (${code})`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { name: "portkey", url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
  });
}

/** CPU seconds and resident memory of a process, from /proc. */
export function processUsage(pid: number | undefined): { cpuSec: number; rssMb: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cpuSec = (Number(fields[11]) + Number(fields[12])) / 100;
    const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return { cpuSec, rssMb: rss ? Number(rss[1]) / 1024 : 0 };
  } catch {
    return undefined;
  }
}

/**
 * Sends `calls` streams of `tokens` tokens to `target`, `concurrency` at a time, and measures what
 * the system's process spent: CPU per call, cores busy, and tokens delivered per second; with the
 * gates in a process of their own, that process's CPU per call apart (`gateMsPerCall`).
 */
export async function cpuPerCall(
  system: System,
  target: Target,
  opts: { calls: number; tokens: number; concurrency: number; tag: string },
): Promise<{ msPerCall: number; gateMsPerCall?: number; cores: number; tokensPerSec: number; exact: number }> {
  const batch = uniformCalls(opts.calls, opts.tokens, opts.tag);
  const before = processUsage(system.pid)!.cpuSec;
  const gateBefore = processUsage(system.gatePid)?.cpuSec;
  const started = Date.now();
  let next = 0;
  let tokens = 0;
  let exact = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (next < batch.length) {
        const result = await callOnce(target, batch[next++]!);
        tokens += result.tokens;
        if (result.outcome === "exact") exact++;
      }
    }),
  );
  const cpuSec = processUsage(system.pid)!.cpuSec - before;
  const gateSec = gateBefore === undefined ? undefined : processUsage(system.gatePid)!.cpuSec - gateBefore;
  const wallSec = (Date.now() - started) / 1000;
  const gate = gateSec === undefined ? {} : { gateMsPerCall: (1000 * gateSec) / opts.calls };
  return { msPerCall: (1000 * cpuSec) / opts.calls, ...gate, cores: cpuSec / wallSec, tokensPerSec: tokens / wallSec, exact };
}

export async function getFreePort(): Promise<number> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A shared pool of the fleet's sims (README, "Shared pools"): the pool, and one fleet backend per
 * sim taking `maxConcurrency` at once. Returns the backends' ids, for tenants' routes.
 */
export async function createPool(routerUrl: string, pool: string, fleet: Fleet, maxConcurrency: number): Promise<string[]> {
  const put = async (path: string, body: unknown) => {
    const res = await fetch(`${routerUrl}/admin${path}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  await put(`/pools/${pool}`, {});
  const ids = fleet.specs.map((s) => `${pool}-${s.id}`);
  for (const [i, s] of fleet.specs.entries())
    await put(`/backends/${ids[i]}`, { region: s.region, url: fleet.url(i), model: MODEL, maxConcurrency, resume: true, pool });
  return ids;
}

/** A tenant with no backends of its own, routing to fleet backends `ids` of `pool`; returns its API key. */
export async function createPoolTenant(
  routerUrl: string,
  name: string,
  pool: string,
  ids: string[],
  overrides: Record<string, unknown>,
): Promise<string> {
  const key = `sk-bench-${name}-0123456789`;
  const config = { models: { chat: { route: ids } }, pools: { [pool]: { weight: 1 } }, ...overrides };
  await createTenantWithKey({ fetch, baseUrl: routerUrl, adminToken: ADMIN_TOKEN, name, config, key });
  return key;
}

/** A tenant on sluice routing alias "chat" over every sim of the fleet, with an API key (returned). */
export async function createTenant(
  routerUrl: string,
  name: string,
  fleet: Fleet,
  overrides: Record<string, unknown>,
  backendOverrides: Record<string, unknown> = {},
): Promise<string> {
  const config = {
    backends: fleet.specs.map((s, i) => ({
      id: s.id,
      region: s.region,
      url: fleet.url(i),
      model: MODEL,
      maxConcurrency: 5_000,
      resume: true,
      ...backendOverrides,
    })),
    models: { chat: { route: fleet.specs.map((s) => s.id) } },
    ...overrides,
  };
  const key = `sk-bench-${name}-0123456789`;
  await createTenantWithKey({ fetch, baseUrl: routerUrl, adminToken: ADMIN_TOKEN, name, config, key });
  return key;
}
