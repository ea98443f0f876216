// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the router
// on workerd with sims: it shows the stats API's numbers, and a backend made to fail shows its
// breaker open within one refresh. SLUICE_SCREENSHOT=1 writes docs/dashboard.png.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually";
import { ADMIN_TOKEN, startStack, type Stack } from "./harness";
import { WebhookReceiver } from "../../sim/webhook-receiver";
import { usd, wastedShare } from "../../dashboard/health";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(
    `\n[dashboard.test] ${CHROMIUM} not found: the dashboard's browser test is SKIPPED. Install it with \`apt-get install chromium\` (CI's .ci/run does).\n`,
  );

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const KEY = "sk-dash-0123456789abcdef";
let stack: Stack;
let browser: Browser;
let page: Page;
let receiver: WebhookReceiver;
let receiverPort: number;
const requested: string[] = [];

function ask(i: number, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${stack.router.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: `question ${i}` }], ...extra }),
  });
}

async function chat(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await (await ask(i)).arrayBuffer();
}

const stats = async (): Promise<any> => (await stack.admin("/tenants/dash/stats")).json();
const refreshes = async () => Number(await page.getByTestId("refreshes").textContent());
/** Waits for the page's next refresh to complete, so what it shows is at least as new as what the test just read. */
async function nextRefresh(): Promise<void> {
  const seen = await refreshes();
  await eventually(async () => (await refreshes()) > seen);
}

/** Releases `hold` on the sim until every response has been read whole; their statuses. */
async function releaseAll(sim: string, hold: string, responses: Promise<Response>[]): Promise<number[]> {
  let done = false;
  void Promise.all(responses.map(async (r) => (await r).arrayBuffer())).then(() => (done = true));
  await eventually(() => {
    stack.sims[sim]!.release(hold);
    return done;
  });
  return (await Promise.all(responses)).map((r) => r.status);
}

