// The simulated backend on its own: protocol, determinism, faults, saturation, 1,000 streams.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually";
import { readSse, SseTranscript } from "../support/sse-transcript";
import { SimServer } from "../../sim/server";
import { expectedText } from "../../sim/text";

let sim: SimServer;
let base: string;
const messages = [{ role: "user", content: "hello sim" }];

beforeAll(async () => {
  sim = new SimServer({ id: "s1", port: 0, tokensPerSecond: 200, firstTokenMs: 5 });
  base = `http://127.0.0.1:${await sim.listen()}`;
});
afterAll(() => sim.close());
beforeEach(() => {
  sim.configure({ failRate: 0, disconnectRate: 0, hangRate: 0, maxConcurrency: 256, tokensPerSecond: 200 });
  sim.resetStats();
});

async function stream(body: Record<string, unknown>, headers: Record<string, string> = {}, signal?: AbortSignal) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "m", messages, stream: true, ...body }),
    signal,
  });
  const out = { status: res.status, text: "", done: false, finish: null as string | null, broken: false, chunks: 0 };
  if (res.status !== 200) return out;
  const transcript = new SseTranscript();
  try {
    await readSse(res, undefined, transcript);
  } catch {
    out.broken = true;
  }
  return { ...out, text: transcript.text, done: transcript.done, finish: transcript.finishReason, chunks: transcript.chunks };
}

describe("sim", () => {
  it("streams the deterministic completion, OpenAI-style", async () => {
    const r = await stream({});
    expect(r).toMatchObject({ status: 200, done: true, finish: "stop", text: expectedText({ model: "m", messages }) });
    const r2 = await stream({ max_tokens: 7 });
    expect(r2).toMatchObject({ finish: "length", text: expectedText({ model: "m", messages, maxTokens: 7 }) });
    expect(sim.stats()).toMatchObject({ requests: 2, completed: 2 });
  });

  it("continues a partial answer with continue_final_message", async () => {
    const full = expectedText({ model: "m", messages, maxTokens: 20 });
    const partial = full.split(" ").slice(0, 6).join(" ");
    const r = await stream({
      messages: [...messages, { role: "assistant", content: partial }],
      continue_final_message: true,
      add_generation_prompt: false,
      max_tokens: 14,
    });
    expect(partial + r.text).toBe(full);
  });

  it("injects failures, Retry-After, disconnects and hangs", async () => {
    const fail = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "x-sim-fault": JSON.stringify({ status: 429, retry_after: 3 }) },
      body: JSON.stringify({ model: "m", messages, stream: true }),
    });
    expect(fail.status).toBe(429);
    expect(fail.headers.get("retry-after")).toBe("3");
    await fail.arrayBuffer();
    const cut = await stream({ sim_fault: { disconnect_after: 4 } });
    expect(cut).toMatchObject({ done: false, broken: true });
    expect(cut.text).toBe(expectedText({ model: "m", messages }).split(" ").slice(0, 4).join(" "));
    const other = await stream({ sim_fault: { backend: "elsewhere", status: 500 } });
    expect(other.done).toBe(true);
    // A fault for one model: another model on the same sim answers.
    expect((await stream({ sim_fault: { model: "other-model", status: 500 } })).done).toBe(true);
    expect((await stream({ sim_fault: { model: "m", status: 503 } })).status).toBe(503);
    const controller = new AbortController();
    const hung = stream({ sim_fault: { hang: true, hang_after: 2 } }, {}, controller.signal).catch(() => null);
    await eventually(() => sim.stats().hung === 1);
    expect(sim.stats()).toMatchObject({ hung: 1, active: 1 });
    controller.abort();
    await hung;
    await eventually(() => sim.stats().cancelled === 1);
    expect(sim.stats()).toMatchObject({ failedInjected: 2, disconnectedInjected: 1, cancelled: 1, active: 0 });
  });

  it("queues generations beyond maxConcurrency, like a saturated GPU", async () => {
    sim.configure({ maxConcurrency: 2, tokensPerSecond: 100 });
    // Held before their first token until all four are in: two take the slots, two wait.
    const all = Promise.all([1, 2, 3, 4].map(() => stream({ max_tokens: 10, sim_fault: { hold: "gpu" } })));
    await eventually(() => sim.stats().requests === 4);
    expect(sim.stats()).toMatchObject({ active: 2, waiting: 2, held: 4 });
    const released = Date.now();
    sim.release("gpu");
    await all;
    // Two rounds of 10 tokens at 100 tokens/s, one after the other: at least 200 ms (a slow machine takes longer, never less).
    expect(Date.now() - released).toBeGreaterThanOrEqual(190);
    expect(sim.stats().peakActive).toBe(2);
  });

  it("takes a prefill's time for the prompt tokens its prefix cache does not hold, and ten times as long on a slow start", async () => {
    // 1,000 prompt tokens at 2,000 a second: at least 500 ms to the first token (a slow machine takes longer, never less).
    sim.configure({ prefixCacheBlocks: 100, prefillTokensPerSecond: 2_000, firstTokenMs: 5 });
    const long = [{ role: "user", content: "x".repeat(4_000) }];
    const started = Date.now();
    expect((await stream({ messages: long, max_tokens: 1 })).done).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(sim.stats()).toMatchObject({ prefixQueryTokens: 1_002, prefixHitTokens: 0 });
    // The same prompt again: all of it found in the cache.
    await stream({ messages: long, max_tokens: 1 });
    expect(sim.stats()).toMatchObject({ prefixQueryTokens: 2_004, prefixHitTokens: 1_002 });
    // Every start slow, ten times firstTokenMs: at least 300 ms.
    sim.configure({ prefixCacheBlocks: 0, prefillTokensPerSecond: 0, firstTokenMs: 30, slowStartRate: 1 });
    const slow = Date.now();
    await stream({ max_tokens: 1 });
    expect(Date.now() - slow).toBeGreaterThanOrEqual(300);
    sim.configure({ firstTokenMs: 5, slowStartRate: 0 });
  });

  it("holds 1,000 concurrent streams", async () => {
    sim.configure({ maxConcurrency: 2000, tokensPerSecond: 100 });
    // Each generation is held before its first token until all 1,000 are in: a peak that does not
    // depend on how fast this machine opens connections.
    const pending = Array.from({ length: 1000 }, (_, i) =>
      stream({ max_tokens: 20, messages: [{ role: "user", content: `n${i}` }], sim_fault: { hold: "all" } }),
    );
    await eventually(() => sim.stats().held === 1000, 30_000);
    expect(sim.stats()).toMatchObject({ active: 1000, waiting: 0, peakActive: 1000 });
    expect(sim.release("all")).toBe(1000);
    const results = await Promise.all(pending);
    expect(results.every((r) => r.done && r.finish === "length")).toBe(true);
    expect(sim.stats()).toMatchObject({ completed: 1000, tokens: 20000, held: 0 });
  });
});
