// Chat completion chunks as Anthropic's stream, in its event order: message_start, then per block
// content_block_start, its deltas (thinking_delta, text_delta, input_json_delta) and
// content_block_stop, then message_delta (stop reason, the backend's token counts) and
// message_stop. A broken stream ends with Anthropic's `error` event after what was sent, never
// with message_stop, so the SDK raises rather than take a truncated answer for a whole one.
// Stateful per response: the blocks open, the stop reason and usage seen so far.
import { describeChunk, type ToolCallDelta, type UpstreamChunk } from "../../stream/chunk";
import type { ClientChunk } from "../../stream/relay";
import type { Failure, FramedChunk } from "../../stream/sink";
import type { SseFraming } from "../../stream/surface";
import { anthropicError } from "./errors";
import { type AnthropicUsage, messageId, stopReasonOf, usageOf } from "./message";

const event = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

export class MessagesFraming implements SseFraming {
  private started = false;
  /** Index of the next content block. */
  private nextIndex = 0;
  /** The open thinking or text block. */
  private open: { kind: "thinking" | "text"; index: number } | undefined;
  /** Tool calls' blocks by the chat tool call index; open until the message ends. */
  private readonly tools = new Map<number, { index: number; closed: boolean }>();
  private finishReason: string | null = null;
  private matchedStop: unknown;
  private usage: AnthropicUsage | undefined;
  private outputTokens = 0;

  constructor(
    private readonly stopSequences: readonly string[],
    /** sluice's estimate of the prompt's tokens: message_start's input count until the backend's arrives. */
    private readonly promptEstimate: number,
  ) {}

  chunks(chunks: FramedChunk[]): string {
    let out = "";
    for (const { chunk } of chunks) out += this.chunk(chunk);
    return out;
  }

  done(): string {
    let out = this.start({}) + this.closeOpen() + this.closeTools();
    const usage = this.usage ?? { input_tokens: this.promptEstimate, output_tokens: this.outputTokens };
    out += event("message_delta", { delta: stopReasonOf(this.finishReason, this.matchedStop, this.stopSequences), usage });
    return out + event("message_stop", {});
  }

  error(failure: Failure, completionTokens: number): string {
    const data = anthropicError(failure.status, failure.code, failure.message);
    return `event: error\ndata: ${JSON.stringify({ ...data, partial: completionTokens > 0, completion_tokens: completionTokens, ...(failure.cut ? { cut: failure.cut } : {}) })}\n\n`;
  }

  private chunk(raw: ClientChunk): string {
    const c = describeChunk(raw as UpstreamChunk["raw"]);
    let out = this.start(raw);
    const usage = usageOf((raw.usage as Record<string, unknown> | null | undefined) ?? undefined);
    if (usage) this.usage = usage;
    if (c.reasoning) {
      out += this.into("thinking");
      out += event("content_block_delta", { index: this.open!.index, delta: { type: "thinking_delta", thinking: c.reasoning } });
      this.outputTokens++;
    }
    if (c.content) {
      out += this.into("text");
      out += event("content_block_delta", { index: this.open!.index, delta: { type: "text_delta", text: c.content } });
      this.outputTokens++;
    }
    if (c.toolCalls) {
      for (const call of c.toolCalls) out += this.toolFragment(call);
      this.outputTokens++;
    }
    if (c.finishReason) this.finishReason = c.finishReason;
    const matched = c.raw.choices?.[0]?.stop_reason;
    if (matched !== undefined && matched !== null) this.matchedStop = matched;
    return out;
  }

  /** message_start, before the first event (from the first chunk's id and model). */
  private start(c: ClientChunk): string {
    if (this.started) return "";
    this.started = true;
    const message = {
      id: messageId(typeof c.id === "string" ? c.id : crypto.randomUUID()),
      type: "message",
      role: "assistant",
      model: typeof c.model === "string" ? c.model : "",
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.promptEstimate, output_tokens: 0 },
    };
    return event("message_start", { message });
  }

  /** Makes a thinking or text block the open one: the open block, and any tool blocks, close first. */
  private into(kind: "thinking" | "text"): string {
    if (this.open?.kind === kind) return "";
    const out = this.closeOpen() + this.closeTools();
    this.open = { kind, index: this.nextIndex++ };
    const block = kind === "text" ? { type: "text", text: "" } : { type: "thinking", thinking: "", signature: "" };
    return out + event("content_block_start", { index: this.open.index, content_block: block });
  }

  private toolFragment(call: ToolCallDelta): string {
    const key = Number.isInteger(call.index) ? (call.index as number) : 0;
    let out = "";
    let tool = this.tools.get(key);
    if (!tool) {
      out += this.closeOpen();
      tool = { index: this.nextIndex++, closed: false };
      this.tools.set(key, tool);
      const block = { type: "tool_use", id: call.id ?? `toolu_${key}`, name: call.function?.name ?? "", input: {} };
      out += event("content_block_start", { index: tool.index, content_block: block });
    }
    const args = call.function?.arguments;
    if (typeof args === "string" && args !== "" && !tool.closed)
      out += event("content_block_delta", { index: tool.index, delta: { type: "input_json_delta", partial_json: args } });
    return out;
  }

  private closeOpen(): string {
    if (!this.open) return "";
    const out = event("content_block_stop", { index: this.open.index });
    this.open = undefined;
    return out;
  }

  private closeTools(): string {
    let out = "";
    for (const tool of this.tools.values()) {
      if (tool.closed) continue;
      tool.closed = true;
      out += event("content_block_stop", { index: tool.index });
    }
    return out;
  }
}
