// `npm run dev`: two simulated regional backends, the router on port 8787 under wrangler's dev
// server (the engine of `wrangler dev`, on Miniflare, watching src/ for changes), and the demo
// tenant (key sk-demo-local, admin token dev-admin-token) seeded through the admin API.
//
// The DevTools inspector is off by default. `wrangler dev` always attaches one, and workerd then
// reports every network event of every stream to it; wrangler's InspectorProxyWorker forwards each
// as a new loopback HTTP request to Node. Beyond a few concurrent streams that traffic starves the
// relay, and tokens arrive in bursts or all at the end. See README "Local development".
//   npm run dev -- --inspect     attach the inspector anyway (breakpoints, console in DevTools)
//   npm run dev -- --miniflare   serve through Miniflare's API directly (as the benchmark does)
//
// After the banner, each request prints one line (the router's request log, rendered by
// scripts/request-line.ts); --quiet turns them off.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { parseArgs, stripVTControlCharacters } from "node:util";
import { unstable_startWorker } from "wrangler";
import { SimServer } from "../sim/server";
import { ADMIN_TOKEN, DEMO_KEY, demoTenantConfig } from "./demo-tenant";
import { createTenantWithKey } from "./tenant-admin";
import { parseRequestLine, renderRequestLine } from "./request-line";
import { printWorkerLog, startRouter, type RunningRouter } from "./router-on-miniflare";

