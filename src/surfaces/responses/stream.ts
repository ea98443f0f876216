// Chat completion chunks as the Responses API's stream: response.created and .in_progress, then per
// output item its added event, its content or arguments as deltas and their done events, the item's
// done, and response.completed (or .incomplete, cut at max_output_tokens) with the whole response.
// Every event has its sequence_number. A broken stream ends with response.failed after what was
// sent, never response.completed; its data carries the error at the top too, so the openai SDK
// raises an APIError rather than hand back a failed response as if it were an answer. A cancelled
// background response ends so too, its response's status "cancelled" (the API has no event for it).
import { describeChunk, type ToolCallDelta, type UpstreamChunk } from "../../stream/chunk";
import type { ClientChunk } from "../../stream/relay";
import type { Failure, FramedChunk } from "../../stream/sink";
import type { SseFraming } from "../../stream/surface";
import { errorType } from "../../stream/errors";
import { CANCELLED } from "../../gate/core/rejections";
import { type OutputItem, callItem, inState, itemId, messageItem, reasoningItem, usageOf } from "./response";

/** An output item being streamed: its index, and what it holds so far. */
interface Open {
  index: number;
  item: OutputItem;
  text: string;
  done: boolean;
}

export class ResponsesFraming implements SseFraming {
  private sequence = 0;
  private started = false;
  private readonly output: Open[] = [];
  private open: Open | undefined;
  private readonly calls = new Map<number, Open>();
  private finishReason: string | null = null;
  private usage: Record<string, unknown> | undefined;

  constructor(
    /** The response before it has output (responseShell). */
    private readonly shell: Record<string, unknown> & { id: string },
    /** Told of the response as it ended (null: it failed): the surface stores a whole one. */
    private readonly onEnd: (response: Record<string, unknown> | null) => void = () => {},
    /** Events up to this sequence number are left out (a stream re-attached with starting_after). */
    private readonly after = -1,
  ) {}

  chunks(chunks: FramedChunk[]): string {
    let out = this.start();
    for (const { chunk } of chunks) out += this.chunk(chunk);
    return out;
  }

  done(): string {
    let out = this.start() + this.closeAll();
    const truncated = this.finishReason === "length";
    const response = inState(this.shell, truncated ? "incomplete" : "completed", this.items(), { usage: this.usage, truncated });
    out += this.event(truncated ? "response.incomplete" : "response.completed", { response });
    this.onEnd(response);
    return out;
  }

  error(failure: Failure, completionTokens: number): string {
    const error = { code: failure.code, message: failure.message };
    const status = failure.code === CANCELLED.code ? "cancelled" : "failed";
    const response = inState(this.shell, status, this.items(), { usage: this.usage, error });
    this.onEnd(null);
    const partial = { partial: completionTokens > 0, completion_tokens: completionTokens, ...(failure.cut ? { cut: failure.cut } : {}) };
    return this.start() + this.event("response.failed", { response, error: { ...error, type: errorType(failure.status) }, ...partial });
  }

