// OpenAI Responses as a surface (stream/surface.ts): its stream framing and its `response` answer,
// for one response (its shell: its id, creation time and what it says of its request); errors keep OpenAI's shape, as chat's. A
// whole answer is handed to `keep` (the store) and told to the client once kept.
import { CHAT_SURFACE, type Surface } from "../../stream/surface";
import { completedResponse } from "./response";
import { ResponsesFraming } from "./stream";

export function responsesSurface(
  /** The response before it has output (responseShell). */
  shell: Record<string, unknown> & { id: string },
  keep: (response: Record<string, unknown>) => Promise<void>,
  /** A re-attached stream's starting_after: its events up to this sequence number are left out. */
  after?: number,
): Surface {
  let kept: Promise<void> | undefined;
  const ended = (response: Record<string, unknown> | null) => {
    if (response) kept = keep(response);
  };
  return {
    framing: () => new ResponsesFraming(shell, ended, after),
    answer: (completion) => {
      const response = completedResponse(shell, completion);
      ended(response);
      return response;
    },
    errorResponse: (failure, headers) => CHAT_SURFACE.errorResponse(failure, headers),
    ended: () => kept ?? Promise.resolve(),
  };
}
