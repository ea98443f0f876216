// sluice's failures in Anthropic's error shape and statuses:
// {"type":"error","error":{"type","message"},"request_id"}. sluice's own code rides along as
// `error.code`. A request the backends cannot serve now (every breaker open) is 529
// overloaded_error, which the Anthropic SDK retries, as it retries 429 (with Retry-After).

/** Anthropic's status for sluice's: only 503 changes (to 529 overloaded). */
export function anthropicStatus(status: number): number {
  return status === 503 ? 529 : status;
}

const TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  409: "invalid_request_error",
  410: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  529: "overloaded_error",
};

/** Anthropic's error type for an Anthropic status. */
export function anthropicErrorType(status: number): string {
  return TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
}

/** The error object of Anthropic's shape (the body of a response, or the data of an `error` event). */
export function anthropicError(status: number, code: string, message: string, requestId?: string): Record<string, unknown> {
  return {
    type: "error",
    error: { type: anthropicErrorType(anthropicStatus(status)), message, code },
    ...(requestId ? { request_id: requestId } : {}),
  };
}

/** An error response in Anthropic's shape, from sluice's status, code and message. */
export function anthropicErrorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(anthropicError(status, code, message, headers["x-request-id"])), {
    status: anthropicStatus(status),
    headers: { ...headers, "content-type": "application/json" },
  });
}
