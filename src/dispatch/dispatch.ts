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
  CheckpointAck,
  EntrySnapshot,
  LeaseCheck,
  LeaseEnded,
  RetryResult,
  SettleOutcome,
  Timeouts,
} from "../gate/core/protocol";
import { toFramed, type ClientSink, type Failure, type FramedChunk } from "../stream/sink";
import type { StreamProgress } from "../stream/relay";
import { AttemptError, UpstreamAttempt } from "./attempt";
import type { UpstreamChunk } from "../stream/chunk";
import { LEASE_RENEW_MS } from "../gate/core/lease-timing";
import { Checkpointer } from "./checkpointer";
import type { ReadSizePolicy } from "./read-size";

/** The part of the TenantGate the loop needs; a narrow seam for the RPC stub. */
export interface GateCalls {
  renew(leaseId: string): Promise<LeaseCheck>;
  firstToken(leaseId: string): Promise<LeaseCheck>;
  checkpoint(leaseId: string, progress: Checkpoint): Promise<CheckpointAck>;
  retry(leaseId: string, report: AttemptReport | null, needs: { deliveredChunks: number; mustContinue: boolean }): Promise<RetryResult>;
  settle(leaseId: string, report: AttemptReport | null, outcome: SettleOutcome, progress?: Checkpoint): Promise<void>;
}

export interface AttemptLogEntry {
  attempt: number;
  backendId: string;
  continuation: boolean;
  startedAt: number;
  durationMs: number;
  outcome: AttemptReport["outcome"];
  errorCode?: string;
  errorMessage?: string;
  httpStatus?: number;
  chunks: number;
}

export interface DispatchInput {
  gate: GateCalls;
  leaseId: string;
  grant: AttemptGrant;
  timeouts: Timeouts;
  body: Record<string, unknown>;
  sink: ClientSink;
  progress: StreamProgress;
  /** Aborts when the client disconnects. */
  signal: AbortSignal;
  deadline: number;
  /** How many upstream events a read waits for (the isolate's policy). */
  readSizes: ReadSizePolicy;
  /** Called when the serving backend changes (for response headers). */
  onAttempt?: (grant: AttemptGrant) => void;
  /** Record delivered chunks in the gate's journal (the request has a journal key). */
  record?: boolean;
  /** Chunks the journal already holds (a takeover carrying on from a checkpoint). */
  recordedChunks?: number;
  /**
   * Keep generating when the client leaves, so the answer is there for a replay or reconnect
   * (requests with an Idempotency-Key).
   */
  detached?: boolean;
  /** A stored answer to serve when every backend failed before the first token (stale-if-error). */
  staleAnswer?: () => Promise<EntrySnapshot | null>;
  /** Set by dispatch: aborts, with the LeaseEnded as its reason, when the gate says the lease is gone. */
  leaseEnded?: AbortSignal;
}

