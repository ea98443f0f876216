// Async generations (jobs/generations.ts): `POST /v1/chat/completions` with `Prefer: respond-async`
// answers 202 at once and the request runs as background work even if the client goes away;
// `GET /v1/generations/{id}` tells its state and, once it ended, its answer; `GET .../stream`
// re-attaches as SSE (with Last-Event-ID), live while it runs: the stream joins the generation
// through the journal, so it is never generated twice.
import { Hono } from "hono";
import type { Context } from "hono";
import type { AppEnv } from "./context";
import type { Env } from "../env";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import type { ChatRequest } from "../config/chat-request";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../config/json-depth";
import { GenerationStore, generationEnded, MAX_OPEN_GENERATIONS, type GenerationObject } from "../jobs/generations";
import { backgroundRecord } from "../serve/detached";
import { generationKey } from "../jobs/generate";
import { gateName, shardFor } from "../admission/gate-naming";
import { gateClient } from "../admission/gate-client";
import { SseSink } from "../stream/sse-sink";
import type { Surface } from "../stream/surface";
import type { SurfaceName } from "../gate/core/metrics";
import { admitRequestFor, freshMeta, responseHeaders, serveLogged } from "../serve/serve";

/** Whether the request asks to be answered at once and run in the background (RFC 7240). */
export const prefersAsync = (prefer: string | undefined) => prefer !== undefined && /(^|[\s,;])respond-async([\s,;=]|$)/i.test(prefer);

/**
 * Queues `request` as a generation; answers 202 with it, or 429 when the tenant has too many open.
 * `webhook`: what the request's Sluice-Webhook header names (checked: namedWebhook), told when it ends.
 */
export async function startGeneration(
  env: Env,
  tenant: string,
  request: ChatRequest,
  webhook?: string,
  /** A redriven dead letter: tried in one delivery (jobs/generate.ts). */
  once?: true,
): Promise<Response> {
  const generation = await queueGeneration(env, tenant, request, { webhook, once });
  if (generation instanceof Response) return generation;
  return Response.json(generation, {
    status: 202,
    headers: { location: `/v1/generations/${generation.id}`, "preference-applied": "respond-async" },
  });
}

/** Stores `request` as a generation and queues its job; or the 400 or 429 that refuses it. */
export async function queueGeneration(
  env: Env,
  tenant: string,
  request: ChatRequest,
  options: { webhook?: string; once?: true; id?: string },
): Promise<GenerationObject | Response> {
  // A dead letter written before batch lines were checked may hold a body no route would take.
  if (nestsDeeperThan(request, MAX_JSON_DEPTH)) return tooDeep();
  const store = new GenerationStore(env.DB, tenant);
  if ((await store.openCount()) >= MAX_OPEN_GENERATIONS)
    return errorResponse(429, "too_many_generations", `A tenant has at most ${MAX_OPEN_GENERATIONS} async generations waiting or running.`);
  const generation = await store.create({ ...request, stream: false }, Date.now(), options.webhook, options.id);
  const { once } = options;
  await env.JOBS.send({ kind: "generate", tenant, generationId: generation.id, ...(once ? { once } : {}) }, { contentType: "json" });
  return generation;
}

/**
 * Cancels an open generation: it is marked cancelled, and its gate stops its run, queued, running
 * or not yet admitted (GateCore.cancel), in whichever Worker runs it. Null: no such generation;
 * `cancelled` false: it had ended already.
 */
export async function cancelGeneration(
  env: Env,
  tenant: string,
  shards: number,
  id: string,
): Promise<{ generation: GenerationObject; cancelled: boolean } | null> {
  const store = new GenerationStore(env.DB, tenant);
  const found = await store.withRequest(id);
  if (!found) return null;
  const cancelled = await store.cancel(id, Date.now());
  // A request too deep to hash never runs (jobs/generate.ts).
  if (cancelled && !nestsDeeperThan(found.request, MAX_JSON_DEPTH)) {
    const record = await backgroundRecord(generationKey(id), found.request);
    await gateClient(env.TENANT_GATE, gateName(tenant, shardFor(record.key, shards))).cancel(record);
  }
  return { generation: (await store.get(id))!, cancelled };
}

const tooDeep = () => errorResponse(400, "json_too_deep", `The request nests objects or arrays more than ${MAX_JSON_DEPTH} deep.`);

const notFound = (id: string) => errorResponse(404, "generation_not_found", `No generation ${id}.`);

