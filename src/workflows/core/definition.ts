// A workflow definition (docs/workflows.md, "Workflows"): a DAG of steps, checked with zod and then as a graph.
// Kinds: `llm` (a chat request to one of the tenant's model aliases, messages templated from the
// run's input and upstream outputs, optionally JSON checked against required fields or a JSON
// Schema), `map` (the same over each item of an upstream list, `concurrency` at a time, done when
// `minSuccesses` items succeed) and `effect` (an HTTP call to an allow-listed host, with an
// Idempotency-Key, made once). Pure.
import * as z from "zod";
import { topologicalOrder, upstreamOf } from "./dag";
import { isJsonTemplate, parseReference, parseTemplate, type Reference } from "./template";

export const MAX_STEPS = 50;
export const MAX_DEFINITION_BYTES = 64 * 1024;
/** Items one map step fans out to, at most. */
export const MAX_FAN_OUT = 100;
export const MAX_MAP_CONCURRENCY = 16;

const stepId = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_-]{0,63}$/, "must be 1-64 letters, digits, '_' or '-', starting with a letter");
const template = z.string().max(16_384);

const common = {
  id: stepId,
  /** Steps whose outputs this one waits for. */
  needs: z.array(stepId).max(20).default([]),
  /** A failed optional step is skipped: the run goes on, its dependants see a "missing" marker. */
  optional: z.boolean().default(false),
  /** Each attempt's limit. */
  timeoutMs: z.number().int().min(1_000).max(600_000).default(120_000),
  attempts: z.number().int().min(1).max(10).default(3),
};

const JsonOutputSchema = z.object({
  format: z.literal("json"),
  /** Fields the JSON object must have (dotted paths); missing one, the attempt failed. */
  required: z
    .array(z.string().regex(/^[a-zA-Z0-9_-]{1,64}(\.[a-zA-Z0-9_-]{1,64})*$/))
    .max(50)
    .optional(),
  /** A JSON Schema (draft 2020-12) the output must satisfy. */
  schema: z.record(z.string(), z.unknown()).optional(),
});

const chatFields = {
  model: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/, "must be one of the tenant's model aliases"),
  messages: z
    .array(z.object({ role: z.enum(["system", "developer", "user", "assistant"]), content: template }))
    .min(1)
    .max(20),
  maxTokens: z.number().int().min(1).max(32_768).optional(),
  temperature: z.number().min(0).max(2).optional(),
  output: JsonOutputSchema.optional(),
};

export const StepSchema = z.discriminatedUnion("kind", [
  z.object({ ...common, kind: z.literal("llm"), ...chatFields }),
  z.object({
    ...common,
    kind: z.literal("map"),
    /** A reference to a list: `steps.<id>.<field>` or `input.<field>`. */
    over: z.string().max(256),
    ...chatFields,
    concurrency: z.number().int().min(1).max(MAX_MAP_CONCURRENCY).default(4),
    /** Items that must succeed for the step to succeed (default: every item). */
    minSuccesses: z.number().int().min(0).max(MAX_FAN_OUT).optional(),
    /** Items beyond this many are refused: the step fails, saying so. */
    maxItems: z.number().int().min(1).max(MAX_FAN_OUT).default(20),
  }),
  z.object({
    ...common,
    kind: z.literal("effect"),
    url: z
      .string()
      .max(2048)
      .url()
      .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL"),
    method: z.enum(["POST", "PUT"]).default("POST"),
    /** A JSON body whose {{references}} each stand for one value (filled in as JSON); sent as application/json. */
    body: template.default("{}"),
  }),
]);

export const WorkflowDefinitionSchema = z
  .object({
    description: z.string().max(1_000).optional(),
    /** The gate priority of the workflow's LLM calls. */
    priority: z.enum(["high", "normal", "low"]).default("low"),
    steps: z.array(StepSchema).min(1).max(MAX_STEPS),
  })
  .superRefine((definition, ctx) => {
    for (const issue of graphIssues(definition.steps)) ctx.addIssue({ code: "custom", ...issue });
  });

