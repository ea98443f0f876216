// Turns backend chunks into the one stream a client sees: a stable completion id across attempts,
// no second "role" delta after a resume, and a running record of what was delivered.
import type { UpstreamChunk } from "./chunk";
import { OutputShape } from "./output-cut";

export type ClientChunk = Record<string, unknown>;

export class StreamProgress {
  /** Text delivered so far. */
  text = "";
  /** Chunks that carried output (content, tool calls, finish): the completion tokens we relayed. */
  tokens = 0;
  /** The answer's token usage, as the last chunk that carried one reported it (for the whole answer). */
  usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
  /** What the delivered output holds (text, reasoning, tool calls): where a break would cut it. */
  shape = new OutputShape();
  /** Tokens delivered before the attempt in progress, when it continues them (its prompt holds them). */
  private continuedFrom = 0;
  private roleSent = false;

  constructor(
    readonly completionId: string,
    readonly created: number,
    /**
     * The client asked for usage (a non-streaming answer, or stream_options.include_usage). Backends
     * are always asked for it, for the spend ledger; a client that did not ask never sees it.
     */
    readonly relayUsage = true,
  ) {}

  /**
   * The client-facing form of `chunk`, or null when nothing is left to send. The parsed chunk is
   * ours alone, so it is rewritten in place: no copy per token on the hot path.
   */
  frame(chunk: UpstreamChunk): ClientChunk | null {
    const raw = chunk.raw;
    if (Array.isArray(raw.choices)) {
      for (const choice of raw.choices) {
        if (!choice.delta || !("role" in choice.delta)) continue;
        // One role delta per stream: a resumed backend's own is dropped.
        if (this.roleSent) delete choice.delta.role;
        this.roleSent = true;
      }
    }
    if (raw.usage != null) {
      if (this.continuedFrom > 0) raw.usage = wholeUsage(raw.usage, this.continuedFrom);
      this.usage = usageCounts(raw.usage);
      if (!this.relayUsage) delete raw.usage;
    }
    const meaningful =
      chunk.isToken ||
      raw.usage != null ||
      (Array.isArray(raw.choices) && raw.choices.some((c) => hasValue(c.delta) || c.logprobs != null));
    if (!meaningful) return null;
    this.text += chunk.content;
    if (chunk.isToken) this.tokens++;
    this.shape.note(chunk);
    raw.id = this.completionId;
    raw.created = this.created;
    return raw;
  }

  /** An attempt starts: a continuation carries on after the tokens delivered so far. */
  startAttempt(continuation: boolean): void {
    this.continuedFrom = continuation ? this.tokens : 0;
  }

  /** Progress of a stored, unfinished answer that this request carries on (same completion id). */
  static resuming(fallbackId: string, created: number, chunks: string[], text: string, tokens: number, relayUsage = true): StreamProgress {
    const first = chunks[0] ? (JSON.parse(chunks[0]) as { id?: string; created?: number }) : {};
    const p = new StreamProgress(first.id ?? fallbackId, first.created ?? created, relayUsage);
    p.text = text;
    p.tokens = tokens;
    p.roleSent = chunks.length > 0;
    p.shape = OutputShape.of(chunks);
    return p;
  }

  /** Forgets what was relayed, when a non-streaming request starts over on another backend. */
  restart(): void {
    this.text = "";
    this.tokens = 0;
    this.roleSent = false;
    this.shape = new OutputShape();
    this.usage = undefined;
  }
}

/** Whether a chat request's client gets usage: every non-streaming answer has it; a stream only on request. */
export function clientWantsUsage(body: Record<string, unknown>): boolean {
  if (body.stream !== true) return true;
  const options = body.stream_options as { include_usage?: unknown } | null | undefined;
  return options?.include_usage === true;
}

/** The token counts of a backend's usage object, those that are numbers. */
function usageCounts(usage: unknown): StreamProgress["usage"] {
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  return {
    prompt_tokens: typeof u.prompt_tokens === "number" ? u.prompt_tokens : undefined,
    completion_tokens: typeof u.completion_tokens === "number" ? u.completion_tokens : undefined,
  };
}

function hasValue(delta: Record<string, unknown> | undefined): boolean {
  return Object.values(delta ?? {}).some((v) => v !== undefined && v !== null && v !== "");
}

/**
 * A continuation's usage, as the whole answer's: its prompt held the `delivered` tokens sent before
 * it, which were completion tokens of the answer, not prompt tokens the client sent.
 */
function wholeUsage(usage: unknown, delivered: number): unknown {
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  if (typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return usage;
  const prompt = Math.max(0, u.prompt_tokens - delivered);
  const completion = u.completion_tokens + delivered;
  return { ...u, prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
