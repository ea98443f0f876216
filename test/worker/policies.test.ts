// Failure policies against real sims: breakers, retry budget, timeouts, routing, degradation,
// mid-stream resume and dead letters.
import { abortAllDurableObjects, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  chat,
  createTenant,
  eventually,
  expectedText,
  gateStats,
  MESSAGES,
  readSse,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simControl,
  simStats,
  type SimName,
} from "./helpers";

beforeEach(resetSims);

const totalRequests = async (...sims: SimName[]) => (await Promise.all(sims.map(simStats))).reduce((n, s) => n + s.requests, 0);
const drain = async (res: Response) => {
  await res.arrayBuffer();
  return res.status;
};

describe("circuit breaker", () => {
  it("opens on a failing backend, keeps traffic off it, and closes after a half-open probe succeeds", async () => {
    await simControl("a", { failRate: 1, failStatus: 500 });
    const { tenant, key } = await createTenant(
      simConfig(["a", "b"], { breaker: { minRequests: 4, failureRate: 0.5, cooldownMs: 5_000, windowMs: 30_000 } }),
    );
    for (let i = 0; i < 4; i++) expect(await drain(await chat(key, { model: "chat", messages: MESSAGES }))).toBe(200);
    expect((await gateStats(tenant)).backends.find((b: any) => b.id === "a").breaker).toBe("open");
    const before = (await simStats("a")).requests;
    for (let i = 0; i < 5; i++) expect(await drain(await chat(key, { model: "chat", messages: MESSAGES }))).toBe(200);
    expect((await simStats("a")).requests).toBe(before); // no traffic while open
    // The backend recovers; once the cooldown has passed, one probe goes through and closes the circuit.
    await simControl("a", { failRate: 0 });
    await eventually(async () => (await gateStats(tenant)).backends.find((b: any) => b.id === "a").breaker === "half-open");
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    await drain(res);
    const a = (await gateStats(tenant)).backends.find((b: any) => b.id === "a");
    expect(a.breaker).toBe("closed");
  });

  it("answers 503 with Retry-After when every backend's circuit is open, and keeps the state across a gate restart", async () => {
    await simControl("a", { failRate: 1, failStatus: 503 });
    const { tenant, key } = await createTenant(
      simConfig(["a"], { retry: { maxAttempts: 2, baseDelayMs: 1 }, breaker: { consecutiveFailures: 2, cooldownMs: 5_000 } }),
    );
    expect(await drain(await chat(key, { model: "chat", messages: MESSAGES }))).toBe(502);
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true });
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await res.json()) as any).error.code).toBe("no_backend_available");
    await abortAllDurableObjects();
    expect((await gateStats(tenant)).backends[0].breaker).toBe("open");
    expect(await drain(await chat(key, { model: "chat", messages: MESSAGES }))).toBe(503);
  });
});

describe("breaker verdicts at the first token", () => {
  it("counts a long stream's success when it answers, so quick failures around it do not open the circuit", async () => {
    const { tenant, key } = await createTenant(simConfig(["a", "b"], { breaker: { consecutiveFailures: 3, minRequests: 1000 } }));
    const failOnA = { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } };
    for (let i = 0; i < 2; i++) expect(await drain(await chat(key, failOnA))).toBe(200); // served by b
    // A slow generation on a answers (first token) and keeps streaming.
    const slow = await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 40, sim_fault: { tps: 10 } });
    const reader = slow.body!.getReader();
    await reader.read();
    for (let i = 0; i < 2; i++) expect(await drain(await chat(key, failOnA))).toBe(200);
    const a = (await gateStats(tenant)).backends.find((b: any) => b.id === "a");
    expect(a.breaker).toBe("closed"); // 2 failures, a success, 2 failures: never 3 in a row
    await reader.cancel();
  });

  it("counts the success of a stream that started while the breaker was clean, too", async () => {
    // The stream is granted before any failure and answers (slowly) after the first one: its
    // success lies between the failures, whatever the breaker looked like when it started.
    const { tenant, key } = await createTenant(simConfig(["a", "b"], { breaker: { consecutiveFailures: 3, minRequests: 1000 } }));
    const failOnA = { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } };
    const slowResponse = chat(key, {
      model: "chat",
      messages: MESSAGES,
      stream: true,
      max_tokens: 40,
      sim_fault: { hold: "clean-start", tps: 10 },
    });
    await eventually(async () => (await simStats("a")).held === 1);
    expect(await drain(await chat(key, failOnA))).toBe(200); // failure 1 on a, served by b
    await release("clean-start");
    const reader = (await slowResponse).body!.getReader(); // the response starts at the first token
    await reader.read();
    for (let i = 0; i < 2; i++) expect(await drain(await chat(key, failOnA))).toBe(200);
    const a = (await gateStats(tenant)).backends.find((b: any) => b.id === "a");
    expect(a.breaker).toBe("closed"); // failure, success, 2 failures: never 3 in a row
    await reader.cancel();
  });
});

