// The SSE side of a ClientSink: `id: n` numbered chunks, `: comment` keepalives while queued or
// waiting, `[DONE]` at the end, and the partial-completion error event when the stream breaks.
import { errorBody, errorResponse } from "../api/errors";
import { chunkEvent, commentLine, doneEvent, errorEvent } from "./sse";
import type { ClientChunk } from "./relay";
import type { ClientSink, Failure, HeaderSource } from "./sink";

/** Silence longer than this gets a comment line, so proxies keep the connection open. */
export const KEEPALIVE_MS = 15_000;

export class SseSink implements ClientSink {
  committed = false;
  readonly response: Promise<Response>;
  private resolveResponse!: (r: Response) => void;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;
  private readonly readable: ReadableStream<Uint8Array>;
  private readonly encoder = new TextEncoder();
  private readonly gone = new AbortController();
  private eventId = 0;
  private phase: "queued" | "waiting" | "streaming" = "queued";
  private lastWriteAt = Date.now();
  private keepalive: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly headers: HeaderSource,
    private readonly keepaliveMs = KEEPALIVE_MS,
  ) {
    this.response = new Promise((resolve) => (this.resolveResponse = resolve));
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    this.readable = readable;
    this.writer = writable.getWriter();
    // The client cancelling the body shows up as the writable side erroring.
    this.writer.closed.catch(() => this.gone.abort());
    this.keepalive = setInterval(() => this.tick(), Math.max(100, Math.floor(this.keepaliveMs / 3)));
  }

  get clientGone(): AbortSignal {
    return this.gone.signal;
  }

  get eventsSent(): number {
    return this.eventId;
  }

  setPhase(phase: "queued" | "waiting" | "streaming"): void {
    this.phase = phase;
  }

  async send(chunk: ClientChunk): Promise<void> {
    this.commit();
    this.phase = "streaming";
    await this.write(chunkEvent(++this.eventId, chunk));
  }

  async comment(text: string): Promise<void> {
    this.commit();
    await this.write(commentLine(text));
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
      await this.writer.abort().catch(() => {});
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
    this.resolveResponse(
      new Response(this.readable, {
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

  private async write(text: string): Promise<void> {
    if (this.closed) throw new Error("stream closed");
    this.lastWriteAt = Date.now();
    await this.writer.write(this.encoder.encode(text));
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
