// OpenAI-shaped errors: {"error":{"message","type","code"}}, with the status decided here once.

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "invalid_request_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  415: "invalid_request_error",
  422: "invalid_request_error",
  429: "rate_limit_error",
  500: "server_error",
  502: "upstream_error",
  503: "service_unavailable",
  504: "timeout_error",
};

export function errorType(status: number): string {
  return TYPE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request_error");
}

export function errorBody(status: number, code: string, message: string) {
  return { error: { message, type: errorType(status), code } };
}

/** The error code of each error response made here, for the request log without reading the body back. */
const codes = new WeakMap<Response, string>();

export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  const response = new Response(JSON.stringify(errorBody(status, code, message)), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
  codes.set(response, code);
  return response;
}

/** The `error.code` of a response errorResponse made, or undefined. */
export function errorCodeOf(response: Response): string | undefined {
  return codes.get(response);
}
