// What the Worker and the TenantGate Durable Object say to each other over RPC. Plain data only:
// the seam between the stateless Worker and the single-threaded gate.
import type { Priority } from "./queue";
import type { Coordinates } from "./regions";
import type { EntryKind, EntrySnapshot, EntryState } from "./journal-entry";
import type { SurfaceName } from "./metrics";
import type { NoHedge } from "./hedging";
import type { RouteReason } from "./route-reason";
import type { AttemptUsage } from "./pricing";
import type { BudgetRule } from "../../config/schema";

export type { AttemptUsage };

export type { EntrySnapshot };

/** Where a request is recorded for replay, join and resume (Idempotency-Key or semantic key). */
export interface RecordSpec {
  key: string;
  kind: EntryKind;
  bodyHash: string;
  /** Others may replay or join this entry (false: stored only, for stale-if-error). */
  shared: boolean;
}

/** The API key a request came with, and its own rules (config/keyring.ts): its id names it in the ledger. */
export interface KeyRef {
  id: string;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  /** Its requests admitted and not yet ended (queued or running), at most. */
  maxConcurrency?: number;
  budgets?: BudgetRule[];
}

export interface AdmitRequest {
  tenant: string;
  /** The API key it came with (none for work sluice starts itself: batch lines, workflow steps). */
  key?: KeyRef;
  /** Embeddings go to backends that serve them (config `serves`); chat when absent. */
  kind?: "chat" | "embeddings";
  record?: RecordSpec;
  requestId: string;
  alias: string;
  priority: Priority;
  promptTokens: number;
  maxTokens?: number;
  origin?: Coordinates;
  /** Requests this Worker turned away itself (from a shed hint) since its last admission. */
  shedByWorker?: number;
  /** The tenant's gate this request was sent to, when the tenant has several (shards.ts). */
  shard?: number;
  /** The API the client spoke (counted per surface); chat when absent. */
  surface?: SurfaceName;
  /** Its session or conversation (admission/affinity-key.ts): equally near backends are tried in an order it fixes. */
  affinity?: string;
  /**
   * Set by a sharded tenant's gate, never by a Worker: shard 0 holds the tenant's budgets and
   * charged this request there (gate/budget-link.ts), and said where a soft threshold sends it.
   */
  budgetHeld?: { softRoute?: { alias: string; budget: string } };
}

export interface BackendTarget {
  id: string;
  url: string;
  model: string;
  apiKey?: string;
  resume: boolean;
  /** The alias this backend serves in the plan (the requested model or a fallback). */
  alias: string;
}

export interface AttemptGrant {
  /** 1 for the first attempt of the request. */
  attempt: number;
  backend: BackendTarget;
  /** Wait this long before calling the backend (backoff, Retry-After). */
  delayMs: number;
  /** The backend's breaker is half-open and this attempt is a probe. */
  probe: boolean;
  /** Continue a broken stream on this backend instead of starting over. */
  continuation: boolean;
  /**
   * Ask for a hedge (GateCalls.hedge) when the attempt has no first token after this long: its
   * model's recent TTFT p95 (core/hedging.ts). Absent: the attempt is never hedged.
   */
  hedgeAfterMs?: number;
  /** Why the attempt went to this backend, for the request's log line (absent on a grant resent after its reply was lost). */
  route?: RouteReason;
  /**
   * Tell the gate of the attempt's first token when it comes (GateCalls.firstToken): a probe (it
   * closes the breaker), a hedged model (its TTFTs set the hedge delay) or a backend with
   * adaptiveConcurrency (its TTFTs move the limit). Absent: the attempt's report carries its first
   * token, and a breaker weighing a failure counts it as a success meanwhile (breaker.ts).
   */
  notifyFirstToken?: true;
}

/** A hedge of a late attempt, on another backend of its model; or why there is none. */
export type HedgeResult = { kind: "hedge"; grant: AttemptGrant } | { kind: "none"; reason: NoHedge };

/** Which of a hedged attempt and its hedge goes on: the first to produce a token, or the one left when the other failed. */
export type HedgeKept = "primary" | "hedge";

export interface Timeouts {
  connectMs: number;
  firstTokenMs: number;
  idleMs: number;
  totalMs: number;
}

export type Rejection = {
  kind: "reject";
  status: 400 | 404 | 409 | 410 | 422 | 429 | 503 | 504;
  code: string;
  message: string;
  retryAfterSec?: number;
  /** The Worker may give requests of this priority or lower the same answer itself for this long. */
  shedForMs?: number;
};

export type AdmitResult =
  | {
      kind: "lease";
      leaseId: string;
      queueMs: number;
      grant: AttemptGrant;
      degradations: string[];
      timeouts: Timeouts;
      /** Taking over an entry that stopped mid-way: carry on from its checkpoint. */
      resumeFrom?: EntrySnapshot;
    }
  /** The answer is stored: replay it, no backend call. */
  | { kind: "replay"; entry: EntrySnapshot }
  /** The same request is being generated right now: follow it. */
  | { kind: "join"; entry: EntrySnapshot }
  /** Still waiting in the queue: poll with this ticket. */
  | { kind: "queued"; ticket: string }
  /** The gate does not know the ticket (it restarted): admit again. */
  | { kind: "unknown" }
  | Rejection;

