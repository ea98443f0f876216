// One batch line, run as background work: the same admission, breakers, fallbacks, retry budget and
// resume as an interactive request, at the "background" priority (the gate gives it only slots no
// interactive request waits for). It runs under a journal key of its own, derived from the batch and
// the line, so a redelivered line joins the generation still running or replays the stored answer:
// it never generates twice.
import type { Env } from "../env";
import type { TenantConfig } from "../config/schema";
import { estimatePromptTokens, requestedMaxTokens, type ChatRequest } from "../config/chat-request";
import type { AdmitRequest } from "../gate/core/protocol";
import { bodyHash } from "../admission/dedup-key";
import { shardFor } from "../admission/gate-naming";
import { JsonSink } from "../stream/json-sink";
import { RequestLog } from "../observe/request-log";
import { traceOf } from "../trace-context";
import { type ResponseMeta, responseHeaders, serveLogged } from "../serve/serve";

export interface LineAnswer {
  status: number;
  body: unknown;
  requestId: string;
}

/** Stops a line while it waits for a slot (its batch was cancelled); `started` tells whether it runs already. */
export interface LineStop {
  signal: AbortSignal;
  started?: () => boolean;
}

/** Runs the line. `stop` may abort it while it waits for a slot, never once it runs (runLine sets `started`). */
export async function runLine(
  env: Env,
  tenant: string,
  config: TenantConfig,
  batchId: string,
  line: number,
  request: ChatRequest,
  stop: LineStop,
): Promise<LineAnswer> {
  const requestId = crypto.randomUUID();
  const trace = traceOf(undefined, undefined);
  const body = { ...request, stream: false };
  const record = { key: `job:${batchId}:${line}`, kind: "idempotency" as const, bodyHash: await bodyHash(body), shared: true };
  const admit: AdmitRequest = {
    tenant,
    record,
    requestId,
    alias: body.model,
    priority: "background",
    promptTokens: estimatePromptTokens(body),
    maxTokens: requestedMaxTokens(body),
    shard: shardFor(record.key, config.limits.shards),
  };
  const meta: ResponseMeta = { backend: "", attempts: 0, queueMs: 0, degradations: [] };
  const sink = new JsonSink(() => responseHeaders(requestId, trace.traceId, meta));
  const log = new RequestLog(requestId, trace.traceId, "POST", `/v1/batches/${batchId}/lines/${line}`, Date.now());
  log.set({ tenant, model: body.model, priority: "background" });
  stop.started = () => meta.attempts > 0;
  await serveLogged(env, config, admit, body, sink, stop.signal, meta, { lastEventId: 0, detached: true, log, trace, deadLetter: false });
  const response = await sink.response;
  return { status: response.status, body: await response.json().catch(() => null), requestId };
}