beforeAll(async () => {
  if (!hasChromium) return;
  stack = await startStack(["use1", "euw1"]);
  receiver = new WebhookReceiver();
  receiverPort = await receiver.listen();
  const url = (id: string) => `http://127.0.0.1:${stack.sims[id]!.port}/v1`;
  await stack.createTenant(
    "dash",
    {
      backends: [
        { id: "use1", region: "us-east", url: url("use1"), model: "llama-sim", price: { inputPerMTok: 1, outputPerMTok: 100 } },
        { id: "euw1", region: "eu-west", url: url("euw1"), model: "llama-sim" },
      ],
      models: { chat: { route: ["use1", "euw1"], order: "pinned" } },
      // Opens after two failures in a row, and stays open for the test.
      breaker: { consecutiveFailures: 2, cooldownMs: 600_000, maxCooldownMs: 600_000 },
      limits: { maxConcurrency: 2, maxQueue: 10, maxQueueWaitMs: 120_000 },
      outbound: { allowPrivateHosts: true },
      alerts: {
        webhooks: [{ id: "ops", url: `http://127.0.0.1:${receiverPort}/hooks/dash` }],
        rules: [{ id: "gpu-down", kind: "breaker_open", backends: ["use1"] }],
      },
    },
    KEY,
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on("request", (r) => requested.push(r.url()));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await receiver?.close();
});

describe.skipIf(!hasChromium)("dashboard in a browser", () => {
  it("asks for the token once, keeps it out of URLs, and shows the stats API's numbers", async () => {
    await chat(5);
    await page.goto(`${stack.router.url}/admin/dashboard?every=1`);
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("button[type=submit]");
    await page.getByTestId("tenant-dash").click();
    await nextRefresh();
    const api = await stats();
    expect(await page.getByTestId("completed").textContent()).toBe(String(api.counters.completed));
    expect(api.counters.completed).toBe(5);
    expect(await page.getByTestId("in-flight").textContent()).toBe(`${api.inFlight} / ${api.limits.maxConcurrency}`);
    expect(await page.getByTestId("queue-depth").textContent()).toBe(`${api.queue.depth} / ${api.limits.maxQueue}`);
    expect(await page.getByTestId("rejected-429").textContent()).toBe(
      String(api.counters.rejectedQueueFull + api.counters.rejectedRateLimited + api.counters.rejectedBudget),
    );
    // The spend panel: the spend API's figures for the last 30 days, and the backend without a price named.
    // (A request's spend is settled just after its client has the answer's end: wait for all five.)
    const spend = async (): Promise<any> => (await stack.admin("/tenants/dash/spend?group_by=day")).json();
    await eventually(async () => (await spend()).total.attempts === 5);
    await nextRefresh();
    const spent = await spend();
    expect(spent.total.usd).toBeGreaterThan(0);
    expect(await page.getByTestId("spend-total").textContent()).toBe(usd(spent.total.usd));
    expect(await page.getByTestId("spend-wasted-share").textContent()).toBe(wastedShare(spent.total));
    expect(await page.getByTestId("unpriced").textContent()).toBe("No price set (counted as $0): euw1");
    expect(await page.getByTestId("spend-chart").locator("canvas").count()).toBe(1);
    expect(await page.getByTestId("breaker-use1").textContent()).toBe("closed");
    // Under load: both slots held in the sim, three requests queued behind them.
    const load = Array.from({ length: 5 }, (_, i) => ask(100 + i, { sim_fault: { hold: "dash-load" } }));
    await eventually(async () => {
      const s = await stats();
      return s.inFlight === 2 && s.queue.depth === 3;
    });
    await nextRefresh();
    expect(await page.getByTestId("in-flight").textContent()).toBe("2 / 2");
    // The backend's attempts against what it may hold now (its maxConcurrency: it learns no limit here).
    const use1 = (await stats()).backends.find((b: { id: string }) => b.id === "use1");
    // Beside it, what the sim's /metrics said when last read (every 2 s, so it may lag): at most the two held there.
    expect(await page.getByTestId("load-use1").textContent()).toMatch(
      new RegExp(`^2 / ${use1.limit}(; server: [0-2] running, 0 waiting(, KV cache \\d+%)?(, prefix hits \\d+%)?)?$`),
    );
    // Hedging is off for this tenant: none hedged, none taken.
    expect(await page.getByTestId("hedges-use1").textContent()).toBe(`${use1.hedged} / ${use1.hedges}`);
    expect([use1.hedged, use1.hedges]).toEqual([0, 0]);
    expect(use1.limit).toBe(use1.maxConcurrency);
    expect(await page.getByTestId("queue-depth").textContent()).toBe("3 / 10");
    // Each queued request is held too when it reaches the sim: release until all five are done.
    expect(await releaseAll("use1", "dash-load", load)).toEqual([200, 200, 200, 200, 200]);
    // A workflow run, in the tenant's workflow panel once it ended.
    const definition = { steps: [{ id: "ask", kind: "llm", model: "chat", messages: [{ role: "user", content: "{{input}}" }] }] };
    const put = await fetch(`${stack.router.url}/admin/tenants/dash/workflows/one`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(definition),
    });
    expect(put.status).toBe(200);
    const started = await fetch(`${stack.router.url}/v1/workflows/one/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ input: "hello" }),
    });
    const { id } = (await started.json()) as { id: string };
    await eventually(async () => {
      const run = (await (
        await fetch(`${stack.router.url}/v1/workflows/runs/${id}`, { headers: { authorization: `Bearer ${KEY}` } })
      ).json()) as any;
      return run.status === "completed";
    });
    await nextRefresh();
    expect(await page.getByTestId("workflows").textContent()).toBe("1 completed; 0 effect calls");
    // Kept for this tab only, and never sent in a URL; nothing loaded from anywhere but the router.
    expect(await page.evaluate(() => sessionStorage.getItem("sluice-admin-token"))).toBe(ADMIN_TOKEN);
    expect(requested.some((u) => u.includes(ADMIN_TOKEN))).toBe(false);
    expect(requested.every((u) => u.startsWith(stack.router.url) || u.startsWith("data:"))).toBe(true);
  });

  it("shows a shared pool: credits held against its capacity, each tenant's against its fair share and weight", async () => {
    const put = (p: string, body: unknown) =>
      fetch(`${stack.router.url}/admin${p}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await put("/pools/gpus", {})).status).toBe(200);
    const url = `http://127.0.0.1:${stack.sims.euw1!.port}/v1`;
    expect(
      (await put("/backends/gpu-shared", { region: "eu-west", url, model: "llama-sim", maxConcurrency: 2, pool: "gpus" })).status,
    ).toBe(200);
    const poolKey = "sk-dash-pool-0123456789";
    await stack.createTenant(
      "dash-pool",
      { models: { chat: { route: ["gpu-shared"] } }, pools: { gpus: { weight: 2 } }, limits: { maxQueueWaitMs: 120_000 } },
      poolKey,
    );
    const held = Array.from({ length: 3 }, (_, i) =>
      fetch(`${stack.router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${poolKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: `pooled ${i}` }], sim_fault: { hold: "dash-pool" } }),
      }),
    );
    const pool = async () => ((await (await stack.admin("/pools/gpus")).json()) as any).stats;
    await eventually(async () => (await pool()).inFlight === 2);
    await nextRefresh();
    expect(await page.getByTestId("pool-gpus").textContent()).toBe("2 / 2");
    const tenant = (await pool()).tenants.find((t: { tenant: string }) => t.tenant === "dash-pool");
    expect(await page.getByTestId("pool-gpus-dash-pool").textContent()).toBe(`2 / ${tenant.target}`);
    expect(await page.getByTestId("share-gpus-dash-pool").textContent()).toBe("100% of 100%");
    expect(await releaseAll("euw1", "dash-pool", held)).toEqual([200, 200, 200]);
  });

  it("shows a failing backend's breaker open within one refresh of the stats API saying so", async () => {
    stack.sims.use1!.configure({ failRate: 1, failStatus: 503 });
    await eventually(async () => {
      await chat(1);
      return (await stats()).backends.find((b: any) => b.id === "use1").breaker === "open";
    });
    await nextRefresh();
    const breaker = page.getByTestId("breaker-use1");
    expect(await breaker.textContent()).toBe("open");
    expect(await breaker.getAttribute("class")).toBe("bad");
    expect(await page.getByTestId("tenant-dash").getAttribute("class")).toBe("bad");
    // The alert goes out through the alert queue; its link opens the page on the tenant, alert shown.
    await eventually(() => receiver.receivedAt("/hooks/dash").length > 0, 60_000);
    const alert = JSON.parse(receiver.receivedAt("/hooks/dash")[0]!.body);
    expect(alert).toMatchObject({ type: "alert.firing", data: { tenant: "dash", rule: "gpu-down", backend: "use1" } });
    const link = new URL(alert.data.dashboard);
    expect(link.pathname + link.search).toBe("/admin/dashboard?tenant=dash");
    await page.goto(`${stack.router.url}${link.pathname}${link.search}&every=1`);
    await nextRefresh();
    const shown = page.getByTestId("alerts").locator("li");
    expect(await shown.first().textContent()).toMatch(/^firing: gpu-down \(use1\), breaker_open, since /);
    expect(await shown.first().getAttribute("class")).toBe("bad");
    // A few refreshes more, so the screenshot's charts have a line to show.
    for (let i = 0; i < 4; i++) await nextRefresh();
    await page.screenshot({
      path: process.env.SLUICE_SCREENSHOT === "1" ? path.join(ROOT, "docs/dashboard.png") : path.join(tmpdir(), "sluice-dashboard.png"),
      fullPage: true,
    });
  });
});
