// POST /v1/chat/completions: validate, admit through the tenant's gate, dispatch, relay.
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "./context";
import type { Env } from "../env";
import { tenantAuth } from "./auth";
import { errorResponse } from "./errors";
import { jsonBody, validJson } from "./validation";
import { ChatRequestSchema, estimatePromptTokens, requestedMaxTokens, type ChatRequest } from "../config/chat-request";
import { PRIORITIES, type Priority } from "../gate/queue";
import type { AdmitRequest, AdmitResult } from "../gate/protocol";
import type { Coordinates } from "../dispatch/regions";
import { dispatch } from "../dispatch/dispatch";
import { StreamProgress } from "../stream/relay";
import { SseSink } from "../stream/sse-sink";
import { JsonSink } from "../stream/json-sink";
import type { ClientSink } from "../stream/sink";
import { recordDeadLetter } from "../observe/dead-letters";

/** Admission is retried this often when the gate object restarts under the call. */
const ADMIT_TRIES = 3;

export const chatRoute = new Hono<AppEnv>().post(
  "/completions",
  tenantAuth,
  (c, next) =>
    bodyLimit({
      maxSize: c.get("config").limits.maxBodyBytes,
      onError: () => errorResponse(413, "body_too_large", `The request body is larger than ${c.get("config").limits.maxBodyBytes} bytes.`),
    })(c, next),
  jsonBody,
  validJson(ChatRequestSchema),
  async (c) => {
    const body = c.req.valid("json") as ChatRequest;
    const priorityHeader = (c.req.header("x-priority") ?? "normal").toLowerCase();
    if (!PRIORITIES.includes(priorityHeader as Priority)) {
      return errorResponse(400, "invalid_priority", `X-Priority must be one of ${PRIORITIES.join(", ")}; got "${priorityHeader}".`);
    }
    const requestId = c.get("requestId");
    const tenant = c.get("tenant");
    const meta = { backend: "", attempts: 0, queueMs: 0, degradations: [] as string[] };
    const headers = () => ({
      "x-request-id": requestId,
      ...(meta.backend ? { "x-sluice-backend": meta.backend } : {}),
      "x-sluice-attempts": String(meta.attempts),
      "x-sluice-queue-ms": String(meta.queueMs),
      ...(meta.degradations.length ? { "x-sluice-degraded": meta.degradations.join(", ") } : {}),
    });
    const sink: ClientSink = body.stream ? new SseSink(headers) : new JsonSink(headers);
    const admit: AdmitRequest = {
      tenant,
      requestId,
      alias: body.model,
      priority: priorityHeader as Priority,
      promptTokens: estimatePromptTokens(body),
      maxTokens: requestedMaxTokens(body),
      origin: originOf(c.req.raw),
    };
    const run = serve(c.env, admit, body, sink, c.req.raw.signal, meta).catch(async (err: unknown) => {
      console.error(JSON.stringify({ level: "error", requestId, tenant, msg: "request failed unexpectedly", error: String(err) }));
      await sink.fail({ status: 500, code: "internal_error", message: `sluice failed unexpectedly (request ${requestId}).` }, 0).catch(() => {});
    });
    c.executionCtx.waitUntil(run);
    return sink.response;
  },
);

interface ResponseMeta {
  backend: string;
  attempts: number;
  queueMs: number;
  degradations: string[];
}

async function serve(env: Env, admit: AdmitRequest, body: ChatRequest, sink: ClientSink, signal: AbortSignal, meta: ResponseMeta): Promise<void> {
  const gate = env.TENANT_GATE.get(env.TENANT_GATE.idFromName(admit.tenant));
  sink.setPhase("queued");
  const admitted = await admitWithRetry(() => gate.admit(admit));
  if (admitted.kind === "reject") {
    await sink.fail({ status: admitted.status, code: admitted.code, message: admitted.message, retryAfterSec: admitted.retryAfterSec }, 0);
    return;
  }
  meta.queueMs = admitted.queueMs;
  meta.degradations = admitted.degradations;
  const startedAt = Date.now();
  const result = await dispatch({
    gate,
    leaseId: admitted.leaseId,
    grant: admitted.grant,
    timeouts: admitted.timeouts,
    body,
    sink,
    progress: new StreamProgress(`chatcmpl-${admit.requestId}`, Math.floor(startedAt / 1000)),
    signal,
    deadline: startedAt + admitted.timeouts.totalMs,
    onAttempt: (grant) => {
      meta.attempts = grant.attempt;
      if (!sink.committed) meta.backend = grant.backend.id;
    },
  });
  if ((result.outcome === "failed" || result.outcome === "partial") && result.failure && result.failure.status >= 500) {
    await recordDeadLetter(env.DB, {
      tenant: admit.tenant,
      requestId: admit.requestId,
      model: admit.alias,
      status: result.failure.status,
      code: result.failure.code,
      message: result.failure.message,
      partial: result.outcome === "partial",
      attempts: result.attempts,
      createdAt: Date.now(),
    }).catch((err: unknown) => console.error(JSON.stringify({ level: "error", requestId: admit.requestId, msg: "dead letter not written", error: String(err) })));
  }
}

/** A gate that restarts mid-call (deploy, eviction) drops its queue; asking again re-queues. */
async function admitWithRetry(call: () => Promise<AdmitResult>): Promise<AdmitResult> {
  let lastError: unknown;
  for (let i = 0; i < ADMIT_TRIES; i++) {
    try {
      return await call();
    } catch (err) {
      lastError = err;
    }
  }
  return { kind: "reject", status: 503, code: "gate_unavailable", message: `The tenant's gate is unavailable: ${String(lastError)}`, retryAfterSec: 1 };
}

function originOf(request: Request): Coordinates | undefined {
  const cf = (request as Request & { cf?: { latitude?: string; longitude?: string } }).cf;
  const lat = Number(cf?.latitude);
  const lon = Number(cf?.longitude);
  return cf?.latitude && cf?.longitude && Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : undefined;
}
