// A request with no client waiting on a connection (a batch line, an async generation, a workflow
// step): the same admission, breakers, fallbacks, retry budget and resume as an interactive
// request, at the priority its caller gives (background work: the gate gives it only slots no
// interactive request waits for). It runs under a journal key of its own (the batch and line, the
// generation, the run's step and attempt), so a redelivered message or a replayed workflow step
// joins the generation still running or replays the stored answer: it never generates twice. Its
// failures are its caller's to retry, so they are not dead letters (the caller makes the one).
import type { Env } from "../env";
import type { TenantConfig } from "../config/schema";
import type { ChatRequest } from "../config/chat-request";
import type { AdmitRequest } from "../gate/core/protocol";
import type { Priority } from "../gate/core/queue";
import type { SurfaceName } from "../gate/core/metrics";
import { bodyHash } from "../admission/dedup-key";
import { shardFor } from "../admission/gate-naming";
import { JsonSink } from "../stream/json-sink";
import { RequestLog } from "../observe/request-log";
import { traceOf } from "../trace-context";
import { admitRequestFor, freshMeta, responseHeaders, serveLogged } from "./serve";

export interface DetachedAnswer {
  status: number;
  body: unknown;
  requestId: string;
  /** The backend that answered (the last one tried). */
  backend: string;
  /** Upstream attempts made. */
  attempts: number;
  /** The answer's Retry-After, in seconds (a refusal's hint of when to come back). */
  retryAfterSeconds?: number;
}

/** Stops the request while it waits for a slot (its batch was cancelled); `started` tells whether it runs already. */
export interface DetachedStop {
  signal: AbortSignal;
  started?: () => boolean;
}

/** What a request runs under in its tenant's journal: a key of sluice's own, never a client's Idempotency-Key. */
export async function backgroundRecord(key: string, request: ChatRequest): Promise<NonNullable<AdmitRequest["record"]>> {
  return { key: `job:${key}`, kind: "idempotency", bodyHash: await bodyHash({ ...request, stream: false }), shared: true };
}

/**
 * Runs `request` under the journal key `key` (see backgroundRecord), at `priority` (background
 * unless said). `stop` may abort it while it waits for a slot, never once it runs (this sets `started`).
 */
export async function serveDetached(
  env: Env,
  /** `job`: what the work is, for its log line (method JOB): "generation gen_…", "batch batch_… line 3", … */
  work: {
    tenant: string;
    config: TenantConfig;
    key: string;
    job: string;
    request: ChatRequest;
    priority?: Priority;
    surface?: SurfaceName;
  },
  stop: DetachedStop,
): Promise<DetachedAnswer> {
  const priority = work.priority ?? "background";
  const { tenant, config } = work;
  const requestId = crypto.randomUUID();
  const trace = traceOf(undefined, undefined);
  // Streamed from the backend, so the journal holds the answer as it comes (a re-attached stream follows it live);
  // the sink gathers it into one answer, with the backend's usage, as a synchronous answer has it.
  const body = { ...work.request, stream: true, stream_options: { include_usage: true } };
  const record = await backgroundRecord(work.key, work.request);
  const shard = shardFor(record.key, config.limits.shards);
  const admit = admitRequestFor(body, { tenant, record, requestId, priority, shard, surface: work.surface });
  const meta = freshMeta();
  const sink = new JsonSink(() => responseHeaders(requestId, trace.traceId, meta));
  const log = new RequestLog(requestId, trace.traceId, "JOB", work.job, Date.now());
  log.set({ tenant, model: body.model, priority, surface: work.surface ?? "chat" });
  stop.started = () => meta.attempts > 0;
  const options = { lastEventId: 0, detached: true, log, trace, deadLetter: false };
  await serveLogged(env, config, { admit, body, sink, signal: stop.signal, meta, options });
  const response = await sink.response;
  const retryAfter = Number(response.headers.get("retry-after") ?? Number.NaN);
  return {
    status: response.status,
    body: await response.json().catch(() => null),
    requestId,
    backend: meta.backend,
    attempts: meta.attempts,
    ...(Number.isFinite(retryAfter) ? { retryAfterSeconds: retryAfter } : {}),
  };
}
