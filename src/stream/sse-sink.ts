// The SSE side of a ClientSink: the surface's events for the relayed chunks (for chat completions,
// `id: n` numbered chunks, `[DONE]` at the end, the partial-completion error event when the stream
// breaks), and `: comment` keepalives while queued or waiting. Writes, backpressure and a client
// that stops reading are handled here, whatever the surface.
import { commentLine } from "./sse";
import type { ClientSink, Failure, FramedChunk, HeaderSource } from "./sink";
import { CHAT_SURFACE, type SseFraming, type Surface } from "./surface";

/** Silence longer than this gets a comment line, so proxies keep the connection open. */
export const KEEPALIVE_MS = 15_000;
/**
 * A client that has not taken a write for this long has stopped reading while keeping the
 * connection open; it is treated as gone, so it cannot hold a slot (and a backend) forever.
 * Tenants set it as `timeouts.clientStallMs`.
 */
export const CLIENT_STALL_MS = 60_000;
/** Text waiting behind a write the client has not taken yet, before the relay waits for it. */
const MAX_QUEUED_CHARS = 64 * 1024;

export class SseSink implements ClientSink {
  committed = false;
  readonly response: Promise<Response>;
  status: number | undefined;
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
  /** Writes the client side has not taken yet; while there is one, new text waits in `queued`. */
  private inFlight = 0;
  private queued = "";
  /** When the client last took a write, or the first write in flight went out. */
  private lastTakenAt = 0;
  /** Resolves the relay (and a keepalive) waiting for `queued` to shrink: backpressure. */
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;
  // Bound once: a write costs one then() and no new closures.
  private readonly onWritten = () => {
    this.inFlight--;
    this.lastTakenAt = Date.now();
    if (this.queued && this.inFlight === 0) this.handOver();
  };
  private readonly onWriteFailed = () => {
    this.inFlight--;
    this.dropClient();
  };

  private readonly keepaliveMs: number;
  private readonly clientStallMs: number;
  private readonly framing: SseFraming;
  private readonly nextId = () => ++this.eventId;

  constructor(
    private readonly headers: HeaderSource,
    timing: { keepaliveMs?: number; clientStallMs?: number } = {},
    private readonly surface: Surface = CHAT_SURFACE,
  ) {
    this.framing = surface.framing();
    this.keepaliveMs = timing.keepaliveMs ?? KEEPALIVE_MS;
    this.clientStallMs = timing.clientStallMs ?? CLIENT_STALL_MS;
    this.response = new Promise((resolve) => (this.resolveResponse = resolve));
    this.keepalive = setInterval(() => this.tick(), Math.max(100, Math.floor(Math.min(this.keepaliveMs, this.clientStallMs) / 3)));
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
    return this.write(this.framing.chunks(chunks, this.nextId));
  }

  comment(text: string): Promise<void> {
    this.commit();
    return this.write(commentLine(text));
  }

  async finish(): Promise<void> {
    this.commit();
    const end = this.framing.done();
    await this.surface.ended?.();
    await this.write(end);
    await this.close();
  }

  async fail(failure: Failure, completionTokens: number): Promise<void> {
    if (!this.committed) {
      this.stopKeepalive();
      this.closed = true;
      const headers: Record<string, string> = { ...this.headers() };
      if (failure.retryAfterSec !== undefined) headers["retry-after"] = String(failure.retryAfterSec);
      this.answer(this.surface.errorResponse(failure, headers));
      return;
    }
    await this.write(this.framing.error(failure, completionTokens)).catch(() => {});
    await this.close();
  }

  private answer(response: Response): void {
    this.status = response.status;
    this.resolveResponse(response);
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
    this.answer(
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
   * Queues text for the client. A write resolves only once the client side took it, so waiting on
   * each one would tie the relay to a network round trip per chunk. Instead one write is in flight
   * and whatever comes meanwhile joins one string, written when that write is taken: a client slow
   * to take writes gets what waited in one write, at no cost in latency (it could not have had it
   * sooner). The relay waits only when MAX_QUEUED_CHARS pile up (backpressure).
   */
  private write(text: string): Promise<void> {
    if (this.closed || this.gone.signal.aborted) return Promise.reject(new Error("stream closed"));
    this.lastWriteAt = Date.now();
    this.queued += text;
    if (this.inFlight === 0) this.handOver();
    if (this.queued.length <= MAX_QUEUED_CHARS) return Promise.resolve();
    if (!this.drained) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.drained = { promise, resolve };
    }
    return this.drained.promise;
  }

  private handOver(): void {
    const text = this.queued;
    this.queued = "";
    if (this.inFlight++ === 0) this.lastTakenAt = Date.now();
    this.writer.write(this.encoder.encode(text)).then(this.onWritten, this.onWriteFailed);
    this.releaseDrained();
  }

  private releaseDrained(): void {
    const drained = this.drained;
    this.drained = undefined;
    drained?.resolve();
  }

  private async close(): Promise<void> {
    if (this.closed) return this.stopKeepalive();
    this.closed = true;
    // The writer keeps order: queued text goes before the close.
    if (this.queued) this.handOver();
    // The stall check keeps running until the client took the end of the stream.
    await this.writer.close().catch(() => {});
    this.stopKeepalive();
  }

  private tick(): void {
    if (this.inFlight > 0 && Date.now() - this.lastTakenAt > this.clientStallMs) return this.stalled();
    if (this.closed || Date.now() - this.lastWriteAt < this.keepaliveMs) return;
    const text = this.phase === "queued" ? "queued" : this.phase === "waiting" ? "waiting" : "keepalive";
    this.comment(text).catch(() => this.gone.abort());
  }

  /** The client stopped reading: end its stream and free whoever waits to write to it. */
  private stalled(): void {
    this.stopKeepalive();
    this.closed = true;
    this.dropClient();
    this.writer.abort(new Error("client stopped reading")).catch(() => {});
  }

  /** The client is gone: what waits for it is dropped, and a relay waiting to write goes on. */
  private dropClient(): void {
    this.queued = "";
    this.gone.abort();
    this.releaseDrained();
  }

  private stopKeepalive(): void {
    if (this.keepalive !== undefined) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }
}
