import { describe, expect, it } from "vitest";
import { configIssues, WorkflowDefinitionSchema } from "./definition";

/** planner -> retrievers (map) -> summarizer -> publish (effect). */
const researchWorkflow = {
  steps: [
    {
      id: "plan",
      kind: "llm",
      model: "chat",
      messages: [{ role: "user", content: "Plan questions about {{input.topic}}" }],
      output: { format: "json", required: ["questions"] },
    },
    {
      id: "retrieve",
      kind: "map",
      needs: ["plan"],
      over: "steps.plan.questions",
      model: "chat",
      messages: [{ role: "user", content: "Answer: {{item}}" }],
      minSuccesses: 2,
    },
    { id: "web", kind: "llm", needs: ["plan"], optional: true, model: "chat", messages: [{ role: "user", content: "{{steps.plan}}" }] },
    {
      id: "summarize",
      kind: "llm",
      needs: ["retrieve", "web"],
      model: "chat",
      messages: [{ role: "user", content: "{{steps.retrieve}} {{steps.web}}" }],
    },
    {
      id: "publish",
      kind: "effect",
      needs: ["summarize"],
      url: "https://hooks.example.com/done",
      body: '{"summary": {{steps.summarize}}}',
    },
  ],
};

const issues = (definition: unknown) => {
  const result = WorkflowDefinitionSchema.safeParse(definition);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

describe("workflow definitions", () => {
  it("accept a DAG with defaults filled in", () => {
    const parsed = WorkflowDefinitionSchema.parse(researchWorkflow);
    expect(parsed.priority).toBe("low");
    expect(parsed.steps[0]).toMatchObject({ needs: [], optional: false, attempts: 3, timeoutMs: 120_000 });
    expect(parsed.steps[1]).toMatchObject({ concurrency: 4, maxItems: 20, minSuccesses: 2 });
  });

  it("refuse cycles, unknown needs, duplicate ids, and templates naming steps that are not upstream", () => {
    const step = (id: string, needs: string[], content = "x") => ({
      id,
      kind: "llm",
      model: "chat",
      needs,
      messages: [{ role: "user", content }],
    });
    expect(issues({ steps: [step("a", ["c"]), step("b", ["a"]), step("c", ["b"])] })).toEqual([
      "steps: steps need each other in a cycle: a -> c -> b -> a",
    ]);
    expect(issues({ steps: [step("a", ["ghost"])] })).toEqual(['steps.0.needs.0: unknown step "ghost"']);
    expect(issues({ steps: [step("a", []), step("a", [])] })).toEqual(['steps.1.id: duplicate step id "a"']);
    expect(issues({ steps: [step("a", []), step("b", [], "{{steps.a}}")] })).toEqual([
      'steps.1.messages.0.content: "steps.a" is not upstream of step "b": add it (or a step that needs it) to needs',
    ]);
    expect(issues({ steps: [step("a", [], "{{item}}")] })).toEqual([
      "steps.0.messages.0.content: {{item}} is only for a map step's messages",
    ]);
    expect(issues({ steps: [step("a", [], "{{ globalThis.fetch }}")] })).toEqual([
      'steps.0.messages.0.content: "{{globalThis.fetch}}" names neither input, item nor steps.<id>',
    ]);
  });

  it("refuse a map over something not upstream, and bounds past the limits", () => {
    const map = { id: "m", kind: "map", over: "steps.x.list", model: "chat", messages: [{ role: "user", content: "{{item}}" }] };
    expect(issues({ steps: [map] })[0]).toMatch(/^steps.0.over: "steps.x" is not upstream of step "m"/);
    expect(issues({ steps: [{ ...map, over: "input.list", minSuccesses: 30 }] })).toEqual([
      "steps.0.minSuccesses: must be at most maxItems (20)",
    ]);
    expect(issues({ steps: [{ ...map, over: "input.list", maxItems: 101 }] })[0]).toMatch(/^steps.0.maxItems/);
    const many = Array.from({ length: 51 }, (_, i) => ({
      id: `s${i}`,
      kind: "llm",
      model: "chat",
      messages: [{ role: "user", content: "x" }],
    }));
    expect(issues({ steps: many })[0]).toMatch(/^steps: Too big/);
  });

  it("ask the tenant's config for its model aliases and effect hosts", () => {
    const parsed = WorkflowDefinitionSchema.parse(researchWorkflow);
    expect(configIssues(parsed, new Set(["chat"]), ["hooks.example.com"])).toEqual([]);
    expect(configIssues(parsed, new Set(["other"]), [])).toEqual([
      { path: ["steps", 0, "model"], message: 'unknown model alias "chat"' },
      { path: ["steps", 1, "model"], message: 'unknown model alias "chat"' },
      { path: ["steps", 2, "model"], message: 'unknown model alias "chat"' },
      { path: ["steps", 3, "model"], message: 'unknown model alias "chat"' },
      { path: ["steps", 4, "url"], message: 'host "hooks.example.com" is not in the tenant\'s workflows.effectHosts' },
    ]);
  });
});
