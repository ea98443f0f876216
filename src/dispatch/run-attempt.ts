// One attempt of the dispatch loop: call the granted backend and relay its chunks to the client
// sink (holding back those before the first token), stopping at the client's max_tokens. A late
// first token may be hedged (hedge-race.ts): the attempt that goes on may then be the hedge.
import type { AttemptGrant, AttemptReport } from "../gate/core/protocol";
import type { FramedChunk } from "../stream/sink";
import { describeChunk, type UpstreamChunk } from "../stream/chunk";
import { logError } from "../log";
import type { UpstreamEvent } from "./attempt";
import { AttemptError, failureOf } from "./upstream-error";
import type { Checkpointer } from "./checkpointer";
import type { AttemptLogEntry, DispatchInput } from "./dispatch-input";
import { completionChunkCap } from "./token-cap";
import type { Regeneration } from "../stream/regeneration";
import { contender, firstTokenRace, type Race } from "./hedge-race";
import { SILENT_FIRST_TOKEN_MS } from "../gate/core/lease-timing";

/** How an attempt went; with a hedge, of the attempt that went on. */
export interface AttemptRun {
  report: AttemptReport;
  error?: AttemptError;
  /** The grant of the attempt the report is about: a hedge that won, or the one given. */
  grant: AttemptGrant;
  spanId: string;
  /** Attempts that lost or failed in a hedge race before it. */
  dropped: AttemptLogEntry[];
  /** Settles once the gate heard how a hedge race ended (at once without one). */
  told: Promise<void>;
}

