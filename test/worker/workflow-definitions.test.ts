// Workflow definitions and bounds through the admin and client APIs, on Miniflare's local
// Workflows: what is refused and why, versions a running run keeps, the per-tenant run limit, and
// what deleting a tenant leaves (nothing).
import { SELF, env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { admin, ended, RECEIVER_HOST, researchWorkflow, rolesConfig, RUN_WAIT_MS, setup, start, stepOf, v1 } from "./workflow-helpers";
import { ADMIN, createTenant, eventually, expectError, release, resetSims, simControl, simStats } from "./helpers";

beforeEach(resetSims);

describe("workflow definitions", () => {
  it("refuse what would not run, with a 400 saying what", async () => {
    const { tenant } = await createTenant(rolesConfig());
    const put = (definition: unknown, name = "w") =>
      admin(`${tenant}/workflows/${name}`, { method: "PUT", body: JSON.stringify(definition) });
    const llm = (id: string, needs: string[], content = "x", model = "planner") => ({
      id,
      kind: "llm",
      model,
      needs,
      messages: [{ role: "user", content }],
    });
    await expectError(await put({ steps: [llm("a", ["b"]), llm("b", ["a"])] }), 400, "invalid_request", /cycle: a -> b -> a/);
    await expectError(await put({ steps: [llm("a", ["ghost"])] }), 400, "invalid_request", /unknown step "ghost"/);
    await expectError(
      await put({ steps: [llm("a", []), llm("b", [], "{{steps.a}}")] }),
      400,
      "invalid_request",
      /not upstream of step "b"/,
    );
    await expectError(await put({ steps: [llm("a", [], "x", "nope")] }), 400, "invalid_workflow", /unknown model alias "nope"/);
    await expectError(
      await put({ steps: [{ id: "e", kind: "effect", url: "https://elsewhere.example.com/x" }] }),
      400,
      "invalid_workflow",
      /host "elsewhere.example.com" is not in the tenant's workflows.effectHosts/,
    );
    await expectError(await put({ steps: [llm("a", [])] }, "runs"), 400, "invalid_workflow_name");
    const big = { steps: [llm("a", [], "x".repeat(70_000))] };
    expect((await put(big)).status).toBe(413);
  });

  it("a running workflow keeps the version it started with; a deleted one starts no run", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { tenant, key } = await setup(hook);
    await simControl("a", { holdNew: "v1" });
    const first = await start(key);
    await eventually(async () => (await simStats("a")).held === 1, RUN_WAIT_MS);
    // Version 2 has no effect step; the running run still has one.
    const v2 = researchWorkflow(hook);
    v2.steps = v2.steps.filter((s) => s.id !== "publish");
    expect(((await (await admin(`${tenant}/workflows/research`, { method: "PUT", body: JSON.stringify(v2) })).json()) as any).version).toBe(
      2,
    );
    await simControl("a", { holdNew: "" });
    await release("v1", "a");
    const run = await ended(key, first.id);
    expect(run.version).toBe(1);
    expect(stepOf(run, "publish").status).toBe("succeeded");
    expect((await admin(`${tenant}/workflows/research`, { method: "DELETE" })).status).toBe(200);
    await expectError(await v1(key, "research/runs", { method: "POST", body: "{}" }), 404, "workflow_not_found");
  });

  it("bounds runs at once per tenant with a 429", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { key } = await setup(hook, {}, { workflows: { effectHosts: [RECEIVER_HOST], maxConcurrentRuns: 1 } });
    await simControl("a", { holdNew: "bound" });
    const first = await start(key);
    await expectError(await v1(key, "research/runs", { method: "POST", body: "{}" }), 429, "too_many_runs");
    await simControl("a", { holdNew: "" });
    await release("bound", "a");
    await ended(key, first.id);
  });

  it("a deleted tenant leaves no workflow, run, step or event behind, and its running runs are stopped", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { tenant, key } = await setup(hook);
    const done = await ended(key, (await start(key)).id);
    await simControl("a", { holdNew: "deleted" });
    const held = await start(key);
    await eventually(async () => (await simStats("a")).held === 1, RUN_WAIT_MS);
    expect((await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    expect((await (await env.WORKFLOWS.get(held.id)).status()).status).toBe("terminated");
    await simControl("a", { holdNew: "" });
    await release("deleted", "a");
    const count = async (sql: string) => (await env.DB.prepare(sql).bind(done.id, held.id).first<{ n: number }>())!.n;
    expect(await count(`SELECT COUNT(*) AS n FROM workflow_runs WHERE id IN (?, ?)`)).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM workflow_steps WHERE run_id IN (?, ?)`)).toBe(0);
    expect(await count(`SELECT COUNT(*) AS n FROM workflow_events WHERE run_id IN (?, ?)`)).toBe(0);
    const definitions = await env.DB.prepare(`SELECT COUNT(*) AS n FROM workflow_definitions WHERE tenant = ?`)
      .bind(tenant)
      .first<{ n: number }>();
    expect(definitions!.n).toBe(0);
  });

  it("a re-created tenant starts empty: the Idempotency-Key of a run of the deleted one starts a new run that runs", async () => {
    const hook = `/hooks/wf-${crypto.randomUUID()}`;
    const { tenant, key } = await setup(hook);
    const headers = { "idempotency-key": "k1" };
    const old = await ended(key, (await start(key, headers)).id);
    expect((await SELF.fetch(`https://sluice.test/admin/tenants/${tenant}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
    const renewed = await createTenant(rolesConfig(), tenant);
    expect((await admin(`${tenant}/workflows/research`, { method: "PUT", body: JSON.stringify(researchWorkflow(hook)) })).status).toBe(200);
    const again = await start(renewed.key, headers);
    expect(again.id).not.toBe(old.id);
    expect((await ended(renewed.key, again.id)).status).toBe("completed");
    expect((await start(renewed.key, headers)).id).toBe(again.id);
  });

  it("an effect endpoint that answers without end is cut at 64 KiB: the step fails saying so", async () => {
    const { tenant, key } = await createTenant(rolesConfig());
    const endless = `http://127.0.0.1:${env.ROGUE_PORT}/endless-json`;
    const definition = { steps: [{ id: "post", kind: "effect", url: endless, attempts: 1, body: "{}" }] };
    expect((await admin(`${tenant}/workflows/endless`, { method: "PUT", body: JSON.stringify(definition) })).status).toBe(200);
    const res = await v1(key, "endless/runs", { method: "POST", body: "{}" });
    const run = await ended(key, ((await res.json()) as { id: string }).id);
    expect(run.status).toBe("failed");
    expect(stepOf(run, "post")).toMatchObject({ status: "failed", error: "the endpoint's answer is over 65536 bytes" });
  });

  it("a map over an empty list succeeds with no items; over something not a list, it fails saying so", async () => {
    const { tenant, key } = await createTenant(rolesConfig());
    const map = {
      id: "each",
      kind: "map",
      over: "input.list",
      model: "retriever",
      attempts: 1,
      messages: [{ role: "user", content: "{{item}}" }],
    };
    expect((await admin(`${tenant}/workflows/each`, { method: "PUT", body: JSON.stringify({ steps: [map] }) })).status).toBe(200);
    const runWith = async (input: unknown) => {
      const res = await v1(key, "each/runs", { method: "POST", body: JSON.stringify({ input }) });
      return ended(key, ((await res.json()) as { id: string }).id);
    };
    const empty = await runWith({ list: [] });
    expect(empty.status).toBe("completed");
    expect(stepOf(empty, "each")).toMatchObject({ status: "succeeded", output: [], items: { total: 0, succeeded: 0 }, attempts: 0 });
    const notList = await runWith({ list: "three things" });
    expect(notList.status).toBe("failed");
    expect(stepOf(notList, "each")).toMatchObject({ status: "failed", error: '"input.list" is not a list' });
    expect((await simStats("b")).requests).toBe(0);
  });
});
