import { describe, expect, it } from "vitest";
import { isJsonTemplate, parseTemplate, render, type StepValue } from "./template";

const steps = new Map<string, StepValue>([
  ["plan", { ok: true, output: { questions: ["q1", "q2"], topic: "tides" } }],
  ["draft", { ok: true, output: "a plain text" }],
  ["web", { ok: false, reason: "HTTP 502" }],
]);

describe("workflow templates", () => {
  it("fill in the input, upstream outputs and the map item; strings as they are, other values as JSON", () => {
    const scope = { input: { topic: "moon", n: 3 }, steps, item: { q: "why?" } };
    expect(render("About {{ input.topic }} ({{input.n}}): {{steps.plan.questions}}", scope)).toBe('About moon (3): ["q1","q2"]');
    expect(render("{{steps.draft}} / {{steps.plan.questions.1}} / {{item.q}}", scope)).toBe("a plain text / q2 / why?");
  });

  it("put a marker where a skipped step's output would be", () => {
    expect(render("Web: {{steps.web.results}}", { input: null, steps })).toBe("Web: [missing: step web was skipped (HTTP 502)]");
  });

  it("never reach the prototype chain, and leave nothing for a field an output lacks", () => {
    const scope = { input: { a: 1 }, steps };
    expect(render("[{{input.constructor}}][{{input.__proto__}}][{{steps.plan.nope}}][{{steps.draft.length}}]", scope)).toBe("[][][][]");
  });

  it("name what is wrong with a reference", () => {
    expect(parseTemplate("{{ steps.plan.topic }} and {{input}}")).toEqual({
      references: [
        { root: "step", step: "plan", path: ["topic"] },
        { root: "input", path: [] },
      ],
    });
    expect(parseTemplate("{{ process.env }}")).toEqual({ problem: '"{{process.env}}" names neither input, item nor steps.<id>' });
    expect(parseTemplate("{{ input['a'] }}")).toMatchObject({ problem: /is not a reference/ });
    expect(parseTemplate("{{steps}}")).toMatchObject({ problem: /names neither/ });
  });

  it("in a JSON body, put every value in as JSON: an output cannot break out of its place", () => {
    const hostile = new Map<string, StepValue>([["sum", { ok: true, output: 'x", "admin": true, "y": "' }]]);
    const body = render(
      '{"summary": {{steps.sum}}, "n": {{input.n}}, "none": {{input.nope}}}',
      { input: { n: 2 }, steps: hostile },
      "json",
    );
    expect(JSON.parse(body)).toEqual({ summary: 'x", "admin": true, "y": "', n: 2, none: null });
    expect(isJsonTemplate('{"summary": {{steps.sum}}}')).toBe(true);
    expect(isJsonTemplate('{"summary": "{{steps.sum}}"}')).toBe(false);
  });
});
