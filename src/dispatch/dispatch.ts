// The dispatch loop, run in the Worker for one admitted request: call the granted backend, relay
// its chunks to the client sink, and on failure ask the gate for the next attempt (which applies
// maxAttempts, the retry budget, breakers and backoff). Chunks before the first token are held
// back, so a failure before it can move to another backend without the client noticing. After
// tokens were sent, only a continuation on a resumable backend can carry on; otherwise the client
// gets the partial-completion error event.
import type {
  AttemptGrant,
  AttemptReport,
  Checkpoint,
  LeaseCheck,
  RequestCost,
  LeaseEnded,
  RetryResult,
  SettleOutcome,
  WastedTokens,
} from "../gate/core/protocol";
import type { Failure } from "../stream/sink";
import type { OutputCut } from "../stream/output-cut";
import { Regeneration } from "../stream/regeneration";
import { LEASE_RENEW_MS } from "../gate/core/lease-timing";
import { logError } from "../log";
import { randomHex } from "../trace-context";
import { Checkpointer } from "./checkpointer";
import { LeaseState, claimingCalls } from "./lease-claim";
import { attemptLogEntry, type DispatchInput, type DispatchResult, type GateCalls, type AttemptLogEntry } from "./dispatch-input";
import { replayEntry } from "./replay";
import { runAttempt } from "./run-attempt";
import { sleep } from "./sleep";

export async function dispatch(input: DispatchInput): Promise<DispatchResult> {
  // The gate says a lease is gone (tenant deleted, or reclaimed from a Worker it thought dead) in
  // its answer to a renewal, a checkpoint or the first token: the request ends then.
  const leaseEnded = new AbortController();
  const watch = <T extends LeaseCheck>(check: T): T => {
    if (!check.held && !leaseEnded.signal.aborted) leaseEnded.abort(check.ended);
    return check;
  };
  // A detached request ignores its client: the generation finishes for a later replay.
  const cancelled = input.detached ? leaseEnded.signal : AbortSignal.any([input.signal, input.sink.clientGone, leaseEnded.signal]);
  const claiming = claimingCalls(input.gate, new LeaseState(input.leaseId, input.admit, input.grant));
  const watched = {
    renew: async (leaseId: string) => watch(await claiming.renew(leaseId)),
    firstToken: async (leaseId: string, ttftMs?: number) => watch(await claiming.firstToken(leaseId, ttftMs)),
    checkpoint: async (leaseId: string, p: Checkpoint) => watch(await claiming.checkpoint(leaseId, p)),
  };
  const checkpointer = new Checkpointer(
    {
      checkpoint: (p) => watched.checkpoint(input.leaseId, p),
      renew: () => watched.renew(input.leaseId),
      progress: () => ({ text: input.progress.text, tokens: input.progress.tokens }),
    },
    input.recordedChunks ?? 0,
    input.record ?? false,
    LEASE_RENEW_MS,
  );
  let settled = false;
  const gate: GateCalls = {
    ...claiming,
    ...watched,
    settle: (leaseId, report, outcome, _progress, failureStatus) => {
      settled = true;
      return claiming.settle(leaseId, report, outcome, checkpointer.final(), failureStatus);
    },
  };
  // Checkpoints go out as chunks are relayed; this timer renews the lease while nothing flows
  // (waiting for a first token, a slow backend). A dead Worker stops renewing it.
  const timer = setInterval(() => void checkpointer.tick(), LEASE_RENEW_MS / 2);
  try {
    return await dispatchLoop({ ...input, gate, signal: cancelled, leaseEnded: leaseEnded.signal }, checkpointer);
  } finally {
    clearInterval(timer);
    // An unexpected exception must not leak the slot: settle whatever happened.
    if (!settled) await settleWithRetry(gate, input.leaseId, null, "failed");
  }
}

