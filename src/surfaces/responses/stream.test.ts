// Chat chunks through the Responses framing, accumulated by the openai SDK's own accumulator
// (lib/responses/ResponseAccumulator): the event order, sequence numbers, and a property: any
// backend stream (reasoning, text, parallel tool calls with arguments split anywhere, usage) gives
// the same reasoning, text, calls, arguments, status and counts, and the same output a JSON answer has.
import fc from "fast-check";
import { createParser } from "eventsource-parser";
import { accumulateResponse } from "openai/lib/responses/ResponseAccumulator";
import { describe, expect, it } from "vitest";
import { responseShell } from "./response";
import { ResponsesRequestSchema } from "./request";
import { ResponsesFraming } from "./stream";
import { backendStream, chunksOf, delta, inBatches, usage } from "../test-streams";

const shell = () => responseShell({ id: "resp_1", createdAt: 7, request: ResponsesRequestSchema.parse({ model: "chat", input: "hi" }) });

function events(text: string): any[] {
  const out: any[] = [];
  createParser({
    onEvent: (e) => {
      const data = JSON.parse(e.data);
      expect(data.type).toBe(e.event);
      out.push(data);
    },
  }).feed(text);
  return out;
}

/** The response the SDK holds after the events. */
function accumulate(evs: any[]): any {
  let snapshot: any;
  for (const e of evs) snapshot = accumulateResponse(e, snapshot);
  return snapshot;
}

describe("the Responses stream", () => {
  it("has the Responses API's events, numbered in order, and ends with response.completed holding the whole response", () => {
    let stored: unknown;
    const f = new ResponsesFraming(shell(), (r) => (stored = r));
    const text =
      f.chunks([
        delta({ reasoning_content: "Hm." }),
        delta({ content: "Hel" }),
        delta({ content: "lo" }),
        delta({ tool_calls: [{ index: 0, id: "call_1", function: { name: "get", arguments: '{"a"' } }] }),
        delta({ tool_calls: [{ index: 0, function: { arguments: ":1}" } }] }, "tool_calls"),
        usage(5, 6),
      ]) + f.done();
    const evs = events(text);
    expect(evs.map((e) => e.sequence_number)).toEqual(evs.map((_, i) => i));
    expect(evs.map((e) => e.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      "response.reasoning_text.delta",
      "response.reasoning_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.content_part.added",
      "response.output_text.delta",
      "response.output_text.delta",
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const response = accumulate(evs);
    expect(response).toMatchObject({
      id: "resp_1",
      status: "completed",
      output_text: "Hello",
      usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
    });
    expect(response.output.map((i: any) => i.type)).toEqual(["reasoning", "message", "function_call"]);
    expect(response.output[2]).toMatchObject({ call_id: "call_1", name: "get", arguments: '{"a":1}', status: "completed" });
    expect(stored).toEqual(evs.at(-1).response);
  });

  it("ends a broken stream with response.failed (the error at its top too, so the SDK raises), never response.completed", () => {
    let stored: unknown = "untold";
    const f = new ResponsesFraming(shell(), (r) => (stored = r));
    const evs = events(
      f.chunks([delta({ content: "Hel" })]) + f.error({ status: 502, code: "max_attempts", message: "All 3 attempts failed." }, 1),
    );
    const last = evs.at(-1);
    expect(last).toMatchObject({
      type: "response.failed",
      response: { status: "failed", error: { code: "max_attempts" }, output: [{ type: "message", content: [{ text: "Hel" }] }] },
      error: { code: "max_attempts", message: "All 3 attempts failed.", type: "upstream_error" },
      partial: true,
    });
    expect(evs.some((e) => e.type === "response.completed")).toBe(false);
    expect(stored).toBeNull();
  });

  it("says incomplete when the answer was cut at max_output_tokens", () => {
    const f = new ResponsesFraming(shell());
    const last = events(f.chunks([delta({ content: "a" }, "length")]) + f.done()).at(-1);
    expect(last).toMatchObject({
      type: "response.incomplete",
      response: { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } },
    });
  });

  it("property: any backend stream accumulates, in the SDK, to the same reasoning, text, calls, arguments and counts", () => {
    fc.assert(
      fc.property(backendStream, (stream) => {
        const f = new ResponsesFraming(shell());
        const response = accumulate(events(inBatches(chunksOf(stream), stream.cuts[0]!, (b) => f.chunks(b)) + f.done()));
        const items = response.output as any[];
        const reasoningText = items
          .filter((i) => i.type === "reasoning")
          .flatMap((i) => i.content.map((c: any) => c.text))
          .join("");
        expect(reasoningText).toBe(stream.reasoning.join(""));
        expect(response.output_text).toBe(stream.text.join(""));
        expect(
          items
            .filter((i) => i.type === "function_call")
            .map((i) => ({ call_id: i.call_id, name: i.name, input: JSON.parse(i.arguments) })),
        ).toEqual(stream.calls.map((c, i) => ({ call_id: `call_${i}`, name: c.name, input: c.input })));
        expect(response.status).toBe("completed");
        expect(response.usage).toMatchObject({ input_tokens: stream.prompt, output_tokens: stream.completion });
      }),
    );
  });

  it("property: re-attached with starting_after, it sends exactly the events after it, byte for byte", () => {
    fc.assert(
      fc.property(backendStream, fc.nat(), (stream, at) => {
        const play = (f: ResponsesFraming) => inBatches(chunksOf(stream), stream.cuts[0]!, (b) => f.chunks(b)) + f.done();
        const whole = play(new ResponsesFraming(shell()));
        const all = events(whole);
        const after = at % (all.length + 1);
        const rest = events(play(new ResponsesFraming(shell(), () => {}, after - 1)));
        expect(rest).toEqual(all.slice(after));
      }),
    );
  });

  it("ends a cancelled background response with response.failed, its response cancelled", () => {
    const f = new ResponsesFraming(shell());
    const cancel = { status: 409, code: "generation_cancelled", message: "The generation was cancelled." };
    const last = events(f.chunks([delta({ content: "a" })]) + f.error(cancel, 1)).at(-1);
    expect(last).toMatchObject({
      type: "response.failed",
      response: { status: "cancelled", output_text: "a" },
      error: { code: "generation_cancelled" },
    });
  });
});
