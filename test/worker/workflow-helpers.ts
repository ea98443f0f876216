// Helpers of the workflow tests (workflows.test.ts, workflow-definitions.test.ts): a tenant whose
// roles each have a sim (planner a, retrievers b, summarizer c), the research workflow, and calls
// to start and follow runs.
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { jsonAnswerFor } from "../../sim/agent";
import type { TenantConfigInput } from "../../src/config/schema";
import { ADMIN, createTenant, eventually, RECEIVER, simUrl } from "./helpers";

/** Runs go through Workflows, the gate and the sims: generous, never waited out when things work. */
export const RUN_WAIT_MS = 60_000;
export const RECEIVER_HOST = new URL(RECEIVER).hostname;

/** planner on sim a, retrievers on sim b, summarizer on sim c: a fault on one sim hits one role. */
export function rolesConfig(overrides: Partial<TenantConfigInput> = {}): TenantConfigInput {
  return {
    backends: (["a", "b", "c"] as const).map((s) => ({ id: s, region: "us-east", url: simUrl(s), model: "sim-model" })),
    models: { planner: { route: ["a"] }, retriever: { route: ["b"] }, summarizer: { route: ["c"] } },
    retry: { maxAttempts: 1 },
    breaker: { consecutiveFailures: 1000, minRequests: 1000 },
    workflows: { effectHosts: [RECEIVER_HOST] },
    // The receiver listens on 127.0.0.1: the operator allows this tenant's effects there.
    outbound: { allowPrivateHosts: true },
    ...overrides,
  };
}

/** planner -> retrieve (map over its questions) + web (optional) -> summarize -> publish (effect to `hook`). */
export function researchWorkflow(hook: string, overrides: { retrieve?: object; web?: object; plan?: object } = {}) {
  return {
    steps: [
      {
        id: "plan",
        kind: "llm",
        model: "planner",
        messages: [{ role: "user", content: "Plan three questions about {{input.topic}}" }],
        output: { format: "json", required: ["questions"] },
        attempts: 2,
        ...overrides.plan,
      },
      {
        id: "retrieve",
        kind: "map",
        needs: ["plan"],
        over: "steps.plan.questions",
        model: "retriever",
        messages: [{ role: "user", content: "Answer briefly: {{item}}" }],
        minSuccesses: 2,
        attempts: 2,
        ...overrides.retrieve,
      },
      {
        id: "web",
        kind: "llm",
        needs: ["plan"],
        optional: true,
        model: "retriever",
        attempts: 2,
        messages: [{ role: "user", content: "Search the web for {{input.topic}}" }],
        ...overrides.web,
      },
      {
        id: "summarize",
        kind: "llm",
        needs: ["retrieve", "web"],
        model: "summarizer",
        messages: [{ role: "user", content: "Summarize: {{steps.retrieve}} Web: {{steps.web}}" }],
      },
      { id: "publish", kind: "effect", needs: ["summarize"], url: `${RECEIVER}${hook}`, body: '{"summary": {{steps.summarize}}}' },
    ],
  };
}

export const admin = (path: string, init: RequestInit = {}) =>
  SELF.fetch(`https://sluice.test/admin/tenants/${path}`, { ...init, headers: { ...ADMIN, "content-type": "application/json" } });
export const v1 = (key: string, path: string, init: RequestInit = {}) =>
  SELF.fetch(`https://sluice.test/v1/workflows/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });

export async function setup(hook: string, overrides: Parameters<typeof researchWorkflow>[1] = {}, config: Partial<TenantConfigInput> = {}) {
  const tenant = await createTenant(rolesConfig(config));
  const put = await admin(`${tenant.tenant}/workflows/research`, {
    method: "PUT",
    body: JSON.stringify(researchWorkflow(hook, overrides)),
  });
  expect(put.status, await put.clone().text()).toBe(200);
  return tenant;
}

export async function start(key: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await v1(key, "research/runs", { method: "POST", body: JSON.stringify({ input: { topic: "tides" } }), headers });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return res.json();
}

export async function ended(key: string, id: string): Promise<any> {
  let run: any;
  await eventually(async () => {
    run = await (await v1(key, `runs/${id}`)).json();
    return ["completed", "partial", "failed", "cancelled"].includes(run.status);
  }, RUN_WAIT_MS);
  return run;
}

export const stepOf = (run: any, id: string) => run.steps.find((s: any) => s.id === id);
export const planQuestions = () =>
  JSON.parse(jsonAnswerFor({ model: "sim-model", messages: [{ role: "user", content: "Plan three questions about tides" }] })).questions;
