// The router on workerd with two regional sims, called by the official openai SDK.
import OpenAI, { APIError, toFile } from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually";
import { agentAnswer, agentDeltas } from "../../sim/agent";
import { expectedText } from "../../sim/text";
import { embeddingOf } from "../../sim/embeddings";
import { startStack, type Stack } from "./harness";

let stack: Stack;
let client: OpenAI;
const KEY = "sk-e2e-0123456789abcdef";
const messages = [{ role: "user" as const, content: "Tell me about queues." }];
const expected = (maxTokens?: number) => expectedText({ model: "llama-sim", messages, maxTokens });

beforeAll(async () => {
  stack = await startStack(["use1", "euw1"]);
  const url = (id: string) => `http://127.0.0.1:${stack.sims[id]!.port}/v1`;
  await stack.createTenant(
    "e2e",
    {
      backends: [
        { id: "use1", region: "us-east", url: url("use1"), model: "llama-sim" },
        { id: "euw1", region: "eu-west", url: url("euw1"), model: "llama-sim" },
      ],
      models: { chat: { route: ["use1", "euw1"], order: "pinned" } },
    },
    KEY,
  );
  client = new OpenAI({ apiKey: KEY, baseURL: `${stack.router.url}/v1`, maxRetries: 0 });
});

afterAll(() => stack?.close());

beforeEach(() => {
  for (const sim of Object.values(stack.sims)) {
    sim.configure({ failRate: 0, disconnectRate: 0, hangRate: 0 });
    sim.resetStats();
  }
});

describe("openai SDK against sluice on workerd", () => {
  it("streams a completion", async () => {
    const stream = await client.chat.completions.create({ model: "chat", messages, stream: true });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(expected());
    expect(finish).toBe("stop");
  });

  it("answers a non-streaming completion", async () => {
    const completion = await client.chat.completions.create({ model: "chat", messages, max_tokens: 12 });
    expect(completion.choices[0]!.message.content).toBe(expected(12));
    expect(completion.choices[0]!.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(12);
  });

  it("lists the tenant's models", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["chat"]);
  });

  it("falls back to the other region when the first answers 503", async () => {
    stack.sims.use1!.configure({ failRate: 1, failStatus: 503 });
    const { data, response } = await client.chat.completions.create({ model: "chat", messages, stream: true }).withResponse();
    let text = "";
    for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(expected());
    expect(response.headers.get("x-sluice-backend")).toBe("euw1");
    expect(stack.sims.use1!.stats().failedInjected).toBe(1);
  });

  it("raises an APIError after the partial text when a stream dies mid-way", async () => {
    const stream = await client.chat.completions.create({
      model: "chat",
      messages,
      stream: true,
      // Unknown to sluice and passed through: both sims cut the stream after 4 tokens.
      ...({ sim_fault: { disconnect_after: 4 } } as object),
    });
    let text = "";
    let caught: unknown;
    try {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(APIError);
    expect((caught as APIError).message).toMatch(/resume|closed the stream/);
    expect(text.length).toBeGreaterThan(0);
    expect(expected().startsWith(text)).toBe(true);
    expect(text).not.toBe(expected());
  });

  it("maps a full queue to a 429 RateLimitError", async () => {
    await stack.createTenant(
      "tiny",
      {
        backends: [{ id: "use1", region: "us-east", url: `http://127.0.0.1:${stack.sims.use1!.port}/v1`, model: "llama-sim" }],
        models: { chat: { route: ["use1"] } },
        limits: { maxConcurrency: 1, maxQueue: 0 },
      },
      "sk-e2e-tiny-0123456789",
    );
    const tiny = new OpenAI({ apiKey: "sk-e2e-tiny-0123456789", baseURL: `${stack.router.url}/v1`, maxRetries: 0 });
    // Holds the only slot (in the sim, before its first token) until the 429 is seen.
    const slow = tiny.chat.completions.create({ model: "chat", messages, ...({ sim_fault: { hold: "tiny" } } as object) });
    await eventually(() => stack.sims.use1!.stats().held === 1);
    await expect(tiny.chat.completions.create({ model: "chat", messages })).rejects.toMatchObject({ status: 429 });
    stack.sims.use1!.release("tiny");
    await slow;
  });

  it("reconnects a dropped stream with Idempotency-Key and Last-Event-ID, ending with the exact text", async () => {
    stack.sims.use1!.configure({ tokensPerSecond: 60 });
    const body = { model: "chat", messages, stream: true as const, max_tokens: 40 };
    const headers = { "Idempotency-Key": `e2e-${Date.now()}` };
    let text = "";
    let lastEventId = 0;
    const first = await client.chat.completions.create(body, { headers });
    for await (const chunk of first) {
      lastEventId++;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (lastEventId === 6) first.controller.abort(); // the connection drops
    }
    expect(lastEventId).toBe(6);
    const rest = await client.chat.completions.create(body, { headers: { ...headers, "Last-Event-ID": String(lastEventId) } });
    for await (const chunk of rest) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe(expected(40));
    expect(stack.sims.use1!.stats().requests).toBe(1);
    stack.sims.use1!.configure({ tokensPerSecond: 400 });
  });
});

