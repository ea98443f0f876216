// The rogue backend's behaviours and counters, importable from workerd tests (no Node imports).

export const ROGUE_BEHAVIOURS = [
  /** One SSE "line" that never ends: bytes without a newline, until the client goes away. */
  "endless-line",
  /** A 200 whose body is not SSE but one long JSON document without a newline, until the client goes away. */
  "endless-json",
  /** `data: [DONE]` before any content or finish reason. */
  "done-first",
  /** Ignores max_tokens: streams tokens until the client goes away. */
  "ignores-max-tokens",
  /** 401 with an upstream error text, as a backend whose key was revoked. */
  "auth-401",
  /** 403, likewise. */
  "auth-403",
  /** 401 echoing the key it was sent and an internal URL in its error body. */
  "auth-echo",
  /** A redirect to another backend (the target must never be called). */
  "redirect",
] as const;
export type RogueBehaviour = (typeof ROGUE_BEHAVIOURS)[number];

export interface RogueStats {
  requests: Record<string, number>;
  open: number;
  bytesSent: number;
  closedByClient: number;
}
