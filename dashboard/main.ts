// sluice's dashboard: the fleet at a glance and one tenant in detail, refreshed every few seconds
// from the admin API. The admin token (operator's or a tenant admin key) is asked once and kept in
// sessionStorage for this tab; it is sent as a header, never put in a URL.
import uPlot from "uplot";
import { AdminApi, type DeadLetter, type PoolStats, type Stats, Unauthorized, type WorkflowSummary } from "./api";
import { breakerHealth, refusals, tenantHealth } from "./health";
import { renderSpend, SPEND_DAYS } from "./spend";

const TOKEN_KEY = "sluice-admin-token";
/** Points kept per chart: 10 minutes at the default refresh. */
const MAX_POINTS = 120;
/** Tenants whose stats the fleet table reads on each refresh. */
const FLEET_LIMIT = 50;

const every = Math.max(1, Number(new URLSearchParams(location.search).get("every") ?? "5")) * 1000;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The time series of one tenant, gathered by this page since it opened. */
interface Series {
  t: number[];
  queueP50: Array<number | null>;
  queueP99: Array<number | null>;
  ttftP50: Array<number | null>;
  ttftP99: Array<number | null>;
  inFlight: number[];
  queued: number[];
}

const series = new Map<string, Series>();
const breakerLog: string[] = [];
const lastBreaker = new Map<string, string>();
/** The tenant shown: the one clicked, at first the one the link named (alert messages link with ?tenant=). */
let selected: string | null = new URLSearchParams(location.search).get("tenant");
let refreshes = 0;
let charts: { latency: uPlot; load: uPlot } | null = null;

function text(el: HTMLElement, value: string | number): void {
  el.textContent = String(value);
}

function cell(row: HTMLTableRowElement, value: string | number, testId?: string, health?: string): void {
  const td = row.insertCell();
  td.textContent = String(value);
  if (testId) td.dataset.testid = testId;
  if (health) td.className = health;
}

const ms = (v: number | undefined | null) => (v === undefined || v === null ? "–" : `${v} ms`);

function record(tenant: string, s: Stats): Series {
  let x = series.get(tenant);
  if (!x) series.set(tenant, (x = { t: [], queueP50: [], queueP99: [], ttftP50: [], ttftP99: [], inFlight: [], queued: [] }));
  const m = s.recent.lastMinute;
  x.t.push(Date.now() / 1000);
  x.queueP50.push(m.queueMs.p50 ?? null);
  x.queueP99.push(m.queueMs.p99 ?? null);
  x.ttftP50.push(m.ttftMs.p50 ?? null);
  x.ttftP99.push(m.ttftMs.p99 ?? null);
  x.inFlight.push(s.inFlight);
  x.queued.push(s.queue.depth);
  for (const key of Object.keys(x) as Array<keyof Series>) if (x[key].length > MAX_POINTS) x[key].shift();
  return x;
}

function renderFleet(rows: Array<{ tenant: string; stats: Stats | null }>): void {
  const body = $<HTMLTableSectionElement>("fleet-body");
  body.replaceChildren();
  for (const { tenant, stats } of rows) {
    const row = body.insertRow();
    row.dataset.testid = `tenant-${tenant}`;
    row.className = stats ? tenantHealth(stats) : "bad";
    row.onclick = () => {
      selected = tenant;
      charts = null;
      void tick();
    };
    cell(row, tenant);
    if (!stats) {
      cell(row, "no answer");
      continue;
    }
    cell(row, `${stats.inFlight} / ${stats.limits?.maxConcurrency ?? "?"}`);
    cell(row, `${stats.queue.depth} / ${stats.limits?.maxQueue ?? "?"}`);
    cell(row, stats.backends.filter((b) => b.breaker === "open").length);
    cell(row, ms(stats.recent.lastMinute.ttftMs.p99));
    cell(row, stats.recent.lastMinute.requests);
  }
}

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** What a server said of its own load: batch, queue, KV cache and prefix-cache hits, as far as it tells. */
function serverLoad(r: NonNullable<Stats["backends"][number]["reported"]>): string {
  const kv = r.kvCacheUsage === undefined ? "" : `, KV cache ${percent(r.kvCacheUsage)}`;
  const prefix = r.prefixHitRate === undefined ? "" : `, prefix hits ${percent(r.prefixHitRate)}`;
  return `${r.running} running, ${r.waiting} waiting${kv}${prefix}`;
}

