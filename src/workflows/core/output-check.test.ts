import { describe, expect, it } from "vitest";
import { checkOutput } from "./output-check";

describe("LLM step output", () => {
  it("is the text when no format is asked for", () => {
    expect(checkOutput("plain words", undefined)).toEqual({ ok: true, output: "plain words" });
  });

  it("is the JSON, also inside one code fence", () => {
    const spec = { format: "json" as const };
    expect(checkOutput('{"a":1}', spec)).toEqual({ ok: true, output: { a: 1 } });
    expect(checkOutput('```json\n{"a":[1,2]}\n```', spec)).toEqual({ ok: true, output: { a: [1, 2] } });
  });

  it("fails an answer that is not JSON, or lacks a required field, saying which", () => {
    const spec = { format: "json" as const, required: ["questions", "meta.topic"] };
    expect(checkOutput("Sure! Here are the questions", spec)).toMatchObject({ ok: false, problem: /^the answer is not JSON: "Sure!/ });
    expect(checkOutput('{"questions":[],"meta":{}}', spec)).toEqual({
      ok: false,
      problem: 'the answer\'s JSON lacks the required field "meta.topic"',
    });
    // A field of the prototype chain is not a field of the answer.
    expect(checkOutput('{"questions":[],"meta":{"topic":"x"}}', { format: "json", required: ["constructor"] })).toMatchObject({
      ok: false,
    });
    expect(checkOutput('{"questions":[],"meta":{"topic":"x"}}', spec)).toMatchObject({ ok: true });
  });

  it("checks a JSON Schema", () => {
    const spec = {
      format: "json" as const,
      schema: {
        type: "object",
        required: ["questions"],
        properties: { questions: { type: "array", items: { type: "string" }, minItems: 2 } },
      },
    };
    expect(checkOutput('{"questions":["a","b"]}', spec)).toEqual({ ok: true, output: { questions: ["a", "b"] } });
    expect(checkOutput('{"questions":["a"]}', spec)).toMatchObject({ ok: false, problem: /does not match the schema/ });
    expect(checkOutput('{"questions":[1,2]}', spec)).toMatchObject({ ok: false, problem: /does not match the schema/ });
  });
});
