// A chat completion as Anthropic's `message`: thinking, text and tool_use blocks, the stop reason,
// and usage from the backend's own counts. What a streamed answer and a JSON one share.
import type { ChatCompletion } from "../../stream/surface";

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";

/** Anthropic's stop reason and sequence for a chat finish reason (`matched`: vLLM's `stop_reason`, the stop string hit). */
export function stopReasonOf(
  finishReason: string | null | undefined,
  matched: unknown,
  stopSequences: readonly string[],
): { stop_reason: StopReason; stop_sequence: string | null } {
  if (finishReason === "length") return { stop_reason: "max_tokens", stop_sequence: null };
  if (finishReason === "tool_calls" || finishReason === "function_call") return { stop_reason: "tool_use", stop_sequence: null };
  if (finishReason === "content_filter") return { stop_reason: "refusal", stop_sequence: null };
  if (typeof matched === "string" && stopSequences.includes(matched)) return { stop_reason: "stop_sequence", stop_sequence: matched };
  return { stop_reason: "end_turn", stop_sequence: null };
}

export interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens?: number;
}

/** The backend's usage in Anthropic's terms (undefined when it reported none). */
export function usageOf(usage: Record<string, unknown> | undefined): AnthropicUsage | undefined {
  if (!usage || typeof usage.prompt_tokens !== "number") return undefined;
  const cached = (usage.prompt_tokens_details as { cached_tokens?: unknown } | undefined)?.cached_tokens;
  return {
    input_tokens: usage.prompt_tokens,
    output_tokens: typeof usage.completion_tokens === "number" ? usage.completion_tokens : 0,
    ...(typeof cached === "number" && cached > 0 ? { cache_read_input_tokens: cached } : {}),
  };
}

/**
 * A tool call's `input`: its arguments parsed. Arguments that are not a JSON object (a backend's
 * mistake) are kept as they came, a string, rather than dropped or made up.
 */
export function toolInput(args: string): unknown {
  if (args.trim() === "") return {};
  try {
    const parsed: unknown = JSON.parse(args);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : args;
  } catch {
    return args;
  }
}

/** Anthropic's message id for a chat completion id. */
export const messageId = (id: string) => (id.startsWith("msg_") ? id : `msg_${id.replace(/^chatcmpl-/, "")}`);

/** The whole answer as Anthropic's `message` object. */
export function messageOf(completion: ChatCompletion, stopSequences: readonly string[], promptEstimate: number): Record<string, unknown> {
  const choice = completion.choices[0];
  const m = choice?.message;
  const content: Array<Record<string, unknown>> = [];
  if (m?.reasoning_content) content.push({ type: "thinking", thinking: m.reasoning_content, signature: "" });
  if (m?.content) content.push({ type: "text", text: m.content });
  for (const call of m?.tool_calls ?? [])
    content.push({ type: "tool_use", id: call.id ?? "", name: call.function.name, input: toolInput(call.function.arguments) });
  return {
    id: messageId(completion.id),
    type: "message",
    role: "assistant",
    model: completion.model,
    content,
    ...stopReasonOf(choice?.finish_reason, (choice as { stop_reason?: unknown } | undefined)?.stop_reason, stopSequences),
    usage: usageOf(completion.usage) ?? { input_tokens: promptEstimate, output_tokens: 0 },
  };
}