const { values } = parseArgs({
  options: {
    miniflare: { type: "boolean", default: false },
    inspect: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    port: { type: "string", default: "8787" },
    "sim-port": { type: "string", default: "9101" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(`Usage: npm run dev [-- --inspect | --miniflare] [-- --port 8787] [-- --sim-port 9101]
  Starts sims on :9101 (us-east) and :9102 (eu-west) and the router on :8787 with the demo tenant.
  --inspect        attach the DevTools inspector (slows concurrent streams; see README)
  --miniflare      run the router through Miniflare's API instead of wrangler's dev server
  --port <n>       the router's port (default 8787)
  --sim-port <n>   the first sim's port; the second takes the next one (default 9101)
  --quiet          no line per request`);
  process.exit(0);
}
const PORT = portOption("port", values.port);
const SIM_PORT = portOption("sim-port", values["sim-port"]);
const SIMS = [
  { id: "use1-a", region: "us-east", port: SIM_PORT },
  { id: "euw1-a", region: "eu-west", port: SIM_PORT + 1 },
];

function portOption(name: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    console.error(`[dev] --${name} must be a port number (1-65535); got "${value}".`);
    process.exit(2);
  }
  return port;
}

// Locally there is no Cloudflare edge to say where a client is: Request.cf is Miniflare's placeholder
// rather than one fetched from workers.cloudflare.com (a warning, twice, when offline).
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

/** wrangler's own request line: `[wrangler:info] GET /v1/models 401 Unauthorized (6ms)`. */
const WRANGLER_REQUEST_LINE = /^\[wrangler:info\] [A-Z]+ \S+ \d{3} /;
const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
/** Prints a request line of the router's log in its human form (or not at all with --quiet); passes anything else on. */
function showLog(text: string, print: (text: string) => void): void {
  const line = parseRequestLine(text);
  if (!line) print(text);
  else if (!values.quiet) print(renderRequestLine(line, colour));
}

const demoConfig = demoTenantConfig(SIMS.map((s) => ({ ...s, url: `http://127.0.0.1:${s.port}/v1` })));

const sims: SimServer[] = [];
let worker: Awaited<ReturnType<typeof unstable_startWorker>> | undefined;
let miniflare: RunningRouter | undefined;

async function main(): Promise<void> {
  for (const s of SIMS) {
    const sim = new SimServer({ id: s.id, port: s.port });
    await sim
      .listen()
      .catch((err: Error) => fail(`sim ${s.id} could not listen on port ${s.port}: ${err.message}. Free it, or pass --sim-port <n>.`));
    sims.push(sim);
    console.log(`[dev] sim ${s.id} (${s.region}) on http://127.0.0.1:${s.port}/v1`);
  }

  // wrangler's dev server waits silently for a busy port: find out first, and say so.
  if (!(await portIsFree(PORT))) fail(`port ${PORT} is in use (another \`npm run dev\`?). Stop what holds it, or pass --port <n>.`);

  if (values.miniflare) {
    miniflare = await startRouter({
      adminToken: ADMIN_TOKEN,
      port: PORT,
      persistTo: ".wrangler/state/miniflare",
      onLog: (level, message) => showLog(message, () => printWorkerLog(level, message)),
    });
    console.log(`[dev] router on workerd via Miniflare at ${miniflare.url}`);
  } else {
    console.log(`[dev] D1 migrations: ${await applyMigrations()}`);
    console.log(`[dev] starting the wrangler dev server${values.inspect ? " with the DevTools inspector" : ""}...`);
    // wrangler prints the Worker's console.log with console.log (log level "log"), and its own line
    // per request too: the router's request line replaces that one.
    const log = console.log.bind(console);
    console.log = (...args: unknown[]) => {
      const text = args.map(String).join(" ");
      if (!WRANGLER_REQUEST_LINE.test(stripVTControlCharacters(text))) showLog(text, log);
    };
    worker = await unstable_startWorker({
      config: "wrangler.toml",
      bindings: { ADMIN_TOKEN: { type: "plain_text", value: ADMIN_TOKEN }, ALLOW_LOCAL_BACKENDS: { type: "plain_text", value: "true" } },
      dev: { server: { hostname: "127.0.0.1", port: PORT }, inspector: values.inspect ? {} : false, logLevel: "log" },
    });
    await worker.ready;
  }

  await seedDemoTenant(`http://127.0.0.1:${PORT}`);
  console.log(`
[dev] sluice is ready on http://127.0.0.1:${PORT}
      tenant "demo", API key ${DEMO_KEY}, admin token ${ADMIN_TOKEN}

  curl -N http://127.0.0.1:${PORT}/v1/chat/completions \\
    -H 'authorization: Bearer ${DEMO_KEY}' -H 'content-type: application/json' \\
    -d '{"model":"chat","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

  openai SDK: new OpenAI({ baseURL: "http://127.0.0.1:${PORT}/v1", apiKey: "${DEMO_KEY}" })
  stats:      curl http://127.0.0.1:${PORT}/admin/tenants/demo/stats -H 'authorization: Bearer ${ADMIN_TOKEN}'
  metrics:    curl http://127.0.0.1:${PORT}/admin/tenants/demo/metrics -H 'authorization: Bearer ${ADMIN_TOKEN}'   (Prometheus)
  all tenants: curl http://127.0.0.1:${PORT}/admin/metrics -H 'authorization: Bearer ${ADMIN_TOKEN}'   (Prometheus, the whole fleet)
  dashboard:  http://127.0.0.1:${PORT}/admin/dashboard   (token ${ADMIN_TOKEN})
`);
}

/** Waits for the router, then writes the demo tenant and key through the admin API. */
async function seedDemoTenant(base: string): Promise<void> {
  const until = Date.now() + 120_000;
  for (;;) {
    let up = false;
    try {
      await (await fetch(`${base}/healthz`)).arrayBuffer();
      up = true;
      await createTenantWithKey({ fetch, baseUrl: base, adminToken: ADMIN_TOKEN, name: "demo", config: demoConfig, key: DEMO_KEY });
      return;
    } catch (err) {
      if (up) fail(`could not store the demo tenant and key: ${String(err)}`);
      if (Date.now() > until) fail(`the router did not come up on ${base}: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Applies the D1 migrations to the local database and says so in a few words: wrangler's own output
 * is a table per migration (175 lines on a first run), shown only when it fails.
 */
function applyMigrations(): Promise<string> {
  const args = ["wrangler", "d1", "migrations", "apply", "DB", "--local"];
  return new Promise((resolve, reject) => {
    const child = spawn("npx", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CI: "true" } });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) => {
      if (code !== 0) {
        process.stderr.write(output);
        return reject(new Error(`npx ${args.join(" ")} exited with ${code}`));
      }
      const applied = [...new Set(stripVTControlCharacters(output).match(/\b\d{4}_[\w-]+\.sql\b/g) ?? [])];
      resolve(applied.length > 0 ? `applied ${applied.length} (${applied.join(", ")})` : "up to date");
    });
  });
}

/** Whether nothing listens on 127.0.0.1:`port` (a listen that succeeds, closed at once). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** Says what went wrong, once, and stops everything. */
class DevFailure extends Error {}

function fail(message: string): never {
  console.error(`[dev] ${message}`);
  void shutdown(1);
  throw new DevFailure(message);
}

async function shutdown(code: number): Promise<void> {
  await worker?.dispose().catch(() => {});
  await miniflare?.dispose().catch(() => {});
  await Promise.all(sims.map((s) => s.close().catch(() => {})));
  process.exit(code);
}

// Whatever stops the dev server stops the sims and workerd with it: Ctrl-C, a process manager, a closed
// terminal. The npm script execs tsx, so a signal npm forwards (SIGINT, SIGTERM) reaches it; and when
// the processes that started this one go away without passing a signal on (npm on SIGHUP, a kill -9),
// this one stops too.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void shutdown(0));
const starters = startersOf(process.ppid);
setInterval(() => {
  if (starters.some((pid) => !alive(pid))) void shutdown(0);
}, 1_000).unref();

/** This process's parent (tsx) and, where /proc tells, the parent's parent (npm, or a shell). */
function startersOf(parent: number): number[] {
  try {
    const grandparent = Number(readFileSync(`/proc/${parent}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
    return grandparent > 1 ? [parent, grandparent] : [parent];
  } catch {
    return [parent];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
main().catch((err: unknown) => {
  if (!(err instanceof DevFailure)) console.error(`[dev] ${String(err)}`);
  void shutdown(1);
});
