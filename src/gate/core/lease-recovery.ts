// Gate calls that are safe to resend, and leases that survive a restart. The Worker resends a call
// whose reply it lost (gate-client.ts), and a gate that restarts forgets the leases it had not yet
// written (lease rows are written behind). So: an admission resent for a request that already
// holds a lease gets that lease again, not a second one; and a live request presenting a lease the
// gate does not know is adopted, counted again, rather than killed: its backend is answering, and
// an answer is never thrown away for the gate's bookkeeping.
import type { BackendConfig } from "../../config/schema";
import { newLease, type Lease } from "./leases";
import { buildRoutePlan, type PlanEntry } from "./plan";
import type { JournalPort } from "./ports";
import type { AdmitRequest, AdmitResult, AttemptGrant, BackendTarget, LeaseClaim, LeaseEnded } from "./protocol";
import type { TenantPolicies } from "./tenant-policies";

/** What the Worker calls a backend with: the backend's address and the alias it serves in the plan. */
export function backendTarget(backend: BackendConfig, alias: string): BackendTarget {
  const { id, url, model, apiKey, resume } = backend;
  return { id, url, model, apiKey, resume, alias };
}

/**
 * The admission answer a request already holding `lease` gets when its admit is resent: the same
 * lease and its attempt in progress. What its journal entry already holds comes along, as at a
 * takeover, so nothing is generated twice.
 */
export function regrant(lease: Lease, policies: TenantPolicies, journal: JournalPort, now: number): AdmitResult | undefined {
  const entry = lease.plan[lease.cursor];
  const backend = entry && policies.backend(entry.backendId);
  const config = policies.config;
  if (!entry || !backend || !config || lease.backendId !== backend.id) return undefined;
  const grant: AttemptGrant = {
    attempt: lease.attempts,
    backend: backendTarget(backend, entry.alias),
    delayMs: 0,
    probe: lease.probe,
    continuation: false,
    ...(lease.silent ? {} : { notifyFirstToken: true as const }),
  };
  const held = lease.recordKey === undefined ? undefined : journal.get(lease.recordKey, now);
  const resumeFrom = held && held.leaseId === lease.id && held.chunks.length > 0 ? held : undefined;
  return {
    kind: "lease",
    leaseId: lease.id,
    queueMs: 0,
    grant,
    degradations: lease.degradations ?? [],
    timeouts: { ...config.timeouts },
    ...(resumeFrom ? { resumeFrom } : {}),
  };
}

/**
 * The lease a live request claims, rebuilt from what its Worker knows: the admission it was granted
 * with, the attempt in progress and whether it answered. Its plan is the request's plan under the
 * current config; the backend in use leads it if the config no longer routes there.
 */
export function adoptedLease(claim: LeaseClaim, policies: TenantPolicies, inFlight: (id: string) => number, now: number): Lease {
  const request: AdmitRequest = claim.admit;
  const config = policies.config!;
  const built = buildRoutePlan(config, { ...request, inFlight });
  let plan: PlanEntry[] = built.ok ? built.entries : [];
  let cursor = claim.backendId === null ? 0 : plan.findIndex((e) => e.backendId === claim.backendId);
  if (cursor < 0) {
    plan = [{ backendId: claim.backendId!, alias: request.alias }, ...plan];
    cursor = 0;
  }
  const lease = newLease(claim.leaseId, { request, plan, degradations: [], enqueuedAt: now }, cursor, now);
  lease.attempts = claim.attempts;
  if (claim.answered) lease.answered = true;
  return lease;
}

/** How long a settled lease's id is remembered, and how many at most (the oldest go first). */
export const ENDED_MEMORY_MS = 60_000;
export const MAX_ENDED = 10_000;

/**
 * Leases settled lately, by id: a claim for one is refused. A request's claim and its settle may
 * cross (the claim waits for the config while the settle is answered), and a settled lease must
 * never come back. A lease the gate ended itself (a cancel) keeps why, which its Worker is told.
 * Bounded in time and count.
 */
export class EndedLeases {
  private readonly ended = new Map<string, { at: number; why?: LeaseEnded }>();

  /** `why`: the gate ended the lease (kept when the Worker's settle notes it again). */
  note(id: string, now: number, why: LeaseEnded | undefined = this.ended.get(id)?.why): void {
    this.ended.delete(id);
    this.ended.set(id, { at: now, ...(why ? { why } : {}) });
    this.prune(now);
  }

  has(id: string, now: number): boolean {
    this.prune(now);
    return this.ended.has(id);
  }

  /** Why the gate ended the lease, when it did (a cancel). */
  why(id: string, now: number): LeaseEnded | undefined {
    this.prune(now);
    return this.ended.get(id)?.why;
  }

  private prune(now: number): void {
    for (const [id, { at }] of this.ended) {
      if (this.ended.size <= MAX_ENDED && now - at < ENDED_MEMORY_MS) break;
      this.ended.delete(id);
    }
  }
}
