// The human form of sluice's request log line (src/observe/request-log.ts), for `npm run dev`:
// one line per request, coloured by outcome when the terminal supports it (the caller decides).
import type { RequestLine } from "../src/observe/request-log";

/** Whether `text` looks like a request line, without parsing it (for filters that only drop them). */
export function isRequestLine(text: string): boolean {
  return text.startsWith("{") && text.includes('"msg":"request"');
}

/** The request line in `text`, when `text` is one (a JSON object with msg "request"). */
export function parseRequestLine(text: string): RequestLine | undefined {
  if (!isRequestLine(text)) return undefined;
  try {
    const line = JSON.parse(text) as RequestLine;
    return line.msg === "request" ? line : undefined;
  } catch {
    return undefined;
  }
}

/** Failed attempts named on the line; the rest are counted. */
const MAX_FAILURES_SHOWN = 3;

const GOOD = new Set(["complete", "replayed", "joined", "stale"]);

/** The SGR foreground code: red when broken, green when answered, yellow when refused. */
function colourOf(line: RequestLine): number {
  if (line.status >= 500 || line.outcome === "partial" || line.outcome === "failed") return 31;
  return GOOD.has(line.outcome) && line.status < 400 ? 32 : 33;
}

/**
 * `POST /v1/chat/completions 200 complete demo/chat via use1-a, 2 attempts (euw1-a connect_error)
 * queue 3 ms, ttft 41 ms, total 212 ms, 9+24 tokens [2dffb0eb]`
 */
export function renderRequestLine(line: RequestLine, colour: boolean): string {
  const parts = [`${line.method} ${line.path}`, `${line.status} ${line.outcome}${line.code ? ` ${line.code}` : ""}`];
  if (line.tenant) parts.push(line.model ? `${line.tenant}/${line.model}` : line.tenant);
  if (line.attempts.length > 0) {
    const failures = line.attempts.filter((a) => a.outcome !== "success").map((a) => `${a.backend} ${a.code ?? a.outcome}`);
    const failed =
      failures.length > MAX_FAILURES_SHOWN
        ? [...failures.slice(0, MAX_FAILURES_SHOWN), `${failures.length - MAX_FAILURES_SHOWN} more`]
        : failures;
    const backend = line.backend ?? line.attempts[line.attempts.length - 1]?.backend;
    const attempts = line.attempts.length === 1 ? "" : `, ${line.attempts.length} attempts`;
    parts.push(`via ${backend}${attempts}${failed.length > 0 ? ` (${failed.join(", ")})` : ""}`);
  }
  const timing = [
    line.queueMs ? `queue ${line.queueMs} ms` : "",
    line.ttftMs !== undefined ? `ttft ${line.ttftMs} ms` : "",
    `total ${line.totalMs} ms`,
    line.completionTokens !== undefined ? `${line.promptTokens ?? "?"}+${line.completionTokens} tokens` : "",
  ].filter(Boolean);
  const text = `${parts.join(" ")}  ${timing.join(", ")}  [${line.requestId.slice(0, 8)}]`;
  return colour ? `\x1b[${colourOf(line)}m${text}\x1b[39m` : text;
}
