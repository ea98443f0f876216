// Spend and budgets against real sims: the ledger is each attempt's usage at its backend's price,
// served and wasted apart, under faults; a budget holds when 50 requests race for room for 10, on one
// gate and across a sharded tenant's gates; API keys carry their own name, expiry and limits; a
// tenant admin key reads its own tenant's spend only; a deleted tenant's ledger goes with it.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  MESSAGES,
  captureRequestLines,
  chat,
  createTenant,
  eventually,
  expectError,
  lineOf,
  release,
  resetSims,
  simConfig,
  simStats,
} from "./helpers";
import { estimatePromptTokens } from "../../src/config/chat-request";

beforeEach(resetSims);

const BASE = "https://sluice.test/admin/tenants";
const WAIT_MS = 60_000;
// Sim a: $2 per million prompt tokens, $1,000 per million output tokens; sim b: $3 and $2,000.
const PRICE_A = { inputPerMTok: 2, outputPerMTok: 1000 };
const PRICE_B = { inputPerMTok: 3, outputPerMTok: 2000 };
const cost = (p: typeof PRICE_A, input: number, output: number) => (input * p.inputPerMTok + output * p.outputPerMTok) / 1e6;
const PROMPT_ESTIMATE = estimatePromptTokens({ model: "chat", messages: MESSAGES } as never);

function pricedConfig(overrides: Record<string, unknown> = {}) {
  const config = simConfig(["a", "b"], {
    // Faults hang a sim until the test ends: these timeouts are what ends their attempts.
    timeouts: { firstTokenMs: 1_500, idleMs: 1_500 },
    retry: { budgetWindowMs: 3_600_000, baseDelayMs: 0 },
    ...overrides,
  });
  config.backends[0]!.price = PRICE_A;
  config.backends[1]!.price = PRICE_B;
  return config;
}

function admin(token: string | Record<string, string>, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const auth = typeof token === "string" ? { authorization: `Bearer ${token}` } : token;
  const { json, ...rest } = init;
  const headers: Record<string, string> = { ...auth, ...(rest.headers as Record<string, string>) };
  if (json !== undefined) headers["content-type"] = "application/json";
  return SELF.fetch(`${BASE}${path}`, { ...rest, headers, body: json === undefined ? rest.body : JSON.stringify(json) });
}

async function spend(tenant: string, query = "group_by=backend"): Promise<any> {
  const res = await admin(ADMIN, `/${tenant}/spend?${query}`);
  expect(res.status).toBe(200);
  return res.json();
}

/** A streamed answer's text and the usage chunk it carried (null when it carried none). */
async function streamedUsage(res: Response): Promise<{ text: string; usage: { prompt_tokens: number; completion_tokens: number } | null }> {
  const body = await res.text();
  let usage = null;
  for (const line of body.split("\n")) {
    if (!line.startsWith("data: {")) continue;
    const chunk = JSON.parse(line.slice(6));
    if (chunk.usage) usage = chunk.usage;
  }
  return { text: body, usage };
}

