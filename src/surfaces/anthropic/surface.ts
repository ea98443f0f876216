// Anthropic Messages as a surface (stream/surface.ts): its stream framing, its `message` answer and
// its error shape, for one request (its stop sequences, sluice's estimate of its prompt tokens).
import type { Surface } from "../../stream/surface";
import { anthropicErrorResponse } from "./errors";
import { messageOf } from "./message";
import { MessagesFraming } from "./stream";

export function messagesSurface(request: { stopSequences: readonly string[]; promptEstimate: number }): Surface {
  return {
    framing: () => new MessagesFraming(request.stopSequences, request.promptEstimate),
    answer: (completion) => messageOf(completion, request.stopSequences, request.promptEstimate),
    // The sinks put Retry-After among `headers` when the failure has one.
    errorResponse: (failure, headers) => anthropicErrorResponse(failure.status, failure.code, failure.message, headers),
  };
}