  private event(type: string, data: Record<string, unknown>): string {
    const sequence = this.sequence++;
    if (sequence <= this.after) return "";
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence, ...data })}\n\n`;
  }

  private start(): string {
    if (this.started) return "";
    this.started = true;
    const response = inState(this.shell, "in_progress", []);
    return this.event("response.created", { response }) + this.event("response.in_progress", { response });
  }

  /** The output items as they stand (the open ones as they would be if they ended now). */
  private items(): OutputItem[] {
    return this.output.map((o) => this.finished(o));
  }

  private chunk(raw: ClientChunk): string {
    const c = describeChunk(raw as UpstreamChunk["raw"]);
    let out = "";
    const usage = usageOf((raw.usage as Record<string, unknown> | null | undefined) ?? undefined);
    if (usage) this.usage = usage;
    if (c.reasoning) {
      out += this.into("reasoning");
      this.open!.text += c.reasoning;
      out += this.event("response.reasoning_text.delta", { ...this.at(this.open!), content_index: 0, delta: c.reasoning });
    }
    if (c.content) {
      out += this.into("message");
      this.open!.text += c.content;
      out += this.event("response.output_text.delta", { ...this.at(this.open!), content_index: 0, delta: c.content, logprobs: [] });
    }
    for (const call of c.toolCalls ?? []) out += this.toolFragment(call);
    if (c.finishReason) this.finishReason = c.finishReason;
    return out;
  }

  private at(o: Open): { item_id: unknown; output_index: number } {
    return { item_id: o.item.id, output_index: o.index };
  }

  /** Makes a reasoning or message item the open one: what is open closes first. */
  private into(kind: "reasoning" | "message"): string {
    if (this.open?.item.type === kind) return "";
    let out = this.closeAll();
    const id = itemId(this.shell.id, kind, this.output.length);
    const item = kind === "message" ? messageItem(id, "", "in_progress") : { ...reasoningItem(id, ""), content: [] };
    const o: Open = { index: this.output.length, item, text: "", done: false };
    this.output.push(o);
    this.open = o;
    out += this.event("response.output_item.added", { output_index: o.index, item });
    const part = kind === "message" ? { type: "output_text", text: "", annotations: [] } : { type: "reasoning_text", text: "" };
    return out + this.event("response.content_part.added", { ...this.at(o), content_index: 0, part });
  }

  private toolFragment(call: ToolCallDelta): string {
    const key = Number.isInteger(call.index) ? (call.index as number) : 0;
    let out = "";
    let o = this.calls.get(key);
    if (!o) {
      out += this.closeOpen();
      const id = itemId(this.shell.id, "function_call", this.output.length);
      const item = callItem(id, call.id ?? id, call.function?.name ?? "", "", "in_progress");
      o = { index: this.output.length, item, text: "", done: false };
      this.output.push(o);
      this.calls.set(key, o);
      out += this.event("response.output_item.added", { output_index: o.index, item });
    }
    const args = call.function?.arguments;
    if (typeof args === "string" && args !== "" && !o.done) {
      o.text += args;
      out += this.event("response.function_call_arguments.delta", { ...this.at(o), delta: args });
    }
    return out;
  }

  /** An item as it is once done: its text in place, status completed. */
  private finished(o: Open): OutputItem {
    const { item } = o;
    if (item.type === "message") return messageItem(String(item.id), o.text, "completed");
    if (item.type === "reasoning") return reasoningItem(String(item.id), o.text);
    return callItem(String(item.id), String(item.call_id), String(item.name), o.text, "completed");
  }

  private close(o: Open): string {
    if (o.done) return "";
    o.done = true;
    const item = this.finished(o);
    let out = "";
    if (item.type === "message") {
      out += this.event("response.output_text.done", { ...this.at(o), content_index: 0, text: o.text, logprobs: [] });
      out += this.event("response.content_part.done", {
        ...this.at(o),
        content_index: 0,
        part: { type: "output_text", text: o.text, annotations: [] },
      });
    } else if (item.type === "reasoning") {
      out += this.event("response.reasoning_text.done", { ...this.at(o), content_index: 0, text: o.text });
      out += this.event("response.content_part.done", { ...this.at(o), content_index: 0, part: { type: "reasoning_text", text: o.text } });
    } else out += this.event("response.function_call_arguments.done", { ...this.at(o), arguments: o.text });
    return out + this.event("response.output_item.done", { output_index: o.index, item });
  }

  private closeOpen(): string {
    const out = this.open ? this.close(this.open) : "";
    this.open = undefined;
    return out;
  }

  private closeAll(): string {
    let out = this.closeOpen();
    for (const o of this.calls.values()) out += this.close(o);
    return out;
  }
}

/**
 * The stream of a response that ended when its events are no longer kept: response.created, then
 * its end with the whole response (response.completed, .incomplete, or .failed with its error).
 */
export function endedStream(response: Record<string, unknown>): string {
  const event = (sequence: number, type: string, data: Record<string, unknown>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence, ...data })}\n\n`;
  const created = event(0, "response.created", { response: inState(response, "in_progress", []) });
  if (response.status === "completed" || response.status === "incomplete")
    return created + event(1, `response.${response.status}`, { response });
  const error =
    response.status === "cancelled"
      ? { code: CANCELLED.code, message: CANCELLED.message, type: errorType(CANCELLED.status) }
      : { ...(response.error as object), type: errorType(502) };
  return created + event(1, "response.failed", { response, error });
}
