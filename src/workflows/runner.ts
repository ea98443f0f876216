// A workflow run on Cloudflare Workflows (docs/workflows.md, "Workflows"). Every attempt of every step is one
// durable `step.do`, so a crash or a redeploy resumes the run where it stopped: a completed attempt
// is never made again (its output is replayed), and an effect that succeeded is never repeated.
// Steps start as soon as what they need has ended, so independent steps run in parallel; a map
// step's items run `concurrency` at a time. Between attempts the run sleeps a jittered backoff
// (50 ms to 5 s) as a durable `step.sleep`. The run's record (D1: steps, events) is written
// outside the durable steps, idempotently, so a replay writes nothing twice.
import { WorkflowEntrypoint, type WorkflowEvent, type WorkflowStep as DurableStep } from "cloudflare:workers";
import pLimit from "p-limit";
import type { Env } from "../env";
import type { WorkflowStep } from "./core/definition";
import type { RunParams } from "./core/run-params";
import { topologicalOrder } from "./core/dag";
import { gaveUp, inputsFor, runOutcome, successesNeeded, type StepEnd } from "./core/run-state";
import { afterTry, FIRST_TRY, tryName } from "./core/tries";
import { resolve, type TemplateScope, parseReference } from "./core/template";
import { CallFailure, type CallResult, chatCall, effectCall, type RunRef } from "./calls";
import { WorkflowStore } from "./store";

type Attempted = { ok: true; result: CallResult; attempts: number } | { ok: false; error: string; attempts: number };

export class SluiceWorkflow extends WorkflowEntrypoint<Env, RunParams> {
  override async run(event: WorkflowEvent<RunParams>, step: DurableStep): Promise<{ outcome: string }> {
    const params = event.payload;
    const run = new Run(this.env, params, step);
    return { outcome: await run.all() };
  }
}

class Run {
  private readonly store: WorkflowStore;
  private readonly ref: RunRef;

  constructor(
    private readonly env: Env,
    private readonly params: RunParams,
    private readonly durable: DurableStep,
  ) {
    this.store = new WorkflowStore(env.DB, params.tenant);
    this.ref = { tenant: params.tenant, runId: params.runId, definition: params.definition };
  }

  async all(): Promise<string> {
    const { definition, runId } = this.params;
    // A run whose record is gone (its tenant was deleted) does nothing, and writes nothing.
    if ((await this.store.runStatus(runId)) === null) return "cancelled";
    await this.store.setRunStatus(runId, "running", Date.now());
    await this.event("run", { type: "run.running" });
    const order = topologicalOrder(definition.steps);
    if (!("order" in order)) throw new Error("the definition has a cycle"); // refused when stored
    const byId = new Map(definition.steps.map((s) => [s.id, s]));
    const ends = new Map<string, Promise<StepEnd>>();
    for (const id of order.order) ends.set(id, this.step(byId.get(id)!, ends));
    // All at once: a step stopped by the engine rejects while others still run, and that must go up, handled.
    const settled = new Map(await Promise.all([...ends].map(async ([id, end]) => [id, await end] as const)));
    const outcome = runOutcome(definition, settled);
    const failed = definition.steps.find((s) => settled.get(s.id)!.status === "failed");
    const error = failed ? `step ${failed.id} failed: ${(settled.get(failed.id) as { error: string }).error}` : undefined;
    await this.store.setRunStatus(runId, outcome, Date.now(), error);
    await this.event("run:end", { type: `run.${outcome}`, ...(error ? { error } : {}) });
    return outcome;
  }

  /** Waits for what `step` needs, runs it, and records how it ended. */
  private async step(step: WorkflowStep, ends: ReadonlyMap<string, Promise<StepEnd>>): Promise<StepEnd> {
    const needed = new Map(await Promise.all(step.needs.map(async (need) => [need, await ends.get(need)!] as const)));
    const inputs = inputsFor(step, needed);
    let end: StepEnd;
    if ("blockedBy" in inputs) end = { status: "not_run", error: `step ${inputs.blockedBy} failed` };
    else {
      await this.store.putStep(this.params.runId, { id: step.id, status: "running", started_at: Date.now() });
      await this.event(`step:${step.id}:running`, { type: "step.running", step: step.id });
      const scope: TemplateScope = { input: this.params.input, steps: inputs.steps };
      // What throws here stopped the run (the engine's stop, or a fault of sluice's own): it goes up,
      // and reading the run reconciles its record with the instance (api/workflows.ts).
      end = await this.execute(step, scope);
    }
    const { status } = end;
    await this.store.putStep(this.params.runId, {
      id: step.id,
      status,
      ended_at: Date.now(),
      ...(status === "succeeded" ? { output: end.output, items: end.items ?? null } : { error: end.error }),
    });
    await this.event(`step:${step.id}:end`, {
      type: `step.${status}`,
      step: step.id,
      kind: step.kind,
      ...(status === "succeeded" ? (end.items ? { items: end.items } : {}) : { error: end.error }),
    });
    return end;
  }

