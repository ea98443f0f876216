import { describe, expect, it } from "vitest";
import { agentAnswer, agentContinuation, agentDeltas, jsonAnswerFor } from "./agent";
import { expectedText } from "./text";

const messages = [{ role: "user", content: "Find the weather." }];

describe("the sim's agent output", () => {
  it("answers a request offering tools with 1-3 calls whose fragments reassemble into their JSON arguments", () => {
    for (let seed = 0; seed < 50; seed++) {
      const answer = agentAnswer({ model: "m", messages, seed, tools: ["search", "fetch"] });
      expect(answer.finishReason).toBe("tool_calls");
      expect(answer.content).toEqual([]);
      expect(answer.toolCalls.length).toBeGreaterThanOrEqual(1);
      expect(answer.toolCalls.length).toBeLessThanOrEqual(3);
      const rebuilt: Array<{ id?: string; name: string; arguments: string }> = [];
      for (const delta of agentDeltas(answer)) {
        for (const call of delta.tool_calls as Array<{ index: number; id?: string; function: { name?: string; arguments: string } }>) {
          const draft = (rebuilt[call.index] ??= { name: "", arguments: "" });
          if (call.id) draft.id = call.id;
          draft.name += call.function.name ?? "";
          draft.arguments += call.function.arguments;
        }
      }
      expect(rebuilt).toEqual(answer.toolCalls);
      for (const call of answer.toolCalls) expect(["search", "fetch"]).toContain(call.name);
      for (const call of answer.toolCalls) expect(() => JSON.parse(call.arguments)).not.toThrow();
    }
  });

  it("answers with text once given its tools' results, as an agent's model does", () => {
    const asked = [{ role: "user", content: "Find it." }];
    const first = agentAnswer({ model: "m", messages: asked, tools: ["lookup"] });
    expect(first.finishReason).toBe("tool_calls");
    const messages = [
      ...asked,
      {
        role: "assistant",
        content: null,
        tool_calls: first.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })),
      },
      ...first.toolCalls.map((c) => ({ role: "tool", tool_call_id: c.id, content: "found" })),
    ];
    const answer = agentAnswer({ model: "m", messages, tools: ["lookup"] });
    expect(answer.toolCalls).toEqual([]);
    expect(answer.content.join("")).toBe(expectedText({ model: "m", messages }));
  });

  it("is deterministic", () => {
    const key = { model: "m", messages, tools: ["search"] };
    expect(agentDeltas(agentAnswer(key))).toEqual(agentDeltas(agentAnswer(key)));
  });

  it("streams reasoning before the text for a reasoning model, and the text is the plain model's", () => {
    const answer = agentAnswer({ model: "sim-reasoner", messages });
    expect(answer.reasoning.length).toBeGreaterThan(0);
    const deltas = agentDeltas(answer);
    const firstContent = deltas.findIndex((d) => "content" in d);
    expect(deltas.slice(0, firstContent).every((d) => "reasoning_content" in d)).toBe(true);
    expect(answer.content.join("")).toBe(expectedText({ model: "sim-reasoner", messages }));
    expect(agentAnswer({ model: "sim-model", messages }).reasoning).toEqual([]);
  });

  it("continues text where it stopped, but writes tool calls again from the start, as a real model asked to continue", () => {
    const text = agentAnswer({ model: "m", messages }).content;
    const cut = text.slice(0, 5).join("");
    expect(cut + agentContinuation({ model: "m", messages }, cut).content.join("")).toBe(text.join(""));
    const tools = { model: "m", messages, tools: ["search"] };
    expect(agentContinuation(tools, "").toolCalls).toEqual(agentAnswer(tools).toolCalls);
  });

  it("answers a JSON-mode request with a deterministic JSON object, and continues it exactly", () => {
    const key = { model: "m", messages: [{ role: "user", content: "plan" }], json: true };
    const text = agentAnswer(key).content.join("");
    expect(JSON.parse(text)).toEqual(JSON.parse(jsonAnswerFor(key)));
    expect(JSON.parse(text).questions).toHaveLength(3);
    const cut = text.slice(0, 17);
    expect(cut + agentContinuation(key, cut).content.join("")).toBe(text);
  });
});