describe("headers over the runtime's limit", () => {
  it("are refused by the runtime before sluice runs (plain 431, as README says); large ones below it reach sluice", async () => {
    const post = (size: number) =>
      fetch(`${stack.router.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "x-padding": "a".repeat(size) },
        body: JSON.stringify({ model: "nope", messages }),
      });
    const below = await post(60_000);
    expect(below.status).toBe(404);
    expect(((await below.json()) as any).error.code).toBe("model_not_found");
    const over = await post(200_000);
    expect(over.status).toBe(431);
    expect(over.headers.get("content-type")).toContain("text/plain");
    await over.arrayBuffer();
  });
});

describe("tool calls with the SDK's streaming helper, through breaks", () => {
  const KEY_AGENT = "sk-e2e-agent-0123456789";
  const tools = ["search", "fetch"].map((name) => ({
    type: "function" as const,
    function: { name, parameters: { type: "object", properties: {} } },
  }));
  const toolNames = tools.map((t) => t.function.name);
  let agent: OpenAI;

  beforeAll(async () => {
    const url = (id: string) => `http://127.0.0.1:${stack.sims[id]!.port}/v1`;
    await stack.createTenant(
      "e2e-agent",
      {
        backends: ["use1", "euw1"].map((id) => ({ id, region: "us-east", url: url(id), model: "llama-sim", resume: true })),
        models: { chat: { route: ["use1", "euw1"], order: "pinned" } },
      },
      KEY_AGENT,
    );
    agent = new OpenAI({ apiKey: KEY_AGENT, baseURL: `${stack.router.url}/v1`, maxRetries: 0 });
  });

  /** A conversation whose answer makes at least two tool calls. */
  const twoCalls = () => {
    for (let i = 0; ; i++) {
      const m = [{ role: "user" as const, content: `Research it, take ${i}.` }];
      if (agentAnswer({ model: "llama-sim", messages: m, tools: toolNames }).toolCalls.length >= 2) return m;
    }
  };
  const finalCalls = async (messagesIn: ReturnType<typeof twoCalls>, fault?: object) => {
    const stream = agent.chat.completions.stream({
      model: "chat",
      messages: messagesIn,
      tools,
      ...(fault ? { sim_fault: fault } : {}),
    } as never);
    const done = await stream.finalChatCompletion();
    return done.choices[0]!.message.tool_calls?.map((c) => (c.type === "function" ? { id: c.id, ...c.function } : c));
  };

  it("ends with the uninterrupted calls, or an APIError: never a corrupted call", async () => {
    const conversation = twoCalls();
    const truth = agentAnswer({ model: "llama-sim", messages: conversation, tools: toolNames }).toolCalls;
    const asCalls = truth.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }));
    expect(await finalCalls(conversation)).toEqual(asCalls);
    // Between the two calls: regenerated, checked, carried on.
    const afterFirst = agentDeltas(agentAnswer({ model: "llama-sim", messages: conversation, tools: toolNames })).findIndex(
      (d) => (d.tool_calls as Array<{ index: number }>)[0]!.index === 1,
    );
    expect(await finalCalls(conversation, { backend: "use1", disconnect_after: afterFirst })).toEqual(asCalls);
    // Inside the first call's arguments: regenerated and checked too.
    expect(await finalCalls(conversation, { backend: "use1", disconnect_after: 3 })).toEqual(asCalls);
    // Every backend breaks there: the helper raises instead of handing out half a call.
    await expect(finalCalls(conversation, { disconnect_after: 3 })).rejects.toBeInstanceOf(APIError);
  });
});

describe("openai SDK: files and batches", () => {
  it("uploads a batch file, creates a batch, polls it to completion and downloads every line's answer", async () => {
    const questions = Array.from({ length: 12 }, (_, i) => [{ role: "user" as const, content: `Batch question ${i}.` }]);
    const jsonl = questions
      .map((m, i) =>
        JSON.stringify({ custom_id: `q${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "chat", messages: m } }),
      )
      .join("\n");
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), "questions.jsonl"), purpose: "batch" });
    expect(file).toMatchObject({ object: "file", purpose: "batch", bytes: Buffer.byteLength(jsonl), filename: "questions.jsonl" });
    const created = await client.batches.create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    let batch = created;
    await eventually(async () => {
      batch = await client.batches.retrieve(created.id);
      return batch.status === "completed";
    }, 60_000);
    expect(batch.request_counts).toEqual({ total: 12, completed: 12, failed: 0 });
    expect((await client.batches.list()).data.map((b) => b.id)).toContain(created.id);
    const output = await (await client.files.content(batch.output_file_id!)).text();
    const lines = output
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(questions.map((_, i) => `q${i}`));
    for (const [i, l] of lines.entries()) {
      expect(l.response.status_code).toBe(200);
      expect(l.response.body.choices[0].message.content).toBe(
        expectedText({ model: "llama-sim", messages: questions[i]!, maxTokens: undefined }),
      );
    }
    // Each line generated once.
    expect(Object.values(stack.sims).reduce((n, s) => n + s.stats().requests, 0)).toBe(12);
  });
});

describe("openai SDK embeddings against sluice on workerd", () => {
  it("gets the backend's vectors: base64 (the SDK's default, decoded by it) and float alike", async () => {
    const asked = await client.embeddings.create({ model: "chat", input: ["a queue", "a lease"] });
    expect(asked.data.map((d) => d.embedding)).toEqual([embeddingOf("llama-sim", "a queue"), embeddingOf("llama-sim", "a lease")]);
    const floats = await client.embeddings.create({ model: "chat", input: "a queue", encoding_format: "float", dimensions: 3 });
    expect(floats.data[0]!.embedding).toEqual(embeddingOf("llama-sim", "a queue", 3));
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
  });
});
