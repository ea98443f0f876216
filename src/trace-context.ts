// W3C Trace Context (https://www.w3.org/TR/trace-context/): a request joins the client's trace
// (`traceparent`, `tracestate`) or starts one; each backend attempt is a span of its own, sent to
// the backend as its parent, so vLLM and other servers that continue W3C traces hang their spans
// under the right attempt. The trace id is in the response (`x-sluice-trace-id`), the request's
// log line and its dead letter.

export interface TraceContext {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** The client's span (16 hex digits), or sluice's own when the request started the trace. */
  parentId: string;
  /** 2 hex digits; "01": sampled. */
  flags: string;
  /** The client's `tracestate`, passed on as it came (at most MAX_TRACESTATE characters). */
  tracestate?: string;
}

/** Longest `tracestate` passed on (32 members of the spec's 256 characters would be far more; vendors keep it short). */
export const MAX_TRACESTATE = 512;

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;

/** Random lowercase hex of `bytes` bytes. */
export function randomHex(bytes: number): string {
  let hex = "";
  for (const b of crypto.getRandomValues(new Uint8Array(bytes))) hex += HEX[b];
  return hex;
}

/** Each byte's two hex digits: three ids a request, without an array and a string per byte. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * The client's trace, or a new one when it sent none or one that is not valid (an unknown
 * version's fields are read as version 00's, as the spec asks; version ff and all-zero ids are invalid).
 */
export function traceOf(traceparent: string | undefined, tracestate: string | undefined, random = randomHex): TraceContext {
  const m = traceparent?.trim().match(TRACEPARENT);
  const valid = m && m[1] !== "ff" && !/^0+$/.test(m[2]!) && !/^0+$/.test(m[3]!) && (m[1] !== "00" || traceparent!.trim().length === 55);
  if (!valid) return { traceId: random(16), parentId: random(8), flags: "01" };
  const state = tracestate?.trim();
  return { traceId: m[2]!, parentId: m[3]!, flags: m[4]!, ...(state && state.length <= MAX_TRACESTATE ? { tracestate: state } : {}) };
}

/** The headers that make a backend call span `spanId` of the trace. */
export function traceHeaders(trace: TraceContext, spanId: string): Record<string, string> {
  return { traceparent: `00-${trace.traceId}-${spanId}-${trace.flags}`, ...(trace.tracestate ? { tracestate: trace.tracestate } : {}) };
}
