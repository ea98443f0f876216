// Both scrapes (a tenant's /metrics and the fleet's /admin/metrics) pass Prometheus's own linter,
// `promtool check metrics` (Debian's prometheus package; CI's .ci/run installs it), after traffic
// that fills every family: completions, failures over to another backend, a rejection.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, startStack, type Stack } from "./harness";

const PROMTOOL = process.env.PROMTOOL_PATH ?? "/usr/bin/promtool";
const hasPromtool = existsSync(PROMTOOL);
if (!hasPromtool)
  console.warn(
    `\n[prometheus-lint.test] ${PROMTOOL} not found: the scrape lint is SKIPPED. Install it with \`apt-get install prometheus\` (CI's .ci/run does).\n`,
  );

const KEY = "sk-lint-0123456789abcdef";
let stack: Stack;

/** What promtool says of `text` (empty: nothing wrong), and its exit code. */
function lint(text: string): { problems: string; status: number | null } {
  const run = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
  return { problems: `${run.stdout}${run.stderr}`.trim(), status: run.status };
}

describe.skipIf(!hasPromtool)("the Prometheus scrapes", () => {
  beforeAll(async () => {
    stack = await startStack(["use1", "euw1"]);
    // A shared pool with one fleet backend, so the pool families are filled too.
    const put = (p: string, body: unknown) =>
      fetch(`${stack.router.url}/admin${p}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    await put("/pools/pool-lint", {});
    await put("/backends/gpu-lint", {
      region: "us-east",
      url: `http://127.0.0.1:${stack.sims.use1!.port}/v1`,
      model: "m",
      pool: "pool-lint",
    });
    await stack.createTenant(
      "lint",
      {
        backends: [
          { id: "use1", region: "us-east", url: `http://127.0.0.1:${stack.sims.use1!.port}/v1`, model: "m" },
          { id: "euw1", region: "eu-west", url: `http://127.0.0.1:${stack.sims.euw1!.port}/v1`, model: "m" },
        ],
        models: { chat: { route: ["use1", "euw1"], order: "pinned" }, pooled: { route: ["gpu-lint"] } },
        limits: { requestsPerMinute: 1_000, tokensPerMinute: 1_000_000 },
        pools: { "pool-lint": { weight: 2 } },
      },
      KEY,
    );
    const ask = (extra: Record<string, unknown> = {}) =>
      fetch(`${stack.router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "lint" }], ...extra }),
      }).then((r) => r.arrayBuffer());
    await ask();
    await ask({ stream: true });
    await ask({ sim_fault: { backend: "use1", status: 503 } });
    await ask({ model: "missing" });
    await ask({ model: "pooled" });
  });

  afterAll(async () => {
    await stack?.close();
  });

  for (const [what, path] of [
    ["a tenant's /metrics", "/tenants/lint/metrics"],
    ["the fleet's /admin/metrics", "/metrics"],
  ] as const) {
    it(`${what} passes promtool check metrics`, async () => {
      const res = await stack.admin(path);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain("sluice_backend_attempts_total");
      expect(text).toContain("sluice_backend_pool_credits");
      // The sims' own /metrics, read by the gate while requests come.
      expect(text).toContain("sluice_backend_reported_waiting");
      if (path === "/metrics") expect(text).toContain('sluice_pool_tenant_tokens_total{pool="pool-lint",tenant="lint"}');
      expect(lint(text)).toEqual({ problems: "", status: 0 });
    });
  }
});
