// One upstream call: POST {backend}/chat/completions with stream: true, then its SSE events, read
// under the timeout that applies at that point (connect, first token, then idle; always the
// request's total deadline). Any timeout aborts the upstream fetch, which cancels the generation.
import { traceHeaders, type TraceContext } from "../trace-context";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { AttemptGrant, AttemptUsage, Timeouts } from "../gate/core/protocol";
import { AttemptError, upstreamHttpError } from "./upstream-error";
import { describeChunk, type UpstreamChunk } from "../stream/chunk";
import { StreamPace, type ReadSizePolicy } from "./read-size";

export type UpstreamEvent = { kind: "chunk"; chunk: UpstreamChunk } | { kind: "done" };

export interface AttemptRequest {
  grant: AttemptGrant;
  /** The client's request body (validated), sent on with the backend's model name. */
  body: Record<string, unknown>;
  /** Text already delivered, for a continuation. */
  partialText: string;
  /** Content chunks already delivered, to shrink max_tokens on a continuation. */
  deliveredTokens: number;
  timeouts: Timeouts;
  /** Absolute time (ms) by which the whole request must be done. */
  deadline: number;
  /** Aborts the attempt when the client goes away. */
  signal: AbortSignal;
  /** How much each read waits for: the isolate's shared policy (`isolateReadSizes`). */
  readSizes: ReadSizePolicy;
  /** The request's trace and this attempt's span in it (the backend's parent span). */
  trace?: { context: TraceContext; spanId: string };
}

/**
 * Largest upstream SSE event (or run of bytes without one), in bytes: a real chunk is a few KB. A
 * backend that sends a line without end fails the attempt here instead of growing the isolate's
 * memory (128 MB on Workers, shared with other tenants' requests). Checked per read, so the bound is
 * this plus one read (READ_BUFFER_BYTES).
 */
export const MAX_UPSTREAM_EVENT_BYTES = 1024 * 1024;
const READ_BUFFER_BYTES = 16 * 1024;

/** Whether SSE text ends exactly at the end of an event (a blank line). */
export function endsAtEventBoundary(text: string): boolean {
  return text.endsWith("\n\n") || text.endsWith("\r\r") || text.endsWith("\r\n\r\n");
}

export class UpstreamAttempt {
  private readonly abort = new AbortController();
  private reader: ReadableStreamBYOBReader | null = null;
  /** Reused for every read; the decoder copies the bytes out. */
  private buffer = new ArrayBuffer(READ_BUFFER_BYTES);
  /** The text read so far ends at an event boundary (see ReadSizePolicy.minBytes). */
  private atEventBoundary = true;
  private readonly pace = new StreamPace();
  private ended = false;
  private readonly decoder = new TextDecoder();
  private readonly parsed: EventSourceMessage[] = [];
  /** Bytes read since the parser last completed an event or a comment line. */
  private bytesSinceEvent = 0;
  private readonly parser = createParser({
    onEvent: (e) => {
      this.bytesSinceEvent = 0;
      this.parsed.push(e);
    },
    onComment: () => {
      this.bytesSinceEvent = 0;
    },
  });
  private sawToken = false;
  private sawFinish = false;
  /** The backend took the request (answered 200 with a body): it is doing work that costs. */
  accepted = false;
  /** This attempt's own usage, as the backend reported it (before a continuation's is made the whole answer's). */
  usage: { input: number; output: number; cachedInput: number } | undefined;
  private readonly onClientAbort = () => this.abort.abort(new AttemptError("client_disconnected", "The client went away.", false));
  readonly startedAt = Date.now();
  ttftMs: number | undefined;
  // One timer per attempt, re-armed lazily: each chunk only moves `deadlineAt` forward.
  private deadlineAt = 0;
  private deadlineError: () => AttemptError = () => new AttemptError("timeout", "timed out", true);
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = 0;
  // Made once: the idle deadline moves on every read.
  private readonly idleTimeout = () =>
    new AttemptError("idle_timeout", `${this.req.grant.backend.id}: no token for ${this.req.timeouts.idleMs} ms.`, true);

  constructor(private readonly req: AttemptRequest) {}

