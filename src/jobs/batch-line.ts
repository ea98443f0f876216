// Running one batch line, whatever endpoint its batch runs: a chat completion as detached background
// work (serve/detached.ts), a Responses request the same way after its translation (its answer a
// `response` object), an embeddings request through the gate at the background priority.
import type { Env } from "../env";
import type { ChatRequest } from "../config/chat-request";
import type { TenantConfig } from "../config/schema";
import { shardFor } from "../admission/gate-naming";
import { RequestLog } from "../observe/request-log";
import { serveDetached, type DetachedStop } from "../serve/detached";
import { serveEmbeddings } from "../serve/embeddings";
import { toChatRequest } from "../surfaces/responses/request";
import { responseOf } from "../surfaces/responses/response";
import type { ChatCompletion } from "../stream/surface";
import { traceOf } from "../trace-context";
import type { BatchLine } from "./batch-input";

export interface LineAnswer {
  status: number;
  body: unknown;
  requestId: string;
}

/** The chat request a line runs as (none for embeddings): what its dead letter keeps, to run again. */
export function chatRequestOf(line: BatchLine): ChatRequest | undefined {
  if (line.url === "/v1/chat/completions") return line.body;
  if (line.url === "/v1/responses") return toChatRequest(line.body, []);
  return undefined;
}

/**
 * Runs the line; `work.key` names it in the tenant's journal (a redelivery joins its generation),
 * `work.job` in its log line. `stop` may abort it while it waits for a slot.
 */
export async function runBatchLine(
  env: Env,
  config: TenantConfig,
  line: BatchLine,
  work: { tenant: string; key: string; job: string },
  stop: DetachedStop,
): Promise<LineAnswer> {
  const request = chatRequestOf(line);
  if (request) {
    const surface = line.url === "/v1/responses" ? "responses" : "chat";
    const answer = await serveDetached(env, { ...work, config, request, surface }, stop);
    if (line.url !== "/v1/responses" || answer.status < 200 || answer.status >= 300) return answer;
    const ctx = { id: `resp_${work.key.replaceAll(/[^a-zA-Z0-9]/g, "_")}`, createdAt: Math.floor(Date.now() / 1000), request: line.body };
    return { ...answer, body: responseOf(ctx, answer.body as ChatCompletion) };
  }
  // Embeddings: not journaled, as on the route; an attempt that ran is started.
  const requestId = crypto.randomUUID();
  const trace = traceOf(undefined, undefined);
  const log = new RequestLog(requestId, trace.traceId, "JOB", work.job, Date.now());
  log.set({ tenant: work.tenant, model: line.body.model, priority: "background", surface: "embeddings" });
  const admit = { tenant: work.tenant, requestId, priority: "background" as const, shard: shardFor(undefined, config.limits.shards) };
  if (line.url !== "/v1/embeddings") throw new Error(`a batch line for ${line.url} has no request`);
  const response = await serveEmbeddings(env, config, { admit, body: line.body, signal: stop.signal, log, trace });
  return { status: response.status, body: await response.json().catch(() => null), requestId };
}
