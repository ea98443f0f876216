// OpenAI Responses as a surface (stream/surface.ts): its stream framing and its `response` answer,
// for one response (its id, creation time and request); errors keep OpenAI's shape, as chat's. A
// whole answer is handed to `keep` (the store) and told to the client once kept.
import { CHAT_SURFACE, type Surface } from "../../stream/surface";
import { type ResponseContext, responseOf } from "./response";
import { ResponsesFraming } from "./stream";

export function responsesSurface(ctx: ResponseContext, keep: (response: Record<string, unknown>) => Promise<void>): Surface {
  let kept: Promise<void> | undefined;
  const ended = (response: Record<string, unknown> | null) => {
    if (response) kept = keep(response);
  };
  return {
    framing: () => new ResponsesFraming(ctx, ended),
    answer: (completion) => {
      const response = responseOf(ctx, completion);
      ended(response);
      return response;
    },
    errorResponse: (failure, headers) => CHAT_SURFACE.errorResponse(failure, headers),
    ended: () => kept ?? Promise.resolve(),
  };
}