export interface FollowResult {
  /** Chunks from the requested index on. */
  chunks: string[];
  state: EntryState | "gone";
  /** Tokens the entry holds (for the partial-completion count when it ended unfinished). */
  tokens: number;
}

/** Progress a checkpoint commits: chunks from event index `from`, and the totals so far. */
export interface Checkpoint {
  from: number;
  chunks: string[];
  text: string;
  tokens: number;
  /** The Worker dropped output it had recorded (a non-streaming answer started over): the entry cannot be whole. */
  discarded?: boolean;
}

/** Why a request's lease is gone: the request ends now with this failure. */
export interface LeaseEnded {
  status: 409 | 410 | 502;
  code: string;
  message: string;
}

/** A renewal's or first token's answer: the lease is still held, or it is gone and why. */
export type LeaseCheck = { held: true } | { held: false; ended: LeaseEnded };

/**
 * What a checkpoint achieved. `held`: the lease is still the request's. `recorded`: how many chunks,
 * from the first, the journal holds for the request now (the caller forgets those and sends the
 * rest again); null when nothing is recorded for it (no key, or another request took the entry over).
 */
export type CheckpointAck = { held: true; recorded: number | null } | { held: false; recorded: null; ended: LeaseEnded };

export type AttemptOutcome = "success" | "failure" | "client_error" | "cancelled";

/**
 * Why generated tokens never reached the client: "regenerated", a prefix the client already had,
 * generated again to resume reasoning or tool calls (stream/regeneration.ts); "restarted", a
 * non-streaming answer dropped when it had to start over on another backend.
 */
export type WasteCause = "regenerated" | "restarted";

export interface WastedTokens {
  backendId: string;
  cause: WasteCause;
  tokens: number;
}

/** How one attempt on one backend ended, as the Worker saw it. */
export interface AttemptReport {
  backendId: string;
  outcome: AttemptOutcome;
  /** e.g. "upstream_http_503", "first_token_timeout", "idle_timeout", "connect_error". */
  errorCode?: string;
  /** sluice's own words: may reach the client. */
  errorMessage?: string;
  /** Foreign text (the backend's, the runtime's): for the attempt log and dead letters only. */
  errorDetail?: string;
  /** Output tokens generated that the client never got, by the backend that generated them and why. */
  waste?: WastedTokens[];
  httpStatus?: number;
  retryAfterMs?: number;
  durationMs: number;
  ttftMs?: number;
  /** Content chunks this attempt produced. */
  chunks: number;
  /** The tokens it used (the spend ledger prices them); absent when the backend never took the request. */
  usage?: AttemptUsage;
}

export interface RetryNeeds {
  /** Content chunks already delivered to the client; > 0 means the request is mid-stream. */
  deliveredChunks: number;
  /** The client already holds part of the answer: only a continuation can carry on. */
  mustContinue: boolean;
  /**
   * The attempt the report is about (AttemptGrant.attempt). A retry resent after its reply was lost
   * finds the lease already past it, and gets the attempt the first call started.
   */
  attempt?: number;
}

/**
 * What a live request tells a gate that does not know its lease (it restarted before the lease was
 * written, or reclaimed it): enough to adopt it (see core/lease-recovery.ts).
 */
export interface LeaseClaim {
  leaseId: string;
  /** The admission the lease was granted for. */
  admit: AdmitRequest;
  /** The backend of the attempt in progress; null between attempts. */
  backendId: string | null;
  /** Attempts made so far. */
  attempts: number;
  /** The attempt in progress produced its first token. */
  answered: boolean;
}

export type RetryResult =
  | { kind: "attempt"; grant: AttemptGrant }
  /** Every eligible backend is at its concurrency limit: ask again after the delay. */
  | { kind: "wait"; delayMs: number }
  | { kind: "exhausted"; status: 409 | 410 | 502 | 503; code: string; message: string; retryAfterSec?: number };

/** What a request cost, told back at its settle for its log line (spend-desk.ts). */
export interface RequestCost {
  usd: number;
  tokens: number;
  /** Some attempt's usage was sluice's estimate: the backend reported none. */
  estimated: boolean;
}

/** "stale": every backend failed and a stored answer was served instead. */
export type SettleOutcome = "complete" | "partial" | "failed" | "cancelled" | "stale";

/**
 * Whether a request that ended so is kept as a dead letter (observe/dead-letters.ts): a failure of
 * sluice or its backends (5xx), not a request the client got wrong.
 */
export function writesDeadLetter(outcome: SettleOutcome, failureStatus: number | undefined): boolean {
  return (outcome === "failed" || outcome === "partial") && failureStatus !== undefined && failureStatus >= 500;
}