describe("retries", () => {
  it("with 20% failures, every request completes and upstream attempts stay under 1.3x", async () => {
    for (const [i, s] of (["a", "b"] as const).entries()) await simControl(s, { failRate: 0.2, failStatus: 503, seed: 11 + i });
    // Timeouts far away: only the sims' seeded 20% fail, never a slow attempt on a loaded machine.
    // One budget window for the whole run: on a slow machine a 10 s window would hold fewer
    // requests, so fewer retries, and whether a cluster of failures fits would depend on speed.
    const timeouts = { connectMs: 60_000, firstTokenMs: 60_000, idleMs: 60_000 };
    const retry = { maxAttempts: 4, budgetRatio: 0.3, baseDelayMs: 1, budgetWindowMs: 3_600_000 };
    const { key } = await createTenant(simConfig(["a", "b"], { retry, timeouts }));
    const N = 100;
    let complete = 0;
    for (let i = 0; i < N; i++) {
      const messages = [{ role: "user", content: `question ${i}` }];
      const sse = await readSse(await chat(key, { model: "chat", messages, stream: true }));
      if (sse.done && sse.text === expectedText(messages)) complete++;
    }
    expect(complete).toBe(N);
    const attempts = await totalRequests("a", "b");
    expect(attempts / N).toBeLessThanOrEqual(1.3);
    expect(attempts).toBeGreaterThan(N); // failures really happened
  });

  it("does not retry a 4xx, and honours Retry-After before retrying the same backend", async () => {
    const { key } = await createTenant(simConfig(["a"], { retry: { maxAttempts: 2, maxDelayMs: 2_000 } }));
    expect(await drain(await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 422 } }))).toBe(422);
    expect((await simStats("a")).requests).toBe(1);
    const started = Date.now();
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 429, retry_after: 1 } });
    expect(res.status).toBe(502);
    expect(res.headers.get("x-sluice-attempts")).toBe("2");
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it("with every backend failing, attempts stay within the budget and each request is dead-lettered", async () => {
    await simControl("a", { failRate: 1, failStatus: 500 });
    await simControl("b", { failRate: 1, failStatus: 500 });
    const { tenant, key } = await createTenant(
      simConfig(["a", "b"], {
        retry: { maxAttempts: 3, budgetRatio: 0.2, budgetMinRetries: 2, baseDelayMs: 1 },
        breaker: { minRequests: 1000, consecutiveFailures: 1000 },
      }),
    );
    const N = 20;
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const res = await chat(key, { model: "chat", messages: MESSAGES });
      expect(res.status).toBe(502);
      ids.push(res.headers.get("x-request-id")!);
      await drain(res);
    }
    const attempts = await totalRequests("a", "b");
    expect(attempts).toBeLessThanOrEqual(N + Math.max(2, Math.floor(N * 0.2)));
    const stats = await gateStats(tenant);
    expect(stats.counters.budgetDenied).toBeGreaterThan(0);
    // The windows say the same of the last five minutes, which hold the whole test.
    expect(stats.recent.last5Minutes).toMatchObject({
      requests: N,
      budgetDenied: stats.counters.budgetDenied,
      attemptsPerRequest: attempts / N,
      backends: { a: { failureRate: 1 }, b: { failureRate: 1 } },
    });
    // Dead letters are written after each answer (waitUntil).
    const letters = async (): Promise<any> =>
      (await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}/dead-letters?limit=100`, { headers: ADMIN })).json();
    await eventually(async () => (await letters()).data.length === N);
    const dl = await letters();
    expect(dl.data).toHaveLength(N);
    expect(new Set(dl.data.map((d: any) => d.requestId))).toEqual(new Set(ids));
    const first = dl.data.find((d: any) => d.attempts.length > 1) ?? dl.data[0];
    expect(first).toMatchObject({ tenant, model: "chat", status: 502, partial: false });
    expect(first.attempts[0]).toMatchObject({ backendId: "a", outcome: "failure", errorCode: "upstream_http_500", httpStatus: 500 });
    expect(first.attempts[0].durationMs).toBeGreaterThanOrEqual(0);
    // Another tenant sees none of them.
    const other = await createTenant(simConfig(["a"]));
    const none: any = await (await SELF.fetch(`https://sluice.test/admin/tenants/${other.tenant}/dead-letters`, { headers: ADMIN })).json();
    expect(none.data).toEqual([]);
  });
});

