// What people build on the official SDKs, against sluice on workerd with sims that speak only chat
// completions: the Vercel AI SDK's Anthropic provider (Messages) and its OpenAI Responses model, and
// the OpenAI Agents SDK running a two-turn agent with a function tool (Responses, with its
// previous_response_id chain or the whole history).
import { createAnthropic } from "@ai-sdk/anthropic";
import { createOpenAI } from "@ai-sdk/openai";
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled, tool } from "@openai/agents";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as z from "zod";
import { expectedText } from "../../sim/text";
import { startStack, type Stack } from "./harness";

let stack: Stack;
const KEY = "sk-e2e-sdks-0123456789";
const PROMPT = "Tell me about queues.";

beforeAll(async () => {
  stack = await startStack(["use1"]);
  await stack.createTenant(
    "sdks",
    {
      backends: [{ id: "use1", region: "us-east", url: `http://127.0.0.1:${stack.sims.use1!.port}/v1`, model: "llama-sim" }],
      models: { chat: { route: ["use1"] } },
    },
    KEY,
  );
  setTracingDisabled(true);
});

afterAll(() => stack?.close());

describe("the Vercel AI SDK", () => {
  it("through its Anthropic provider: generateText and streamText get the sim's text", async () => {
    const anthropic = createAnthropic({ baseURL: `${stack.router.url}/v1`, apiKey: KEY });
    const expected = expectedText({ model: "llama-sim", messages: [{ role: "user", content: PROMPT }], maxTokens: 20 });
    const generated = await generateText({ model: anthropic("chat"), prompt: PROMPT, maxOutputTokens: 20, maxRetries: 0 });
    expect(generated.text).toBe(expected);
    expect(generated.usage.outputTokens).toBe(20);
    const streamed = streamText({ model: anthropic("chat"), prompt: PROMPT, maxOutputTokens: 20, maxRetries: 0 });
    let text = "";
    for await (const part of streamed.textStream) text += part;
    expect(text).toBe(expected);
  });

  it("through its OpenAI Responses model: generateText gets the sim's text", async () => {
    const openai = createOpenAI({ baseURL: `${stack.router.url}/v1`, apiKey: KEY });
    const generated = await generateText({ model: openai.responses("chat"), prompt: PROMPT, maxRetries: 0 });
    expect(generated.text).toBe(expectedText({ model: "llama-sim", messages: [{ role: "user", content: PROMPT }] }));
  });
});

describe("the OpenAI Agents SDK", () => {
  it("runs a two-turn agent: the model calls the function tool, the agent runs it, the model answers with its result", async () => {
    setDefaultOpenAIClient(new OpenAI({ baseURL: `${stack.router.url}/v1`, apiKey: KEY, maxRetries: 0 }));
    setOpenAIAPI("responses");
    const looked: string[] = [];
    const lookup = tool({
      name: "lookup",
      description: "Look a word up",
      parameters: z.object({ query: z.string(), limit: z.number() }),
      execute: async ({ query }) => {
        looked.push(query);
        return `${query}: a line of things waiting their turn`;
      },
    });
    const agent = new Agent({ name: "librarian", instructions: "Answer with what the lookup says.", model: "chat", tools: [lookup] });
    const result = await run(agent, PROMPT);
    expect(looked.length).toBeGreaterThan(0);
    expect(typeof result.finalOutput).toBe("string");
    expect((result.finalOutput as string).length).toBeGreaterThan(0);
    // Two model calls: the tool calls, then the answer.
    expect(result.rawResponses).toHaveLength(2);
  });
});
