// max_tokens, enforced on the relay: a backend that ignores it would otherwise stream (and charge)
// until the total timeout. sluice counts output chunks, which backends may pack or split
// differently from their tokenizer, hence the margin before the stream is cut.

/** Output chunks relayed before sluice ends the stream itself, or undefined when the client set no limit. */
export function completionChunkCap(body: Record<string, unknown>): number | undefined {
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (typeof max !== "number" || !Number.isFinite(max) || max <= 0) return undefined;
  return max + Math.max(16, Math.ceil(max / 10));
}