describe("mid-stream resume", () => {
  it("continues a stream cut after N chunks on the next resumable backend: one stream, exact text", async () => {
    const { tenant, key } = await createTenant(resumableConfig(["a", "b"]));
    const res = await chat(key, {
      model: "chat",
      messages: MESSAGES,
      stream: true,
      max_tokens: 40,
      sim_fault: { backend: "a", disconnect_after: 7 },
    });
    const sse = await readSse(res);
    expect(sse.error).toBeUndefined();
    expect(sse.done).toBe(true);
    expect(sse.text).toBe(expectedText(MESSAGES, 40));
    expect(sse.comments).toContain("resumed backend=b at=7");
    expect(res.headers.get("x-sluice-backend")).toBe("a");
    const ids = sse.events.filter((e) => e.data !== "[DONE]").map((e) => Number(e.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    const roles = sse.events.filter((e) => e.data.includes('"role"'));
    expect(roles).toHaveLength(1);
    expect((await gateStats(tenant)).counters.continuations).toBe(1);
  });

  it("resumes elsewhere when a backend hangs after a few tokens (idle timeout)", async () => {
    const { key } = await createTenant(resumableConfig(["a", "b"], { timeouts: { idleMs: 250 } }));
    const sse = await readSse(
      await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { backend: "a", hang: true, hang_after: 4 } }),
    );
    expect(sse.done).toBe(true);
    expect(sse.text).toBe(expectedText());
    await eventually(async () => (await simStats("a")).cancelled === 1);
  });

  it("ends with the partial error event when the only resumable backends also die, at twice maxAttempts calls", async () => {
    const { key } = await createTenant(resumableConfig(["a", "b"]));
    const sse = await readSse(
      await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 30, sim_fault: { disconnect_after: 3 } }),
    );
    expect(sse.done).toBe(false);
    // Every attempt delivers 3 tokens and dies: each made progress, so maxAttempts (3) does not
    // stop them; the cap of 2 x 3 calls does, after 18 tokens.
    expect(sse.error).toMatchObject({ partial: true, completion_tokens: 18, error: { code: "max_attempts" } });
    expect(expectedText(MESSAGES, 30).startsWith(sse.text)).toBe(true);
    expect(await totalRequests("a", "b")).toBe(6);
  });

  it("does not count continuations that delivered text against maxAttempts", async () => {
    const { tenant, key } = await createTenant(resumableConfig(["a", "b"], { retry: { maxAttempts: 2 } }));
    // Cut after 3 tokens every time: 3 + 3 + the last 2 take three calls, with maxAttempts 2.
    const sse = await readSse(
      await chat(key, { model: "chat", messages: MESSAGES, stream: true, max_tokens: 8, sim_fault: { disconnect_after: 3 } }),
    );
    expect(sse.error).toBeUndefined();
    expect(sse.done).toBe(true);
    expect(sse.text).toBe(expectedText(MESSAGES, 8));
    expect(await totalRequests("a", "b")).toBe(3);
    expect((await gateStats(tenant)).counters.continuations).toBe(2);
  });
});

