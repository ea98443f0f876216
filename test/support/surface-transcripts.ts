// Reads the Anthropic Messages and OpenAI Responses streams into what a client of each API ends up
// with (text, reasoning, tool calls with their arguments, a clean end or an error event), in the
// same fields as SseTranscript, so the benchmark judges every surface by one rule.
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { StreamErrorEvent, ToolCallSeen } from "./sse-transcript";

/** What the benchmark reads of a stream, whatever its API. */
export interface StreamTranscript {
  text: string;
  reasoning: string;
  readonly toolCalls: ToolCallSeen[];
  /** The stream ended cleanly: `[DONE]`, `message_stop`, `response.completed` (or `.incomplete`). */
  done: boolean;
  error?: StreamErrorEvent;
  /** Events that carried answer text. */
  contentChunks: number;
  feed(text: string): void;
}

abstract class EventTranscript implements StreamTranscript {
  text = "";
  reasoning = "";
  readonly toolCalls: ToolCallSeen[] = [];
  done = false;
  error?: StreamErrorEvent;
  contentChunks = 0;
  private readonly parser = createParser({ onEvent: (e) => this.onEvent(e) });

  feed(text: string): void {
    this.parser.feed(text);
  }

  protected addText(delta: string): void {
    this.text += delta;
    this.contentChunks++;
  }

  protected abstract onEvent(e: EventSourceMessage): void;
}

/** Anthropic Messages: content blocks by index (text, thinking, tool_use with input_json_delta), message_stop, `event: error`. */
export class MessagesTranscript extends EventTranscript {
  /** Tool calls by their content block's index. */
  private readonly blocks = new Map<number, ToolCallSeen>();

  protected onEvent(e: EventSourceMessage): void {
    const data = JSON.parse(e.data);
    if (data.type === "error") {
      this.error = { ...data, error: { ...data.error, code: data.error?.code ?? data.error?.type } };
    } else if (data.type === "message_stop") this.done = true;
    else if (data.type === "content_block_start" && data.content_block?.type === "tool_use") {
      const call: ToolCallSeen = { id: data.content_block.id, name: data.content_block.name, arguments: "" };
      this.blocks.set(data.index, call);
      this.toolCalls.push(call);
    } else if (data.type === "content_block_delta") {
      const d = data.delta ?? {};
      if (d.type === "text_delta") this.addText(d.text);
      else if (d.type === "thinking_delta") this.reasoning += d.thinking;
      else if (d.type === "input_json_delta") {
        const call = this.blocks.get(data.index);
        if (call) call.arguments += d.partial_json;
      }
    }
  }
}

/** OpenAI Responses: output items (function_call with its argument deltas), text and reasoning deltas, response.completed, response.failed. */
export class ResponsesTranscript extends EventTranscript {
  /** Tool calls by their output item's index. */
  private readonly items = new Map<number, ToolCallSeen>();

  protected onEvent(e: EventSourceMessage): void {
    const data = JSON.parse(e.data);
    switch (data.type) {
      case "response.output_text.delta":
        this.addText(data.delta);
        break;
      case "response.reasoning_text.delta":
        this.reasoning += data.delta;
        break;
      case "response.output_item.added":
        if (data.item?.type === "function_call") {
          const call: ToolCallSeen = { id: data.item.call_id, name: data.item.name, arguments: "" };
          this.items.set(data.output_index, call);
          this.toolCalls.push(call);
        }
        break;
      case "response.function_call_arguments.delta": {
        const call = this.items.get(data.output_index);
        if (call) call.arguments += data.delta;
        break;
      }
      case "response.completed":
      case "response.incomplete":
        this.done = true;
        break;
      case "response.failed":
        this.error = { ...data, error: data.error ?? data.response?.error };
        break;
    }
  }
}