  private async execute(step: WorkflowStep, scope: TemplateScope): Promise<StepEnd> {
    if (step.kind === "map") return this.map(step, scope);
    const attempted = await this.attempts(step, step.id, (attempt) =>
      step.kind === "effect"
        ? effectCall(this.env, this.ref, step, scope)
        : chatCall(this.env, this.ref, step, scope, `${step.id}:${attempt}`),
    );
    if (!attempted.ok) return gaveUp(step, attempted.error);
    return { status: "succeeded", output: attempted.result.output };
  }

  /** A map step: each item of its list through the step's chat, `concurrency` at a time; done when enough succeed. */
  private async map(step: Extract<WorkflowStep, { kind: "map" }>, scope: TemplateScope): Promise<StepEnd> {
    const reference = parseReference(step.over);
    const found = typeof reference === "string" ? undefined : resolve(reference, scope);
    if (!found || "missing" in found || !Array.isArray(found.value))
      return gaveUp(step, `"${step.over}" is not a list${found && "missing" in found ? " (its step was skipped)" : ""}`);
    const items = found.value as unknown[];
    if (items.length > step.maxItems) return gaveUp(step, `"${step.over}" has ${items.length} items, over maxItems (${step.maxItems})`);
    const limit = pLimit(step.concurrency);
    const results = await Promise.all(
      items.map((item, i) =>
        limit(() =>
          this.attempts(step, `${step.id}[${i}]`, (attempt) =>
            chatCall(this.env, this.ref, step, { ...scope, item }, `${step.id}:${i}:${attempt}`),
          ),
        ),
      ),
    );
    const succeeded = results.filter((r) => r.ok);
    const counts = { total: items.length, succeeded: succeeded.length };
    const needed = successesNeeded(step, items.length);
    if (succeeded.length < needed) {
      const firstError = results.find((r) => !r.ok) as { error: string } | undefined;
      return gaveUp(step, `${succeeded.length} of ${items.length} items succeeded, ${needed} needed (first error: ${firstError?.error})`);
    }
    const tokens = succeeded.reduce((n, r) => n + r.result.tokens, 0);
    await this.store.putStep(this.params.runId, {
      id: step.id,
      status: "running",
      attempts: Math.max(0, ...results.map((r) => r.attempts)),
      tokens,
    });
    return { status: "succeeded", output: succeeded.map((r) => r.result.output), items: counts };
  }

  /**
   * The tries of `call` (core/tries.ts): each a durable step, replayed and not made again after a
   * restart; between them a durable sleep (the backoff, or a refusal's Retry-After).
   */
  private async attempts(step: WorkflowStep, name: string, call: (attempt: number) => Promise<CallResult>): Promise<Attempted> {
    let error = "";
    for (let t = FIRST_TRY; ; ) {
      const named = tryName(name, t);
      // A failed try is a result the durable step keeps, like a success: a replay moves on without
      // making it again. So a durable step that rejects was stopped by the engine (the run paused,
      // terminated, or its isolate going away): that goes up, never recorded as the step's failure.
      // (The call's own timeout ends it well before the engine's.)
      const kept = await this.durable.do(named, { retries: { limit: 0, delay: 0 }, timeout: step.timeoutMs * 2 + 60_000 }, () =>
        call(t.attempt).then(
          // Kept as JSON text: every output is JSON (the answer's text, or what it parsed to).
          ({ output, backend, tokens }) => ({ ok: true as const, output: JSON.stringify(output), backend, tokens }),
          (err: unknown) => ({
            ok: false as const,
            error: err instanceof Error ? err.message : String(err),
            backend: err instanceof CallFailure ? err.backend : null,
            deferMs: err instanceof CallFailure ? (err.deferMs ?? null) : null,
          }),
        ),
      );
      const next = afterTry(t, kept, step.attempts, Math.random);
      if (kept.ok) {
        const result: CallResult = { output: JSON.parse(kept.output), backend: kept.backend, tokens: kept.tokens };
        // A map step's items add up their tokens at the end (map); a step's own success is its record.
        if (step.kind !== "map") {
          const record = { id: step.id, status: "running" as const, attempts: t.attempt, tokens: result.tokens, backend: result.backend };
          await this.store.putStep(this.params.runId, record);
        }
        return { ok: true, result, attempts: t.attempt };
      }
      error = kept.error;
      if (next.kind === "defer") {
        await this.event(`deferred:${named}`, {
          type: "step.deferred",
          step: step.id,
          name,
          attempt: t.attempt,
          waitMs: next.waitMs,
          error,
        });
        await this.durable.sleep(`${named} wait`, next.waitMs);
        t = next.next;
        continue;
      }
      await this.store.putStep(this.params.runId, { id: step.id, status: "running", attempts: t.attempt });
      const failed = {
        type: "step.attempt_failed",
        step: step.id,
        kind: step.kind,
        name,
        attempt: t.attempt,
        backend: kept.backend,
        error,
      };
      await this.event(`attempt:${name}#${t.attempt}`, failed);
      if (next.kind !== "retry") return { ok: false, error, attempts: step.attempts };
      await this.durable.sleep(`${name}#${t.attempt} backoff`, next.waitMs);
      t = next.next;
    }
  }

  private event(key: string, event: Record<string, unknown>): Promise<void> {
    return this.store.addEvent(this.params.runId, key, { run: this.params.runId, ...event }, Date.now());
  }
}
