// Runs the sluice Worker under workerd through Miniflare's API (no `wrangler dev` proxy in front),
// with the bindings of wrangler.toml and the D1 migrations applied. Used by the end-to-end tests,
// the benchmark and `npm run dev`.
import path from "node:path";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_splitSqlQuery } from "wrangler";
import { isRequestLine } from "./request-line";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface RouterOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  adminToken: string;
  /** Worker entry module; defaults to src/index.ts. */
  entry?: string;
  /** Extra vars, e.g. a shorter config cache. */
  vars?: Record<string, string>;
  /** Keep KV/D1/DO state under this folder between runs; in memory when absent. */
  persistTo?: string;
  /** Open workerd's DevTools inspector on this port (for CPU profiles). */
  inspectorPort?: number;
  /**
   * Where the Worker's log lines go. By default its request lines (one per request) and workerd's
   * expected notes are dropped, and everything else is printed; `npm run dev` renders request lines.
   */
  onLog?: (level: string, message: string) => void;
  /**
   * Run the gates (TenantGate, PoolGate) in a workerd process of their own, which the router's
   * reaches through Miniflare's dev registry: Cloudflare's topology, where a Durable Object runs
   * apart from the Workers that call it. `bench:cpu -- --gate-process` measures it.
   */
  gateProcess?: boolean;
}

export interface RunningRouter {
  url: string;
  mf: Miniflare;
  /** The gates' own Miniflare, with `gateProcess`. */
  gates?: Miniflare;
  /** Stops the gates' process alone (once), with `gateProcess`: the router then finds no gate. */
  stopGates?(): Promise<void>;
  dispose(): Promise<void>;
}

/** Where the gates run with `gateProcess`: the name their Worker is registered under. */
const GATE_WORKER = "sluice-gates";
/** The Durable Object bindings that gate requests; the rest (ConfigLog) stay with the router. */
const GATE_BINDINGS = ["TENANT_GATE", "POOL_GATE"];

export async function bundleWorker(entry = path.join(ROOT, "src/index.ts")): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    write: false,
    logLevel: "error",
  });
  return out.outputFiles[0]!.text;
}

export async function startRouter(options: RouterOptions): Promise<RunningRouter> {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.toml"));
  const script = await bundleWorker(options.entry);
  const persist = options.persistTo;
  const shared = {
    ...(workerOptions as object),
    modules: [{ type: "ESModule", path: "index.mjs", contents: script }],
    // Local runs route to sims on 127.0.0.1, which a deployment must opt in to.
    bindings: { ...workerOptions.bindings, ALLOW_LOCAL_BACKENDS: "true", ...options.vars, ADMIN_TOKEN: options.adminToken },
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    kvPersist: persist ? path.join(persist, "kv") : false,
    d1Persist: persist ? path.join(persist, "d1") : false,
    durableObjectsPersist: persist ? path.join(persist, "do") : false,
    modulesRules: undefined,
    ...(options.inspectorPort !== undefined ? { inspectorPort: options.inspectorPort } : {}),
    handleStructuredLogs: ({ level, message }: { level: string; message: string }) => (options.onLog ?? printWorkerLog)(level, message),
  };
  if (!options.gateProcess) {
    const mf = new Miniflare({ ...shared, name: "sluice" } as ConstructorParameters<typeof Miniflare>[0]);
    const url = (await mf.ready).toString().replace(/\/$/, "");
    await applyMigrations(mf);
    return { url, mf, dispose: () => mf.dispose() };
  }
  const scratch = await mkdtemp(path.join(tmpdir(), "sluice-gates-"));
  // Both processes read the tenants' configs from one KV store on disk (a gate reloads its
  // tenant's config from KV); the router writes it.
  const kvPersist = persist ? path.join(persist, "kv") : path.join(scratch, "kv");
  const registered = { ...shared, unsafeDevRegistryPath: path.join(scratch, "registry"), kvPersist };
  // The gates' other storage is their own, and the inspector is the router's.
  const own = (kind: string) => (persist ? path.join(persist, "gates", kind) : false);
  const gates = new Miniflare({
    ...registered,
    name: GATE_WORKER,
    port: 0,
    d1Persist: own("d1"),
    durableObjectsPersist: own("do"),
    inspectorPort: undefined,
  } as ConstructorParameters<typeof Miniflare>[0]);
  await gates.ready;
  const bindings = workerOptions.durableObjects as Record<string, { className: string }>;
  const durableObjects = Object.fromEntries(
    Object.entries(bindings).map(([name, binding]) => [
      name,
      GATE_BINDINGS.includes(name) ? { className: binding.className, scriptName: GATE_WORKER, useSQLite: true } : binding,
    ]),
  );
  const mf = new Miniflare({ ...registered, name: "sluice", durableObjects } as ConstructorParameters<typeof Miniflare>[0]);
  const url = (await mf.ready).toString().replace(/\/$/, "");
  await applyMigrations(mf);
  let gatesStopped: Promise<void> | undefined;
  const stopGates = () => (gatesStopped ??= gates.dispose());
  const dispose = async () => {
    await mf.dispose();
    await stopGates();
    await rm(scratch, { recursive: true, force: true });
  };
  return { url, mf, gates, stopGates, dispose };
}

/**
 * workerd's notes that say nothing is wrong: an alarm run that found the object's alarm moved (a gate
 * moves its alarm as deadlines change; the new time stands).
 */
const EXPECTED_NOTES = ["SQLite alarm handler canceled with requestScheduledAlarm"];

/** The default of `onLog`. */
export function printWorkerLog(level: string, message: string): void {
  if (isRequestLine(message) || EXPECTED_NOTES.some((note) => message.includes(note))) return;
  (level === "error" || level === "warn" ? process.stderr : process.stdout).write(`${message}\n`);
}

async function applyMigrations(mf: Miniflare): Promise<void> {
  const db = await mf.getD1Database("DB");
  const dir = path.join(ROOT, "migrations");
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort()) {
    for (const statement of unstable_splitSqlQuery(await readFile(path.join(dir, file), "utf8"))) {
      await db.prepare(statement).run();
    }
  }
}
