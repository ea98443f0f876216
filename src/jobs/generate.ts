// An async generation's job: runs the stored request as background work (background.ts) under the
// generation's journal key, so a client re-attached to its stream and a redelivered message share
// one generation, and stores the answer. What the queue gives up on ends failed, and as a dead
// letter with its request, so it can be run again.
import type { Env } from "../env";
import { readTenantConfig } from "../config/store";
import { recordGaveUp } from "./gave-up";
import { runInBackground } from "./background";
import { GenerationStore } from "./generations";
import type { JobMessage } from "./messages";

type GenerateJob = Extract<JobMessage, { kind: "generate" }>;

/** Statuses worth another try later: the tenant's queue was full, every backend was down, the gate was away. */
export const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** The journal key a generation runs under (background.ts prefixes it). */
export const generationKey = (id: string) => `gen:${id}`;

export async function generate(job: GenerateJob, env: Env): Promise<"done" | "retry"> {
  const store = new GenerationStore(env.DB, job.tenant);
  const [found, config] = await Promise.all([store.withRequest(job.generationId), readTenantConfig(env, job.tenant)]);
  if (!found || !config || found.generation.status === "completed" || found.generation.status === "failed") return "done";
  const { generation, request } = found;
  await store.started(generation.id, Date.now());
  const work = { tenant: job.tenant, config, key: generationKey(generation.id), path: `/v1/generations/${generation.id}`, request };
  const answer = await runInBackground(env, work, { signal: new AbortController().signal });
  if (RETRYABLE.has(answer.status)) return "retry";
  await store.finish(generation.id, { status_code: answer.status, body: answer.body }, Date.now());
  return "done";
}

/** The queue gave up on the generation: it ends failed, and becomes a dead letter that keeps its request. */
export async function generationGaveUp(job: GenerateJob, env: Env): Promise<void> {
  const store = new GenerationStore(env.DB, job.tenant);
  const request = (await store.withRequest(job.generationId))?.request;
  if (!request) return;
  const message =
    "The generation failed every delivery the jobs queue tried (its backends kept failing, or the tenant's queue stayed full).";
  await store.finish(
    job.generationId,
    { status_code: 502, body: { error: { message, type: "server_error", code: "generation_failed" } } },
    Date.now(),
  );
  await recordGaveUp(env, {
    tenant: job.tenant,
    requestId: job.generationId,
    model: request.model,
    code: "generation_failed",
    message,
    request,
  });
}
