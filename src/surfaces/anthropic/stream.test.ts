// Chat chunks through the Messages framing: the event order Anthropic's stream has (golden), and a
// property: any backend stream (reasoning, text, parallel tool calls with arguments split anywhere,
// usage), translated and accumulated as the Anthropic SDK accumulates it (lib/MessageStream),
// gives the same thinking, text, calls, arguments, stop reason and counts.
import fc from "fast-check";
import { createParser } from "eventsource-parser";
import { describe, expect, it } from "vitest";
import { MessagesFraming } from "./stream";
import { backendStream, chunksOf, delta, framed, inBatches, usage } from "../test-streams";

/** The events of an SSE text: [event name, data]. */
function events(text: string): Array<[string, any]> {
  const out: Array<[string, any]> = [];
  const parser = createParser({ onEvent: (e) => out.push([e.event ?? "", JSON.parse(e.data)]) });
  parser.feed(text);
  return out;
}

/** What the Anthropic SDK's MessageStream makes of the events (its accumulateMessage, in short). */
function accumulate(evs: Array<[string, any]>) {
  let message: any;
  const json: string[] = [];
  for (const [name, data] of evs) {
    expect(data.type).toBe(name); // the SDK skips an event without its name
    if (name === "message_start") message = structuredClone(data.message);
    else if (name === "content_block_start") message.content.push({ ...data.content_block });
    else if (name === "content_block_delta") {
      const block = message.content[data.index];
      const d = data.delta;
      if (d.type === "text_delta") block.text += d.text;
      if (d.type === "thinking_delta") block.thinking += d.thinking;
      if (d.type === "input_json_delta") json[data.index] = (json[data.index] ?? "") + d.partial_json;
    } else if (name === "content_block_stop") {
      const block = message.content[data.index];
      if (block.type === "tool_use") block.input = json[data.index] ? JSON.parse(json[data.index]!) : {};
    } else if (name === "message_delta") {
      Object.assign(message, { stop_reason: data.delta.stop_reason, stop_sequence: data.delta.stop_sequence });
      message.usage.output_tokens = data.usage.output_tokens;
      if (data.usage.input_tokens != null) message.usage.input_tokens = data.usage.input_tokens;
    }
  }
  return message;
}

describe("the Messages stream", () => {
  it("has Anthropic's event order: message_start, blocks with their deltas and stops, message_delta, message_stop", () => {
    const f = new MessagesFraming([], 12);
    const text =
      f.chunks([
        delta({ role: "assistant", reasoning_content: "Think" }),
        delta({ reasoning_content: "ing." }),
        delta({ content: "Hi" }),
        delta({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get", arguments: '{"a":' } }] }),
        delta({ tool_calls: [{ index: 0, function: { arguments: "1}" } }] }, "tool_calls"),
        usage(7, 9),
      ]) + f.done();
    expect(
      events(text).map(([name, d]) =>
        d.delta?.type ? `${name}:${d.delta.type}` : d.content_block ? `${name}:${d.content_block.type}` : name,
      ),
    ).toEqual([
      "message_start",
      "content_block_start:thinking",
      "content_block_delta:thinking_delta",
      "content_block_delta:thinking_delta",
      "content_block_stop",
      "content_block_start:text",
      "content_block_delta:text_delta",
      "content_block_stop",
      "content_block_start:tool_use",
      "content_block_delta:input_json_delta",
      "content_block_delta:input_json_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const message = accumulate(events(text));
    expect(message).toMatchObject({
      id: "msg_1",
      model: "m",
      stop_reason: "tool_use",
      usage: { input_tokens: 7, output_tokens: 9 },
      content: [
        { type: "thinking", thinking: "Thinking." },
        { type: "text", text: "Hi" },
        { type: "tool_use", id: "call_1", name: "get", input: { a: 1 } },
      ],
    });
  });

  it("starts with sluice's estimate of the input tokens, never zeros, and ends a broken stream with the error event, not message_stop", () => {
    const f = new MessagesFraming([], 42);
    const text =
      f.chunks([delta({ content: "Hal" })]) + f.error({ status: 502, code: "max_attempts", message: "All 3 attempts failed." }, 1);
    const evs = events(text);
    expect(evs[0]![1].message.usage).toEqual({ input_tokens: 42, output_tokens: 0 });
    expect(evs.at(-1)).toEqual([
      "error",
      {
        type: "error",
        error: { type: "api_error", message: "All 3 attempts failed.", code: "max_attempts" },
        partial: true,
        completion_tokens: 1,
      },
    ]);
    expect(evs.some(([name]) => name === "message_stop")).toBe(false);
  });

  it("says which stop sequence ended the answer, and max_tokens for a length cut", () => {
    const stop = new MessagesFraming(["END"], 1);
    const s = events(
      stop.chunks([framed({ id: "x", model: "m", choices: [{ delta: { content: "a" }, finish_reason: "stop", stop_reason: "END" }] })]) +
        stop.done(),
    );
    expect(s.find(([n]) => n === "message_delta")![1].delta).toEqual({ stop_reason: "stop_sequence", stop_sequence: "END" });
    const long = new MessagesFraming([], 1);
    const l = events(long.chunks([delta({ content: "a" }, "length")]) + long.done());
    expect(l.find(([n]) => n === "message_delta")![1].delta).toEqual({ stop_reason: "max_tokens", stop_sequence: null });
  });

  it("property: any backend stream accumulates, as the SDK does, to the same thinking, text, tool calls, stop reason and counts", () => {
    fc.assert(
      fc.property(backendStream, (stream) => {
        const f = new MessagesFraming([], 5);
        const message = accumulate(events(inBatches(chunksOf(stream), stream.cuts[0]!, (b) => f.chunks(b)) + f.done()));
        const blocks = message.content as any[];
        expect(
          blocks
            .filter((b) => b.type === "thinking")
            .map((b) => b.thinking)
            .join(""),
        ).toBe(stream.reasoning.join(""));
        expect(
          blocks
            .filter((b) => b.type === "text")
            .map((b) => b.text)
            .join(""),
        ).toBe(stream.text.join(""));
        expect(blocks.filter((b) => b.type === "tool_use").map((b) => ({ id: b.id, name: b.name, input: b.input }))).toEqual(
          stream.calls.map((c, i) => ({ id: `call_${i}`, name: c.name, input: c.input })),
        );
        expect(message.stop_reason).toBe(stream.calls.length ? "tool_use" : "end_turn");
        expect(message.usage).toEqual({ input_tokens: stream.prompt, output_tokens: stream.completion });
      }),
    );
  });
});