describe("spend", () => {
  it("prices each attempt by its own usage: served and wasted apart under faults, the cost on the log line, no usage for a client that did not ask", {
    timeout: 2 * WAIT_MS,
  }, async () => {
    const { tenant, key } = await createTenant(pricedConfig());
    const lines = captureRequestLines();
    const asked = { stream: true, stream_options: { include_usage: true } };
    // Sim a hangs before its first token: its attempt (taken, no usage) is wasted at sluice's prompt estimate; b answers.
    const hung = await chat(key, { model: "chat", messages: MESSAGES, ...asked, sim_fault: { backend: "a", hang: true } });
    const first = await streamedUsage(hung);
    // Sim a refuses with a 503: that attempt cost nothing; b answers.
    const refused = await chat(key, { model: "chat", messages: MESSAGES, ...asked, sim_fault: { backend: "a", status: 503 } });
    const second = await streamedUsage(refused);
    // Sim a stops after 3 tokens, which the client has: served, estimated (no usage came); no backend can continue it.
    const cut = await chat(key, {
      model: "chat",
      messages: MESSAGES,
      stream: true,
      sim_fault: { backend: "a", hang: true, hang_after: 3 },
    });
    const third = await streamedUsage(cut);
    expect(first.usage).not.toBeNull();
    expect(second.usage).not.toBeNull();
    expect(third.usage).toBeNull();
    expect(third.text).toContain('"error":');

    const servedB =
      cost(PRICE_B, first.usage!.prompt_tokens, first.usage!.completion_tokens) +
      cost(PRICE_B, second.usage!.prompt_tokens, second.usage!.completion_tokens);
    const servedA = cost(PRICE_A, PROMPT_ESTIMATE, 3);
    const wastedA = cost(PRICE_A, PROMPT_ESTIMATE, 0);
    const report = await spend(tenant);
    const byBackend = new Map<string, any>(report.data.map((g: any) => [g.backend, g]));
    expect(byBackend.get("b").served_usd).toBeCloseTo(servedB, 12);
    expect(byBackend.get("b").wasted_usd).toBe(0);
    expect(byBackend.get("a").served_usd).toBeCloseTo(servedA, 12);
    expect(byBackend.get("a").wasted_usd).toBeCloseTo(wastedA, 12);
    expect(byBackend.get("a").wasted_by_cause.failed).toBeCloseTo(wastedA, 12);
    // The hung attempt and the cut one were estimated; the 503 cost nothing and has no row.
    expect(byBackend.get("a")).toMatchObject({ attempts: 2, estimated_attempts: 2, output_tokens: 3 });
    expect(report.total.usd).toBeCloseTo(servedA + servedB + wastedA, 12);
    expect(report.unpriced_backends).toEqual([]);

    const line = await lineOf(lines, hung);
    expect(line.costUsd).toBeCloseTo(wastedA + cost(PRICE_B, first.usage!.prompt_tokens, first.usage!.completion_tokens), 12);
    expect(line.costEstimated).toBe(true);
    expect((await lineOf(lines, refused)).costEstimated).toBeUndefined();
    // Prometheus: the same spend by model and kind.
    const metrics = await (await admin(ADMIN, `/${tenant}/metrics`)).text();
    const served = metrics.match(new RegExp(`sluice_spend_usd_total\\{tenant="${tenant}",model="chat",kind="served"\\} (\\S+)`));
    expect(Number(served?.[1])).toBeCloseTo(servedA + servedB, 12);
  });

  it("answers bad spend queries with a 400, and says which backends have no price", async () => {
    const config = pricedConfig();
    delete config.backends[1]!.price;
    const { tenant } = await createTenant(config);
    await expectError(await admin(ADMIN, `/${tenant}/spend?group_by=key,colour`), 400, "invalid_group_by", /colour/);
    await expectError(await admin(ADMIN, `/${tenant}/spend?from=2026-02-30`), 400, "invalid_date");
    await expectError(await admin(ADMIN, `/${tenant}/spend?from=2026-12-08&to=2026-12-01`), 400, "invalid_date");
    expect((await spend(tenant)).unpriced_backends).toEqual(["b"]);
  });
});

/** 50 requests at once against a budget with room for 10 of them: held in sim a until all are answered or refused. */
async function raceForBudget(shards: number): Promise<void> {
  // A request of max_tokens 20 may cost 20 x $0.001 plus its prompt: room for exactly 10.
  const perRequest = cost(PRICE_A, PROMPT_ESTIMATE, 20);
  const { tenant, key } = await createTenant(
    pricedConfig({
      models: { chat: { route: ["a"] } },
      limits: { maxConcurrency: 64, maxQueue: 64, shards },
      // Held in the sim for as long as the test needs: no timeout ends them meanwhile.
      timeouts: { firstTokenMs: 600_000, idleMs: 600_000 },
      budgets: [{ name: "daily", period: "day", limit: perRequest * 10 }],
    }),
  );
  const hold = `budget-${shards}`;
  const body = {
    model: "chat",
    messages: MESSAGES,
    max_tokens: 20,
    stream_options: { include_usage: true },
    stream: true,
    sim_fault: { hold },
  };
  const pending = Array.from({ length: 50 }, () => chat(key, body));
  // The refused answer at once; the admitted ones wait in the sim until released.
  await eventually(async () => (await simStats("a")).held === 10, WAIT_MS);
  await release(hold);
  const answers = await Promise.all(pending);
  const refused = answers.filter((r) => r.status === 429);
  expect(answers.filter((r) => r.status === 200)).toHaveLength(10);
  expect(refused).toHaveLength(40);
  const error: any = await refused[0]!.json();
  expect(error.error).toMatchObject({ code: "budget_exceeded", type: "rate_limit_error" });
  expect(error.error.message).toMatch(
    /^Budget "daily" of this tenant \(\$[\d.]+ a day\) is spent; it resets at \d{4}-\d{2}-\d{2}T00:00:00\.000Z\.$/,
  );
  expect(Number(refused[1]!.headers.get("retry-after"))).toBeGreaterThan(0);
  let bound = 0;
  for (const r of answers.filter((a) => a.status === 200)) {
    const { usage } = await streamedUsage(r);
    // The documented bound: prompt tokens beyond sluice's estimate, at the input price.
    bound += Math.max(0, usage!.prompt_tokens - PROMPT_ESTIMATE) * (PRICE_A.inputPerMTok / 1e6);
  }
  // A stream's end reaches its client while its settle is on its way to the gate: wait for the last.
  await eventually(async () => (await spend(tenant)).budgets[0]?.held === 0, WAIT_MS);
  const report = await spend(tenant);
  expect(report.total.usd).toBeGreaterThan(0);
  expect(report.total.usd).toBeLessThanOrEqual(perRequest * 10 + bound + 1e-12);
  expect(report.budgets).toEqual([
    expect.objectContaining({ scope: "tenant", name: "daily", held: 0, spent: expect.closeTo(report.total.usd, 12) }),
  ]);
}

