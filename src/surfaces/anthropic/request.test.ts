import { describe, expect, it } from "vitest";
import { describeIssues } from "../../config/schema";
import { messageOf } from "./message";
import { MessagesRequestSchema, toChatRequest } from "./request";
import { chatCompletion } from "../test-streams";

const parse = (body: Record<string, unknown>) => MessagesRequestSchema.safeParse({ model: "chat", max_tokens: 64, ...body });
const chatOf = (body: Record<string, unknown>) => {
  const parsed = parse(body);
  if (!parsed.success) throw new Error(describeIssues(parsed.error));
  return toChatRequest(parsed.data);
};

describe("a Messages request as a chat request", () => {
  it("maps system, a tool_use turn and its tool_result (an error said so), images, tools and tool_choice", () => {
    const chat = chatOf({
      system: [{ type: "text", text: "Be brief." }],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Weather?" },
            { type: "image", source: { type: "url", url: "https://x/i.png" } },
          ],
        },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "weather", input: { city: "Oslo" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "timeout", is_error: true },
            { type: "text", text: "And now?" },
          ],
        },
      ],
      tools: [{ name: "weather", description: "Weather in a city", input_schema: { type: "object" } }],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
      stop_sequences: ["END"],
      top_k: 5,
      metadata: { user_id: "u-1" },
      thinking: { type: "enabled", budget_tokens: 1024 },
      stream: true,
    });
    expect(chat).toEqual({
      model: "chat",
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "system", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Weather?" },
            { type: "image_url", image_url: { url: "https://x/i.png" } },
          ],
        },
        {
          role: "assistant",
          content: "Checking.",
          tool_calls: [{ id: "toolu_1", type: "function", function: { name: "weather", arguments: '{"city":"Oslo"}' } }],
        },
        { role: "tool", tool_call_id: "toolu_1", content: "Error: timeout" },
        { role: "user", content: "And now?" },
      ],
      tools: [{ type: "function", function: { name: "weather", description: "Weather in a city", parameters: { type: "object" } } }],
      tool_choice: "required",
      parallel_tool_calls: false,
      stop: ["END"],
      top_k: 5,
      user: "u-1",
      chat_template_kwargs: { enable_thinking: true },
    });
  });

  it("passes unknown fields through, as the chat route does, and leaves out service_tier and an earlier turn's thinking", () => {
    const chat = chatOf({
      service_tier: "auto",
      sim_fault: { status: 503 },
      messages: [
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "hm", signature: "s" },
            { type: "text", text: "ok" },
          ],
        },
      ],
    });
    expect(chat).toEqual({ model: "chat", max_tokens: 64, sim_fault: { status: 503 }, messages: [{ role: "assistant", content: "ok" }] });
  });

  it("refuses what it cannot honour with the field's name: no max_tokens, server tools, MCP servers, a bad block", () => {
    const problem = (body: Record<string, unknown>) => {
      const parsed = MessagesRequestSchema.safeParse(body);
      return parsed.success ? "ok" : describeIssues(parsed.error);
    };
    expect(problem({ model: "chat", messages: [{ role: "user", content: "x" }] })).toMatch(/max_tokens/);
    expect(
      problem({
        model: "chat",
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "web_search_20250305", name: "web_search" }],
      }),
    ).toMatch(/tools\.0\.type: the server tool "web_search_20250305"/);
    expect(problem({ model: "chat", max_tokens: 5, messages: [{ role: "user", content: "x" }], mcp_servers: [] })).toMatch(
      /mcp_servers is not supported/,
    );
    expect(problem({ model: "chat", max_tokens: 5, messages: [{ role: "user", content: [{ type: "document" }] }] })).toMatch(
      /messages\.0\.content/,
    );
    expect(problem({ model: "chat", max_tokens: 5, messages: [{ role: "system", content: "x" }] })).toMatch(/messages\.0\.role/);
  });
});

describe("a chat completion as a Messages answer", () => {
  it("has thinking, text and tool_use blocks (arguments parsed), the stop reason and the backend's usage", () => {
    const completion = chatCompletion(
      "chatcmpl-7",
      { id: "call_1", name: "get", arguments: '{"k":[1]}' },
      { prompt_tokens: 20, completion_tokens: 8, prompt_tokens_details: { cached_tokens: 16 } },
    );
    const message = messageOf(completion, [], 3);
    expect(message).toEqual({
      id: "msg_7",
      type: "message",
      role: "assistant",
      model: "llama",
      content: [
        { type: "thinking", thinking: "Why not.", signature: "" },
        { type: "text", text: "Sure." },
        { type: "tool_use", id: "call_1", name: "get", input: { k: [1] } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 8, cache_read_input_tokens: 16 },
    });
  });
});
