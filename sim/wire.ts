// The sim's chunks and answers in OpenAI's wire shapes.
import type { Delta } from "./agent";
import type { Generation } from "./generation";

type Wire = Pick<Generation, "id" | "created" | "model" | "compact" | "logprobs" | "answer" | "deltas" | "promptTokens">;

/** A `chat.completion.chunk` carrying `delta` (the `position`-th output delta, for its logprobs). */
export function chunkOf(gen: Wire, delta: Delta, finishReason: string | null, position?: number): unknown {
  if (gen.compact && !("role" in delta)) return { choices: [{ delta, ...(finishReason ? { finish_reason: finishReason } : {}) }] };
  const logprobs = gen.logprobs && typeof delta.content === "string" && position !== undefined ? logprobsOf(delta.content, position) : null;
  return {
    id: gen.id,
    object: "chat.completion.chunk",
    created: gen.created,
    model: gen.model,
    choices: [{ index: 0, delta, logprobs, finish_reason: finishReason }],
  };
}

/** The whole answer as one `chat.completion` (a non-streaming request). */
export function answerMessage(gen: Wire, usage: unknown): unknown {
  const { answer } = gen;
  const message: Record<string, unknown> = { role: "assistant", content: answer.toolCalls.length ? null : answer.content.join("") };
  if (answer.reasoning.length) message.reasoning_content = answer.reasoning.join("");
  if (answer.toolCalls.length)
    message.tool_calls = answer.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
  const logprobs = gen.logprobs ? { content: answer.content.flatMap((c, i) => logprobsOf(c, i).content) } : null;
  return {
    id: gen.id,
    object: "chat.completion",
    created: gen.created,
    model: gen.model,
    choices: [{ index: 0, message, finish_reason: answer.finishReason, logprobs }],
    usage,
  };
}

/** A request's prompt tokens, like a tokenizer: its messages, plus a continued answer's prefix (one per word). */
export function promptTokensOf(messages: unknown[], prefix = ""): number {
  return Math.ceil(JSON.stringify(messages).length / 4) + (prefix.trim() ? prefix.trim().split(/\s+/).length : 0);
}

export function usageOf(gen: Wire): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: gen.promptTokens, completion_tokens: gen.deltas.length, total_tokens: gen.promptTokens + gen.deltas.length };
}

/** Deterministic logprobs for a content token. */
function logprobsOf(token: string, position: number) {
  const logprob = -((position * 37) % 100) / 100;
  return { content: [{ token, logprob, bytes: [...new TextEncoder().encode(token)], top_logprobs: [] }] };
}
