// A client API's voice: how an answer, a stream and an error are told to a client of that API.
// sluice generates in chat completions (its backends speak them, the journal keeps their chunks);
// a surface renders them for its clients. Chat completions are the surface below; the others
// (Anthropic Messages, ...) translate in src/surfaces/. The sinks take one and never care which.
import { errorBody, errorResponse } from "./errors";
import type { Failure, FramedChunk } from "./sink";
import { chunkEvent, doneEvent, errorEvent } from "./sse";

/** One SSE response's events, in order. A framing may keep state across calls (open blocks). */
export interface SseFraming {
  /** The events for relayed chunks; `nextId()` numbers them where the surface has event ids. */
  chunks(chunks: FramedChunk[], nextId: () => number): string;
  /** The end of a complete answer. */
  done(): string;
  /** The end of a broken one: after `completionTokens` > 0 tokens, a partial completion. */
  error(failure: Failure, completionTokens: number): string;
}

export interface Surface {
  /** A framing for one SSE response. */
  framing(): SseFraming;
  /** The JSON answer, from the chat completion the sink gathered. */
  answer(completion: ChatCompletion): unknown;
  /** An error answered before anything else was sent. */
  errorResponse(failure: Failure, headers: Record<string, string>): Response;
  /**
   * Resolves once what the surface does with a whole answer is done (the Responses API stores it):
   * the sinks deliver the answer's end only then, so a client's next request finds it.
   */
  ended?(): Promise<void>;
}

/** A gathered `chat.completion` (the JSON sink builds it from the relayed chunks). */
export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: {
      role: "assistant";
      content: string | null;
      reasoning_content?: string;
      tool_calls?: Array<{ id?: string; type: string; function: { name: string; arguments: string } }>;
    };
    finish_reason: string;
    logprobs: unknown;
  }>;
  usage?: Record<string, unknown>;
}

/** OpenAI's chat completions: chunks as they are, numbered, `[DONE]`, the partial-completion error event. */
export const CHAT_SURFACE: Surface = {
  framing: () => ({
    chunks: (chunks, nextId) => {
      let text = "";
      for (const c of chunks) text += chunkEvent(nextId(), c.json);
      return text;
    },
    done: doneEvent,
    error: (failure, completionTokens) =>
      errorEvent(errorBody(failure.status, failure.code, failure.message).error, completionTokens > 0, completionTokens, failure.cut),
  }),
  answer: (completion) => completion,
  errorResponse: (failure, headers) => errorResponse(failure.status, failure.code, failure.message, headers),
};
