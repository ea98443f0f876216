import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeChunk } from "./chunk";
import { OutputShape } from "./output-cut";

const delta = (d: Record<string, unknown>) => describeChunk({ choices: [{ index: 0, delta: d, finish_reason: null }] });
const reasoning = (text: string) => delta({ reasoning_content: text });
const content = (text: string) => delta({ content: text });
const toolStart = (index: number, name: string) =>
  delta({ tool_calls: [{ index, id: `call_${index}`, type: "function", function: { name, arguments: "" } }] });
const toolArgs = (index: number, args: string) => delta({ tool_calls: [{ index, function: { arguments: args } }] });

function shapeAfter(chunks: ReturnType<typeof delta>[]): OutputShape {
  const shape = new OutputShape();
  for (const c of chunks) shape.note(c);
  return shape;
}

describe("OutputShape", () => {
  it("says where a break would cut the output", () => {
    expect(shapeAfter([]).cut()).toBe("none");
    expect(shapeAfter([content("Hello")]).cut()).toBe("text");
    expect(shapeAfter([reasoning("Let me")]).cut()).toBe("reasoning");
    expect(shapeAfter([reasoning("Done."), content("Answer")]).cut()).toBe("text");
    expect(shapeAfter([toolStart(0, "search")]).cut()).toBe("tool_call");
    expect(shapeAfter([toolStart(0, "search"), toolArgs(0, '{"q":"w0x2')]).cut()).toBe("tool_call");
    expect(shapeAfter([toolStart(0, "search"), toolArgs(0, '{"q":"x"}')]).cut()).toBe("after_tool_call");
    expect(shapeAfter([toolStart(0, "a"), toolArgs(0, "{}"), toolStart(1, "b"), toolArgs(1, '{"k":')]).cut()).toBe("tool_call");
  });

  it("lets only text (or nothing) be continued", () => {
    expect(shapeAfter([content("x")]).continuable()).toBe(true);
    expect(shapeAfter([]).continuable()).toBe(true);
    for (const chunks of [[reasoning("r")], [toolStart(0, "f")], [toolStart(0, "f"), toolArgs(0, "{}")]])
      expect(shapeAfter(chunks).continuable()).toBe(false);
  });

  it("reads the same shape back from stored chunks", () => {
    const chunks = [toolStart(0, "search"), toolArgs(0, '{"q":')];
    const stored = chunks.map((c) => JSON.stringify(c.raw));
    expect(OutputShape.of(stored).cut()).toBe("tool_call");
  });

  it("never calls a cut inside any prefix of a tool call's arguments continuable (property)", () => {
    const args = fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { minKeys: 1 });
    fc.assert(
      fc.property(args, fc.nat(), fc.nat(), (value, cutAt, size) => {
        const json = JSON.stringify(value);
        const at = cutAt % json.length; // a strict prefix
        const fragments: string[] = [];
        for (let i = 0; i < at; i += 1 + (size % 5)) fragments.push(json.slice(i, Math.min(at, i + 1 + (size % 5))));
        const shape = shapeAfter([toolStart(0, "f"), ...fragments.map((f) => toolArgs(0, f))]);
        expect(shape.cut()).toBe("tool_call");
        expect(shape.continuable()).toBe(false);
        shape.note(toolArgs(0, json.slice(at)));
        expect(shape.cut()).toBe("after_tool_call");
      }),
      { numRuns: 1_000, seed: 20261201 },
    );
  });
});
