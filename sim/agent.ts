// The sim's deterministic agent output: what a model streams besides text. When a request offers
// `tools` (and its last message is not a tool's result, which it answers with text), the answer is one to three tool calls (OpenAI's `delta.tool_calls` shape, arguments split
// into fragments at arbitrary points, finish_reason "tool_calls"); a model whose name contains
// "reason", or a request with `reasoning_effort`, gets `reasoning_content` before its answer. Everything is a pure function of the
// request, so tests rebuild the uninterrupted output and prove nothing was spliced.
import { completionFor, continuationFor, type CompletionKey, mulberry32 } from "./text";

export interface ToolCall {
  id: string;
  name: string;
  /** The whole arguments JSON. */
  arguments: string;
}

/** A whole answer, as the sim streams it in order: reasoning, then content or tool calls. */
export interface AgentAnswer {
  reasoning: string[];
  content: string[];
  toolCalls: ToolCall[];
  finishReason: "stop" | "length" | "tool_calls";
}

/** One streamed delta (the `delta` object of a chunk). */
export type Delta = Record<string, unknown>;

export interface AgentRequest extends CompletionKey {
  /** Names of the functions the request offers (`tools[].function.name`), if any. */
  tools?: string[];
  /** The request asked for reasoning (`reasoning_effort`), whatever the model. */
  reasoning?: boolean;
  /** The request asked for a JSON object (`response_format: {"type": "json_object"}`). */
  json?: boolean;
}

/** Questions in a JSON answer: as many as a planner hands to three retrievers. */
const JSON_QUESTIONS = 3;

/**
 * The JSON object the sim answers in JSON mode: `{"questions": [three texts], "answer": text}`,
 * each text the deterministic completion of the request with a different seed.
 */
export function jsonAnswerFor(key: Omit<AgentRequest, "maxTokens">): string {
  const text = (salt: number) =>
    completionFor({ model: key.model, messages: key.messages, seed: (key.seed ?? 0) * 31 + salt })
      .tokens.join("")
      .trim();
  return JSON.stringify({ questions: Array.from({ length: JSON_QUESTIONS }, (_, i) => text(i + 1)), answer: text(0) });
}

/** The JSON text in pieces of a few characters, as a tokenizer cuts it. */
const jsonTokens = (json: string) => json.match(/[\s\S]{1,6}/g) ?? [];

function hashOf(key: AgentRequest): number {
  const text = JSON.stringify([key.model, key.messages, key.seed ?? null, key.tools ?? null]);
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export const isReasoningModel = (model: string) => model.includes("reason");

/** The uninterrupted answer to `key`. */
export function agentAnswer(key: AgentRequest): AgentAnswer {
  if (key.json) return { reasoning: [], content: jsonTokens(jsonAnswerFor(key)), toolCalls: [], finishReason: "stop" };
  const reasoning = isReasoningModel(key.model)
    ? completionFor({ ...key, model: `${key.model}#thinking`, maxTokens: undefined }).tokens
    : [];
  // Offered tools, a model calls them; given their results (the last message a tool's), it answers.
  const lastRole = (key.messages.at(-1) as { role?: unknown } | undefined)?.role;
  if (key.tools && key.tools.length > 0 && lastRole !== "tool") {
    const random = mulberry32(hashOf(key));
    const count = 1 + Math.floor(random() * 3);
    const toolCalls = Array.from({ length: count }, (_, i) => {
      const words = Array.from({ length: 2 + Math.floor(random() * 6) }, (_, w) => `w${w}x${Math.floor(random() * 1000)}`);
      return {
        id: `call_${(hashOf(key) + i).toString(36)}`,
        name: key.tools![Math.floor(random() * key.tools!.length)]!,
        arguments: JSON.stringify({ query: words.join(" "), limit: 1 + Math.floor(random() * 20) }),
      };
    });
    return { reasoning, content: [], toolCalls, finishReason: "tool_calls" };
  }
  const text = completionFor(key);
  return { reasoning, content: text.tokens, toolCalls: [], finishReason: text.finishReason };
}

/**
 * What a backend asked to continue (continue_final_message) produces after `prefix`: more of the
 * text. Like a real model, it knows only the text: asked to continue an answer that was making tool
 * calls, it writes the calls again from the start (the splice sluice must never make).
 */
export function agentContinuation(key: Omit<AgentRequest, "maxTokens">, prefix: string, maxTokensLeft?: number): AgentAnswer {
  if (key.tools && key.tools.length > 0) return { ...agentAnswer(key), reasoning: [] };
  if (key.json) {
    // The rest of the same object (a prefix that is not its start gets the object from the start, as a confused model would).
    const json = jsonAnswerFor(key);
    const rest = json.startsWith(prefix) ? json.slice(prefix.length) : json;
    return { reasoning: [], content: jsonTokens(rest), toolCalls: [], finishReason: "stop" };
  }
  const text = continuationFor(key, prefix, maxTokensLeft);
  return { reasoning: [], content: text.tokens, toolCalls: [], finishReason: text.finishReason };
}

/** The answer as the deltas a stream carries, in order (without the role delta and the finish). */
export function agentDeltas(answer: AgentAnswer): Delta[] {
  const deltas: Delta[] = answer.reasoning.map((r) => ({ reasoning_content: r }));
  for (const c of answer.content) deltas.push({ content: c });
  const random = mulberry32(answer.toolCalls.reduce((h, c) => Math.imul(h ^ c.arguments.length, 0x01000193), 0x811c9dc5));
  answer.toolCalls.forEach((call, index) => {
    deltas.push({ tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] });
    // Fragments cut at arbitrary points, as tokenizers cut JSON.
    for (let at = 0; at < call.arguments.length; ) {
      const size = 1 + Math.floor(random() * 7);
      deltas.push({ tool_calls: [{ index, function: { arguments: call.arguments.slice(at, at + size) } }] });
      at += size;
    }
  });
  return deltas;
}