  /** Sends the request and waits for response headers (connect timeout). */
  async open(): Promise<void> {
    const { grant, timeouts } = this.req;
    if (this.req.signal.aborted) this.onClientAbort();
    this.req.signal.addEventListener("abort", this.onClientAbort, { once: true });
    this.setDeadline(
      this.startedAt + timeouts.connectMs,
      () => new AttemptError("connect_timeout", `No response headers from ${grant.backend.id} within ${timeouts.connectMs} ms.`, true),
    );

    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "text/event-stream",
      ...(this.req.trace ? traceHeaders(this.req.trace.context, this.req.trace.spanId) : {}),
    };
    if (grant.backend.apiKey) headers.authorization = `Bearer ${grant.backend.apiKey}`;
    let response: Response;
    try {
      response = await fetch(`${grant.backend.url}/chat/completions`, {
        method: "POST",
        headers,
        body: JSON.stringify(this.upstreamBody()),
        signal: this.abort.signal,
        // A redirect is the backend's misconfiguration (or an attempt to send the request elsewhere): never followed.
        redirect: "manual",
      });
    } catch (err) {
      throw this.abortReason() ?? new AttemptError("connect_error", `Could not reach ${grant.backend.id}.`, true, { detail: String(err) });
    }
    if (!response.ok) throw await upstreamHttpError(grant.backend.id, response);
    if (!response.body)
      throw new AttemptError("upstream_empty_body", `${grant.backend.id} answered without a body.`, true, { httpStatus: response.status });
    this.reader = response.body.getReader({ mode: "byob" });
    this.accepted = true;
    this.setDeadline(
      this.startedAt + timeouts.firstTokenMs,
      () => new AttemptError("first_token_timeout", `${grant.backend.id}: no first token within ${timeouts.firstTokenMs} ms.`, true),
    );
  }

  /**
   * The events of the next network read (at least one), under the first-token or idle timeout.
   * Reading in batches keeps the per-token cost low: one read, one parse, one write downstream.
   */
  async next(): Promise<UpstreamEvent[]> {
    const { grant } = this.req;
    let bytes = 0;
    while (this.parsed.length === 0) {
      if (this.ended) {
        // A finish_reason was sent: the generation ended, only the [DONE] framing is missing.
        if (this.sawFinish) return [{ kind: "done" }];
        throw new AttemptError("upstream_truncated", `${grant.backend.id} closed the stream before it finished.`, true);
      }
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        // Inside an event, take what there is: the tail of an event never waits for the next one.
        // After the finish_reason only short events ([DONE]) follow: take them as they come too.
        const minBytes = this.atEventBoundary && !this.sawFinish ? this.req.readSizes.minBytes(this.pace, Date.now()) : 1;
        result = await this.reader!.readAtLeast(minBytes, new Uint8Array(this.buffer));
      } catch (err) {
        throw (
          this.abortReason() ??
          new AttemptError("upstream_truncated", `${grant.backend.id} broke the stream.`, true, { detail: String(err) })
        );
      }
      // At the end of the stream a read may still carry the last bytes.
      if (result.value) {
        this.buffer = result.value.buffer as ArrayBuffer;
        bytes += result.value.byteLength;
        const text = result.value.byteLength > 0 ? this.decoder.decode(result.value, { stream: true }) : "";
        if (text) {
          this.bytesSinceEvent += result.value.byteLength;
          this.parser.feed(text);
          this.atEventBoundary = endsAtEventBoundary(text);
          if (this.bytesSinceEvent > MAX_UPSTREAM_EVENT_BYTES)
            throw new AttemptError(
              "upstream_event_too_large",
              `${grant.backend.id} sent more than ${MAX_UPSTREAM_EVENT_BYTES} bytes without completing an SSE event.`,
              true,
            );
        }
      }
      this.ended = result.done;
    }
    const events: UpstreamEvent[] = [];
    for (const message of this.parsed) {
      const event = this.toEvent(message);
      if (event.kind === "done" && !this.sawToken && !this.sawFinish)
        throw new AttemptError("upstream_empty_answer", `${grant.backend.id} ended the stream before any output.`, true);
      events.push(event);
      if (event.kind === "done") break;
    }
    this.parsed.length = 0;
    const now = Date.now();
    this.req.readSizes.note(events.length, now);
    if (this.sawToken) {
      // The pace counts from the first token: the wait for it says nothing about the stream's.
      this.pace.note(bytes, events.length, now);
      this.setDeadline(now + this.req.timeouts.idleMs, this.idleTimeout);
    }
    return events;
  }

  /**
   * What this attempt used, for the spend ledger: the backend's own usage; else, once the backend
   * took the request, an estimate (the prompt as admission estimated it, a continuation's delivered
   * tokens with it, and `output` counted); none when it never took it (refused, unreachable).
   */
  usageOr(promptTokens: number, output: number): AttemptUsage | undefined {
    const continued = this.req.grant.continuation ? this.req.deliveredTokens : 0;
    const usage: AttemptUsage | undefined = this.usage
      ? { ...this.usage, estimated: false }
      : this.accepted
        ? { input: promptTokens + continued, output, cachedInput: 0, estimated: true }
        : undefined;
    return usage && continued > 0 ? { ...usage, resumed: Math.min(continued, usage.input) } : usage;
  }

  /** Stops the upstream call (cancelling the generation) unless it already ended. */
  cancel(reason?: AttemptError): void {
    this.release();
    if (!this.abort.signal.aborted) this.abort.abort(reason ?? new AttemptError("cancelled", "Attempt cancelled.", false));
    this.reader?.cancel().catch(() => {});
  }

  /** Ends an attempt whose stream finished: no abort needed, just drop the timer and listener. */
  release(): void {
    this.req.signal.removeEventListener("abort", this.onClientAbort);
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private toEvent(message: EventSourceMessage): UpstreamEvent {
    const id = this.req.grant.backend.id;
    if (message.data === "[DONE]") return { kind: "done" };
    if (message.event === "error")
      throw new AttemptError("upstream_stream_error", `${id} reported an error mid-stream.`, true, { detail: message.data.slice(0, 300) });
    let raw: UpstreamChunk["raw"];
    try {
      raw = JSON.parse(message.data);
    } catch {
      throw new AttemptError("upstream_bad_chunk", `${id} sent a chunk that is not JSON.`, true);
    }
    if (!raw || typeof raw !== "object" || Array.isArray(raw))
      throw new AttemptError("upstream_bad_chunk", `${id} sent a chunk that is not a JSON object.`, true);
    if ("error" in raw)
      throw new AttemptError("upstream_stream_error", `${id} reported an error mid-stream.`, true, {
        detail: JSON.stringify(raw.error).slice(0, 300),
      });
    if (raw.usage != null) this.usage = attemptUsage(raw.usage) ?? this.usage;
    const chunk = describeChunk(raw);
    if (chunk.finishReason !== null) this.sawFinish = true;
    if (chunk.isToken && !this.sawToken) {
      this.sawToken = true;
      this.ttftMs = Date.now() - this.startedAt;
    }
    return { kind: "chunk", chunk };
  }

  /** The error we aborted with (a timeout, the client leaving), if we did. */
  private abortReason(): AttemptError | undefined {
    const reason: unknown = this.abort.signal.reason;
    return this.abort.signal.aborted && reason instanceof AttemptError ? reason : undefined;
  }

  /** Moves the attempt's deadline; the request's total deadline always caps it. */
  private setDeadline(at: number, error: () => AttemptError): void {
    if (at >= this.req.deadline) {
      at = this.req.deadline;
      error = () => new AttemptError("total_timeout", `The request ran past its total timeout of ${this.req.timeouts.totalMs} ms.`, false);
    }
    this.deadlineAt = at;
    this.deadlineError = error;
    if (this.timer === undefined || at < this.timerAt) this.arm(at);
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (Date.now() < this.deadlineAt) return this.arm(this.deadlineAt);
        this.cancel(this.deadlineError());
      },
      Math.max(0, at - Date.now()),
    );
  }

  private upstreamBody(): Record<string, unknown> {
    const { grant, body, partialText, deliveredTokens } = this.req;
    const out: Record<string, unknown> = { ...body, model: grant.backend.model, stream: true };
    // Always asked for: the spend ledger prices each attempt by its own usage (a client that did
    // not ask never sees it: StreamProgress.relayUsage).
    const asked = body.stream_options;
    out.stream_options = { ...(asked && typeof asked === "object" ? asked : {}), include_usage: true };
    if (grant.continuation) {
      const messages = body.messages as unknown[];
      out.messages = [...messages, { role: "assistant", content: partialText }];
      out.continue_final_message = true;
      out.add_generation_prompt = false;
      for (const field of ["max_tokens", "max_completion_tokens"] as const) {
        if (typeof body[field] === "number") out[field] = Math.max(1, (body[field] as number) - deliveredTokens);
      }
    }
    return out;
  }
}

/** The counts of a backend's usage object (OpenAI's shape; cached tokens in prompt_tokens_details), or undefined when it has none. */
function attemptUsage(usage: unknown): UpstreamAttempt["usage"] {
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown } | null };
  if (typeof u.prompt_tokens !== "number" || typeof u.completion_tokens !== "number") return undefined;
  const cached = u.prompt_tokens_details?.cached_tokens;
  return { input: u.prompt_tokens, output: u.completion_tokens, cachedInput: typeof cached === "number" ? cached : 0 };
}