/** Each pool: its credits held against its capacity, then each tenant's against its fair share and its weight. */
function renderPools(pools: PoolStats[]): void {
  $("pools").hidden = pools.length === 0;
  const body = $<HTMLTableSectionElement>("pools-body");
  body.replaceChildren();
  for (const p of pools) {
    const row = body.insertRow();
    cell(row, p.pool);
    cell(row, `all (${p.backends.map((b) => `${b.id}: ${b.inFlight}/${b.capacity}`).join(", ")})`);
    cell(row, "–");
    cell(row, `${p.held} / ${p.capacity}`, `pool-${p.pool}`);
    cell(row, "–");
    cell(
      row,
      p.backends.reduce((n, b) => n + b.waiting, 0),
    );
    cell(
      row,
      p.tenants.reduce((n, t) => n + t.tokens, 0),
    );
    for (const t of p.tenants) {
      const r = body.insertRow();
      cell(r, "");
      cell(r, t.tenant);
      cell(r, t.weight);
      cell(r, `${t.held} / ${t.target}`, `pool-${p.pool}-${t.tenant}`);
      cell(r, `${percent(t.share)} of ${percent(t.weightShare)}`, `share-${p.pool}-${t.tenant}`);
      cell(r, t.waiting);
      cell(r, t.tokens);
    }
  }
}

/** Runs by status, then the steps that failed or were skipped and the attempts that failed, by backend. */
function renderWorkflows(w: WorkflowSummary | null): void {
  if (!w) return text($("workflows"), "–");
  const runs = Object.entries(w.runs).map(([status, n]) => `${n} ${status}`);
  text($("workflows"), runs.length ? `${runs.join(", ")}; ${w.effectCalls} effect calls` : "no runs");
  $("workflows").className = (w.runs.failed ?? 0) > 0 ? "bad" : (w.runs.partial ?? 0) > 0 ? "warn" : "";
  $("workflow-failures").replaceChildren(
    ...w.stepFailures.map((f) =>
      Object.assign(document.createElement("li"), { textContent: `step ${f.step}: ${f.failed} failed, ${f.skipped} skipped` }),
    ),
    ...w.attemptFailures.map((f) =>
      Object.assign(document.createElement("li"), {
        textContent: `step ${f.step} on ${f.backend || "no backend"}: ${f.failures} failed attempts`,
      }),
    ),
  );
}

function renderTenant(tenant: string, s: Stats, letters: DeadLetter[]): void {
  $("tenant").hidden = false;
  text($("tenant-name"), tenant);
  $("tenant-name").className = tenantHealth(s);
  const r = refusals(s);
  const figures: Array<[string, string | number]> = [
    ["in-flight", `${s.inFlight} / ${s.limits?.maxConcurrency ?? "?"}`],
    ["queue-depth", `${s.queue.depth} / ${s.limits?.maxQueue ?? "?"}`],
    ["queue-oldest", ms(s.queue.oldestWaitMs)],
    ["completed", s.counters.completed],
    ["partial", s.counters.partial],
    ["failed", s.counters.failed],
    ["rejected-429", r["429"]],
    ["rejected-503", r["503"]],
    ["rejected-504", r["504"]],
    ["attempts-per-request", s.recent.lastMinute.attemptsPerRequest],
    ["budget-denied", s.recent.lastMinute.budgetDenied],
    ["wasted-tokens", s.counters.wastedTokens],
  ];
  for (const [id, value] of figures) text($(id), value);
  $("queue-depth").className = (s.limits?.maxQueue ?? 0) > 0 && s.queue.depth / s.limits!.maxQueue > 0.8 ? "bad" : "";

  const body = $<HTMLTableSectionElement>("backends-body");
  body.replaceChildren();
  for (const b of s.backends) {
    const key = `${tenant}/${b.id}`;
    const before = lastBreaker.get(key);
    if (before !== undefined && before !== b.breaker)
      breakerLog.unshift(`${new Date().toLocaleTimeString()} ${key}: ${before} → ${b.breaker}`);
    lastBreaker.set(key, b.breaker);
    const recent = s.recent.lastMinute.backends[b.id];
    const row = body.insertRow();
    cell(row, `${b.id} (${b.region})`);
    cell(row, b.breaker, `breaker-${b.id}`, breakerHealth(b.breaker));
    // A learned limit below maxConcurrency (adaptiveConcurrency) is what the backend may hold now.
    // A fleet backend's limit is the credits its pool granted this tenant.
    const why = b.pool
      ? ` (pool ${b.pool.id}: ${b.pool.credits} credits)`
      : b.limit < b.maxConcurrency
        ? ` (learned; max ${b.maxConcurrency})`
        : "";
    // What the server says of itself (its /metrics), beside sluice's own count.
    const server = b.reported ? `; server: ${serverLoad(b.reported)}` : "";
    cell(row, `${b.inFlight} / ${b.limit}${why}${server}`, `load-${b.id}`);
    cell(row, recent ? `${Math.round(recent.failureRate * 100)}% of ${recent.attempts}` : "–");
    cell(row, ms(b.ttftMs.p99));
    cell(row, `${b.hedged} / ${b.hedges}`, `hedges-${b.id}`);
    cell(row, b.wastedTokens.regenerated + b.wastedTokens.restarted);
  }
  $("alerts").replaceChildren(
    ...(s.alerts.length === 0 ? [{ state: "none" }] : s.alerts).map((a) => {
      const li = document.createElement("li");
      if (!("rule" in a)) return Object.assign(li, { textContent: "none pending or firing" });
      const about = a.subject === undefined ? "" : ` (${a.subject})`;
      li.textContent = `${a.state}: ${a.rule}${about}, ${a.kind}, since ${new Date(a.since).toLocaleTimeString()}`;
      li.className = a.state === "firing" ? "bad" : "warn";
      return li;
    }),
  );
  $("breaker-log").replaceChildren(
    ...breakerLog.slice(0, 20).map((line) => Object.assign(document.createElement("li"), { textContent: line })),
  );

  $("dead-letters").replaceChildren(
    ...letters.map((d) => {
      const li = document.createElement("li");
      const story = d.attempts
        .map((a) => `${a.backendId}${a.continuation ? " (continued)" : ""}: ${a.errorCode ?? a.outcome} ${a.durationMs} ms`)
        .join(" → ");
      li.textContent = `${new Date(d.createdAt).toLocaleTimeString()} ${d.status} ${d.code} [${d.requestId.slice(0, 8)}] ${story}`;
      return li;
    }),
  );
  drawCharts(record(tenant, s));
}

