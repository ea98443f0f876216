// The router on workerd with sims that speak only chat completions, called by the openai SDK's
// Responses API: responses.create, responses.stream and its finalResponse, function tools and a
// turn with their outputs by previous_response_id, and a cut stream: resumed exactly where a
// backend can, raised as an APIError where none can (never a failed response taken for an answer).
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { agentAnswer } from "../../sim/agent";
import { expectedText } from "../../sim/text";
import { resumeTenants, startStack, type Stack } from "./harness";
import { eventually } from "../support/eventually";

let stack: Stack;
let client: OpenAI;
let plain: OpenAI;
const KEY = "sk-e2e-responses-0123456789";
const PLAIN_KEY = "sk-e2e-responses-plain-0123456789";
const ASK = "Tell me about queues.";
const user = [{ role: "user", content: ASK }];

beforeAll(async () => {
  stack = await startStack(["use1", "euw1"]);
  await resumeTenants(stack, "responses", { resumable: KEY, plain: PLAIN_KEY });
  client = new OpenAI({ apiKey: KEY, baseURL: `${stack.router.url}/v1`, maxRetries: 0 });
  plain = new OpenAI({ apiKey: PLAIN_KEY, baseURL: `${stack.router.url}/v1`, maxRetries: 0 });
});

afterAll(() => stack?.close());

beforeEach(() => {
  for (const sim of Object.values(stack.sims)) {
    sim.configure({ failRate: 0, disconnectRate: 0, hangRate: 0 });
    sim.resetStats();
  }
});

describe("the openai SDK's Responses API against sluice on workerd", () => {
  it("creates a response, and streams one to the same final response", async () => {
    const created = await client.responses.create({ model: "chat", input: ASK });
    expect(created.status).toBe("completed");
    expect(created.output_text).toBe(expectedText({ model: "llama-sim", messages: user }));
    const stream = client.responses.stream({ model: "chat", input: ASK });
    let text = "";
    stream.on("response.output_text.delta", (e) => (text += e.delta));
    const final = await stream.finalResponse();
    expect(text).toBe(created.output_text);
    expect(final.output_text).toBe(created.output_text);
    expect(final.usage?.output_tokens).toBeGreaterThan(0);
  });

  it("calls function tools, and goes on after their outputs by previous_response_id", async () => {
    const tools = [
      { type: "function" as const, name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } }, strict: false },
    ];
    const first = await client.responses.stream({ model: "chat", input: ASK, tools }).finalResponse();
    const calls = first.output.filter((i) => i.type === "function_call");
    const sim = agentAnswer({ model: "llama-sim", messages: user, tools: ["lookup"] });
    expect(calls.map((c) => ({ call_id: c.call_id, name: c.name, arguments: c.arguments }))).toEqual(
      sim.toolCalls.map((t) => ({ call_id: t.id, name: t.name, arguments: t.arguments })),
    );
    const second = await client.responses.create({
      model: "chat",
      tools,
      previous_response_id: first.id,
      input: calls.map((c) => ({ type: "function_call_output" as const, call_id: c.call_id, output: "a queue is a line" })),
    });
    expect(second.status).toBe("completed");
    expect(second.previous_response_id).toBe(first.id);
    expect((await client.responses.retrieve(second.id)).id).toBe(second.id);
  });

  it("gets a cut stream whole where a backend can resume it", async () => {
    stack.sims.use1!.configure({ disconnectRate: 1 });
    const final = await client.responses.stream({ model: "chat", input: ASK }).finalResponse();
    expect(final.output_text).toBe(expectedText({ model: "llama-sim", messages: user }));
    expect(stack.sims.use1!.stats().disconnectedInjected).toBe(1);
  });

  it("raises an APIError after the partial text where none can", async () => {
    stack.sims.use1!.configure({ disconnectRate: 1 });
    const stream = plain.responses.stream({ model: "chat", input: ASK });
    let text = "";
    stream.on("response.output_text.delta", (e) => (text += e.delta));
    const error = await stream.finalResponse().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(APIError);
    expect(text.length).toBeGreaterThan(0);
    expect(expectedText({ model: "llama-sim", messages: user }).startsWith(text)).toBe(true);
  });

  it("runs a response in the background: polled with retrieve, its stream re-attached after a sequence number, cancelled", async () => {
    const queued = await client.responses.create({ model: "chat", input: ASK, background: true });
    expect(queued.status).toBe("queued");
    let polled = queued;
    await eventually(async () => (polled = await client.responses.retrieve(queued.id)).status === "completed", 60_000);
    expect(polled.output_text).toBe(expectedText({ model: "llama-sim", messages: user }));

    // Streamed in the background: the SDK's stream, then the same response's events again after #3.
    const seen: Array<{ type: string; sequence_number: number }> = [];
    const live = client.responses.stream({ model: "chat", input: ASK, background: true });
    live.on("event", (e) => seen.push(e));
    const final = await live.finalResponse();
    const again: typeof seen = [];
    for await (const e of await client.responses.retrieve(final.id, { stream: true, starting_after: 3 })) again.push(e);
    expect(again).toEqual(seen.slice(4));
    const resumed = await client.responses.stream({ response_id: final.id, starting_after: 3 }).finalResponse();
    expect(resumed.output_text).toBe(final.output_text);

    // Held before its first token, so it is still queued or running when cancelled.
    const hold = `e2e-${Date.now()}`;
    const held = await client.responses.create({ model: "chat", input: ASK, background: true, sim_fault: { hold } } as never);
    const cancelled = await client.responses.cancel((held as { id: string }).id);
    expect(cancelled.status).toBe("cancelled");
    for (const sim of Object.values(stack.sims)) sim.release(hold);
    expect((await client.responses.retrieve(cancelled.id)).status).toBe("cancelled");
  });
});
