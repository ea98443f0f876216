// POST /v1/messages (Anthropic Messages) against sims that speak only chat completions: answers,
// streams in Anthropic's event order, tools, and every promise chat keeps, in Anthropic's shapes:
// the queue's 429, 529 when every breaker is open, fallbacks, exact resume, the error event after a
// cut that cannot be resumed, replay by Idempotency-Key and joining a live generation.
import { SELF } from "cloudflare:test";
import { createParser } from "eventsource-parser";
import { beforeEach, describe, expect, it } from "vitest";
import {
  createTenant,
  eventually,
  expectedText,
  gateStats,
  holder,
  release,
  resetSims,
  resumableConfig,
  simConfig,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

const MAX = 40;
const ASK = [{ role: "user", content: "Say something deterministic." }];
/** What the sim answers the translated request (its chat messages are the same text); it runs to exactly max_tokens. */
const EXPECTED = expectedText(ASK, MAX);

function messages(key: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch("https://sluice.test/v1/messages", {
    method: "POST",
    headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "chat", max_tokens: MAX, messages: ASK, ...body }),
  });
}

/** An Anthropic stream's events, [name, data], and its accumulated text. */
async function events(res: Response): Promise<{ events: Array<[string, any]>; text: string; comments: string[] }> {
  const out: Array<[string, any]> = [];
  const comments: string[] = [];
  const parser = createParser({ onEvent: (e) => out.push([e.event ?? "", JSON.parse(e.data)]), onComment: (c) => comments.push(c.trim()) });
  parser.feed(await res.text());
  const text = out
    .filter(([n, d]) => n === "content_block_delta" && d.delta.type === "text_delta")
    .map(([, d]) => d.delta.text)
    .join("");
  return { events: out, text, comments };
}

async function expectAnthropicError(res: Response, status: number, type: string, code?: string): Promise<any> {
  expect(res.status).toBe(status);
  const body: any = await res.json();
  expect(body).toMatchObject({ type: "error", error: { type, ...(code ? { code } : {}) } });
  expect(typeof body.error.message).toBe("string");
  return body;
}

