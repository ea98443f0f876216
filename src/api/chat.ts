// POST /v1/chat/completions: validates the request, then serves it (generation.ts) into an SSE or a JSON sink.
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { boundedBody, jsonBody, validJson } from "./validation";
import { ChatRequestSchema, type ChatRequest } from "../config/chat-request";
import { CLIENT_PRIORITIES, type Priority } from "../gate/core/queue";
import { journalKeys, validIdempotencyKey } from "../admission/dedup-key";
import type { Coordinates } from "../gate/core/regions";
import { SseSink } from "../stream/sse-sink";
import { JsonSink } from "../stream/json-sink";
import type { ClientSink } from "../stream/sink";
import { gateName, shardFor } from "../admission/gate-naming";
import { prefersAsync, startGeneration } from "./generations";
import { NO_WEBHOOK, namedWebhook } from "../jobs/generation-webhook";
import { admitRequestFor, freshMeta, type ServeOptions, responseHeaders, serveLogged, shedHints } from "../serve/serve";

/**
 * Answers 429 without parsing the body when the tenant's gate just said its queue is full (see
 * ShedHints): under overload this path must stay cheap. Requests that may be replays (an
 * Idempotency-Key, or a tenant that dedupes by content) always go on to the gate.
 */
const shedWhileFull = createMiddleware<AppEnv>(async (c, next) => {
  const priority = priorityOf(c.req.header("x-priority"));
  const { dedup, limits } = c.get("config");
  const mayReplay = c.req.header("idempotency-key") !== undefined || dedup.semantic || dedup.staleIfError;
  if (!priority || mayReplay) return next();
  // A request without a journal key goes to a random shard: it is chosen here, before the body.
  const shard = shardFor(undefined, limits.shards);
  c.set("shard", shard);
  const shed = shedHints.check(gateName(c.get("tenant"), shard), priority, Date.now());
  if (!shed) return next();
  // The body is taken (not parsed) first: answering with it unread makes the server drop the
  // connection, and a keep-alive client's next request on it fails with ECONNRESET. A body of
  // unknown or excessive length is cancelled instead; that connection may go.
  const length = Number(c.req.header("content-length") ?? Number.NaN);
  if (length <= c.get("config").limits.maxBodyBytes) await c.req.raw.arrayBuffer().catch(() => {});
  else await c.req.raw.body?.cancel().catch(() => {});
  const headers: Record<string, string> = { "x-request-id": c.get("requestId") };
  if (shed.retryAfterSec !== undefined) headers["retry-after"] = String(shed.retryAfterSec);
  return errorResponse(shed.status, shed.code, shed.message, headers);
});

/** The X-Priority header as a Priority ("normal" when absent), or undefined when it names none. */
function priorityOf(header: string | undefined): Priority | undefined {
  const value = (header ?? "normal").toLowerCase();
  return CLIENT_PRIORITIES.find((p) => p === value);
}

export const chatRoute = new Hono<AppEnv>().post(
  "/completions",
  tenantAuth,
  shedWhileFull,
  jsonBody,
  boundedBody<AppEnv>((c) => {
    const { maxBodyBytes, bodyReadTimeoutMs } = c.get("config").limits;
    return { maxBytes: maxBodyBytes, readTimeoutMs: bodyReadTimeoutMs };
  }),
  validJson(ChatRequestSchema),
  async (c) => {
    const body = c.req.valid("json") as ChatRequest;
    const priority = priorityOf(c.req.header("x-priority"));
    if (!priority) {
      return errorResponse(
        400,
        "invalid_priority",
        `X-Priority must be one of ${CLIENT_PRIORITIES.join(", ")}; got "${c.req.header("x-priority")}".`,
      );
    }
    const requestId = c.get("requestId");
    const tenant = c.get("tenant");
    const config = c.get("config");
    if (prefersAsync(c.req.header("prefer"))) {
      const header = c.req.header("sluice-webhook");
      const webhook = header === undefined ? undefined : namedWebhook(header, config);
      if (header !== undefined && webhook === undefined)
        return errorResponse(
          400,
          "unknown_webhook",
          `Sluice-Webhook names no webhook of this tenant (alerts.webhooks has its ids), nor "${NO_WEBHOOK}".`,
        );
      return startGeneration(c.env, tenant, body, webhook);
    }
    const idempotencyKey = c.req.header("idempotency-key");
    if (idempotencyKey !== undefined && !validIdempotencyKey(idempotencyKey)) {
      return errorResponse(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.");
    }
    const lastEventHeader = c.req.header("last-event-id");
    if (lastEventHeader !== undefined && (!/^\d{1,9}$/.test(lastEventHeader) || idempotencyKey === undefined)) {
      return errorResponse(
        400,
        "invalid_last_event_id",
        "Last-Event-ID must be a chunk number, sent together with the Idempotency-Key of the original request.",
      );
    }
    const { record, staleKey } = await journalKeys(tenant, body, config.dedup, idempotencyKey);
    // Twins, replays and stored answers live in the shard their key hashes to.
    const shards = config.limits.shards;
    const shard = record ? shardFor(record.key, shards) : (c.get("shard") ?? shardFor(undefined, shards));
    const meta = freshMeta();
    const trace = c.get("trace");
    const headers = () => responseHeaders(requestId, trace.traceId, meta);
    const sink: ClientSink = body.stream ? new SseSink(headers, { clientStallMs: config.timeouts.clientStallMs }) : new JsonSink(headers);
    const admit = admitRequestFor(body, { tenant, record, requestId, priority, origin: originOf(c.req.raw), shard });
    const stale = staleKey === undefined ? undefined : { key: staleKey, gate: gateName(tenant, shardFor(staleKey, shards)) };
    const log = c.get("requestLog");
    log.set({ tenant, model: body.model, priority });
    log.defer();
    const options: ServeOptions = { lastEventId: Number(lastEventHeader ?? 0), detached: idempotencyKey !== undefined, stale, log, trace };
    c.executionCtx.waitUntil(serveLogged(c.env, config, { admit, body, sink, signal: c.req.raw.signal, meta, options }));
    return sink.response;
  },
);

function originOf(request: Request): Coordinates | undefined {
  const cf = (request as Request & { cf?: { latitude?: string; longitude?: string } }).cf;
  const lat = Number(cf?.latitude);
  const lon = Number(cf?.longitude);
  return cf?.latitude && cf?.longitude && Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : undefined;
}
