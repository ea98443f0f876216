// The sim's embeddings: a deterministic vector per input (a pure function of the model, the input
// and the dimensions), in OpenAI's answer shape, as floats or base64 (little-endian float32, as the
// openai SDK asks by default and decodes). Tests rebuild the vectors with embeddingOf.
import { fnv1a, mulberry32 } from "./text";

export const DEFAULT_DIMENSIONS = 8;

/** The vector for one input (a string, or token ids). */
export function embeddingOf(model: string, input: string | number[], dimensions = DEFAULT_DIMENSIONS): number[] {
  const random = mulberry32(fnv1a(JSON.stringify([model, input, dimensions])));
  return Array.from({ length: dimensions }, () => Math.fround(random() * 2 - 1));
}

/** The answer to an embeddings request body: its status and JSON. */
export function embeddingsAnswer(body: Record<string, unknown>): { status: number; body: unknown } {
  const invalid = (message: string) => ({ status: 400, body: { error: { message, type: "invalid_request_error" } } });
  if (typeof body.model !== "string") return invalid("model is required");
  const input = body.input;
  const inputs: Array<string | number[]> =
    typeof input === "string"
      ? [input]
      : Array.isArray(input) && input.every((n) => typeof n === "number")
        ? [input as number[]]
        : Array.isArray(input)
          ? (input as Array<string | number[]>)
          : [];
  if (inputs.length === 0) return invalid("input is required");
  const dimensions = typeof body.dimensions === "number" ? body.dimensions : DEFAULT_DIMENSIONS;
  const base64 = body.encoding_format === "base64";
  const data = inputs.map((one, index) => {
    const vector = embeddingOf(body.model as string, one, dimensions);
    const embedding = base64 ? toBase64(new Uint8Array(new Float32Array(vector).buffer)) : vector;
    return { object: "embedding", index, embedding };
  });
  const tokens = inputs.reduce((n, one) => n + (typeof one === "string" ? Math.ceil(one.length / 4) : one.length), 0);
  return { status: 200, body: { object: "list", data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } } };
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}
