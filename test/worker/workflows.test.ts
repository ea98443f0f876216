// Workflows end to end on Miniflare's local Workflows: runs of planner -> retrievers (map) ->
// summarizer -> effect against real sims (one per role, so a fault hits one role) and a real
// receiver for the effect; optional steps, partial success, invalid JSON, a run stopped between
// steps and resumed, an effect that fails once, a refusal waited out, idempotent starts, events, cancel.
import { SELF, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { admin, ended, planQuestions, rolesConfig, RUN_WAIT_MS, setup, start, stepOf, v1 } from "./workflow-helpers";
import {
  ADMIN,
  answerWith,
  chat,
  createTenant,
  eventually,
  expectError,
  received,
  release,
  resetSims,
  simControl,
  simStats,
} from "./helpers";

beforeEach(resetSims);

describe("workflow runs", () => {
  it("run planner -> retrievers -> summarizer -> effect: every step once, the effect called once with its Idempotency-Key", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    const run = await ended(key, (await start(key)).id);
    expect(run.status).toBe("completed");
    expect(stepOf(run, "plan")).toMatchObject({ status: "succeeded", attempts: 1, backend: "a", output: { questions: planQuestions() } });
    expect(stepOf(run, "retrieve")).toMatchObject({ status: "succeeded", items: { total: 3, succeeded: 3 } });
    expect(stepOf(run, "retrieve").output).toHaveLength(3);
    expect(stepOf(run, "retrieve").tokens).toBeGreaterThan(0);
    expect(stepOf(run, "summarize")).toMatchObject({ status: "succeeded", backend: "c" });
    expect(stepOf(run, "summarize").tokens).toBeGreaterThan(0);
    expect(stepOf(run, "summarize").ended_at).toBeGreaterThanOrEqual(stepOf(run, "summarize").started_at);
    expect(typeof stepOf(run, "summarize").output).toBe("string");
    expect(stepOf(run, "publish")).toMatchObject({ status: "succeeded", output: { status: 204 } });
    const calls = await received(hook);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.headers["idempotency-key"]).toBe(`${run.id}:publish`);
    expect(JSON.parse(calls[0]!.body)).toEqual({ summary: stepOf(run, "summarize").output });
    // plan 1, retrievers 3 + web 1, summarizer 1.
    expect([(await simStats("a")).requests, (await simStats("b")).requests, (await simStats("c")).requests]).toEqual([1, 4, 1]);
  });

  it("a retriever that always fails: optional, it is skipped and the run is partial; required, the run fails and keeps what completed", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    // web always fails (its own prompt), the map's items succeed.
    const { tenant, key } = await setup(hook, { web: { model: "planner", output: { format: "json", required: ["nowhere"] } } });
    const partial = await ended(key, (await start(key)).id);
    expect(partial.status).toBe("partial");
    expect(stepOf(partial, "web")).toMatchObject({
      status: "skipped",
      attempts: 2,
      error: 'the answer\'s JSON lacks the required field "nowhere"',
    });
    // The summarizer saw the marker, not the output.
    expect(stepOf(partial, "summarize").status).toBe("succeeded");
    expect(await received(hook)).toHaveLength(1);

    // Now the map's retrievers fail (sim b down) and the map is required: the run fails.
    await simControl("b", { failRate: 1, failStatus: 503 });
    const failed = await ended(key, (await start(key)).id);
    expect(failed.status).toBe("failed");
    expect(failed.error).toMatch(/^step retrieve failed: 0 of 3 items succeeded, 2 needed \(first error: HTTP 5\d\d/);
    expect(stepOf(failed, "plan")).toMatchObject({ status: "succeeded", output: { questions: planQuestions() } });
    expect(stepOf(failed, "summarize")).toMatchObject({ status: "not_run", error: "step retrieve failed" });
    expect(stepOf(failed, "publish")).toMatchObject({ status: "not_run" });
    expect(await received(hook)).toHaveLength(1);

    // The operator's view: runs by outcome, failures by step and backend, skips, effect calls.
    const summary = (await (await admin(`${tenant}/workflows`)).json()) as any;
    expect(summary.runs).toEqual({ partial: 1, failed: 1 });
    expect(summary.effectCalls).toBe(1);
    expect(summary.stepFailures).toEqual(
      expect.arrayContaining([
        { step: "web", failed: 0, skipped: 2 },
        { step: "retrieve", failed: 1, skipped: 0 },
      ]),
    );
    // Three items, two attempts each, all refused by sim b; web's four bad answers came from sim a.
    expect(summary.attemptFailures).toEqual(
      expect.arrayContaining([
        { step: "retrieve", backend: "b", failures: 6 },
        { step: "web", backend: "a", failures: 4 },
      ]),
    );
    const metrics = await (await admin(`${tenant}/metrics`)).text();
    expect(metrics).toContain(`sluice_workflow_runs{tenant="${tenant}",status="failed"} 1`);
    expect(metrics).toContain(`sluice_workflow_steps_skipped{tenant="${tenant}",step="web"} 2`);
    expect(metrics).toContain(`sluice_workflow_effect_calls{tenant="${tenant}"} 1`);
    // And in the fleet's scrape, beside every other tenant's.
    const fleet = await (await SELF.fetch("https://sluice.test/admin/metrics", { headers: ADMIN })).text();
    expect(fleet).toContain(`sluice_workflow_runs{tenant="${tenant}",status="partial"} 1`);
  });

  it("three retrievers where one fails still feed the summarizer (minSuccesses 2): a partial success", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    // The third question's retriever is refused by its sim at every attempt.
    await simControl("b", { failMatching: planQuestions()[2], failStatus: 503 });
    const run = await ended(key, (await start(key)).id);
    expect(run.status).toBe("partial");
    expect(stepOf(run, "retrieve")).toMatchObject({ status: "succeeded", items: { total: 3, succeeded: 2 } });
    expect(stepOf(run, "retrieve").output).toHaveLength(2);
    expect(stepOf(run, "summarize").status).toBe("succeeded");
    expect(stepOf(run, "publish").status).toBe("succeeded");
    // Two items once each, the third twice (its attempts), and web once.
    expect((await simStats("b")).requests).toBe(2 + 2 + 1);
  });

  it("a planner that answers with text instead of JSON is retried, then fails the run clearly", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    await simControl("a", { ignoreJsonMode: true });
    const run = await ended(key, (await start(key)).id);
    expect(run.status).toBe("failed");
    expect(stepOf(run, "plan")).toMatchObject({
      status: "failed",
      attempts: 2,
      error: expect.stringMatching(/^the answer is not JSON: "/),
    });
    expect(run.error).toMatch(/^step plan failed: the answer is not JSON/);
    expect((await simStats("a")).requests).toBe(2);
    expect((await simStats("b")).requests).toBe(0);
  });

  it("an effect whose endpoint fails once is called again with the same Idempotency-Key, and applied once", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    await answerWith(hook, 500, 1);
    const run = await ended(key, (await start(key)).id);
    expect(run.status).toBe("completed");
    const calls = await received(hook);
    expect(calls.map((c) => c.status)).toEqual([500, 204]);
    expect(new Set(calls.map((c) => c.headers["idempotency-key"]))).toEqual(new Set([`${run.id}:publish`]));
    expect(stepOf(run, "publish")).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("a run stopped between steps resumes where it stopped: completed steps are not run again", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    await simControl("b", { holdNew: "wf" });
    const { id } = await start(key);
    // The planner is done and the four retriever calls wait at sim b.
    await eventually(async () => (await simStats("b")).held === 4, RUN_WAIT_MS);
    const instance = await env.WORKFLOWS.get(id);
    await instance.pause();
    await simControl("b", { holdNew: "" });
    await release("wf", "b");
    // Paused once nothing runs: its run() was stopped after the retrievers, before the summarizer.
    await eventually(async () => (await instance.status()).status === "paused", RUN_WAIT_MS);
    expect((await simStats("c")).requests).toBe(0);
    await instance.resume();
    const run = await ended(key, id);
    expect(run.status).toBe("completed");
    // Replayed from the durable steps, not called again.
    expect([(await simStats("a")).requests, (await simStats("b")).requests, (await simStats("c")).requests]).toEqual([1, 4, 1]);
    expect(await received(hook)).toHaveLength(1);
  });

  it("a step the router refuses for now (its queue timed out) waits and comes back, without spending an attempt", async () => {
    const { tenant, key } = await createTenant(rolesConfig({ limits: { maxConcurrency: 1, maxQueue: 8, maxQueueWaitMs: 50 } }));
    const solo = {
      steps: [{ id: "ask", kind: "llm", model: "planner", attempts: 1, messages: [{ role: "user", content: "{{input.topic}}" }] }],
    };
    expect((await admin(`${tenant}/workflows/solo`, { method: "PUT", body: JSON.stringify(solo) })).status).toBe(200);
    // The tenant's only slot is held: the step's call waits 50 ms in the queue and is refused, again and again.
    const held = chat(key, { model: "planner", messages: [{ role: "user", content: "hold" }], sim_fault: { hold: "slot" } });
    await eventually(async () => (await simStats("a")).held === 1, RUN_WAIT_MS);
    const res = await v1(key, "solo/runs", { method: "POST", body: JSON.stringify({ input: { topic: "tides" } }) });
    const { id } = (await res.json()) as { id: string };
    const deferred = async () =>
      (await env.DB.prepare(`SELECT COUNT(*) AS n FROM workflow_events WHERE run_id = ? AND key LIKE 'deferred:%'`)
        .bind(id)
        .first<{ n: number }>())!.n;
    await eventually(async () => (await deferred()) >= 2, RUN_WAIT_MS);
    expect(((await (await v1(key, `runs/${id}`)).json()) as any).status).toBe("running");
    await release("slot", "a");
    expect((await held).status).toBe(200);
    const run = await ended(key, id);
    expect(run.status).toBe("completed");
    expect(stepOf(run, "ask")).toMatchObject({ status: "succeeded", attempts: 1 });
  });

  it("a second start with the same Idempotency-Key is the same run", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    const headers = { "idempotency-key": "start-once" };
    const [one, two] = await Promise.all([start(key, headers), start(key, headers)]);
    expect(two.id).toBe(one.id);
    await ended(key, one.id);
    expect((await start(key, headers)).id).toBe(one.id);
    expect((await simStats("a")).requests).toBe(1);
    const list = (await (await v1(key, "runs")).json()) as any;
    expect(list.data.map((r: any) => r.id)).toEqual([one.id]);
  });

  it("follows a run's events as SSE, resumable with Last-Event-ID; cancel stops a run", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook);
    const run = await ended(key, (await start(key)).id);
    const all = await (await v1(key, `runs/${run.id}/events`)).text();
    const events = [...all.matchAll(/^id: (\d+)\nevent: ([a-z._]+)\n/gm)].map((m) => [Number(m[1]), m[2]]);
    expect(events[0]![1]).toBe("run.running");
    expect(events.at(-1)![1]).toBe("run.completed");
    expect(events.filter((e) => e[1] === "step.succeeded")).toHaveLength(5);
    const [cut] = events[3]!;
    const rest = await (await v1(key, `runs/${run.id}/events`, { headers: { "last-event-id": String(cut) } })).text();
    expect([...rest.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))).toEqual(events.slice(4).map((e) => e[0]));

    await simControl("a", { holdNew: "cancel-me" });
    const held = await start(key);
    await eventually(async () => (await simStats("a")).held === 1, RUN_WAIT_MS);
    const cancelled = (await (await v1(key, `runs/${held.id}/cancel`, { method: "POST" })).json()) as any;
    expect(cancelled.status).toBe("cancelled");
    await expectError(await v1(key, `runs/${held.id}/cancel`, { method: "POST" }), 409, "run_ended");
    await simControl("a", { holdNew: "" });
    await release("cancel-me", "a");
    expect(((await (await v1(key, `runs/${held.id}`)).json()) as any).status).toBe("cancelled");
  });
});
