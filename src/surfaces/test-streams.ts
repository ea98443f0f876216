// Backend streams for the surfaces' tests: chat completion chunks as a backend sends them, and a
// fast-check arbitrary of whole streams (reasoning, text, parallel tool calls whose arguments are
// split at arbitrary points, usage), which each surface's property test translates and accumulates.
import fc from "fast-check";
import type { FramedChunk } from "../stream/sink";
import type { ChatCompletion } from "../stream/surface";

export const framed = (chunk: Record<string, unknown>): FramedChunk => ({ chunk, json: JSON.stringify(chunk) });

/** A chunk with one delta (and a finish reason). */
export const delta = (d: Record<string, unknown>, finish: string | null = null) =>
  framed({ id: "chatcmpl-1", model: "m", choices: [{ index: 0, delta: d, finish_reason: finish }] });

/** The usage chunk (no choices) that ends a stream asked for usage. */
export const usage = (prompt: number, completion: number) =>
  framed({ id: "chatcmpl-1", model: "m", choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion } });

export interface BackendStream {
  reasoning: string[];
  text: string[];
  calls: Array<{ name: string; input: Record<string, unknown> }>;
  /** Where arguments are split, and how many chunks each relayed batch holds (the first). */
  cuts: number[];
  prompt: number;
  completion: number;
}

const piece = fc.string({ minLength: 1, maxLength: 6 });

export const backendStream: fc.Arbitrary<BackendStream> = fc.record({
  reasoning: fc.array(piece, { maxLength: 5 }),
  text: fc.array(piece, { maxLength: 8 }),
  calls: fc.array(
    fc.record({
      name: fc.constantFrom("get", "put", "find"),
      input: fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.integer(), fc.string())),
    }),
    { maxLength: 3 },
  ),
  cuts: fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 5 }),
  prompt: fc.integer({ min: 1, max: 100 }),
  completion: fc.integer({ min: 1, max: 1_000 }),
});

/** The stream's chunks in order: reasoning, text, each call (named first, then its argument fragments), the finish, usage. */
export function chunksOf(s: BackendStream): FramedChunk[] {
  const chunks: FramedChunk[] = [];
  for (const r of s.reasoning) chunks.push(delta({ reasoning_content: r }));
  for (const t of s.text) chunks.push(delta({ content: t }));
  s.calls.forEach((c, i) => {
    const args = JSON.stringify(c.input);
    chunks.push(delta({ tool_calls: [{ index: i, id: `call_${i}`, type: "function", function: { name: c.name, arguments: "" } }] }));
    for (let at = 0, k = 0; at < args.length; k++) {
      const n = s.cuts[k % s.cuts.length]!;
      chunks.push(delta({ tool_calls: [{ index: i, function: { arguments: args.slice(at, at + n) } }] }));
      at += n;
    }
  });
  chunks.push(delta({}, s.calls.length ? "tool_calls" : "stop"));
  chunks.push(usage(s.prompt, s.completion));
  return chunks;
}

/** The chunks handed to `send` in batches, as the relay hands them over. */
export function inBatches(chunks: FramedChunk[], size: number, send: (batch: FramedChunk[]) => string): string {
  let out = "";
  for (let i = 0; i < chunks.length; i += size) out += send(chunks.slice(i, i + size));
  return out;
}

/** A gathered chat completion with reasoning, text and one tool call, as the JSON sink builds it. */
export function chatCompletion(
  id: string,
  call: { id: string; name: string; arguments: string },
  usage: Record<string, unknown>,
): ChatCompletion {
  return {
    id,
    object: "chat.completion",
    created: 1,
    model: "llama",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: "Sure.",
          reasoning_content: "Why not.",
          tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }],
        },
        finish_reason: "tool_calls",
        logprobs: null,
      },
    ],
    usage,
  };
}
