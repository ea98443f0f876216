// Serving one chat request once it is validated: admission through the tenant's gate (polling
// while queued), then a replay, a join of a live twin, or a dispatch to the backends, relayed into
// a sink. The chat route calls it with the client's sink; background work (batches) with a sink
// that gathers the answer.
import { affinityKey } from "../admission/affinity-key";
import type { Env } from "../env";
import { type ChatRequest, estimatePromptTokens, requestedMaxTokens } from "../config/chat-request";
import type { AdmitRequest, AdmitResult, EntrySnapshot } from "../gate/core/protocol";
import { writesDeadLetter } from "../gate/core/protocol";
import { gateClient, type GateApi } from "../admission/gate-client";
import type { AttemptLogEntry } from "../dispatch/dispatch-input";
import { dispatch } from "../dispatch/dispatch";
import { endAsJournaled, replayEntry } from "../dispatch/replay";
import { isolateReadSizes } from "../dispatch/read-size";
import { StreamProgress, clientWantsUsage } from "../stream/relay";
import { toFramed, type ClientSink } from "../stream/sink";
import { recordDeadLetter } from "../observe/dead-letters";
import { logError } from "../log";
import type { TraceContext } from "../trace-context";
import { CLIENT_CLOSED, type RequestLog, type RequestOutcome } from "../observe/request-log";
import type { TenantConfig } from "../config/schema";
import { ShedHints } from "../admission/shed-hints";
import { gateName } from "../admission/gate-naming";

/** Per isolate: recent queue-full verdicts of each gate, by gate name (see ShedHints). */
export const shedHints = new ShedHints();

/** Admission is retried this often when calls to the gate fail outright. */
const ADMIT_TRIES = 3;

export interface ResponseMeta {
  backend: string;
  attempts: number;
  queueMs: number;
  degradations: string[];
  /** "stored": answered from the journal; "joined": followed a twin's live generation. */
  replay?: "stored" | "joined";
}

/** A response's meta before anything happened: filled in as the request is served. */
export const freshMeta = (): ResponseMeta => ({ backend: "", attempts: 0, queueMs: 0, degradations: [] });

/**
 * What the gate is asked to admit for `body`: the caller's fields, and the alias, token estimates
 * and affinity (its session as `session` names it, or its conversation) of the body.
 */
export function admitRequestFor(
  body: ChatRequest,
  fields: Omit<AdmitRequest, "alias" | "promptTokens" | "maxTokens" | "affinity">,
  session?: string,
): AdmitRequest {
  const estimates = { promptTokens: estimatePromptTokens(body), maxTokens: requestedMaxTokens(body) };
  return { ...fields, alias: body.model, ...estimates, affinity: affinityKey(body, session) };
}

export interface ServeOptions {
  /** Chunks the client already has (Last-Event-ID of a reconnect). */
  lastEventId: number;
  /** Finish the generation even if the client leaves (Idempotency-Key). */
  detached: boolean;
  /** Where a stored answer for stale-if-error may be: its semantic key, and that key's gate. */
  stale?: { key: string; gate: string };
  /** The request's log line, written when serve's answer is known. */
  log: RequestLog;
  trace: TraceContext;
  /**
   * A failure is kept as a dead letter (default). A batch line's are not: the queue tries it again,
   * and the line becomes one dead letter only when the queue gives up (jobs/consumer.ts).
   */
  deadLetter?: boolean;
  /** A dead letter keeps the request's body (the tenant's deadLetters.keepRequests; serveLogged sets it). */
  keepRequest?: boolean;
}

/** One request to serve: what admission is asked, its body, where its answer goes, what stops it, what it says of itself. */
export interface ServeCall {
  admit: AdmitRequest;
  body: ChatRequest;
  sink: ClientSink;
  /** The client went away (ignored once `options.detached` holds). */
  signal: AbortSignal;
  meta: ResponseMeta;
  options: ServeOptions;
}

/** How a request ended, for its log line (the status is the response's). */
export interface Ending {
  outcome: RequestOutcome;
  code?: string;
  attempts?: AttemptLogEntry[];
}

/** The headers of an answer: its request id and trace, and how it was served. */
export function responseHeaders(requestId: string, traceId: string, meta: ResponseMeta): Record<string, string> {
  return {
    "x-request-id": requestId,
    "x-sluice-trace-id": traceId,
    ...(meta.backend ? { "x-sluice-backend": meta.backend } : {}),
    "x-sluice-attempts": String(meta.attempts),
    "x-sluice-queue-ms": String(meta.queueMs),
    ...(meta.degradations.length ? { "x-sluice-degraded": meta.degradations.join(", ") } : {}),
    ...(meta.replay ? { "x-sluice-replay": meta.replay } : {}),
  };
}

/**
 * Serves the request and writes its log line when it ends. Never throws: an unexpected failure is
 * logged with the request id and answered 500 `internal_error`, its text kept from the client.
 */
export function serveLogged(env: Env, config: TenantConfig, call: ServeCall): Promise<void> {
  const { admit, sink, meta } = call;
  const { requestId } = admit;
  const { log } = call.options;
  return serve(env, { ...call, options: { keepRequest: config.deadLetters.keepRequests, ...call.options } })
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
}

/** How long one follow call waits for a joined generation to make progress. */
const FOLLOW_WAIT_MS = 10_000;

async function serve(env: Env, call: ServeCall): Promise<Ending> {
  const { admit, body, sink, signal, meta, options } = call;
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
  const relayUsage = clientWantsUsage(body);
  const progress = resumed
    ? StreamProgress.resuming(fallbackId, Math.floor(startedAt / 1000), resumed.chunks, resumed.text, resumed.tokens, relayUsage)
    : new StreamProgress(fallbackId, Math.floor(startedAt / 1000), relayUsage);
  if (resumed && resumed.chunks.length > options.lastEventId) {
    // A retry carrying on a stopped generation: first what the client has not seen of it.
    sink.skipTo(options.lastEventId);
    await sink.send(toFramed(resumed.chunks.slice(options.lastEventId))).catch(() => {});
  } else if (resumed) sink.skipTo(resumed.chunks.length);
  const result = await dispatch({
    requestId: admit.requestId,
    gate,
    leaseId: admitted.leaseId,
    admit,
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
    ...(result.cost ? { costUsd: result.cost.usd, ...(result.cost.estimated ? { costEstimated: true as const } : {}) } : {}),
  });
  if (options.deadLetter !== false && result.failure && writesDeadLetter(result.outcome, result.failure.status)) {
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
      request: options.keepRequest ? body : undefined,
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
export async function admitThroughQueue(
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
