// sluice Worker entry: the Hono app and the Durable Object classes it uses.
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./api/context";
import type { Env } from "./env";
import type { WebhookMessage } from "./observe/alerts/webhook-message";
import { errorResponse } from "./stream/errors";
import { logError } from "./log";
import { chatRoute } from "./api/chat";
import { modelsRoute } from "./api/models";
import { messagesRoute } from "./api/messages";
import { responsesRoute } from "./api/responses";
import { embeddingsRoute } from "./api/embeddings";
import { adminRoute } from "./api/admin";
import { allowedMethods } from "./api/allowed-methods";
import { requestLogging } from "./api/request-logging";
import { dashboardPage } from "./api/dashboard";
import { queues } from "./api/queues";
import { filesRoute } from "./api/files";
import { batchesRoute } from "./api/batches";
import { generationsRoute } from "./api/generations";
import { workflowsRoute } from "./api/workflows";
import type { JobMessage } from "./jobs/messages";

export { TenantGate } from "./gate/tenant-gate";
export { ConfigLog } from "./admin/config-log";
export { PoolGate } from "./pool/pool-gate";
export { SluiceWorkflow } from "./workflows/runner";

const app = new Hono<AppEnv>();

app.use("*", requestLogging);

app.get("/", (c) => c.json({ service: "sluice", docs: "https://github.com/sluice-router/sluice#readme" }));
app.get("/healthz", (c) => c.json({ ok: true }));
app.route("/v1/chat", chatRoute);
app.route("/v1/messages", messagesRoute);
app.route("/v1/responses", responsesRoute);
app.route("/v1/embeddings", embeddingsRoute);
app.route("/v1/models", modelsRoute);
app.route("/v1/files", filesRoute);
app.route("/v1/batches", batchesRoute);
app.route("/v1/generations", generationsRoute);
app.route("/v1/workflows", workflowsRoute);
// The page before the admin routes' token check: it asks for the token itself.
app.get("/admin/dashboard", dashboardPage);
app.route("/admin", adminRoute);

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  const allow = allowedMethods(app.routes, path);
  if (allow.length > 0)
    return errorResponse(405, "method_not_allowed", `${path} answers ${allow.join(", ")}, not ${c.req.method}.`, {
      allow: allow.join(", "),
    });
  return errorResponse(404, "not_found", `No route for ${c.req.method} ${path}.`);
});

app.onError((err, c) => {
  if (err instanceof HTTPException) {
    // Hono raises these for malformed input (bad JSON, wrong content type): the client's fault.
    const status = err.status >= 500 ? 400 : err.status;
    return errorResponse(status, status === 413 ? "body_too_large" : "invalid_request", err.message || "Invalid request.");
  }
  logError(c.get("requestId"), "unhandled error", err);
  return errorResponse(500, "internal_error", `sluice failed unexpectedly (request ${c.get("requestId")}).`);
});

export default { fetch: app.fetch, queue: queues } satisfies ExportedHandler<Env, WebhookMessage | JobMessage>;
