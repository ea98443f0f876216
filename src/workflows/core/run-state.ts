// How a workflow run's steps ended, and what that makes of the run (docs/workflows.md, "Workflows"). Partial
// success is an outcome of its own, never passed off as complete: an optional step skipped, or a
// map step with failed items, makes a run `partial`; a required step that failed makes it `failed`
// (what completed is kept). Pure.
import type { WorkflowDefinition, WorkflowStep } from "./definition";
import type { StepValue } from "./template";

export type StepStatus = "pending" | "running" | "succeeded" | "skipped" | "failed" | "not_run";
export type RunStatus = "queued" | "running" | "completed" | "partial" | "failed" | "cancelled";
export const ENDED_RUN: ReadonlySet<RunStatus> = new Set(["completed", "partial", "failed", "cancelled"]);

/** What a step that ran ended with (as the runner records it). */
export type StepEnd =
  | { status: "succeeded"; output: unknown; items?: { total: number; succeeded: number } }
  | { status: "skipped"; error: string }
  | { status: "failed"; error: string }
  | { status: "not_run"; error: string };

/** A step's inputs from what the steps it needs ended with; or why it cannot run (a required step it needs failed). */
export function inputsFor(
  step: WorkflowStep,
  ends: ReadonlyMap<string, StepEnd>,
): { steps: Map<string, StepValue> } | { blockedBy: string } {
  const steps = new Map<string, StepValue>();
  for (const need of step.needs) {
    const end = ends.get(need);
    if (!end || end.status === "failed" || end.status === "not_run") return { blockedBy: need };
    steps.set(need, end.status === "succeeded" ? { ok: true, output: end.output } : { ok: false, reason: end.error });
  }
  return { steps };
}

/** How a step that gave up ends: skipped when optional, failed when not. */
export function gaveUp(step: WorkflowStep, error: string): StepEnd {
  return step.optional ? { status: "skipped", error } : { status: "failed", error };
}

/** The run's outcome once every step ended. */
export function runOutcome(definition: WorkflowDefinition, ends: ReadonlyMap<string, StepEnd>): "completed" | "partial" | "failed" {
  let partial = false;
  for (const step of definition.steps) {
    const end = ends.get(step.id);
    if (!end || end.status === "failed" || end.status === "not_run") return "failed";
    if (end.status === "skipped" || (end.items && end.items.succeeded < end.items.total)) partial = true;
  }
  return partial ? "partial" : "completed";
}

/** Items a map step needs to succeed: minSuccesses, or every item. */
export const successesNeeded = (step: Extract<WorkflowStep, { kind: "map" }>, items: number) => Math.min(items, step.minSuccesses ?? items);

/** The wait before attempt `attempt + 1`: exponential from 50 ms to 5 s, full jitter (the router's retry backoff). */
export function backoffMs(attempt: number, random: () => number): number {
  const ceiling = Math.min(5_000, 50 * 2 ** (attempt - 1));
  return Math.max(1, Math.round(ceiling * random()));
}
