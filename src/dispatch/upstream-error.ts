// How an upstream call failed, in sluice's words (may reach the client) and with the backend's
// own (the attempt log only): AttemptError, and a backend's HTTP error answer classified (a
// redirect, bad credentials, the client's own request at fault, or the backend's failure).
import type { AttemptReport } from "../gate/core/protocol";
import { parseRetryAfter } from "./retry-after";

const MAX_ERROR_BODY_BYTES = 2048;

/**
 * Why an attempt failed; `retryable` false means another backend would fail the same way. The
 * message is sluice's own words and may reach the client; `detail` is foreign text (what the
 * backend said, what the runtime threw), kept for the attempt log and dead letters only.
 */
export class AttemptError extends Error {
  readonly httpStatus?: number;
  readonly retryAfterMs?: number;
  readonly detail?: string;

  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    extra: { httpStatus?: number; retryAfterMs?: number; detail?: string } = {},
  ) {
    super(message);
    this.httpStatus = extra.httpStatus;
    this.retryAfterMs = extra.retryAfterMs;
    this.detail = extra.detail;
  }
}

/**
 * What an attempt's report says of its failure: `err` itself when it is an AttemptError, otherwise
 * a fault of sluice's own relaying (retryable; its text goes to the attempt log only).
 */
export function failureOf(err: unknown): { error: AttemptError; fields: Pick<AttemptReport, FailureField> } {
  const error =
    err instanceof AttemptError ? err : new AttemptError("relay_error", "Relaying failed inside sluice.", true, { detail: String(err) });
  const fields = {
    outcome: error.retryable || error.code === "total_timeout" ? ("failure" as const) : ("client_error" as const),
    errorCode: error.code,
    errorMessage: error.message,
    errorDetail: error.detail,
    httpStatus: error.httpStatus,
    retryAfterMs: error.retryAfterMs,
  };
  return { error, fields };
}

type FailureField = "outcome" | "errorCode" | "errorMessage" | "errorDetail" | "httpStatus" | "retryAfterMs";

/** The error for a backend's non-2xx answer: retryable unless the request itself is at fault. */
export async function upstreamHttpError(id: string, response: Response): Promise<AttemptError> {
  const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), Date.now());
  const text = await readPrefix(response, MAX_ERROR_BODY_BYTES);
  const status = response.status;
  if (status >= 300 && status < 400) {
    const message = `${id} answered a redirect (${status}); sluice does not follow redirects.`;
    return new AttemptError("upstream_redirect", message, true, { httpStatus: status, detail: text });
  }
  // The backend's key is wrong or revoked: the backend's problem, never the client's 401/403.
  if (status === 401 || status === 403) {
    const message = `${id} refused sluice's credentials (${status}): check its apiKey.`;
    return new AttemptError("upstream_auth_failed", message, true, { httpStatus: status, detail: text });
  }
  // 4xx other than 408/429 means the request itself is wrong: no backend will like it better.
  const retryable = status === 408 || status === 429 || status >= 500;
  let said = text;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
    said = (typeof parsed.error === "string" ? parsed.error : parsed.error?.message) ?? parsed.message ?? text;
  } catch {
    /* not JSON: keep the text */
  }
  const code = `upstream_http_${status}`;
  const extra = { httpStatus: status, retryAfterMs, detail: said.slice(0, 500) };
  // A backend's verdict on the client's own request is passed on with its reason; the text of
  // a backend's own failure (5xx, 408, 429) stays in the attempt log.
  if (!retryable) return new AttemptError(code, `${id} answered ${status}${said ? `: ${said.slice(0, 500)}` : ""}`, false, extra);
  return new AttemptError(code, `${id} answered ${status}.`, true, extra);
}

async function readPrefix(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
    }
  } catch {
    /* a broken error body still leaves the status */
  } finally {
    reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  return new TextDecoder().decode(all.subarray(0, maxBytes)).trim();
}
