// OpenAI's embeddings request as sluice accepts it: inputs and their bounds are checked so a client
// hears exactly what is over a limit; `encoding_format`, `dimensions` and unknown fields pass
// through to the backend.
import * as z from "zod";

/** Inputs per request at most (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;
/** Characters of one string input, and token ids of one token input, at most. */
export const MAX_EMBEDDING_INPUT_CHARS = 100_000;
export const MAX_EMBEDDING_INPUT_TOKENS = 8192;

const Input = z
  .union([z.string(), z.array(z.number().int().nonnegative()), z.array(z.string()), z.array(z.array(z.number().int().nonnegative()))], {
    error: "input must be a string, an array of strings, an array of token ids, or an array of those",
  })
  .superRefine((input, ctx) => {
    const many = Array.isArray(input) && input.length > 0 && typeof input[0] !== "number";
    const inputs: Array<string | number[]> = many ? (input as Array<string | number[]>) : [input as string | number[]];
    if (inputs.length === 0) ctx.addIssue({ code: "custom", message: "input must hold at least one input" });
    if (inputs.length > MAX_EMBEDDING_INPUTS)
      ctx.addIssue({ code: "custom", message: `input holds at most ${MAX_EMBEDDING_INPUTS} inputs (it has ${inputs.length})` });
    inputs.forEach((one, i) => {
      const path = many ? [i] : [];
      if (one.length === 0) ctx.addIssue({ code: "custom", path, message: "an input must not be empty" });
      else if (typeof one === "string" && one.length > MAX_EMBEDDING_INPUT_CHARS)
        ctx.addIssue({ code: "custom", path, message: `an input holds at most ${MAX_EMBEDDING_INPUT_CHARS} characters` });
      else if (typeof one !== "string" && one.length > MAX_EMBEDDING_INPUT_TOKENS)
        ctx.addIssue({ code: "custom", path, message: `a token input holds at most ${MAX_EMBEDDING_INPUT_TOKENS} tokens` });
    });
  });

export const EmbeddingsRequestSchema = z.looseObject({
  model: z.string().min(1, "model is required").max(256),
  input: Input,
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().positive().max(65_536).optional(),
  user: z.string().max(512).optional(),
});

export type EmbeddingsRequest = z.output<typeof EmbeddingsRequestSchema>;

/** sluice's estimate of the request's tokens (characters / 4; token inputs as they are), for rate limits. */
export function estimateEmbeddingTokens(req: EmbeddingsRequest): number {
  const one = (i: unknown) =>
    typeof i === "string" ? Math.ceil(i.length / 4) : Array.isArray(i) && typeof i[0] === "number" ? i.length : 0;
  const inputs = typeof req.input === "string" || typeof req.input[0] === "number" ? [req.input] : (req.input as unknown[]);
  return inputs.reduce<number>((n, i) => n + one(i), 0);
}
