// POST /v1/embeddings: OpenAI's embeddings request, served through the tenant's gate to the backends
// that serve embeddings (serve/embeddings.ts), with fallbacks, breakers, the retry budget and rate
// limits (its tokens estimated) as for chat.
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { jsonBody, validJson } from "./validation";
import { EmbeddingsRequestSchema, type EmbeddingsRequest } from "../config/embeddings-request";
import { shardFor } from "../admission/gate-naming";
import { serveEmbeddings } from "../serve/embeddings";
import { errorResponse } from "../stream/errors";
import { logError } from "../log";
import { requestPriority, tenantBody } from "./answer";

export const embeddingsRoute = new Hono<AppEnv>().post(
  "/",
  tenantAuth,
  jsonBody,
  tenantBody,
  validJson(EmbeddingsRequestSchema),
  async (c) => {
    const body = c.req.valid("json") as EmbeddingsRequest;
    const priority = requestPriority(c);
    if (priority instanceof Response) return priority;
    const tenant = c.get("tenant");
    const config = c.get("config");
    const requestId = c.get("requestId");
    const log = c.get("requestLog");
    log.set({ tenant, model: body.model, priority, surface: "embeddings" });
    const admit = { tenant, requestId, priority, shard: shardFor(undefined, config.limits.shards), key: c.get("apiKey")?.ref };
    try {
      return await serveEmbeddings(c.env, config, { admit, body, signal: c.req.raw.signal, log, trace: c.get("trace") });
    } catch (err) {
      logError(requestId, "embeddings request failed unexpectedly", err);
      return errorResponse(500, "internal_error", `sluice failed unexpectedly (request ${requestId}).`);
    }
  },
);
