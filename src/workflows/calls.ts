// The calls a workflow step makes, each run inside one durable `step.do` (runner.ts): a chat request
// through the same gate and dispatch path as an interactive one, and an effect's HTTP call. Each
// throws what went wrong in words fit for the run's record (never internal error text).
import type { Env } from "../env";
import type { ChatRequest } from "../config/chat-request";
import { readTenantConfig } from "../config/store";
import { backendUrlProblem } from "../config/backend-url";
import { serveDetached } from "../serve/detached";
import { readWithin } from "../stream/read-within";
import { outboundUrlPolicy } from "../serve/url-policy";
import type { ChatStep, WorkflowDefinition, WorkflowStep } from "./core/definition";
import { checkOutput } from "./core/output-check";
import { render, type TemplateScope } from "./core/template";
import { MAX_OUTPUT_BYTES } from "./store";

/**
 * A failed attempt: what went wrong, and the backend that answered (none for an effect, or when no
 * backend was reached). `deferMs`: the router refused the call for now (see DEFERRED): come back
 * after this long; it cost no attempt.
 */
export class CallFailure extends Error {
  constructor(
    message: string,
    readonly backend: string | null = null,
    readonly deferMs?: number,
  ) {
    super(message);
  }
}

/** The router's "not now" answers (queue full or timed out, rate limited, every breaker open): a step waits them out. */
export const DEFERRED: ReadonlySet<string> = new Set(["queue_full", "queue_timeout", "rate_limited", "no_backend_available"]);

export interface CallResult {
  output: unknown;
  backend: string | null;
  tokens: number;
}

export interface RunRef {
  tenant: string;
  runId: string;
  definition: WorkflowDefinition;
}

/**
 * One attempt of an llm step (or of one item of a map step), under the journal key `key`: a
 * replayed attempt joins the generation still running or replays the stored answer.
 */
export async function chatCall(env: Env, run: RunRef, step: ChatStep, scope: TemplateScope, key: string): Promise<CallResult> {
  const config = await readTenantConfig(env, run.tenant);
  if (!config) throw new Error("the tenant was deleted");
  const request: ChatRequest = {
    model: step.model,
    messages: step.messages.map((m) => ({ role: m.role, content: render(m.content, scope) })),
    ...(step.maxTokens !== undefined ? { max_tokens: step.maxTokens } : {}),
    ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
    ...(step.output ? { response_format: { type: "json_object" } } : {}),
  };
  const answer = await serveDetached(
    env,
    {
      tenant: run.tenant,
      config,
      key: `wf:${run.runId}:${key}`,
      job: `workflow run ${run.runId} step ${key}`,
      request,
      priority: run.definition.priority,
    },
    { signal: AbortSignal.timeout(step.timeoutMs) },
  );
  const body = answer.body as {
    error?: { message?: string; code?: string };
    choices?: Array<{ message?: { content?: string | null } }>;
    usage?: { completion_tokens?: number };
  } | null;
  const backend = answer.backend || null;
  if (answer.status < 200 || answer.status >= 300) {
    const code = body?.error?.code;
    const message = `HTTP ${answer.status}${code ? ` ${code}` : ""}: ${body?.error?.message ?? "no answer"}`;
    // Refused before any backend was called: not the step's failure, the router's "later".
    const deferMs = code && DEFERRED.has(code) && answer.attempts === 0 ? (answer.retryAfterSeconds ?? 1) * 1000 : undefined;
    throw new CallFailure(message, backend, deferMs);
  }
  const checked = checkOutput(body?.choices?.[0]?.message?.content ?? "", step.output);
  if (!checked.ok) throw new CallFailure(checked.problem, backend);
  return { output: bounded(checked.output), backend, tokens: body?.usage?.completion_tokens ?? 0 };
}

/**
 * One attempt of an effect step: its call, with an Idempotency-Key that is the same for every
 * attempt (the run and step), so a receiver applies it once however often it is called.
 */
export async function effectCall(
  env: Env,
  run: RunRef,
  step: Extract<WorkflowStep, { kind: "effect" }>,
  scope: TemplateScope,
): Promise<CallResult> {
  const config = await readTenantConfig(env, run.tenant);
  if (!config) throw new Error("the tenant was deleted");
  const host = new URL(step.url).hostname;
  if (!config.workflows.effectHosts.includes(host)) throw new Error(`host "${host}" is no longer in the tenant's workflows.effectHosts`);
  const refused = backendUrlProblem(step.url, outboundUrlPolicy(env, config));
  if (refused) throw new Error(`the effect URL ${refused}`);
  let response: Response;
  try {
    response = await fetch(step.url, {
      method: step.method,
      headers: { "content-type": "application/json", "idempotency-key": `${run.runId}:${step.id}`, "user-agent": "sluice-workflows" },
      body: render(step.body, scope, "json"),
      redirect: "manual",
      signal: AbortSignal.timeout(step.timeoutMs),
    });
  } catch (err) {
    throw new Error(
      err instanceof Error && err.name === "TimeoutError" ? `no answer in ${step.timeoutMs} ms` : "the call failed to connect",
    );
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`the endpoint answered HTTP ${response.status}`);
  }
  // The answer is kept as the step's output: read at most that much, within the step's time.
  const read = await readWithin(response.body, MAX_OUTPUT_BYTES, step.timeoutMs);
  if (read.kind !== "read")
    throw new Error(
      read.kind === "too_large" ? `the endpoint's answer is over ${MAX_OUTPUT_BYTES} bytes` : "the endpoint's answer broke off",
    );
  const text = new TextDecoder().decode(read.bytes);
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Kept as text.
  }
  return { output: bounded({ status: response.status, body }), backend: null, tokens: 0 };
}

/** An output over MAX_OUTPUT_BYTES fails the attempt: it would not be kept whole. */
function bounded(output: unknown): unknown {
  const bytes = new TextEncoder().encode(JSON.stringify(output)).length;
  if (bytes > MAX_OUTPUT_BYTES) throw new Error(`the output is ${bytes} bytes, over the ${MAX_OUTPUT_BYTES} a step keeps`);
  return output;
}
