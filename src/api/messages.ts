// POST /v1/messages (Anthropic Messages) and POST /v1/messages/count_tokens. A request is
// translated to chat completions (surfaces/anthropic) and served as any chat request is (answer.ts):
// queue, fallbacks, breakers, retry budget, resume and replay hold the same; the answer, the stream
// and every error are told in Anthropic's shapes. Auth by `x-api-key` (the Anthropic SDK's) or a
// bearer token; `anthropic-version` is accepted, whatever its value.
import { Hono } from "hono";
import * as z from "zod";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorCodeOf } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { estimatePromptTokens } from "../config/chat-request";
import { MessagesRequestSchema, type MessagesRequest, toChatRequest } from "../surfaces/anthropic/request";
import { anthropicErrorResponse } from "../surfaces/anthropic/errors";
import { messagesSurface } from "../surfaces/anthropic/surface";
import { answer, requestPriority, shedWhileFull, tenantBody } from "./answer";

/**
 * Every error this route's middleware answers in OpenAI's shape (auth, body size, validation, a
 * shed 429) is told in Anthropic's instead, with the same status (529 for a 503) and headers.
 */
const anthropicErrors = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const code = errorCodeOf(c.res);
  if (code === undefined) return;
  const { error } = (await c.res.clone().json()) as { error: { message: string } };
  const headers = Object.fromEntries([...c.res.headers].filter(([name]) => name !== "content-type" && name !== "content-length"));
  c.res = anthropicErrorResponse(c.res.status, code, error.message, { ...headers, "x-request-id": c.get("requestId") });
});

/** The count_tokens body: a Messages request whose max_tokens may be left out (it generates nothing). */
const CountSchema = z.preprocess(
  (v) => (v !== null && typeof v === "object" && !Array.isArray(v) && !("max_tokens" in v) ? { ...v, max_tokens: 1 } : v),
  MessagesRequestSchema,
);

export const messagesRoute = new Hono<AppEnv>()
  .use("*", anthropicErrors)
  .post("/", tenantAuth, shedWhileFull, jsonBody, tenantBody, validJson(MessagesRequestSchema), async (c) => {
    const request = c.req.valid("json") as MessagesRequest;
    const priority = requestPriority(c);
    if (priority instanceof Response) return priority;
    const chat = toChatRequest(request);
    const speaks = messagesSurface({ stopSequences: request.stop_sequences ?? [], promptEstimate: estimatePromptTokens(chat) });
    return answer(c, chat, priority, { surface: "messages", speaks, reconnects: false });
  })
  .post("/count_tokens", tenantAuth, jsonBody, tenantBody, validJson(CountSchema), async (c) => {
    const chat = toChatRequest(c.req.valid("json") as MessagesRequest);
    // sluice counts no tokens itself: its estimate (characters / 4), which it says it is.
    return c.json({ input_tokens: estimatePromptTokens(chat), estimated: true }, 200, { "x-sluice-estimate": "characters/4" });
  });