describe("routing", () => {
  it("sends a request to the backend nearest the client's colo", async () => {
    const cfg = simConfig(["a", "b"]);
    const { key } = await createTenant({ ...cfg, models: { chat: { route: ["a", "b"] } } });
    const from = (latitude: string, longitude: string) =>
      SELF.fetch("https://sluice.test/v1/chat/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "chat", messages: MESSAGES }),
        cf: { latitude, longitude },
      } as RequestInit);
    const london = await from("51.5", "-0.12");
    expect(london.headers.get("x-sluice-backend")).toBe("b"); // eu-west
    await drain(london);
    const virginia = await from("38.9", "-77.0");
    expect(virginia.headers.get("x-sluice-backend")).toBe("a"); // us-east
    await drain(virginia);
  });

  it("retries in another region after a failure, before the failed backend's neighbour", async () => {
    // a and c are in us-east, b in eu-west; the plan lists a, c, b.
    const { key } = await createTenant(simConfig(["a", "c", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } });
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    await drain(res);
    expect((await simStats("c")).requests).toBe(0);
  });

  it("retries a backend that has not failed for this request before one that has", async () => {
    // a and c are in us-east, b in eu-west; the plan lists a, c, b. a and b fail.
    await simControl("b", { failRate: 1, failStatus: 503 });
    const { key } = await createTenant(simConfig(["a", "c", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } });
    // a, then b (another region), then c: not a again, though it is in the other region from b.
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("c");
    expect(res.headers.get("x-sluice-attempts")).toBe("3");
    await drain(res);
    expect((await simStats("a")).requests).toBe(1);
  });

  /**
   * A tenant whose "chat" plan is a, b, c (b alone in eu-west), after one request to "only-b" met b
   * failing every attempt (b recovers right after). Then a request to "chat" that fails on a: the
   * region rule alone would retry on b.
   */
  /**
   * Sets b up by the model that only b serves (optionally succeeding first, then failing), then
   * checks that a request whose first attempt fails on a is retried on c, not on b.
   */
  async function expectRetryPassesOverB(
    breaker: Record<string, number>,
    onlyBStatus: number,
    bRequests: number,
    bSuccessesFirst = 0,
  ): Promise<void> {
    // b (eu-west, the other region) serves a fallback model of "chat": a fresh request of "chat"
    // never probes it (a half-open backend's probe goes to its own model's requests), so only the
    // retry's choice is tested.
    const { key } = await createTenant({
      ...simConfig(["a", "b", "c"]),
      models: { chat: { route: ["a", "c"], fallbacks: ["via-b"], order: "pinned" }, "via-b": { route: ["b"] }, "only-b": { route: ["b"] } },
      breaker,
    });
    for (let i = 0; i < bSuccessesFirst; i++)
      expect(await drain(await chat(key, { model: "only-b", messages: MESSAGES, max_tokens: 3 }))).toBe(200);
    await simControl("b", { failRate: 1, failStatus: 503 });
    expect((await chat(key, { model: "only-b", messages: MESSAGES })).status).toBe(onlyBStatus);
    await simControl("b", { failRate: 0 });
    if (breaker.cooldownMs) await new Promise((r) => setTimeout(r, breaker.cooldownMs! + 50)); // past the cooldown
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 503 } });
    expect(res.headers.get("x-sluice-backend")).toBe("c");
    await drain(res);
    expect((await simStats("b")).requests).toBe(bRequests);
  }

  it("retries elsewhere before a backend that fails most of its recent attempts, though its circuit is closed", async () => {
    // Three attempts of one request fail on b; its circuit stays closed, its window says failing.
    await expectRetryPassesOverB({ consecutiveFailures: 50, minRequests: 50 }, 502, 3);
  });

  it("retries elsewhere before a backend whose last attempts all failed, though its window holds more successes", async () => {
    // The start of an outage: ten successes in b's window, then three failures in a row.
    await expectRetryPassesOverB({ consecutiveFailures: 50, minRequests: 50 }, 502, 13, 10);
  });

  it("does not spend a retry on probing a half-open backend when another can take it", async () => {
    // Two failures open b's circuit (the request then gets 503); after the cooldown it is half-open.
    await expectRetryPassesOverB({ consecutiveFailures: 2, cooldownMs: 200 }, 503, 2);
  });

  it("never sends a backend more than its maxConcurrency", async () => {
    await simControl("a", { tokensPerSecond: 50 });
    await simControl("b", { tokensPerSecond: 50 });
    const cfg = simConfig(["a", "b"], { limits: { maxConcurrency: 8 } });
    const { key } = await createTenant({ ...cfg, backends: cfg.backends.map((b) => ({ ...b, maxConcurrency: 1 })) });
    const statuses = await Promise.all(
      [1, 2, 3, 4].map(() => chat(key, { model: "chat", messages: MESSAGES, max_tokens: 10 }).then(drain)),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect((await simStats("a")).peakActive).toBe(1);
    expect((await simStats("b")).peakActive).toBe(1);
  });
});

describe("graceful degradation", () => {
  it("routes requests over the token budget to the smaller model, and says so", async () => {
    const { key } = await createTenant({
      ...simConfig(["a", "b"]),
      models: { chat: { route: ["a"], tokenBudget: { maxTokens: 100, to: "small" } }, small: { route: ["b"] } },
    });
    const res = await chat(key, { model: "chat", messages: MESSAGES, max_tokens: 120 });
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    expect(res.headers.get("x-sluice-degraded")).toBe("token-budget;from=chat;to=small");
    await drain(res);
  });

  it("routes prompts too long for a model's context to a fallback with a larger one, or answers 400", async () => {
    const cfg = simConfig(["a", "b"]);
    const { key } = await createTenant({
      ...cfg,
      backends: [
        { ...cfg.backends[0]!, contextTokens: 1000 },
        { ...cfg.backends[1]!, contextTokens: 100_000 },
      ],
      models: { chat: { route: ["a"], fallbacks: ["long"] }, long: { route: ["b"] }, short: { route: ["a"] } },
    });
    const longPrompt = [{ role: "user", content: "word ".repeat(2000) }];
    const res = await chat(key, { model: "chat", messages: longPrompt });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-degraded")).toBe("context-window;from=chat;to=long");
    await drain(res);
    const tooLong = await chat(key, { model: "short", messages: longPrompt });
    expect(tooLong.status).toBe(400);
    expect(((await tooLong.json()) as any).error).toMatchObject({
      code: "context_length_exceeded",
      message: expect.stringMatching(/1000 tokens/),
    });
  });
});
