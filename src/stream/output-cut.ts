// Where a stream stands in its output, so a break is resumed only where that is provably exact.
// A continuation (vLLM's continue_final_message) hands the backend the text delivered so far as an
// open assistant message, and the model goes on writing that *content*. Reasoning and tool calls
// are not content: the backend's reasoning and tool parsers cut them out of the raw generation,
// and a client cannot hand that raw state back. Asked to continue, a model restarts its thinking or
// writes its tool calls again, and a splice would corrupt them. So:
//   text (content only, or content after finished reasoning)  -> continue by continuation
//   inside reasoning (no content yet)                          -> regenerate and check (regeneration.ts),
//   inside a tool call's arguments (they do not parse yet)        else end with the cut named:
//   after complete tool calls, before the finish                  "reasoning", "tool_call", "after_tool_call"
import { describeChunk, type ToolCallDelta, type UpstreamChunk } from "./chunk";

export type OutputCut = "none" | "text" | "reasoning" | "tool_call" | "after_tool_call";

/** Tool calls a stream may carry: one beyond this many is counted but not tracked. */
const MAX_TRACKED_TOOL_CALLS = 128;

/** What a regeneration must repeat before anything new goes out (see Regeneration). */
export interface DeliveredOutput {
  reasoning: string;
  /** In index order, all complete but maybe the last. */
  toolCalls: Array<{ name: string; arguments: string }>;
}

export class OutputShape {
  /** The reasoning delivered (`reasoning_content`), kept to check a regeneration against. */
  private reasoning = "";
  private content = false;
  /** Each tool call so far (its name and arguments), by its index. */
  private readonly toolCalls = new Map<number, { name: string; arguments: string }>();

  /** Notes what a relayed chunk carried. */
  note(chunk: Pick<UpstreamChunk, "content" | "reasoning" | "toolCalls">): void {
    if (chunk.reasoning) this.reasoning += chunk.reasoning;
    if (chunk.content) this.content = true;
    for (const call of chunk.toolCalls ?? []) this.noteToolCall(call);
  }

  /** What a break right now would cut. */
  cut(): OutputCut {
    if (this.toolCalls.size > 0) {
      for (const call of this.toolCalls.values()) if (!isCompleteJson(call.arguments)) return "tool_call";
      return "after_tool_call";
    }
    if (this.content) return "text";
    return this.reasoning !== "" ? "reasoning" : "none";
  }

  /** Whether a continuation can carry on exactly from here. */
  continuable(): boolean {
    const cut = this.cut();
    return cut === "text" || cut === "none";
  }

  /**
   * What the client has when it is reasoning and tool calls, no text, every call complete but maybe
   * the last: a regeneration can be checked against it (see Regeneration). Undefined otherwise.
   */
  regenerable(): DeliveredOutput | undefined {
    if (this.content || (this.reasoning === "" && this.toolCalls.size === 0)) return undefined;
    const indexes = [...this.toolCalls.keys()].sort((a, b) => a - b);
    if (indexes.some((index, i) => index !== i)) return undefined;
    const toolCalls = indexes.map((i) => this.toolCalls.get(i)!);
    if (!toolCalls.slice(0, -1).every((c) => isCompleteJson(c.arguments))) return undefined;
    return { reasoning: this.reasoning, toolCalls };
  }

  /** The shape of stored chunks (a journal entry carried on by a later request). */
  static of(chunks: string[]): OutputShape {
    const shape = new OutputShape();
    for (const json of chunks) shape.note(describeChunk(JSON.parse(json)));
    return shape;
  }

  private noteToolCall(call: ToolCallDelta): void {
    const index = Number.isInteger(call.index) ? (call.index as number) : 0;
    let tracked = this.toolCalls.get(index);
    if (!tracked) {
      if (this.toolCalls.size >= MAX_TRACKED_TOOL_CALLS) return;
      this.toolCalls.set(index, (tracked = { name: "", arguments: "" }));
    }
    tracked.name += call.function?.name ?? "";
    tracked.arguments += call.function?.arguments ?? "";
  }
}

/** Whether a tool call's arguments are whole: they parse as JSON (an object ends with its brace). */
export function isCompleteJson(text: string): boolean {
  if (text.trim() === "") return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
