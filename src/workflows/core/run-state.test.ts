import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WorkflowDefinitionSchema } from "./definition";
import { backoffMs, gaveUp, inputsFor, runOutcome, type StepEnd } from "./run-state";

const llm = (id: string, needs: string[] = [], optional = false) => ({
  id,
  kind: "llm" as const,
  model: "chat",
  needs,
  optional,
  messages: [{ role: "user" as const, content: "x" }],
});
const definition = WorkflowDefinitionSchema.parse({ steps: [llm("plan"), llm("web", ["plan"], true), llm("sum", ["plan", "web"])] });
const [plan, web, sum] = definition.steps as [any, any, any];

/** The run's outcome when plan, web and sum ended so. */
const outcomeOf = (plan: StepEnd, web: StepEnd, sum: StepEnd) =>
  runOutcome(
    definition,
    new Map([
      ["plan", plan],
      ["web", web],
      ["sum", sum],
    ]),
  );

describe("workflow run state", () => {
  it("a step gets its inputs, a skipped optional one as a marker; a failed required one blocks it", () => {
    const ends = new Map<string, StepEnd>([
      ["plan", { status: "succeeded", output: { q: 1 } }],
      ["web", gaveUp(web, "HTTP 502")],
    ]);
    expect(ends.get("web")).toEqual({ status: "skipped", error: "HTTP 502" });
    expect(inputsFor(sum, ends)).toEqual({
      steps: new Map([
        ["plan", { ok: true, output: { q: 1 } }],
        ["web", { ok: false, reason: "HTTP 502" }],
      ]),
    });
    expect(inputsFor(web, new Map([["plan", gaveUp(plan, "bad JSON")]]))).toEqual({ blockedBy: "plan" });
  });

  it("a run is complete only when every step succeeded in full; partial with a skip or failed map items; failed with a failed required step", () => {
    const ok: StepEnd = { status: "succeeded", output: "x" };
    expect(outcomeOf(ok, ok, ok)).toBe("completed");
    expect(outcomeOf(ok, gaveUp(web, "e"), ok)).toBe("partial");
    const someItems: StepEnd = { status: "succeeded", output: [], items: { total: 3, succeeded: 2 } };
    expect(outcomeOf(ok, ok, someItems)).toBe("partial");
    expect(outcomeOf(gaveUp(plan, "e"), { status: "not_run", error: "plan failed" }, { status: "not_run", error: "" })).toBe("failed");
  });

  it("property: the outcome is failed exactly when a step failed or did not run, and complete exactly when all succeeded in full", () => {
    const end = fc.oneof(
      fc.constant<StepEnd>({ status: "succeeded", output: 1 }),
      fc.constant<StepEnd>({ status: "succeeded", output: [], items: { total: 3, succeeded: 2 } }),
      fc.constant<StepEnd>({ status: "skipped", error: "e" }),
      fc.constant<StepEnd>({ status: "failed", error: "e" }),
      fc.constant<StepEnd>({ status: "not_run", error: "e" }),
    );
    fc.assert(
      fc.property(fc.tuple(end, end, end), (three) => {
        const ends = new Map(["plan", "web", "sum"].map((id, i) => [id, three[i]!]));
        const outcome = runOutcome(definition, ends);
        const failed = three.some((e) => e.status === "failed" || e.status === "not_run");
        const full = three.every((e) => e.status === "succeeded" && !e.items);
        return (outcome === "failed") === failed && (outcome === "completed") === full;
      }),
    );
  });

  it("property: backoff stays within 50 ms .. 5 s, doubling its ceiling per attempt", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 1, noNaN: true }), (attempt, r) => {
        const ms = backoffMs(attempt, () => r);
        return ms >= 1 && ms <= Math.min(5_000, 50 * 2 ** (attempt - 1));
      }),
    );
    expect(backoffMs(1, () => 1)).toBe(50);
    expect(backoffMs(30, () => 1)).toBe(5_000);
  });
});
