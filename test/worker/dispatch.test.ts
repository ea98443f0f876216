// Dispatch and relay against real sims: fallback before the first token, mid-stream death,
// timeouts, and what the client sees in each case.
import { beforeEach, describe, expect, it } from "vitest";
import { completionFor } from "../../sim/text";
import {
  chat,
  createTenant,
  eventually,
  expectedText,
  gateStats,
  MESSAGES,
  readSse,
  resetSims,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

describe("fallback before the first token", () => {
  it("moves to the next backend when the first answers 503, invisibly to the client", async () => {
    const { key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { backend: "a", status: 503 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    expect(res.headers.get("x-sluice-attempts")).toBe("2");
    const sse = await readSse(res);
    expect(sse.text).toBe(expectedText());
    expect(sse.done).toBe(true);
    expect(sse.error).toBeUndefined();
    expect((await simStats("a")).failedInjected).toBe(1);
  });

  it("moves on when a backend refuses connections", async () => {
    const { key } = await createTenant({
      backends: [
        { id: "dead", region: "us-east", url: "http://127.0.0.1:9/v1", model: "sim-model" },
        { id: "b", region: "eu-west", url: `http://127.0.0.1:${(await import("cloudflare:test")).env.SIM_PORTS.b}/v1`, model: "sim-model" },
      ],
      models: { chat: { route: ["dead", "b"], order: "pinned" } },
    });
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    expect(((await res.json()) as any).choices[0].message.content).toBe(expectedText());
  });

  it("moves on when no first token arrives within firstTokenMs, cancelling the hung attempt", async () => {
    const { key } = await createTenant(simConfig(["a", "b"], { timeouts: { firstTokenMs: 300 } }));
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { backend: "a", hang: true } });
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    expect((await readSse(res)).text).toBe(expectedText());
    await eventually(async () => (await simStats("a")).cancelled === 1);
  });

  it("falls back to the fallback model's backends after the alias's own", async () => {
    const { key } = await createTenant({
      ...simConfig(["a", "b", "c"]),
      models: { chat: { route: ["a", "b"], fallbacks: ["small"] }, small: { route: ["c"] } },
      retry: { maxAttempts: 3 },
    });
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { status: 500, backend: "a" }, max_tokens: 8 }, {});
    expect(res.status).toBe(200);
    const both = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { status: 503 } });
    // Every sim fails: three attempts, a, b, then the fallback's c.
    expect(both.status).toBe(502);
    expect((await simStats("c")).requests).toBe(1);
  });

  it("does the same for non-streaming requests and answers JSON", async () => {
    const { key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 429, retry_after: 0 } });
    expect(res.status).toBe(200);
    const body: any = await res.json();
    expect(body).toMatchObject({
      object: "chat.completion",
      choices: [{ message: { role: "assistant", content: expectedText() }, finish_reason: "stop" }],
    });
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(res.headers.get("x-sluice-backend")).toBe("b");
  });

  it("passes a backend's 400 on without retrying", async () => {
    const { key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, sim_fault: { backend: "a", status: 400 } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.code).toBe("upstream_http_400");
    expect((await simStats("b")).requests).toBe(0);
  });
});

describe("mid-stream failure", () => {
  it("sends the partial-completion error event and no [DONE] when no backend can resume", async () => {
    const { tenant, key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { disconnect_after: 5 } });
    expect(res.status).toBe(200);
    const sse = await readSse(res);
    expect(sse.done).toBe(false);
    expect(sse.error).toMatchObject({
      partial: true,
      completion_tokens: 5,
      error: { type: "upstream_error", code: "no_resumable_backend" },
    });
    expect(expectedText().startsWith(sse.text)).toBe(true);
    expect(sse.text.length).toBeGreaterThan(0);
    expect(sse.text).not.toBe(expectedText());
    // Chunk events are numbered 1..n for Last-Event-ID.
    const ids = sse.events.filter((e) => e.event !== "error").map((e) => Number(e.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1));
    await eventually(async () => (await gateStats(tenant)).counters.partial === 1);
  });

  it("cuts a stream whose backend goes silent after a few tokens (idle timeout)", async () => {
    const { key } = await createTenant(simConfig(["a"], { timeouts: { idleMs: 300 } }));
    const res = await chat(key, { model: "chat", messages: MESSAGES, stream: true, sim_fault: { hang: true, hang_after: 3 } });
    const sse = await readSse(res);
    expect(sse.error).toMatchObject({ partial: true, completion_tokens: 3 });
    expect(sse.error!.error.message).toMatch(/no token for 300 ms/);
    await eventually(async () => (await simStats("a")).cancelled === 1);
  });

  it("relays every event of a backend with minimal chunks before it goes silent", async () => {
    // Reads wait for a minimum number of bytes; events this small must still never be held back.
    const { key } = await createTenant(simConfig(["a"], { timeouts: { idleMs: 300 } }));
    const res = await chat(key, {
      model: "chat",
      messages: MESSAGES,
      stream: true,
      sim_fault: { compact: true, hang: true, hang_after: 4 },
    });
    const sse = await readSse(res);
    expect(sse.error).toMatchObject({ partial: true, completion_tokens: 4 });
    expect(sse.text).toBe(completionFor({ model: "sim-model", messages: MESSAGES }).tokens.slice(0, 4).join(""));
  });

  it("retries a non-streaming request from scratch, since the client has seen nothing", async () => {
    await simControl("a", { disconnectRate: 1 });
    const { tenant, key } = await createTenant(simConfig(["a", "b"]));
    const res = await chat(key, { model: "chat", messages: MESSAGES });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).choices[0].message.content).toBe(expectedText());
    // What a had generated before it broke was dropped: wasted on a, as "restarted".
    await eventually(async () => (await gateStats(tenant)).backends.find((x: any) => x.id === "a").wastedTokens.restarted > 0);
    const stats = await gateStats(tenant);
    const [onA, onB] = ["a", "b"].map((id) => stats.backends.find((x: any) => x.id === id).wastedTokens);
    expect(onB).toEqual({ regenerated: 0, restarted: 0 });
    expect(onA.regenerated).toBe(0);
    expect(stats.counters.wastedTokens).toBe(onA.restarted);
  });
});