/** Runs one attempt to its end and says how it went. Never throws. */
export async function runAttempt(
  input: DispatchInput,
  grant: AttemptGrant,
  checkpointer: Checkpointer,
  /** Set when the attempt regenerates an answer whose tool calls the client has (see Regeneration). */
  regeneration: Regeneration | undefined,
  /** The attempt's span in the request's trace. */
  spanId: string,
): Promise<AttemptRun> {
  const { progress, signal } = input;
  // Only an answer's start is hedged: output the client has is never raced.
  const hedged = grant.hedgeAfterMs !== undefined && !regeneration && progress.tokens === 0;
  const race: Race = { current: contender(input, grant, spanId), dropped: [], told: Promise.resolve() };
  const run = (report: AttemptReport, error?: AttemptError): AttemptRun => ({
    report,
    error,
    grant: race.current.grant,
    spanId: race.current.spanId,
    dropped: race.dropped,
    told: race.told,
  });
  // Chunks before the first token (e.g. the role delta) wait here until a token proves the attempt good.
  const held: UpstreamChunk[] = [];
  const cap = completionChunkCap(input.body);
  let chunks = 0;
  let tokenSeen = false;
  let finished = false;
  // The attempt's tokens: a regeneration's skipped prefix was generated too.
  const base = () => ({
    backendId: race.current.grant.backend.id,
    usage: race.current.attempt.usageOr(input.admit.promptTokens, chunks + (regeneration?.skipped ?? 0)),
  });
  const waste = () =>
    regeneration && regeneration.skipped > 0
      ? { waste: [{ backendId: race.current.grant.backend.id, cause: "regenerated" as const, tokens: regeneration.skipped }] }
      : {};
  try {
    let pending: UpstreamEvent[] | undefined;
    if (hedged) pending = await firstTokenRace(input, race, grant.hedgeAfterMs!);
    else await race.current.attempt.open();
    const { attempt, grant: served } = race.current;
    const ended = () => ({ ...base(), ...waste(), durationMs: Date.now() - attempt.startedAt, ttftMs: attempt.ttftMs, chunks });
    for (;;) {
      const events = pending ?? (await attempt.next());
      pending = undefined;
      let done = false;
      let firstToken = false;
      for (const event of events) {
        if (event.kind === "done") {
          done = true;
          continue;
        }
        const verdict = regeneration ? regeneration.take(event.chunk) : { kind: "relay" as const, chunk: event.chunk };
        if (verdict.kind === "skip") continue;
        if (verdict.kind === "diverged") throw new AttemptError("regeneration_diverged", `${served.backend.id}: ${verdict.why}.`, false);
        firstToken ||= !tokenSeen && verdict.chunk.isToken;
        tokenSeen ||= verdict.chunk.isToken;
        held.push(verdict.chunk);
      }
      if (tokenSeen || done) {
        const relayed = relay(held.splice(0), input, checkpointer);
        // Where the gate asks for it (a probe, a hedged model, a learned limit), or when it came
        // late, the gate hears of the first token now; otherwise the attempt's report tells it
        // (AttemptGrant.notifyFirstToken, SILENT_FIRST_TOKEN_MS). The call goes out after the first
        // token's write, which it would otherwise delay, and after the gate heard which attempt
        // won a hedge race.
        if (firstToken) {
          if (hedged || served.notifyFirstToken || (attempt.ttftMs ?? 0) > SILENT_FIRST_TOKEN_MS)
            void race.told.then(() => input.gate.firstToken(input.leaseId, attempt.ttftMs)).catch(() => {});
          input.onFirstToken?.();
        }
        chunks += await relayed;
      }
      if (!done && cap !== undefined && progress.tokens >= cap) {
        // The backend ignores max_tokens: the stream ends as OpenAI ends it, and the upstream call
        // is cancelled (the attempt is not `finished`).
        chunks += await relay([lengthFinish(served.backend.model)], input, checkpointer);
        return run({ ...ended(), outcome: "success" });
      }
      if (done) {
        finished = true;
        return run({ ...ended(), outcome: "success" });
      }
    }
  } catch (err) {
    const { attempt } = race.current;
    const durationMs = Date.now() - attempt.startedAt;
    const clientLeft = signal.aborted || err instanceof ClientGone;
    if (clientLeft)
      return run({
        ...base(),
        ...waste(),
        outcome: "cancelled",
        errorCode: "client_disconnected",
        durationMs,
        ttftMs: attempt.ttftMs,
        chunks,
      });
    // The backend worked; its answer differs from the one the client has (no breaker failure).
    if (err instanceof AttemptError && err.code === "regeneration_diverged")
      return run({ ...base(), ...waste(), outcome: "cancelled", errorCode: err.code, errorMessage: err.message, durationMs, chunks }, err);
    if (!(err instanceof AttemptError)) logError(input.requestId, "relaying failed", err);
    const { error, fields } = failureOf(err);
    return run({ ...base(), ...waste(), ...fields, durationMs, ttftMs: attempt.ttftMs, chunks }, error);
  } finally {
    if (finished) race.current.attempt.release();
    else race.current.attempt.cancel();
  }
}

/**
 * Frames a batch of chunks, notes them for the checkpoint, and sends them in one write. Returns
 * the tokens among them, for the attempt's report (what the gate counts): a chunk that only ends
 * the stream (a finish reason, no content) is none.
 */
async function relay(chunks: UpstreamChunk[], input: DispatchInput, checkpointer: Checkpointer): Promise<number> {
  let tokens = 0;
  const batch: FramedChunk[] = [];
  for (const c of chunks) {
    const chunk = input.progress.frame(c);
    if (!chunk) continue;
    if (c.isToken && (c.content.length > 0 || c.finishReason === null)) tokens++;
    const json = JSON.stringify(chunk);
    checkpointer.add(json);
    batch.push({ chunk, json });
  }
  void checkpointer.tick();
  if (batch.length === 0 || (input.sink.clientGone.aborted && input.detached)) return tokens;
  try {
    await input.sink.send(batch);
  } catch {
    if (!input.detached) throw new ClientGone();
  }
  return tokens;
}

/** The chunk that ends a stream cut at the client's max_tokens. */
function lengthFinish(model: string): UpstreamChunk {
  return describeChunk({ object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: "length" }] });
}

/** Writing to the client failed: it went away (or its stream broke), not the backend. */
class ClientGone extends Error {}
