// Turns backend chunks into the one stream a client sees: a stable completion id across attempts,
// no second "role" delta after a resume, and a running record of what was delivered.
import type { UpstreamChunk } from "./chunk";

export type ClientChunk = Record<string, unknown>;

export class StreamProgress {
  /** Text delivered so far. */
  text = "";
  /** Chunks that carried output (content, tool calls, finish): the completion tokens we relayed. */
  tokens = 0;
  private roleSent = false;

  constructor(
    readonly completionId: string,
    readonly created: number,
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
    const meaningful =
      chunk.isToken ||
      raw.usage != null ||
      (Array.isArray(raw.choices) && raw.choices.some((c) => hasValue(c.delta) || c.logprobs != null));
    if (!meaningful) return null;
    this.text += chunk.content;
    if (chunk.isToken) this.tokens++;
    raw.id = this.completionId;
    raw.created = this.created;
    return raw;
  }

  /** Progress of a stored, unfinished answer that this request carries on (same completion id). */
  static resuming(fallbackId: string, created: number, chunks: string[], text: string, tokens: number): StreamProgress {
    const first = chunks[0] ? (JSON.parse(chunks[0]) as { id?: string; created?: number }) : {};
    const p = new StreamProgress(first.id ?? fallbackId, first.created ?? created);
    p.text = text;
    p.tokens = tokens;
    p.roleSent = chunks.length > 0;
    return p;
  }

  /** Forgets what was relayed, when a non-streaming request starts over on another backend. */
  restart(): void {
    this.text = "";
    this.tokens = 0;
    this.roleSent = false;
  }
}

function hasValue(delta: Record<string, unknown> | undefined): boolean {
  return Object.values(delta ?? {}).some((v) => v !== undefined && v !== null && v !== "");
}
