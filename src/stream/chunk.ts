// A chunk as a backend streamed it, and what the relay needs to know about it.

/** A parsed chunk from the backend, with what the relay needs to know about it. */
export interface UpstreamChunk {
  /** The chunk object as the backend sent it. */
  raw: Record<string, unknown> & { choices?: Array<Record<string, unknown> & { delta?: Record<string, unknown> }> };
  /** Text content of this chunk ("" if none). */
  content: string;
  /** Carries generated output (content, tool calls, or a finish reason): counts as a token. */
  isToken: boolean;
  finishReason: string | null;
}

export function describeChunk(raw: UpstreamChunk["raw"]): UpstreamChunk {
  const choice = Array.isArray(raw.choices) ? raw.choices[0] : undefined;
  const delta = choice?.delta ?? {};
  const content = typeof delta.content === "string" ? delta.content : "";
  const finishReason = typeof choice?.finish_reason === "string" ? choice.finish_reason : null;
  const hasTools = Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0;
  return { raw, content, isToken: content.length > 0 || hasTools || finishReason !== null, finishReason };
}
