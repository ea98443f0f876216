// POST /v1/chat/completions: validate, admit through the tenant's gate, dispatch, relay.
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context";
import type { Env } from "../env";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { boundedBody, jsonBody, validJson } from "./validation";
import { ChatRequestSchema, estimatePromptTokens, requestedMaxTokens, type ChatRequest } from "../config/chat-request";
import { PRIORITIES, type Priority } from "../gate/core/queue";
import type { AdmitRequest, AdmitResult, EntrySnapshot } from "../gate/core/protocol";
import { writesDeadLetter } from "../gate/core/protocol";
import { gateClient, type GateApi } from "../admission/gate-client";
import { journalKeys, validIdempotencyKey } from "../admission/dedup-key";
import type { Coordinates } from "../gate/core/regions";
import type { AttemptLogEntry } from "../dispatch/dispatch-input";
import { dispatch } from "../dispatch/dispatch";
import { endAsJournaled, replayEntry } from "../dispatch/replay";
import { isolateReadSizes } from "../dispatch/read-size";
import { StreamProgress } from "../stream/relay";
import { SseSink } from "../stream/sse-sink";
import { JsonSink } from "../stream/json-sink";
import { toFramed, type ClientSink } from "../stream/sink";
import { recordDeadLetter } from "../observe/dead-letters";
import { logError } from "../log";
import type { TraceContext } from "../trace-context";
import { CLIENT_CLOSED, type RequestLog, type RequestOutcome } from "../observe/request-log";
import { ShedHints } from "../admission/shed-hints";
import { gateName, shardFor } from "../admission/gate-naming";

/** Per isolate: recent queue-full verdicts of each gate, by gate name (see ShedHints). */
const shedHints = new ShedHints();

/** Admission is retried this often when calls to the gate fail outright. */
const ADMIT_TRIES = 3;

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
  return PRIORITIES.find((p) => p === value);
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
        `X-Priority must be one of ${PRIORITIES.join(", ")}; got "${c.req.header("x-priority")}".`,
      );
    }
    const requestId = c.get("requestId");
    const tenant = c.get("tenant");
    const config = c.get("config");
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
    const meta: ResponseMeta = { backend: "", attempts: 0, queueMs: 0, degradations: [] };
    const trace = c.get("trace");
    const headers = () => ({
      "x-request-id": requestId,
      "x-sluice-trace-id": trace.traceId,
      ...(meta.backend ? { "x-sluice-backend": meta.backend } : {}),
      "x-sluice-attempts": String(meta.attempts),
      "x-sluice-queue-ms": String(meta.queueMs),
      ...(meta.degradations.length ? { "x-sluice-degraded": meta.degradations.join(", ") } : {}),
      ...(meta.replay ? { "x-sluice-replay": meta.replay } : {}),
    });
    const sink: ClientSink = body.stream ? new SseSink(headers, { clientStallMs: config.timeouts.clientStallMs }) : new JsonSink(headers);
    const admit: AdmitRequest = {
      tenant,
      record,
      requestId,
      alias: body.model,
      priority,
      promptTokens: estimatePromptTokens(body),
      maxTokens: requestedMaxTokens(body),
      origin: originOf(c.req.raw),
      shard,
    };
    const stale = staleKey === undefined ? undefined : { key: staleKey, gate: gateName(tenant, shardFor(staleKey, shards)) };
    const log = c.get("requestLog");
    log.set({ tenant, model: body.model, priority });
    log.defer();
    const options: ServeOptions = { lastEventId: Number(lastEventHeader ?? 0), detached: idempotencyKey !== undefined, stale, log, trace };
    const run = serve(c.env, admit, body, sink, c.req.raw.signal, meta, options)
      .catch(async (err: unknown): Promise<Ending> => {
        logError(requestId, "request failed unexpectedly", err);
        await sink
          .fail({ status: 500, code: "internal_error", message: `sluice failed unexpectedly (request ${requestId}).` }, 0)
          .catch(() => {});
        return { outcome: "failed", code: "internal_error" };
      })
      .then((ending) => {
        log.addAttempts(ending.attempts ?? [], (id) => config.backends.find((b) => b.id === id)?.region);
        log.set({ backend: meta.backend || undefined, queueMs: meta.queueMs });
        log.end(ending.outcome, sink.status ?? CLIENT_CLOSED, ending.code, Date.now());
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
  /** "stored": answered from the journal; "joined": followed a twin's live generation. */
  replay?: "stored" | "joined";
}

interface ServeOptions {
  /** Chunks the client already has (Last-Event-ID of a reconnect). */
  lastEventId: number;
  /** Finish the generation even if the client leaves (Idempotency-Key). */
  detached: boolean;
  /** Where a stored answer for stale-if-error may be: its semantic key, and that key's gate. */
  stale?: { key: string; gate: string };
  /** The request's log line, written when serve's answer is known. */
  log: RequestLog;
  trace: TraceContext;
}

/** How a request ended, for its log line (the status is the response's). */
interface Ending {
  outcome: RequestOutcome;
  code?: string;
  attempts?: AttemptLogEntry[];
}

/** How long one follow call waits for a joined generation to make progress. */
const FOLLOW_WAIT_MS = 10_000;

async function serve(
  env: Env,
  admit: AdmitRequest,
  body: ChatRequest,
  sink: ClientSink,
  signal: AbortSignal,
  meta: ResponseMeta,
  options: ServeOptions,
): Promise<Ending> {
  const name = gateName(admit.tenant, admit.shard ?? 0);
  const gate = gateClient(env.TENANT_GATE, name);
  sink.setPhase("queued");
  const admitted = await admitThroughQueue(gate, { ...admit, shedByWorker: shedHints.takeAnswered(name) || undefined }, signal);
  if (admitted.kind === "reject") {
    shedHints.note(name, admit.priority, admitted, Date.now());
    await sink.fail({ status: admitted.status, code: admitted.code, message: admitted.message, retryAfterSec: admitted.retryAfterSec }, 0);
    return { outcome: "rejected", code: admitted.code };
  }
  if (admitted.kind === "replay") {
    meta.replay = "stored";
    await replayEntry(admitted.entry, sink, options.lastEventId);
    return { outcome: "replayed" };
  }
  if (admitted.kind === "join") {
    meta.replay = "joined";
    await followEntry(gate, admitted.entry, sink, options.lastEventId, signal);
    return { outcome: "joined" };
  }
  meta.queueMs = admitted.queueMs;
  meta.degradations = admitted.degradations;
  const startedAt = Date.now();
  const resumed = admitted.resumeFrom;
  const fallbackId = `chatcmpl-${admit.requestId}`;
  const progress = resumed
    ? StreamProgress.resuming(fallbackId, Math.floor(startedAt / 1000), resumed.chunks, resumed.text, resumed.tokens)
    : new StreamProgress(fallbackId, Math.floor(startedAt / 1000));
  if (resumed && resumed.chunks.length > options.lastEventId) {
    // A retry carrying on a stopped generation: first what the client has not seen of it.
    sink.skipTo(options.lastEventId);
    await sink.send(toFramed(resumed.chunks.slice(options.lastEventId))).catch(() => {});
  } else if (resumed) sink.skipTo(resumed.chunks.length);
  const result = await dispatch({
    requestId: admit.requestId,
    gate,
    leaseId: admitted.leaseId,
    grant: admitted.grant,
    timeouts: admitted.timeouts,
    body,
    sink,
    progress,
    signal,
    deadline: startedAt + admitted.timeouts.totalMs,
    readSizes: isolateReadSizes(env.READ_BATCH_MAX_HOLD_MS),
    record: admit.record !== undefined,
    recordedChunks: resumed?.chunks.length ?? 0,
    detached: options.detached,
    staleAnswer: options.stale
      ? async () => {
          const stored = await gateClient(env.TENANT_GATE, options.stale!.gate).storedAnswer(options.stale!.key);
          if (stored) meta.degradations = [...meta.degradations, "stale-cache"];
          return stored;
        }
      : undefined,
    onAttempt: (grant) => {
      meta.attempts = grant.attempt;
      if (!sink.committed) meta.backend = grant.backend.id;
    },
    onFirstToken: () => options.log.firstToken(Date.now()),
    trace: options.trace,
  });
  options.log.set({
    promptTokens: progress.usage?.prompt_tokens ?? admit.promptTokens,
    completionTokens: progress.usage?.completion_tokens ?? progress.tokens,
  });
  if (result.failure && writesDeadLetter(result.outcome, result.failure.status)) {
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
      traceId: options.trace.traceId,
    }).catch((err: unknown) => logError(admit.requestId, "dead letter not written", err));
  }
  return { outcome: result.outcome, code: result.failure?.code, attempts: result.attempts };
}

