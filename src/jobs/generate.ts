// An async generation's job: runs the stored request as background work (serve/detached.ts) under the
// generation's journal key, so a client re-attached to its stream and a redelivered message share
// one generation, and stores the answer. What the queue gives up on ends failed, and as a dead
// letter with its request, so it can be run again. Either way its webhook, if any, is told.
import type { Env } from "../env";
import { readTenantConfig } from "../config/store";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../config/json-depth";
import { recordGaveUp } from "./gave-up";
import { serveDetached } from "../serve/detached";
import { GenerationStore, generationEnded } from "./generations";
import type { JobMessage } from "./messages";
import { announceEnd } from "./generation-webhook";
import { BackgroundResponses, runsResponse } from "./background-responses";

type GenerateJob = Extract<JobMessage, { kind: "generate" }>;

/** Statuses worth another try later: the tenant's queue was full, every backend was down, the gate was away. */
export const RETRYABLE = new Set([429, 500, 502, 503, 504]);

/** The journal key a generation runs under (serve/detached.ts prefixes it). */
export const generationKey = (id: string) => `gen:${id}`;

export async function generate(job: GenerateJob, env: Env): Promise<"done" | "retry"> {
  const store = new GenerationStore(env.DB, job.tenant);
  const [found, config] = await Promise.all([store.withRequest(job.generationId), readTenantConfig(env, job.tenant)]);
  if (!found || !config) return "done";
  const { generation, request, webhook } = found;
  if (!generationEnded(generation) && nestsDeeperThan(request, MAX_JSON_DEPTH)) {
    // Stored before every route checked the depth: it can never run (hashing it for its key would overflow the stack).
    const message = `The request nests objects or arrays more than ${MAX_JSON_DEPTH} deep; it cannot run.`;
    await store.finish(
      generation.id,
      { status_code: 400, body: { error: { message, type: "invalid_request_error", code: "json_too_deep" } } },
      Date.now(),
    );
  } else if (generation.status === "running" || (await store.started(generation.id, Date.now()))) {
    // Running already: a redelivery, which joins the run under its key. Cancelled meanwhile: nothing runs.
    const surface = runsResponse(generation.id) ? ("responses" as const) : ("chat" as const);
    const work = { tenant: job.tenant, config, key: generationKey(generation.id), job: `generation ${generation.id}`, request, surface };
    const answer = await serveDetached(env, work, { signal: new AbortController().signal });
    if (RETRYABLE.has(answer.status)) {
      if (!job.once) return "retry";
      // A redriven letter whose request still fails is a dead letter again at once: its one delivery
      // already had its attempts under the retry budget, and a minute of redeliveries against a backend
      // still down would only reopen its breaker.
      await generationGaveUp(job, env, "The redriven request failed again (it is tried in one delivery).");
      return "done";
    }
    await store.finish(generation.id, { status_code: answer.status, body: answer.body }, Date.now());
  }
  // Told again when a delivery finds it ended: the last one may have stopped before telling.
  if (runsResponse(generation.id)) await new BackgroundResponses(env.DB, job.tenant).current(generation.id, Date.now());
  const final = await store.get(generation.id);
  if (final && generationEnded(final) && final.status !== "cancelled")
    await announceEnd(env, config, { ...final, tenant: job.tenant }, webhook);
  return "done";
}

/** The queue gave up on the generation (or a redriven one failed again): it ends failed, and becomes a dead letter that keeps its request. */
export async function generationGaveUp(
  job: GenerateJob,
  env: Env,
  message = "The generation failed every delivery the jobs queue tried (its backends kept failing, or the tenant's queue stayed full).",
): Promise<void> {
  const store = new GenerationStore(env.DB, job.tenant);
  const found = await store.withRequest(job.generationId);
  // Ended meanwhile (cancelled, or answered by a stream that ran it): nothing was lost.
  if (!found || generationEnded(found.generation)) return;
  const { request, webhook } = found;
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
  if (runsResponse(job.generationId)) await new BackgroundResponses(env.DB, job.tenant).current(job.generationId, Date.now());
  const [final, config] = await Promise.all([store.get(job.generationId), readTenantConfig(env, job.tenant)]);
  if (final && config) await announceEnd(env, config, { ...final, tenant: job.tenant }, webhook);
}
