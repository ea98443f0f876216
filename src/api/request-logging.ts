// The first middleware: gives each request its id (x-request-id on every response), its trace
// (x-sluice-trace-id; trace-context.ts) and its log line (observe/request-log.ts). A route whose
// answer streams on after it returned defers the line and writes it itself; every other
// request's line is written here, from the response.
import { createMiddleware } from "hono/factory";
import { RequestLog, outcomeOfStatus, writeLine } from "../observe/request-log";
import { recordRequest } from "../observe/analytics";
import { errorCodeOf } from "../stream/errors";
import type { AppEnv } from "./context";
import { traceOf } from "../trace-context";

export const requestLogging = createMiddleware<AppEnv>(async (c, next) => {
  const requestId = crypto.randomUUID();
  const trace = traceOf(c.req.header("traceparent"), c.req.header("tracestate"));
  const log = new RequestLog(requestId, trace.traceId, c.req.method, new URL(c.req.url).pathname, Date.now(), (line) => {
    writeLine(line);
    recordRequest(c.env.ANALYTICS, line);
  });
  c.set("requestId", requestId);
  c.set("trace", trace);
  c.set("requestLog", log);
  await next();
  const code = errorCodeOf(c.res);
  if (!c.res.headers.has("x-request-id") || !c.res.headers.has("x-sluice-trace-id")) {
    c.res = new Response(c.res.body, c.res);
    c.res.headers.set("x-request-id", requestId);
    c.res.headers.set("x-sluice-trace-id", trace.traceId);
  }
  if (log.deferred) return;
  log.set({ tenant: c.get("tenant") });
  log.end(outcomeOfStatus(c.res.status), c.res.status, code, Date.now());
});
