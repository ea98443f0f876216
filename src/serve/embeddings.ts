// Serving an embeddings request: admitted by the tenant's gate as any request is (queue, rate
// limits with its estimated tokens, breakers, a plan of the backends that serve embeddings), then
// one JSON call per attempt (dispatch/json-attempt.ts), another backend or fallback after a failure
// as the gate decides (maxAttempts, the retry budget, backoff), and the slot settled at the end.
// Nothing is streamed or journaled: the answer is the backend's, whole, or sluice's error.
import type { Env } from "../env";
import type { TenantConfig } from "../config/schema";
import { type EmbeddingsRequest, estimateEmbeddingTokens } from "../config/embeddings-request";
import type { AdmitRequest, AttemptReport, RetryResult } from "../gate/core/protocol";
import { gateClient } from "../admission/gate-client";
import { gateName } from "../admission/gate-naming";
import { LeaseState, claimingCalls } from "../dispatch/lease-claim";
import { jsonAttempt } from "../dispatch/json-attempt";
import { attemptLogEntry } from "../dispatch/dispatch-input";
import { sleep } from "../dispatch/sleep";
import { LEASE_RENEW_MS } from "../gate/core/lease-timing";
import { errorResponse } from "../stream/errors";
import type { RequestLog } from "../observe/request-log";
import { CLIENT_CLOSED } from "../observe/request-log";
import { randomHex, type TraceContext } from "../trace-context";
import { admitThroughQueue, freshMeta, responseHeaders } from "./serve";

export interface EmbeddingsCall {
  admit: Omit<AdmitRequest, "alias" | "promptTokens" | "maxTokens" | "kind">;
  body: EmbeddingsRequest;
  signal: AbortSignal;
  log: RequestLog;
  trace: TraceContext;
}

/** The answer for an embeddings request; its log line is written when it is known. Never throws. */
export async function serveEmbeddings(env: Env, config: TenantConfig, call: EmbeddingsCall): Promise<Response> {
  const { body, signal, log, trace } = call;
  const admit: AdmitRequest = {
    ...call.admit,
    kind: "embeddings",
    surface: "embeddings",
    alias: body.model,
    promptTokens: estimateEmbeddingTokens(body),
    maxTokens: 0,
  };
  const meta = freshMeta();
  const headers = () => responseHeaders(admit.requestId, trace.traceId, meta);
  const gate = gateClient(env.TENANT_GATE, gateName(admit.tenant, admit.shard ?? 0));
  const done = (response: Response, outcome: Parameters<RequestLog["end"]>[0], code?: string) => {
    log.set({ backend: meta.backend || undefined, queueMs: meta.queueMs });
    log.end(outcome, signal.aborted ? CLIENT_CLOSED : response.status, code, Date.now());
    return response;
  };
  const fail = (status: number, code: string, message: string, retryAfterSec?: number) =>
    errorResponse(status, code, message, {
      ...headers(),
      ...(retryAfterSec !== undefined ? { "retry-after": String(retryAfterSec) } : {}),
    });

  const admitted = await admitThroughQueue(gate, admit, signal);
  if (admitted.kind === "reject")
    return done(fail(admitted.status, admitted.code, admitted.message, admitted.retryAfterSec), "rejected", admitted.code);
  if (admitted.kind !== "lease")
    return done(fail(502, "internal_error", `sluice failed unexpectedly (request ${admit.requestId}).`), "failed", "internal_error");
  meta.queueMs = admitted.queueMs;
  const { leaseId, timeouts } = admitted;
  const lease = claimingCalls(gate, new LeaseState(leaseId, admit, admitted.grant));
  const deadline = Date.now() + timeouts.totalMs;
  // A slow call must not lose its lease: renewed while it runs.
  const renewal = setInterval(() => void lease.renew(leaseId).catch(() => {}), LEASE_RENEW_MS);
  let grant = admitted.grant;
  let last: AttemptReport | null = null;
  const settle = (outcome: "complete" | "failed" | "cancelled", status?: number) =>
    lease.settle(leaseId, last, outcome, undefined, status).catch(() => {});
  try {
    for (;;) {
      meta.attempts = grant.attempt;
      meta.backend = grant.backend.id;
      if (grant.delayMs > 0 && !(await sleep(Math.min(grant.delayMs, Math.max(0, deadline - Date.now())), signal))) {
        await settle("cancelled");
        return done(fail(499, "client_disconnected", "The client went away."), "cancelled");
      }
      const spanId = randomHex(8);
      const { report, answer } = await jsonAttempt({
        grant,
        path: "/embeddings",
        body,
        timeouts,
        deadline,
        signal,
        trace: { context: trace, spanId },
      });
      last = report;
      log.addAttempts([attemptLogEntry(grant, report, spanId)], (id) => config.backends.find((b) => b.id === id)?.region);
      if (report.outcome === "success") {
        await settle("complete");
        const usage = (answer as { usage?: { prompt_tokens?: unknown } } | null)?.usage;
        if (typeof usage?.prompt_tokens === "number") log.set({ promptTokens: usage.prompt_tokens });
        return done(Response.json(answer, { headers: headers() }), "complete");
      }
      if (report.outcome === "cancelled") {
        await settle("cancelled");
        return done(fail(499, "client_disconnected", "The client went away."), "cancelled");
      }
      if (report.outcome === "client_error") {
        await settle("failed", report.httpStatus);
        const status = report.httpStatus !== undefined && report.httpStatus >= 400 && report.httpStatus < 500 ? report.httpStatus : 400;
        return done(
          fail(status, report.errorCode ?? "upstream_rejected", report.errorMessage ?? "The backend rejected the request."),
          "failed",
          report.errorCode,
        );
      }
      let next: RetryResult = await lease.retry(leaseId, report, { deliveredChunks: 0, mustContinue: false });
      last = null; // reported with the retry call
      while (next.kind === "wait" && Date.now() + next.delayMs <= deadline && (await sleep(next.delayMs, signal)))
        next = await lease.retry(leaseId, null, { deliveredChunks: 0, mustContinue: false });
      if (next.kind !== "attempt") {
        const exhausted =
          next.kind === "exhausted" ? next : { status: 502, code: "no_backend_available", message: "No backend became free in time." };
        await settle("failed", exhausted.status);
        const message = `${exhausted.message} Last error: ${report.errorCode ?? "unknown"}: ${report.errorMessage ?? "no detail"}`;
        return done(
          fail(exhausted.status, exhausted.code, message, "retryAfterSec" in exhausted ? exhausted.retryAfterSec : undefined),
          "failed",
          exhausted.code,
        );
      }
      grant = next.grant;
    }
  } finally {
    clearInterval(renewal);
  }
}