/** Relays a generation another request is running (same key), live, as the gate records it. */
async function followEntry(gate: GateApi, entry: EntrySnapshot, sink: ClientSink, after: number, signal: AbortSignal): Promise<void> {
  // Chunks the client already has are skipped even if the journal does not hold them yet.
  let sent = after;
  let chunks = entry.chunks.slice(sent);
  sink.skipTo(sent);
  for (;;) {
    await sink.send(toFramed(chunks));
    sent += chunks.length;
    if (signal.aborted || sink.clientGone.aborted) return;
    const next = await gate.follow(entry.key, sent, FOLLOW_WAIT_MS);
    chunks = next.chunks;
    if (next.state === "running") continue;
    await sink.send(toFramed(chunks));
    return endAsJournaled(sink, next.state, next.tokens, "The generation this request joined");
  }
}

/**
 * Admission, polling while queued. A gate that restarts drops its queue (the poll answers
 * "unknown", or the call fails): the request is admitted again rather than lost.
 */
async function admitThroughQueue(
  gate: GateApi,
  admit: AdmitRequest,
  signal: AbortSignal,
): Promise<Exclude<AdmitResult, { kind: "queued" } | { kind: "unknown" }>> {
  let failures = 0;
  let result: AdmitResult | undefined;
  for (;;) {
    try {
      if (result?.kind === "queued") result = await gate.poll(result.ticket);
      else {
        result = await gate.admit(admit);
        // The gate has counted this Worker's sheds; an admission anew must not report them again.
        admit = { ...admit, shedByWorker: undefined };
      }
    } catch (err) {
      if (++failures >= ADMIT_TRIES) {
        logError(admit.requestId, "tenant gate unavailable", err);
        return {
          kind: "reject",
          status: 503,
          code: "gate_unavailable",
          message: `The tenant's gate could not be reached (request ${admit.requestId}). Retry later.`,
          retryAfterSec: 1,
        };
      }
      result = undefined;
      continue;
    }
    if (result.kind === "unknown") result = undefined;
    else if (result.kind !== "queued") return result;
    // A client that left while queued stops polling; the gate drops its ticket.
    if (signal.aborted) return { kind: "reject", status: 503, code: "client_disconnected", message: "The client went away while queued." };
  }
}

function originOf(request: Request): Coordinates | undefined {
  const cf = (request as Request & { cf?: { latitude?: string; longitude?: string } }).cf;
  const lat = Number(cf?.latitude);
  const lon = Number(cf?.longitude);
  return cf?.latitude && cf?.longitude && Number.isFinite(lat) && Number.isFinite(lon) ? { lat, lon } : undefined;
}