describe("budgets", () => {
  it("let at most the budget through when 50 requests race for room for 10", { timeout: 2 * WAIT_MS }, () => raceForBudget(1));
  it("hold once across a sharded tenant's gates", { timeout: 2 * WAIT_MS }, () => raceForBudget(3));
});

describe("API keys with rules of their own", () => {
  it("names the key in the log and the ledger, refuses it past its expiry and its concurrency, and takes new rules", {
    timeout: WAIT_MS,
  }, async () => {
    const { tenant } = await createTenant(pricedConfig());
    const issued = await admin(ADMIN, `/${tenant}/keys`, {
      method: "POST",
      json: { name: "ci-bot", metadata: { team: "infra" }, limits: { maxConcurrency: 1 } },
    });
    expect(issued.status).toBe(201);
    const { key, id } = (await issued.json()) as { key: string; id: string };
    expect(key).toMatch(/^sluice-/);
    const lines = captureRequestLines();
    const held = chat(key, { model: "chat", messages: MESSAGES, sim_fault: { hold: "key" } });
    await eventually(async () => (await simStats("a")).held === 1, WAIT_MS);
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 429, "concurrency_limited");
    await release("key");
    const res = await held;
    expect(res.status).toBe(200);
    expect((await lineOf(lines, res)).apiKey).toBe("ci-bot");
    const byKey = await spend(tenant, "group_by=key");
    expect(byKey.data).toEqual([expect.objectContaining({ key: id, key_name: "ci-bot", attempts: 1 })]);

    const listed: any = await (await admin(ADMIN, `/${tenant}/keys`)).json();
    expect(listed.data.filter((k: { id: string }) => k.id === id)).toEqual([
      { id, name: "ci-bot", metadata: { team: "infra" }, limits: { maxConcurrency: 1 }, createdAt: expect.any(String) },
    ]);
    const updated = await admin(ADMIN, `/${tenant}/keys/${id}`, {
      method: "PUT",
      json: { name: "ci-bot", expiresAt: "2020-01-01T00:00:00Z" },
    });
    expect(updated.status).toBe(200);
    await expectError(await chat(key, { model: "chat", messages: MESSAGES }), 401, "expired_api_key", /2020-01-01/);
    await expectError(
      await admin(ADMIN, `/${tenant}/keys/${id}`, { method: "PUT", json: { limits: { maxConcurrency: 0 } } }),
      400,
      "invalid_request",
    );
    await expectError(await admin(ADMIN, `/${tenant}/keys/0123456789abcdef`, { method: "PUT", json: {} }), 404, "key_not_found");
  });

  it("holds a key's own budget, in Anthropic's error shape on /v1/messages", { timeout: WAIT_MS }, async () => {
    const { tenant } = await createTenant(pricedConfig({ models: { chat: { route: ["a"] } } }));
    const issued: any = await (
      await admin(ADMIN, `/${tenant}/keys`, {
        method: "POST",
        json: { limits: { budgets: [{ name: "tiny", period: "month", unit: "tokens", limit: 10 }] } },
      })
    ).json();
    const res = await SELF.fetch("https://sluice.test/v1/messages", {
      method: "POST",
      headers: { "x-api-key": issued.key, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", max_tokens: 100, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(429);
    const body: any = await res.json();
    expect(body).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    expect(body.error.message).toMatch(/Budget "tiny" of this API key \(10 tokens a month\) is spent/);
  });

  it("lets a tenant admin key read its own tenant's spend only, and a deleted tenant leaves no ledger", { timeout: WAIT_MS }, async () => {
    const { tenant, key } = await createTenant(pricedConfig());
    const other = await createTenant(pricedConfig());
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const adminKey: any = await (await admin(ADMIN, `/${tenant}/admin-keys`, { method: "POST" })).json();
    const own: any = await (await admin(adminKey.key, `/${tenant}/spend`)).json();
    expect(own.total.attempts).toBe(1);
    await expectError(await admin(adminKey.key, `/${other.tenant}/spend`), 404, "tenant_not_found");

    expect((await admin(ADMIN, `/${tenant}`, { method: "DELETE" })).status).toBe(200);
    await createTenant(pricedConfig(), tenant);
    const after = await spend(tenant);
    expect(after.total.attempts).toBe(0);
    expect(after.data).toEqual([]);
  });
});