describe("POST /v1/messages", () => {
  it("answers a message: the sim's text, its stop reason (the sim runs to max_tokens), the backend's token counts", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await messages(key, {});
    expect(res.status).toBe(200);
    const message: any = await res.json();
    expect(message).toMatchObject({ type: "message", role: "assistant", stop_reason: "max_tokens", stop_sequence: null });
    expect(message.id).toMatch(/^msg_/);
    expect(message.content).toEqual([{ type: "text", text: EXPECTED }]);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBeGreaterThan(0);
  });

  it("streams in Anthropic's event order, with the backend's counts in message_delta", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await messages(key, { stream: true });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const { events: evs, text } = await events(res);
    expect(text).toBe(EXPECTED);
    const names = evs.map(([n]) => n);
    expect(names[0]).toBe("message_start");
    expect(names.slice(1, 2)).toEqual(["content_block_start"]);
    expect(names.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(evs[0]![1].message.usage.input_tokens).toBeGreaterThan(0);
    const delta = evs.find(([n]) => n === "message_delta")![1];
    expect(delta.delta.stop_reason).toBe("max_tokens");
    expect(delta.usage.output_tokens).toBeGreaterThan(0);
  });

  it("offers tools: the backend's calls come back as tool_use blocks, and a tool_result turn goes on", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const tools = [{ name: "lookup", description: "Look it up", input_schema: { type: "object", properties: { q: { type: "string" } } } }];
    const first: any = await (await messages(key, { tools })).json();
    expect(first.stop_reason).toBe("tool_use");
    const uses = first.content.filter((b: any) => b.type === "tool_use");
    expect(uses.length).toBeGreaterThan(0);
    for (const use of uses) {
      expect(use.name).toBe("lookup");
      expect(typeof use.input).toBe("object");
    }
    const streamed = await events(await messages(key, { tools, stream: true }));
    const starts = streamed.events.filter(([n, d]) => n === "content_block_start" && d.content_block.type === "tool_use");
    expect(starts.map(([, d]) => d.content_block.id)).toEqual(uses.map((u: any) => u.id));
    const next = await messages(key, {
      tools,
      messages: [
        ...ASK,
        { role: "assistant", content: first.content },
        { role: "user", content: uses.map((u: any) => ({ type: "tool_result", tool_use_id: u.id, content: "found it" })) },
      ],
    });
    expect(next.status).toBe(200);
    expect(((await next.json()) as any).type).toBe("message");
  });

  it("tells every refusal in Anthropic's shape: no key, a bad body, an unknown model, a full queue, every breaker open (529)", async () => {
    const { tenant, key } = await createTenant(
      simConfig(["a"], {
        limits: { maxConcurrency: 1, maxQueue: 0 },
        retry: { maxAttempts: 1 },
        breaker: { consecutiveFailures: 1, cooldownMs: 60_000 },
      }),
    );
    await expectAnthropicError(await messages("", {}), 401, "authentication_error", "missing_api_key");
    await expectAnthropicError(await messages(key, { max_tokens: undefined }), 400, "invalid_request_error", "invalid_request");
    await expectAnthropicError(await messages(key, { model: "nope" }), 404, "not_found_error", "model_not_found");
    const held = holder(key, "msg-full");
    await eventually(async () => (await gateStats(tenant)).inFlight === 1 && (await simStats("a")).held === 1);
    const full = await messages(key, {});
    expect(Number(full.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectAnthropicError(full, 429, "rate_limit_error", "queue_full");
    await release("msg-full");
    await (await held).arrayBuffer();
    await simControl("a", { failRate: 1, failStatus: 503 });
    await messages(key, {}).then((r) => r.arrayBuffer());
    const open = await messages(key, { stream: true });
    expect(Number(open.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectAnthropicError(open, 529, "overloaded_error", "no_backend_available");
  });

  it("falls back to another backend before the first token, as chat does", async () => {
    const { key } = await createTenant(simConfig(["a", "b"]));
    const res = await messages(key, { stream: true, sim_fault: { backend: "a", status: 503 } });
    expect(res.headers.get("x-sluice-backend")).toBe("b");
    expect((await events(res)).text).toBe(EXPECTED);
  });

  it("resumes a cut stream exactly on a resumable route; with nowhere to resume, ends with the error event, never message_stop", async () => {
    const resumable = await createTenant(resumableConfig(["a", "b"]));
    const cut = { sim_fault: { backend: "a", disconnect_after: 4 } };
    const resumed = await events(await messages(resumable.key, { stream: true, ...cut }));
    expect(resumed.text).toBe(EXPECTED);
    expect(resumed.comments.some((c) => c.startsWith("resumed backend=b"))).toBe(true);
    expect(resumed.events.at(-1)![0]).toBe("message_stop");

    const plain = await createTenant(simConfig(["a"], { retry: { maxAttempts: 1 } }));
    const broken = await events(await messages(plain.key, { stream: true, sim_fault: { disconnect_after: 4 } }));
    expect(EXPECTED.startsWith(broken.text)).toBe(true);
    expect(broken.text.length).toBeLessThan(EXPECTED.length);
    const [name, data] = broken.events.at(-1)!;
    expect(name).toBe("error");
    expect(data).toMatchObject({ type: "error", error: { type: "api_error" }, partial: true });
    expect(broken.events.some(([n]) => n === "message_stop")).toBe(false);
  });

  it("replays by Idempotency-Key in Messages' format, without a backend call; Last-Event-ID is refused (no event ids here)", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const first: any = await (await messages(key, {}, { "idempotency-key": "msg-once" })).json();
    const again = await messages(key, { stream: true }, { "idempotency-key": "msg-once" });
    expect(again.headers.get("x-sluice-replay")).toMatch(/stored|joined/);
    expect((await events(again)).text).toBe(first.content[0].text);
    expect((await simStats("a")).requests).toBe(1);
    await expectAnthropicError(
      await messages(key, { stream: true }, { "idempotency-key": "msg-once", "last-event-id": "3" }),
      400,
      "invalid_request_error",
      "invalid_last_event_id",
    );
  });

  it("joins a live generation by Idempotency-Key: one backend call, both clients get the whole message", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const hold = `msg-join-${crypto.randomUUID()}`;
    const first = messages(key, { stream: true, sim_fault: { hold, tps: 10 } }, { "idempotency-key": "msg-join" });
    await eventually(async () => (await simStats("a")).held === 1);
    // The first then takes four seconds to answer (10 tokens a second): the second arrives while it runs.
    const second = messages(key, { stream: true, sim_fault: { hold, tps: 10 } }, { "idempotency-key": "msg-join" });
    await release(hold);
    const [a, b] = await Promise.all([first, second]);
    expect(b.headers.get("x-sluice-replay")).toBe("joined");
    const [ea, eb] = await Promise.all([events(a), events(b)]);
    expect(ea.text).toBe(EXPECTED);
    expect(eb.text).toBe(EXPECTED);
    expect(eb.events.at(-1)![0]).toBe("message_stop");
    expect((await simStats("a")).requests).toBe(1);
  });

  it("is held to the tenant's rate limits, told as Anthropic's rate_limit_error with Retry-After", async () => {
    const { key } = await createTenant(simConfig(["a"], { limits: { requestsPerMinute: 1 } }));
    expect((await messages(key, {})).status).toBe(200);
    const limited = await messages(key, {});
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    await expectAnthropicError(limited, 429, "rate_limit_error", "rate_limited");
  });

  it("counts tokens with sluice's estimate, and says it is one", async () => {
    const { key } = await createTenant(simConfig(["a"]));
    const res = await SELF.fetch("https://sluice.test/v1/messages/count_tokens", {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/json" },
      body: JSON.stringify({ model: "chat", messages: ASK, system: "Be brief." }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-sluice-estimate")).toBe("characters/4");
    const counted: any = await res.json();
    expect(counted).toMatchObject({ estimated: true });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect((await simStats("a")).requests).toBe(0);
  });
});