export const generationsRoute = new Hono<AppEnv>()
  .use("*", tenantAuth)
  .get("/:id", async (c) => {
    const generation = await new GenerationStore(c.env.DB, c.get("tenant")).get(c.req.param("id"));
    return generation ? c.json(generation) : notFound(c.req.param("id"));
  })
  .get("/:id/stream", async (c) => {
    const store = new GenerationStore(c.env.DB, c.get("tenant"));
    const id = c.req.param("id");
    const found = await store.withRequest(id);
    if (!found) return notFound(id);
    const { generation, request } = found;
    const lastEvent = c.req.header("last-event-id");
    if (lastEvent !== undefined && !/^\d{1,9}$/.test(lastEvent))
      return errorResponse(400, "invalid_last_event_id", "Last-Event-ID must be a chunk number.");
    // Such a generation never runs (jobs/generate.ts ends it failed): it has no stream to join.
    if (nestsDeeperThan(request, MAX_JSON_DEPTH))
      return generationEnded(generation)
        ? endedStream(generation)
        : errorResponse(409, "generation_not_streamable", `Generation ${id} cannot be streamed; GET /v1/generations/${id} has its state.`);
    if (generationEnded(generation)) {
      // Its journal entry, while kept, replays it chunk for chunk (so Last-Event-ID holds); after
      // that only the stored answer is left, whole.
      if (!(await journalKeeps(c, id, request))) {
        if (lastEvent !== undefined)
          return errorResponse(
            409,
            "replay_unavailable",
            `Generation ${id} ended and its stream is no longer kept; GET /v1/generations/${id} has its answer.`,
          );
        return endedStream(generation);
      }
    }
    return reattach(c, generation.id, request, Number(lastEvent ?? 0));
  })
  .post("/:id/cancel", async (c) => {
    const id = c.req.param("id");
    const found = await cancelGeneration(c.env, c.get("tenant"), c.get("config").limits.shards, id);
    if (!found) return notFound(id);
    const { generation, cancelled } = found;
    if (!cancelled && generation.status !== "cancelled")
      return errorResponse(409, "generation_ended", `Generation ${id} already ended (${generation.status}); it cannot be cancelled.`);
    return c.json(generation);
  });

/** Whether the tenant's journal still keeps an ended generation's whole run (its stream can be replayed event for event). */
export async function journalKeeps(c: Context<AppEnv>, id: string, request: ChatRequest): Promise<boolean> {
  const record = await backgroundRecord(generationKey(id), request);
  const gate = gateClient(c.env.TENANT_GATE, gateName(c.get("tenant"), shardFor(record.key, c.get("config").limits.shards)));
  return (await gate.storedAnswer(record.key)) !== null;
}

/**
 * Joins the running (or not yet started) generation through its journal key, as SSE in `surface`
 * (chat completions unless said).
 */
export async function reattach(
  c: Context<AppEnv>,
  id: string,
  request: ChatRequest,
  lastEventId: number,
  surface?: { name: SurfaceName; speaks: Surface; usage: boolean },
): Promise<Response> {
  const tenant = c.get("tenant");
  const config = c.get("config");
  const requestId = c.get("requestId");
  const trace = c.get("trace");
  const record = await backgroundRecord(generationKey(id), request);
  // The Responses API tells usage: its backend is asked for it.
  const body = { ...request, stream: true, ...(surface?.usage ? { stream_options: { include_usage: true } } : {}) };
  const shard = shardFor(record.key, config.limits.shards);
  const key = c.get("apiKey")?.ref;
  const admit = admitRequestFor(body, { tenant, record, requestId, priority: "normal", shard, surface: surface?.name, key });
  const meta = freshMeta();
  const headers = () => responseHeaders(requestId, trace.traceId, meta);
  const sink = new SseSink(headers, { clientStallMs: config.timeouts.clientStallMs }, surface?.speaks);
  const log = c.get("requestLog");
  log.set({ tenant, model: body.model, priority: "normal", surface: surface?.name ?? "chat" });
  log.defer();
  // Detached: a generation started by this stream finishes even if the client leaves.
  c.executionCtx.waitUntil(
    serveLogged(c.env, config, { admit, body, sink, signal: c.req.raw.signal, meta, options: { lastEventId, detached: true, log, trace } }),
  );
  return sink.response;
}

/** An ended generation's stream: its answer as one chunk and [DONE], or the error event. */
function endedStream(generation: GenerationObject): Response {
  const response = generation.response!;
  const completion = response.body as {
    id?: string;
    model?: string;
    created?: number;
    choices?: Array<{ message?: { content?: string }; finish_reason?: string }>;
  };
  const events =
    response.status_code >= 200 && response.status_code < 300
      ? [
          {
            id: completion.id,
            object: "chat.completion.chunk",
            created: completion.created,
            model: completion.model,
            choices: [
              {
                index: 0,
                delta: { role: "assistant", content: completion.choices?.[0]?.message?.content ?? "" },
                finish_reason: completion.choices?.[0]?.finish_reason ?? "stop",
              },
            ],
          },
        ]
      : [response.body];
  const text = `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}${response.status_code < 300 ? "data: [DONE]\n\n" : ""}`;
  return new Response(text, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}