async function dispatchLoop(input: DispatchInput, checkpointer: Checkpointer): Promise<DispatchResult> {
  const { gate, leaseId, sink, progress, signal } = input;
  const log: AttemptLogEntry[] = [];
  let grant = input.grant;
  let lastReport: AttemptReport | null = null;
  /** Set while the next attempt regenerates an answer whose reasoning or tool calls the client has. */
  let regeneration: Regeneration | undefined;
  /** Tokens gathered for a non-streaming answer and dropped when it started over, and the backend they came from: told with the next report. */
  let discarded: WastedTokens | undefined;
  const end = async (outcome: SettleOutcome, failure?: Failure): Promise<DispatchResult> => {
    const cost = await settleWithRetry(gate, leaseId, lastReport, outcome, failure?.status);
    return { outcome, attempts: log, failure, cost };
  };
  const fail = async (failure: Failure): Promise<DispatchResult> => {
    // A partial answer says where it was cut: in its text, its reasoning, a tool call.
    if (progress.tokens > 0 && failure.cut === undefined) failure = { ...failure, cut: progress.shape.cut() };
    await sink.fail(failure, progress.tokens).catch(() => {});
    return end(progress.tokens > 0 ? "partial" : "failed", failure);
  };
  // Stopped by the signal: the client left, or the gate ended the lease (which the client hears of).
  const stopped = (): Promise<DispatchResult> => {
    const ended = input.leaseEnded?.aborted ? (input.leaseEnded.reason as LeaseEnded) : undefined;
    return ended ? fail({ status: ended.status, code: ended.code, message: ended.message }) : end("cancelled");
  };

  for (;;) {
    input.onAttempt?.(grant);
    // Output no continuation can carry on exactly (see stream/output-cut.ts), as a takeover of a
    // stored run may hold: a client that saw none of it gets a fresh answer, one that did the cut.
    if (grant.continuation && !progress.shape.continuable()) {
      if (sink.committed) return fail(cutFailure(progress.shape.cut()));
      grant = { ...grant, continuation: false };
    }
    if (grant.delayMs > 0 && !(await sleep(Math.min(grant.delayMs, Math.max(0, input.deadline - Date.now())), signal))) {
      lastReport = abandonedReport(grant);
      return stopped();
    }
    if (!grant.continuation && progress.tokens > 0 && !regeneration) {
      // Starting over (non-streaming answer on a non-resumable backend): drop what was gathered.
      // They came from the attempt before this one.
      discarded = { backendId: log.at(-1)?.backendId ?? grant.backend.id, cause: "restarted", tokens: progress.tokens };
      progress.restart();
      sink.reset();
      checkpointer.discard();
    }
    if (grant.continuation && sink.committed)
      await sink.comment(`resumed backend=${grant.backend.id} at=${progress.tokens}`).catch(() => {});
    if (regeneration) await sink.comment(`regenerating backend=${grant.backend.id} checking=${progress.tokens}`).catch(() => {});
    progress.startAttempt(grant.continuation);
    sink.setPhase(progress.tokens > 0 ? "streaming" : "waiting");

    const run = await runAttempt(input, grant, checkpointer, regeneration, randomHex(8));
    // The gate hears how a hedge race ended before it hears of the attempt that went on.
    await run.told;
    const { report, error } = run;
    // A hedge that won is the attempt in progress now.
    grant = run.grant;
    if (discarded) report.waste = [...(report.waste ?? []), discarded];
    discarded = undefined;
    lastReport = report;
    log.push(...run.dropped, attemptLogEntry(grant, report, run.spanId));

    if (report.outcome === "success") {
      // The backend is done: its slot goes to the next waiter without waiting for the client to
      // take the end of the stream.
      const finished = sink.finish().catch(() => {});
      const result = await end("complete");
      await finished;
      return result;
    }
    if (report.errorCode === "regeneration_diverged") return fail(cutFailure(progress.shape.cut()));
    if (report.outcome === "cancelled") return stopped();
    if (report.outcome === "client_error") {
      // The backend rejected the request itself (a 4xx): pass its verdict on, no retry.
      const failure: Failure = {
        status: clientStatus(report.httpStatus),
        code: report.errorCode ?? "upstream_rejected",
        message: report.errorMessage ?? "The backend rejected the request.",
      };
      return fail(failure);
    }
    if (error?.code === "total_timeout") return fail({ status: 504, code: "total_timeout", message: error.message });
    // The client has output no continuation can carry on exactly: reasoning or tool calls, no text.
    // Regenerate and check it (stream/regeneration.ts). Otherwise end it as it is, never splice.
    const mustContinue = sink.committed && progress.tokens > 0;
    regeneration = undefined;
    if (mustContinue && !progress.shape.continuable()) {
      const delivered = progress.shape.regenerable();
      if (!delivered) return fail(cutFailure(progress.shape.cut()));
      regeneration = new Regeneration(delivered);
    }

    // A fresh generation (delivered 0) when regenerating, or when a non-streaming answer that holds
    // output no continuation can carry on starts over.
    const fresh = regeneration !== undefined || !progress.shape.continuable();
    const ask = (r: AttemptReport | null) =>
      askRetry(input.requestId, gate, leaseId, r, fresh ? 0 : progress.tokens, fresh ? false : mustContinue);
    let next = await ask(report);
    while (next.kind === "wait") {
      if (Date.now() + next.delayMs > input.deadline || !(await sleep(next.delayMs, signal))) break;
      next = await ask(null);
    }
    if (next.kind !== "attempt") {
      lastReport = null; // already reported with the retry call
      const exhausted =
        next.kind === "exhausted"
          ? next
          : { status: 502 as const, code: "no_backend_available", message: "No backend became free in time." };
      const failure: Failure = {
        status: exhausted.status,
        code: exhausted.code,
        // sluice's words only: what a backend said or the runtime threw is in the attempt log (dead letters).
        message: `${exhausted.message} Last error: ${report.errorCode ?? "unknown"}: ${report.errorMessage ?? "no detail"}`,
        retryAfterSec: "retryAfterSec" in exhausted ? exhausted.retryAfterSec : undefined,
      };
      if (signal.aborted) return stopped();
      const stale = progress.tokens === 0 && !sink.committed ? await input.staleAnswer?.().catch(() => null) : null;
      if (stale) {
        await replayEntry(stale, sink, 0).catch(() => {});
        return end("stale");
      }
      return fail(failure);
    }
    grant = next.grant;
  }
}

