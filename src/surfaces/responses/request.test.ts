import { describe, expect, it } from "vitest";
import { describeIssues } from "../../config/schema";
import { ResponsesRequestSchema, toChatRequest } from "./request";
import { answerMessages, responseOf } from "./response";
import { chatCompletion } from "../test-streams";

const parsed = (body: Record<string, unknown>) => {
  const r = ResponsesRequestSchema.safeParse({ model: "chat", ...body });
  if (!r.success) throw new Error(describeIssues(r.error));
  return r.data;
};
const problem = (body: Record<string, unknown>) => {
  const r = ResponsesRequestSchema.safeParse({ model: "chat", ...body });
  return r.success ? "ok" : describeIssues(r.error);
};

describe("a Responses request as a chat request", () => {
  it("maps instructions, items (a function call turn and its output), tools, text.format, reasoning and the token bound", () => {
    const chat = toChatRequest(
      parsed({
        instructions: "Be brief.",
        input: [
          {
            role: "user",
            content: [
              { type: "input_text", text: "Weather in " },
              { type: "input_text", text: "Oslo?" },
            ],
          },
          { type: "function_call", call_id: "call_1", name: "weather", arguments: '{"city":"Oslo"}' },
          { type: "function_call", call_id: "call_2", name: "weather", arguments: '{"city":"Bergen"}' },
          { type: "function_call_output", call_id: "call_1", output: "rain" },
          { type: "function_call_output", call_id: "call_2", output: "sun" },
          { type: "reasoning", id: "rs_1", summary: [] },
          { role: "developer", content: "Answer in one word." },
        ],
        tools: [{ type: "function", name: "weather", description: "Weather", parameters: { type: "object" }, strict: true }],
        tool_choice: { type: "function", name: "weather" },
        text: { format: { type: "json_schema", name: "w", schema: { type: "object" }, strict: true } },
        reasoning: { effort: "low" },
        max_output_tokens: 50,
        parallel_tool_calls: false,
        metadata: { team: "a" },
        stream: true,
        store: true,
        include: ["reasoning.encrypted_content"],
        sim_fault: { ttft_ms: 1 },
      }),
      [{ role: "user", content: "Earlier question" }],
    );
    expect(chat).toEqual({
      model: "chat",
      sim_fault: { ttft_ms: 1 },
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 50,
      parallel_tool_calls: false,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Earlier question" },
        { role: "user", content: "Weather in Oslo?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Oslo"}' } },
            { id: "call_2", type: "function", function: { name: "weather", arguments: '{"city":"Bergen"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "rain" },
        { role: "tool", tool_call_id: "call_2", content: "sun" },
        { role: "system", content: "Answer in one word." },
      ],
      tools: [{ type: "function", function: { name: "weather", description: "Weather", parameters: { type: "object" }, strict: true } }],
      tool_choice: { type: "function", function: { name: "weather" } },
      response_format: { type: "json_schema", json_schema: { name: "w", schema: { type: "object" }, strict: true } },
      reasoning_effort: "low",
    });
  });

  it("refuses what it cannot honour with the field's name: built-in tools, an unstored background response, a file image, conversations", () => {
    expect(problem({ input: "x", tools: [{ type: "web_search" }] })).toMatch(
      /tools\.0\.type: the built-in tool "web_search" is not supported/,
    );
    expect(problem({ input: "x", background: true, store: false })).toMatch(/background: a background response is stored/);
    expect(problem({ input: "x", background: true })).toBe("ok");
    expect(problem({ input: [{ role: "user", content: [{ type: "input_image", file_id: "file-1" }] }] })).toMatch(
      /input\.0\.content\.0\.image_url/,
    );
    expect(problem({ input: "x", conversation: "conv_1" })).toMatch(/conversation is not supported/);
    expect(problem({ input: "x", background: false })).toBe("ok");
  });
});

describe("a chat completion as a response", () => {
  it("has reasoning, message and function_call items, usage in the Responses API's terms, and what a later turn sends back", () => {
    const ctx = { id: "resp_9", createdAt: 1, request: parsed({ input: "hi", max_output_tokens: 20 }) };
    const completion = chatCompletion(
      "c",
      { id: "call_1", name: "f", arguments: "{}" },
      { prompt_tokens: 4, completion_tokens: 6, completion_tokens_details: { reasoning_tokens: 2 } },
    );
    const response = responseOf(ctx, completion);
    expect(response).toMatchObject({
      id: "resp_9",
      object: "response",
      status: "completed",
      output_text: "Sure.",
      max_output_tokens: 20,
      store: true,
      usage: { input_tokens: 4, output_tokens: 6, total_tokens: 10, output_tokens_details: { reasoning_tokens: 2 } },
      output: [
        { type: "reasoning", id: "rs_9_0", content: [{ type: "reasoning_text", text: "Why not." }] },
        { type: "message", id: "msg_9_1", status: "completed", content: [{ type: "output_text", text: "Sure.", annotations: [] }] },
        { type: "function_call", id: "fc_9_2", call_id: "call_1", name: "f", arguments: "{}", status: "completed" },
      ],
    });
    expect(answerMessages(response)).toEqual([
      { role: "assistant", content: "Sure.", tool_calls: [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }] },
    ]);
  });
});