export interface DispatchResult {
  outcome: SettleOutcome;
  attempts: AttemptLogEntry[];
  failure?: Failure;
}

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
  const checkpointer = new Checkpointer(
    {
      checkpoint: async (p) => watch(await input.gate.checkpoint(input.leaseId, p)),
      renew: async () => watch(await input.gate.renew(input.leaseId)),
      progress: () => ({ text: input.progress.text, tokens: input.progress.tokens }),
    },
    input.recordedChunks ?? 0,
    input.record ?? false,
    LEASE_RENEW_MS,
  );
  let settled = false;
  const gate: GateCalls = {
    renew: async (leaseId) => watch(await input.gate.renew(leaseId)),
    firstToken: async (leaseId) => watch(await input.gate.firstToken(leaseId)),
    checkpoint: async (leaseId, p) => watch(await input.gate.checkpoint(leaseId, p)),
    retry: (...args) => input.gate.retry(...args),
    settle: async (leaseId, report, outcome) => {
      settled = true;
      await input.gate.settle(leaseId, report, outcome, checkpointer.final());
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
  const end = async (outcome: SettleOutcome, failure?: Failure): Promise<DispatchResult> => {
    await settleWithRetry(gate, leaseId, lastReport, outcome);
    return { outcome, attempts: log, failure };
  };
  const fail = async (failure: Failure): Promise<DispatchResult> => {
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
    if (grant.delayMs > 0 && !(await sleep(Math.min(grant.delayMs, Math.max(0, input.deadline - Date.now())), signal))) {
      lastReport = abandonedReport(grant);
      return stopped();
    }
    if (!grant.continuation && progress.tokens > 0) {
      // Starting over (non-streaming answer on a non-resumable backend): drop what was gathered.
      progress.restart();
      sink.reset();
    }
    if (grant.continuation && sink.committed)
      await sink.comment(`resumed backend=${grant.backend.id} at=${progress.tokens}`).catch(() => {});
    sink.setPhase(progress.tokens > 0 ? "streaming" : "waiting");

    const { report, error } = await runAttempt(input, grant, checkpointer);
    lastReport = report;
    log.push({
      attempt: grant.attempt,
      backendId: grant.backend.id,
      continuation: grant.continuation,
      startedAt: Date.now() - report.durationMs,
      durationMs: report.durationMs,
      outcome: report.outcome,
      errorCode: report.errorCode,
      errorMessage: report.errorMessage,
      httpStatus: report.httpStatus,
      chunks: report.chunks,
    });

    if (report.outcome === "success") {
      // The backend is done: its slot goes to the next waiter without waiting for the client to
      // take the end of the stream.
      const finished = sink.finish().catch(() => {});
      const result = await end("complete");
      await finished;
      return result;
    }
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

    let next = await askRetry(gate, leaseId, report, progress.tokens, sink.committed && progress.tokens > 0);
    while (next.kind === "wait") {
      if (Date.now() + next.delayMs > input.deadline || !(await sleep(next.delayMs, signal))) break;
      next = await askRetry(gate, leaseId, null, progress.tokens, sink.committed && progress.tokens > 0);
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
        message: `${exhausted.message} Last error: ${report.errorMessage ?? report.errorCode}`,
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

/** Runs one attempt to its end and says how it went. Never throws. */
async function runAttempt(
  input: DispatchInput,
  grant: AttemptGrant,
  checkpointer: Checkpointer,
): Promise<{ report: AttemptReport; error?: AttemptError }> {
  const { progress, signal } = input;
  const attempt = new UpstreamAttempt({
    grant,
    body: input.body,
    partialText: progress.text,
    deliveredTokens: progress.tokens,
    timeouts: input.timeouts,
    deadline: input.deadline,
    signal,
    readSizes: input.readSizes,
  });
  // Chunks before the first token (e.g. the role delta) wait here until a token proves the attempt good.
  const held: UpstreamChunk[] = [];
  let chunks = 0;
  let tokenSeen = false;
  let finished = false;
  const base = { backendId: grant.backend.id };
  try {
    await attempt.open();
    for (;;) {
      const events = await attempt.next();
      let done = false;
      let firstToken = false;
      for (const event of events) {
        if (event.kind === "done") done = true;
        else {
          firstToken ||= !tokenSeen && event.chunk.isToken;
          tokenSeen ||= event.chunk.isToken;
          held.push(event.chunk);
        }
      }
      if (tokenSeen || done) {
        const relayed = relay(held.splice(0), input, checkpointer);
        // The breaker hears of the success now, as it hears of failures: when they happen. The
        // call goes out after the first token's write, which it would otherwise delay.
        if (firstToken) void input.gate.firstToken(input.leaseId).catch(() => {});
        chunks += await relayed;
      }
      if (done) {
        finished = true;
        return { report: { ...base, outcome: "success", durationMs: Date.now() - attempt.startedAt, ttftMs: attempt.ttftMs, chunks } };
      }
    }
  } catch (err) {
    const durationMs = Date.now() - attempt.startedAt;
    const clientLeft = signal.aborted || err instanceof ClientGone;
    if (clientLeft)
      return { report: { ...base, outcome: "cancelled", errorCode: "client_disconnected", durationMs, ttftMs: attempt.ttftMs, chunks } };
    const error = err instanceof AttemptError ? err : new AttemptError("relay_error", `Relaying failed: ${String(err)}`, true);
    return {
      error,
      report: {
        ...base,
        outcome: error.retryable || error.code === "total_timeout" ? "failure" : "client_error",
        errorCode: error.code,
        errorMessage: error.message,
        httpStatus: error.httpStatus,
        retryAfterMs: error.retryAfterMs,
        durationMs,
        ttftMs: attempt.ttftMs,
        chunks,
      },
    };
  } finally {
    if (finished) attempt.release();
    else attempt.cancel();
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

/** Writing to the client failed: it went away (or its stream broke), not the backend. */
class ClientGone extends Error {}

async function askRetry(
  gate: GateCalls,
  leaseId: string,
  report: AttemptReport | null,
  delivered: number,
  mustContinue: boolean,
): Promise<RetryResult> {
  try {
    return await gate.retry(leaseId, report, { deliveredChunks: delivered, mustContinue });
  } catch (err) {
    return { kind: "exhausted", status: 502, code: "gate_unavailable", message: `The tenant gate could not be reached: ${String(err)}` };
  }
}

/** Settling frees the slot; one retry covers a gate that restarted in between. */
async function settleWithRetry(gate: GateCalls, leaseId: string, report: AttemptReport | null, outcome: SettleOutcome): Promise<void> {
  for (let i = 0; i < 2; i++) {
    try {
      return await gate.settle(leaseId, report, outcome);
    } catch {
      /* try once more; the lease deadline reclaims the slot if both fail */
    }
  }
}

function abandonedReport(grant: AttemptGrant): AttemptReport {
  return { backendId: grant.backend.id, outcome: "cancelled", errorCode: "client_disconnected", durationMs: 0, chunks: 0 };
}

function clientStatus(status: number | undefined): number {
  return status !== undefined && status >= 400 && status < 500 ? status : 400;
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

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
  await sink.fail(
    {
      status: 502,
      code: `generation_${state}`,
      message: `${what} ended ${state}; retry the same request (with its Idempotency-Key, if it had one) to resume it.`,
    },
    tokens,
  );
}
