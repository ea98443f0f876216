// Where a relayed completion goes: an SSE stream (stream: true) or one JSON answer. The dispatch
// loop talks to this interface and does not care which. A sink decides when the HTTP response
// starts: an SSE sink commits at the first token (or a keepalive), so failures before it can still
// be a plain status code.
import type { ClientChunk } from "./relay";

export interface Failure {
  status: number;
  code: string;
  message: string;
  retryAfterSec?: number;
  /** Where a partial stream was cut, when not in its text (see OutputCut): told to the client. */
  cut?: string;
}

export interface ClientSink {
  /** The HTTP response has started; its status can no longer change. */
  readonly committed: boolean;
  /** Resolves with the Response for the client as soon as it is decided. */
  readonly response: Promise<Response>;
  /** That Response's status, once decided. */
  readonly status: number | undefined;
  /** Aborts when the client stops reading. */
  readonly clientGone: AbortSignal;
  /** What the client is waiting for, for keepalive comments. */
  setPhase(phase: "queued" | "waiting" | "streaming"): void;
  /** Sends chunks in order, in one write. */
  send(chunks: FramedChunk[]): Promise<void>;
  comment(text: string): Promise<void>;
  finish(): Promise<void>;
  /** `completionTokens` > 0 makes this a partial completion. */
  fail(failure: Failure, completionTokens: number): Promise<void>;
  /** Forgets buffered output (a non-streaming answer starting over). */
  reset(): void;
  /** The next chunk sent gets event id n + 1 (a reconnect after Last-Event-ID n). */
  skipTo(n: number): void;
}

export type HeaderSource = () => Record<string, string>;

/** A chunk for the client with its JSON, serialized once for the wire and the journal. */
export interface FramedChunk {
  chunk: ClientChunk;
  json: string;
}

/** Stored chunk JSON back into framed chunks. */
export function toFramed(jsons: string[]): FramedChunk[] {
  return jsons.map((json) => ({ chunk: JSON.parse(json) as ClientChunk, json }));
}
