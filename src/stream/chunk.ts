// A chunk as a backend streamed it, and what the relay needs to know about it.

/** A parsed chunk from the backend, with what the relay needs to know about it. */
export interface UpstreamChunk {
  /** The chunk object as the backend sent it. */
  raw: Record<string, unknown> & { choices?: Array<Record<string, unknown> & { delta?: Record<string, unknown> }> };
  /** Text content of this chunk ("" if none). */
  content: string;
  /** Reasoning text (`delta.reasoning_content`, "" if none), streamed before the answer by reasoning models. */
  reasoning: string;
  /** Tool-call fragments of this chunk (`delta.tool_calls`), if any. */
  toolCalls: ToolCallDelta[] | undefined;
  /** Carries generated output (content, reasoning, tool calls, or a finish reason): counts as a token. */
  isToken: boolean;
  finishReason: string | null;
}

/** One entry of `delta.tool_calls`: a fragment of the call at `index`. */
export interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

export function describeChunk(raw: UpstreamChunk["raw"]): UpstreamChunk {
  const choice = Array.isArray(raw.choices) ? raw.choices[0] : undefined;
  const delta = choice?.delta ?? {};
  const content = typeof delta.content === "string" ? delta.content : "";
  const reasoning = typeof delta.reasoning_content === "string" ? delta.reasoning_content : "";
  const finishReason = typeof choice?.finish_reason === "string" ? choice.finish_reason : null;
  const toolCalls = Array.isArray(delta.tool_calls) && delta.tool_calls.length > 0 ? (delta.tool_calls as ToolCallDelta[]) : undefined;
  const isToken = content.length > 0 || reasoning.length > 0 || toolCalls !== undefined || finishReason !== null;
  return { raw, content, reasoning, toolCalls, isToken, finishReason };
}
