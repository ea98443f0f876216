// POST /v1/chat/completions: validates the request, then answers it (answer.ts), or queues it as an async generation.
import { Hono } from "hono";
import type { AppEnv } from "./context";
import { tenantAuth } from "./auth";
import { errorResponse } from "../stream/errors";
import { jsonBody, validJson } from "./validation";
import { ChatRequestSchema, type ChatRequest } from "../config/chat-request";
import { prefersAsync, startGeneration } from "./generations";
import { NO_WEBHOOK, namedWebhook } from "../jobs/generation-webhook";
import { answer, requestPriority, shedWhileFull, tenantBody } from "./answer";

export const chatRoute = new Hono<AppEnv>().post(
  "/completions",
  tenantAuth,
  shedWhileFull,
  jsonBody,
  tenantBody,
  validJson(ChatRequestSchema),
  async (c) => {
    const body = c.req.valid("json") as ChatRequest;
    const priority = requestPriority(c);
    if (priority instanceof Response) return priority;
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
    return answer(c, body, priority, { surface: "chat", reconnects: true });
  },
);