async function askRetry(
  requestId: string,
  gate: GateCalls,
  leaseId: string,
  report: AttemptReport | null,
  delivered: number,
  mustContinue: boolean,
): Promise<RetryResult> {
  try {
    return await gate.retry(leaseId, report, { deliveredChunks: delivered, mustContinue });
  } catch (err) {
    logError(requestId, "tenant gate unavailable for a retry", err);
    return { kind: "exhausted", status: 502, code: "gate_unavailable", message: "The tenant's gate could not be reached." };
  }
}

const CUT_MESSAGES: Record<"reasoning" | "tool_call" | "after_tool_call", string> = {
  reasoning: "The stream broke while the model was reasoning; a continuation cannot resume its reasoning exactly.",
  tool_call: "The stream broke inside a tool call's arguments; a continuation would write the call again, so it is not resumed.",
  after_tool_call:
    "The stream broke after complete tool calls, before the model finished; the calls received are whole, more may have followed.",
};

/** The partial-completion failure for a stream cut where it cannot be resumed (see OutputShape.cut). */
function cutFailure(cut: OutputCut): Failure {
  const message = cut === "reasoning" || cut === "tool_call" || cut === "after_tool_call" ? CUT_MESSAGES[cut] : "The stream broke.";
  return { status: 502, code: "stream_cut", message: `${message} Retry the request.`, cut };
}

/** Settling frees the slot; one retry covers a gate that restarted in between. */
async function settleWithRetry(
  gate: GateCalls,
  leaseId: string,
  report: AttemptReport | null,
  outcome: SettleOutcome,
  failureStatus?: number,
): Promise<RequestCost | null> {
  for (let i = 0; i < 2; i++) {
    try {
      return await gate.settle(leaseId, report, outcome, undefined, failureStatus);
    } catch {
      /* try once more; the lease deadline reclaims the slot if both fail */
    }
  }
  return null;
}

function abandonedReport(grant: AttemptGrant): AttemptReport {
  return { backendId: grant.backend.id, outcome: "cancelled", errorCode: "client_disconnected", durationMs: 0, chunks: 0 };
}

function clientStatus(status: number | undefined): number {
  return status !== undefined && status >= 400 && status < 500 ? status : 400;
}
