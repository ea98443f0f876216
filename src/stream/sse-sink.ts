// The SSE side of a ClientSink: `id: n` numbered chunks, `: comment` keepalives while queued or
// waiting, `[DONE]` at the end, and the partial-completion error event when the stream breaks.
import { errorBody, errorResponse } from "../api/errors";
import { chunkEvent, commentLine, doneEvent, errorEvent } from "./sse";
import type { ClientSink, Failure, FramedChunk, HeaderSource } from "./sink";

/** Silence longer than this gets a comment line, so proxies keep the connection open. */
export const KEEPALIVE_MS = 15_000;
/** Writes the client has not taken yet before the relay waits for it. */
const MAX_UNACKED_WRITES = 32;

export class SseSink implements ClientSink {
  committed = false;
  readonly response: Promise<Response>;
  private resolveResponse!: (r: Response) => void;
  /** Made at commit: a request turned away before it (429, 503) never pays for a stream. */
  private writer!: WritableStreamDefaultWriter<Uint8Array>;
  private readonly encoder = new TextEncoder();
  private readonly gone = new AbortController();
  private eventId = 0;
  private phase: "queued" | "waiting" | "streaming" = "queued";
  private lastWriteAt = Date.now();
  private keepalive: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  private unacked = 0;
  // Bound once: a write costs one then() and no new closures.
  private readonly onWritten = () => void this.unacked--;
  private readonly onWriteFailed = () => {
    this.unacked--;
    this.gone.abort();
  };

  constructor(
    private readonly headers: HeaderSource,
    private readonly keepaliveMs = KEEPALIVE_MS,
  ) {
    this.response = new Promise((resolve) => (this.resolveResponse = resolve));
    this.keepalive = setInterval(() => this.tick(), Math.max(100, Math.floor(this.keepaliveMs / 3)));
  }

  get clientGone(): AbortSignal {
    return this.gone.signal;
  }

  setPhase(phase: "queued" | "waiting" | "streaming"): void {
    this.phase = phase;
  }

  send(chunks: FramedChunk[]): Promise<void> {
    if (chunks.length === 0) return Promise.resolve();
    this.commit();
    this.phase = "streaming";
    let text = "";
    for (const c of chunks) text += chunkEvent(++this.eventId, c.json);
    return this.write(text);
  }

  comment(text: string): Promise<void> {
    this.commit();
    return this.write(commentLine(text));
  }

  async finish(): Promise<void> {
    this.commit();
    await this.write(doneEvent());
    await this.close();
  }

  async fail(failure: Failure, completionTokens: number): Promise<void> {
    if (!this.committed) {
      this.stopKeepalive();
      this.closed = true;
      const headers: Record<string, string> = { ...this.headers() };
      if (failure.retryAfterSec !== undefined) headers["retry-after"] = String(failure.retryAfterSec);
      this.resolveResponse(errorResponse(failure.status, failure.code, failure.message, headers));
      return;
    }
    const { error } = errorBody(failure.status, failure.code, failure.message);
    await this.write(errorEvent(error, completionTokens > 0, completionTokens)).catch(() => {});
    await this.close();
  }

  skipTo(n: number): void {
    this.eventId = n;
  }

  reset(): void {
    // A stream that started cannot take back what it sent; resume handles that case.
  }

  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    // A native byte pipe: cheaper per write than a JS TransformStream.
    const { readable, writable } = new IdentityTransformStream();
    this.writer = writable.getWriter();
    // The client cancelling the body shows up as the writable side erroring.
    this.writer.closed.catch(() => this.gone.abort());
    this.resolveResponse(
      new Response(readable, {
        status: 200,
        headers: {
          ...this.headers(),
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache, no-transform",
          "x-accel-buffering": "no",
        },
      }),
    );
  }

  /**
   * Queues bytes for the client. A write resolves only once the client side took it, so waiting on
   * each one would tie the relay to a network round trip per chunk; instead up to
   * MAX_UNACKED_WRITES are in flight before the relay waits (backpressure for slow clients).
   */
  private write(text: string): Promise<void> {
    if (this.closed || this.gone.signal.aborted) return Promise.reject(new Error("stream closed"));
    this.lastWriteAt = Date.now();
    const written = this.writer.write(this.encoder.encode(text));
    this.unacked++;
    const settled = written.then(this.onWritten, this.onWriteFailed);
    return this.unacked > MAX_UNACKED_WRITES ? settled : Promise.resolve();
  }

  private async close(): Promise<void> {
    this.stopKeepalive();
    if (this.closed) return;
    this.closed = true;
    await this.writer.close().catch(() => {});
  }

  private tick(): void {
    if (this.closed || Date.now() - this.lastWriteAt < this.keepaliveMs) return;
    const text = this.phase === "queued" ? "queued" : this.phase === "waiting" ? "waiting" : "keepalive";
    this.comment(text).catch(() => this.gone.abort());
  }

  private stopKeepalive(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }
}
