// The OpenAI Chat Completions request as sluice accepts it. Known fields are checked so a client
// hears exactly what is wrong; unknown fields pass through to the backend untouched.
import * as z from "zod";

const ContentPart = z.looseObject({ type: z.string().min(1) });

const Message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(ContentPart), z.null()]).optional(),
  name: z.string().max(256).optional(),
});

export const ChatRequestSchema = z.looseObject({
  model: z.string().min(1, "model is required").max(256),
  messages: z.array(Message).min(1, "messages must hold at least one message").max(10_000),
  stream: z.boolean().optional(),
  max_tokens: z.number().int().positive().max(1_000_000).optional(),
  max_completion_tokens: z.number().int().positive().max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  seed: z.number().int().optional(),
  // One choice per request: resume and replay splice a single text stream.
  n: z.literal(1, "only n = 1 is supported").optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
});

export type ChatRequest = z.output<typeof ChatRequestSchema>;
export type ChatMessage = ChatRequest["messages"][number];

/** Output tokens the client asked for, whichever of the two OpenAI fields it used. */
export function requestedMaxTokens(req: ChatRequest): number | undefined {
  return req.max_completion_tokens ?? req.max_tokens;
}

/**
 * A cheap upper-bound estimate of prompt tokens (about 4 bytes per token of English text, plus
 * per-message overhead). Used only to steer prompts away from backends whose context is too small.
 */
export function estimatePromptTokens(req: ChatRequest): number {
  let chars = 0;
  for (const m of req.messages) {
    chars += 16;
    if (typeof m.content === "string") chars += m.content.length;
    else if (Array.isArray(m.content)) chars += JSON.stringify(m.content).length;
  }
  return Math.ceil(chars / 4);
}
