// Answering a validated request, whatever API it came in: its chat completions body is admitted
// and served (serve/serve.ts) into a sink that speaks the client's surface (stream/surface.ts).
// The chat route and the Messages route differ in how they read a request and tell an answer,
// not in how they serve it: Idempotency-Key, Last-Event-ID, shards, priority and the log line
// are the same here for both.
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { boundedBody } from "./validation";
import type { AppEnv } from "./context";
import { errorResponse } from "../stream/errors";
import type { ChatRequest } from "../config/chat-request";
import { CLIENT_PRIORITIES, type Priority } from "../gate/core/queue";
import { journalKeys, validIdempotencyKey } from "../admission/dedup-key";
import type { Coordinates } from "../gate/core/regions";
import { SseSink } from "../stream/sse-sink";
import { JsonSink } from "../stream/json-sink";
import type { ClientSink } from "../stream/sink";
import type { Surface } from "../stream/surface";
import type { SurfaceName } from "../gate/core/metrics";
import { gateName, shardFor } from "../admission/gate-naming";
import { admitRequestFor, freshMeta, type ServeOptions, responseHeaders, serveLogged, shedHints } from "../serve/serve";

export interface Answering {
  /** The client's API, for its log line and its counters. */
  surface: SurfaceName;
  /** How answers, streams and errors are told (undefined: chat completions). */
  speaks?: Surface;
  /** Whether the surface numbers its stream's events, so a dropped stream may reconnect with Last-Event-ID. */
  reconnects: boolean;
}

/**
 * Answers 429 without parsing the body when the tenant's gate just said its queue is full (see
 * ShedHints): under overload this path must stay cheap. Requests that may be replays (an
 * Idempotency-Key, or a tenant that dedupes by content) always go on to the gate.
 */
export const shedWhileFull = createMiddleware<AppEnv>(async (c, next) => {
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

/** A client request's body, read within its tenant's limits (limits.maxBodyBytes and bodyReadTimeoutMs). */
export const tenantBody = boundedBody<AppEnv>((c) => {
  const { maxBodyBytes, bodyReadTimeoutMs } = c.get("config").limits;
  return { maxBytes: maxBodyBytes, readTimeoutMs: bodyReadTimeoutMs };
});

/** The X-Priority header as a Priority ("normal" when absent), or undefined when it names none. */
export function priorityOf(header: string | undefined): Priority | undefined {
  const value = (header ?? "normal").toLowerCase();
  return CLIENT_PRIORITIES.find((p) => p === value);
}

/** The request's priority, or the 400 that says X-Priority names none. */
export function requestPriority(c: Context<AppEnv>): Priority | Response {
  return (
    priorityOf(c.req.header("x-priority")) ??
    errorResponse(
      400,
      "invalid_priority",
      `X-Priority must be one of ${CLIENT_PRIORITIES.join(", ")}; got "${c.req.header("x-priority")}".`,
    )
  );
}

/** Serves `body` for the request in `c`: the Response (a stream, or a promise of one). */
export async function answer(c: Context<AppEnv>, body: ChatRequest, priority: Priority, how: Answering): Promise<Response> {
  const requestId = c.get("requestId");
  const tenant = c.get("tenant");
  const config = c.get("config");
  const idempotencyKey = c.req.header("idempotency-key");
  if (idempotencyKey !== undefined && !validIdempotencyKey(idempotencyKey)) {
    return errorResponse(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.");
  }
  const lastEventHeader = c.req.header("last-event-id");
  if (lastEventHeader !== undefined && !how.reconnects)
    return errorResponse(
      400,
      "invalid_last_event_id",
      "This API's streams have no event ids to resume after: Last-Event-ID is not taken here.",
    );
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
  const sink: ClientSink = body.stream
    ? new SseSink(headers, { clientStallMs: config.timeouts.clientStallMs }, how.speaks)
    : new JsonSink(headers, how.speaks);
  const session = c.req.header("x-session-id")?.slice(0, 256);
  const admit = admitRequestFor(
    body,
    { tenant, record, requestId, priority, origin: originOf(c.req.raw), shard, surface: how.surface, key: c.get("apiKey")?.ref },
    session,
  );
  const stale = staleKey === undefined ? undefined : { key: staleKey, gate: gateName(tenant, shardFor(staleKey, shards)) };
  const log = c.get("requestLog");
  log.set({ tenant, model: body.model, priority, surface: how.surface });
  log.defer();
  const options: ServeOptions = { lastEventId: Number(lastEventHeader ?? 0), detached: idempotencyKey !== undefined, stale, log, trace };
  c.executionCtx.waitUntil(serveLogged(c.env, config, { admit, body, sink, signal: c.req.raw.signal, meta, options }));
  return sink.response;
}

function originOf(request: Request): Coordinates | undefined {
  const cf = (request as Request & { cf?: { latitude?: string; longitude?: string } }).cf;
  const lat = Number(cf?.latitude);
  const lon = Number(cf?.longitude);
  return cf?.latitude && cf?.longitude && Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : undefined;
}
