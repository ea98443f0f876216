// The non-streaming side of a ClientSink: gathers the relayed chunks into one
// `chat.completion` object, answered only when the generation is complete.
import type { ClientChunk } from "./relay";
import type { ClientSink, Failure, FramedChunk, HeaderSource } from "./sink";
import { CHAT_SURFACE, type ChatCompletion, type Surface } from "./surface";

interface ToolCallDraft {
  id?: string;
  type?: string;
  function: { name: string; arguments: string };
}

export class JsonSink implements ClientSink {
  readonly committed = false;
  readonly response: Promise<Response>;
  status: number | undefined;
  private resolveResponse!: (r: Response) => void;
  private readonly gone = new AbortController();
  private content = "";
  private reasoning = "";
  /** Content tokens' logprobs, when the backend sent them (the request asked for logprobs). */
  private logprobs: unknown[] | null = null;
  /** By the delta's `index`: a Map, so a stray index of 1e9 costs one entry, not a sparse array. */
  private toolCalls = new Map<number, ToolCallDraft>();
  private finishReason: string | null = null;
  private usage: unknown = undefined;
  private model = "";
  private id = "";
  private created = 0;

  constructor(
    private readonly headers: HeaderSource,
    private readonly surface: Surface = CHAT_SURFACE,
  ) {
    this.response = new Promise((resolve) => (this.resolveResponse = resolve));
  }

  get clientGone(): AbortSignal {
    return this.gone.signal;
  }

  setPhase(): void {}

  async send(chunks: FramedChunk[]): Promise<void> {
    for (const { chunk } of chunks) this.add(chunk);
  }

  private add(chunk: ClientChunk): void {
    this.id = String(chunk.id ?? this.id);
    this.created = Number(chunk.created ?? this.created);
    if (typeof chunk.model === "string") this.model = chunk.model;
    if (chunk.usage) this.usage = chunk.usage;
    const choice = (
      chunk.choices as
        | Array<{ delta?: Record<string, unknown>; finish_reason?: string | null; logprobs?: { content?: unknown } }>
        | undefined
    )?.[0];
    if (!choice) return;
    const delta = choice.delta ?? {};
    if (typeof delta.content === "string") this.content += delta.content;
    if (typeof delta.reasoning_content === "string") this.reasoning += delta.reasoning_content;
    if (Array.isArray(choice.logprobs?.content)) (this.logprobs ??= []).push(...choice.logprobs.content);
    if (Array.isArray(delta.tool_calls)) {
      for (const call of delta.tool_calls as Array<{
        index?: number;
        id?: string;
        type?: string;
        function?: { name?: string; arguments?: string };
      }>) {
        const i = Number.isInteger(call.index) ? (call.index as number) : 0;
        let draft = this.toolCalls.get(i);
        if (!draft) this.toolCalls.set(i, (draft = { function: { name: "", arguments: "" } }));
        if (call.id) draft.id = call.id;
        if (call.type) draft.type = call.type;
        if (call.function?.name) draft.function.name += call.function.name;
        if (call.function?.arguments) draft.function.arguments += call.function.arguments;
      }
    }
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
  }

  async comment(): Promise<void> {}

  async finish(): Promise<void> {
    const calls = [...this.toolCalls].sort(([a], [b]) => a - b).map(([, t]) => ({ type: "function", ...t }));
    const message: Record<string, unknown> = { role: "assistant", content: calls.length && !this.content ? null : this.content };
    if (this.reasoning) message.reasoning_content = this.reasoning;
    if (calls.length) message.tool_calls = calls;
    const completion = {
      id: this.id,
      object: "chat.completion",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, message, finish_reason: this.finishReason ?? "stop", logprobs: this.logprobs && { content: this.logprobs } }],
      ...(this.usage ? { usage: this.usage } : {}),
    } as ChatCompletion;
    const body = this.surface.answer(completion);
    await this.surface.ended?.();
    this.answer(new Response(JSON.stringify(body), { status: 200, headers: { ...this.headers(), "content-type": "application/json" } }));
  }

  async fail(failure: Failure): Promise<void> {
    const headers: Record<string, string> = { ...this.headers() };
    if (failure.retryAfterSec !== undefined) headers["retry-after"] = String(failure.retryAfterSec);
    this.answer(this.surface.errorResponse(failure, headers));
  }

  private answer(response: Response): void {
    this.status = response.status;
    this.resolveResponse(response);
  }

  skipTo(): void {}

  reset(): void {
    this.content = "";
    this.reasoning = "";
    this.logprobs = null;
    this.toolCalls.clear();
    this.finishReason = null;
    this.usage = undefined;
  }
}
