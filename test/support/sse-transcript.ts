// Reads sluice's SSE output for tests and the benchmark: chunk events, comments, the `error` event
// and `[DONE]`, accumulated as they arrive. Feed it text (Node streams) or hand it a Response.
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** sluice's `event: error` (partial is set); other gateways send `{"error": ...}` as a data event. */
export interface StreamErrorEvent {
  error: { message: string; type: string; code: string };
  partial?: boolean;
  completion_tokens?: number;
  /** Where a partial answer was cut: "text", "reasoning", "tool_call", "after_tool_call". */
  cut?: string;
}

export interface ToolCallSeen {
  id?: string;
  name: string;
  arguments: string;
}

export class SseTranscript {
  readonly events: EventSourceMessage[] = [];
  readonly comments: string[] = [];
  /** Concatenated delta content of the chunk events. */
  text = "";
  /** Concatenated `reasoning_content` deltas. */
  reasoning = "";
  /** Tool calls as a streaming client accumulates them, by index. */
  readonly toolCalls: ToolCallSeen[] = [];
  /** The last `usage` seen. */
  usage: Record<string, number> | undefined;
  /** Chunk events seen (not counting `[DONE]` or errors). */
  chunks = 0;
  /** Chunk events that carried delta content. */
  contentChunks = 0;
  /** The `id:` of the last chunk event, 0 before the first. */
  lastId = 0;
  /** Data events that were not JSON (sluice never sends one; some gateways do). */
  malformed = 0;
  done = false;
  finishReason: string | null = null;
  error?: StreamErrorEvent;
  private readonly parser = createParser({
    onEvent: (e) => this.onEvent(e),
    onComment: (c) => this.comments.push(c.trim()),
  });

  feed(text: string): void {
    this.parser.feed(text);
  }

  private onEvent(e: EventSourceMessage): void {
    this.events.push(e);
    if (e.event === "error") {
      this.error = JSON.parse(e.data);
      return;
    }
    if (e.data === "[DONE]") {
      this.done = true;
      return;
    }
    let chunk: any;
    try {
      chunk = JSON.parse(e.data);
    } catch {
      this.malformed++;
      return;
    }
    if (chunk.error && !chunk.choices) {
      this.error = chunk;
      return;
    }
    this.chunks++;
    if (e.id) this.lastId = Number(e.id);
    const delta = chunk.choices?.[0]?.delta ?? {};
    if (delta.content) {
      this.text += delta.content;
      this.contentChunks++;
    }
    if (typeof delta.reasoning_content === "string") this.reasoning += delta.reasoning_content;
    for (const call of delta.tool_calls ?? []) {
      const seen = (this.toolCalls[call.index ?? 0] ??= { name: "", arguments: "" });
      if (call.id) seen.id = call.id;
      seen.name += call.function?.name ?? "";
      seen.arguments += call.function?.arguments ?? "";
    }
    if (chunk.usage) this.usage = chunk.usage;
    this.finishReason = chunk.choices?.[0]?.finish_reason ?? this.finishReason;
  }
}

/**
 * Reads `response`'s body into `transcript`. With `until`, stops reading (and cancels the body) as
 * soon as it returns true: a client that drops the connection mid-stream. A broken body rejects;
 * pass your own transcript to keep what arrived before the break.
 */
export async function readSse(
  response: Response,
  until?: (t: SseTranscript) => boolean,
  transcript = new SseTranscript(),
): Promise<SseTranscript> {
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  for (;;) {
    if (until?.(transcript)) {
      await reader.cancel();
      break;
    }
    const { done, value } = await reader.read();
    if (done) break;
    transcript.feed(decoder.decode(value, { stream: true }));
  }
  return transcript;
}
