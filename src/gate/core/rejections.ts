// Every answer the gate turns a request away with, in one place: status, code and message.
import type { RateVerdict } from "./rate-limit";
import type { BudgetScope } from "./spend-budget";
import type { LeaseEnded, Rejection, RetryResult } from "./protocol";

export type Exhausted = Extract<RetryResult, { kind: "exhausted" }>;

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

const TENANT_DELETED = {
  status: 410,
  code: "tenant_deleted",
  message: "This tenant was deleted while the request was in progress.",
} as const;

/** The gate does not know the lease: the Worker claims it (LeaseClaim); a request is never ended for this alone. */
export const LEASE_UNKNOWN = "lease_unknown";

/** Why a lease is gone: the tenant was deleted, or (else) the gate does not know it (see LEASE_UNKNOWN). */
export function leaseEnded(tenantDeleted: boolean): LeaseEnded {
  return tenantDeleted
    ? { ...TENANT_DELETED }
    : { status: 502, code: LEASE_UNKNOWN, message: "The gate does not know this request's lease." };
}

/** The request was cancelled (a background generation's cancel): what its Worker, its twins and its followers are told. */
export const CANCELLED = {
  status: 409,
  code: "generation_cancelled",
  message: "The generation was cancelled.",
} as const satisfies LeaseEnded;

/** A claimed lease the gate cannot take back (its tenant has no config). */
export const leaseLost = (): LeaseEnded => ({ status: 502, code: "lease_lost", message: "The request's lease was lost." });

export const rejections = {
  tenantNotFound: (): Rejection => ({
    kind: "reject",
    status: 404,
    code: "tenant_not_found",
    message: "This tenant has no configuration.",
  }),

  tenantDeleted: (): Rejection => ({ kind: "reject", ...TENANT_DELETED }),

  cancelled: (): Rejection => ({ kind: "reject", ...CANCELLED }),

  keyReused: (): Rejection => ({
    kind: "reject",
    status: 422,
    code: "idempotency_key_reused",
    message: "This Idempotency-Key was used with a different request body.",
  }),

  replayUnavailable: (): Rejection => ({
    kind: "reject",
    status: 409,
    code: "replay_unavailable",
    message: "The answer for this key was too large to store; it cannot be replayed.",
  }),

  queueFull: (maxQueue: number, retryAfterSec: number, shedForMs?: number): Rejection => ({
    kind: "reject",
    status: 429,
    code: "queue_full",
    message: `The queue for this tenant is full (${maxQueue} waiting). Retry later.`,
    retryAfterSec,
    ...(shedForMs ? { shedForMs } : {}),
  }),

  displaced: (retryAfterSec: number): Rejection => ({
    kind: "reject",
    status: 429,
    code: "queue_full",
    message: "The queue is full and this request was displaced by higher-priority traffic. Retry later.",
    retryAfterSec,
  }),

  queueTimeout: (maxQueueWaitMs: number): Rejection => ({
    kind: "reject",
    status: 504,
    code: "queue_timeout",
    message: `The request waited ${maxQueueWaitMs} ms in the queue without a free slot.`,
  }),

  noBackend: (retryAfterMs: number): Rejection => ({
    kind: "reject",
    status: 503,
    code: "no_backend_available",
    message: "Every backend for this model is unavailable (circuit open). Retry later.",
    retryAfterSec: seconds(retryAfterMs),
  }),

  rateLimited: (verdict: Exclude<RateVerdict, { ok: true }>, whose: "tenant" | "API key" = "tenant"): Rejection => {
    const what = verdict.limit === "requests" ? "requests" : "tokens (prompt plus max_tokens, estimated)";
    return {
      kind: "reject",
      status: 429,
      code: "rate_limited",
      message: `This ${whose}'s limit of ${what} per minute is reached. Retry later.`,
      retryAfterSec: seconds(verdict.retryAfterMs),
    };
  },

  keyConcurrency: (limit: number): Rejection => ({
    kind: "reject",
    status: 429,
    code: "concurrency_limited",
    message: `This API key has ${limit} requests queued or running, its limit. Retry when one ends.`,
    retryAfterSec: 1,
  }),

  budgetExceeded: (scope: BudgetScope, resetsAt: number, now: number): Rejection => {
    const whose = scope.id.startsWith("key/") ? "this API key" : "this tenant";
    const limit = scope.rule.unit === "usd" ? `$${scope.rule.limit}` : `${scope.rule.limit} tokens`;
    return {
      kind: "reject",
      status: 429,
      code: "budget_exceeded",
      message: `Budget "${scope.rule.name}" of ${whose} (${limit} a ${scope.rule.period}) is spent; it resets at ${new Date(resetsAt).toISOString()}.`,
      retryAfterSec: seconds(resetsAt - now),
    };
  },
};

/** Why a request gets no further attempt. */
export const exhausted = {
  leaseGone: (why: LeaseEnded): Exhausted => ({ kind: "exhausted", ...why }),

  maxAttempts: (attempts: number): Exhausted => ({
    kind: "exhausted",
    status: 502,
    code: "max_attempts",
    message: `All ${attempts} attempts failed.`,
  }),

  breakersOpen: (retryAfterMs: number): Exhausted => ({
    kind: "exhausted",
    status: 503,
    code: "no_backend_available",
    message: "Every backend for this model is unavailable (circuit open).",
    retryAfterSec: seconds(retryAfterMs),
  }),

  noBackend: (mustContinue: boolean): Exhausted =>
    mustContinue
      ? { kind: "exhausted", status: 502, code: "no_resumable_backend", message: "No backend that can resume the stream is available." }
      : { kind: "exhausted", status: 502, code: "no_backend_available", message: "No backend is available for another attempt." },

  budget: (): Exhausted => ({
    kind: "exhausted",
    status: 502,
    code: "retry_budget_exhausted",
    message: "The tenant's retry budget is spent; not retrying so an outage does not multiply load.",
  }),
};
