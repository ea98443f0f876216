// One Analytics Engine data point per request, when the Worker has an `ANALYTICS` binding
// (wrangler.toml, commented out by default): the request log line's figures, queryable with SQL
// over any window (docs/operations.md "Request log"). Without the binding nothing is written.
import type { RequestLine } from "./request-log";

/**
 * index: the tenant. blobs: outcome, model alias, backend, error code, priority, method, path, surface.
 * doubles: status, queue ms, TTFT ms (-1 without a token), total ms, prompt tokens, completion
 * tokens, attempts.
 */
export function requestDataPoint(line: RequestLine): AnalyticsEngineDataPoint {
  return {
    indexes: [line.tenant ?? ""],
    blobs: [
      line.outcome,
      line.model ?? "",
      line.backend ?? "",
      line.code ?? "",
      line.priority ?? "",
      line.method,
      line.path.slice(0, 256),
      line.surface ?? "",
    ],
    doubles: [
      line.status,
      line.queueMs ?? 0,
      line.ttftMs ?? -1,
      line.totalMs,
      line.promptTokens ?? 0,
      line.completionTokens ?? 0,
      line.attempts.length,
    ],
  };
}

export function recordRequest(dataset: AnalyticsEngineDataset | undefined, line: RequestLine): void {
  dataset?.writeDataPoint(requestDataPoint(line));
}
