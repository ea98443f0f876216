// Answers from the journal: a stored generation sent again, and how a journaled stream ends.
import { toFramed, type ClientSink } from "../stream/sink";
import type { EntrySnapshot } from "../gate/core/protocol";
import { CANCELLED } from "../gate/core/rejections";

/**
 * Sends a journal entry's chunks after event `after` to the sink, then ends it: [DONE] for a
 * complete entry, the partial-completion error event otherwise.
 */
export async function replayEntry(entry: EntrySnapshot, sink: ClientSink, after: number): Promise<void> {
  sink.skipTo(after);
  await sink.send(toFramed(entry.chunks.slice(after)));
  await endAsJournaled(sink, entry.state, entry.tokens, "The stored generation for this key");
}

/** Ends a stream that relayed a journal entry: [DONE] when it completed, else the error event. */
export async function endAsJournaled(sink: ClientSink, state: string, tokens: number, what: string): Promise<void> {
  if (state === "complete") return sink.finish();
  if (state === "cancelled") return sink.fail({ ...CANCELLED }, tokens);
  await sink.fail(
    {
      status: 502,
      code: `generation_${state}`,
      message: `${what} ended ${state}; retry the same request (with its Idempotency-Key, if it had one) to resume it.`,
    },
    tokens,
  );
}
