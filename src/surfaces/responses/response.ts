// The `response` object of OpenAI's Responses API, built from what a chat completion produced:
// reasoning, a message with its output_text, function_call items; status, usage in Responses'
// terms. A streamed answer and a JSON one share it.
import type { ChatCompletion } from "../../stream/surface";
import type { ResponsesRequest } from "./request";

/** What a response says of its request, fixed before the answer starts. */
export interface ResponseContext {
  id: string;
  /** Unix seconds. */
  createdAt: number;
  request: ResponsesRequest;
}

export type OutputItem = Record<string, unknown> & { type: "reasoning" | "message" | "function_call" };

const PREFIX = { message: "msg", reasoning: "rs", function_call: "fc" } as const;

/** The id of a response's output item at `index`: stable, so a stream and a stored response agree. */
export const itemId = (responseId: string, type: OutputItem["type"], index: number) =>
  `${PREFIX[type]}_${responseId.replace(/^resp_/, "")}_${index}`;

export function reasoningItem(id: string, text: string): OutputItem {
  return { type: "reasoning", id, summary: [], content: [{ type: "reasoning_text", text }] };
}

export function messageItem(id: string, text: string, status: "in_progress" | "completed"): OutputItem {
  return {
    type: "message",
    id,
    status,
    role: "assistant",
    content: status === "in_progress" ? [] : [{ type: "output_text", text, annotations: [] }],
  };
}

export function callItem(id: string, callId: string, name: string, args: string, status: "in_progress" | "completed"): OutputItem {
  return { type: "function_call", id, call_id: callId, name, arguments: args, status };
}

/** Usage in Responses' terms, from the backend's chat usage (undefined: it reported none). */
export function usageOf(usage: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!usage || typeof usage.prompt_tokens !== "number") return undefined;
  const output = typeof usage.completion_tokens === "number" ? usage.completion_tokens : 0;
  const reasoning = (usage.completion_tokens_details as { reasoning_tokens?: unknown } | undefined)?.reasoning_tokens;
  const cached = (usage.prompt_tokens_details as { cached_tokens?: unknown } | undefined)?.cached_tokens;
  return {
    input_tokens: usage.prompt_tokens,
    input_tokens_details: { cached_tokens: typeof cached === "number" ? cached : 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: typeof reasoning === "number" ? reasoning : 0 },
    total_tokens: usage.prompt_tokens + output,
  };
}

export type ResponseStatus = "queued" | "in_progress" | "completed" | "incomplete" | "failed" | "cancelled";

/** What a response says of its request, in its own fields: the response before it has output. */
export function responseShell(ctx: ResponseContext): Record<string, unknown> & { id: string } {
  const r = ctx.request;
  return {
    id: ctx.id,
    object: "response",
    created_at: ctx.createdAt,
    status: "queued",
    background: r.background ?? false,
    model: r.model,
    output: [],
    output_text: "",
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    previous_response_id: r.previous_response_id ?? null,
    store: r.store !== false,
    metadata: r.metadata ?? {},
    max_output_tokens: r.max_output_tokens ?? null,
    temperature: r.temperature ?? null,
    top_p: r.top_p ?? null,
    tools: r.tools ?? [],
    tool_choice: r.tool_choice ?? "auto",
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    text: r.text ?? { format: { type: "text" } },
    reasoning: r.reasoning ?? { effort: null, summary: null },
    usage: null,
  };
}

type State = { usage?: Record<string, unknown>; error?: { code: string; message: string }; truncated?: boolean };

/** The `response` object, in a given state. */
export function responseObject(ctx: ResponseContext, status: ResponseStatus, output: OutputItem[], more: State = {}) {
  return inState(responseShell(ctx), status, output, more);
}

/** A response (its shell, or itself in another state) in `status`, with `output`. */
export function inState(shell: Record<string, unknown>, status: ResponseStatus, output: OutputItem[], more: State = {}) {
  const outputText = output
    .filter((i) => i.type === "message")
    .flatMap((i) => (i.content as Array<{ text: string }>).map((c) => c.text))
    .join("");
  return {
    ...shell,
    status,
    output,
    output_text: outputText,
    error: more.error ?? null,
    incomplete_details: more.truncated ? { reason: "max_output_tokens" } : null,
    usage: more.usage ?? null,
  };
}

/** The whole answer as a completed (or, cut at max_output_tokens, incomplete) response. */
export function responseOf(ctx: ResponseContext, completion: ChatCompletion): Record<string, unknown> {
  return completedResponse(responseShell(ctx), completion);
}

/** `shell` (a response before it had output) completed by the chat completion that answered it. */
export function completedResponse(shell: Record<string, unknown>, completion: ChatCompletion): Record<string, unknown> {
  const id = String(shell.id);
  const choice = completion.choices[0];
  const m = choice?.message;
  const output: OutputItem[] = [];
  if (m?.reasoning_content) output.push(reasoningItem(itemId(id, "reasoning", output.length), m.reasoning_content));
  if (m?.content) output.push(messageItem(itemId(id, "message", output.length), m.content, "completed"));
  for (const call of m?.tool_calls ?? []) {
    const item = itemId(id, "function_call", output.length);
    output.push(callItem(item, call.id ?? item, call.function.name, call.function.arguments, "completed"));
  }
  const truncated = choice?.finish_reason === "length";
  return inState(shell, truncated ? "incomplete" : "completed", output, { usage: usageOf(completion.usage), truncated });
}

/** A response's output as the chat messages a later turn sends back: the assistant's text and its calls. */
export function answerMessages(response: Record<string, unknown>): Array<Record<string, unknown> & { role: "assistant" }> {
  const output = (response.output ?? []) as OutputItem[];
  const text = output
    .filter((i) => i.type === "message")
    .flatMap((i) => (i.content as Array<{ text: string }>).map((c) => c.text))
    .join("");
  const calls = output
    .filter((i) => i.type === "function_call")
    .map((i) => ({ id: i.call_id, type: "function", function: { name: i.name, arguments: i.arguments } }));
  if (!text && calls.length === 0) return [];
  return [{ role: "assistant", content: text || null, ...(calls.length ? { tool_calls: calls } : {}) }];
}
