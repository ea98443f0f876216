// One attempt of a request answered in one JSON body (embeddings): POST it to the granted backend,
// wait for headers within connectMs, read the answer whole within the request's deadline and at most
// MAX_JSON_ANSWER_BYTES, and say how it went as the gate's AttemptReport. Never throws.
import type { AttemptGrant, AttemptReport, Timeouts } from "../gate/core/protocol";
import { readWithin } from "../stream/read-within";
import { traceHeaders, type TraceContext } from "../trace-context";
import { AttemptError, upstreamHttpError } from "./upstream-error";

/** The largest answer read (a batch of 2,048 vectors of 1,536 floats as JSON is about 40 MB: ask for base64, or fewer inputs). */
export const MAX_JSON_ANSWER_BYTES = 32 * 1024 * 1024;

export interface JsonAttempt {
  grant: AttemptGrant;
  /** The path under the backend's URL, e.g. "/embeddings". */
  path: string;
  body: Record<string, unknown>;
  timeouts: Timeouts;
  /** Absolute time (ms) by which the whole request must be done. */
  deadline: number;
  signal: AbortSignal;
  trace?: { context: TraceContext; spanId: string };
}

export async function jsonAttempt(a: JsonAttempt): Promise<{ report: AttemptReport; answer?: unknown }> {
  const { grant } = a;
  const started = Date.now();
  const report = (outcome: AttemptReport["outcome"], error?: AttemptError): AttemptReport => ({
    backendId: grant.backend.id,
    outcome,
    durationMs: Date.now() - started,
    chunks: 0,
    ...(error
      ? {
          errorCode: error.code,
          errorMessage: error.message,
          errorDetail: error.detail,
          httpStatus: error.httpStatus,
          retryAfterMs: error.retryAfterMs,
        }
      : {}),
  });
  const failed = (error: AttemptError) => ({ report: report(error.retryable ? "failure" : "client_error", error) });
  const connect = AbortSignal.timeout(Math.max(1, Math.min(a.timeouts.connectMs, a.deadline - started)));
  const headers: Record<string, string> = {
    "content-type": "application/json",
    ...(a.trace ? traceHeaders(a.trace.context, a.trace.spanId) : {}),
    ...(grant.backend.apiKey ? { authorization: `Bearer ${grant.backend.apiKey}` } : {}),
  };
  let response: Response;
  try {
    response = await fetch(`${grant.backend.url}${a.path}`, {
      method: "POST",
      headers,
      body: JSON.stringify({ ...a.body, model: grant.backend.model }),
      signal: AbortSignal.any([a.signal, connect]),
      redirect: "manual",
    });
  } catch (err) {
    if (a.signal.aborted) return { report: report("cancelled") };
    const timedOut = connect.aborted;
    const error = timedOut
      ? new AttemptError("connect_timeout", `No response headers from ${grant.backend.id} within ${a.timeouts.connectMs} ms.`, true)
      : new AttemptError("connect_error", `Could not reach ${grant.backend.id}.`, true, { detail: String(err) });
    return failed(error);
  }
  if (!response.ok) return failed(await upstreamHttpError(grant.backend.id, response));
  const read = await readWithin(response.body, MAX_JSON_ANSWER_BYTES, Math.max(1, a.deadline - Date.now()));
  if (read.kind !== "read") {
    if (a.signal.aborted) return { report: report("cancelled") };
    const why =
      read.kind === "too_large"
        ? `an answer over ${MAX_JSON_ANSWER_BYTES} bytes`
        : read.kind === "timeout"
          ? "no whole answer in time"
          : "a broken answer";
    return failed(new AttemptError(`upstream_${read.kind}`, `${grant.backend.id} sent ${why}.`, read.kind !== "too_large"));
  }
  try {
    return { report: report("success"), answer: JSON.parse(new TextDecoder().decode(read.bytes)) as unknown };
  } catch {
    return failed(new AttemptError("upstream_invalid_json", `${grant.backend.id} answered with something that is not JSON.`, true));
  }
}
