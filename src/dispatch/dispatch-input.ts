// What the dispatch loop is given and gives back, and the part of the gate it calls.
import type { TraceContext } from "../trace-context";
import type {
  AdmitRequest,
  AttemptGrant,
  AttemptReport,
  Checkpoint,
  CheckpointAck,
  EntrySnapshot,
  HedgeKept,
  HedgeResult,
  LeaseCheck,
  LeaseClaim,
  RequestCost,
  RetryNeeds,
  RetryResult,
  SettleOutcome,
  Timeouts,
} from "../gate/core/protocol";
import type { ClientSink, Failure } from "../stream/sink";
import type { StreamProgress } from "../stream/relay";
import type { ReadSizePolicy } from "./read-size";
import type { RouteReason } from "../gate/core/route-reason";

/** The part of the TenantGate the loop needs; a narrow seam for the RPC stub. */
export interface GateCalls {
  renew(leaseId: string): Promise<LeaseCheck>;
  /** `ttftMs`: how long after the attempt started its first token came (the hedge delay is learned from it). */
  firstToken(leaseId: string, ttftMs?: number): Promise<LeaseCheck>;
  /** The attempt's first token is late (AttemptGrant.hedgeAfterMs): a hedge on another backend, or none. */
  hedge(leaseId: string): Promise<HedgeResult>;
  /** The race between the attempt and its hedge ended: `kept` goes on, `dropped` tells how the other ended. */
  hedgeEnded(leaseId: string, kept: HedgeKept, dropped: AttemptReport): Promise<void>;
  checkpoint(leaseId: string, progress: Checkpoint): Promise<CheckpointAck>;
  retry(leaseId: string, report: AttemptReport | null, needs: RetryNeeds): Promise<RetryResult>;
  /** `failureStatus`: the status the client was told of a failure (the gate counts dead letters by it). */
  settle(
    leaseId: string,
    report: AttemptReport | null,
    outcome: SettleOutcome,
    progress?: Checkpoint,
    failureStatus?: number,
  ): Promise<RequestCost | null>;
  /** Claims a lease the gate does not know (see lease-claim.ts). */
  adopt(claim: LeaseClaim): Promise<LeaseCheck>;
}

export interface AttemptLogEntry {
  attempt: number;
  backendId: string;
  /** Why the attempt went to that backend. */
  route?: RouteReason;
  continuation: boolean;
  startedAt: number;
  durationMs: number;
  outcome: AttemptReport["outcome"];
  errorCode?: string;
  errorMessage?: string;
  /** What the backend said or the runtime threw (never sent to the client). */
  errorDetail?: string;
  httpStatus?: number;
  chunks: number;
  /** The attempt's span id in the request's trace (the backend's parent span). */
  spanId?: string;
}

/** The log entry of an attempt that `report` tells of. */
export function attemptLogEntry(grant: AttemptGrant, report: AttemptReport, spanId: string): AttemptLogEntry {
  return {
    attempt: grant.attempt,
    backendId: grant.backend.id,
    route: grant.route,
    continuation: grant.continuation,
    startedAt: Date.now() - report.durationMs,
    durationMs: report.durationMs,
    outcome: report.outcome,
    errorCode: report.errorCode,
    errorMessage: report.errorMessage,
    errorDetail: report.errorDetail,
    httpStatus: report.httpStatus,
    chunks: report.chunks,
    spanId,
  };
}

export interface DispatchInput {
  /** For log lines: what went wrong inside sluice is logged under it, never sent to the client. */
  requestId: string;
  gate: GateCalls;
  leaseId: string;
  /** What the lease was granted for: told to a gate that no longer knows it (see lease-claim.ts). */
  admit: AdmitRequest;
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
  /** The request's trace: each attempt is a span of it, sent to the backend as `traceparent`. */
  trace?: TraceContext;
  /** Called when an attempt relays its first token. */
  onFirstToken?: () => void;
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
  /** What its attempts cost, as the gate priced them (null: the settle never reached the gate). */
  cost?: RequestCost | null;
}
