// The router on workerd with two regional sims that speak only chat completions, called by the
// official Anthropic SDK: messages.create, messages.stream and its accumulated finalMessage, tools
// and a tool_result turn, and a cut stream: resumed exactly where a resumable backend is, raised as
// an APIError after the partial text where none is (never a truncated answer taken for whole).
import Anthropic, { APIError } from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { agentAnswer } from "../../sim/agent";
import { expectedText } from "../../sim/text";
import { resumeTenants, startStack, type Stack } from "./harness";

let stack: Stack;
let client: Anthropic;
let plain: Anthropic;
const KEY = "sk-e2e-anthropic-0123456789";
const PLAIN_KEY = "sk-e2e-anthropic-plain-0123456789";
const MAX = 30;
const messages = [{ role: "user" as const, content: "Tell me about queues." }];
/** The sim's text for the translated request: it runs to exactly max_tokens. */
const expected = expectedText({ model: "llama-sim", messages, maxTokens: MAX });

beforeAll(async () => {
  stack = await startStack(["use1", "euw1"]);
  await resumeTenants(stack, "anthropic", { resumable: KEY, plain: PLAIN_KEY });
  // The SDK sends x-api-key and anthropic-version, and posts to `${baseURL}/v1/messages`.
  client = new Anthropic({ apiKey: KEY, baseURL: stack.router.url, maxRetries: 0 });
  plain = new Anthropic({ apiKey: PLAIN_KEY, baseURL: stack.router.url, maxRetries: 0 });
});

afterAll(() => stack?.close());

beforeEach(() => {
  for (const sim of Object.values(stack.sims)) {
    sim.configure({ failRate: 0, disconnectRate: 0, hangRate: 0 });
    sim.resetStats();
  }
});

describe("the Anthropic SDK against sluice on workerd", () => {
  it("creates a message", async () => {
    const message = await client.messages.create({ model: "chat", max_tokens: MAX, messages });
    expect(message.content).toEqual([{ type: "text", text: expected }]);
    expect(message.stop_reason).toBe("max_tokens");
    expect(message.usage.output_tokens).toBe(MAX);
    expect(message.usage.input_tokens).toBeGreaterThan(0);
  });

  it("streams a message, and the SDK's accumulated message is the whole answer with the backend's counts", async () => {
    const stream = client.messages.stream({ model: "chat", max_tokens: MAX, messages });
    let text = "";
    stream.on("text", (delta) => (text += delta));
    const message = await stream.finalMessage();
    expect(text).toBe(expected);
    expect(message.content).toEqual([{ type: "text", text: expected }]);
    expect(message.usage.output_tokens).toBe(MAX);
  });

  it("calls tools, and goes on after the tool results", async () => {
    const tools = [
      { name: "lookup", description: "Look a word up", input_schema: { type: "object" as const, properties: { q: { type: "string" } } } },
    ];
    const stream = client.messages.stream({ model: "chat", max_tokens: 200, messages, tools });
    const message = await stream.finalMessage();
    expect(message.stop_reason).toBe("tool_use");
    const uses = message.content.filter((b) => b.type === "tool_use");
    // The sim's calls, whole: ids, names and arguments, as the chat request gets them.
    const sim = agentAnswer({ model: "llama-sim", messages, maxTokens: 200, tools: ["lookup"] });
    expect(uses.map((u) => ({ id: u.id, name: u.name, input: u.input }))).toEqual(
      sim.toolCalls.map((c) => ({ id: c.id, name: c.name, input: JSON.parse(c.arguments) })),
    );
    const next = await client.messages.create({
      model: "chat",
      max_tokens: MAX,
      tools,
      messages: [
        ...messages,
        { role: "assistant", content: message.content },
        { role: "user", content: uses.map((u) => ({ type: "tool_result" as const, tool_use_id: u.id, content: "a queue is a line" })) },
      ],
    });
    expect(next.type).toBe("message");
  });

  it("gets a cut stream whole where a backend can resume it", async () => {
    stack.sims.use1!.configure({ disconnectRate: 1 });
    const message = await client.messages.stream({ model: "chat", max_tokens: MAX, messages }).finalMessage();
    expect(message.content).toEqual([{ type: "text", text: expected }]);
    expect(stack.sims.use1!.stats().disconnectedInjected).toBe(1);
  });

  it("raises an APIError after the partial text where none can: never a truncated message", async () => {
    stack.sims.use1!.configure({ disconnectRate: 1 });
    const stream = plain.messages.stream({ model: "chat", max_tokens: MAX, messages });
    let text = "";
    stream.on("text", (delta) => (text += delta));
    const error = await stream.finalMessage().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).message).toMatch(/attempts failed|broke/);
    expect(text.length).toBeGreaterThan(0);
    expect(expected.startsWith(text)).toBe(true);
    expect(text.length).toBeLessThan(expected.length);
  });

  it("tells a refusal as the SDK's typed error", async () => {
    const error = await client.messages.create({ model: "missing", max_tokens: 5, messages }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(Anthropic.NotFoundError);
    expect((error as APIError).error).toMatchObject({ type: "error", error: { type: "not_found_error", code: "model_not_found" } });
  });
});