export type WorkflowDefinition = z.output<typeof WorkflowDefinitionSchema>;
export type WorkflowStep = WorkflowDefinition["steps"][number];
export type ChatStep = Extract<WorkflowStep, { kind: "llm" | "map" }>;

interface Issue {
  path: (string | number)[];
  message: string;
}

/** Duplicate ids, unknown needs, cycles, and templates naming steps that are not upstream. */
function graphIssues(steps: readonly WorkflowStep[]): Issue[] {
  const issues: Issue[] = [];
  const ids = new Set<string>();
  steps.forEach((s, i) => {
    if (ids.has(s.id)) issues.push({ path: ["steps", i, "id"], message: `duplicate step id "${s.id}"` });
    ids.add(s.id);
  });
  steps.forEach((s, i) => {
    s.needs.forEach((need, j) => {
      if (!ids.has(need)) issues.push({ path: ["steps", i, "needs", j], message: `unknown step "${need}"` });
    });
  });
  const order = topologicalOrder(steps);
  if ("cycle" in order) {
    issues.push({ path: ["steps"], message: `steps need each other in a cycle: ${order.cycle.join(" -> ")}` });
    return issues;
  }
  const upstream = upstreamOf(steps);
  steps.forEach((s, i) => {
    const check = (text: string, path: (string | number)[], allowItem: boolean) => {
      const parsed = parseTemplate(text);
      if ("problem" in parsed) {
        issues.push({ path, message: parsed.problem });
        return;
      }
      for (const ref of parsed.references) {
        const problem = referenceProblem(ref, s.id, upstream.get(s.id)!, allowItem);
        if (problem) issues.push({ path, message: problem });
      }
    };
    if (s.kind === "effect") {
      check(s.body, ["steps", i, "body"], false);
      if (!isJsonTemplate(s.body))
        issues.push({
          path: ["steps", i, "body"],
          message: "must be JSON with each {{reference}} standing for one value (not inside quotes)",
        });
    } else
      s.messages.forEach((m, j) => {
        check(m.content, ["steps", i, "messages", j, "content"], s.kind === "map");
      });
    if (s.kind === "map") {
      const over = parseReference(s.over);
      if (typeof over === "string") issues.push({ path: ["steps", i, "over"], message: over });
      else {
        const problem =
          over.root === "item" ? "a map step's list comes from input or a step" : referenceProblem(over, s.id, upstream.get(s.id)!, false);
        if (problem) issues.push({ path: ["steps", i, "over"], message: problem });
      }
      if (s.minSuccesses !== undefined && s.minSuccesses > s.maxItems)
        issues.push({ path: ["steps", i, "minSuccesses"], message: `must be at most maxItems (${s.maxItems})` });
    }
  });
  return issues;
}

function referenceProblem(ref: Reference, stepId: string, upstream: ReadonlySet<string>, allowItem: boolean): string | undefined {
  if (ref.root === "item" && !allowItem) return "{{item}} is only for a map step's messages";
  if (ref.root === "step" && !upstream.has(ref.step))
    return `"steps.${ref.step}" is not upstream of step "${stepId}": add it (or a step that needs it) to needs`;
  return undefined;
}

/** What the definition asks of the tenant's config: model aliases it has, effect hosts it allows. */
export function configIssues(definition: WorkflowDefinition, aliases: ReadonlySet<string>, effectHosts: readonly string[]): Issue[] {
  const issues: Issue[] = [];
  definition.steps.forEach((s, i) => {
    if (s.kind === "effect") {
      const host = new URL(s.url).hostname;
      if (!effectHosts.includes(host))
        issues.push({ path: ["steps", i, "url"], message: `host "${host}" is not in the tenant's workflows.effectHosts` });
    } else if (!aliases.has(s.model)) issues.push({ path: ["steps", i, "model"], message: `unknown model alias "${s.model}"` });
  });
  return issues;
}
