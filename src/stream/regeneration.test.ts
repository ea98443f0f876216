import { describe, expect, it } from "vitest";
import { describeChunk } from "./chunk";
import { Regeneration } from "./regeneration";

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  describeChunk({ choices: [{ index: 0, delta, finish_reason: finish }] });
const call = (index: number, fn: Record<string, string>, id?: string) =>
  chunk({ tool_calls: [{ index, ...(id ? { id } : {}), function: fn }] });
const calls = (toolCalls: Array<{ name: string; arguments: string }>) => ({ reasoning: "", toolCalls });
const delivered = calls([{ name: "search", arguments: '{"q":"a"}' }]);

describe("Regeneration", () => {
  it("drops the calls the client has, checked byte by byte, and relays what follows with its index", () => {
    const r = new Regeneration(delivered);
    expect(r.take(chunk({ role: "assistant", content: "" })).kind).toBe("skip");
    expect(r.take(call(0, { name: "search", arguments: "" }, "call_new")).kind).toBe("skip");
    expect(r.take(call(0, { arguments: '{"q":' })).kind).toBe("skip");
    expect(r.take(call(0, { arguments: '"a"}' })).kind).toBe("skip");
    const next = r.take(call(1, { name: "fetch", arguments: "" }, "call_2"));
    expect(next.kind).toBe("relay");
    if (next.kind === "relay")
      expect(next.chunk.raw.choices![0]!.delta!.tool_calls).toEqual([
        { index: 1, id: "call_2", function: { name: "fetch", arguments: "" } },
      ]);
    expect(r.take(call(1, { arguments: "{}" })).kind).toBe("relay");
    expect(r.skipped).toBe(3);
  });

  it("relays the finish when the regenerated answer had no more calls", () => {
    const r = new Regeneration(delivered);
    r.take(call(0, { name: "search", arguments: '{"q":"a"}' }));
    const end = r.take(chunk({}, "tool_calls"));
    expect(end.kind).toBe("relay");
  });

  it("diverges on the first difference, or when the answer moves on before repeating the calls whole", () => {
    expect(new Regeneration(delivered).take(call(0, { name: "fetch", arguments: "" })).kind).toBe("diverged");
    expect(new Regeneration(delivered).take(call(0, { name: "search", arguments: '{"q":"b"}' })).kind).toBe("diverged");
    const early = new Regeneration(delivered);
    early.take(call(0, { name: "search", arguments: '{"q"' }));
    expect(early.take(chunk({}, "tool_calls")).kind).toBe("diverged");
    expect(new Regeneration(delivered).take(chunk({ content: "Sure." })).kind).toBe("diverged");
    expect(new Regeneration(delivered).take(chunk({ reasoning_content: "Hmm" })).kind).toBe("diverged");
  });

  it("carries on a call cut inside its arguments with the rest of the regenerated one", () => {
    const r = new Regeneration(calls([{ name: "search", arguments: '{"q":"ab' }]));
    expect(r.take(call(0, { name: "search", arguments: "" }, "call_x")).kind).toBe("skip");
    expect(r.take(call(0, { arguments: '{"q"' })).kind).toBe("skip");
    const rest = r.take(call(0, { arguments: ':"abc"' }));
    expect(rest.kind).toBe("relay");
    if (rest.kind === "relay") expect(rest.chunk.toolCalls).toEqual([{ index: 0, function: { arguments: 'c"' } }]);
    expect(r.take(call(0, { arguments: "}" })).kind).toBe("relay");
    // A complete call may not grow, and an open one must go on as delivered.
    expect(new Regeneration(delivered).take(call(0, { name: "search", arguments: '{"q":"a"}x' })).kind).toBe("diverged");
    expect(
      new Regeneration(calls([{ name: "search", arguments: '{"q":"ab' }])).take(call(0, { name: "search", arguments: '{"q":"ax' })).kind,
    ).toBe("diverged");
  });

  it("takes the delivered call's fragments out of a chunk that also starts a new one", () => {
    const r = new Regeneration(delivered);
    const both = describeChunk({
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [
              { index: 0, function: { name: "search", arguments: '{"q":"a"}' } },
              { index: 1, function: { name: "x", arguments: "" } },
            ],
          },
          finish_reason: null,
        },
      ],
    });
    const verdict = r.take(both);
    expect(verdict.kind).toBe("relay");
    if (verdict.kind === "relay") expect(verdict.chunk.toolCalls).toEqual([{ index: 1, function: { name: "x", arguments: "" } }]);
  });
});

describe("Regeneration of reasoning", () => {
  it("drops the reasoning the client has and relays the rest of it, then the answer", () => {
    const r = new Regeneration({ reasoning: "Think ab", toolCalls: [] });
    expect(r.take(chunk({ role: "assistant", content: "" })).kind).toBe("skip");
    expect(r.take(chunk({ reasoning_content: "Think " })).kind).toBe("skip");
    const rest = r.take(chunk({ reasoning_content: "abc" }));
    expect(rest.kind).toBe("relay");
    if (rest.kind === "relay") {
      expect(rest.chunk.reasoning).toBe("c");
      expect(rest.chunk.raw.choices![0]!.delta).toEqual({ reasoning_content: "c" });
    }
    expect(r.take(chunk({ content: "Answer" })).kind).toBe("relay");
    expect(r.skipped).toBe(1);
  });

  it("diverges when the reasoning differs, or the answer starts before it was repeated", () => {
    expect(new Regeneration({ reasoning: "Think ab", toolCalls: [] }).take(chunk({ reasoning_content: "Thunk" })).kind).toBe("diverged");
    const early = new Regeneration({ reasoning: "Think ab", toolCalls: [] });
    early.take(chunk({ reasoning_content: "Think" }));
    expect(early.take(chunk({ content: "Answer" })).kind).toBe("diverged");
  });
});
