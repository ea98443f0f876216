// A tenant's rate limits (limits.requestsPerMinute, limits.tokensPerMinute), enforced by its gate,
// and the token counts they and the metrics rest on.
import { SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  gateStats,
  MESSAGES,
  oneSlot,
  holder,
  readSse,
  release,
  resetSims,
  simConfig,
} from "./helpers";

beforeEach(resetSims);

/** The prompt estimate of MESSAGES: (16 + 28 characters) / 4. */
const PROMPT_TOKENS = 11;
/** How many tokens a bucket of `perMinute` may have refilled since the test began (generous). */
const refill = (perMinute: number, ms: number) => Math.ceil((perMinute * ms) / 60_000);

async function expectRateLimited(res: Response, limit: RegExp) {
  expect(res.status).toBe(429);
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  const body: any = await res.json();
  expect(body.error).toMatchObject({ type: "rate_limit_error", code: "rate_limited" });
  expect(body.error.message).toMatch(limit);
  return Number(res.headers.get("retry-after"));
}

/** The response, once its body has been read (so the request has ended). */
async function drained(response: Promise<Response>): Promise<Response> {
  const res = await response;
  await res.arrayBuffer();
  return res;
}

describe("rate limits", () => {
  it("admits requestsPerMinute at once, then answers 429 rate_limited with Retry-After, and counts it", async () => {
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { requestsPerMinute: 2 } }));
    for (let i = 0; i < 2; i++) expect((await drained(chat(key, { model: "chat", messages: MESSAGES }))).status).toBe(200);
    // One request per 30 s comes back.
    const retryAfter = await expectRateLimited(
      await chat(key, { model: "chat", messages: MESSAGES, stream: true }),
      /limit of requests per minute/,
    );
    expect(retryAfter).toBeGreaterThanOrEqual(29);
    expect(retryAfter).toBeLessThanOrEqual(30);
    const stats = await gateStats(tenant);
    expect(stats.counters).toMatchObject({ admitted: 2, rejectedRateLimited: 1 });
    expect(stats.rateLimit).toEqual({ requests: { perMinute: 2, available: 0 }, tokens: null });
    const metrics = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain(`sluice_rejected_rate_limited_total{tenant="${tenant}"} 1`);
    expect(metrics).toContain(`sluice_rate_limit_per_minute{tenant="${tenant}",limit="requests"} 2`);
  });

  it("charges prompt plus max_tokens up front, and gives back what a request did not generate", async () => {
    const started = Date.now();
    const { tenant, key } = await createTenant(simConfig(["a"], { limits: { tokensPerMinute: 1_000 } }));
    // Estimated at 911 tokens; the backend dies after 5, so it used 16.
    const cut = await readSse(
      await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 900, sim_fault: { disconnect_after: 5 } }),
    );
    expect(cut.error).toMatchObject({ partial: true, completion_tokens: 5 });
    const afterCut = (await gateStats(tenant)).rateLimit.tokens.available;
    expect(afterCut).toBeGreaterThanOrEqual(1_000 - PROMPT_TOKENS - 5);
    // Without the refund, 89 tokens would be left and this request refused.
    const full = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 900 });
    expect(full.status).toBe(200);
    const answer: any = await full.json();
    expect(answer.usage.completion_tokens).toBe(900);
    const left = (await gateStats(tenant)).rateLimit.tokens.available;
    expect(left).toBeGreaterThanOrEqual(1_000 - 2 * PROMPT_TOKENS - 5 - 900);
    expect(left).toBeLessThanOrEqual(1_000 - 2 * PROMPT_TOKENS - 5 - 900 + refill(1_000, Date.now() - started));
    // The next one does not fit: it waits for about 911 - 73 tokens at 1,000 a minute.
    const retryAfter = await expectRateLimited(
      await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 900 }),
      /limit of tokens .* per minute/,
    );
    expect(retryAfter).toBeGreaterThanOrEqual(45);
    expect(retryAfter).toBeLessThanOrEqual(51);
    // A smaller request still fits.
    expect((await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 10 })).status).toBe(200);
  });

  it("gives the charge back to a request turned away by a full queue", async () => {
    const { tenant, key } = await createTenant(oneSlot({ maxQueue: 0, requestsPerMinute: 2 }));
    const held = holder(key, "slot");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1);
    const full = await chat(key, { model: "chat", messages: MESSAGES });
    expect(full.status).toBe(429);
    expect(((await full.json()) as any).error.code).toBe("queue_full");
    expect((await gateStats(tenant)).rateLimit.requests.available).toBe(1);
    await release("slot");
    expect((await held).status).toBe(200);
    expect((await chat(key, { model: "chat", messages: MESSAGES })).status).toBe(200);
    await expectRateLimited(await chat(key, { model: "chat", messages: MESSAGES }), /requests per minute/);
  });

  it("does not charge a replay: it calls no backend", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { requestsPerMinute: 1 } }));
    const first = await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": "rl-replay" });
    expect(first.status).toBe(200);
    const text = await first.text();
    const replay = await chat(key, { model: "chat", messages: MESSAGES }, { "idempotency-key": "rl-replay" });
    expect(replay.status).toBe(200);
    expect(["stored", "joined"]).toContain(replay.headers.get("x-sluice-replay"));
    expect(await replay.text()).toBe(text);
    await expectRateLimited(await chat(key, { model: "chat", messages: MESSAGES }), /requests per minute/);
  });

  it("counts prompt and completion tokens for the tenant and each backend, a broken attempt's included", async () => {
    const cfg = simConfig(["a", "b"]);
    const { tenant, key } = await createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, resume: true })) });
    // a dies after 5 tokens; b carries on with the other 25.
    const result = await readSse(
      await chat(key, {
        model: "chat",
        messages: MESSAGES,
        stream: true,
        max_tokens: 30,
        sim_fault: { disconnect_after: 5, backend: "a" },
      }),
    );
    expect(result.done).toBe(true);
    const stats = await gateStats(tenant);
    expect(stats.counters).toMatchObject({ promptTokens: PROMPT_TOKENS, completionTokens: 30, continuations: 1 });
    expect(stats.backends.map((b: { id: string; tokens: number }) => [b.id, b.tokens])).toEqual([
      ["a", 5],
      ["b", 25],
    ]);
    const metrics = await (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/metrics`, { headers: ADMIN })).text();
    expect(metrics).toContain(`sluice_completion_tokens_total{tenant="${tenant}"} 30`);
    expect(metrics).toContain(`sluice_backend_tokens_total{tenant="${tenant}",backend="b",region="eu-west"} 25`);
  });
});