function drawCharts(x: Series): void {
  const width = Math.min(720, $("charts").clientWidth || 720);
  if (!charts) {
    $("charts").replaceChildren();
    const common = { width, height: 220, scales: { x: { time: true } }, axes: [{}, { size: 60 }] };
    charts = {
      latency: new uPlot(
        {
          ...common,
          title: "Last minute: queue wait and TTFT (ms)",
          series: [
            {},
            { label: "queue p50", stroke: "#8ab" },
            { label: "queue p99", stroke: "#357" },
            { label: "TTFT p50", stroke: "#e9a" },
            { label: "TTFT p99", stroke: "#b24" },
          ],
        },
        [[], [], [], [], []],
        $("charts"),
      ),
      load: new uPlot(
        {
          ...common,
          title: "In flight and queued",
          series: [{}, { label: "in flight", stroke: "#393" }, { label: "queued", stroke: "#c80" }],
        },
        [[], [], []],
        $("charts"),
      ),
    };
  }
  charts.latency.setData([x.t, x.queueP50, x.queueP99, x.ttftP50, x.ttftP99] as uPlot.AlignedData);
  charts.load.setData([x.t, x.inFlight, x.queued]);
}

async function refresh(): Promise<void> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  const api = new AdminApi(token);
  try {
    // A tenant admin key cannot list tenants: it sees its own tenant only, named on the login form.
    const own = sessionStorage.getItem(`${TOKEN_KEY}-tenant`);
    const tenants = own ? [own] : (await api.tenants()).slice(0, FLEET_LIMIT);
    const rows = await Promise.all(tenants.map(async (tenant) => ({ tenant, stats: await api.stats(tenant).catch(() => null) })));
    renderFleet(rows);
    renderPools(own ? [] : await api.pools().catch(() => []));
    selected ??= tenants[0] ?? null;
    const current = rows.find((r) => r.tenant === selected);
    if (selected && current?.stats) {
      const [letters, workflows, spend] = await Promise.all([
        api.deadLetters(selected).catch(() => []),
        api.workflows(selected).catch(() => null),
        api.spend(selected, SPEND_DAYS).catch(() => null),
      ]);
      renderTenant(selected, current.stats, letters);
      renderWorkflows(workflows);
      renderSpend(selected, spend);
    }
    text($("refreshes"), ++refreshes);
    text($("updated"), new Date().toLocaleTimeString());
    $("error").hidden = true;
  } catch (err) {
    if (err instanceof Unauthorized) return showLogin("That token was refused.");
    text($("error"), `Refresh failed: ${String(err)}`);
    $("error").hidden = false;
  }
}

function showLogin(message = ""): void {
  $("login").hidden = false;
  $("main").hidden = true;
  text($("login-error"), message);
}

$<HTMLFormElement>("login").onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $<HTMLInputElement>("token").value.trim());
  const tenant = $<HTMLInputElement>("own-tenant").value.trim();
  if (tenant) sessionStorage.setItem(`${TOKEN_KEY}-tenant`, tenant);
  else sessionStorage.removeItem(`${TOKEN_KEY}-tenant`);
  $("login").hidden = true;
  $("main").hidden = false;
  void tick();
};
$("logout").onclick = () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(`${TOKEN_KEY}-tenant`);
  showLogin();
};

/** One refresh at a time: a slow one is not overtaken by the next tick. */
let busy = false;
async function tick(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    await refresh();
  } finally {
    busy = false;
  }
}

text($("every"), every / 1000);
if (sessionStorage.getItem(TOKEN_KEY)) {
  $("login").hidden = true;
  $("main").hidden = false;
}
void tick();
setInterval(() => void tick(), every);
