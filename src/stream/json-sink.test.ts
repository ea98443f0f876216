import { describe, expect, it } from "vitest";
import { JsonSink } from "./json-sink";
import type { ClientChunk } from "./relay";
import type { ClientSink } from "./sink";

const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}): ClientChunk => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1_700_000_000,
  model: "chat",
  choices: [{ index: 0, delta, finish_reason: null }],
  ...extra,
});
const finishing = (reason: string): ClientChunk => ({ ...chunk({}), choices: [{ index: 0, delta: {}, finish_reason: reason }] });
const toolDelta = (index: unknown, fn: Record<string, string>, head: Record<string, string> = {}) =>
  chunk({ tool_calls: [{ index, ...head, function: fn }] });

async function answer(chunks: ClientChunk[], beforeFinish?: (sink: JsonSink) => void): Promise<any> {
  const sink = new JsonSink(() => ({ "x-sluice-request-id": "r1" }));
  await sink.send(chunks.map((c) => ({ chunk: c, json: JSON.stringify(c) })));
  beforeFinish?.(sink);
  await sink.finish();
  const res = await sink.response;
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("x-sluice-request-id")).toBe("r1");
  return res.json();
}

describe("JsonSink", () => {
  it("joins content deltas into one chat.completion with the last usage", async () => {
    const body = await answer([
      chunk({ role: "assistant", content: "" }),
      chunk({ content: "Hello, " }),
      chunk({ content: "world" }),
      finishing("stop"),
      { ...chunk({}), choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } },
    ]);
    expect(body).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "chat",
      choices: [{ index: 0, message: { role: "assistant", content: "Hello, world" }, finish_reason: "stop", logprobs: null }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
  });

  it("assembles tool calls from fragments split anywhere, as the streaming client would", async () => {
    const body = await answer([
      chunk({ role: "assistant", content: null }),
      toolDelta(0, { name: "get_", arguments: "" }, { id: "call_a", type: "function" }),
      toolDelta(0, { name: "weather", arguments: '{"ci' }),
      toolDelta(1, { name: "get_time", arguments: "" }, { id: "call_b", type: "function" }),
      toolDelta(0, { arguments: 'ty":"Oslo"}' }),
      toolDelta(1, { arguments: '{"tz":"CET"}' }),
      finishing("tool_calls"),
    ]);
    const { message, finish_reason } = body.choices[0];
    expect(finish_reason).toBe("tool_calls");
    expect(message).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [
        { type: "function", id: "call_a", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        { type: "function", id: "call_b", function: { name: "get_time", arguments: '{"tz":"CET"}' } },
      ],
    });
    for (const call of message.tool_calls) expect(() => JSON.parse(call.function.arguments)).not.toThrow();
  });

  it("orders tool calls by index whatever order they start in, and keeps text said beside them", async () => {
    const body = await answer([
      chunk({ content: "Checking." }),
      toolDelta(1, { name: "second", arguments: "{}" }, { id: "call_2" }),
      toolDelta(0, { name: "first", arguments: "{}" }, { id: "call_1" }),
    ]);
    expect(body.choices[0].message.content).toBe("Checking.");
    expect(body.choices[0].message.tool_calls.map((c: any) => c.id)).toEqual(["call_1", "call_2"]);
    expect(body.choices[0].finish_reason).toBe("stop");
  });

  it("a stray huge index costs one call, not a sparse array of nulls", async () => {
    const body = await answer([toolDelta(1_000_000_000, { name: "f", arguments: "{}" }, { id: "call_x" })]);
    expect(body.choices[0].message.tool_calls).toEqual([{ type: "function", id: "call_x", function: { name: "f", arguments: "{}" } }]);
  });

  it("reads a missing or non-integer index as the first call", async () => {
    const body = await answer([toolDelta(undefined, { name: "f", arguments: "{" }, { id: "c" }), toolDelta("0", { arguments: "}" })]);
    expect(body.choices[0].message.tool_calls).toEqual([{ type: "function", id: "c", function: { name: "f", arguments: "{}" } }]);
  });

  it("forgets what it gathered on reset (a non-streaming answer starting over on another backend)", async () => {
    const body = await answer(
      [chunk({ content: "half an ans" }), toolDelta(0, { name: "f", arguments: '{"a' }), finishing("length")],
      (sink) => {
        sink.reset();
        void sink.send([{ chunk: chunk({ content: "whole answer" }), json: "" }]);
      },
    );
    expect(body.choices[0].message).toEqual({ role: "assistant", content: "whole answer" });
    expect(body.choices[0].finish_reason).toBe("stop");
  });

  it("answers a failure in OpenAI's error shape with Retry-After", async () => {
    const sink: ClientSink = new JsonSink(() => ({}));
    await sink.fail({ status: 503, code: "no_backend_available", message: "Every backend is unavailable.", retryAfterSec: 7 }, 0);
    const res = await sink.response;
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(((await res.json()) as any).error).toMatchObject({ code: "no_backend_available", message: "Every backend is unavailable." });
  });
});

describe("JsonSink, reasoning and logprobs", () => {
  it("gathers reasoning_content and the content tokens' logprobs as the streaming client would", async () => {
    const lp = (token: string) => ({ token, logprob: -0.5, bytes: [], top_logprobs: [] });
    const withLogprobs = (content: string): ClientChunk => ({
      ...chunk({ content }),
      choices: [{ index: 0, delta: { content }, logprobs: { content: [lp(content)] }, finish_reason: null }],
    });
    const body = await answer([
      chunk({ role: "assistant", content: "" }),
      chunk({ reasoning_content: "Think " }),
      chunk({ reasoning_content: "first." }),
      withLogprobs("An"),
      withLogprobs(" answer"),
      finishing("stop"),
    ]);
    expect(body.choices[0].message).toEqual({ role: "assistant", content: "An answer", reasoning_content: "Think first." });
    expect(body.choices[0].logprobs).toEqual({ content: [lp("An"), lp(" answer")] });
  });
});
